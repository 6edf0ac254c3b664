"""Loading community ``connector_<name>`` packages by the reference proxy's rules.

- every top-level module on ``sys.path`` whose name starts with ``connector_`` is a connector
  named by the rest of the name;
- its ``commands`` (and ``auths``) sub-package's modules are scanned, and every class *defined*
  in one of those modules (not imported into it) is a command ``<name>/<ClassName>``;
- a package or module that fails to import is logged and left out; the rest stay available.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from connector_proxy.auths import AuthEntry
from connector_proxy.commands import ClassCommand
from connector_proxy.docstrings import class_docstring
from connector_proxy.execution import exception_summary
from connector_proxy.loading.results import LoadResult
from connector_proxy.parameters import describe_class_parameters

PLUGIN_PREFIX = "connector_"
# This project's own packages share the prefix but are not connectors.
OWN_PACKAGES = frozenset({"connector_proxy", "connector_operator"})


def community_package_names(paths: Sequence[Path] | None = None) -> list[str]:
    """Top-level ``connector_*`` modules importable from ``sys.path`` (or found in ``paths``), sorted."""
    found = pkgutil.iter_modules([str(p) for p in paths] if paths is not None else None)
    return sorted({m.name for m in found if m.name.startswith(PLUGIN_PREFIX) and m.name not in OWN_PACKAGES})


def _defined_classes(module: types.ModuleType) -> Iterator[type]:
    for _, member in inspect.getmembers(module, inspect.isclass):
        if member.__module__ == module.__name__:
            yield member


def _target_modules(package: types.ModuleType, sub: str, result: LoadResult) -> Iterator[types.ModuleType]:
    path = getattr(package, "__path__", None)
    if path is None:
        return
    if not any(m.name == sub and m.ispkg for m in pkgutil.iter_modules(path)):
        return
    sub_name = f"{package.__name__}.{sub}"
    try:
        sub_package = importlib.import_module(sub_name)
    except Exception as exc:
        result.problem(f"{sub_name} failed to import: {exception_summary(exc)}")
        return
    for info in sorted(pkgutil.iter_modules(sub_package.__path__), key=lambda m: m.name):
        module_name = f"{sub_name}.{info.name}"
        try:
            yield importlib.import_module(module_name)
        except Exception as exc:
            result.problem(f"{module_name} failed to import: {exception_summary(exc)}")


def load_community_package(package_name: str) -> LoadResult:
    result = LoadResult()
    connector = package_name.removeprefix(PLUGIN_PREFIX)
    try:
        package = importlib.import_module(package_name)
    except Exception as exc:
        result.problem(f"{package_name} failed to import: {exception_summary(exc)}")
        return result
    for module in _target_modules(package, "commands", result):
        for cls in _defined_classes(module):
            try:
                result.commands.append(ClassCommand.from_class(connector, cls))
            except Exception as exc:
                result.problem(f"{connector}/{cls.__name__} cannot be described: {exception_summary(exc)}")
    for module in _target_modules(package, "auths", result):
        for cls in _defined_classes(module):
            try:
                signature = describe_class_parameters(cls)
            except Exception as exc:
                result.problem(f"{connector}/{cls.__name__} cannot be described: {exception_summary(exc)}")
                continue
            auth_id = f"{connector}/{cls.__name__}"
            entry = {"id": auth_id, "parameters": [p.catalog_entry() for p in signature.parameters]}
            description = class_docstring(cls).summary
            if description:
                entry["description"] = description
            result.auths.append(AuthEntry(id=auth_id, connector=connector, entry=entry, target=cls))
    return result


def load_community_packages(names: Iterable[str]) -> LoadResult:
    result = LoadResult()
    for name in names:
        result.extend(load_community_package(name))
    return result
