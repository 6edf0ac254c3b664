"""ServiceAccount-style tokens for tests: real ES256/RS256 JWTs and the caller policy that accepts them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "spiff-connector-workloads"
PROXY_SA = "system:serviceaccount:spiff:connector-proxy"
NOW = 1_900_000_000


def signing_key(kid: str = "k1", kind: str = "EC") -> ECKey | RSAKey:
    if kind == "RSA":
        return RSAKey.generate_key(2048, parameters={"kid": kid})
    return ECKey.generate_key("P-256", parameters={"kid": kid})


def mint(key: ECKey | RSAKey, **claims: Any) -> str:
    payload = {"iss": ISSUER, "aud": [AUDIENCE], "sub": PROXY_SA, "iat": NOW, "exp": NOW + 600, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    alg = "RS256" if isinstance(key, RSAKey) else "ES256"
    return jwt.encode({"alg": alg, "kid": key.kid}, payload, key)


def write_policy(path: Path, *keys: ECKey | RSAKey, subjects: list[str] | None = None) -> Path:
    public = KeySet(list(keys)).as_dict(private=False)
    policy = {"issuer": ISSUER, "audience": AUDIENCE, "subjects": subjects or [PROXY_SA], "keys": public}
    path.write_text(json.dumps(policy))
    return path
