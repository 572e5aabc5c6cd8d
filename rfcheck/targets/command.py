"""Command targets: a worker or CLI, run once per unit of work or served and triggered over HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from rfcheck import Environment
from rfcheck.config import CommandSpec
from rfcheck.provider.clock import Clock
from rfcheck.targets.base import DriverError, Health, StepFailed, cause
from rfcheck.targets.deadline import Deadlines, client as deadline_client, client_tls
from rfcheck.targets.output import Known, Output
from rfcheck.targets.process import TargetProcess

from rfcheck.runtime import Surveyed

if TYPE_CHECKING:
    from rfcheck.runtime import Instrumentation, Survey

READY_TIMEOUT = 30.0
HEALTH_TIMEOUT = 5.0
SURVEY_INTERVAL = 0.2  # seconds between looks at a running command's processes
TAIL_LINES = 20
ANSWER_LIMIT = 64 * 1024  # bytes of a worker's answer to an action read (its status is what counts)  # lines of a failed run's output in its step's reason


class CommandDriver(Surveyed):
    """``run``: one process per unit of work (exit 0 = success). ``serve``: one process, actions trigger it."""

    def __init__(self, spec: CommandSpec, cwd: Path, filled: CommandSpec, env: Mapping[str, str],
                 instrumentation: "Instrumentation", known: Known | None = None) -> None:
        self.spec = spec
        self._cwd = cwd
        self._filled = filled  # the spec with its placeholders filled in
        self._env = env
        self._instrumentation = instrumentation
        self._survey: Survey | None = None
        self._server: TargetProcess | None = None
        self._known = known
        self._deadlines = Deadlines(instrumentation.ports)  # a fixed port the worker asked for: the lane's own
        self._output = Output(known)  # the scenario's: every run's, or the worker's
        self.strays: list[str] = []  # processes a run or the worker left outside its process group, stopped

    def start(self, env: Environment, clock: Clock) -> None:
        self._survey = self._instrumentation.survey()
        self._output = Output(self._known)
        if self.spec.serve:
            self._server = TargetProcess(self._filled.serve, self._cwd, self._env, "[target.command] serve",
                                         self._output)
            self._wait_listening()
            self._observe(self._server)

    # -- what runs, and whether its clock follows rfcheck's -------------------------------------
    def _observe(self, process: TargetProcess | None) -> None:
        if self._survey is not None and process is not None and process.running:
            self._survey.observe(process.pgid)

    def _look(self) -> None:
        # for run: the survey holds the runs so far (a unit comes before any travel in every scenario)
        self._observe(self._server)

    def _wait_listening(self) -> None:
        assert self._server is not None
        first = httpx.URL(self._filled.actions[0])
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self._server.running:
                raise DriverError(f"the worker exited with status {self._server.returncode}; "
                                  f"{self._server.failure_output()}")
            try:
                socket.create_connection(self._deadlines.address(first.host, first.port or 80), timeout=0.5).close()
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
                socket.create_connection(self._deadlines.address(first.host, first.port or 80),
                                         timeout=HEALTH_TIMEOUT).close()
                return Health(True, f"running and listening on {first.host}:{first.port}")
            except OSError:
                if not server.wait_exit(1.0):
                    return Health(False, f"still running but no longer listening on {first.host}:{first.port}",
                                  server.first_errors(), server.tail())
        return Health(False, f"the process exited with status {server.returncode}", server.first_errors(),
                      server.tail())

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
        mark = self._output.lines
        process = TargetProcess(self._filled.run, self._cwd, self._env, "[target.command] run", self._output)
        deadline = time.monotonic() + self.spec.step_timeout
        status = None
        while status is None and time.monotonic() < deadline:
            self._observe(process)
            status = process.wait(min(SURVEY_INTERVAL, max(deadline - time.monotonic(), 0)))
        process.stop()
        self.strays += process.strays
        self._observe(None)
        tail = "\n".join(self._output.tail(TAIL_LINES, since=mark)) or "(no output)"
        if status is None:
            raise StepFailed(f"the run did not finish within {self.spec.step_timeout:g} s (step_timeout); "
                             f"output ends with:\n{tail}", kind="no_answer")
        if status != 0:
            raise StepFailed(f"the run exited with status {status}; output ends with:\n{tail}")

    def _trigger(self) -> None:
        """GET each action, all of them within ``step_timeout`` (the whole step, however slowly the worker
        answers), reading at most :data:`ANSWER_LIMIT` bytes of each answer."""
        with self._deadlines.until(self.spec.step_timeout), \
                deadline_client(self._deadlines, client_tls(), trust_env=False,
                                timeout=self.spec.step_timeout) as client:
            for action in self._filled.actions:
                try:
                    with client.stream("GET", str(action)) as response:
                        body = b""
                        for chunk in response.iter_bytes():
                            body += chunk[:ANSWER_LIMIT - len(body)]
                            if len(body) >= ANSWER_LIMIT:
                                break
                except httpx.HTTPError as err:
                    crashed = self._server is not None and self._server.wait_exit(1.0)
                    timeout = (f" within {self.spec.step_timeout:g} s (step_timeout)"
                               if isinstance(err, httpx.TimeoutException) else "")
                    raise StepFailed(f"GET {action}: {cause(err)}{timeout}",
                                     kind="crashed" if crashed else "no_answer") from err
                if response.status_code >= 400:
                    text = body.decode("utf-8", "replace")[:200]
                    raise StepFailed(f"GET {action} answered {response.status_code}: {text}",
                                     kind="error_status", status=response.status_code)

    def stop(self) -> str:
        self._observe(self._server)
        if self._server is not None:
            self._server.stop()
            self.strays += self._server.strays
            self._server = None
        return self._output.take()
