"""The OAuth ``state``: everything the callback needs, sealed, so any replica can finish a flow.

The state travels through the browser and the provider (and may land in their logs), so it is
encrypted and authenticated (Fernet: AES-128-CBC + HMAC-SHA256, key derived with HKDF from
``CONNECTOR_PROXY_OAUTH_STATE_SECRET``). It carries the PKCE ``code_verifier``: were it readable,
whoever saw the callback URL (code + state) could redeem the code, which PKCE exists to prevent.
Encrypted, only a proxy holding the secret can redeem it, and the tokens then go only to the
redirect URL sealed at the start (checked against the allow-list again).
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connector_proxy.oauth.errors import OAuthErrorCode, OAuthFlowError

_VERSION = 1
_HKDF_INFO = b"spiff-connector-proxy oauth state v1"
# A sealed state of a few hundred bytes of redirect URL stays far below this; longer input is junk.
MAX_STATE_LENGTH = 8192
# Canonical URL-safe base64 only (the decoder would otherwise skip stray characters).
_FERNET_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+={0,2}$")


@dataclass(frozen=True)
class FlowState:
    """One flow in progress: which auth, where the browser goes back, the PKCE verifier."""

    auth_id: str
    redirect_url: str = field(repr=False)
    callback_url: str
    code_verifier: str | None = field(repr=False)
    nonce: str
    expires_at: int


def new_nonce() -> str:
    """A flow's random identifier (128 bits, URL-safe: usable in a cookie name and value)."""
    return secrets.token_urlsafe(16)


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class StateCodec:
    """Seals and opens :class:`FlowState` with a secret shared by every replica."""

    def __init__(self, secret: str, ttl: int, *, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("the OAuth state secret is empty")
        self._fernet = _fernet(secret)
        self.ttl = ttl
        self._clock = clock

    def seal(
        self,
        *,
        auth_id: str,
        redirect_url: str,
        callback_url: str,
        code_verifier: str | None,
        nonce: str | None = None,
    ) -> str:
        """The sealed state; ``nonce`` (default: a new one, see :func:`new_nonce`) identifies the flow."""
        expires_at = int(self._clock()) + self.ttl
        payload = {
            "v": _VERSION,
            "a": auth_id,
            "r": redirect_url,
            "c": callback_url,
            "k": code_verifier,
            "n": nonce or new_nonce(),
            "e": expires_at,
        }
        return self._fernet.encrypt(orjson.dumps(payload)).decode("ascii")

    def open(self, token: str) -> FlowState:
        """The state's content; ``oauth_state_invalid`` when it was not sealed with this secret
        (tampered, truncated, another deployment's), ``oauth_state_expired`` past its expiry."""
        if not token or len(token) > MAX_STATE_LENGTH or len(token) % 4 or not _FERNET_TOKEN.match(token):
            raise _invalid()
        try:
            payload = orjson.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, UnicodeEncodeError, orjson.JSONDecodeError):
            raise _invalid() from None
        try:
            if payload["v"] != _VERSION:
                raise _invalid()
            state = FlowState(
                auth_id=_text(payload["a"]),
                redirect_url=_text(payload["r"]),
                callback_url=_text(payload["c"]),
                code_verifier=None if payload["k"] is None else _text(payload["k"]),
                nonce=_text(payload["n"]),
                expires_at=int(payload["e"]),
            )
        except (KeyError, TypeError, ValueError):
            raise _invalid() from None
        if self._clock() > state.expires_at:
            raise OAuthFlowError(
                400,
                OAuthErrorCode.STATE_EXPIRED,
                f"The sign-in took longer than {self.ttl} seconds (CONNECTOR_PROXY_OAUTH_STATE_TTL); start again.",
            )
        return state


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("state field is not a string")
    return value


def _invalid() -> OAuthFlowError:
    return OAuthFlowError(
        400,
        OAuthErrorCode.STATE_INVALID,
        "The OAuth state is missing, altered or was issued by another deployment; start the sign-in again.",
    )
