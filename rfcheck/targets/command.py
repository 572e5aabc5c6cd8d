"""Command targets: a worker or CLI, run once per unit of work or served and triggered over HTTP."""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from rfcheck import Environment
from rfcheck.config import CommandSpec
from rfcheck.provider.clock import Clock
from rfcheck.targets.base import DriverError, Health, StepFailed
from rfcheck.targets.faketime import PYTHON_NAMES, PYTHON_NOT_MOVED, without_faketime
from rfcheck.targets.process import TargetProcess

READY_TIMEOUT = 30.0
HEALTH_TIMEOUT = 5.0


class CommandDriver:
    """``run``: one process per unit of work (exit 0 = success). ``serve``: one process, actions trigger it."""

    def __init__(self, spec: CommandSpec, cwd: Path, filled: CommandSpec, env: Mapping[str, str],
                 can_move_clock: bool) -> None:
        self.spec = spec
        self.can_move_clock = can_move_clock and not _names_python(filled.run or filled.serve)
        self.clock_note = "" if self.can_move_clock or not can_move_clock else PYTHON_NOT_MOVED
        self._cwd = cwd
        self._filled = filled  # the spec with its placeholders filled in
        self._env = without_faketime(env) if _names_python(filled.run or filled.serve) else env
        self._server: TargetProcess | None = None
        self._outputs: list[str] = []

    def start(self, env: Environment, clock: Clock) -> None:
        if self.spec.serve:
            self._server = TargetProcess(self._filled.serve, self._cwd, self._env, "[target.command] serve")
            self._wait_listening()

    def _wait_listening(self) -> None:
        assert self._server is not None
        first = httpx.URL(self._filled.actions[0])
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self._spare_python()
            if not self._server.running:
                raise DriverError(f"the worker exited with status {self._server.returncode}; "
                                  f"{self._server.failure_output()}")
            try:
                socket.create_connection((first.host, first.port or 80), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise DriverError(f"the worker did not listen on {first.host}:{first.port} within {READY_TIMEOUT:g} s; "
                          f"{self._server.failure_output()}")

    def health(self) -> Health | None:
        """REL-01 for ``serve``: the worker runs and accepts connections; ``run`` commands are not watched."""
        server = self._server
        if server is None:
            return None
        first = httpx.URL(self._filled.actions[0])
        if server.running:
            try:
                socket.create_connection((first.host, first.port or 80), timeout=HEALTH_TIMEOUT).close()
                return Health(True, f"running and listening on {first.host}:{first.port}")
            except OSError:
                if not server.wait_exit(1.0):
                    return Health(False, f"still running but no longer listening on {first.host}:{first.port}",
                                  server.first_errors(), server.tail())
        return Health(False, f"the process exited with status {server.returncode}", server.first_errors(),
                      server.tail())

    def _spare_python(self) -> None:
        """Start a Python worker again without libfaketime (see :data:`PYTHON_NOT_MOVED`)."""
        assert self._server is not None
        if self.can_move_clock and self._server.runs_python():
            self._server.stop()
            self._env = without_faketime(self._env)
            self.can_move_clock, self.clock_note = False, PYTHON_NOT_MOVED
            self._server = TargetProcess(self._filled.serve, self._cwd, self._env, "[target.command] serve")

    def start_login(self) -> str:
        raise StepFailed("command targets have no login: use flow = \"client_credentials\" or kind = \"web\"")

    def finish_login(self, callback_url: str) -> None:
        raise StepFailed("command targets have no login callback")

    def exercise(self) -> None:
        if self._server is not None:
            self._trigger()
        else:
            self._run_once()

    def _run_once(self) -> None:
        process = TargetProcess(self._filled.run, self._cwd, self._env, "[target.command] run")
        status = process.wait(self.spec.step_timeout)
        output = process.stop()
        self._outputs.append(output)
        if status is None:
            raise StepFailed(f"the run did not finish within {self.spec.step_timeout:g} s (step_timeout); "
                             f"output ends with:\n{_tail(output)}")
        if status != 0:
            raise StepFailed(f"the run exited with status {status}; output ends with:\n{_tail(output)}")

    def _trigger(self) -> None:
        for action in self._filled.actions:
            try:
                response = httpx.get(str(action), timeout=self.spec.step_timeout, trust_env=False)
            except httpx.HTTPError as err:
                crashed = self._server is not None and self._server.wait_exit(1.0)
                raise StepFailed(f"GET {action}: {type(err).__name__}", kind="crashed" if crashed else "no_answer"
                                 ) from err
            if response.status_code >= 400:
                raise StepFailed(f"GET {action} answered {response.status_code}: {response.text[:200]}",
                                 kind="error_status", status=response.status_code)

    def stop(self) -> str:
        if self._server is not None:
            self._outputs.append(self._server.stop())
            self._server = None
        output, self._outputs = "\n".join(self._outputs), []
        return output


def _tail(output: str, lines: int = 20) -> str:
    return "\n".join(output.splitlines()[-lines:]) or "(no output)"


def _names_python(command: str) -> bool:
    """Whether ``command`` starts a Python interpreter (``python3 -m worker``, ``.venv/bin/python x.py``)."""
    words = shlex.split(command) if command else []
    return bool(words) and Path(words[0]).name in PYTHON_NAMES
