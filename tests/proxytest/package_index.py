"""A package index served over plain HTTP for pods to install from: PEP 503 pages over wheels built
from the fixture connector packages, a setuptools wheel for builds from source, and bare Git
repositories (Git's "dumb" HTTP protocol) for ``pkg @ git+http://...`` requirements."""

from __future__ import annotations

import functools
import html
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

from proxytest.packages import FIXTURES, SDK_FIXTURES


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_project(wheel: Path) -> str:
    return _normalized(wheel.name.split("-", 1)[0])


def build_index(root: Path, sources: list[Path]) -> Path:
    """Wheels of ``sources`` (no dependencies) and of setuptools, under ``root/simple/<project>/``."""
    wheels = root / "wheels"
    copies = root / "sources"
    for source in sources:
        copy = copies / source.name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        subprocess.run([*pip, "--wheel-dir", str(wheels), str(copy)], check=True, timeout=300)
    # A build from source (a git requirement) needs its build backend from the index.
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*download, "--dest", str(wheels), f"setuptools=={version('setuptools')}"], check=True, timeout=300)
    for wheel in sorted(wheels.glob("*.whl")):
        project = root / "simple" / _wheel_project(wheel)
        project.mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, project / wheel.name)
    for project in (root / "simple").iterdir():
        links = "".join(f'<a href="{html.escape(w.name)}">{html.escape(w.name)}</a>\n' for w in project.glob("*.whl"))
        (project / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    return root


def add_git_repository(root: Path, source: Path, name: str) -> None:
    """A bare repository of ``source`` at ``root/git/<name>.git``, ready for Git's dumb HTTP protocol."""
    work = root / "git-work" / name
    shutil.copytree(source, work, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "HOME": str(root)}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": "/usr/bin:/bin"}
    for args in (["init", "--quiet", "--initial-branch=main"], ["add", "."], ["commit", "--quiet", "-m", "v1"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, timeout=60)
    bare = root / "git" / f"{name}.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(work), str(bare)], env=env, check=True, timeout=60)
    subprocess.run(["git", "update-server-info"], cwd=bare, env=env, check=True, timeout=60)


@contextmanager
def serve_index(root: Path, host: str) -> Iterator[str]:
    """Serve ``root`` over HTTP on ``host`` (a free port); yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="package-index", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class IndexOutage:
    """While ``down`` is set, the index answers 503 to everything (a mirror outage)."""

    down = threading.Event()


class _QuietHandler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if IndexOutage.down.is_set():
            self.send_error(503, "index outage")
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        """Silent: pip's requests are no test output."""


FIXTURE_SOURCES = [FIXTURES / "connector-example", SDK_FIXTURES / "spiff-greeter-connector"]
