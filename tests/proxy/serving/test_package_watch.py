"""The package scan: what an installation changes, and reporting a change only once it settled."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from connector_proxy.serving.package_watch import PackageWatch, fingerprint, import_directories, watch_in_thread


def _install(site: Path, name: str, version: str) -> None:
    (site / name).mkdir(parents=True, exist_ok=True)
    (site / name / "__init__.py").write_text("")
    (site / f"{name}-{version}.dist-info").mkdir()


def test_installing_upgrading_and_removing_change_the_fingerprint(tmp_path: Path) -> None:
    empty = fingerprint([tmp_path])
    _install(tmp_path, "connector_demo", "1.0")
    installed = fingerprint([tmp_path])
    assert installed != empty
    (tmp_path / "connector_demo-1.0.dist-info").rename(tmp_path / "connector_demo-2.0.dist-info")
    upgraded = fingerprint([tmp_path])
    assert upgraded != installed
    for entry in ("connector_demo-2.0.dist-info", "connector_demo/__init__.py", "connector_demo"):
        path = tmp_path / entry
        path.rmdir() if path.is_dir() else path.unlink()
    assert fingerprint([tmp_path]) == empty


def test_files_that_are_not_packages_do_not_count(tmp_path: Path) -> None:
    before = fingerprint([tmp_path])
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "cache").mkdir()
    assert fingerprint([tmp_path]) == before


def test_a_missing_directory_is_no_error(tmp_path: Path) -> None:
    assert fingerprint([tmp_path / "absent"]) == frozenset()


def test_a_change_is_reported_once_and_only_after_it_settled(tmp_path: Path) -> None:
    watch = PackageWatch([tmp_path])
    assert watch.poll() is False
    _install(tmp_path, "connector_demo", "1.0")
    assert watch.poll() is False  # still changing, perhaps: pip writes a package in several steps
    assert watch.poll() is True
    assert watch.poll() is False
    (tmp_path / "connector_other.pth").write_text("")
    os.utime(tmp_path / "connector_other.pth", ns=(1, 1))
    assert [watch.poll(), watch.poll(), watch.poll()] == [False, True, False]


def test_import_directories_are_the_existing_ones_of_sys_path_and_the_extras(tmp_path: Path) -> None:
    directories = import_directories([tmp_path, tmp_path / "absent", tmp_path])
    assert directories.count(tmp_path.resolve()) == 1
    assert tmp_path / "absent" not in directories
    assert all(d.is_dir() for d in directories)
    assert {Path(p).resolve() for p in sys.path if p and Path(p).is_dir()} <= set(directories)


def test_the_watch_thread_calls_back_on_a_settled_change(tmp_path: Path) -> None:
    changed = threading.Event()
    stop = watch_in_thread(PackageWatch([tmp_path]), 0.01, changed.set)
    try:
        assert not changed.wait(0.1)
        _install(tmp_path, "connector_demo", "1.0")
        assert changed.wait(10)
    finally:
        stop.set()
