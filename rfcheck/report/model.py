"""What a run found, and the ``rfcheck-report/1`` object built from it.

Checks produce :class:`Finding` objects; the plugin gathers them with the scenario
records into a :class:`RunResult`; :func:`build` turns that into the JSON-ready report
every writer renders. Everything handed in is already redacted by the caller (the
journal's redaction); :func:`build` only adds a last guard against JWT-shaped strings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import rfcheck
from rfcheck.catalogue import CATALOGUE, Requirement, requirement
from rfcheck.journal import Journal
from rfcheck.targets.output import app_error

__all__ = ["STATUSES", "Evidence", "Finding", "Marker", "NotDriven", "Problems", "RunResult", "ScenarioRecord",
           "build", "markers", "not_driven", "problems", "shared_notes", "verdict"]

SCHEMA = "rfcheck-report/1"
STATUSES = ("pass", "fail", "warn", "skip", "manual", "accepted")
LEVELS = ("must", "should", "manual")
NOT_RUN = "not run in this session (deselected or not collected)"

# The journal's redaction with no secrets known applies only its JWT-shape rule: a last
# guard so that a check that forgot to redact cannot put a whole token in a report.
_GUARD = Journal()


@dataclass(frozen=True)
class Evidence:
    """One observation behind a finding: ``request`` like ``GET /invoices``, already redacted."""

    scenario: str
    exchange: int | None
    request: str
    detail: str


@dataclass(frozen=True)
class Finding:
    """A check's verdict on one requirement; ``level`` overrides the catalogue level.

    Raises ValueError naming the ID for an unknown status or level, a fail/warn without
    evidence, or a fail/warn/skip without a reason: each is a bug in the check.
    """

    id: str
    status: str
    reason: str
    evidence: tuple[Evidence, ...] = ()
    level: str | None = None
    judged: bool = True  # False: a skip because this run could not judge it (listed in not_judged)
    absence: bool = False  # a skip because the target was never seen doing it (checks.skipped)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"{self.id}: status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.level is not None and self.level not in LEVELS:
            raise ValueError(f"{self.id}: level {self.level!r} is not one of {', '.join(LEVELS)}")
        if self.status in ("fail", "warn", "accepted") and not self.evidence:
            raise ValueError(f"{self.id}: {self.status} without evidence")
        if not self.judged and self.status != "skip":
            raise ValueError(f"{self.id}: not judged, so its status must be skip, not {self.status}")
        if self.status in ("fail", "warn", "skip", "accepted") and not self.reason.strip():
            raise ValueError(f"{self.id}: {self.status} without a reason")


@dataclass
class ScenarioRecord:
    """How one scenario went, with its exchanges as ``Journal.describe`` gives them."""

    name: str
    outcome: str
    reason: str = ""
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""
    notes: list[str] = field(default_factory=list)
    # the clock travels and faults, in order: {"kind": "travel" | "fault", "label", "after" (the number of
    # exchanges before the step began), "offset" (seconds travelled when it ended), "detail"}
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunResult:
    """Everything a report is built from; ``findings`` by ID, possibly partial."""

    target: dict[str, Any]
    findings: dict[str, Finding]
    scenarios: list[ScenarioRecord]
    generated: datetime
    notes: list[str] = field(default_factory=list)
    explored: dict[str, Any] | None = None  # --rfcheck-explore: the ``explored`` object (the README's "The report")
    not_run: str = ""  # the reason of a requirement this run has no finding for, when not NOT_RUN


def build(result: RunResult) -> dict[str, Any]:
    """The ``rfcheck-report/1`` object: every catalogue ID once, in catalogue order."""
    _check_ids(result.findings)
    flow = result.target.get("flow")
    findings = {req.id: result.findings.get(req.id) or _unjudged(req, flow, result.not_run or NOT_RUN)
                for req in CATALOGUE}
    entries = [_entry(req, findings[req.id]) for req in CATALOGUE]
    not_judged = [rid for rid, finding in findings.items() if not finding.judged]
    explored = {"explored": result.explored} if result.explored is not None else {}
    return {
        "schema": SCHEMA,
        "rfcheck": rfcheck.__version__,
        "generated": _utc(result.generated),
        "target": dict(result.target),
        "verdict": verdict(entries, not_judged),
        "summary": {status: sum(e["status"] == status for e in entries) for status in STATUSES},
        "not_judged": not_judged,
        "notes": [_guard(note) for note in result.notes],
        "requirements": entries,
        "scenarios": [_scenario(record) for record in result.scenarios],
        **explored,
    }


def verdict(entries: list[dict[str, Any]], not_judged: list[str] = ()) -> str:  # type: ignore[assignment]
    """``not-ready`` when a must requirement fails; else ``incomplete`` when a must requirement was not
    judged in this run; else ``ready`` (the README's "How it judges")."""
    if any(e["level"] == "must" and e["status"] == "fail" for e in entries):
        return "not-ready"
    unjudged = set(not_judged)
    if any(e["level"] == "must" and e["id"] in unjudged for e in entries):
        return "incomplete"
    return "ready"


def _check_ids(findings: dict[str, Finding]) -> None:
    for key, finding in findings.items():
        if key != finding.id:
            raise ValueError(f"{finding.id}: filed under {key!r}")
        requirement(key)  # KeyError naming close IDs for an unknown one


def _unjudged(req: Requirement, flow: str | None, reason: str) -> Finding:
    """The finding of a requirement this run has none for: not judged, unless it does not apply anyway."""
    if flow is not None and flow not in req.applies_to:
        return Finding(req.id, "skip", f"does not apply to the {flow} flow")
    return Finding(req.id, "skip", reason, judged=False)


def _entry(req: Requirement, finding: Finding) -> dict[str, Any]:
    return {
        "id": req.id,
        "title": req.title,
        "level": finding.level or req.level,
        "status": finding.status,
        "reason": _guard(finding.reason),
        "evidence": [_evidence(item) for item in finding.evidence],
        "remediation": req.remediation,
        "source": req.source,
    }


def _evidence(item: Evidence) -> dict[str, Any]:
    return {
        "scenario": item.scenario,
        "exchange": item.exchange,
        "request": _guard(item.request),
        "detail": _guard(item.detail),
    }


def _scenario(record: ScenarioRecord) -> dict[str, Any]:
    steps = {"steps": [_exchange(step) for step in record.steps]} if record.steps else {}  # absent otherwise
    return {
        "name": record.name,
        "outcome": record.outcome,
        "reason": _guard(record.reason),
        "exchanges": [_exchange(row) for row in record.exchanges],
        "output": _guard(record.output),
        "notes": [_guard(note) for note in record.notes],
        **steps,
    }


def _exchange(row: dict[str, Any]) -> dict[str, Any]:
    return {key: _guard(value) if isinstance(value, str) else value for key, value in row.items()}


def _guard(text: str) -> str:
    return _GUARD.redact(text)


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- views of a built report: what its renderers share ----------------------------------------------
# They read the report object alone, so a saved JSON report renders the same.

NOT_DRIVEN_NOTE = "the target was not driven: "  # the run note of a target whose baseline work never succeeded
NOT_DRIVEN_REASON = "not judged: the target could not be started or driven ("  # a requirement it blocked
_NOTE_END = "; what it was never seen doing"
TRAVEL_GAP = 60.0  # seconds between two exchanges' times that only a travel makes: rfcheck's steps time out sooner


@dataclass(frozen=True)
class NotDriven:
    """A target rfcheck could not drive: the scenario that showed it (its output holds the app's whole
    output), what happened there (what rfcheck did, what the app answered), and the app's own error."""

    scenario: str
    why: str
    error: tuple[str, ...]


def not_driven(report: dict[str, Any]) -> NotDriven | None:
    """What made the target undrivable, read from the report's notes and reasons; None when it was driven."""
    scenarios = {s["name"]: s for s in report["scenarios"]}
    note = next((str(n) for n in report.get("notes", []) if str(n).startswith(NOT_DRIVEN_NOTE)), "")
    if note:
        return _not_driven(scenarios.get("baseline"), "baseline", note[len(NOT_DRIVEN_NOTE):].split(_NOTE_END)[0])
    blocked = next((r for r in report["requirements"] if str(r.get("reason", "")).startswith(NOT_DRIVEN_REASON)),
                   None)
    if blocked is None:
        return None
    errors = [s for s in report["scenarios"] if s["outcome"] == "error"]
    # the first scenario that met the target has its output; the others were not tried again
    shown = next((s for s in errors if s.get("output")), errors[0] if errors else None)
    if shown is None:
        return _not_driven(None, "", blocked["reason"][len(NOT_DRIVEN_REASON):].removesuffix(")"))
    return _not_driven(shown, shown["name"], shown["reason"])


def _not_driven(scenario: dict[str, Any] | None, name: str, why: str) -> NotDriven:
    first = next((line.strip() for line in why.strip().splitlines() if line.strip()), "")
    output = (scenario or {}).get("output", "")
    # the why may hold the app's traceback (a factory that raised); its first line is no error of the app's own
    error = [line for line in app_error(f"{output}\n{why}") if line != first[:len(line)]]
    return NotDriven(name, first, tuple(error))


@dataclass(frozen=True)
class Problems:
    """The requirements to act on, worst first: must failures, should shortfalls, accepted shortfalls."""

    must: list[dict[str, Any]]
    should: list[dict[str, Any]]
    accepted: list[dict[str, Any]]


def problems(report: dict[str, Any]) -> Problems:
    """The report's failures and shortfalls, each list in catalogue order."""
    entries = report["requirements"]
    return Problems(
        must=[r for r in entries if r["status"] == "fail" and r["level"] == "must"],
        should=[r for r in entries if r["status"] == "warn" or (r["status"] == "fail" and r["level"] != "must")],
        accepted=[r for r in entries if r["status"] == "accepted"],
    )


def shared_notes(scenarios: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The scenario notes that more than one scenario carries, each once with the scenarios it applies to."""
    counts = Counter(note for s in scenarios for note in dict.fromkeys(s.get("notes", [])))
    return [(note, [s["name"] for s in scenarios if note in s.get("notes", [])])
            for note, count in counts.items() if count > 1]


@dataclass(frozen=True)
class Marker:
    """Something that happened between two exchanges of a scenario: a clock travel, a fault switched on,
    or exchanges the report leaves out. It comes after exchange number ``after`` (0: before the first)."""

    kind: str  # travel | fault | gap
    after: int
    label: str
    detail: str = ""
    seconds: float = 0.0  # how far a travel moved the clock


def markers(scenario: dict[str, Any]) -> list[Marker]:
    """The scenario's markers in order: from its ``steps`` when the report has them, else its travels as
    read from the jumps of its exchanges' times; and the exchanges left out, wherever numbers jump."""
    exchanges = scenario["exchanges"]
    found = _step_markers(scenario["steps"]) if "steps" in scenario else _time_jumps(exchanges)
    found += _left_out(exchanges)
    return sorted(found, key=lambda m: m.after)  # stable: a travel and a fault at one place keep their order


def _step_markers(steps: list[dict[str, Any]]) -> list[Marker]:
    found, travelled = [], 0.0
    for step in steps:
        after = int(step.get("after") or 0)
        if step.get("kind") == "travel":
            offset = float(step.get("offset") or 0.0)
            detail = str(step.get("detail") or "")  # whether the target's clock moved too
            found.append(Marker("travel", after, f"clock +{duration(offset - travelled)}", detail,
                                offset - travelled))
            travelled = offset
        elif step.get("kind") == "fault":
            found.append(Marker("fault", after, f"fault: {step.get('label', '')}", str(step.get("detail") or "")))
    return found


def _time_jumps(exchanges: list[dict[str, Any]]) -> list[Marker]:
    found = []
    for before, after in zip(exchanges, exchanges[1:]):
        seconds = _seconds_between(before.get("at"), after.get("at"))
        if seconds is not None and seconds >= TRAVEL_GAP:
            found.append(Marker("travel", int(before["n"]), f"clock +{duration(seconds)}",
                                f"{duration(seconds)} of the scenario's time passed between exchanges "
                                f"#{before['n']} and #{after['n']}: a clock travel", seconds))
    return found


def _left_out(exchanges: list[dict[str, Any]]) -> list[Marker]:
    found = []
    for before, after in zip(exchanges, exchanges[1:]):
        first, last = int(before["n"]) + 1, int(after["n"]) - 1
        if last >= first:
            found.append(Marker("gap", first - 1, f"exchanges #{first}–#{last} not listed",
                                "the report lists the first and the last exchanges of a long scenario; "
                                "the checks read them all"))
    return found


def _seconds_between(first: object, second: object) -> float | None:
    try:
        return (_moment(str(second)) - _moment(str(first))).total_seconds()
    except ValueError:  # a time the report does not have, or not in ISO 8601
        return None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def duration(seconds: float) -> str:
    """A travel as a person says it: ``45 s``, ``2 min``, ``24 h 2 min``, ``3 d``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    days, hours = divmod(hours, 24) if hours >= 72 else (0, hours)  # "48 h 4 min" reads better than "2 d"
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(part for part in parts if part)
