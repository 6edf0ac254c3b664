"""Kubernetes mode: a step of the browser flow forwarded to the workload that serves the auth.

The workload runs the flow itself; it builds its callback URL on this proxy's public URL from the
X-Forwarded-* headers. Its answer reaches the browser unchanged but for its headers, of which only
the flow's own cookie and a few safe ones pass.
"""

from __future__ import annotations

import logging

import httpx
from starlette.requests import Request
from starlette.responses import Response

from connector_proxy.auths import AuthEntry, RemoteAuthTarget
from connector_proxy.logging_setup import OAUTH_CHANNEL
from connector_proxy.oauth import binding
from connector_proxy.oauth.errors import OAuthErrorCode, OAuthFlowError
from connector_proxy.oauth.redirects import forwarded_headers
from connector_proxy.secret_files import credential_headers

logger = logging.getLogger(OAUTH_CHANNEL)

FORWARD_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Headers of a workload's answer that reach the browser (status and body pass unchanged too).
_PASSED_HEADERS = ("location", "content-type", "cache-control", "pragma", "referrer-policy")


async def forward_step(
    request: Request,
    entry: AuthEntry,
    target: RemoteAuthTarget,
    suffix: str,
    *,
    client: httpx.AsyncClient,
    public_base_url: str,
) -> Response:
    """GET ``<workload>/v1/auth/<id><suffix>`` with the browser's query and flow cookies, over
    ``client`` (the proxy's one pooled client to workloads; it has no client-wide timeout, this
    call has)."""
    url = httpx.URL(f"{target.endpoint}/v1/auth/{entry.id}{suffix}")
    query = request.scope.get("query_string", b"")
    if query:
        url = url.copy_with(query=query)
    headers = forwarded_headers(public_base_url)
    headers.update(credential_headers(target.api_key, target.token))
    cookies = binding.flow_cookies(request.headers.get("cookie"))
    if cookies:
        headers["Cookie"] = cookies
    try:
        answer = await client.get(url, headers=headers, timeout=FORWARD_TIMEOUT)
    except httpx.TimeoutException:
        logger.warning("oauth forward timed out", extra={"auth": entry.id, "endpoint": target.endpoint})
        raise OAuthFlowError(
            504, OAuthErrorCode.CONNECTOR_TIMEOUT, f"The connector serving {entry.id} did not answer in time."
        ) from None
    except httpx.HTTPError as error:
        logger.warning(
            "oauth forward failed",
            extra={"auth": entry.id, "endpoint": target.endpoint, "error": type(error).__name__},
        )
        raise OAuthFlowError(
            503, OAuthErrorCode.CONNECTOR_UNAVAILABLE, f"The connector serving {entry.id} cannot be reached."
        ) from None
    passed = {name: answer.headers[name] for name in _PASSED_HEADERS if name in answer.headers}
    response = Response(content=answer.content, status_code=answer.status_code, headers=passed)
    for cookie in answer.headers.get_list("set-cookie"):
        if cookie.startswith(binding.COOKIE_PREFIX):  # the flow's own cookie, nothing else
            response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
    return response
