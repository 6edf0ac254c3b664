"""What an OAuth2 flow needs, resolved from an auth's declaration and the connector config.

Two declarations lead to the same :class:`OAuthClientConfig`:

- an SDK ``AuthSpec`` of kind ``oauth2`` (:class:`spiff_connector_sdk.OAuth2Settings`): the client
  id and secret are read from the config keys it names;
- a community ``auths/`` class in the reference style: ``Cls().app_description(config)`` returns
  flask-oauthlib ``remote_app`` keywords (``consumer_key``, ``consumer_secret``, ``authorize_url``,
  ``access_token_url``, ``base_url``, ``request_token_params={"scope": ...}``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from connector_proxy.oauth.errors import OAuthErrorCode, OAuthFlowError
from spiff_connector_sdk import AuthSpec
from spiff_connector_sdk.connector import OAUTH2, TOKEN_ENDPOINT_AUTH_METHODS

# Parameters the flow sets itself; a description cannot override them.
_RESERVED_PARAMS = frozenset(
    {
        "client_id",
        "client_secret",
        "code",
        "code_challenge",
        "code_challenge_method",
        "code_verifier",
        "grant_type",
        "redirect_uri",
        "response_type",
        "state",
    }
)


@dataclass(frozen=True)
class OAuthClientConfig:
    auth_id: str
    client_id: str = field(repr=False)
    client_secret: str | None = field(repr=False)
    authorization_url: str
    token_url: str
    scope: str | None = None
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    token_params: Mapping[str, str] = field(default_factory=dict, repr=False)
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105 - a method name
    pkce: bool = True


def _not_configured(auth_id: str, detail: str) -> OAuthFlowError:
    return OAuthFlowError(500, OAuthErrorCode.OAUTH_NOT_CONFIGURED, f"Authentication {auth_id} {detail}")


def _not_supported(auth_id: str, detail: str) -> OAuthFlowError:
    return OAuthFlowError(400, OAuthErrorCode.OAUTH_NOT_SUPPORTED, f"Authentication {auth_id} {detail}")


def _config_value(auth_id: str, config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise _not_configured(
            auth_id, f"needs config key {key} (set CONNECTOR_PROXY_CONFIG__{key} or add it to CONNECTOR_PROXY_CONFIG)."
        )
    return value


def sdk_client_config(auth_id: str, spec: AuthSpec, config: Mapping[str, Any]) -> OAuthClientConfig:
    if spec.kind != OAUTH2:
        raise _not_supported(auth_id, f"is of kind {spec.kind!r}; only 'oauth2' has a browser flow.")
    try:
        settings = spec.oauth2_settings()
    except ValueError as error:
        raise _not_configured(auth_id, f"is declared with invalid settings: {error}.") from None
    client_id = _config_value(auth_id, config, settings.client_id_key)
    secret = _config_value(auth_id, config, settings.client_secret_key) if settings.client_secret_key else None
    method = settings.token_endpoint_auth_method or ("client_secret_basic" if secret else "none")
    return OAuthClientConfig(
        auth_id=auth_id,
        client_id=client_id,
        client_secret=secret,
        authorization_url=settings.authorization_url,
        token_url=settings.token_url,
        scope=" ".join(settings.scopes) or None,
        authorize_params=_params(auth_id, settings.authorize_params, "authorize_params"),
        token_params=_params(auth_id, settings.token_params, "token_params"),
        token_endpoint_auth_method=method,
        pkce=settings.pkce,
    )


def _params(auth_id: str, params: object, name: str) -> dict[str, str]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise _not_configured(auth_id, f"gives {name} that is not a mapping.")
    result: dict[str, str] = {}
    for key, value in params.items():
        if not isinstance(key, str) or key in _RESERVED_PARAMS or value is None:
            continue
        if isinstance(value, list | tuple) and key == "scope":
            value = " ".join(str(v) for v in value)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _not_configured(auth_id, f"gives {name}[{key!r}] that is not a string.")
        result[key] = str(value)
    return result


def _url(auth_id: str, description: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    value = next((description[k] for k in keys if description.get(k)), None)
    if not isinstance(value, str):
        raise _not_configured(auth_id, f"has no {keys[0]} in its app_description.")
    base = description.get("base_url")
    if isinstance(base, str) and base and "://" not in value:
        value = urljoin(base, value)
    if not value.startswith(("https://", "http://")):
        raise _not_configured(auth_id, f"has a {keys[0]} that is not an http(s) URL.")
    return value


def description_client_config(auth_id: str, description: object, config: Mapping[str, Any]) -> OAuthClientConfig:
    """Map a reference-style ``app_description`` (flask-oauthlib ``remote_app`` keywords; the
    OAuth2-style names ``client_id``/``authorization_url``/``token_url``/``scope`` work too)."""
    if not isinstance(description, Mapping):
        raise _not_configured(auth_id, "returned an app_description that is not a mapping.")
    if description.get("request_token_url"):
        raise _not_supported(auth_id, "is an OAuth 1 application (request_token_url); only OAuth 2 is supported.")
    method = str(description.get("access_token_method") or "POST").upper()
    if method != "POST":
        raise _not_supported(auth_id, f"fetches tokens with {method}; only POST (RFC 6749) is supported.")
    client_id = description.get("consumer_key") or description.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise _not_configured(auth_id, "has no client id: its app_description gave no consumer_key (check the config).")
    secret = description.get("consumer_secret") or description.get("client_secret")
    if secret is not None and not isinstance(secret, str):
        raise _not_configured(auth_id, "has a consumer_secret that is not a string.")
    authorize_params = _params(auth_id, description.get("request_token_params"), "request_token_params")
    scope = authorize_params.pop("scope", None) or description.get("scope")
    if isinstance(scope, list | tuple):
        scope = " ".join(str(s) for s in scope)
    if scope is not None and not isinstance(scope, str):
        raise _not_configured(auth_id, "has a scope that is not a string.")
    auth_method = description.get("token_endpoint_auth_method")
    if auth_method not in TOKEN_ENDPOINT_AUTH_METHODS:
        # flask-oauthlib sends the client credentials in the token request's body.
        auth_method = "client_secret_post" if secret else "none"
    return OAuthClientConfig(
        auth_id=auth_id,
        client_id=client_id,
        client_secret=secret or None,
        authorization_url=_url(auth_id, description, ("authorize_url", "authorization_url")),
        token_url=_url(auth_id, description, ("access_token_url", "token_url")),
        scope=scope or None,
        authorize_params=authorize_params,
        token_params=_params(auth_id, description.get("access_token_params"), "access_token_params"),
        token_endpoint_auth_method=str(auth_method),
        pkce=True,
    )


def catalog_metadata(spec: AuthSpec) -> dict[str, Any]:
    """Additive ``/v1/auths`` metadata of an SDK auth: public facts only (no config key names)."""
    entry: dict[str, Any] = {"kind": spec.kind}
    if spec.kind != OAUTH2:
        return entry
    try:
        settings = spec.oauth2_settings()
    except ValueError:
        return entry
    entry.update(
        {
            "flow": "authorization_code",
            "pkce": settings.pkce,
            "scopes": list(settings.scopes),
            "authorization_url": settings.authorization_url,
        }
    )
    return entry
