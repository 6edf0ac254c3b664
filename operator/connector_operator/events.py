"""Kubernetes Events of a Connector (pure builders): its Ready condition's transitions and its
workload's rollouts, so ``kubectl describe connector`` tells what happened and when.

An Event is posted when Ready changes status or reason (``SecretMissing`` -> ``Ready`` ->
``Unreachable``: three Events; the same failure retried: none), ``Warning`` when it turns False,
``Normal`` otherwise; and when the operator creates a workload or changes its pod template
(``WorkloadCreated``, ``WorkloadRolledOut``: a new spec, or a referenced Secret or ConfigMap that
changed). Messages are the conditions' own, which never hold a value.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from connector_operator import conditions as cond
from connector_proxy.contract import API_VERSION, GROUP, KIND

COMPONENT = "connector-operator"
TEMPLATE_HASH_ANNOTATION = f"{GROUP}/template-hash"  # on the Deployment: its pod template as last applied
MAX_MESSAGE = 1024


def template_hash(deployment: Mapping[str, Any]) -> str:
    """A digest of a desired Deployment's pod template (what a rollout changes)."""
    template = deployment["spec"]["template"]
    return hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def ready_transition(
    before: Sequence[Mapping[str, Any]] | None, after: Sequence[Mapping[str, Any]]
) -> tuple[str, str, str] | None:
    """``(type, reason, message)`` of the Event for Ready's change from ``before`` to ``after``, if any."""
    old = next((c for c in before or () if c.get("type") == cond.READY), None)
    new = next((c for c in after if c.get("type") == cond.READY), None)
    if new is None:
        return None
    if old is not None and (old.get("status"), old.get("reason")) == (new.get("status"), new.get("reason")):
        return None
    kind = "Warning" if new.get("status") == "False" else "Normal"
    return kind, str(new.get("reason") or "Unknown"), str(new.get("message") or "")


def rollout(
    current: Mapping[str, Any] | None, desired: Mapping[str, Any], secrets_changed: bool
) -> tuple[str, str] | None:
    """``(reason, message)`` of the Event for applying ``desired`` over ``current``, if it changes pods."""
    name = desired["metadata"]["name"]
    if current is None:
        return "WorkloadCreated", f"Created Deployment {name}."
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    if annotations.get(TEMPLATE_HASH_ANNOTATION) == desired["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]:
        return None
    why = "a referenced Secret or ConfigMap changed" if secrets_changed else "the Connector's spec changed"
    return "WorkloadRolledOut", f"Deployment {name} rolls out new pods: {why}."


def build_event(
    *, namespace: str, name: str, uid: str, kind: str, reason: str, message: str, at: datetime.datetime | None = None
) -> dict[str, Any]:
    """A core/v1 Event about Connector ``namespace/name``."""
    stamp = (at or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": {"apiVersion": API_VERSION, "kind": KIND, "name": name, "namespace": namespace, "uid": uid},
        "type": kind,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname()[:128],
    }
