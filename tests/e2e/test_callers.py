"""Caller authentication against the real API server: tokens from the TokenRequest API, bound to
the workloads' audience, verified with the keys the server publishes (``/openid/v1/jwks``) and the
issuer of its discovery document, as a connector workload checks its callers."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.realkube import RealCluster

from connector_proxy.callers import CallerCheck

AUDIENCE = "spiff-connector-workloads"


async def service_account_token(kube: RealCluster, name: str, audiences: list[str]) -> str:
    await kube.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": kube.namespace}}
    )
    path = kube.path("v1", "ServiceAccount", kube.namespace, name) + "/token"
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": audiences, "expirationSeconds": 600},
    }
    token: str = (await kube.request("POST", path, request))["status"]["token"]
    return token


async def test_a_real_service_account_token_is_verified_with_the_published_keys(
    kube: RealCluster, tmp_path: Path
) -> None:
    discovery = await kube.request("GET", "/.well-known/openid-configuration")
    keys = await kube.request("GET", "/openid/v1/jwks", accept="application/jwk-set+json")
    proxy = f"system:serviceaccount:{kube.namespace}:connector-proxy"
    policy = {"issuer": discovery["issuer"], "audience": AUDIENCE, "subjects": [proxy], "keys": keys}
    path = tmp_path / "callers.json"
    path.write_text(json.dumps(policy))
    check = CallerCheck(path)

    allowed = await service_account_token(kube, "connector-proxy", [AUDIENCE])
    other_audience = await service_account_token(kube, "connector-proxy-api", ["https://kubernetes.default.svc"])
    stranger = await service_account_token(kube, "stranger", [AUDIENCE])

    assert check.caller(f"Bearer {allowed}") == proxy
    assert check.caller(f"Bearer {other_audience}") is None
    assert check.caller(f"Bearer {stranger}") is None
