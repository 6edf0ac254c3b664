"""The browser OAuth flow: ``GET /v1/auth/{connector}/{auth}`` and ``.../callback``.

spiff-arena sends the user's browser to the first with a ``redirect_url`` (not URL-encoded); the
proxy redirects to the provider with a sealed ``state``; the provider sends the browser to the
callback, which redeems the code and redirects to ``redirect_url`` + ``response=<token set JSON>``.
In Kubernetes mode both requests are forwarded to the connector's workload. These paths are not
behind the API key (a browser cannot send it); the redirect allow-list and the sealed state
protect them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from connector_proxy.auths import AuthEntry, RemoteAuthTarget
from connector_proxy.logging_setup import OAUTH_CHANNEL
from connector_proxy.oauth import binding as oauth_binding
from connector_proxy.oauth.errors import NO_STORE_HEADERS, OAuthErrorCode, OAuthFlowError
from connector_proxy.oauth.flow import (
    authorization_url,
    client_config,
    exchange_code,
    new_code_verifier,
    safe_error_code,
)
from connector_proxy.oauth.forwarding import forward_step
from connector_proxy.oauth.redirects import (
    check_redirect_url,
    describe,
    public_base_url,
    raw_redirect_url,
    with_response,
)
from connector_proxy.oauth.state import StateCodec, new_nonce
from connector_proxy.settings import Settings
from connector_proxy.state import proxy_state

router = APIRouter(tags=["authentication"])
logger = logging.getLogger(OAUTH_CHANNEL)


_AUTH_DOC: dict[int | str, dict[str, Any]] = {
    302: {"description": "Redirect to the provider (start) or to redirect_url with response=<token set> (callback)."},
    400: {
        "description": "oauth_redirect_not_allowed, oauth_state_* (oauth_state_not_bound: another browser), "
        "oauth_provider_error, oauth_not_supported."
    },
    404: {"description": "auth_not_found."},
    500: {"description": "oauth_not_configured."},
    502: {"description": "oauth_token_exchange_failed."},
    503: {"description": "connector_unavailable (Kubernetes mode)."},
    504: {"description": "connector_timeout (Kubernetes mode)."},
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _entry(request: Request, connector: str, auth: str) -> AuthEntry:
    auth_id = f"{connector}/{auth}"
    entry = proxy_state(request).registry.auths.get(auth_id)
    if entry is None:
        raise OAuthFlowError(404, OAuthErrorCode.AUTH_NOT_FOUND, f"No authentication {auth_id} is registered.")
    return entry


def _codec(settings: Settings) -> StateCodec:
    secret = settings.oauth_state_secret.get_secret_value() if settings.oauth_state_secret else ""
    if not secret:
        raise OAuthFlowError(
            500,
            OAuthErrorCode.OAUTH_NOT_CONFIGURED,
            "OAuth flows need CONNECTOR_PROXY_OAUTH_STATE_SECRET (a long random string, the same on every replica).",
        )
    return StateCodec(secret, settings.oauth_state_ttl)


def _redirect(location: str) -> Response:
    return Response(status_code=302, headers={"Location": location, **NO_STORE_HEADERS})


async def _start(request: Request, entry: AuthEntry) -> Response:
    settings = _settings(request)
    redirect_url = check_redirect_url(
        raw_redirect_url(request.scope.get("query_string", b"")), settings.oauth_redirect_allowlist
    )
    codec = _codec(settings)
    client = await client_config(entry, proxy_state(request).runtime)
    callback_url = (
        f"{public_base_url(request, settings.public_url, settings.trusted_proxies)}/v1/auth/{entry.id}/callback"
    )
    verifier = new_code_verifier() if client.pkce else None
    nonce = new_nonce()
    state = codec.seal(
        auth_id=entry.id, redirect_url=redirect_url, callback_url=callback_url, code_verifier=verifier, nonce=nonce
    )
    location = authorization_url(client, callback_url=callback_url, state=state, code_verifier=verifier)
    logger.info("oauth flow started", extra={"auth": entry.id, "redirect": describe(redirect_url)})
    response = _redirect(location)
    if settings.oauth_bind_browser:
        oauth_binding.bind(response, nonce, ttl=settings.oauth_state_ttl, secure=callback_url.startswith("https://"))
    return response


async def _callback(request: Request, entry: AuthEntry) -> Response:
    settings = _settings(request)
    params = request.query_params
    provider_error = params.get("error")
    if provider_error is not None:
        reason = safe_error_code(provider_error) or "unknown"
        logger.info("oauth provider error", extra={"auth": entry.id, "oauth_error": reason})
        raise OAuthFlowError(
            400,
            OAuthErrorCode.PROVIDER_ERROR,
            f"The provider did not authorize {entry.id} ({reason}); nothing was stored. Start again from spiff-arena.",
        )
    flow = _codec(settings).open(params.get("state") or "")
    if flow.auth_id != entry.id:
        raise OAuthFlowError(
            400,
            OAuthErrorCode.STATE_MISMATCH,
            f"This sign-in was started for another authentication, not {entry.id}; start it again.",
        )
    if settings.oauth_bind_browser:
        oauth_binding.check(request, flow)
    # The allow-list may have changed since the flow started (or the secret leaked): check again.
    redirect_url = check_redirect_url(flow.redirect_url, settings.oauth_redirect_allowlist)
    code = params.get("code")
    if not code:
        raise OAuthFlowError(
            400, OAuthErrorCode.PROVIDER_ERROR, f"The provider sent neither a code nor an error for {entry.id}."
        )
    client = await client_config(entry, proxy_state(request).runtime)
    token = await exchange_code(client, code=code, callback_url=flow.callback_url, code_verifier=flow.code_verifier)
    logger.info("oauth flow completed", extra={"auth": entry.id, "redirect": describe(redirect_url)})
    response = _redirect(with_response(redirect_url, orjson.dumps(token).decode()))
    if settings.oauth_bind_browser:
        oauth_binding.release(response, flow.nonce, secure=flow.callback_url.startswith("https://"))
    return response


Step = Callable[[Request, AuthEntry], Awaitable[Response]]


async def _answer(request: Request, connector: str, auth: str, suffix: str, local: Step, refused: str) -> Response:
    """Run a step of the flow here, or forward it to the workload serving the auth; a refusal
    becomes its JSON error page."""
    try:
        entry = _entry(request, connector, auth)
        if isinstance(entry.target, RemoteAuthTarget):
            return await forward_step(
                request,
                entry,
                entry.target,
                suffix,
                client=proxy_state(request).forwarder.client,
                public_base_url=public_base_url(
                    request, _settings(request).public_url, _settings(request).trusted_proxies
                ),
            )
        return await local(request, entry)
    except OAuthFlowError as error:
        logger.info(refused, extra={"auth": f"{connector}/{auth}", "error_code": error.code.value})
        return error.response()


@router.get("/v1/auth/{connector}/{auth}", summary="Start an OAuth2 sign-in (browser)", responses=_AUTH_DOC)
async def start_auth(connector: str, auth: str, request: Request) -> Response:
    return await _answer(request, connector, auth, "", _start, "oauth flow refused")


@router.get("/v1/auth/{connector}/{auth}/callback", summary="Finish an OAuth2 sign-in (browser)", responses=_AUTH_DOC)
async def auth_callback(connector: str, auth: str, request: Request) -> Response:
    return await _answer(request, connector, auth, "/callback", _callback, "oauth callback refused")
