"""Requirement checks: small registered functions over the scenarios' results.

Each check is registered for one catalogue ID with the scenarios it reads, and
returns a :class:`~rfcheck.report.model.Finding`. A check that cannot observe
what it needs returns ``skip`` with the reason, never ``pass``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rfcheck.catalogue import requirement
from rfcheck.journal import Exchange
from rfcheck.report.model import Evidence, Finding
from rfcheck.observed import RunView, ScenarioResult

@dataclass(frozen=True)
class Context:
    """What a check reads: the run's frozen view and the scenarios it asked for (nothing of the mock or
    the engine: the engine builds it, :meth:`rfcheck.harness.Harness.check_context`)."""

    view: RunView
    results: dict[str, ScenarioResult]

    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.view.config

    @property
    def client_id(self) -> str:
        return self.view.client_id

    def redact(self, text: str) -> str:
        return self.view.redact(text)

    def issued(self) -> dict[str, str]:
        """Every value a mock of this run issued, mapped to its kind: the run's own mock first, then each
        scenario's in turn, each in the order it issued them (so the evidence names the same value on
        every run)."""
        kinds: dict[str, str] = {}
        for issued in [self.view.issued] + [r.issued for r in self.results.values()]:
            for value, kind in issued.values:
                kinds.setdefault(value, kind)
        return kinds

    def redirect_uris(self) -> tuple[str, ...]:
        """The redirect URIs registered for this app: one per lane (its {port}), the same ID and secret."""
        uris = [uri for issued in [self.view.issued] + [r.issued for r in self.results.values()]
                for client_id, registered in issued.clients if client_id == self.client_id for uri in registered]
        return tuple(dict.fromkeys(uris + list(self.view.redirect_uris)))

    def evidence(self, scenario: str, exchange: Exchange | None, detail: str) -> Evidence:
        """Evidence pointing at one exchange, redacted."""
        request = exchange.request_line if exchange else ""
        if exchange is not None and exchange.facts.get("from_page"):
            detail += " (sent from the user's browser, by a script of the app's page)"
        return Evidence(scenario, exchange.n if exchange else None, self.redact(request), self.redact(detail))


CheckFunction = Callable[[Context], Finding]

# Checks whose violation can show in any scenario read them all (the README's "How it judges"):
# the built-in ones and those the integration adds ([target] scenarios), resolved for each run.
ALL_SCENARIOS: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class Check:
    """A registered check: what it judges, the scenarios it reads ("*": all of the run's), its function."""

    id: str
    scenarios: tuple[str, ...]
    function: CheckFunction


CHECKS: dict[str, Check] = {}


def check(requirement_id: str, scenarios: Iterable[str] = ()) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``function`` as the check of ``requirement_id``, reading ``scenarios``."""
    requirement(requirement_id)  # an ID outside the catalogue is a bug here

    def register(function: CheckFunction) -> CheckFunction:
        known = CHECKS.get(requirement_id)
        reloaded = known is not None and (known.function.__module__, known.function.__qualname__) == (
            function.__module__, function.__qualname__)  # the module imported again (pytester's sys.modules)
        if known is not None and not reloaded:
            raise ValueError(f"{requirement_id} has two checks: {CHECKS[requirement_id].function.__name__} "
                             f"and {function.__name__}")
        CHECKS[requirement_id] = Check(requirement_id, tuple(scenarios), function)
        return function

    return register


# -- building findings -----------------------------------------------------------
def passed(requirement_id: str, reason: str) -> Finding:
    return Finding(requirement_id, "pass", reason)


def failed(requirement_id: str, reason: str, evidence: Iterable[Evidence], level: str | None = None) -> Finding:
    """``fail`` for a must, ``warn`` for a should (the level decides, not the check)."""
    lvl = level or requirement(requirement_id).level
    return Finding(requirement_id, "fail" if lvl == "must" else "warn", reason, tuple(evidence), level)


def inapplicable(requirement_id: str, reason: str) -> Finding:
    """A skip because the requirement does not apply to this target (its flow, its kind, a design choice
    the journal shows, such as no PKCE or no nonce): judged, whatever else went wrong in the run."""
    return Finding(requirement_id, "skip", reason)


def skipped(requirement_id: str, reason: str) -> Finding:
    """A skip because the target was never seen doing what the requirement is about (no organization
    call, no invoice created). Judged only when the target was driven: if its baseline units of work never
    succeeded, never doing it says nothing, and the judge makes it not judged (:func:`undriven`)."""
    return Finding(requirement_id, "skip", reason, absence=True)


def unjudged(requirement_id: str, reason: str) -> Finding:
    """A skip because this run could not observe it: listed in ``not_judged`` (a must makes it incomplete)."""
    return Finding(requirement_id, "skip", reason, judged=False)


def not_observed(requirement_id: str, result: ScenarioResult) -> Finding | None:
    """None when the scenario ran to completion; else a skip: not judged when it could not run, judged
    when it does not apply to the target's flow."""
    if result.completed:
        return None
    if result.outcome == "not-run":
        return inapplicable(requirement_id, f"scenario {result.name} does not apply: {result.reason}")
    return unjudged(requirement_id, f"scenario {result.name} could not run: {result.reason}")


def undriven(finding: Finding, reason: str) -> Finding:
    """``finding`` in a run whose target was never driven (``reason``, e.g. "in the baseline scenario no
    unit of work succeeded: ..."): an absence it reports is not judged, since a target whose work never
    succeeds does nothing at all; what was observed (a pass, a fail, a skip that does not apply) stays."""
    if finding.status != "skip" or not finding.judged or not finding.absence:
        return finding
    return dataclasses.replace(finding, judged=False, reason=f"{finding.reason}; not judged: {reason}")


def scenarios_read(check: Check, available: Iterable[str], selected: Iterable[str] | None = None) -> list[str]:
    """The scenarios ``check`` reads in a run that has ``available`` (the built-in and the integration's);
    with ``selected`` (a selection that runs only some scenarios), "every scenario" means those."""
    every = list(available) if selected is None else [name for name in available if name in set(selected)]
    return list(dict.fromkeys(name for wanted in check.scenarios
                              for name in (every if wanted == "*" else (wanted,))))


def reads_every_scenario(check: Check) -> bool:
    return "*" in check.scenarios
