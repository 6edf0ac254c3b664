"""Who may call a connector workload: a Kubernetes ServiceAccount token, bound to an audience and
held by an allowed ServiceAccount (the proxy's, the operator's), checked against the cluster's
public signing keys. The workload holds no secret and needs no API access: the policy is one
JSON file (``CONNECTOR_PROXY_CALLERS_FILE``)::

    {"issuer": "https://kubernetes.default.svc.cluster.local",
     "audience": "spiff-connector-workloads",
     "subjects": ["system:serviceaccount:spiff:connector-proxy"],
     "keys": {"keys": [...]}}          # the API server's /openid/v1/jwks

The file is re-read when it changes (a mounted ConfigMap is swapped by the kubelet); a token's
verdict is kept until it expires, so a caller's steady stream of calls costs one signature check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.types import ASGIApp, Receive, Scope, Send

from connector_proxy.api_key import send_unauthorized
from connector_proxy.secret_files import Stamp, file_stamp

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")  # what Kubernetes signs ServiceAccount tokens with
LEEWAY_SECONDS = 30  # clock skew between the API server and this pod
MAX_CACHED = 1024  # verdicts kept; the callers are a handful of pods
BEARER = "bearer "


class CallerPolicyError(ValueError):
    """The policy file is missing or not a policy."""


@dataclass(frozen=True)
class CallerPolicy:
    issuer: str
    audience: str
    subjects: frozenset[str]
    keys: KeySet

    @classmethod
    def from_mapping(cls, data: Any) -> CallerPolicy:
        try:
            issuer, audience, subjects = data["issuer"], data["audience"], data["subjects"]
            keys = KeySet.import_key_set(data["keys"])
        except (KeyError, TypeError, ValueError, JoseError) as exc:
            raise CallerPolicyError(f"not a caller policy ({type(exc).__name__})") from None
        if not (isinstance(issuer, str) and isinstance(audience, str) and isinstance(subjects, list)):
            raise CallerPolicyError("issuer and audience must be strings, subjects a list")
        return cls(issuer, audience, frozenset(str(s) for s in subjects), keys)

    def subject_of(self, token: str, now: int) -> tuple[str, int]:
        """The allowed subject holding ``token`` and the token's expiry; raises ``JoseError``
        or ``PermissionError``."""
        decoded = jwt.decode(token, self.keys, algorithms=list(ALGORITHMS))
        claims = jwt.JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        claims.validate(decoded.claims)
        subject = str(decoded.claims["sub"])
        if subject not in self.subjects:
            raise PermissionError(subject)
        return subject, int(decoded.claims["exp"])


class CallerCheck:
    """Verifies ``Authorization: Bearer`` values against the policy in ``path``."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: Stamp | None = None
        self._policy: CallerPolicy | None = None
        self._verdicts: dict[bytes, tuple[str, int]] = {}

    def _current(self) -> CallerPolicy | None:
        """The policy, re-read when the file changes; the last good one stays if it breaks."""
        stamp = file_stamp(self.path)
        if stamp is None:
            return self._policy
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._policy = CallerPolicy.from_mapping(json.loads(self.path.read_bytes()))
                    self._verdicts.clear()
                except (OSError, ValueError) as exc:
                    logger.error("caller policy unreadable; keeping the last one", extra={"error": str(exc)})
            return self._policy

    def caller(self, authorization: str | None) -> str | None:
        """The allowed caller presenting ``authorization``, or None (refused)."""
        if not authorization or authorization[: len(BEARER)].lower() != BEARER:
            return None
        token = authorization[len(BEARER) :].strip()
        policy = self._current()
        if policy is None or not token:
            return None
        now = int(self._clock())
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verdicts.get(digest)
        if cached is not None and cached[1] + LEEWAY_SECONDS > now:
            return cached[0]
        try:
            subject, expires = policy.subject_of(token, now)
        except (JoseError, PermissionError, ValueError, KeyError, TypeError) as exc:
            logger.warning("caller refused", extra={"reason": type(exc).__name__})
            return None
        with self._lock:
            if len(self._verdicts) >= MAX_CACHED:
                self._verdicts.clear()
            self._verdicts[digest] = (subject, expires)
        return subject


OPEN_PATHS = frozenset({"/v1/liveness", "/liveness", "/v1/readiness"})  # the kubelet's probes
_AUTHORIZATION = b"authorization"
_REFUSED_BODY = b'{"error":"Missing or invalid caller token: only the connector proxy and its operator call this."}'


class CallerMiddleware:
    """Answers ``401`` to every request but the probes unless it carries the ServiceAccount token
    of an allowed caller (:class:`CallerCheck`)."""

    def __init__(self, app: ASGIApp, check: CallerCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = next((v for k, v in scope["headers"] if k == _AUTHORIZATION), None)
        if self.check.caller(presented.decode("latin-1") if presented is not None else None) is not None:
            await self.app(scope, receive, send)
            return
        await send_unauthorized(send, _REFUSED_BODY, b"Bearer")
