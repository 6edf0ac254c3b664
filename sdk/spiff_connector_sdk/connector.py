"""A connector: a named set of commands (and authentications)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
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


OAUTH2 = "oauth2"
TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


def _setting_error(key: str, expected: str) -> ValueError:
    return ValueError(f"oauth2 setting {key!r} must be {expected}")


def _url_setting(settings: Mapping[str, Any], key: str) -> str:
    value = settings.get(key)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise _setting_error(key, "an http(s) URL")
    return value


def _key_setting(settings: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = settings.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _setting_error(key, "the name of a config key")
    return value


def _params_setting(settings: Mapping[str, Any], key: str) -> dict[str, str]:
    value = settings.get(key) or {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _setting_error(key, "a mapping of strings to strings")
    return dict(value)


@dataclass(frozen=True)
class OAuth2Settings:
    """An OAuth2 authorization-code (+ PKCE) authentication, as the proxy runs it.

    ``client_id_key`` / ``client_secret_key`` name keys of the proxy's config mapping (the
    credentials themselves never appear in code); ``authorize_params`` are extra query parameters
    of the authorization request (e.g. ``{"prompt": "consent"}``), ``token_params`` extra fields of
    the token request.
    """

    client_id_key: str
    authorization_url: str
    token_url: str
    client_secret_key: str | None = None
    scopes: tuple[str, ...] = ()
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    token_params: Mapping[str, str] = field(default_factory=dict)
    token_endpoint_auth_method: str | None = None
    pkce: bool = True

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> OAuth2Settings:
        """Parse :attr:`AuthSpec.settings`; ``ValueError`` names the first bad setting."""
        scopes = settings.get("scopes", ())
        if isinstance(scopes, str):
            scopes = tuple(scopes.split())
        if not isinstance(scopes, Sequence) or not all(isinstance(s, str) and s and " " not in s for s in scopes):
            raise _setting_error("scopes", "a list of scope names (or one space-separated string)")
        method = settings.get("token_endpoint_auth_method")
        if method is not None and method not in TOKEN_ENDPOINT_AUTH_METHODS:
            raise _setting_error("token_endpoint_auth_method", " or ".join(TOKEN_ENDPOINT_AUTH_METHODS))
        pkce = settings.get("pkce", True)
        if not isinstance(pkce, bool):
            raise _setting_error("pkce", "true or false")
        client_id_key = _key_setting(settings, "client_id_key", required=True)
        assert client_id_key is not None
        return cls(
            client_id_key=client_id_key,
            authorization_url=_url_setting(settings, "authorization_url"),
            token_url=_url_setting(settings, "token_url"),
            client_secret_key=_key_setting(settings, "client_secret_key", required=False),
            scopes=tuple(scopes),
            authorize_params=_params_setting(settings, "authorize_params"),
            token_params=_params_setting(settings, "token_params"),
            token_endpoint_auth_method=method,
            pkce=pkce,
        )


@dataclass(frozen=True)
class AuthSpec:
    """One declared authentication (for example an OAuth2 flow)."""

    name: str
    description: str | None
    kind: str
    settings: dict[str, Any]

    def oauth2_settings(self) -> OAuth2Settings:
        """The settings of a ``kind="oauth2"`` auth; ``ValueError`` when incomplete or invalid."""
        if self.kind != OAUTH2:
            raise ValueError(f"auth {self.name} is of kind {self.kind!r}, not {OAUTH2!r}")
        return OAuth2Settings.from_settings(self.settings)


class Connector:
    """A named group of commands, exposed to the proxy via an entry point."""

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        lifespan: Lifespan | None = None,
        config: type[Any] | None = None,
    ):
        """``config``: the connector's configuration as a model (a pydantic model or a dataclass;
        its field names, or their aliases, are the config keys). The proxy validates the
        config mapping against it when it loads the connector and reports what is missing or
        invalid (in ``/v1/status`` and ``connector-proxy check``) instead of failing the first
        call; commands read the validated instance with :meth:`Context.config_as`."""
        self.name = _check_name("connector", name)
        self.description = description
        self.lifespan = lifespan
        self.config_model = config
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

    def auth(self, name: str, *, kind: str = OAUTH2, description: str | None = None, **settings: Any) -> AuthSpec:
        """Declare an authentication; ``settings`` name the config keys it reads.

        For ``kind="oauth2"`` the proxy runs an authorization-code flow with PKCE from the
        settings of :class:`OAuth2Settings` (see :meth:`oauth2`, the typed form); settings it
        cannot use are reported when the proxy loads the connector and when the flow starts.
        """
        auth_name = _check_name("auth", name)
        if auth_name in self.auths:
            raise ValueError(f"auth {self.name}/{auth_name} is declared twice")
        spec = AuthSpec(name=auth_name, description=description, kind=kind, settings=dict(settings))
        self.auths[auth_name] = spec
        return spec

    def oauth2(
        self,
        name: str,
        *,
        client_id_key: str,
        authorization_url: str,
        token_url: str,
        client_secret_key: str | None = None,
        scopes: Sequence[str] = (),
        description: str | None = None,
        authorize_params: Mapping[str, str] | None = None,
        token_params: Mapping[str, str] | None = None,
        token_endpoint_auth_method: str | None = None,
        pkce: bool = True,
    ) -> AuthSpec:
        """Declare an OAuth2 authorization-code authentication (with PKCE); invalid settings
        raise ``ValueError`` here. spiff-arena then stores the token set as the secret
        ``<connector>/<name>``."""
        settings: dict[str, Any] = {
            "client_id_key": client_id_key,
            "authorization_url": authorization_url,
            "token_url": token_url,
            "client_secret_key": client_secret_key,
            "scopes": list(scopes),
            "authorize_params": dict(authorize_params or {}),
            "token_params": dict(token_params or {}),
            "token_endpoint_auth_method": token_endpoint_auth_method,
            "pkce": pkce,
        }
        OAuth2Settings.from_settings(settings)
        return self.auth(name, kind=OAUTH2, description=description, **settings)

    def __repr__(self) -> str:
        return f"Connector({self.name!r}, commands={sorted(self.commands)})"
