"""The caller policy the operator gives workloads: built from the API server's issuer and keys,
kept in a ConfigMap per namespace, the keys read at most every few minutes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import ECKey, KeySet

from connector_operator.callers import (
    REFRESH_SECONDS,
    CallerKeys,
    CallerKeysUnavailable,
    build_callers_config_map,
    caller_policy,
)
from connector_operator.settings import OperatorSettings
from connector_proxy.callers import CallerPolicy

KEYS = KeySet([ECKey.generate_key("P-256", parameters={"kid": "k"})]).as_dict(private=False)
SETTINGS = OperatorSettings(
    caller_subjects="system:serviceaccount:spiff:proxy,system:serviceaccount:spiff:operator",
    caller_audience="workloads-here",
    callers_configmap="release-callers",
)


def test_the_policy_is_what_the_workload_reads() -> None:
    policy = caller_policy("https://issuer.example", KEYS, SETTINGS)
    parsed = CallerPolicy.from_mapping(policy)
    assert (parsed.issuer, parsed.audience) == ("https://issuer.example", "workloads-here")
    assert parsed.subjects == {"system:serviceaccount:spiff:proxy", "system:serviceaccount:spiff:operator"}


def test_the_config_map_holds_the_policy_as_json() -> None:
    policy = caller_policy("https://issuer.example", KEYS, SETTINGS)
    config_map = build_callers_config_map("team-a", policy, SETTINGS)
    assert (config_map["metadata"]["name"], config_map["metadata"]["namespace"]) == ("release-callers", "team-a")
    assert json.loads(config_map["data"]["callers.json"]) == policy


async def test_the_keys_are_read_at_most_every_few_minutes() -> None:
    calls: list[int] = []
    clock = [1000.0]

    async def fetch() -> tuple[str, dict[str, Any]]:
        calls.append(1)
        return "https://issuer.example", KEYS

    keys = CallerKeys(fetch, clock=lambda: clock[0])
    await keys.policy(SETTINGS)
    clock[0] += REFRESH_SECONDS - 1
    await keys.policy(SETTINGS)
    assert len(calls) == 1
    clock[0] += 1
    await keys.policy(SETTINGS)
    assert len(calls) == 2


async def test_a_failed_read_is_reported_and_tried_again() -> None:
    answers: list[Any] = [CallerKeysUnavailable("HTTP 403"), ("https://issuer.example", KEYS)]

    async def fetch() -> tuple[str, dict[str, Any]]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    keys = CallerKeys(fetch)
    with pytest.raises(CallerKeysUnavailable, match="403"):
        await keys.policy(SETTINGS)
    assert (await keys.policy(SETTINGS))["issuer"] == "https://issuer.example"


def test_caller_subjects_are_read_as_a_list() -> None:
    assert SETTINGS.caller_auth and len(SETTINGS.caller_subjects) == 2
    assert not OperatorSettings().caller_auth


async def test_a_namespace_s_config_map_is_written_once_per_read_of_the_keys() -> None:
    clock = [1000.0]

    async def fetch() -> tuple[str, dict[str, Any]]:
        return "https://issuer.example", KEYS

    keys = CallerKeys(fetch, clock=lambda: clock[0])
    config_map = build_callers_config_map("team-a", await keys.policy(SETTINGS), SETTINGS)
    assert keys.needs_writing(config_map)
    keys.written(config_map)
    assert not keys.needs_writing(build_callers_config_map("team-a", await keys.policy(SETTINGS), SETTINGS))
    assert keys.needs_writing(build_callers_config_map("team-b", await keys.policy(SETTINGS), SETTINGS))
    clock[0] += REFRESH_SECONDS  # the next read writes every namespace again (one deleted meanwhile comes back)
    assert keys.needs_writing(build_callers_config_map("team-a", await keys.policy(SETTINGS), SETTINGS))
