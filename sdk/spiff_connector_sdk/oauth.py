"""Refreshing OAuth2 token sets inside commands (``pip install 'spiff-connector-sdk[oauth]'``).

spiff-arena stores the token set of an authentication (``<connector>/<Auth>``) as a secret and
hands it to commands as a parameter value (a JSON string). A command refreshes an expired one
and returns the new set under ``refreshed_token_set`` in its body, as legacy connectors do, so
spiff-arena can store it back::

    from spiff_connector_sdk.oauth import load_token, refresh_if_expired

    @connector.command("ListInvoices")
    async def list_invoices(ctx: Context, access_token: Annotated[str, Param(secret=True)]) -> Result:
        token = load_token(access_token)
        refreshed = await refresh_if_expired(
            token,
            token_url="https://identity.xero.com/connect/token",
            client_id=ctx.config["XERO_CLIENT_ID"],
            client_secret=ctx.config["XERO_CLIENT_SECRET"],
        )
        token = refreshed or token
        ...
        body = {"invoices": invoices}
        if refreshed:
            body["refreshed_token_set"] = refreshed
        return Result(body=body)

The module imports without the extra; the functions that talk to a provider need ``authlib`` and
``httpx`` (the ``oauth`` extra). Errors are raised as :class:`~spiff_connector_sdk.CommandError`
with code ``oauth_refresh_failed`` and never carry token or secret text.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from typing import Any

from spiff_connector_sdk.result import CommandError

REFRESH_FAILED = "oauth_refresh_failed"
INVALID_TOKEN = "oauth_invalid_token"  # noqa: S105 - an error code


def load_token(token: Mapping[str, Any] | str) -> dict[str, Any]:
    """A token set as a dict; accepts the JSON string spiff-arena stores."""
    if isinstance(token, str):
        try:
            loaded = json.loads(token)
        except ValueError:
            raise CommandError(INVALID_TOKEN, "The token set is not valid JSON.") from None
    else:
        loaded = token
    if not isinstance(loaded, Mapping):
        raise CommandError(INVALID_TOKEN, "The token set is not a JSON object.")
    return dict(loaded)


def token_expired(token: Mapping[str, Any], *, leeway: float = 60) -> bool | None:
    """Whether the token expires within ``leeway`` seconds; ``None`` when it carries no
    ``expires_at`` (the proxy adds ``expires_at`` to every token set it obtains)."""
    expires_at = token.get("expires_at")
    if isinstance(expires_at, str) and expires_at.isdigit():
        expires_at = int(expires_at)
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        return None
    return expires_at - leeway < time.time()


def _client_class() -> Any:
    try:
        import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401  (registers its warning filter first)

        with warnings.catch_warnings():
            # authlib >= 1.9 prefers the httpx2 package and warns when it falls back to httpx.
            warnings.simplefilter("ignore", DeprecationWarning)
            from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "spiff_connector_sdk.oauth needs authlib and httpx: pip install 'spiff-connector-sdk[oauth]'"
        ) from error
    return AsyncOAuth2Client


async def refresh_token(
    token: Mapping[str, Any] | str,
    *,
    token_url: str,
    client_id: str,
    client_secret: str | None = None,
    token_endpoint_auth_method: str | None = None,
    request_timeout: float = 15.0,
) -> dict[str, Any]:
    """Exchange the token set's ``refresh_token`` for a new token set (always).

    The new set keeps the old ``refresh_token`` when the provider does not rotate it, and carries
    ``expires_at`` when the provider tells ``expires_in``.
    """
    current = load_token(token)
    refresh = current.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise CommandError(REFRESH_FAILED, "The token set has no refresh_token; connect the account again.")
    client_class = _client_class()
    try:
        async with client_class(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=token_endpoint_auth_method,
            token=current,
            timeout=request_timeout,
        ) as client:
            new_token = await client.refresh_token(token_url, refresh_token=refresh)
    except Exception as error:
        # Never the exception text: it may quote the provider's answer or the request.
        reason = getattr(error, "error", None)
        detail = f" ({reason})" if isinstance(reason, str) and reason.isidentifier() else ""
        raise CommandError(
            REFRESH_FAILED, f"The provider did not refresh the token: {type(error).__name__}{detail}."
        ) from None
    return dict(new_token)


async def refresh_if_expired(
    token: Mapping[str, Any] | str,
    *,
    token_url: str,
    client_id: str,
    client_secret: str | None = None,
    leeway: float = 60,
    token_endpoint_auth_method: str | None = None,
    request_timeout: float = 15.0,
) -> dict[str, Any] | None:
    """A new token set when ``token`` expires within ``leeway`` seconds, else ``None``.

    A token set without ``expires_at`` is taken as still valid (``None``): call
    :func:`refresh_token` when the provider answers 401 instead.
    """
    current = load_token(token)
    if not token_expired(current, leeway=leeway):
        return None
    return await refresh_token(
        current,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method=token_endpoint_auth_method,
        request_timeout=request_timeout,
    )
