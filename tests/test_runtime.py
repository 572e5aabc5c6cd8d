"""Tests for rfcheck.runtime: what rfcheck does to a process target's runtime.

- Python processes follow rfcheck's clock through rfcheck's sitecustomize (time-machine): a
  travel returns only once every process moved, gunicorn's forked workers included, with
  libfaketime preloaded or not; the app's own sitecustomize still runs; a process the
  instrumentation cannot reach (``python -I``, no time-machine) is named, never assumed moved.
- ``[target.intercept] hosts = true``: Python clients (urllib, requests, httpx) and Node's
  ``https`` and ``fetch`` reach the mock at Request Finance's real host names, trusting the
  run's CA; other hosts are refused and recorded for SEC-04.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rfcheck.harness import Harness, free_port
from rfcheck.provider.clock import Clock
from rfcheck.runtime import SITECUSTOMIZE_DIR, Instrumentation, group_pids
from rfcheck.targets.base import Driver
from rfcheck.runtime.faketime import find_library
from rfcheck.targets.process import TargetProcess


APPS = Path(__file__).parent / "apps"
DAY = 86_400
CLOCK_PRINTER = "import sys, time\nfor _ in sys.stdin:\n    time.sleep(0.001)\n    print(time.time(), flush=True)\n"


@pytest.fixture
def instrumented() -> Iterator[tuple[Clock, Instrumentation]]:
    clock = Clock()
    instrumentation = Instrumentation(clock, lambda host, port, via: None)
    yield clock, instrumentation
    instrumentation.close()


def _start(instrumentation: Instrumentation, command: str, cwd: Path = APPS, **env: str) -> TargetProcess:
    return TargetProcess(command, cwd, instrumentation.environment({**os.environ, **env}), "test")


def _printer(instrumentation: Instrumentation, *flags: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *flags, "-c", CLOCK_PRINTER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=instrumentation.environment({**os.environ, **env}))


def _ask(child: subprocess.Popen[str]) -> float:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("\n")
    child.stdin.flush()
    return float(child.stdout.readline())


def _hellos(instrumentation: Instrumentation, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(instrumentation.control.hellos_since(0)) < count:
        assert time.monotonic() < deadline, f"expected {count} hellos: {instrumentation.control.hellos_since(0)}"
        time.sleep(0.02)


# -- the clock of a Python process ------------------------------------------------------------------
def test_a_travel_returns_once_the_python_process_has_moved(instrumented: tuple[Clock, Instrumentation]) -> None:
    clock, instrumentation = instrumented
    child = _printer(instrumentation)
    try:
        before = _ask(child)
        assert abs(before - clock.now()) < 2, "no travel yet: the process reads the real time"
        clock.travel(DAY)
        after = _ask(child)  # asked right after the travel returned: no sleep, no poll
        assert abs(after - clock.now()) < 2 and after - before > DAY - 2
        assert instrumentation.late == []
        (hello,) = instrumentation.control.hellos_since(0)
        assert (hello.runtime, hello.clock, hello.pid) == ("python", "time-machine", child.pid)
    finally:
        child.communicate(timeout=10)


@pytest.mark.skipif(find_library() is None, reason="libfaketime is not installed")
def test_a_python_process_leaves_libfaketime_and_sleeps_normally(instrumented: tuple[Clock, Instrumentation]) -> None:
    clock, instrumentation = instrumented
    assert "faketime" in instrumentation.environment({})["LD_PRELOAD"]
    child = _printer(instrumentation)  # CLOCK_PRINTER sleeps: EINVAL under libfaketime on 3.11+
    try:
        clock.travel(DAY)
        assert abs(_ask(child) - clock.now()) < 2
        maps = Path(f"/proc/{child.pid}/maps").read_text()
        assert "libfaketime" not in maps, "restarted without it, same pid"
    finally:
        child.communicate(timeout=10)


def test_every_gunicorn_worker_moves_with_the_clock(instrumented: tuple[Clock, Instrumentation]) -> None:
    if shutil.which("gunicorn") is None:
        pytest.skip("gunicorn is not installed (pip install -e '.[dev]')")
    clock, instrumentation = instrumented
    port = free_port()
    server = _start(instrumentation, f"gunicorn --workers 3 --bind 127.0.0.1:{port} clock_app:app")
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, server.tail()
                time.sleep(0.1)
        _hellos(instrumentation, 4)  # the arbiter and its three forked workers
        hellos = instrumentation.control.hellos_since(0)
        arbiter = [h for h in hellos if h.parent == 0]
        assert len(arbiter) == 1 and sorted(h.parent for h in hellos if h.parent) == [arbiter[0].pid] * 3
        workers = {h.pid for h in hellos if h.parent}
        before = {}
        for _ in range(30):
            answer = httpx.get(url, timeout=5).json()
            before[answer["pid"]] = answer["monotonic"] - time.monotonic()
        clock.travel(DAY)
        assert instrumentation.late == []
        time.sleep(2.5)  # the arbiter checks its workers' heartbeats every second
        seen: dict[int, float] = {}
        for _ in range(60):
            answer = httpx.get(url, timeout=5).json()
            now = clock.now()
            for key in ("time", "datetime", "gmtime"):
                assert abs(answer[key] - now) < 3, (key, answer, now)
            if answer["pid"] in before:  # a travel is elapsed time: the monotonic clock moved a day too
                assert abs(answer["monotonic"] - time.monotonic() - before[answer["pid"]] - DAY) < 3, answer
            seen[answer["pid"]] = answer["time"]
        assert len(seen) >= 2, "requests reached more than one worker"
        assert set(seen) <= workers, "no worker was killed and replaced: their heartbeats moved with the clock"
        assert len(instrumentation.control.hellos_since(0)) == 4
        survey = instrumentation.survey()
        survey.mark = 0
        survey.observe(server.pgid)
        assert survey.clock_moves
        assert len(survey.processes) == 4
        assert survey.summary().startswith(f"instrumentation: python {'.'.join(map(str, sys.version_info[:3]))} "
                                           "(pids ")
    finally:
        server.stop()
    assert group_pids(server.pgid) == [], "no process of the app outlives it"


def test_the_app_s_own_sitecustomize_still_runs(instrumented: tuple[Clock, Instrumentation], tmp_path: Path) -> None:
    _, instrumentation = instrumented
    (tmp_path / "sitecustomize.py").write_text("MARK = 'the app s own'\n")
    out = subprocess.run([sys.executable, "-c", "import sitecustomize, time; print(sitecustomize.MARK)"],
                         env=instrumentation.environment({**os.environ, "PYTHONPATH": str(tmp_path)}),
                         capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "the app s own", out.stderr
    _hellos(instrumentation, 1)


def test_a_python_process_without_the_instrumentation_is_named_not_assumed_moved(
        instrumented: tuple[Clock, Instrumentation]) -> None:
    _, instrumentation = instrumented
    survey = instrumentation.survey()
    # signal.pause: no timed wait, which libfaketime (still preloaded without the sitecustomize) would break
    isolated = _start(instrumentation, f'"{sys.executable}" -I -c "import signal; signal.pause()"')
    try:
        deadline = time.monotonic() + 5
        while not survey.processes:
            assert time.monotonic() < deadline
            survey.observe(isolated.pgid)
            time.sleep(0.05)
        assert not survey.clock_moves
        (problem,) = survey.clock_problems()
        assert re.match(r"python \(python[\d.]*\): clock NOT moved: rfcheck's sitecustomize did not load", problem)
    finally:
        isolated.stop()


def test_a_python_without_time_machine_says_so(instrumented: tuple[Clock, Instrumentation], tmp_path: Path) -> None:
    _, instrumentation = instrumented
    (tmp_path / "time_machine.py").write_text("raise ImportError('No module named _time_machine')\n")
    survey = instrumentation.survey()
    out = subprocess.run([sys.executable, "-c", "print('ran')"], capture_output=True, text=True, timeout=20,
                         env=instrumentation.environment({**os.environ, "PYTHONPATH": str(tmp_path)}))
    assert out.stdout.strip() == "ran", "the app runs anyway"
    _hellos(instrumentation, 1)
    assert not survey.clock_moves
    (problem,) = survey.clock_problems()
    assert "clock NOT moved: time-machine could not load on Python" in problem
    assert "install time-machine in the app's environment" in problem


# -- hosts = true ----------------------------------------------------------------------------------
@pytest.fixture
def hosts_harness(toml_harness: Callable[..., Harness]) -> Callable[[str], Harness]:
    def make(run: str) -> Harness:
        return toml_harness({"target": {"name": "hard-coded-hosts", "kind": "command", "flow": "client_credentials"},
                             "target.command": {"run": run}, "target.intercept": {"hosts": True}})

    return make


def _discovery_and_refusal(result_output: str, harness: Harness, clients: tuple[str, ...]) -> None:
    lines = result_output.splitlines()
    for client in clients:
        assert f"{client} https://auth.request.finance/" in lines, result_output
    assert any(line.startswith("foreign host refused") for line in lines), result_output
    exchanges = harness.provider.journal.since(0)
    discovery = [e for e in exchanges if e.host == "auth" and e.path == "/.well-known/openid-configuration"]
    assert len(discovery) == len(clients) and {e.status for e in discovery} == {200}
    foreign = [e for e in exchanges if e.host == "other"]
    assert [httpx.URL(e.url).host for e in foreign] == ["telemetry.example.com"]


def _one_unit(harness: Harness, clients: tuple[str, ...]) -> Driver:
    """One run of the command on the first lane: each client found the mock at the real host names."""
    driver = harness.new_driver(harness.lane, harness.provider)
    driver.start(harness.environment, harness.provider.clock)
    driver.exercise()
    _discovery_and_refusal(driver.stop(), harness, clients)
    return driver


def test_python_clients_reach_the_mock_at_the_real_host_names(hosts_harness: Callable[[str], Harness]) -> None:
    harness = hosts_harness(f'"{sys.executable}" {APPS / "hosts_client.py"}')
    driver = _one_unit(harness, ("urllib", "requests", "httpx"))
    assert "Request Finance's hosts: rfcheck's sitecustomize resolves them" in driver.runtime_note


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_node_https_and_fetch_reach_the_mock_at_the_real_host_names(hosts_harness: Callable[[str], Harness]) -> None:
    harness = hosts_harness(f"node {APPS / 'hosts_client.js'}")
    driver = _one_unit(harness, ("https", "fetch"))
    assert "Request Finance's hosts: rfcheck's preload connects them" in driver.runtime_note


def test_hosts_mode_environment_for_each_runtime(toml_harness: Callable[..., Harness]) -> None:
    harness = toml_harness({"target": {"name": "env", "kind": "command", "flow": "client_credentials"},
                            "target.command": {"run": "true"}, "target.intercept": {"hosts": True},
                            "target.env": {"NODE_OPTIONS": "--max-old-space-size=256"}})
    instrumentation = harness.lane.instrumentation()
    env = instrumentation.environment({"NODE_OPTIONS": "--max-old-space-size=256", "PYTHONPATH": "/app/lib"})
    assert env["NODE_OPTIONS"].endswith('preload.cjs" --max-old-space-size=256'), "the app's options are kept"
    assert env["PYTHONPATH"] == f"{SITECUSTOMIZE_DIR}{os.pathsep}/app/lib", "rfcheck's first, the app's kept"
    assert env["HTTPS_PROXY"] == harness.values["proxy_url"], "anything else goes through the proxy"
    assert env["NODE_EXTRA_CA_CERTS"] == harness.values["ca_file"]
    routes = dict(entry.split("=") for entry in env["RFCHECK_HOSTS"].split(","))
    assert set(routes) == {"auth.request.finance:443", "api.request.finance:443", "auth.request.finance:80",
                           "api.request.finance:80"}
    assert all(target.startswith("127.0.0.1:") for target in routes.values())
    bundle = Path(env["SSL_CERT_FILE"]).read_text()
    assert Path(harness.values["ca_file"]).read_text() in bundle
    if shutil.which("keytool"):
        java = env["JAVA_TOOL_OPTIONS"]
        port = harness.values["proxy_url"].rsplit(":", 1)[1]
        assert f"-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort={port}" in java
        assert "-Djavax.net.ssl.trustStore=" in java
        store = java.split("-Djavax.net.ssl.trustStore=")[1].split()[0]
        listed = subprocess.run(["keytool", "-list", "-keystore", store, "-storepass", "rfcheck"],
                                capture_output=True, text=True, timeout=60)
        assert "trustedCertEntry" in listed.stdout
    assert json.dumps(env)  # every value is a string


@pytest.mark.skipif(shutil.which("keytool") is None, reason="no JDK keytool on this machine")
def test_the_jvm_truststore_is_made_once_per_run_not_per_lane(toml_harness: Callable[..., Harness],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """keytool starts a JVM (about 300 ms): the run's CA gets one truststore, which every lane's JVMs share."""
    import rfcheck.runtime as runtime

    made: list[str] = []
    real = runtime._make_truststore
    monkeypatch.setattr(runtime, "_make_truststore", lambda ca_file: made.append(ca_file) or real(ca_file))
    harness = toml_harness({"target": {"name": "env", "kind": "command", "flow": "client_credentials"},
                            "target.command": {"run": "true"}, "target.intercept": {"hosts": True}})
    stores = set()
    for lane in (harness.lane, harness._new_lane(), harness._new_lane()):
        java = lane.instrumentation().environment({})["JAVA_TOOL_OPTIONS"]
        stores.add(java.split("-Djavax.net.ssl.trustStore=")[1].split()[0])
    assert made == [harness.values["ca_file"]] and len(stores) == 1 and Path(stores.pop()).is_file()


def test_a_target_whose_clock_rfcheck_cannot_move_is_judged_on_the_mock_s_clock_and_noted(
        toml_harness: Callable[..., Harness], tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "time_machine.py").write_text("raise ImportError('No module named _time_machine')\n")
    harness = toml_harness({"target": {"name": "no-time-machine", "kind": "command", "flow": "client_credentials"},
                            "target.command": {"run": f'"{sys.executable}" -c "import time; print(time.time())"'},
                            "target.env": {"PYTHONPATH": str(tmp_path / "lib")}})
    result = harness.scenario("expiry")
    assert [e.ok for e in result.events_of("unit")] == [True] * 5
    (travel,) = result.events_of("travel")
    assert travel.detail == "only the mock's clock moved: the target's clock cannot be moved"
    (note,) = harness.notes
    assert note.startswith("the target's clock cannot be fully moved: python (python") and (
        "clock NOT moved: time-machine could not load on Python" in note)
    times = [float(line) for line in result.output.splitlines()]
    assert times[-1] - times[0] < 60, "the real clock, as the note says"


def test_a_long_temporary_folder_still_gets_a_control_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # TMPDIR under a CI job's work folder can be this long
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    clock = Clock()
    instrumentation = Instrumentation(clock, lambda host, port, via: None)
    try:
        assert len(instrumentation.control.path) <= 107
        child = _printer(instrumentation)
        try:
            clock.travel(DAY)
            assert abs(_ask(child) - clock.now()) < 2
        finally:
            child.communicate(timeout=10)
    finally:
        instrumentation.close()
    assert not Path(instrumentation.control.path).exists()
    assert not Path(instrumentation.control.path).parent.exists()
