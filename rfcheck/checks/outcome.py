"""What a check concludes, before its requirement is named.

A check returns an :class:`Outcome`; the registry (:func:`rfcheck.checks.check`) binds the ID it
registered and makes the :class:`~rfcheck.report.model.Finding`, so a check names its ID once, and
the catalogue's level, never the check, decides fail versus warn. Imports nothing of
:mod:`rfcheck.checks`, which imports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rfcheck.catalogue import requirement
from rfcheck.observed import ScenarioResult
from rfcheck.report.model import Evidence, Finding

# a skip is one of three kinds (docs/architecture.md): does not apply, never seen doing it, not judged
SKIPS = ("inapplicable", "skipped", "unjudged")
KINDS = ("pass", "fail", "warn", "manual", *SKIPS)
_STATUS = {"pass": "pass", "warn": "warn", "manual": "manual", **{kind: "skip" for kind in SKIPS}}


@dataclass(frozen=True)
class Outcome:
    """A check's conclusion: its ``kind`` (one of :data:`KINDS`), reason and evidence; ``level`` overrides the
    catalogue level (an ID token taken from the front channel, a storm that cost users their session)."""

    kind: str
    reason: str
    evidence: tuple[Evidence, ...] = ()
    level: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"outcome {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def skip(self) -> bool:
        return self.kind in SKIPS

    def finding(self, requirement_id: str) -> Finding:
        """The finding on ``requirement_id``; a ``fail`` is a warn for a should (the level, not the check)."""
        status = _STATUS.get(self.kind) or ("fail" if (self.level or requirement(requirement_id).level) == "must"
                                            else "warn")
        return Finding(requirement_id, status, self.reason, self.evidence, self.level,
                       judged=self.kind != "unjudged", absence=self.kind == "skipped")


def passed(reason: str) -> Outcome:
    return Outcome("pass", reason)


def failed(reason: str, evidence: Iterable[Evidence], level: str | None = None) -> Outcome:
    """``fail`` for a must, ``warn`` for a should (the level decides, not the check)."""
    return Outcome("fail", reason, tuple(evidence), level)


def warned(reason: str, evidence: Iterable[Evidence]) -> Outcome:
    """``warn`` whatever the level: advice on a must that nothing broke (FLOW-06's implicit flow)."""
    return Outcome("warn", reason, tuple(evidence))


def manual(reason: str) -> Outcome:
    """For a person to confirm, saying what."""
    return Outcome("manual", reason)


def inapplicable(reason: str) -> Outcome:
    """A skip because the requirement does not apply to this target (its flow, its kind, a design choice
    the journal shows, such as no PKCE or no nonce): judged, whatever else went wrong in the run."""
    return Outcome("inapplicable", reason)


def skipped(reason: str) -> Outcome:
    """A skip because the target was never seen doing what the requirement is about (no organization
    call, no invoice created). Judged only when the target was driven: if its baseline units of work never
    succeeded, never doing it says nothing, and the judge makes it not judged (:func:`rfcheck.checks.undriven`)."""
    return Outcome("skipped", reason)


def unjudged(reason: str) -> Outcome:
    """A skip because this run could not observe it: listed in ``not_judged`` (a must makes it incomplete)."""
    return Outcome("unjudged", reason)


def not_observed(result: ScenarioResult) -> Outcome | None:
    """None when the scenario ran to completion; else a skip: not judged when it could not run, judged
    when it does not apply to the target's flow. A check that ``needs`` a scenario has the registry ask
    this before it runs (:func:`rfcheck.checks.check`)."""
    if result.completed:
        return None
    if result.outcome == "not-run":
        return inapplicable(f"scenario {result.name} does not apply: {result.reason}")
    return unjudged(f"scenario {result.name} could not run: {result.reason}")
