"""Tests for rfcheck.targets.command: ``run`` starts one process per unit of work (exit 0 is
success), ``serve`` starts one worker whose ``actions`` trigger a unit; both time out, fail
with the tail of the output, and leave no process behind. The worker used through the
harness is tests/apps/cc_worker.py (client credentials with requests)."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rfcheck import Environment
from rfcheck.config import CommandSpec
from rfcheck.harness import Harness, free_port
from rfcheck.provider.clock import Clock
from rfcheck.runtime import Instrumentation
from rfcheck.targets.base import DriverError, StepFailed
from rfcheck.targets.command import CommandDriver
from tests.helpers import gone, pids


WORKER = Path(__file__).parent / "apps" / "cc_worker.py"
PYTHON = f'"{sys.executable}"'
ENVIRONMENT = Environment(issuer="http://127.0.0.1:1", api_url="http://127.0.0.1:2", client_id="id",
                          client_secret="secret", audience="accounts", redirect_uri="", network="test")
WORKER_ENV = {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_AUDIENCE": "{audience}",
              "RF_CLIENT_ID": "{client_id}", "RF_CLIENT_SECRET": "{client_secret}", "PORT": "{port}"}


@pytest.fixture
def command(tmp_path: Path) -> Iterator[Callable[..., CommandDriver]]:
    """``command(run=..., serve=..., actions=..., step_timeout=..., **env)``: a started driver."""
    drivers: list[CommandDriver] = []
    clock = Clock()
    instrumentation = Instrumentation(clock, lambda host, port, via: None)

    def make(run: str = "", serve: str = "", actions: tuple[str, ...] = (), step_timeout: float = 5,
             **env: str) -> CommandDriver:
        spec = CommandSpec(run, serve, actions, step_timeout)
        driver = CommandDriver(spec, tmp_path, spec, instrumentation.environment({**os.environ, **env}),
                               instrumentation)
        drivers.append(driver)
        driver.start(ENVIRONMENT, clock)
        return driver

    yield make
    for driver in drivers:
        driver.stop()
    instrumentation.close()


# -- run: one process per unit --------------------------------------------------------------
def test_run_succeeds_on_exit_0_and_collects_each_runs_output(command: Callable[..., CommandDriver]) -> None:
    driver = command(run="echo unit $UNIT_NAME; echo warnings go to stderr >&2", UNIT_NAME="sync")
    driver.exercise()
    driver.exercise()
    assert driver.stop().splitlines() == ["unit sync", "warnings go to stderr"] * 2
    assert driver.stop() == "", "each scenario gets its own output"


def test_run_fails_the_step_on_a_non_zero_exit_with_the_output_tail(command: Callable[..., CommandDriver]) -> None:
    driver = command(run="echo syncing; echo 'token endpoint said invalid_client' >&2; exit 4")
    with pytest.raises(StepFailed) as failed:
        driver.exercise()
    assert str(failed.value) == ("the run exited with status 4; output ends with:\n"
                                 "syncing\ntoken endpoint said invalid_client")
    assert "invalid_client" in driver.stop()


def test_run_that_hangs_fails_after_the_step_timeout_and_is_killed(command: Callable[..., CommandDriver]) -> None:
    driver = command(run="echo pid=$$; exec sleep 30", step_timeout=0.3)
    began = time.monotonic()
    with pytest.raises(StepFailed, match=r"^the run did not finish within 0.3 s \(step_timeout\); "
                                         r"output ends with:\npid=\d+$") as failed:
        driver.exercise()
    assert time.monotonic() - began < 2
    (pid,) = pids(str(failed.value))
    assert gone(pid)


def test_command_targets_have_no_login(command: Callable[..., CommandDriver]) -> None:
    driver = command(run="true")
    with pytest.raises(StepFailed, match="no login"):
        driver.start_login()
    with pytest.raises(StepFailed, match="no login callback"):
        driver.finish_login("http://127.0.0.1/callback?code=x")


# -- serve: one worker, actions trigger it -------------------------------------------------
def test_serve_actions_that_fail_or_hang_fail_the_step(command: Callable[..., CommandDriver]) -> None:
    port = free_port()
    serve = f"{PYTHON} {WORKER} serve"
    failing = command(serve=serve, actions=(f"http://127.0.0.1:{port}/fail",), PORT=str(port))
    with pytest.raises(StepFailed, match=rf"^GET http://127.0.0.1:{port}/fail answered 500: broken$"):
        failing.exercise()
    failing.stop()
    hanging = command(serve=serve, actions=(f"http://127.0.0.1:{port}/hang",), step_timeout=0.3, PORT=str(port))
    began = time.monotonic()
    with pytest.raises(StepFailed, match=rf"^GET http://127.0.0.1:{port}/hang: ReadTimeout"):
        hanging.exercise()
    assert time.monotonic() - began < 2


def test_serve_worker_that_exits_before_listening_is_a_driver_error(tmp_path: Path) -> None:
    spec = CommandSpec(serve="echo 'PORT is not set' >&2; exit 2", actions=(f"http://127.0.0.1:{free_port()}/work",))
    clock = Clock()
    instrumentation = Instrumentation(clock, lambda host, port, via: None)
    driver = CommandDriver(spec, tmp_path, spec, dict(os.environ), instrumentation)
    try:
        with pytest.raises(DriverError, match=r"^the worker exited with status 2; its output ends with:\nPORT is not set$"):
            driver.start(ENVIRONMENT, clock)
        assert driver.stop() == "PORT is not set"
    finally:
        instrumentation.close()


# -- through the harness: the worker does client credentials against the mock ----------------
@pytest.fixture
def worker_harness(toml_harness: Callable[..., Harness]) -> Callable[..., Harness]:
    """``worker_harness(**command)``: a started harness for the worker with that [target.command]."""

    def make(**command: Any) -> Harness:
        return toml_harness({"target": {"name": "worker", "kind": "command", "flow": "client_credentials"},
                             "target.command": command, "target.env": WORKER_ENV})

    return make


def units_reached_the_mock(harness: Harness, scenario: str) -> list[tuple[str, str, int, str]]:
    result = harness.scenario(scenario)
    assert result.outcome == "completed", result.reason
    assert [(e.kind, e.ok) for e in result.events] == [("unit", True)] * 3, result.events
    return [(e.host, e.path, e.status, e.step) for e in result.exchanges]


EXPECTED = [(host, path, 200, f"unit {n}") for n in (1, 2, 3)
            for host, path in (("auth", "/oauth/token"), ("api", "/invoices"))]


def test_run_mode_does_a_unit_of_work_per_process(worker_harness: Callable[..., Harness]) -> None:
    harness = worker_harness(run=f"{PYTHON} {WORKER} once")
    assert units_reached_the_mock(harness, "baseline") == EXPECTED
    output = harness.scenario("baseline").output
    assert len(re.findall(r"synced \d+ invoices", output)) == 3 and len(pids(output)) == 3


def test_serve_mode_actions_trigger_the_worker(worker_harness: Callable[..., Harness]) -> None:
    harness = worker_harness(serve=f"{PYTHON} {WORKER} serve", actions=["http://127.0.0.1:{port}/work"])
    assert units_reached_the_mock(harness, "baseline") == EXPECTED
    output = harness.scenario("baseline").output
    assert len(re.findall(r"/work: \d+ invoices", output)) == 3
    (pid,) = pids(output)
    assert gone(pid), "the worker outlived its scenario"


def test_a_fixed_port_serve_worker_runs_side_by_side_each_on_a_port_of_its_own(
        worker_harness: Callable[..., Harness]) -> None:
    """A worker written for one port (``PORT=8765``, actions on 127.0.0.1:8765) is a Python program, whose
    listening port rfcheck's sitecustomize moves: two scenarios run at once, each worker on its lane's port,
    each doing its own work against its own mock, while the worker and its actions still say 8765."""
    fixed = free_port()
    # the env's PORT is {port}: the command gives the worker the fixed one instead
    harness = worker_harness(serve=f"PORT={fixed} {PYTHON} {WORKER} serve", actions=[f"http://127.0.0.1:{fixed}/work"])
    assert harness.jobs > 1 and not harness._serial_note
    harness.prefetch(["baseline", "concurrency"])
    assert units_reached_the_mock(harness, "baseline") == EXPECTED
    concurrency = harness.scenario("concurrency")
    assert concurrency.outcome == "completed" and all(e.ok for e in concurrency.events), concurrency.events
    notes = harness.lane.notes
    assert any(f"[target.command] actions name the fixed port {fixed}: each scenario's worker listens on a port of "
               "its own" in note for note in notes), notes
    ports = {lane.ports[fixed] for lane in harness._lanes}
    assert len(harness._lanes) == 2, "the concurrency scenario waits on its slow token endpoint beside the baseline"
    assert len(ports) == 2 and fixed not in ports


def test_a_fixed_port_serve_worker_rfcheck_cannot_move_runs_one_at_a_time_with_the_reason(tmp_path: Path) -> None:
    from rfcheck.config import load_config
    from rfcheck.lanes import fixed_port, serial_reason

    (tmp_path / "rfcheck.toml").write_text(
        '[target]\nkind = "command"\nflow = "client_credentials"\n'
        '[target.command]\nserve = "java Worker.java"\nactions = ["http://127.0.0.1:8765/work"]\n')
    config = load_config(tmp_path / "rfcheck.toml")
    reason = serial_reason(config)
    assert reason == ("scenarios ran one at a time: [target.command] actions name a fixed port "
                      "('http://127.0.0.1:8765/work'), which only one worker at a time can listen on, and rfcheck "
                      "cannot give each scenario's worker a port of its own (java starts a JVM, whose listening port "
                      "rfcheck cannot move); write it with {port} to let rfcheck start one worker per scenario at once")
    assert fixed_port(config) is None
