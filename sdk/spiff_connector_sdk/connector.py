"""A connector: a named set of commands (and authentications)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")

F = TypeVar("F", bound=Callable[..., Any])

Lifespan = Callable[[], AbstractAsyncContextManager[None]]


def _check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid {kind} name {name!r}: use letters, digits, '_', '-', '.'")
    return name


def _doc_summary(func: Callable[..., Any]) -> str | None:
    doc = inspect.getdoc(func)
    return doc.strip() if doc else None


@dataclass(frozen=True)
class CommandSpec:
    """One declared command.

    ``func`` takes a :class:`~spiff_connector_sdk.Context` as its first
    positional argument and the command parameters as keyword arguments. It may
    be ``async def`` (runs on the proxy's event loop: never block in it) or a
    plain function (runs in the proxy's bounded thread pool).
    """

    name: str
    func: Callable[..., Any]
    description: str | None
    accepts_callback: bool = False


@dataclass(frozen=True)
class AuthSpec:
    """One declared authentication (for example an OAuth2 flow)."""

    name: str
    description: str | None
    kind: str
    settings: dict[str, Any]


class Connector:
    """A named group of commands, exposed to the proxy via an entry point."""

    def __init__(self, name: str, *, description: str | None = None, lifespan: Lifespan | None = None):
        self.name = _check_name("connector", name)
        self.description = description
        self.lifespan = lifespan
        self.commands: dict[str, CommandSpec] = {}
        self.auths: dict[str, AuthSpec] = {}

    def command(
        self, name: str | None = None, *, description: str | None = None, accepts_callback: bool = False
    ) -> Callable[[F], F]:
        """Declare a command. The id is ``<connector>/<name>`` (``name`` defaults to
        the function's name). ``accepts_callback=True`` marks a long-running
        command that may return :class:`~spiff_connector_sdk.Accepted`."""

        def register(func: F) -> F:
            command_name = _check_name("command", name or func.__name__)
            if command_name in self.commands:
                raise ValueError(f"command {self.name}/{command_name} is declared twice")
            self.commands[command_name] = CommandSpec(
                name=command_name,
                func=func,
                description=description or _doc_summary(func),
                accepts_callback=accepts_callback,
            )
            return func

        return register

    def auth(self, name: str, *, kind: str = "oauth2", description: str | None = None, **settings: Any) -> AuthSpec:
        """Declare an authentication; ``settings`` name the config keys it reads."""
        auth_name = _check_name("auth", name)
        if auth_name in self.auths:
            raise ValueError(f"auth {self.name}/{auth_name} is declared twice")
        spec = AuthSpec(name=auth_name, description=description, kind=kind, settings=dict(settings))
        self.auths[auth_name] = spec
        return spec

    def __repr__(self) -> str:
        return f"Connector({self.name!r}, commands={sorted(self.commands)})"
