"""Exploration: hypothesis searches for the order of Request Finance behaviours that breaks the target.

A :class:`~hypothesis.stateful.RuleBasedStateMachine` whose rules are the steps of the
scenario vocabulary (:mod:`rfcheck.steps`): a unit of work, several in parallel, a login, a
time travel by a drawn amount, revocations, a slow or failing token endpoint, a key rotation,
a withheld scope. Each example drives a fresh instance of the target, as a scenario does.

The invariants are the catalogue's own checks, run over what the target sent so far
(:data:`INVARIANTS`: the requirements whose violation can show in any sequence, plus TOKEN-01
while no fault has been switched on). When one breaks, hypothesis shrinks to the shortest
sequence that still breaks it; each requirement broken becomes an ``explored`` finding with
that sequence as steps and as a scenario file that replays it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rfcheck.catalogue import requirement
from rfcheck.checks import CHECKS, Context, load_all
from rfcheck.facts import AUTHORIZATION_CODE
from rfcheck.report.model import Finding
from rfcheck.scenarios import ScenarioResult, ScenarioRun, TargetDown
from rfcheck.steps import parse_steps, run_steps
from rfcheck.targets.base import DriverError

if TYPE_CHECKING:
    from hypothesis.stateful import RuleBasedStateMachine

    from rfcheck.harness import Harness

# hypothesis is imported when an exploration runs, never by a plain --rfcheck run (it costs half a second)

# judged after every step: rules whose violation can show in any order of events
INVARIANTS = ("AUTH-01", "AUTH-02", "AUTH-03", "NET-01", "NET-02", "NET-03", "FLOW-05", "SEC-04", "SEC-05",
              "TOKEN-03", "TOKEN-04", "TOKEN-08", "REL-01", "REL-02")
# judged while the sequence has no fault: a revocation or a withheld scope rightly costs a new token
WITHOUT_FAULTS = ("TOKEN-01",)
# judged once the target has stopped: what it wrote
AT_THE_END = ("SEC-03",)
TRAVELS = ("1h1m", "12h", "24h2m", "3d", "31d")  # within a token's life, past it, past the refresh token's
FAULTS = ("fault revoke_access_tokens", "fault revoke_refresh_tokens", "fault token_delay 0.1",
          "fault token_endpoint_fails 429 2 1", "fault token_endpoint_fails 503 1 1", "fault rotate_signing_key",
          "fault withhold_scopes user:read")
DEFAULT_SECONDS = 120.0
STEPS_PER_EXAMPLE = 10
CHUNK = 10  # examples per hypothesis run: the time budget is checked between runs, never inside one


@dataclass
class ExploredFinding:
    """A requirement an explored sequence broke: the shortest sequence found, and its evidence."""

    finding: Finding
    steps: list[str]
    scenario: str  # the sequence as a scenario file

    def as_report(self, redact: Callable[[str], str]) -> dict[str, Any]:
        entry = requirement(self.finding.id)
        return {"id": self.finding.id, "level": self.finding.level or entry.level, "steps": self.steps,
                "scenario": self.scenario, "reason": redact(self.finding.reason),
                "evidence": [{"scenario": e.scenario, "exchange": e.exchange, "request": redact(e.request),
                              "detail": redact(e.detail)} for e in self.finding.evidence]}


@dataclass
class Explored:
    """What an exploration did: examples run, seconds, the seed, and one finding per requirement broken."""

    examples: int = 0
    seconds: float = 0.0
    seed: int = 0
    findings: dict[str, ExploredFinding] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _Broken(AssertionError):
    """A requirement broken by the sequence so far (one subclass per requirement, so that hypothesis
    keeps one minimal example for each)."""

    finding: Finding


_BROKEN: dict[str, type[_Broken]] = {}


def _broken(finding: Finding) -> _Broken:
    kind = _BROKEN.setdefault(finding.id, type(f"Broken_{finding.id.replace('-', '_')}", (_Broken,), {}))
    error = kind(f"{finding.id} ({finding.status}): {finding.reason}")
    error.finding = finding
    return error


def scenario_file(steps: list[str], requirement_id: str) -> str:
    """The sequence as a scenario file of ``scenarios/``."""
    lines = ",\n".join(f'  "{step}"' for step in steps)
    return (f'description = "Found by rfcheck --rfcheck-explore: this order of events breaks {requirement_id}."\n'
            f"steps = [\n{lines},\n]\n")


class Exploration:
    """One exploration of the run's target: at most ``examples`` sequences, within ``seconds``."""

    def __init__(self, harness: "Harness", examples: int, seconds: float = DEFAULT_SECONDS, seed_value: int = 0,
                 database: Path | None = None) -> None:
        load_all()
        self.harness = harness
        self.examples = examples
        self.seconds = seconds
        self.seed = seed_value
        self.database = database
        self.result = Explored(seed=seed_value)
        self._began = 0.0

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self._began)

    def run(self) -> Explored:
        """Hypothesis runs of :data:`CHUNK` examples each (seeds ``seed``, ``seed + 1``...) while the budget
        lasts; a run that finds a failure shrinks it (within what is left of the budget, at least 10 s)."""
        from hypothesis import HealthCheck, Phase, seed, settings
        from hypothesis.database import DirectoryBasedExampleDatabase
        from hypothesis.stateful import get_state_machine_test

        self._began = time.monotonic()
        machine = self._machine()
        chunk = 0
        while self.result.examples < self.examples and self.remaining() > 0:
            size = min(CHUNK, self.examples - self.result.examples)
            test = get_state_machine_test(machine, settings=settings(
                max_examples=size, stateful_step_count=STEPS_PER_EXAMPLE, deadline=None,
                suppress_health_check=list(HealthCheck), report_multiple_bugs=True, print_blob=False,
                phases=(Phase.reuse, Phase.generate, Phase.shrink) if self.database else (Phase.generate, Phase.shrink),
                database=DirectoryBasedExampleDatabase(str(self.database)) if self.database else None))
            before = self.result.examples
            with _shrinking_within(max(10.0, self.remaining())):
                self._one_run(seed(self.seed + chunk)(test))
            chunk += 1
            if self.result.examples == before:
                break  # nothing left to try (every example was already in the database)
        self.result.seconds = round(time.monotonic() - self._began, 1)
        return self.result

    def _one_run(self, test: Callable[[], None]) -> None:
        try:
            test()
        except _Broken:
            pass  # one requirement broken: recorded with its shortest sequence
        except BaseExceptionGroup as group:  # several: each recorded
            others = [e for e in _leaves(group) if not isinstance(e, _Broken)]
            self.result.notes += [f"exploration: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
                                  for e in others[:3]]
        except Exception as err:  # the target or hypothesis gave up: said in the report, never hidden
            self.result.notes.append(f"exploration stopped: {type(err).__name__}: {str(err).splitlines()[0][:300]}")

    # -- the state machine ------------------------------------------------------------------
    def _machine(self) -> "type[RuleBasedStateMachine]":
        from hypothesis import strategies as st
        from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

        exploration = self

        class Explore(RuleBasedStateMachine):
            def __init__(self) -> None:
                super().__init__()
                exploration.result.examples += 1
                self.number = exploration.result.examples
                self.steps: list[str] = []
                self.faults = False
                self.sequence = exploration.harness.start_sequence(f"explore_{self.number}")

            @initialize()
            def first_login(self) -> None:
                self.do("login")

            @rule()
            def unit(self) -> None:
                self.do("units 1")

            @rule(count=st.integers(2, 4))
            def parallel_units(self, count: int) -> None:
                self.do(f"units {count} parallel")

            @rule()
            def login(self) -> None:
                self.do("login")

            @rule(duration=st.sampled_from(TRAVELS))
            def travel(self, duration: str) -> None:
                self.do(f"travel {duration}")

            @rule(fault=st.sampled_from(FAULTS))
            def fault(self, fault: str) -> None:
                self.do(fault)

            def do(self, text: str) -> None:
                self.steps.append(text)
                self.faults = self.faults or text.startswith("fault ")
                (step,) = parse_steps([text], Path("explore"))
                try:
                    run_steps((step,))(self.sequence.run)
                except TargetDown:
                    self.judge(("REL-01",))

            @invariant()
            def requirements_hold(self) -> None:
                self.judge(INVARIANTS + (() if self.faults else WITHOUT_FAULTS))

            def judge(self, ids: tuple[str, ...]) -> None:
                result = self.sequence.result()
                for requirement_id in ids:
                    if exploration.harness.config.flow not in requirement(requirement_id).applies_to:
                        continue
                    finding = CHECKS[requirement_id].function(Context(exploration.harness, {result.name: result}))
                    if finding.status in ("fail", "warn"):
                        exploration.record(finding, list(self.steps))
                        raise _broken(finding)

            def teardown(self) -> None:
                if getattr(self, "sequence", None) is None:
                    return
                self.sequence.stop()
                self.judge(AT_THE_END)

        return Explore

    def record(self, finding: Finding, steps: list[str]) -> None:
        """The shortest sequence found so far that breaks the requirement (hypothesis replays it last)."""
        known = self.result.findings.get(finding.id)
        if known is None or len(steps) <= len(known.steps):
            self.result.findings[finding.id] = ExploredFinding(finding, steps, scenario_file(steps, finding.id))


@contextlib.contextmanager
def _shrinking_within(seconds: float) -> Iterator[None]:
    """hypothesis shrinks for up to 300 s; the exploration's budget is the user's, so it bounds that too."""
    from hypothesis.internal.conjecture import engine

    saved = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = int(seconds)
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = saved


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found


def explored_report(explored: Explored, redact: Callable[[str], str]) -> dict[str, Any]:
    """The report's ``explored`` object (target-contract.md)."""
    return {"examples": explored.examples, "seconds": explored.seconds, "seed": explored.seed,
            "findings": [f.as_report(redact) for f in explored.findings.values()]}


def as_finding(found: ExploredFinding, catalogue: Finding | None) -> Finding | None:
    """The requirement's finding once an explored sequence broke it: a fail (must) or warn (should) that
    names the sequence, unless the catalogue already found it short; None when nothing changes."""
    if catalogue is not None and catalogue.status in ("fail", "warn"):
        return None
    reason = f"an explored sequence breaks it ({' -> '.join(found.steps)}): {found.finding.reason}"
    return Finding(found.finding.id, found.finding.status, reason, found.finding.evidence, found.finding.level)
