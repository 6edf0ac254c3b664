"""Secrets mounted as files: read again when the kubelet replaces them (a rotated Secret).

The kubelet updates a mounted Secret by swapping a symlink, so a changed file has a new inode or
mtime; one ``stat`` per use tells, and the file is read only then. While a file is missing or
unreadable the last value read stays in use, so a rotation in progress never drops the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from connector_proxy.contract import API_KEY_HEADER

Stamp = tuple[int, int, int]


def file_stamp(path: Path) -> Stamp | None:
    """What changes when the kubelet swaps a mounted file (inode, mtime, size); None if unreadable."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


@dataclass(eq=False)
class MountedKey:
    path: Path
    _stamp: Stamp | None = field(default=None, init=False, repr=False)
    _value: str | None = field(default=None, init=False, repr=False)

    def value(self) -> str | None:
        stamp = file_stamp(self.path)
        if stamp is None:
            return self._value
        if stamp != self._stamp:
            try:
                self._value = self.path.read_text().strip() or None
            except OSError:
                return self._value
            self._stamp = stamp
        return self._value


def current(key: str | MountedKey | None) -> str | None:
    """The value of a literal key or of a mounted one, now."""
    return key.value() if isinstance(key, MountedKey) else key


def credential_headers(api_key: str | MountedKey | None, token: MountedKey | None) -> dict[str, str]:
    """How the proxy identifies itself to a workload: the API key of a url source, the current
    ServiceAccount token (re-read when the kubelet rotates it) for one the operator runs."""
    headers: dict[str, str] = {}
    key = current(api_key)
    if key:
        headers[API_KEY_HEADER] = key
    bearer = current(token)
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return headers
