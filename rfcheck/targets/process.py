"""A target's operating-system process: started in its own process group, output captured, stopped whole."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from rfcheck.targets.base import DriverError

STOP_GRACE = 5.0
GONE_TIMEOUT = 2.0  # seconds a SIGKILLed group gets to be gone
TAIL_LINES = 40
ERROR_LINES = 8
# what a first error line looks like in Python, Node, the JVM and most loggers
_ERROR_LINE = re.compile(r"error|exception|traceback|fatal|panic|unhandled|cannot |could not|failed|refused",
                         re.IGNORECASE)


def group_pids(pgid: int) -> list[int]:
    """The pids of the process group ``pgid`` that still run (read from /proc; zombies left out)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


class TargetProcess:
    """``command`` run through the shell in ``cwd``; stdout and stderr collected line by line."""

    def __init__(self, command: str, cwd: Path, env: Mapping[str, str], what: str) -> None:
        self.command = command
        self.what = what
        self._lines: list[str] = []
        self._lock = threading.Lock()
        try:
            self._popen = subprocess.Popen(
                command, shell=True, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as err:
            raise DriverError(f"{what} {command!r} could not start: {err}") from err
        self._reader = threading.Thread(target=self._read, name="rfcheck-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._popen.stdout is not None
        for raw in iter(self._popen.stdout.readline, b""):
            with self._lock:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def pgid(self) -> int:
        """The process group of the target (its processes and their children)."""
        return self._popen.pid

    def output(self) -> str:
        self._settle()
        with self._lock:
            return "\n".join(self._lines)

    def tail(self) -> str:
        self._settle()
        with self._lock:
            lines = self._lines[-TAIL_LINES:]
        return "\n".join(lines) or "(no output)"

    def first_errors(self) -> str:
        """The first lines that look like an error: the cause, before a long dump can push it out of the tail."""
        self._settle()
        with self._lock:
            found = [line for line in self._lines if _ERROR_LINE.search(line)][:ERROR_LINES]
        return "\n".join(found)

    def failure_output(self) -> str:
        """What a failure message shows of the output: its first error lines, then its tail."""
        errors, tail = self.first_errors(), self.tail()
        head = f"its first error lines:\n{errors}\n" if errors and errors not in tail else ""
        return f"{head}its output ends with:\n{tail}"

    def wait_exit(self, timeout: float) -> bool:
        """Whether the process exits within ``timeout`` seconds (it may be dying after a crash)."""
        return self.wait(timeout) is not None

    def _settle(self) -> None:
        # the reader lags behind the process: once it has exited, wait for its last lines (EOF)
        self._reader.join(timeout=0.2 if self.running else 2)

    def stop(self) -> str:
        """SIGTERM to the whole process group, SIGKILL after a grace period; returns all output."""
        if self.running:
            self._signal(signal.SIGTERM)
            if self.wait(STOP_GRACE) is None:
                self._signal(signal.SIGKILL)
                self.wait(STOP_GRACE)
        self._signal(signal.SIGKILL)  # children that outlived their parent in the group
        self._until_gone()
        return self.output()

    def _until_gone(self) -> None:
        """A killed process takes a moment to die: wait (briefly) until none of the group is left but zombies
        waiting for their new parent, so that nothing of the target runs once ``stop`` returns."""
        deadline = time.monotonic() + GONE_TIMEOUT
        while group_pids(self._popen.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

