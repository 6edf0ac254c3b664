"""The OAuth2 authorization-code flow with PKCE, on authlib (no hand-written OAuth).

``authorization_url`` builds the provider redirect; ``exchange_code`` redeems the code at the token
endpoint with ``authlib.integrations.httpx_client.AsyncOAuth2Client``. Secrets, codes and tokens
never reach a log record or an error message: failures are reported by class name and the
provider's RFC 6749 error code only.

authlib is imported by the first flow, not with this module: with its JOSE and key-type modules it
is a tenth of the start-up of a proxy that may never run a flow.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from typing import Any

from connector_proxy.auths import AuthEntry
from connector_proxy.execution import Runtime, exception_summary, in_thread
from connector_proxy.logging_setup import OAUTH_CHANNEL
from connector_proxy.oauth.clients import OAuthClientConfig, description_client_config, sdk_client_config
from connector_proxy.oauth.errors import OAuthErrorCode, OAuthFlowError
from spiff_connector_sdk import AuthSpec

logger = logging.getLogger(OAUTH_CHANNEL)

TOKEN_TIMEOUT = 15.0
DESCRIPTION_TIMEOUT = 10.0
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def _authlib() -> None:
    """Import authlib as this module always has: its deprecation filter registered first, and its
    warning that it falls back to httpx (ours) rather than the httpx2 package silenced."""
    import authlib.deprecate  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import authlib.integrations.httpx_client  # type: ignore[import-untyped]  # noqa: F401


def safe_error_code(value: object) -> str | None:
    """A provider's ``error`` value when it looks like an RFC 6749 error code, else ``None``."""
    return value if isinstance(value, str) and _ERROR_CODE.match(value) else None


def new_code_verifier() -> str:
    """A PKCE code verifier (RFC 7636: 43-128 unreserved characters)."""
    _authlib()
    from authlib.common.security import generate_token  # type: ignore[import-untyped]

    verifier: str = generate_token(64)
    return verifier


async def client_config(entry: AuthEntry, runtime: Runtime) -> OAuthClientConfig:
    """The OAuth client of an in-process auth: an SDK ``AuthSpec`` or a community class."""
    target = entry.target
    if isinstance(target, AuthSpec):
        return sdk_client_config(entry.id, target, runtime.config)
    if isinstance(target, type) and callable(getattr(target, "app_description", None)):
        cls: type[Any] = target

        def describe() -> object:
            # As the reference proxy does: no constructor arguments, the config mapping.
            return cls().app_description(runtime.config)

        try:
            async with asyncio.timeout(DESCRIPTION_TIMEOUT):
                description = await in_thread(runtime, describe)
        except Exception as exc:
            logger.warning(
                "oauth app_description failed", extra={"auth": entry.id, "exception": exception_summary(exc)}
            )
            raise OAuthFlowError(
                500,
                OAuthErrorCode.OAUTH_NOT_CONFIGURED,
                f"Authentication {entry.id} could not describe its provider ({type(exc).__name__}); "
                "check the connector's configuration.",
            ) from None
        return description_client_config(entry.id, description, runtime.config)
    raise OAuthFlowError(
        400, OAuthErrorCode.OAUTH_NOT_SUPPORTED, f"Authentication {entry.id} has no OAuth2 browser flow."
    )


def authorization_url(client: OAuthClientConfig, *, callback_url: str, state: str, code_verifier: str | None) -> str:
    """Where the browser goes to sign in: the provider's authorization endpoint with client id,
    redirect URI, scope, state and (with PKCE) the S256 code challenge."""
    _authlib()
    from authlib.oauth2.client import OAuth2Client  # type: ignore[import-untyped]

    oauth = OAuth2Client(
        None,
        client_id=client.client_id,
        scope=client.scope,
        redirect_uri=callback_url,
        code_challenge_method="S256" if client.pkce else None,
    )
    url, _ = oauth.create_authorization_url(
        client.authorization_url,
        state=state,
        code_verifier=code_verifier if client.pkce else None,
        **dict(client.authorize_params),
    )
    return str(url)


async def exchange_code(
    client: OAuthClientConfig, *, code: str, callback_url: str, code_verifier: str | None
) -> dict[str, Any]:
    """Redeem ``code`` at the token endpoint; the token set (with ``expires_at`` when the
    provider gives ``expires_in``). Failures are ``oauth_token_exchange_failed`` (502)."""
    _authlib()
    from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    extra: dict[str, str] = dict(client.token_params)
    if client.pkce and code_verifier:
        extra["code_verifier"] = code_verifier
    try:
        async with AsyncOAuth2Client(
            client_id=client.client_id,
            client_secret=client.client_secret,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            redirect_uri=callback_url,
            timeout=TOKEN_TIMEOUT,
            follow_redirects=False,
        ) as oauth:
            token = await oauth.fetch_token(client.token_url, grant_type="authorization_code", code=code, **extra)
    except OAuthError as error:
        reason = safe_error_code(getattr(error, "error", None)) or "unknown"
        logger.warning("oauth token exchange refused", extra={"auth": client.auth_id, "oauth_error": reason})
        raise OAuthFlowError(
            502,
            OAuthErrorCode.TOKEN_EXCHANGE_FAILED,
            f"The provider refused to issue tokens for {client.auth_id} ({reason}); start the sign-in again.",
        ) from None
    except Exception as error:
        # Never the exception's text: it may quote the token endpoint's answer or request.
        logger.warning("oauth token exchange failed", extra={"auth": client.auth_id, "exception": type(error).__name__})
        raise OAuthFlowError(
            502,
            OAuthErrorCode.TOKEN_EXCHANGE_FAILED,
            f"The provider's token endpoint failed for {client.auth_id} ({type(error).__name__}).",
        ) from None
    if not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
        logger.warning("oauth token response without access_token", extra={"auth": client.auth_id})
        raise OAuthFlowError(
            502,
            OAuthErrorCode.TOKEN_EXCHANGE_FAILED,
            f"The provider's token endpoint gave no access_token for {client.auth_id}.",
        )
    return dict(token)
