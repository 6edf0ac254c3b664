"""The Dockerfile (no Docker engine here: checked by parsing it) and its build context (.dockerignore)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field

import pytest
import yaml

from proxytest.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHART_VALUES = ROOT / "charts" / "connector-proxy" / "values.yaml"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3?-dev|libc6?-dev|cargo|rustc)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """``(ARGs before the first FROM, stages)``; line continuations joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            image = parts[0]
            for name, value in global_args.items():
                image = image.replace("${" + name + "}", value).replace("$" + name, value)
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=image, name=alias))
        elif not stages:
            if keyword == "ARG" and "=" in args:
                name, value = args.split("=", 1)
                global_args[name] = value
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


ARGS, STAGES = parse(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), args
    return value


def test_multi_stage_on_a_slim_python_311_base() -> None:
    assert len(STAGES) >= 2
    for stage in STAGES:
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", stage.base), stage.base
    assert FINAL.base == STAGES[0].base  # the virtualenv is copied between identical interpreters
    build = STAGES[0]
    assert any(args.startswith(f"--from={build.name} /opt/venv") for args in FINAL.all("COPY"))


def test_the_build_stage_installs_the_sdk_the_http_connector_and_the_project_non_editable() -> None:
    runs = " ".join(STAGES[0].all("RUN"))
    install = re.search(r"pip install ([^&]+)", runs)
    assert install is not None
    words = shlex.split(install.group(1))
    assert {"./sdk", "./connectors/http", "."} <= set(words)
    assert "-e" not in words and "--editable" not in words
    copied = [shlex.split(args)[0] for args in STAGES[0].all("COPY")]
    for path in copied:
        assert (ROOT / path).exists(), f"COPY {path}: no such path in the repository"
    assert {"sdk/", "connectors/http/", "pyproject.toml", "proxy/", "operator/"} <= set(copied)


RUNTIME_PACKAGES = {"git"}  # pip Connectors may name "pkg @ git+https://..." requirements


def test_final_stage_has_no_build_tools_and_runs_as_a_non_root_user() -> None:
    for run in FINAL.all("RUN"):
        installs = re.findall(r"\bapt-get install -y --no-install-recommends ([a-z0-9 .+-]+?)(?: \\|&&|$)", run)
        assert bool(installs) == ("apt-get install" in run), f"an install the check cannot read: {run}"
        assert set(" ".join(installs).split()) <= RUNTIME_PACKAGES, f"final stage installs packages: {run}"
        if installs:
            assert "rm -rf /var/lib/apt/lists/*" in run, "the package lists stay out of the image"
        without_apt = re.sub(r"apt-get [^&]*", "", run)
        assert not re.search(r"\b(apk|yum|dnf)\b.*\binstall\b", without_apt), f"final stage installs packages: {run}"
        assert not BUILD_TOOLS.search(run), run
        assert "pip install" not in run
    assert not [args for args in FINAL.all("COPY") if not args.startswith("--from=")], "no source in the final stage"
    user = FINAL.last("USER")
    assert user is not None
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) == 10001, "numeric, non-root (so runAsNonRoot can verify it)"
    assert FINAL.instructions.index(("USER", user)) > max(
        i for i, (kw, _) in enumerate(FINAL.instructions) if kw in ("RUN", "COPY")
    ), "USER comes after every RUN and COPY"
    chart_values = yaml.safe_load(CHART_VALUES.read_text())
    assert chart_values["podSecurity"]["runAsUser"] == int(uid)


def test_entry_point_port_and_healthcheck() -> None:
    assert exec_form(FINAL.last("ENTRYPOINT") or "") == ["connector-proxy"]
    assert exec_form(FINAL.last("CMD") or "") == ["serve"]
    assert FINAL.last("EXPOSE") == "7004"
    healthcheck = FINAL.last("HEALTHCHECK") or ""
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "HEALTHCHECK", "exec")
    assert "/v1/liveness" in argv[2] and "/healthz" in argv[2]
    env = " ".join(FINAL.all("ENV"))
    assert "PATH=/opt/venv/bin:$PATH" in env and "PYTHONDONTWRITEBYTECODE=1" in env


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, ``!`` re-includes, a matched directory covers its
    contents; ``**/`` matches at any depth."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    spans = ["/".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(span, body[3:]) for span in spans)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes)
        if hit:
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("pyproject.toml", False),
        ("README.md", False),
        ("proxy/connector_proxy/app.py", False),
        ("operator/connector_operator/runner.py", False),
        ("sdk/spiff_connector_sdk/__init__.py", False),
        ("connectors/http/pyproject.toml", False),
        (".venv/bin/python", True),
        (".git/config", True),
        (".cache/helm/4.1.4/helm", True),
        ("tests/conftest.py", True),
        ("sdk/spiff_connector_sdk.egg-info/PKG-INFO", True),
        ("proxy/connector_proxy/__pycache__/app.cpython-311.pyc", True),
    ],
)
def test_build_context_holds_only_what_the_image_installs(path: str, ignored: bool) -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert _ignored(path, patterns) is ignored
