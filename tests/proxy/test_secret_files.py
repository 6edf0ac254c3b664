"""Mounted Secret files follow a rotation the way the kubelet performs it (an atomic symlink swap)."""

from __future__ import annotations

import os
from pathlib import Path

from connector_proxy.secret_files import MountedKey, current


def _kubelet_writes(volume: Path, generation: str, value: str) -> None:
    """What the kubelet does: a new timestamped dir, then ``..data`` swapped to it in one rename."""
    data = volume / generation
    data.mkdir()
    (data / "token").write_text(value)
    link = volume / "..data_tmp"
    link.symlink_to(generation)
    os.replace(link, volume / "..data")
    if not (volume / "token").is_symlink():
        (volume / "token").symlink_to("..data/token")


def test_a_rotated_secret_is_read_again(tmp_path: Path) -> None:
    _kubelet_writes(tmp_path, "..2026_01_01", "first-key\n")
    key = MountedKey(tmp_path / "token")
    assert key.value() == "first-key"
    _kubelet_writes(tmp_path, "..2026_01_02", "second-key\n")
    assert key.value() == "second-key"


def test_a_missing_or_emptied_file_keeps_nothing_stale_but_never_drops_a_good_key(tmp_path: Path) -> None:
    path = tmp_path / "token"
    key = MountedKey(path)
    assert key.value() is None
    path.write_text("k1")
    assert key.value() == "k1"
    path.unlink()  # mid-rotation: the last good value stays
    assert key.value() == "k1"
    path.write_text("   ")
    assert key.value() is None  # an empty Secret is no key at all


def test_current_takes_literal_and_mounted_keys(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("mounted")
    assert current(MountedKey(tmp_path / "k")) == "mounted"
    assert current("literal") == "literal"
    assert current(None) is None
