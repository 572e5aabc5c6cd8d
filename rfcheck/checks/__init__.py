"""Requirement checks: small registered functions over the scenarios' results.

Each check is registered once for one catalogue ID, with the scenarios it reads and those it
``needs`` completed: ``@check("TOKEN-05", ("revoked_access",), needs=("revoked_access",))``. It
returns an :class:`~rfcheck.checks.outcome.Outcome` built without the ID (``passed(reason)``,
``failed(reason, evidence)``, ``inapplicable``, ``skipped``, ``unjudged``); the registry answers
for a needed scenario that did not complete (:func:`~rfcheck.checks.outcome.not_observed`) before
the check runs, binds the ID and makes the :class:`~rfcheck.report.model.Finding`
(:meth:`Check.judge`, also :attr:`Check.function`). A check that cannot observe what it needs
returns a skip with the reason, never a pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rfcheck.catalogue import requirement
from rfcheck.checks.outcome import Outcome, not_observed
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


CheckFunction = Callable[[Context], Outcome]

# Checks whose violation can show in any scenario read them all (the README's "How it judges"):
# the built-in ones and those the integration adds ([target] scenarios), resolved for each run.
ALL_SCENARIOS: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class Check:
    """A registered check: what it judges, the scenarios it reads ("*": all of the run's), the check as
    written (``conclude``: an Outcome) and the scenarios it needs completed before it concludes anything."""

    id: str
    scenarios: tuple[str, ...]
    conclude: CheckFunction
    needs: tuple[str, ...] = ()

    def judge(self, ctx: Context) -> Finding:
        """The finding on :attr:`id`: the first needed scenario that did not complete decides it (a needed
        scenario is named, so always read); otherwise what the check concludes."""
        for name in self.needs:
            result = ctx.results.get(name)  # absent only when a caller asked for fewer (the explorer's one)
            unobserved = (not_observed(result) if result is not None
                          else Outcome("unjudged", f"scenario {name} did not run"))
            if unobserved:
                return unobserved.finding(self.id)
        return self.conclude(ctx).finding(self.id)

    function = judge  # ctx -> Finding, as the judge, the explorer and the tests call it


CHECKS: dict[str, Check] = {}


def check(requirement_id: str, scenarios: Iterable[str] = (),
          needs: Iterable[str] = ()) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``function`` as the check of ``requirement_id``, reading ``scenarios`` and needing ``needs``
    (some of them, by name: "*" under a selection reads only the selected scenarios) completed."""
    requirement(requirement_id)  # an ID outside the catalogue is a bug here
    read, needed = tuple(scenarios), tuple(needs)
    unread = [name for name in needed if name == "*" or name not in read]
    if unread:
        raise ValueError(f"{requirement_id} needs {', '.join(unread)}, which it does not name among the "
                         f"scenarios it reads ({', '.join(read) or 'none'})")

    def register(function: CheckFunction) -> CheckFunction:
        known = CHECKS.get(requirement_id)
        reloaded = known is not None and (known.conclude.__module__, known.conclude.__qualname__) == (
            function.__module__, function.__qualname__)  # the module imported again (pytester's sys.modules)
        if known is not None and not reloaded:
            raise ValueError(f"{requirement_id} has two checks: {CHECKS[requirement_id].conclude.__name__} "
                             f"and {function.__name__}")
        CHECKS[requirement_id] = Check(requirement_id, read, function, needed)
        return function

    return register


def inapplicable(requirement_id: str, reason: str) -> Finding:
    """The judge's finding on a requirement that does not apply before any check runs (the target's flow is
    not one it applies to): the skip a check's :func:`~rfcheck.checks.outcome.inapplicable` gives."""
    return Outcome("inapplicable", reason).finding(requirement_id)


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
