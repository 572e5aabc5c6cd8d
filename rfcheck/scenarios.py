"""Scenarios: the target run once under one condition, with what it did recorded.

A scenario is a small function over a :class:`ScenarioRun`, which offers the
steps (log in, do units of work, travel in time, turn on a fault, deliver a
forged callback) and records each step's outcome next to the journal slice it
produced. Requirement checks then read the :class:`ScenarioResult`.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
import contextlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from rfcheck.targets.consent import consent
from rfcheck import Environment
from rfcheck.observed import ACTIVE_EVERY, CLOCK_STILL, DAY, Crash, Event, Probe, ScenarioResult, last_answer
from rfcheck.facts import AUDIENCE, CLIENT_CREDENTIALS
from rfcheck.provider.accounts import SOLO_USER, Client
from rfcheck.provider.app import Provider
from rfcheck.targets.base import Driver, DriverError, StepFailed
from rfcheck.transport.inprocess import InProcessTransport



# -- what a scenario needs of the engine that runs it (rfcheck.harness and rfcheck.lanes provide it) -----------
class RunConfig(Protocol):
    """The parts of the target config a scenario reads."""

    @property
    def kind(self) -> str: ...
    @property
    def flow(self) -> str: ...
    @property
    def scopes(self) -> tuple[str, ...]: ...


class LaneView(Protocol):
    """A lane: the client registered for it and the environment its target was started with."""

    client: Client | None
    environment: Environment | None


class Engine(Protocol):
    """What runs a scenario: the config, a lane and a fresh driver for it, the Ctrl-C flag, the target's clock."""

    @property
    def config(self) -> RunConfig: ...
    @property
    def client_id(self) -> str: ...
    @property
    def stopping(self) -> bool: ...
    def on_a_lane(self) -> contextlib.AbstractContextManager[tuple[Any, Provider]]: ...
    def new_driver(self, lane: Any, provider: Provider) -> Driver: ...
    def follow_target_clock(self, provider: Provider, driver: Driver) -> None: ...


PAST_EXPIRY = DAY + 120  # comfortably past the 24 h lifetime and every refresh margin


class TargetDown(Exception):
    """The target's process is gone: the scenario's remaining steps cannot run (REL-01 reports it)."""


class ScenarioRun:
    """The steps a scenario function can take against one freshly started target."""

    def __init__(self, harness: Engine, lane: LaneView, provider: Provider, name: str, driver: Driver) -> None:
        self.harness = harness
        self.lane = lane
        self.name = name
        self.driver = driver
        self.provider = provider
        self.journal = provider.journal
        self.result = ScenarioResult(name, "completed", provider=provider)
        self._counts: dict[str, int] = {}
        self._start = self.journal.mark()
        self._origin = provider.clock.offset  # a shared world's timeline does not start at zero

    @property
    def flow(self) -> str:
        return self.harness.config.flow

    @contextmanager
    def step(self, kind: str, label: str | None = None, counted: bool = True) -> Iterator[Event]:
        """Record one step; a :class:`StepFailed` inside it marks the step failed and is swallowed.
        ``counted`` False keeps it out of the numbering of its kind (``unit 3``)."""
        if counted:
            self._counts[kind] = self._counts.get(kind, 0) + 1
        event = Event(kind, label or f"{kind} {self._counts[kind]}", ok=True, first=self.journal.mark())
        self.journal.set_step(event.label)
        try:
            yield event
        except StepFailed as err:
            event.ok, event.detail, event.failure, event.status = False, str(err), err.kind, err.status
        finally:
            event.last = self.journal.mark()
            event.offset = self.provider.clock.offset - self._origin
            self.result.events.append(event)
        self.watch(event.label, event.first)

    def watch(self, after: str, since: int | None = None) -> None:
        """REL-01: after each step, a process target must still run and answer; if not, the scenario ends."""
        health = self.driver.health()
        if health is None:
            return
        mark = self.journal.mark()
        self.result.probes.append(Probe(after, health.alive, health.detail, mark))
        if health.alive:
            return
        trigger = last_answer(self.journal.since(self._start), self._start if since is None else since)
        self.result.crash = Crash(after, health.detail, trigger.n if trigger else None, health.errors, health.tail)
        raise TargetDown(health.detail)

    # -- the steps -----------------------------------------------------------
    def login(self, label: str | None = None) -> bool:
        """The user logs in (authorization code flow); nothing to do for client credentials."""
        if self.flow == CLIENT_CREDENTIALS:
            return True
        with self.step("login", label) as event:
            callback = consent(self.provider, self.driver.start_login())
            event.detail = "callback delivered"
            self.driver.finish_login(callback)
        return event.ok

    def units(self, count: int, parallel: bool = False) -> list[Event]:
        """``count`` units of work, one after the other or all at once from as many threads."""
        if not parallel:
            return [self._unit() for _ in range(count)]
        return self._parallel_units(count)

    def _unit(self, label: str | None = None, counted: bool = True) -> Event:
        with self.step("unit", label, counted) as event:
            self.driver.exercise()
        return event

    def _parallel_units(self, count: int) -> list[Event]:
        first = self.journal.mark()
        # what the target sends from its own threads (a web app's) belongs to all of them at once
        self.journal.set_step(f"{count} parallel units")
        events: list[Event] = []
        broken: list[DriverError] = []  # rfcheck's own side failed (the browser): the scenario is an error
        barrier = threading.Barrier(count)

        def work(i: int) -> None:
            event = Event("unit", f"parallel unit {i + 1}", ok=True, first=first)
            with self.journal.thread_step(event.label, first):
                barrier.wait()
                try:
                    self.driver.exercise()
                except StepFailed as err:
                    event.ok, event.detail, event.failure, event.status = False, str(err), err.kind, err.status
                except DriverError as err:
                    broken.append(err)
                    return
            events.append(event)

        threads = [threading.Thread(target=work, args=(i,), name=f"rfcheck-unit-{i}") for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        if broken:
            raise broken[0]
        for event in events:
            event.last = self.journal.mark()
            event.offset = self.provider.clock.offset - self._origin
        self.result.events.extend(sorted(events, key=lambda e: e.label))
        self.watch(f"{count} parallel units", first)
        return events

    def travel_active(self, seconds: float) -> None:
        """Travel ``seconds`` with the user active all the way: a unit of work every :data:`ACTIVE_EVERY`,
        the odd remainder first, so that the last unit is :data:`ACTIVE_EVERY` before the travel ends
        (``24h2m``: units 2 min, 4 h 2 min, … 20 h 2 min after it began; the session was last used 4 h
        before its end). The client credentials flow has no user, and no session to keep: one travel."""
        if self.flow == CLIENT_CREDENTIALS:
            self.travel(seconds)
            return
        slices = int(seconds // ACTIVE_EVERY)
        remainder = seconds - slices * ACTIVE_EVERY
        moves = ([remainder] if remainder else []) + [float(ACTIVE_EVERY)] * slices
        for index, move in enumerate(moves):
            self.travel(move)
            if index < len(moves) - 1:
                self._counts["active"] = self._counts.get("active", 0) + 1
                self._unit(f"active unit {self._counts['active']}", counted=False)

    def travel(self, seconds: float) -> None:
        """Move rfcheck's clock, and the target's with it when it can be moved."""
        with self.step("travel", f"travel +{seconds / 3600:g} h") as event:
            self.provider.clock.travel(seconds)
            event.detail = "the target's clock moved too" if self.driver.can_move_clock else CLOCK_STILL

    def fault(self, label: str, action: Callable[[], Any]) -> None:
        """Change how the mock behaves from now on (revocations, ID token faults, key rotation…)."""
        with self.step("fault", label) as event:
            event.detail = str(action() or "")

    def deliver_callback(self, callback_url: str, label: str) -> bool:
        """Send the user's browser to ``callback_url``; True when the target accepted it."""
        with self.step("forged_callback", label) as event:
            self.driver.finish_login(callback_url)
        return event.ok

    def forge_callback(self, with_state: bool = True) -> "ForgedCallback":
        """An attacker's authorization code for the target's client, from a login the target never started.

        The attacker's own authorization request has no PKCE, so a PKCE client cannot redeem the code
        (RFC 9700 §4.8.2); ``with_state`` False drops ``state`` from the forged callback altogether.
        """
        client = self.lane.client
        assert client is not None and self.lane.environment is not None
        state = "attacker-" + secrets.token_urlsafe(8)
        params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uris[0],
                  "audience": AUDIENCE, "scope": " ".join(self.harness.config.scopes)}
        if with_state:
            params["state"] = state
        previous, self.provider.user = self.provider.user, SOLO_USER
        try:
            url = httpx.URL(self.lane.environment.issuer + "/authorize", params=params)
            with self.step("forged_callback", "attacker obtains a code"):
                callback = consent(self.provider, str(url), origin="attacker")
        finally:
            self.provider.user = previous
        code = httpx.URL(callback).params.get("code", "")
        self.result.facts.setdefault("forged_codes", []).append(code)
        return ForgedCallback(code=code, state=state if with_state else "", callback_url=callback)

    def start_login_only(self) -> str:
        """The target starts a login that the user never completes; returns the URL."""
        with self.step("login", "login started, not completed") as event:
            url = self.driver.start_login()
            event.detail = url
        return event.detail if event.ok else ""


@dataclass(frozen=True)
class ForgedCallback:
    code: str
    state: str
    callback_url: str


ScenarioFunction = Callable[[ScenarioRun], None]


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario: its name, what it does (``run``, made from ``steps`` by :mod:`rfcheck.steps`), the flows
    it applies to, and the file it was read from."""

    name: str
    run: ScenarioFunction
    flows: frozenset[str]
    description: str
    steps: tuple[Any, ...] = ()
    file: str = ""

    def expected_wait(self) -> float:
        """Seconds the scenario waits by design (Retry-After answers, a slow token endpoint): the scenarios
        that wait longest start first when several run at once."""
        wait = 0.0
        for step in self.steps:
            if step.kind != "fault" or not step.args:
                continue
            try:
                if step.args[0] == "token_endpoint_fails" and len(step.args) >= 4:
                    wait += float(step.args[2]) * float(step.args[3])
                elif step.args[0] == "token_delay" and len(step.args) >= 2:
                    wait += float(step.args[1])
            except ValueError:
                continue
        return wait

    def fault_arguments(self) -> dict[str, str]:
        """Each fault's argument in the scenario's first ``fault <fault> ARGUMENT`` step that gives one."""
        found: dict[str, str] = {}
        for step in self.steps:
            if step.kind == "fault" and len(step.args) > 1:
                found.setdefault(str(step.args[0]), str(step.args[1]))
        return found




def execute(harness: Engine, lane: LaneView, provider: Provider, spec: ScenarioSpec) -> ScenarioResult:
    """Run one scenario on a fresh target, on ``lane`` with ``provider`` bound to it; a target that cannot
    start yields an ``error`` result."""
    result = ScenarioResult(spec.name, "completed", provider=provider)
    try:
        driver = harness.new_driver(lane, provider)
    except DriverError as err:
        result.outcome, result.reason = "error", str(err)
        return result
    run = ScenarioRun(harness, lane, provider, spec.name, driver)
    run.result = result
    with _in_process(harness, provider):
        try:
            _start(harness, lane, provider, driver)
            spec.run(run)
            run.watch("the end of the scenario")
        except TargetDown:
            pass  # the crash is on the result; the steps after it could not run
        except DriverError as err:
            result.outcome, result.reason = "error", str(err)
        finally:
            result.output = _stop(driver)
            strays = getattr(driver, "strays", [])
            if strays:
                result.notes.append(f"rfcheck stopped what the target had left running outside its process "
                                    f"group (setsid, a double fork): {'; '.join(strays)}")
                strays.clear()
            if driver.runtime_note:
                result.notes.append(driver.runtime_note)
            if driver.clock_note:  # a process seen only later (a command's run) counts too
                result.run_notes.append(driver.clock_note)
    result.exchanges = provider.journal.since(0)
    result.issued = provider.issued()
    result.fault_arguments = spec.fault_arguments()
    return result


def _in_process(harness: Engine, provider: Provider) -> contextlib.AbstractContextManager[Any]:
    """httpx routed to the scenario's mock, for an in-process target (its scenarios run one at a time)."""
    if harness.config.kind != "python":
        return contextlib.nullcontext()
    return InProcessTransport(provider)


def _start(harness: Engine, lane: LaneView, provider: Provider, driver: Driver) -> None:
    """Start the scenario's target with its lane's values, on its mock's clock."""
    provider.journal.set_step("start")
    assert lane.environment is not None
    driver.start(lane.environment, provider.clock)
    if harness.stopping:  # Ctrl-C or SIGTERM while it started: it goes at once
        raise DriverError("the run was stopped")
    harness.follow_target_clock(provider, driver)


def _stop(driver: Driver) -> str:
    try:
        return driver.stop()
    except Exception as err:  # a target that fails to stop still gets judged on what it did
        return f"(rfcheck could not stop the target cleanly: {type(err).__name__}: {err})"


class Sequence:
    """Steps taken one at a time against a fresh target, outside any scenario file (exploration):
    what :func:`execute` does, split so that the result can be judged after every step."""

    def __init__(self, harness: Engine, name: str) -> None:
        self._stack = contextlib.ExitStack()
        self.lane, self.provider = self._stack.enter_context(harness.on_a_lane())
        self._journal = self.provider.journal
        self._stopped = False
        try:
            self.driver = harness.new_driver(self.lane, self.provider)
        except BaseException:
            self._stack.close()
            raise
        self.run = ScenarioRun(harness, self.lane, self.provider, name, driver=self.driver)
        try:
            self._stack.enter_context(_in_process(harness, self.provider))
            _start(harness, self.lane, self.provider, self.driver)
        except BaseException:
            self.stop()
            raise

    def result(self) -> ScenarioResult:
        """What the target did so far."""
        self.run.result.exchanges = self._journal.since(0)
        self.run.result.issued = self.provider.issued()
        return self.run.result

    def stop(self) -> ScenarioResult:
        if not self._stopped:
            self._stopped = True
            try:
                self.run.result.output = _stop(self.driver)
            finally:
                self._stack.close()
        return self.result()
