"""Noticing connector packages installed, upgraded or removed while the proxy runs.

A fingerprint of the import directories holds the name and modification time of every entry an
installer writes for a package: ``*.dist-info``, ``*.egg-info``, ``*.egg-link``, ``*.pth`` and
``connector_*`` modules. ``pip install``, ``pip install --upgrade`` and ``pip uninstall`` each
change it. Scanning costs a directory listing per import directory, in the server's supervisor
process, never on the request path.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

Fingerprint = frozenset[tuple[str, str, int]]

_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".pth")
_PREFIX = "connector_"


def import_directories(extra: Sequence[Path] = ()) -> list[Path]:
    """The directories packages are imported from: ``sys.path`` plus ``extra``, existing ones once."""
    seen: dict[str, Path] = {}
    for entry in [*sys.path, *(str(p) for p in extra)]:
        path = Path(entry or ".").resolve()
        if str(path) not in seen and path.is_dir():
            seen[str(path)] = path
    return list(seen.values())


def fingerprint(directories: Iterable[Path]) -> Fingerprint:
    entries: set[tuple[str, str, int]] = set()
    for directory in directories:
        try:
            with os.scandir(directory) as listing:
                for entry in listing:
                    if not (entry.name.endswith(_SUFFIXES) or entry.name.startswith(_PREFIX)):
                        continue
                    try:
                        entries.add((str(directory), entry.name, entry.stat().st_mtime_ns))
                    except OSError:  # removed while listed: the next scan sees it gone
                        continue
        except OSError:
            continue
    return frozenset(entries)


class PackageWatch:
    """Reports a change once it has settled: two scans in a row agree and differ from the last
    one reported, so a reload never starts half-way through an installation."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self.directories = tuple(directories)
        self._applied = fingerprint(self.directories)
        self._seen = self._applied

    def poll(self) -> bool:
        current = fingerprint(self.directories)
        settled = current == self._seen
        self._seen = current
        if settled and current != self._applied:
            changed = sorted({name for _, name, _ in current ^ self._applied})
            self._applied = current
            logger.info("connector packages changed", extra={"entries": changed[:20]})
            return True
        return False


def watch_in_thread(watch: PackageWatch, interval: float, on_change: Callable[[], None]) -> threading.Event:
    """Poll every ``interval`` seconds in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                if watch.poll():
                    on_change()
            except Exception:  # a scan must never end the watch
                logger.exception("package scan failed")

    threading.Thread(target=loop, name="package-watch", daemon=True).start()
    return stop
