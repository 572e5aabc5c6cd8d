"""One rfcheck run: the mock, its lanes, the registered client, the target's drivers, the scenarios.

Scenarios run side by side, each on a lane of its own (:mod:`rfcheck.lanes`), as many at once as
``jobs`` allows; a target that cannot tell its instances apart runs them one at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager

from rfcheck import leftovers
from rfcheck import Environment, Target
from rfcheck.config import CommandSpec, TargetConfig, WebSpec
from rfcheck.checks import Context
from rfcheck.journal import Exchange, Secrets
from rfcheck.observed import RunView
from rfcheck.targets.output import app_error
from rfcheck.world import Registry, SharedWorld, crossings
from rfcheck.lanes import Lane, default_jobs, fill, free_port, serial_reason
from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.provider.clock import Clock, seconds_since_boot
from rfcheck.provider.keys import KeySet
from rfcheck.scenarios import ScenarioResult, ScenarioSpec, Sequence, execute
from rfcheck.steps import SCENARIOS, own_scenarios
from rfcheck.targets.base import Driver, DriverError
from rfcheck.targets.python import PythonDriver
from rfcheck.tls import LOOPBACK_NAMES, RunCA

__all__ = ["Harness", "PythonFactory", "fill", "free_port"]

PythonFactory = Callable[[Environment], Target]
_WAIT = 0.1  # seconds between looks at a scenario another thread runs (the main thread prints progress)


class Harness:
    """Starts the mock for a run, hands out lanes and fresh drivers, and runs each scenario once."""

    def __init__(self, config: TargetConfig, python_factory: PythonFactory | None = None,
                 jobs: int | None = None) -> None:
        self.config = config
        self.python_factory = python_factory
        self.secrets = Secrets()  # every journal of the run redacts what any scenario issued
        self.keys = KeySet()  # the first signing key, shared; a rotation stays in its scenario
        self.provider = self.new_provider(Clock())  # the run's own: what reaches an idle lane
        self.ca = RunCA() if config.tls or config.proxy or config.hosts else None
        # proxy mode alone needs the CA for its tunnels; the loopback servers stay http unless tls = true
        tls = self.ca.issue(LOOPBACK_NAMES, "loopback") if self.ca and config.tls else None
        self._tls = (tls.cert_file, tls.key_file) if tls else None
        why = serial_reason(config)
        # --rfcheck-jobs decides; else enough to overlap waiting, at most what the target tolerates ([target] jobs)
        self.jobs = 1 if why else jobs or min(default_jobs(), config.jobs or default_jobs())
        self._serial_note = why
        self._canary = ""  # the first scenario run: only its failure to drive the target stops the others
        self._lanes: list[Lane] = []
        self._idle: "queue.SimpleQueue[Lane]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._futures: dict[str, Future[ScenarioResult]] = {}
        self._progress: "queue.SimpleQueue[tuple[ScenarioResult, float]]" = queue.SimpleQueue()
        self._busy: dict[int, Driver] = {}  # lane index -> the driver of the scenario it runs
        self._stopping = False
        self._state_dirs: list[str] = []
        self._session_driver: Driver | None = None
        self._notes: list[str] = []
        self.results: dict[str, ScenarioResult] = {}
        # the built-in scenarios, then the integration's own ([target] scenarios)
        self.scenarios = {**SCENARIOS, **own_scenarios(config)}
        self.start_failure = ""  # why the target could not be started or driven: no scenario tries again
        self.never_worked = ""  # why the target's baseline work never succeeded (checks.undriven)
        self._running: dict[str, tuple[Provider, float]] = {}  # scenarios under way: their mock, when they began
        self.on_scenario: Callable[[ScenarioResult, float], None] | None = None  # after each scenario ran
        self.client: Client | None = None
        self.registry = Registry()  # every mock's tokens: a shared store of the integration's shows in it
        self._world: SharedWorld | None = None
        self._crossed: dict[str, set[str]] = {}  # scenario -> the scenarios whose tokens it presented
        self._furthest = 0.0  # the furthest offset any scenario's clock reached: where a shared world goes on

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        swept = leftovers.sweep()
        if swept:
            self.note(f"removed {len(swept)} temporary folder(s) or file(s) that an rfcheck run killed before its "
                      f"end had left (tokens, keys, state): {', '.join(sorted(swept)[:5])}"
                      + (" …" if len(swept) > 5 else ""))
        first = self._new_lane()
        self.client = first.client
        self._idle.put(first)

    def _new_lane(self) -> Lane:
        lane = Lane(len(self._lanes), self.config, self.provider, self.ca, self._tls)
        run_client = self._lanes[0].client if self._lanes else None
        lane.start(run_client)
        self._lanes.append(lane)
        return lane

    def stop(self) -> None:
        self._stopping = True
        for driver in list(self._busy.values()):  # scenarios still running (Ctrl-C, SIGTERM): their targets go
            _quietly_stop(driver)
        shutdown = getattr(self._session_driver, "shutdown", None)
        if callable(shutdown):
            shutdown()
        for lane in self._lanes:
            lane.stop()
        browser = sys.modules.get("rfcheck.targets.chromium")  # loaded only once a page ran scripts
        if browser is not None:
            browser.shutdown()
        for folder in self._state_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        if self.ca is not None:  # the run's certificates and their keys
            shutil.rmtree(self.ca.folder, ignore_errors=True)

    def not_driven(self) -> tuple[str, str, list[str]] | None:
        """When the target could not be driven: which scenario showed it, why (the first line), and the app's
        own error found in that scenario's output; None when it was driven."""
        why = self.start_failure or self.never_worked
        if not why:
            return None
        name = self._canary if self.start_failure else "baseline"
        result = self.results.get(name)
        output = (result.output if result is not None else "") + "\n" + why
        first = why.strip().splitlines()[0] if why.strip() else why
        return name, self.redact(first), [self.redact(line) for line in app_error(output)]

    def in_flight(self) -> list[tuple[str, str, float, list[Exchange]]]:
        """The scenarios under way (a run stopped by SIGTERM): name, the step they were at, seconds since
        they began, their exchanges so far."""
        now = seconds_since_boot()
        return [(name, provider.journal.current_step, now - began, provider.journal.since(0))
                for name, (provider, began) in sorted(dict(self._running).items())]

    @property
    def stopping(self) -> bool:
        """The run is ending (Ctrl-C, SIGTERM, the session's end): no target starts any more."""
        return self._stopping

    def new_provider(self, clock: Clock) -> Provider:
        """A fresh mock for one scenario: its own state, the run's first signing key and redaction."""
        return Provider(clock=clock, keys=KeySet(self.keys.current), secrets=self.secrets)

    @property
    def lane(self) -> Lane:
        """The first lane (its values are what the run's own tests see)."""
        assert self._lanes, "Harness.start() first"
        return self._lanes[0]

    @property
    def values(self) -> dict[str, str]:
        return self.lane.values

    @property
    def environment(self) -> Environment:
        assert self.lane.environment is not None
        return self.lane.environment

    @property
    def client_id(self) -> str:
        assert self.client is not None, "Harness.start() first"
        return self.client.client_id

    def redact(self, text: str) -> str:
        return self.secrets.redact(text)

    def check_context(self, results: dict[str, ScenarioResult]) -> Context:
        """What a check reads of this run: its frozen view, and ``results``."""
        client = self.client
        view = RunView(config=self.config, client_id=client.client_id if client else "",
                       redirect_uris=tuple(client.redirect_uris) if client else (), secrets=self.secrets.values,
                       issued=self.provider.issued(), organizations=tuple(o.name for o in self.provider.user.organizations),
                       redact=self.redact)
        return Context(view, results)

    @property
    def notes(self) -> list[str]:
        """The run's notes, each once, in an order that does not depend on which scenario finished first."""
        notes = [self._serial_note] if self._serial_note else []
        for lane in self._lanes:
            notes += lane.notes
        notes += self._notes
        if self.never_worked:
            notes.append(f"the target was not driven: {self.never_worked}; what it was never seen doing is not "
                         "judged, and the run fails")
        for result in self.ordered_results():
            notes += result.run_notes
            provider = result.provider
            notes += [f"{result.name}: {notice}" for notice in (provider.notices if provider else [])]
            errors = provider.errors if provider is not None else []
            notes += [f"rfcheck internal error while serving the {result.name} scenario: {type(err).__name__}: "
                      f"{self.redact(str(err))[:300]} (its request was answered 500, or its connection closed; "
                      "please report it)" for err in errors[:3]]
        notes += self.provider.notices
        notes += [f"rfcheck internal error outside any scenario: {type(err).__name__}: {self.redact(str(err))[:300]}"
                  for err in self.provider.errors[:3]]
        return list(dict.fromkeys(n for n in notes if n))

    def note(self, text: str) -> None:
        """A run-level note for the report (each once)."""
        if text and text not in self._notes:
            self._notes.append(text)

    # -- lanes and drivers -------------------------------------------------------------------
    @contextmanager
    def on_a_lane(self) -> Iterator[tuple[Lane, Provider]]:
        """A free lane with a fresh mock bound to it, for one scenario; the lane is free again after."""
        lane = self._acquire()
        try:
            provider = self.new_provider(lane.clock)
            lane.bind(provider)
            yield lane, provider
        finally:
            self._release(lane)

    def _acquire(self) -> Lane:
        """A lane for one scenario (a new one while fewer than ``jobs`` exist)."""
        with self._lock:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                if len(self._lanes) < self.jobs:
                    return self._new_lane()
        return self._idle.get()

    def _release(self, lane: Lane) -> None:
        self._busy.pop(lane.index, None)
        lane.release(self.provider)
        self._idle.put(lane)

    def new_driver(self, lane: Lane, provider: Provider) -> Driver:
        """A driver for the next scenario on ``lane`` (the same one throughout with ``restart = "session"``)."""
        if self._session_driver is not None:
            driver = self._session_driver
        else:
            driver = self._make_driver(lane, provider)
            if self.config.web is not None and self.config.web.restart == "session":
                self._session_driver = driver
        self._busy[lane.index] = driver
        return driver

    def _make_driver(self, lane: Lane, provider: Provider) -> Driver:
        kind = self.config.kind
        if kind == "python":
            if self.python_factory is None:
                raise DriverError(f"{self.config.file.name}: kind = 'python' needs [target.python] factory "
                                  "or a rfcheck_target fixture in conftest.py")
            return PythonDriver(self.python_factory, redact=self.redact, known=self.secrets.held_in)
        values = {**lane.values, "state_dir": self._state_dir()}
        env = self._process_environment(lane, values)
        instrumentation = lane.instrumentation()
        # the drivers of processes, imported when a target needs them (the web one brings Playwright's glue)
        from rfcheck.targets.command import CommandDriver
        from rfcheck.targets.web import WebDriver

        if kind == "web":
            assert self.config.web is not None
            web = self._filled_web(self.config.web, values)
            return WebDriver(self.config.web, self.config.root, web, instrumentation.environment(env, web.start),
                             provider, instrumentation)
        assert self.config.command is not None
        command = self._filled_command(self.config.command, values)
        return CommandDriver(self.config.command, self.config.root, command,
                             instrumentation.environment(env, command.run or command.serve), instrumentation,
                             provider.journal.holds_secret)

    def _state_dir(self) -> str:
        """{state_dir}: a fresh empty folder for each scenario's target (a token cache it keeps between runs)."""
        folder = leftovers.folder("state")
        self._state_dirs.append(folder)
        return folder

    def _process_environment(self, lane: Lane, values: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        if self.ca is not None:
            env.update(SSL_CERT_FILE=self.ca.ca_file, REQUESTS_CA_BUNDLE=self.ca.ca_file,
                       NODE_EXTRA_CA_CERTS=self.ca.ca_file)
        if lane.values.get("proxy_url"):
            proxy = lane.values["proxy_url"]
            env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy,
                       NO_PROXY="localhost,127.0.0.1,::1", no_proxy="localhost,127.0.0.1,::1")
        env.update({name: fill(value, values, f"[target.env] {name}") for name, value in self.config.env.items()})
        return env

    @staticmethod
    def _filled_web(spec: WebSpec, values: dict[str, str]) -> WebSpec:
        where = "[target.web]"
        return dataclasses.replace(spec, start=fill(spec.start, values, f"{where} start"),
                                   url=fill(spec.url, values, f"{where} url"))

    @staticmethod
    def _filled_command(spec: CommandSpec, values: dict[str, str]) -> CommandSpec:
        where = "[target.command]"
        return dataclasses.replace(
            spec, run=fill(spec.run, values, f"{where} run"), serve=fill(spec.serve, values, f"{where} serve"),
            actions=tuple(fill(a, values, f"{where} actions") for a in spec.actions))

    @staticmethod
    def follow_target_clock(provider: Provider, driver: Driver) -> None:
        """ID tokens are checked against the target's clock: the real one when it cannot travel."""
        provider.tokens.id_token_clock = provider.clock if driver.can_move_clock else Clock()

    # -- scenarios ----------------------------------------------------------------------
    def start_sequence(self, name: str) -> Sequence:
        """A fresh target, for steps taken one at a time (exploration)."""
        return Sequence(self, name)

    def prefetch(self, names: Iterable[str]) -> None:
        """Start running ``names`` in the background, ``jobs`` at a time: first a canary (the baseline) with the
        scenario that waits longest, then the rest once the canary showed that the target can be driven."""
        order = self._order([n for n in dict.fromkeys(names) if n in self.scenarios])
        with self._lock:
            order = [n for n in order if n not in self._futures]
            for name in order:
                self._futures[name] = Future()
        if order:
            threading.Thread(target=self._drive, args=(order,), name="rfcheck-scenarios", daemon=True).start()

    def _order(self, names: list[str]) -> list[str]:
        canary = ["baseline"] if "baseline" in names else names[:1]
        rest = sorted((n for n in names if n not in canary), key=lambda n: -self.scenarios[n].expected_wait())
        return canary + rest

    def _drive(self, order: list[str]) -> None:
        with self._lock:
            self._canary = self._canary or order[0]
        # the longest wait overlaps the canary (its failure to start costs no more time); the rest follow it
        early = 2 if self.jobs > 1 and len(order) > 1 and self.scenarios[order[1]].expected_wait() > 0 else 1
        canary_done = threading.Event()
        todo: "queue.SimpleQueue[tuple[int, str]]" = queue.SimpleQueue()
        for position, name in enumerate(order):
            todo.put((position, name))

        def work() -> None:
            while True:
                try:
                    position, name = todo.get_nowait()
                except queue.Empty:
                    return
                if position >= early:
                    canary_done.wait()
                try:
                    # what ran beside a canary that could not drive the target counts as not run, as serially
                    self._complete(name, self._futures[name], canary_done if 0 < position < early else None)
                finally:
                    if position == 0:
                        canary_done.set()

        workers = [threading.Thread(target=work, name=f"rfcheck-scenario-{i}", daemon=True)
                   for i in range(min(self.jobs, len(order)))]
        for worker in workers:
            worker.start()

    def scenario(self, name: str) -> ScenarioResult:
        """The result of scenario ``name``, run on first use (or waited for, when it runs already)."""
        with self._lock:
            future = self._futures.get(name)
            mine = future is None
            if future is None:
                future = self._futures[name] = Future()
        if mine and self._crossed:  # the run's scenarios already shared a store: this one goes to that world
            try:
                future.set_result(self._on_one_world(name))
            except BaseException as err:
                future.set_exception(err)
        elif mine:
            self._complete(name, future)
        result = self._wait(future)
        if not self._crossed:
            return result
        return self._on_one_world(name)

    def _wait(self, future: "Future[ScenarioResult]") -> ScenarioResult:
        while True:
            self.report_progress()
            try:
                return future.result(timeout=_WAIT)
            except TimeoutError:
                continue

    # -- one integration, one store (rfcheck.world) ----------------------------------------------------
    def _on_one_world(self, name: str) -> ScenarioResult:
        """The scenarios shared the integration's token store: once every scenario begun has ended, each is
        judged again on one shared world, one at a time on one lane (one issuer, one timeline); a scenario
        asked for later runs there at once."""
        with self._lock:
            pending = [future for other, future in self._futures.items() if other != name]
        for future in pending:
            with contextlib.suppress(BaseException):
                self._wait(future)
        with self._lock:
            if self._world is None:
                self._world = SharedWorld(self.registry, self._lanes[0].clock, self.keys)
            world = self._world
        with world.lock:
            if not world.scenarios:
                self.note(world.note(self._crossed))
            if name not in world.scenarios and not self._stopping:
                for other in dict.fromkeys([*(r.name for r in self.ordered_results()), name]):
                    if other not in world.scenarios and other in self.scenarios:
                        self.results[other] = self._in_shared_world(world, self.scenarios[other])
        return self.results[name]

    def report_progress(self) -> None:
        """Tell ``on_scenario`` about the scenarios finished so far (from the calling thread: the main one)."""
        while True:
            try:
                result, seconds = self._progress.get_nowait()
            except queue.Empty:
                return
            if self.on_scenario is not None:
                self.on_scenario(result, seconds)

    def _complete(self, name: str, future: "Future[ScenarioResult]", beside: threading.Event | None = None) -> None:
        try:
            result = self._run(name)
            if beside is not None:
                beside.wait()
                if self.start_failure:
                    result = ScenarioResult(name, "error", self.start_failure)
        except BaseException as err:  # a bug of rfcheck's: the requirement's test shows it
            future.set_exception(err)
            return
        self.results[name] = result
        future.set_result(result)

    def _run(self, name: str) -> ScenarioResult:
        spec = self.scenarios[name]
        if self.config.flow not in spec.flows:
            return ScenarioResult(name, "not-run", f"does not apply to the {self.config.flow} flow")
        if self.start_failure:
            return ScenarioResult(name, "error", self.start_failure)
        if self._stopping:
            return ScenarioResult(name, "error", "the run was stopped before this scenario")
        with self._lock:
            self._canary = self._canary or name
        began = seconds_since_boot()
        result, provider = self._attempt(spec, began)
        failure = clock_mover_failure(result)
        if failure:  # rfcheck's simulation took the app down, not the app: what production shows is a run without it
            result, provider = self._attempt(spec, began)
            again = clock_mover_failure(result)
            note = (f"libfaketime, rfcheck's clock mover, failed inside the app ({failure}): a race of libfaketime's "
                    "own (wolfcw/libfaketime#547), not the app's; ")
            if again:
                result = ScenarioResult(name, "error", note + f"the scenario was run again and it failed again "
                                        f"({again}), so it is not judged", output=result.output, notes=result.notes)
            else:
                result.run_notes.append(f"scenario {name}: " + note + "the scenario was run again, and this is "
                                        "that run")
        crossed = crossings(result.exchanges, provider.tokens, self.registry)
        if crossed:
            with self._lock:
                self._crossed[name] = crossed
        if name == "baseline":
            _not_driven_at_baseline(result)
            self.never_worked = never_worked(result)
        if result.outcome == "error" and name == self._canary:
            # a target that cannot be started or driven is not tried again for every scenario
            self.start_failure = result.reason
        self._progress.put((result, seconds_since_boot() - began))
        return result


    def _attempt(self, spec: ScenarioSpec, began: float) -> tuple[ScenarioResult, Provider]:
        """``spec`` played once on a free lane, against a mock of its own."""
        with self.on_a_lane() as (lane, provider):
            self.registry.add(spec.name, provider.tokens)
            self._running[spec.name] = (provider, began)
            try:
                result = execute(self, lane, provider, spec)
            finally:
                self._running.pop(spec.name, None)
            self._reached(lane.clock.offset)
        return result, provider

    def _reached(self, offset: float) -> None:
        with self._lock:
            self._furthest = max(self._furthest, offset)

    def _in_shared_world(self, world: SharedWorld, spec: ScenarioSpec) -> ScenarioResult:
        """``spec`` on the shared world: its tokens the run's, on the first lane (the world's clock), its
        timeline going on from the furthest point any mock reached (the caller holds ``world.lock``)."""
        world.scenarios.append(spec.name)
        if self.config.flow not in spec.flows:
            return ScenarioResult(spec.name, "not-run", f"does not apply to the {self.config.flow} flow")
        lane = self._lanes[0]
        provider = self.new_provider(lane.clock)
        lane.bind(provider)
        try:
            provider.tokens = world.tokens
            lane.clock.travel(max(world.offset, self._furthest))
            result = execute(self, lane, provider, spec)
            world.offset = lane.clock.offset
            if spec.name == "baseline":  # the world the verdict reads: whether the target was driven there
                self.never_worked = never_worked(result)
        finally:
            self._busy.pop(lane.index, None)
            lane.release(self.provider)
        return result

    def ordered_results(self) -> list[ScenarioResult]:
        """The results in the scenarios' own order (built-in files, then the integration's)."""
        rank = {name: i for i, name in enumerate(self.scenarios)}
        return sorted(self.results.values(), key=lambda r: rank.get(r.name, len(rank)))


def _quietly_stop(driver: Driver) -> None:
    try:
        driver.stop()
    except Exception:  # the run ends anyway; its report says what happened
        pass


def never_worked(result: ScenarioResult) -> str:
    """Why the baseline scenario, with Request Finance answering normally, saw no unit of work succeed
    (every page after the login answered 500, every run of the command failed); "" when one did. Such a
    target was not driven: what it was never seen doing is not judged (checks.undriven)."""
    if not result.completed:
        return ""  # an error scenario: its requirements are not judged anyway
    steps = [e for e in result.events if e.kind in ("login", "unit")]
    units = [e for e in steps if e.kind == "unit"]
    if not steps or any(u.ok for u in units) or (not units and all(e.ok for e in steps)):
        return ""
    failures = [e for e in steps if not e.ok]
    lines = [line.strip() for line in failures[0].detail.strip().splitlines() if line.strip()]
    detail = (" ".join(lines[:1] + lines[-1:] if len(lines) > 1 and lines[0].endswith(":") else lines[:1])[:300]
              or "no detail")
    counted = (f"none of its {len(units)} units of work succeeded" if units
               else "its login failed")
    return f"in the baseline scenario {counted} ({failures[0].label}: {detail})"


def _not_driven_at_baseline(result: ScenarioResult) -> None:
    """A target that, with Request Finance answering normally, sent it nothing could not be driven (a run
    that times out, an app that does not reach the mock): nothing it did can be judged, so the scenario is
    an error and the requirements are not judged, never passed."""
    units = [e for e in result.events if e.kind in ("login", "unit")]
    # the target's own requests, or its authorization URL followed by the user's browser to the mock
    spoke = any(e.origin in ("target", "browser") and e.host in ("auth", "api") for e in result.exchanges)
    if not result.completed or result.crash is not None or spoke or not units:
        return
    if any(e.failure == "bad_authorization_url" for e in units):
        return  # the target sent its user somewhere else: an observation FLOW-01 judges
    failures = [e for e in units if not e.ok]
    if failures:
        detail = " ".join(failures[0].detail.strip().splitlines()[:1])[:300] or "no detail"
        how = f"{len(failures)} of its {len(units)} steps failed ({failures[0].label}: {detail})"
    else:
        how = (f"its {len(units)} steps succeeded without it: the target does not reach the mock (does it use "
               "{issuer} and {api_url}, or [target.intercept] for hard-coded hosts?)")
    result.outcome = "error"
    result.reason = f"in the baseline scenario the target sent no request to Request Finance; {how}"


_LIBFAKETIME_SAYS = re.compile(r"^libfaketime: (.+)$", re.MULTILINE)


def clock_mover_failure(result: ScenarioResult) -> str:
    """What libfaketime said when it gave up inside the target (it then ends or crashes the process), or ""."""
    if result.crash is None and not any(not event.ok for event in result.events):
        return ""
    found = _LIBFAKETIME_SAYS.search(result.output) or _LIBFAKETIME_SAYS.search(result.reason)
    return found.group(1).strip() if found else ""
