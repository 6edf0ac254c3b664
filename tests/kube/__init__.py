"""Test support for Kubernetes code without a cluster: an in-memory API (kmock 0.8 + the gaps closed), fixtures.

- ``kube.emulator.KubernetesEmulator``: the emulator (also usable as kmock's own ``kmock`` fixture class with the
  ini option ``kmock_cls = kube.KubernetesEmulator``).
- ``kube.fixtures``: the ``kube_emulator`` fixture, ``run_operator`` (kopf in its own thread), ``eventually``.
- ``kube.sample_operator`` and ``kube/widgets-crd.yaml``: a tiny kopf operator and its CRD, for the layer's tests.
"""

from kube.emulator import KubernetesEmulator

__all__ = ["KubernetesEmulator"]
