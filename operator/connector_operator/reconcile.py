"""Reconciling one Connector: workload, availability, discovery, conflicts, status.

Idempotent: every trigger (create, update, resume, timer, Secret change, workload change) runs
the same function, which converges the cluster and the status to the spec. Triggers of one
Connector take turns (:mod:`connector_operator.serial`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from connector_operator import conditions as cond
from connector_operator.callers import CallerKeys, CallerKeysUnavailable, build_callers_config_map
from connector_operator.catalogs import CatalogIndex, lookup
from connector_operator.conditions import Condition, merge_conditions
from connector_operator.discovery import Catalog, DiscoveryError, discover
from connector_operator.events import build_event, ready_transition, rollout
from connector_operator.kube import Kube, NameTaken
from connector_operator.manifests import (
    SECRETS_HASH_ANNOTATION,
    build_catalog_config_map,
    build_deployment,
    build_service,
    endpoint_for,
    secrets_hash,
    without_dropped_keys,
    workload_name,
)
from connector_operator.metrics import OperatorMetrics
from connector_operator.serial import PerKey
from connector_operator.settings import OperatorSettings
from connector_operator.spec import ConnectorSpec, InvalidSpec, parse_spec
from connector_proxy.catalog_map import (
    MAX_COMPRESSED_BYTES,
    catalog_bytes,
    catalog_map_name,
    compress_catalog,
    hash_of,
)
from connector_proxy.contract import Claim, lost_commands

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """Not converged yet (workload starting, discovery failed): try again after ``delay`` seconds."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class SpecRejected(Exception):
    """The spec is invalid; retrying cannot help until the spec changes."""


@dataclass(frozen=True)
class Services:
    kube: Kube
    http: httpx.AsyncClient
    settings: OperatorSettings
    callers: CallerKeys | None = None  # with settings.caller_auth
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    catalogs: CatalogIndex | None = None  # kopf's live index of the catalog ConfigMaps
    turns: PerKey = field(default_factory=PerKey)  # one reconcile of a Connector at a time


@dataclass(frozen=True)
class ConnectorRef:
    namespace: str
    name: str
    uid: str
    generation: int
    created: str
    spec: Mapping[str, Any]
    status: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ConnectorRef:
        meta = body.get("metadata", {})
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 1),
            created=str(meta.get("creationTimestamp") or ""),
            spec=body.get("spec") or {},
            status=body.get("status") or {},
        )


def backoff(retry: int) -> float:
    return float(min(5 * 2 ** max(retry, 0), 300))


async def _write(
    services: Services, ref: ConnectorRef, updates: list[Condition], extra: dict[str, Any] | None = None
) -> None:
    status: dict[str, Any] = {
        "observedGeneration": ref.generation,
        "conditions": merge_conditions(ref.status.get("conditions"), updates, ref.generation),
    }
    status.update(extra or {})
    await services.kube.patch_connector_status(ref.namespace, ref.name, status)
    ready = next((c for c in status["conditions"] if c["type"] == cond.READY), None)
    if ready is not None:
        services.metrics.connector_ready(f"{ref.namespace}/{ref.name}", ready["status"], ready["reason"])
    transition = ready_transition(ref.status.get("conditions"), status["conditions"])
    if transition is not None:
        await _post_event(services, ref, *transition)


async def _post_event(services: Services, ref: ConnectorRef, kind: str, reason: str, message: str) -> None:
    """An Event about the Connector; failing to post one never fails the reconcile."""
    event = build_event(namespace=ref.namespace, name=ref.name, uid=ref.uid, kind=kind, reason=reason, message=message)
    try:
        await services.kube.create_event(event)
    except Exception as error:  # an Event is a courtesy: the status holds the truth
        logger.warning("event not posted", extra={"connector": f"{ref.namespace}/{ref.name}", "reason": reason,
                                                  "error": type(error).__name__})  # fmt: skip


# Withdrawn: no catalog named (an older operator's status.commands and status.auths removed too).
_WITHDRAWN: dict[str, Any] = {
    "commands": None,
    "auths": None,
    "commandCount": 0,
    "authCount": 0,
    "catalogHash": None,
    "catalogConfigMap": None,
    "conflicts": [],
    "conflictCount": 0,
}
MAX_LISTED_CONFLICTS = 20  # in status.conflicts and ConflictFree's message; conflictCount has them all


CONFIG_MAP_KEY_PREFIX = "configmap:"  # no Secret name holds a colon: the two never collide in the hash


async def _secrets_hash(services: Services, ref: ConnectorRef, spec: ConnectorSpec) -> tuple[str, list[str], list[str]]:
    """The rollout hash over every referenced Secret's and ConfigMap's data (envFrom and valueFrom are
    read when a pod starts: a changed value needs a new pod), and the missing Secrets and ConfigMaps."""
    data = {name: await services.kube.secret_data(ref.namespace, name) for name in sorted(spec.referenced_secrets())}
    missing = [name for name, value in data.items() if value is None]
    missing_maps: list[str] = []
    for name in sorted(spec.referenced_config_maps()):
        values = await services.kube.config_map_data(ref.namespace, name)
        data[CONFIG_MAP_KEY_PREFIX + name] = values
        if values is None:
            missing_maps.append(name)
    return secrets_hash(data), missing, missing_maps


async def _api_key(services: Services, ref: ConnectorRef, spec: ConnectorSpec) -> str | None:
    url_source = spec.source.url
    if url_source is None or url_source.api_key_secret_ref is None:
        return None
    secret_ref = url_source.api_key_secret_ref
    data = await services.kube.secret_data(ref.namespace, secret_ref.name)
    if data is None or secret_ref.key not in data:
        raise KeyError(f"Secret {secret_ref.name} (key {secret_ref.key})")
    return data[secret_ref.key]


async def _apply_caller_policy(services: Services, namespace: str) -> None:
    """The workloads' caller policy ConfigMap in ``namespace`` (the keys are read at most every
    few minutes, the ConfigMap merged once after each read: a rotated key reaches every namespace)."""
    keys = services.callers or CallerKeys(services.kube.service_account_issuer)  # the operator passes one
    policy = await keys.policy(services.settings)  # raises CallerKeysUnavailable
    config_map = build_callers_config_map(namespace, policy, services.settings)
    if keys.needs_writing(config_map):
        await services.kube.apply_config_map(config_map)
        keys.written(config_map)


async def _discover(services: Services, endpoint: str, api_key: str | None, token: str | None) -> Catalog:
    """:func:`discover`, counted and timed."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        return await discover(
            services.http, endpoint, api_key=api_key, token=token, timeout=services.settings.discovery_timeout
        )
    except DiscoveryError as error:
        outcome = error.reason
        raise
    finally:
        services.metrics.discoveries.labels(outcome).inc()
        services.metrics.discovery_seconds.observe(time.perf_counter() - started)


def _withdrawn_if_due(ref: ConnectorRef, settings: OperatorSettings, base: dict[str, Any], message: str) -> str:
    """An outage keeps the last discovered commands (they answer 503 connector_unavailable, which
    spiff-arena retries) until ``withdraw_after`` seconds of it, when set: then they are withdrawn
    (404 command_not_found) and the message says so."""
    grace = settings.withdraw_after
    if grace is None or cond.seconds_false(ref.status.get("conditions"), cond.READY) < grace:
        return message
    base.update(_WITHDRAWN)
    return f"{message} Its commands were withdrawn after {grace:g} s (CONNECTOR_OPERATOR_WITHDRAW_AFTER)."


def workload_token(settings: OperatorSettings) -> str | None:
    """The operator's current ServiceAccount token for workloads (the kubelet rotates the file)."""
    if settings.workload_token_file is None:
        return None
    try:
        return settings.workload_token_file.read_text().strip() or None
    except OSError:
        logger.warning("workload token unreadable", extra={"path": str(settings.workload_token_file)})
        return None


def _template_secrets_hash(deployment: Mapping[str, Any] | None) -> str | None:
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(SECRETS_HASH_ANNOTATION)


def _available(deployment: Mapping[str, Any] | None) -> bool:
    status = (deployment or {}).get("status") or {}
    return int(status.get("availableReplicas") or 0) >= 1


async def reconcile(
    services: Services, body: Mapping[str, Any], claims: Iterable[Claim], retry: int = 0
) -> Catalog | None:
    """Converge one Connector. Returns its catalog when Ready; raises RetryLater or SpecRejected.

    Reconciles of one Connector take turns; one that waited for another reads the Connector again,
    since the body it was given predates what the other one wrote (None when it is gone since)."""
    meta = body.get("metadata") or {}
    async with services.turns.hold(f"{meta.get('namespace')}/{meta.get('name')}") as waited:
        if waited:
            fresh = await services.kube.get_connector(meta["namespace"], meta["name"])
            if fresh is None:
                return None
            body = fresh
        return await _timed(services, body, claims, retry)


async def _timed(services: Services, body: Mapping[str, Any], claims: Iterable[Claim], retry: int) -> Catalog | None:
    metrics = services.metrics
    started = time.perf_counter()
    result = "error"
    try:
        catalog = await _reconcile(services, body, claims, retry)
        result = "ready" if catalog is not None else "not_ready"
        return catalog
    except RetryLater:
        result = "retry"
        raise
    except SpecRejected:
        result = "rejected"
        raise
    finally:
        metrics.reconciles.labels(result).inc()
        metrics.reconcile_seconds.observe(time.perf_counter() - started)


async def _reconcile(
    services: Services, body: Mapping[str, Any], claims: Iterable[Claim], retry: int = 0
) -> Catalog | None:
    ref = ConnectorRef.from_body(body)
    settings = services.settings
    try:
        spec = parse_spec(ref.spec)
    except InvalidSpec as error:
        await _write(
            services,
            ref,
            [
                Condition(cond.SPEC_VALID, False, "InvalidSpec", str(error)),
                Condition(cond.READY, False, "InvalidSpec", str(error)),
            ],
            {**_WITHDRAWN, "endpoint": None},
        )
        raise SpecRejected(str(error)) from None

    valid = Condition(cond.SPEC_VALID, True, "Valid", "The spec is valid.")
    base: dict[str, Any] = {"sourceKind": spec.source_kind}
    if "commandCount" not in ref.status:  # never discovered: COMMANDS shows 0, not a blank column
        base.update(_WITHDRAWN)
    if spec.source_kind == "url" and ref.status.get("sourceKind") in ("pip", "image"):
        await services.kube.delete_workload(ref.namespace, workload_name(ref.name), ref.uid)  # switched to url
    if spec.source_kind != "url":
        digest, missing, missing_maps = await _secrets_hash(services, ref, spec)
        if missing:
            message = f"Referenced Secret(s) not found: {', '.join(missing)}."
            await _write(services, ref, [valid, Condition(cond.READY, False, "SecretMissing", message)], base)
            raise RetryLater(message, backoff(retry))
        if missing_maps:
            message = f"Referenced ConfigMap(s) not found: {', '.join(missing_maps)}."
            await _write(services, ref, [valid, Condition(cond.READY, False, "ConfigMapMissing", message)], base)
            raise RetryLater(message, backoff(retry))
        if settings.caller_auth:
            try:
                await _apply_caller_policy(services, ref.namespace)
            except CallerKeysUnavailable as error:
                message = f"The API server's ServiceAccount keys cannot be read: {error}."
                await _write(
                    services, ref, [valid, Condition(cond.READY, False, "CallerKeysUnavailable", message)], base
                )
                raise RetryLater(message, backoff(retry)) from None
        try:
            desired = build_deployment(
                name=ref.name, namespace=ref.namespace, uid=ref.uid, spec=spec, settings=settings, secrets_hash=digest
            )
            current = await services.kube.get_deployment(ref.namespace, workload_name(ref.name))
            await services.kube.apply_deployment(without_dropped_keys(desired, current))
            change = rollout(current, desired, secrets_changed=_template_secrets_hash(current) not in (None, digest))
            if change is not None:
                await _post_event(services, ref, "Normal", *change)
            await services.kube.apply_service(
                build_service(name=ref.name, namespace=ref.namespace, uid=ref.uid, spec=spec, settings=settings)
            )
        except NameTaken as error:
            await _name_taken(services, ref, [valid], base, error, retry)
    endpoint = endpoint_for(ref.name, ref.namespace, spec, settings)
    if ref.status.get("endpoint") not in (None, endpoint):  # moved: the old catalog says nothing of the new one
        base.update(_WITHDRAWN)
    base["endpoint"] = endpoint
    if spec.suspend:
        message = "spec.suspend is true: the workload is scaled to zero and its commands are withdrawn."
        await _write(services, ref, [valid, Condition(cond.READY, False, "Suspended", message)], {**base, **_WITHDRAWN})
        return None

    updates = [valid]
    if spec.source_kind != "url":
        deployment = await services.kube.get_deployment(ref.namespace, workload_name(ref.name))
        if not _available(deployment):
            message = f"Waiting for Deployment {workload_name(ref.name)} to have an available replica."
            message = _withdrawn_if_due(ref, settings, base, message)
            await _write(
                services,
                ref,
                [
                    *updates,
                    Condition(cond.WORKLOAD_AVAILABLE, False, "Progressing", message),
                    Condition(cond.READY, False, "WorkloadUnavailable", message),
                ],
                base,
            )
            raise RetryLater(message, backoff(retry))
        updates.append(Condition(cond.WORKLOAD_AVAILABLE, True, "Available", "The workload has an available replica."))

    try:
        api_key = await _api_key(services, ref, spec)
        token = workload_token(settings) if spec.source_kind != "url" else None
        catalog = await _discover(services, endpoint, api_key, token)
    except KeyError as missing_key:
        message = f"API key not found: {missing_key.args[0]}."
        await _write(services, ref, [*updates, Condition(cond.READY, False, "SecretMissing", message)], base)
        raise RetryLater(message, backoff(retry)) from None
    except DiscoveryError as error:
        message = _withdrawn_if_due(ref, settings, base, error.message)
        await _write(
            services,
            ref,
            [
                *updates,
                Condition(cond.DISCOVERED, False, error.reason, error.message),
                Condition(cond.READY, False, error.reason, message),
            ],
            base,
        )
        raise RetryLater(error.message, backoff(retry)) from None

    count = len(catalog.commands)
    canonical = catalog_bytes(catalog.commands, catalog.auths)
    digest = hash_of(canonical)
    map_name = catalog_map_name(workload_name(ref.name))
    if _catalog_map_stale(services, ref, map_name, digest):  # else it is written already, so it fit
        compressed = compress_catalog(canonical)
        if len(compressed) > MAX_COMPRESSED_BYTES:
            message = (
                f"The catalog of {count} command(s) is {len(compressed)} bytes gzipped, over the "
                f"{MAX_COMPRESSED_BYTES} a catalog ConfigMap may hold: split the connector."
            )
            await _write(
                services,
                ref,
                [
                    *updates,
                    Condition(cond.DISCOVERED, False, "CatalogTooLarge", message),
                    Condition(cond.READY, False, "CatalogTooLarge", message),
                ],
                {**base, **_WITHDRAWN},
            )
            raise RetryLater(message, backoff(retry))
        try:
            await services.kube.apply_config_map(
                build_catalog_config_map(
                    name=ref.name, namespace=ref.namespace, uid=ref.uid, compressed=compressed, digest=digest
                )
            )
        except NameTaken as error:
            await _name_taken(services, ref, updates, {**base, **_WITHDRAWN}, error, retry)

    ids = frozenset(str(c["id"]) for c in catalog.commands)
    lost = lost_commands(Claim(ref.namespace, ref.name, ref.created, ids), claims)
    conflicts = [f"{command_id} is served by {winner}" for command_id, winner in sorted(lost.items())]
    listed = conflicts[:MAX_LISTED_CONFLICTS]
    more = f" and {len(conflicts) - len(listed)} more" if len(conflicts) > len(listed) else ""
    conflict = (
        Condition(cond.CONFLICT_FREE, False, "CommandIdConflict", "; ".join(listed) + more + " (older Connector wins).")
        if conflicts
        else Condition(cond.CONFLICT_FREE, True, "NoConflict", "No other Connector serves these command ids.")
    )
    await _write(
        services,
        ref,
        [
            *updates,
            Condition(cond.DISCOVERED, True, "Discovered", f"{count} command(s), {len(catalog.auths)} auth(s)."),
            conflict,
            Condition(cond.READY, True, "Ready", f"Serving {count - len(lost)} command(s) at {endpoint}."),
        ],
        {
            **base,
            **_without_a_stale_legacy_copy(ref, digest),
            "commandCount": count,
            "authCount": len(catalog.auths),
            "catalogHash": digest,
            "catalogConfigMap": map_name,
            "conflicts": listed,
            "conflictCount": len(conflicts),
        },
    )
    return catalog


async def _name_taken(
    services: Services,
    ref: ConnectorRef,
    updates: list[Condition],
    status: dict[str, Any],
    error: NameTaken,
    retry: int,
) -> NoReturn:
    """An object of the name the Connector's own would have is someone else's: it stays untouched,
    and the Connector says so until it is renamed or removed."""
    message = f"{error}: rename or delete it, or rename the Connector."
    await _write(services, ref, [*updates, Condition(cond.READY, False, "NameTaken", message)], status)
    raise RetryLater(message, backoff(retry))


def _without_a_stale_legacy_copy(ref: ConnectorRef, digest: str) -> dict[str, Any]:
    """An older operator kept the catalog in ``status.commands`` and ``status.auths``, and the proxies
    of its version read it there. While it still is this catalog it stays, so such proxies keep serving
    during an upgrade's rollout (the new ones read the ConfigMap); once the catalog changes it goes."""
    if ref.status.get("catalogHash") == digest:
        return {}
    return {"commands": None, "auths": None}


def _catalog_map_stale(services: Services, ref: ConnectorRef, map_name: str, digest: str) -> bool:
    """Whether the catalog ConfigMap must be (re)written: it does not hold ``digest``. With kopf's index
    of them this sees a deleted or overwritten ConfigMap too; without it (one-off reconciles), the
    status says what was written last."""
    if services.catalogs is not None:
        return lookup(services.catalogs, ref.namespace, map_name, digest) is None
    return ref.status.get("catalogHash") != digest or ref.status.get("catalogConfigMap") != map_name
