"""``connector-proxy`` command line: serve, run the operator, and inspect or try the connectors installed here.

Settings come from the ``CONNECTOR_PROXY_*`` variables (``CONNECTOR_OPERATOR_*`` for ``operator``);
an invalid one exits 2 with a message naming it. See docs/configuration.md ("Command line").
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from connector_proxy.cli.do_verb import do
from connector_proxy.cli.inspect_verbs import check, commands, describe
from connector_proxy.cli.scaffold import new
from connector_proxy.cli.settings_errors import settings_or_exit
from connector_proxy.logging_setup import configure_logging
from connector_proxy.serving.supervisor import serve as run_server
from connector_proxy.settings import Settings

DISTRIBUTION = "spiff-connector-proxy"


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown"


def serve(args: argparse.Namespace) -> int:
    settings = settings_or_exit(Settings, "CONNECTOR_PROXY_")
    configure_logging(settings.log_level, settings.log_format)
    run_server(
        settings,
        host=args.host or settings.host,
        port=args.port or settings.port,
        access_log=args.access_log,
        reload=args.reload,
    )
    return 0


def operator(args: argparse.Namespace) -> int:
    from connector_operator.runner import run_operator  # imported only for this sub-command
    from connector_operator.settings import OperatorSettings

    settings = settings_or_exit(OperatorSettings, "CONNECTOR_OPERATOR_")
    configure_logging(args.log_level, "json")
    asyncio.run(run_operator(settings))
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="connector-proxy", description="Connector proxy for spiff-arena.")
    main_parser.add_argument("--version", action="version", version=f"connector-proxy {_version()}")
    sub = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_parser = sub.add_parser("serve", help="Run the proxy (settings from CONNECTOR_PROXY_* variables).")
    serve_parser.add_argument("--host", help="Override CONNECTOR_PROXY_HOST.")
    serve_parser.add_argument("--port", type=int, help="Override CONNECTOR_PROXY_PORT.")
    serve_parser.add_argument("--access-log", action="store_true", help="Log every request line.")
    serve_parser.add_argument(
        "--reload", action="store_true", help="Restart the workers when a connector's source changes (development)."
    )
    serve_parser.set_defaults(func=serve)

    commands_parser = sub.add_parser("commands", help="List the commands installed here, as serve would serve them.")
    commands_parser.add_argument("--json", action="store_true", help="Print the catalog GET /v1/commands answers.")
    commands_parser.set_defaults(func=commands)

    describe_parser = sub.add_parser("describe", help="Describe one command: its parameters and their schemas.")
    describe_parser.add_argument("id", help="The command id, e.g. http/GetRequestV2.")
    describe_parser.add_argument("--json", action="store_true", help="Print its catalog entry.")
    describe_parser.set_defaults(func=describe)

    do_parser = sub.add_parser(
        "do", help="Run one command here, as the proxy would, and print the envelope (exit 1 on an error)."
    )
    do_parser.add_argument("id", help="The command id, e.g. http/GetRequestV2.")
    do_parser.add_argument("pairs", nargs="*", metavar="key=value", help="A parameter; a JSON value is read as JSON.")
    do_parser.add_argument("--params", metavar="JSON", help="All parameters as one JSON object.")
    do_parser.add_argument("--task-data", metavar="JSON", help="The task data (spiff__task_data), a JSON object.")
    do_parser.set_defaults(func=do)

    check_parser = sub.add_parser(
        "check", help="Check the settings and every connector package; exit 1 with the reasons when one is wrong."
    )
    check_parser.add_argument(
        "--require", action="append", default=[], metavar="ID", help="A command id that must be there (repeatable)."
    )
    check_parser.set_defaults(func=check)

    new_parser = sub.add_parser("new", help="Write a connector package on the SDK: one command, its test, a README.")
    new_parser.add_argument("name", help="The connector name (its commands' ids begin <name>/), e.g. acme_crm.")
    new_parser.add_argument("--dir", default=".", help="Where <name>-connector/ is written (default: here).")
    new_parser.set_defaults(func=new)

    operator_parser = sub.add_parser(
        "operator", help="Run the Kubernetes operator (settings from CONNECTOR_OPERATOR_* variables)."
    )
    operator_parser.add_argument("--log-level", default="INFO", help="Python log level.")
    operator_parser.set_defaults(func=operator)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
