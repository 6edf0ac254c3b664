"""``connector-proxy new <name>``: a connector package on the SDK that installs, loads and passes its test.

It writes ``<name>-connector/`` with a ``pyproject.toml`` (the ``connector_proxy.connectors`` entry
point), the package ``<name>_connector`` with one command (``<name>/Hello``), a test calling it
through ``spiff_connector_sdk.testing`` and a README with the next steps. The package name avoids
the ``connector_`` prefix, which is the community packages' convention the proxy scans differently.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from connector_proxy.cli.settings_errors import USAGE_ERROR

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "{title} connector for spiff-arena, served by connector-proxy"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["spiff-connector-sdk", "pydantic>=2"]

[project.optional-dependencies]
# spiff_connector_sdk.testing runs the proxy's own code: the tests need the proxy installed.
test = ["pytest>=8", "spiff-connector-proxy"]

[project.entry-points."connector_proxy.connectors"]
{name} = "{module}:connector"

[tool.setuptools.packages.find]
include = ["{module}*"]

[tool.setuptools.package-data]
{module} = ["py.typed"]
"""

MODULE = '''\
"""{title} connector for spiff-arena: its commands, served by connector-proxy."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from spiff_connector_sdk import Connector, Context, Param, Result


class Config(BaseModel):
    """The config keys the connector reads, checked when the proxy loads it: a missing or invalid
    one shows in /v1/status and `connector-proxy check`, and calls answer connector_misconfigured."""

    model_config = ConfigDict(frozen=True)

    greeting: str = Field("Hello", alias="{env}_GREETING", min_length=1, max_length=50)


connector = Connector("{name}", description="{title}: replace this with what the connector reaches", config=Config)


@connector.command("Hello")
async def hello(
    ctx: Context,
    *,
    name: Annotated[str, Param("Who to greet", examples=("Ada",), schema={{"minLength": 1, "maxLength": 100}})],
    greeting: Annotated[str | None, Param("The greeting; default: config {env}_GREETING, else Hello")] = None,
) -> Result:
    """Greet somebody (replace this with your first real command)."""
    text = greeting or ctx.config_as(Config).greeting
    ctx.log(f"greeted {{len(name)}}-character name")
    return Result(body={{"message": f"{{text}}, {{name}}!"}})
'''

TEST = '''\
"""{name}/Hello called as the proxy calls it (binding, validation, envelope), without a server."""

from spiff_connector_sdk.testing import call

from {module} import connector


def test_hello_greets() -> None:
    answer = call(connector, "Hello", {{"name": "Ada"}}, config={{"{env}_GREETING": "Hi"}})
    assert answer.status == 200
    assert answer.body == {{"message": "Hi, Ada!"}}


def test_a_missing_name_is_refused() -> None:
    answer = call(connector, "Hello", {{}})
    assert (answer.status, answer.error_code) == (400, "missing_parameter")


def test_an_empty_name_breaks_its_schema() -> None:
    assert call(connector, "Hello", {{"name": ""}}).error_code == "invalid_parameter"


def test_an_empty_greeting_in_the_config_is_reported() -> None:
    answer = call(connector, "Hello", {{"name": "Ada"}}, config={{"{env}_GREETING": ""}})
    assert (answer.status, answer.error_code) == (503, "connector_misconfigured")
    assert "{env}_GREETING" in answer.error["message"]
'''

README = """\
# {dist}

{title} connector for spiff-arena, built on `spiff-connector-sdk` and served by connector-proxy.
Its commands: `{name}/Hello`.

## Develop

```sh
pip install -e '.[test]'
pytest                                         # the commands, called as the proxy calls them
connector-proxy check --require {name}/Hello   # the proxy loads the package
connector-proxy do {name}/Hello name=Ada        # one call, its envelope printed
connector-proxy serve --reload                 # a proxy on :7004 following your changes
```

Configuration reaches a command as `ctx.config_as(Config)`, the model in `{module}/__init__.py`
validated when the proxy loads the package (`CONNECTOR_PROXY_CONFIG__{env}_GREETING=Hi` when
serving; a Connector's `configFrom` Secret or ConfigMap in Kubernetes). A missing or invalid key is
reported by `connector-proxy check` and `/v1/status`, and calls answer `503 connector_misconfigured`
until it is fixed. Never take a credential as a parameter: put it in the config.

## In Kubernetes

Publish the package to your index, then a Connector installs it:

```yaml
apiVersion: connectors.spiffworkflow.org/v1alpha1
kind: Connector
metadata:
  name: {name}
spec:
  source:
    pip:
      requirements: ["{dist}==0.1.0"]
```
"""


def files(name: str) -> dict[str, str]:
    """The scaffold's files, by path relative to its directory."""
    module = f"{name}_connector"
    values = {
        "name": name,
        "module": module,
        "dist": f"{name.replace('_', '-')}-connector",
        "title": name.replace("_", " ").title(),
        "env": name.upper(),
    }
    return {
        "pyproject.toml": PYPROJECT.format(**values),
        "README.md": README.format(**values),
        f"{module}/__init__.py": MODULE.format(**values),
        f"{module}/py.typed": "",
        "tests/test_commands.py": TEST.format(**values),
    }


def new(args: argparse.Namespace) -> int:
    if not NAME.match(args.name):
        print(
            f"connector-proxy new: {args.name!r} is not a connector name: lower-case letters, digits and '_', "
            "starting with a letter (at most 40)",
            file=sys.stderr,
        )
        return USAGE_ERROR
    target = Path(args.dir) / f"{args.name.replace('_', '-')}-connector"
    if target.exists():
        print(f"connector-proxy new: {target} exists already; nothing was written", file=sys.stderr)
        return USAGE_ERROR
    for relative, text in files(args.name).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {target}: cd {target} && pip install -e '.[test]' && pytest")
    return 0
