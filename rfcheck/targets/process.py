"""A target's operating-system process: started in its own process group, output captured, stopped whole."""

from __future__ import annotations

import codecs
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from rfcheck.runtime.procfs import alive, group_pids, marked
from rfcheck.targets.base import DriverError
from rfcheck.targets.output import Output

STOP_GRACE = 5.0
AFTER_LEADER_GRACE = 1.0  # seconds the group gets for its own shutdown once its leader (a shell) exited
GONE_TIMEOUT = 2.0  # seconds a SIGKILLed group gets to be gone
TAIL_LINES = 40
READ_SIZE = 64 * 1024
MARK = "RFCHECK_TARGET"  # the environment variable that marks a target's processes


def _kill(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class TargetProcess:
    """``command`` run through the shell in ``cwd``; stdout and stderr collected line by line."""

    def __init__(self, command: str, cwd: Path, env: Mapping[str, str], what: str,
                 output: Output | None = None) -> None:
        self.command = command
        self.what = what
        self.captured = output if output is not None else Output()  # shared by the runs of one scenario
        self.strays: list[str] = []  # processes found outside the group at stop (setsid, double fork)
        # every process the target starts inherits this mark, in its group or not: how strays are found
        self._mark = f"{MARK}={os.getpid()}-{secrets.token_hex(8)}"
        env = {**env, MARK: self._mark.split("=", 1)[1]}
        try:
            self._popen = subprocess.Popen(
                command, shell=True, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as err:
            raise DriverError(f"{what} {command!r} could not start: {err}") from err
        self._reader = threading.Thread(target=self._read, name="rfcheck-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Read in pieces, never a whole line at once: a target may write 200 MB without a newline."""
        assert self._popen.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        fd = self._popen.stdout.fileno()
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                break
            if not data:
                break
            self.captured.write(decoder.decode(data))
        self.captured.write(decoder.decode(b"", final=True))
        self.captured.close()

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
        """The output kept so far (bounded: :mod:`rfcheck.targets.output`)."""
        self._settle()
        return self.captured.text()

    def take_output(self) -> str:
        """The output kept since the last take (the next scenario of an app that keeps running)."""
        self._settle()
        return self.captured.take()

    def tail(self) -> str:
        self._settle()
        return "\n".join(self.captured.tail(TAIL_LINES)) or "(no output)"

    def first_errors(self) -> str:
        """The first lines that look like an error: the cause, before a long dump can push it out of the tail."""
        self._settle()
        return "\n".join(self.captured.first_errors())

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
        """SIGTERM to the whole process group; SIGKILL to what is left of it after a grace period (the app's
        own shutdown, not only the shell that started it: its last lines are evidence); then every process
        the target started outside its group (setsid, a double fork) is found and stopped. Returns the
        output kept."""
        if self.running:
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            while group_pids(self._popen.pid) and time.monotonic() < deadline:
                if not self.running:  # the leader (often a shell) is gone: the rest get a short while more
                    deadline = min(deadline, time.monotonic() + AFTER_LEADER_GRACE)
                time.sleep(0.02)
        self._signal(signal.SIGKILL)  # children that outlived their parent in the group
        self.wait(STOP_GRACE)
        self._until_gone()
        self._stop_strays()
        return self.output()

    def _stop_strays(self) -> None:
        """Processes that carry this target's mark but left its group: stopped, and said in the output."""
        strays = marked(self._mark)
        if not strays:
            return
        for pid in strays:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + GONE_TIMEOUT
        while [pid for pid in strays if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in strays:
            _kill(pid, signal.SIGKILL)
        named = ", ".join(f"pid {pid} ({strays[pid]})" for pid in sorted(strays))
        self.strays.append(named)
        self.captured.write(f"\n[rfcheck: stopped {len(strays)} process(es) the target had started outside its "
                            f"process group (setsid, a double fork): {named}]\n")

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

