"""The launcher's process checks, on the real binaries ``make k8s`` builds."""

from __future__ import annotations

from pathlib import Path

from controlplane import default_bin_dir, pid_runs, spawn


def test_a_large_binary_counts_as_running_right_after_it_was_started(tmp_path: Path) -> None:
    """Popen returns once exec has begun, before the kernel has put the new argv in place: the
    process's cmdline is empty for a moment, longer on a loaded machine and for a large binary.
    That read as "exited", so the node's start-up failed now and then ('containerd exited'). The race
    cannot be forced from here; this pins that a freshly started process counts as running."""
    binary = str(default_bin_dir() / "kube-apiserver")
    for _ in range(20):
        process = spawn("kube-apiserver", [binary, "--help"], tmp_path / "kube-apiserver.log", detach=True)
        try:
            assert pid_runs(process.pid, binary)
        finally:
            process.kill()
            process.wait(timeout=30)


def test_another_program_under_the_same_pid_does_not_count(tmp_path: Path) -> None:
    process = spawn("sleep", ["/bin/sleep", "30"], tmp_path / "sleep.log", detach=True)
    try:
        assert pid_runs(process.pid, "/bin/sleep")
        assert not pid_runs(process.pid, "/usr/bin/containerd")
    finally:
        process.kill()
        process.wait(timeout=30)
    assert not pid_runs(process.pid, "/bin/sleep")
