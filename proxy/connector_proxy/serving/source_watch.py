"""``serve --reload``: new workers when a connector's source changes, for connector development.

The supervisor watches the source of the connector packages it would load (with ``watchfiles``):
each SDK entry point's top-level package and each community ``connector_*`` package, wherever it
is imported from, except installed copies in a ``site-packages`` (pip changes those, and the package
watch sees it). On a change to a ``.py`` file it reloads gracefully, as on ``SIGHUP``: new workers
import the changed code, the old ones finish their calls. It is for a connector author's machine,
not for production.
"""

from __future__ import annotations

import importlib.util
import logging
import pkgutil
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from watchfiles import PythonFilter, watch

from connector_proxy.loading.community import PLUGIN_PREFIX
from connector_proxy.loading.sdk import sdk_entry_points

logger = logging.getLogger(__name__)

_INSTALLED = ("site-packages", "dist-packages")
DEBOUNCE_MS = 300


def _package_location(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _community_locations(directories: Iterable[Path]) -> list[Path]:
    found = []
    for module in pkgutil.iter_modules([str(d) for d in directories]):
        if module.name.startswith(PLUGIN_PREFIX):
            base = Path(getattr(module.module_finder, "path", ""))
            found.append(base / module.name if module.ispkg else base)
    return found


def source_directories(connector_paths: Sequence[Path] = ()) -> list[Path]:
    """Where the source of the connectors that would load lives, installed copies left out."""
    sdk = [_package_location(ep.value.split(":")[0].split(".")[0]) for ep in sdk_entry_points()]
    community = _community_locations([*(Path(p) for p in sys.path if p), *connector_paths])
    chosen: dict[str, Path] = {}
    for location in [*sdk, *community]:
        if location is None or not location.is_dir() or any(part in _INSTALLED for part in location.parts):
            continue
        chosen.setdefault(str(location.resolve()), location.resolve())
    return sorted(chosen.values())


def watch_sources_in_thread(directories: Sequence[Path], on_change: Callable[[], None]) -> threading.Event:
    """Call ``on_change`` after each settled change to a ``.py`` file under ``directories``; set the
    returned event to stop."""
    stop = threading.Event()

    def loop() -> None:
        for changes in watch(
            *directories, watch_filter=PythonFilter(), stop_event=stop, debounce=DEBOUNCE_MS, raise_interrupt=False
        ):
            files = sorted({Path(path).name for _, path in changes})
            logger.info("connector sources changed", extra={"files": files[:20]})
            on_change()

    threading.Thread(target=loop, name="source-watch", daemon=True).start()
    return stop
