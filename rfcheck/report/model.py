"""What a run found, and the ``rfcheck-report/1`` object built from it.

Checks produce :class:`Finding` objects; the plugin gathers them with the scenario
records into a :class:`RunResult`; :func:`build` turns that into the JSON-ready report
every writer renders. Everything handed in is already redacted by the caller (the
journal's redaction); :func:`build` only adds a last guard against JWT-shaped strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import rfcheck
from rfcheck.catalogue import CATALOGUE, Requirement, requirement
from rfcheck.journal import Journal

__all__ = ["STATUSES", "Evidence", "Finding", "RunResult", "ScenarioRecord", "build", "verdict"]

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


@dataclass
class RunResult:
    """Everything a report is built from; ``findings`` by ID, possibly partial."""

    target: dict[str, Any]
    findings: dict[str, Finding]
    scenarios: list[ScenarioRecord]
    generated: datetime
    notes: list[str] = field(default_factory=list)
    explored: dict[str, Any] | None = None  # --rfcheck-explore: the ``explored`` object (target-contract.md)
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
    judged in this run; else ``ready`` (target-contract.md, "Reports")."""
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
    return {
        "name": record.name,
        "outcome": record.outcome,
        "reason": _guard(record.reason),
        "exchanges": [_exchange(row) for row in record.exchanges],
        "output": _guard(record.output),
        "notes": [_guard(note) for note in record.notes],
    }


def _exchange(row: dict[str, Any]) -> dict[str, Any]:
    return {key: _guard(value) if isinstance(value, str) else value for key, value in row.items()}


def _guard(text: str) -> str:
    return _GUARD.redact(text)


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
