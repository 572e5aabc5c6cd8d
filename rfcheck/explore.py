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

``--rfcheck-explore=N`` runs N sequences, the ones hypothesis draws; the replays of its shrinking are counted
apart. hypothesis keeps drawing after a failure it found (interesting examples do not count towards its
``max_examples``), so each of its runs stops at the first failure and shrinks that one; a requirement whose
shortest sequence is settled is not judged again, so that the next runs look for the others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rfcheck.provider.clock import seconds_since_boot
from rfcheck.catalogue import requirement
from rfcheck.checks import CHECKS
from rfcheck.checks.groups import load_all
from rfcheck.provider.named_faults import EXPLORED
from rfcheck.report.files import write_atomically
from rfcheck.report.model import Finding
from rfcheck.scenarios import TargetDown
from rfcheck.steps import parse_steps, run_steps

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
FAULTS = EXPLORED  # each named fault with the arguments it is explored with (provider/named_faults.py)
DEFAULT_SECONDS = 120.0
STEPS_PER_EXAMPLE = 10
CHUNK = 10  # sequences per hypothesis run: the time budget is checked between runs, never inside one
REPLAY_MARK = 'description = "Found by rfcheck --rfcheck-explore'  # how a replay file rfcheck wrote begins


@dataclass
class ExploredFinding:
    """A requirement an explored sequence broke: the shortest sequence found, and its evidence."""

    finding: Finding
    steps: list[str]
    scenario: str  # the sequence as a scenario file
    path: Path | None = None  # that file, once written beside the reports (:func:`write_replays`)

    @property
    def file_name(self) -> str:
        """``explored_token_03.toml``: a scenario name (lower case, digits, ``_``) saying what it replays."""
        return f"explored_{self.finding.id.lower().replace('-', '_')}.toml"

    def as_report(self, redact: Callable[[str], str]) -> dict[str, Any]:
        entry = requirement(self.finding.id)
        return {"id": self.finding.id, "level": self.finding.level or entry.level, "steps": self.steps,
                "scenario": self.scenario, "reason": redact(self.finding.reason),
                "evidence": [{"scenario": e.scenario, "exchange": e.exchange, "request": redact(e.request),
                              "detail": redact(e.detail)} for e in self.finding.evidence]}


@dataclass
class Explored:
    """What an exploration did: the sequences run (``examples``), the replays of shrinking apart, seconds, the
    seed, and one finding per requirement broken."""

    examples: int = 0
    seconds: float = 0.0
    seed: int = 0
    findings: dict[str, ExploredFinding] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    replays: int = 0  # the sequences hypothesis ran again while shrinking a finding, and to report it


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
    return (f'{REPLAY_MARK}: this order of events breaks {requirement_id}."\n'
            f"steps = [\n{lines},\n]\n")


class Exploration:
    """One exploration of the run's target: at most ``examples`` sequences, within ``seconds``; ``progress``
    gets a line after each run of :data:`CHUNK` sequences."""

    def __init__(self, harness: "Harness", examples: int, seconds: float = DEFAULT_SECONDS, seed_value: int = 0,
                 progress: Callable[[str], None] | None = None) -> None:
        load_all()
        self.harness = harness
        self.examples = examples
        self.seconds = seconds
        self.seed = seed_value
        self.progress = progress
        self.result = Explored(seed=seed_value)
        self._began = 0.0
        self._instances = 0  # fresh targets driven: sequences and replays alike
        self._settled: set[str] = set()  # requirements whose shortest sequence hypothesis has shrunk: not judged

    def remaining(self) -> float:
        return self.seconds - (seconds_since_boot() - self._began)

    def run(self) -> Explored:
        """Hypothesis runs of :data:`CHUNK` sequences each (seeds ``seed``, ``seed + 1``...) while the budget
        lasts; a run that finds a failure shrinks it (within what is left of the budget, at least 10 s)."""
        from hypothesis import seed
        from hypothesis.stateful import get_state_machine_test

        self._began = seconds_since_boot()
        machine = self._machine()
        chunk = 0
        while self.result.examples < self.examples and self.remaining() > 0:
            size = min(CHUNK, self.examples - self.result.examples)
            test = get_state_machine_test(machine, settings=self._settings(size))
            before = self.result.examples
            with _shrinking_within(max(10.0, self.remaining())), self._counting():
                self._one_run(seed(self.seed + chunk)(test))
            chunk += 1
            self._report_progress()
            if self.result.examples == before:
                break  # hypothesis had nothing left to draw
        self.result.seconds = round(seconds_since_boot() - self._began, 1)
        return self.result

    @staticmethod
    def _settings(size: int) -> Any:
        """At most ``size`` sequences, up to the first failure, which is shrunk (one bug per run: with several,
        hypothesis goes on drawing past ``size``). No example database: hypothesis uses none under a seed."""
        from hypothesis import HealthCheck, Phase, settings

        return settings(max_examples=size, stateful_step_count=STEPS_PER_EXAMPLE, deadline=None,
                        suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
                        phases=(Phase.generate, Phase.shrink), database=None)

    @contextlib.contextmanager
    def _counting(self) -> Iterator[None]:
        """Count one hypothesis run's targets: those its generate phase drew are sequences, the rest
        (shrinking, the replay that reports the failure) are replays. hypothesis hands its statistics to the
        collector its own pytest plugin uses for ``--hypothesis-show-statistics``."""
        from hypothesis import statistics as hypothesis_statistics

        collector: Any = hypothesis_statistics.collector  # typed for its default (None) only
        began, drawn = self._instances, []
        outer = collector.value

        def note(statistics: Mapping[str, Any]) -> None:
            drawn.append(_drawn(statistics))
            if outer is not None:
                outer(statistics)

        try:
            with collector.with_value(note):
                yield
        finally:
            ran = self._instances - began
            sequences = min(ran, drawn[0]) if drawn else ran  # no statistics (stopped early): all were drawn
            self.result.examples += sequences
            self.result.replays += ran - sequences

    def _report_progress(self) -> None:
        if self.progress is None:
            return
        found = self.result.findings
        replays = f", {self.result.replays} replays while shrinking" if self.result.replays else ""
        self.progress(f"rfcheck: explored {self.result.examples} of {self.examples} sequences{replays}, "
                      f"{len(found)} requirement(s) broken{' (' + ', '.join(found) + ')' if found else ''}, "
                      f"{seconds_since_boot() - self._began:.1f} s")

    def _one_run(self, test: Callable[[], None]) -> None:
        try:
            test()
        except _Broken as broken:  # the requirement hypothesis shrank: its shortest sequence is recorded
            self._settled.add(broken.finding.id)
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
                exploration._instances += 1
                self.number = exploration._instances
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
                    if exploration.harness.config.flow not in requirement(requirement_id).applies_to \
                            or requirement_id in exploration._settled:
                        continue
                    finding = CHECKS[requirement_id].function(exploration.harness.check_context({result.name: result}))
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


def _drawn(statistics: Mapping[str, Any]) -> int:
    """The targets a hypothesis run drew as new sequences: its generate phase's test cases."""
    return len(statistics.get("generate-phase", {}).get("test-cases", ()))


def explored_report(explored: Explored, redact: Callable[[str], str]) -> dict[str, Any]:
    """The report's ``explored`` object (the README's "Exploring"); ``replays`` and each finding's ``path`` (its
    replay file, relative to the report folder) are written once :func:`write_replays` has run."""
    return {"examples": explored.examples, "replays": explored.replays, "seconds": explored.seconds,
            "seed": explored.seed, "findings": [f.as_report(redact) for f in explored.findings.values()]}



def write_replays(explored: Explored, folder: Path) -> list[Path]:
    """Write each finding's scenario as a file of ``folder`` (created), named after the requirement, ready for
    ``[target] scenarios``; remove the replay files an earlier exploration wrote there, so that the folder
    holds this run's findings only (files rfcheck did not write stay). Returns the files removed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = set()
    for found in explored.findings.values():
        found.path = folder / found.file_name
        write_atomically(found.path, found.scenario)
        written.add(found.path)
    removed = [stale for stale in sorted(set(folder.glob("*.toml")) - written) if _written_by_rfcheck(stale)]
    for stale in removed:
        stale.unlink(missing_ok=True)
    return removed


def _written_by_rfcheck(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as text:
            return text.read(len(REPLAY_MARK)) == REPLAY_MARK
    except (OSError, UnicodeDecodeError):
        return False


def as_finding(found: ExploredFinding, catalogue: Finding | None) -> Finding | None:
    """The requirement's finding once an explored sequence broke it: a fail (must) or warn (should) that
    names the sequence, unless the catalogue already found it short; None when nothing changes."""
    if catalogue is not None and catalogue.status in ("fail", "warn"):
        return None
    reason = f"an explored sequence breaks it ({' -> '.join(found.steps)}): {found.finding.reason}"
    return Finding(found.finding.id, found.finding.status, reason, found.finding.evidence, found.finding.level)
