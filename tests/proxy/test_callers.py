"""Caller authentication of a connector workload: ServiceAccount-style tokens (real ES256/RS256
JWTs minted here) checked against a policy file, and the middleware in front of a real proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, RSAKey

from connector_proxy.app import create_app
from connector_proxy.callers import CallerCheck, CallerPolicy, CallerPolicyError
from connector_proxy.settings import Settings
from proxytest.caller_tokens import AUDIENCE, ISSUER, NOW, PROXY_SA, mint, signing_key, write_policy
from proxytest.servers import serve_in_thread


@pytest.fixture
def key() -> ECKey | RSAKey:
    return signing_key()


@pytest.fixture
def check(tmp_path: Path, key: ECKey | RSAKey) -> CallerCheck:
    return CallerCheck(write_policy(tmp_path / "callers.json", key), clock=lambda: NOW)


@pytest.mark.parametrize("kind", ["EC", "RSA"])
def test_an_allowed_callers_token_is_accepted(tmp_path: Path, kind: str) -> None:
    key = signing_key(kind=kind)
    check = CallerCheck(write_policy(tmp_path / "callers.json", key), clock=lambda: NOW)
    assert check.caller(f"Bearer {mint(key)}") == PROXY_SA
    assert check.caller(f"bearer  {mint(key)} ") == PROXY_SA


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": ["kubernetes"]},
        {"aud": None},
        {"iss": "https://elsewhere.example"},
        {"sub": "system:serviceaccount:spiff:intruder"},
        {"sub": None},
        {"exp": NOW - 120},
        {"exp": None},
        {"nbf": NOW + 120},
    ],
    ids=["audience", "no-audience", "issuer", "subject", "no-subject", "expired", "no-expiry", "not-yet"],
)
def test_a_token_failing_a_claim_is_refused(check: CallerCheck, key: ECKey | RSAKey, claims: dict[str, Any]) -> None:
    assert check.caller(f"Bearer {mint(key, **claims)}") is None


def test_a_token_signed_by_another_key_is_refused(check: CallerCheck) -> None:
    assert check.caller(f"Bearer {mint(signing_key('k1'))}") is None


def test_an_unsigned_token_is_refused(check: CallerCheck) -> None:
    header, payload, _ = mint(signing_key()).split(".")
    none_header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    assert check.caller(f"Bearer {none_header}.{payload}.") is None
    assert check.caller(f"Bearer {header}.{payload}.") is None


@pytest.mark.parametrize("value", [None, "", "Bearer ", "Basic dXNlcjpwdw==", "token-without-scheme", "Bearer x.y.z"])
def test_anything_but_a_bearer_token_is_refused(check: CallerCheck, value: str | None) -> None:
    assert check.caller(value) is None


def test_a_verdict_lasts_until_the_token_expires(tmp_path: Path, key: ECKey | RSAKey) -> None:
    now = [NOW]
    check = CallerCheck(write_policy(tmp_path / "callers.json", key), clock=lambda: now[0])
    token = f"Bearer {mint(key)}"
    assert check.caller(token) == PROXY_SA
    now[0] = NOW + 600 + 31  # past expiry and leeway
    assert check.caller(token) is None


def test_a_changed_policy_file_is_read_again(tmp_path: Path, key: ECKey | RSAKey) -> None:
    path = write_policy(tmp_path / "callers.json", key)
    check = CallerCheck(path, clock=lambda: NOW)
    old = f"Bearer {mint(key)}"
    assert check.caller(old) == PROXY_SA
    rotated = signing_key("k2")
    write_policy(tmp_path / "next.json", rotated)
    (tmp_path / "next.json").replace(path)  # as the kubelet swaps a ConfigMap file
    assert check.caller(old) is None  # the cached verdict went with the old keys
    assert check.caller(f"Bearer {mint(rotated)}") == PROXY_SA


def test_a_broken_policy_file_keeps_the_last_good_one(tmp_path: Path, key: ECKey | RSAKey) -> None:
    path = write_policy(tmp_path / "callers.json", key)
    check = CallerCheck(path, clock=lambda: NOW)
    assert check.caller(f"Bearer {mint(key)}") == PROXY_SA
    path.write_text("{not json")
    assert check.caller(f"Bearer {mint(key, iat=NOW + 1)}") == PROXY_SA


def test_without_a_policy_file_nobody_gets_in(tmp_path: Path, key: ECKey | RSAKey) -> None:
    assert CallerCheck(tmp_path / "absent.json", clock=lambda: NOW).caller(f"Bearer {mint(key)}") is None


@pytest.mark.parametrize(
    "data", [{}, {"issuer": ISSUER, "audience": AUDIENCE, "subjects": "one", "keys": {"keys": []}}, [], None]
)
def test_a_malformed_policy_is_named(data: Any) -> None:
    with pytest.raises(CallerPolicyError):
        CallerPolicy.from_mapping(data)


# --- in front of a real proxy ---


@pytest.fixture
def guarded(tmp_path: Path, key: ECKey | RSAKey) -> Iterator[str]:
    settings = Settings(callers_file=write_policy(tmp_path / "callers.json", key))
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_the_probes_stay_open_and_everything_else_needs_a_caller_token(guarded: str, key: ECKey | RSAKey) -> None:
    now = int(time.time())
    token = mint(key, iat=now, exp=now + 600)
    with httpx.Client(base_url=guarded, timeout=30) as http:
        assert http.get("/v1/liveness").status_code == 200
        assert http.get("/v1/readiness").status_code == 200
        for method, path in [("GET", "/v1/commands"), ("GET", "/v1/status"), ("POST", "/v1/do/http/GetRequestV2")]:
            refused = http.request(method, path, json={})
            assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer"), path
            assert "caller token" in refused.json()["error"]
        allowed = http.get("/v1/commands", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200
        assert "http/GetRequestV2" in {c["id"] for c in allowed.json()}
        wrong = http.get(
            "/v1/commands", headers={"Authorization": f"Bearer {mint(signing_key(), iat=now, exp=now + 600)}"}
        )
        assert wrong.status_code == 401
