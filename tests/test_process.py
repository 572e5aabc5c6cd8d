"""Tests for rfcheck.targets.process: a target's process runs in its own process group, its
stdout and stderr are captured, and stop() leaves no process of the group alive."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rfcheck.targets.process as process_module
from rfcheck.targets.base import DriverError
from rfcheck.runtime.procfs import group_pids
from rfcheck.targets.process import TargetProcess
from tests.helpers import gone

# A grandchild that ignores SIGTERM and announces its pid once the trap is in place.
STUBBORN = """sh -c 'trap "" TERM; echo grandchild $$; exec sleep 60' &"""


def wait_for_line(process: TargetProcess, prefix: str, within: float = 5.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = next((line for line in process.output().splitlines() if line.startswith(prefix)), None)
        if line is not None:
            return line
        time.sleep(0.01)
    raise AssertionError(f"no line starting with {prefix!r} in {process.output()!r}")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., TargetProcess]]:
    """Starts TargetProcesses in ``tmp_path``; kills whatever is left at teardown."""
    processes: list[TargetProcess] = []

    def start(command: str, **env: str) -> TargetProcess:
        process = TargetProcess(command, tmp_path, {**os.environ, **env}, "[target.test] start")
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


def test_stdout_and_stderr_are_captured_in_order(started: Callable[..., TargetProcess]) -> None:
    process = started("echo to stdout; echo to stderr >&2; echo back to stdout")
    assert process.wait(5) == 0
    assert process.stop().splitlines() == ["to stdout", "to stderr", "back to stdout"]


def test_environment_and_folder_are_the_given_ones(started: Callable[..., TargetProcess], tmp_path: Path) -> None:
    process = started('echo "$GREETING from $(pwd)"', GREETING="hello")
    assert process.wait(5) == 0
    assert process.stop() == f"hello from {tmp_path}"


def test_tail_holds_the_last_lines_and_says_when_there_are_none(started: Callable[..., TargetProcess]) -> None:
    process = started(f"seq 1 {process_module.TAIL_LINES + 10}")
    process.wait(5)
    assert process.tail().splitlines() == [str(n) for n in range(11, process_module.TAIL_LINES + 11)]
    assert started("true").tail() == "(no output)"


def test_tail_of_an_exited_process_has_its_last_words(started: Callable[..., TargetProcess]) -> None:
    process = started("sleep 0.2; echo 'fatal: no config' >&2; exit 3")
    with process.captured._lock:  # a reader that lags: the process ends before its last line is stored
        assert process.wait(5) == 3
    assert process.tail() == "fatal: no config"
    assert not process.running and process.returncode == 3


def test_it_runs_in_its_own_process_group(started: Callable[..., TargetProcess]) -> None:
    process = started("echo $$; sleep 60")
    pid = int(wait_for_line(process, ""))
    assert os.getpgid(pid) == pid != os.getpgid(0)


def test_stop_ends_a_grandchild_that_ignores_sigterm_once_its_parent_has_gone(
        started: Callable[..., TargetProcess]) -> None:
    # the shell dies of SIGTERM at once; its background child shrugs it off and must still go
    process = started(f"echo shell $$; {STUBBORN} wait")
    grandchild = int(wait_for_line(process, "grandchild").split()[1])
    shell = int(wait_for_line(process, "shell").split()[1])
    began = time.monotonic()
    output = process.stop()
    assert time.monotonic() - began < 2, "waited out the grace period although the shell had ended"
    assert gone(shell) and gone(grandchild)
    assert f"grandchild {grandchild}" in output


def test_once_stop_returns_nothing_of_the_group_runs(started: Callable[..., TargetProcess]) -> None:
    """A SIGKILLed process takes a moment to die: stop waits for it (a worker seen alive right after stop
    was a process that outlived its run)."""
    process = started(f"{STUBBORN} {STUBBORN} wait")
    wait_for_line(process, "grandchild")
    pgid = process.pgid
    process.stop()
    assert group_pids(pgid) == []


def test_stop_kills_a_group_that_ignores_sigterm_after_the_grace_period(
        started: Callable[..., TargetProcess], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_module, "STOP_GRACE", 0.3)
    process = started(f"""trap "" TERM; echo shell $$; {STUBBORN} wait; echo still here; sleep 60""")
    grandchild = int(wait_for_line(process, "grandchild").split()[1])
    shell = int(wait_for_line(process, "shell").split()[1])
    process.stop()
    assert not process.running and process.returncode == -signal.SIGKILL
    assert gone(shell) and gone(grandchild)


def test_stop_is_harmless_when_the_process_has_already_ended(started: Callable[..., TargetProcess]) -> None:
    process = started("echo done")
    assert process.wait(5) == 0
    assert process.stop() == "done"
    assert process.stop() == "done"


def test_a_command_that_cannot_start_is_a_driver_error(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match=r"\[target.web\] start 'app' could not start"):
        TargetProcess("app", tmp_path / "missing-folder", dict(os.environ), "[target.web] start")


def test_stop_keeps_the_shutdown_lines_of_an_app_started_through_a_shell(
        started: Callable[..., TargetProcess]) -> None:
    # sh -c runs the app as its child: the shell dies of SIGTERM at once, the app writes its last words
    app = ("import signal, sys, threading, time\n"
           "def bye(*_):\n    time.sleep(0.3)\n    print('shutdown: flushed 3 sessions', flush=True)\n"
           "    sys.exit(0)\n"
           "signal.signal(signal.SIGTERM, bye)\nprint('listening', flush=True)\nthreading.Event().wait(60)\n")
    process = started(f'"{sys.executable}" -c "$APP_CODE"; echo after', APP_CODE=app)
    wait_for_line(process, "listening")
    assert "shutdown: flushed 3 sessions" in process.stop()


def test_a_setsid_process_left_by_a_command_is_found_and_stopped(started: Callable[..., TargetProcess]) -> None:
    process = started("setsid sleep 97 & echo started $!")
    sleeper = int(wait_for_line(process, "started").split()[1])
    assert process.wait(5) == 0 and os.getpgid(sleeper) != process.pgid, "it left the command's group"
    output = process.stop()
    assert gone(sleeper), "the setsid sleep outlived its command"
    assert process.strays and f"pid {sleeper} (sleep 97)" in process.strays[0]
    assert "process(es) the target had started outside its process group" in output
