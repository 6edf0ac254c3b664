"""``connector-proxy`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from connector_proxy.logging_setup import configure_logging
from connector_proxy.serving.supervisor import serve as run_server
from connector_proxy.settings import Settings

S = TypeVar("S", bound=BaseSettings)


def _settings_or_exit(factory: type[S], prefix: str) -> S:
    """Read settings; on a bad value print each offending variable (never its value) and exit 2."""
    try:
        return factory()
    except ValidationError as error:
        print("connector-proxy: invalid settings:", file=sys.stderr)
        for item in error.errors(include_input=False, include_url=False):
            name = prefix + "_".join(str(x) for x in item["loc"]).upper()
            print(f"  {name}: {item['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(args: argparse.Namespace) -> int:
    settings = _settings_or_exit(Settings, "CONNECTOR_PROXY_")
    configure_logging(settings.log_level, settings.log_format)
    run_server(settings, host=args.host or settings.host, port=args.port or settings.port, access_log=args.access_log)
    return 0


def operator(args: argparse.Namespace) -> int:
    from connector_operator.runner import run_operator  # imported only for this sub-command
    from connector_operator.settings import OperatorSettings

    settings = _settings_or_exit(OperatorSettings, "CONNECTOR_OPERATOR_")
    configure_logging(args.log_level, "json")
    asyncio.run(run_operator(settings))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connector-proxy", description="Connector proxy for spiff-arena.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="Run the proxy (settings from CONNECTOR_PROXY_* variables).")
    serve_parser.add_argument("--host", help="Override CONNECTOR_PROXY_HOST.")
    serve_parser.add_argument("--port", type=int, help="Override CONNECTOR_PROXY_PORT.")
    serve_parser.add_argument("--access-log", action="store_true", help="Log every request line.")
    serve_parser.set_defaults(func=serve)
    operator_parser = sub.add_parser(
        "operator", help="Run the Kubernetes operator (settings from CONNECTOR_OPERATOR_* variables)."
    )
    operator_parser.add_argument("--log-level", default="INFO", help="Python log level.")
    operator_parser.set_defaults(func=operator)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
