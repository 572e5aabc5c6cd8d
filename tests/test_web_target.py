"""Tests for rfcheck.targets.web through the harness: rfcheck starts a real web app
(tests/apps/web_app.py: stdlib server + requests) in its own process, waits until it answers,
logs in as a browser would (the app's redirects, consent at the mock, the callback with the
app's cookie), exercises it, and stops it after each scenario or at the end of the run."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rfcheck.harness import Harness
from rfcheck.scenarios import ScenarioResult
from tests.helpers import alive, gone, pids


APP = Path(__file__).parent / "apps" / "web_app.py"
APP_ENV = {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
           "RF_CLIENT_SECRET": "{client_secret}", "RF_REDIRECT_URI": "{redirect_uri}", "PORT": "{port}"}


@pytest.fixture
def web_harness(toml_harness: Callable[..., Harness]) -> Iterator[Callable[..., Harness]]:
    """``web_harness(mode="", **web)``: a started harness for the test app; stopped at teardown."""
    harnesses: list[Harness] = []

    def make(mode: str = "", env: dict[str, str] | None = None, **web: Any) -> Harness:
        settings = {"start": f'"{sys.executable}" "{APP}"', "url": "http://127.0.0.1:{port}",
                    "actions": ["/invoices"], "ready_timeout": 10, "step_timeout": 5, **web}
        harness = toml_harness({
            "target": {"name": "web-app", "kind": "web", "redirect_uri": "http://127.0.0.1:{port}/callback"},
            "target.web": settings, "target.env": {**APP_ENV, "APP_MODE": mode, **(env or {})}}, start=False)
        harnesses.append(harness)
        harness.start()
        return harness

    yield make
    for harness in harnesses:
        harness.stop()
        for result in harness.results.values():  # a safety net for when stopping is what broke
            for pid in pids(result.output + result.reason):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def steps(result: ScenarioResult) -> list[tuple[str, bool]]:
    return [(event.kind, event.ok) for event in result.events]


def test_a_browser_login_and_the_actions_reach_the_mock(web_harness: Callable[..., Harness]) -> None:
    harness = web_harness()
    result = harness.scenario("baseline")
    assert result.outcome == "completed", result.reason
    assert steps(result) == [("login", True), ("unit", True), ("unit", True), ("unit", True)], result.events
    assert [(e.origin, e.host, e.method, e.path, e.status, e.step) for e in result.exchanges] == [
        ("browser", "app", "GET", "/login", 302, "login 1"),  # the user's browser asks the app to log in
        ("browser", "auth", "GET", "/authorize", 302, "login 1"),  # rfcheck consenting as the user
        ("browser", "app", "GET", "/callback", 302, "login 1"),  # back at the app's callback, which...
        ("target", "auth", "POST", "/oauth/token", 200, "login 1"),  # ...redeems the code
        ("browser", "app", "GET", "/", 200, "login 1"),  # the app's redirect after the login
        *[exchange for n in (1, 2, 3) for exchange in (
            ("browser", "app", "GET", "/invoices", 200, f"unit {n}"),  # the user asks for invoices...
            ("target", "api", "GET", "/invoices", 200, f"unit {n}"))],  # ...and the app uses its token
    ]
    callback = result.exchanges[2]
    assert callback.done >= result.exchanges[3].n, "the code exchange happened while the app served the callback"
    assert callback.headers.get("cookie"), "the browser carried the app's session cookie"
    authorize = result.exchanges[1]
    assert authorize.query["client_id"] == harness.client_id
    assert authorize.query["redirect_uri"] == harness.values["redirect_uri"]
    assert authorize.facts["pkce_method"] == "S256"


def test_the_apps_stdout_and_stderr_are_the_scenarios_output(web_harness: Callable[..., Harness]) -> None:
    result = web_harness().scenario("baseline")
    assert "logged in" in result.output  # the app's stdout
    assert result.output.count('"GET /invoices HTTP/1.1" 200') == 3  # http.server's request log, stderr
    (pid,) = pids(result.output)
    assert gone(pid), "the app outlived its scenario"


def test_an_app_that_never_answers_fails_the_scenario_with_its_output(web_harness: Callable[..., Harness]) -> None:
    # Long enough for the app to print on two busy cores, short beside the default 30 s.
    harness = web_harness(mode="mute", ready_timeout=2.5)
    began = time.monotonic()
    result = harness.scenario("baseline")
    assert time.monotonic() - began < 8
    assert result.outcome == "error"
    port = harness.values["port"]
    assert f"did not answer http://127.0.0.1:{port}/ within 2.5 s (ready_timeout)" in result.reason
    assert "warming up the caches" in result.reason  # the tail of its output
    assert result.events == []
    (pid,) = pids(result.reason)
    assert gone(pid)


def test_an_app_that_libfaketime_took_down_is_run_again_and_never_blamed(web_harness: Callable[..., Harness],
                                                                         tmp_path: Path) -> None:
    harness = web_harness(env={"APP_CLOCK_MOVER_FAILS_ONCE": str(tmp_path / "failed")})
    result = harness.scenario("baseline")
    assert result.outcome == "completed" and result.crash is None, result.reason
    assert steps(result) == [("login", True), ("unit", True), ("unit", True), ("unit", True)]
    (note,) = [n for n in result.run_notes if "libfaketime" in n]
    assert note.startswith("scenario baseline: libfaketime, rfcheck's clock mover, failed inside the app (In "
                           "parse_ft_string(), failed to parse FAKETIME timestamp.)"), note
    assert "the scenario was run again, and this is that run" in note
    assert "libfaketime" not in result.output, "the report holds the run that went through"


def test_an_app_that_libfaketime_takes_down_twice_is_not_judged(web_harness: Callable[..., Harness],
                                                                tmp_path: Path) -> None:
    harness = web_harness(mode="clock_mover_fails", env={"APP_CLOCK_MOVER_FAILS_ONCE": str(tmp_path / "failed")})
    result = harness.scenario("baseline")
    assert result.outcome == "error" and result.crash is None
    assert "a race of libfaketime's own (wolfcw/libfaketime#547), not the app's" in result.reason
    assert "the scenario was run again and it failed again" in result.reason and "not judged" in result.reason


def test_an_app_that_crashes_at_start_fails_the_scenario_with_the_reason(web_harness: Callable[..., Harness]) -> None:
    harness = web_harness(mode="crash")
    result = harness.scenario("baseline")
    assert result.outcome == "error"
    assert "exited with status 3" in result.reason
    assert "RF_MISSING_SETTING is not set, giving up" in result.reason
    assert result.events == [] and result.exchanges == []
    assert harness.scenario("expiry").outcome == "error", "the run goes on to the next scenario"


def test_a_step_that_hangs_fails_after_the_step_timeout(web_harness: Callable[..., Harness]) -> None:
    result = web_harness(actions=["/slow"], step_timeout=0.3).scenario("baseline")
    assert result.outcome == "completed"
    assert steps(result) == [("login", True), ("unit", False), ("unit", False), ("unit", False)]
    assert result.events[1].detail == "GET /slow: no whole answer within 0.3 s (step_timeout)"


def test_an_action_the_app_refuses_fails_the_step_with_its_answer(web_harness: Callable[..., Harness]) -> None:
    result = web_harness(actions=["/nowhere"]).scenario("baseline")
    assert steps(result)[1] == ("unit", False)
    assert result.events[1].detail == "GET /nowhere answered 404: not found"


def test_a_login_route_that_does_not_redirect_fails_the_login(web_harness: Callable[..., Harness]) -> None:
    result = web_harness(login="/").scenario("baseline")
    assert steps(result) == [("login", False)]
    assert result.events[0].detail.startswith("GET / led to 200 instead of a redirect to the authorization server")


def test_restart_session_keeps_one_process_until_the_harness_stops(web_harness: Callable[..., Harness]) -> None:
    harness = web_harness(restart="session")
    first, second = harness.scenario("baseline"), harness.scenario("revoked_access")
    assert first.outcome == second.outcome == "completed"
    assert steps(second)[:2] == [("login", True), ("unit", True)], "logged in again in the same app"
    assert pids(first.output) == pids(second.output) and len(pids(first.output)) == 1
    assert "listening on" in first.output and "listening on" not in second.output  # each its own output
    (pid,) = pids(first.output)
    assert alive(pid)
    harness.stop()
    assert gone(pid)


def test_restart_scenario_starts_a_fresh_process_for_each_scenario(web_harness: Callable[..., Harness]) -> None:
    harness = web_harness()
    first = harness.scenario("baseline")
    (first_pid,) = pids(first.output)
    assert gone(first_pid), "stopped after its scenario"
    second = harness.scenario("revoked_access")
    (second_pid,) = pids(second.output)
    assert second_pid != first_pid
    assert "listening on" in second.output


def test_a_process_that_dies_on_an_error_answer_ends_its_scenario_with_the_crash(
        web_harness: Callable[..., Harness]) -> None:
    result = web_harness(mode="die_on_error").scenario("revoked_access")
    assert result.outcome == "completed", result.reason
    assert result.crash is not None and result.crash.after == "unit 2"
    assert result.crash.detail == "the process exited with status 1"
    trigger = next(e for e in result.exchanges if e.n == result.crash.trigger)
    assert (trigger.request_line, trigger.status) == ("GET /invoices", 401)
    assert "FATAL: the API answered 401" in result.crash.errors
    assert [(e.kind, e.label) for e in result.events][-1] == ("unit", "unit 2"), "no step ran after the crash"
    assert [p.alive for p in result.probes] == [True, True, True, False]


def test_a_healthy_app_is_probed_after_every_step_and_at_the_end(web_harness: Callable[..., Harness]) -> None:
    result = web_harness().scenario("revoked_access")
    assert result.crash is None
    assert [p.after for p in result.probes] == [e.label for e in result.events] + ["the end of the scenario"]
    assert all(p.alive for p in result.probes)


def test_a_taken_fixed_port_is_refused_with_its_number_when_rfcheck_cannot_move_it(
        web_harness: Callable[..., Harness], tmp_path: Path) -> None:
    script = tmp_path / "start.sh"  # a shell script: rfcheck cannot move the port of what it starts
    script.write_text(f'exec "{sys.executable}" "{APP}"\n')
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        result = web_harness(url=f"http://127.0.0.1:{port}", start=f"sh {script}").scenario("baseline")
    assert result.outcome == "error"
    assert result.reason.startswith(f"port {port} of [target.web] url http://127.0.0.1:{port} is already taken")


def test_a_python_app_on_a_taken_fixed_port_runs_on_a_port_of_its_own(web_harness: Callable[..., Harness]) -> None:
    with socket.socket() as other_program:  # a developer's own server where the app asks to listen
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        result = web_harness(url=f"http://127.0.0.1:{port}").scenario("baseline")
    assert result.outcome == "completed", result.reason  # started and driven: not refused for the port
    assert result.events and "already taken" not in result.reason


def test_a_port_picked_for_it_then_taken_says_so(web_harness: Callable[..., Harness],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        monkeypatch.setattr("rfcheck.lanes.free_port", lambda: port)  # as if it was taken after the pick
        result = web_harness().scenario("baseline")
    assert result.outcome == "error"
    assert result.reason.startswith(f"port {port}, picked free for {{port}} in [target.web] url, was taken by "
                                    "another program before the app started: run again")


def test_a_failed_start_shows_the_first_error_lines_above_a_long_tail(
        web_harness: Callable[..., Harness], tmp_path: Path) -> None:
    script = tmp_path / "noisy.py"
    script.write_text("import sys\nprint('Error: RF_ISSUER is not a URL')\n"
                      "for i in range(100): print(f'-----BEGIN CERTIFICATE----- line {i}')\nsys.exit(2)\n")
    result = web_harness(start=f'"{sys.executable}" "{script}"').scenario("baseline")
    assert result.outcome == "error"
    assert "its first error lines:\nError: RF_ISSUER is not a URL" in result.reason
    assert "line 99" in result.reason


def test_a_session_cookie_ends_by_its_lifetime_on_rfcheck_s_clock(web_harness: Callable[..., Harness]) -> None:
    # the app gives its session cookie 3 h (Max-Age); the user is active every 4 h across the expiry, so the
    # browser, on rfcheck's clock, has dropped the cookie by the second active unit, and the step says why
    result = web_harness(env={"APP_COOKIE_MAX_AGE": "10800"}).scenario("expiry")
    units = [(e.label, e.ok) for e in result.events_of("unit")]
    assert units[:3] == [("unit 1", True), ("unit 2", True), ("active unit 1", True)], units
    second = next(e for e in result.events_of("unit") if e.label == "active unit 2")
    assert (second.ok, second.failure) == (False, "login_required"), second
    assert second.detail == ("the app sent the user to log in again: its cookie sid (Max-Age=10800) had reached "
                             "the end of the lifetime the app gave it, on rfcheck's clock"), second.detail
    request = next(e for e in result.during(second) if e.origin == "browser")
    assert "sid=" not in request.headers.get("cookie", ""), "the browser no longer sent it"


def test_without_a_lifetime_the_session_cookie_lives_on(web_harness: Callable[..., Harness]) -> None:
    result = web_harness().scenario("expiry")  # (this app never refreshes: the units after the expiry fail)
    active = [e for e in result.events_of("unit") if e.label.startswith("active unit")]
    assert len(active) == 6 and all(e.ok for e in active), [(e.label, e.detail) for e in active if not e.ok]
