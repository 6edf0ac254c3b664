"""Connector specs the CRD refuses and accepts: checked offline (``test_crd.py``: jsonschema, CEL,
parse_spec) and by the real API server (``tests/e2e/test_admission.py``)."""

from __future__ import annotations

from typing import Any

PIP = {"pip": {"requirements": ["connector-example==1.0"]}}
IMAGE = {"image": {"ref": "registry.example.com/c@sha256:" + "a" * 64}}
URL = {"url": {"endpoint": "https://proxy.example.com"}}
SECRET_KEY = {"secretKeyRef": {"name": "s", "key": "k"}}

REJECTED_BY_SCHEMA: dict[str, dict[str, Any]] = {
    "no spec.source": {},
    "two sources": {"source": {**PIP, **URL}},
    "three sources": {"source": {**PIP, **IMAGE, **URL}},
    "no source kind": {"source": {}},
    "unknown source kind": {"source": {"git": {"repo": "x"}}},
    "empty requirements": {"source": {"pip": {"requirements": []}}},
    "requirement as an option": {"source": {"pip": {"requirements": ["--index-url=https://evil"]}}},
    "index url scheme": {"source": {"pip": {"requirements": ["a"], "indexUrl": "ftp://x"}}},
    "image without ref": {"source": {"image": {"port": 7004}}},
    "image port": {"source": {"image": {"ref": "a/b:1", "port": 70000}}},
    "url scheme": {"source": {"url": {"endpoint": "ftp://proxy.example.com"}}},
    "api key ref without key": {"source": {"url": {"endpoint": "https://p.example", "apiKeySecretRef": {"name": "s"}}}},
    "config name": {"source": IMAGE, "config": [{"name": "1-bad", "value": "v"}]},
    "config without name": {"source": IMAGE, "config": [{"value": "v"}]},
    "config value not a string": {"source": IMAGE, "config": [{"name": "N", "value": 5}]},
    "config secret ref without key": {
        "source": IMAGE,
        "config": [{"name": "N", "valueFrom": {"secretKeyRef": {"name": "s"}}}],
    },
    "configFrom without a source": {"source": IMAGE, "configFrom": [{}]},
    "configFrom with a Secret and a ConfigMap": {
        "source": IMAGE,
        "configFrom": [{"secretRef": {"name": "s"}, "configMapRef": {"name": "c"}}],
    },
    "configMapRef without name": {"source": IMAGE, "configFrom": [{"configMapRef": {}}]},
    "valueFrom with neither": {"source": IMAGE, "config": [{"name": "N", "valueFrom": {}}]},
    "valueFrom with both": {
        "source": IMAGE,
        "config": [{"name": "N", "valueFrom": {**SECRET_KEY, "configMapKeyRef": {"name": "c", "key": "k"}}}],
    },
    "config map key ref without key": {
        "source": IMAGE,
        "config": [{"name": "N", "valueFrom": {"configMapKeyRef": {"name": "c"}}}],
    },
    "negative replicas": {"source": IMAGE, "replicas": -1},
    "replicas as string": {"source": IMAGE, "replicas": "2"},
    "timeout zero": {"source": IMAGE, "timeoutSeconds": 0},
    "timeout too long": {"source": IMAGE, "timeoutSeconds": 3601},
    "concurrency": {"source": IMAGE, "concurrency": 0},
    "suspend as string": {"source": IMAGE, "suspend": "true"},
    "resource quantity": {"source": IMAGE, "resources": {"limits": {"memory": "lots"}}},
    "resources unknown field": {"source": IMAGE, "resources": {"claims": []}},
    "unknown spec field": {"source": IMAGE, "replica": 2},
    "snake_case field": {"source": IMAGE, "timeout_seconds": 5},
    "secret name": {"source": IMAGE, "configFrom": [{"secretRef": {"name": "Not_A_Name"}}]},
    "toleration operator": {"source": IMAGE, "workload": {"tolerations": [{"key": "k", "operator": "In"}]}},
    "relative mount path": {"source": IMAGE, "workload": {"volumeMounts": [{"name": "ca", "mountPath": "etc/ca"}]}},
    "volume without name": {"source": IMAGE, "workload": {"volumes": [{"configMap": {"name": "ca"}}]}},
    "service account name": {"source": IMAGE, "workload": {"serviceAccountName": "Not_A_Name"}},
    "unknown workload field": {"source": IMAGE, "workload": {"hostNetwork": True}},
}

REJECTED_BY_CEL: dict[str, dict[str, Any]] = {
    "config entry with value and valueFrom": {
        "source": IMAGE,
        "config": [{"name": "N", "value": "v", "valueFrom": SECRET_KEY}],
    },
    "config entry with neither": {"source": IMAGE, "config": [{"name": "N"}]},
    "credentials in indexUrl": {"source": {"pip": {"requirements": ["a"], "indexUrl": "https://u:p@pypi.example/s"}}},
    "credentials in extraIndexUrls": {
        "source": {"pip": {"requirements": ["a"], "extraIndexUrls": ["https://token@pypi.example/simple"]}}
    },
}

ACCEPTED: dict[str, dict[str, Any]] = {
    "minimal pip": {"source": PIP},
    "minimal image": {"source": IMAGE},
    "minimal url": {"source": URL},
    "full pip": {
        "source": {
            "pip": {
                "requirements": [
                    "connector-a[extra]>=1; python_version >= '3.11'",
                    "b @ git+https://github.com/o/b.git@v1",
                ],
                "indexUrl": "https://pypi.internal.example/simple",
                "extraIndexUrls": ["https://pypi.org/simple"],
                "credentialsSecretRef": {"name": "index", "usernameKey": "user", "passwordKey": "token"},
            }
        },
        "config": [
            {"name": "A", "value": ""},
            {"name": "_b", "valueFrom": SECRET_KEY},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "c"}}},
        ],
        "configFrom": [{"secretRef": {"name": "more.secrets"}}, {"configMapRef": {"name": "defaults"}}],
        "replicas": 0,
        "resources": {"requests": {"cpu": "100m", "memory": 134217728}, "limits": {"cpu": 1, "memory": "1Gi"}},
        "timeoutSeconds": 2.5,
        "concurrency": 1024,
        "suspend": True,
    },
    "full workload": {
        "source": IMAGE,
        "workload": {
            "serviceAccountName": "crm-connector",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "connectors", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                        ]
                    }
                }
            },
            "podLabels": {"team": "crm"},
            "podAnnotations": {"example.com/owner": "crm"},
            "imagePullSecrets": [{"name": "regcred"}],
            "volumes": [{"name": "ca", "configMap": {"name": "corporate-ca"}}],
            "volumeMounts": [{"name": "ca", "mountPath": "/etc/corporate-ca", "readOnly": True}],
        },
    },
}
