"""The caller policy connector workloads check their callers with (``CONNECTOR_PROXY_CALLERS_FILE``
of ``connector-proxy serve``): the API server's ServiceAccount issuer and public keys, the token
audience and the allowed subjects (the proxy's and the operator's ServiceAccounts), kept in a
ConfigMap in every namespace that has workloads and mounted into them. Public data only: no
workload gets a secret or API access to check a caller."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from connector_operator.settings import OperatorSettings

POLICY_KEY = "callers.json"
MOUNT_DIR = "/etc/spiff-connector-callers"
VOLUME_NAME = "callers"
REFRESH_SECONDS = 300.0  # the keys change only when the cluster rotates its signing key


def caller_policy(issuer: str, keys: dict[str, Any], settings: OperatorSettings) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "audience": settings.caller_audience,
        "subjects": sorted(settings.caller_subjects),
        "keys": keys,
    }


def build_callers_config_map(namespace: str, policy: dict[str, Any], settings: OperatorSettings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": settings.callers_configmap,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/part-of": "spiff-connector-proxy",
                "app.kubernetes.io/managed-by": "connector-operator",
                "app.kubernetes.io/component": "caller-policy",
            },
        },
        "data": {POLICY_KEY: json.dumps(policy, sort_keys=True, separators=(",", ":"))},
    }


def callers_volume(settings: OperatorSettings) -> dict[str, Any]:
    return {"name": VOLUME_NAME, "configMap": {"name": settings.callers_configmap}}


class CallerKeysUnavailable(Exception):
    """The API server's issuer or keys could not be read (the message says why, briefly)."""


class CallerKeys:
    """The issuer and keys, fetched from the API server at most every ``REFRESH_SECONDS``, and the
    ConfigMaps written with them: each namespace's is written once per fetch, not on every
    reconcile of every Connector there (a deleted one is back within ``REFRESH_SECONDS``)."""

    def __init__(
        self, fetch: Callable[[], Awaitable[tuple[str, dict[str, Any]]]], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._cached: tuple[float, str, dict[str, Any]] | None = None
        self._written: dict[str, str] = {}  # namespace -> the policy its ConfigMap got, since the fetch

    async def policy(self, settings: OperatorSettings) -> dict[str, Any]:
        now = self._clock()
        if self._cached is None or now - self._cached[0] >= REFRESH_SECONDS:
            issuer, keys = await self._fetch()
            self._cached = (now, issuer, keys)
            self._written.clear()
        return caller_policy(self._cached[1], self._cached[2], settings)

    def needs_writing(self, config_map: dict[str, Any]) -> bool:
        data: str = config_map["data"][POLICY_KEY]
        return self._written.get(config_map["metadata"]["namespace"]) != data

    def written(self, config_map: dict[str, Any]) -> None:
        self._written[config_map["metadata"]["namespace"]] = config_map["data"][POLICY_KEY]
