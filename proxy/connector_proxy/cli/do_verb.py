"""``connector-proxy do <id> key=value ...``: run one command here, as the proxy would, and print the envelope.

The command runs inside the proxy app itself (its lifespan entered, the request handled in process,
no port opened), so parameter binding and validation, the envelope, the error codes and the
``config`` mapping are those of ``serve``. A value is read as JSON when it is JSON (``days=3`` is a
number, ``tags='["a","b"]'`` a list) and as a string otherwise (``city=Lyon``); ``--params`` gives
them all as one JSON object instead.

Exit status: 0 when the command succeeded, 1 when it answered an error (a dispatch error or the
envelope's ``error``), 2 for a bad invocation or bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx

from connector_proxy.app import create_app
from connector_proxy.cli.settings_errors import USAGE_ERROR, settings_or_exit
from connector_proxy.contract import API_KEY_HEADER
from connector_proxy.in_process import post_in_process
from connector_proxy.settings import Settings

FAILED = 1


class UsageError(ValueError):
    """A ``key=value`` or JSON argument that cannot be used."""


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parameters(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """The parameters from ``--params`` then ``key=value`` pairs (later ones win)."""
    found: dict[str, Any] = {}
    if params_json is not None:
        loaded = _value(params_json)
        if not isinstance(loaded, dict):
            raise UsageError("--params must be a JSON object")
        found.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{pair!r} is not key=value")
        found[key] = _value(value)
    return found


def request_body(params: dict[str, Any], task_data: str | None) -> dict[str, Any]:
    body = dict(params)
    if task_data is not None:
        data = _value(task_data)
        if not isinstance(data, dict):
            raise UsageError("--task-data must be a JSON object")
        body["spiff__task_data"] = data
    return body


def succeeded(response: httpx.Response) -> bool:
    if not response.is_success:
        return False
    try:
        return response.json().get("error") is None
    except ValueError:
        return False


def do(args: argparse.Namespace) -> int:
    try:
        body = request_body(parameters(args.pairs, args.params), args.task_data)
    except UsageError as error:
        print(f"connector-proxy do: {error}", file=sys.stderr)
        return USAGE_ERROR
    settings = settings_or_exit(Settings, "CONNECTOR_PROXY_")
    # Only this process's connectors, never Connector resources: a local run.
    local = settings.model_copy(update={"kubernetes": False, "callers_file": None})
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    headers = {API_KEY_HEADER: api_key} if api_key else {}
    response = asyncio.run(post_in_process(create_app(local), f"/v1/do/{args.id}", body, headers))
    try:
        shown: Any = response.json()
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    except ValueError:
        print(response.text)
    if response.status_code == 404:
        print(f"connector-proxy do: no command {args.id}; `connector-proxy commands` lists them", file=sys.stderr)
    return 0 if succeeded(response) else FAILED
