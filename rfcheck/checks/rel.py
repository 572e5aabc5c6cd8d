"""REL: no answer from Request Finance takes the integration down or reaches its user as a 500.

REL-01 reads the health probes the scenario runner takes after every step of a process
target (running, and answering its ``ready`` URL); REL-02 reads the browser's requests to
a web app and the error answers the mock sent while the app was serving them.
"""

from __future__ import annotations

from rfcheck.checks import ALL_SCENARIOS, Context, check
from rfcheck.checks.outcome import Outcome, failed, inapplicable, passed, skipped, unjudged
from rfcheck.checks.queries import completed, names
from rfcheck.journal import Exchange
from rfcheck.report.model import Evidence
from rfcheck.observed import ScenarioResult, error_answers

MAX_EVIDENCE = 8


def _watched(ctx: Context) -> str | None:
    """Why REL does not apply to this target, or None when it runs as a process rfcheck can watch."""
    if ctx.config.kind == "python":
        return "an in-process Python target runs inside pytest: there is no process of its own to watch"
    if ctx.config.kind == "command" and ctx.config.command is not None and not ctx.config.command.serve:
        return "a run command is a new process for each unit of work: there is no long-running process to watch"
    return None


def provocations(result: ScenarioResult) -> int:
    """How many times the scenario met the target with trouble: error answers, faults, forged callbacks."""
    return len(error_answers(result.exchanges)) + len([e for e in result.events
                                                       if e.kind in ("fault", "forged_callback")])


# -- REL-01 ---------------------------------------------------------------------------
@check("REL-01", ALL_SCENARIOS)
def survives_error_answers(ctx: Context) -> Outcome:
    why = _watched(ctx)
    if why:
        return inapplicable(why)
    results = [r for r in completed(ctx.results.values()) if r.probes]
    if not results:
        return unjudged(f"the target's process was never probed (scenarios: {names(ctx.results.values())})")
    crashed = [r for r in results if r.crash is not None]
    if crashed:
        return failed(f"the process went down in {len(crashed)} of {len(results)} scenarios "
                      f"({names(crashed)})", [_crash_evidence(ctx, r) for r in crashed[:MAX_EVIDENCE]])
    met = sum(provocations(r) for r in results)
    if not met:
        return skipped("the target never met an error answer, a fault or a forged callback")
    probes = sum(len(r.probes) for r in results)
    return passed(f"the process stayed up and answering through {met} error answers, faults and "
                  f"forged callbacks in {len(results)} scenarios ({probes} probes)")


def _crash_evidence(ctx: Context, result: ScenarioResult) -> Evidence:
    crash = result.crash
    assert crash is not None
    trigger = next((e for e in result.exchanges if e.n == crash.trigger), None)
    told = f": {trigger.notes[-1]}" if trigger and trigger.notes else ""  # the provider's conclusion
    cause = (f"after {trigger.request_line} answered {trigger.status}{told}" if trigger
             else "before Request Finance answered it anything")
    detail = f"{crash.detail}, {cause} (step: {crash.after})"
    if crash.errors:
        detail += f"\nfirst error lines of its output:\n{crash.errors}"
    detail += f"\nits output ends with:\n{crash.tail or '(no output)'}"
    return ctx.evidence(result.name, trigger, detail)


# -- REL-02 ---------------------------------------------------------------------------
def pages(result: ScenarioResult) -> list[Exchange]:
    """What the user's browser asked the web app, with the app's answers."""
    return [e for e in result.exchanges if e.host == "app"]


def errors_while_serving(result: ScenarioResult, page: Exchange) -> list[Exchange]:
    """Error answers the mock sent the target while the app was serving ``page``."""
    return [e for e in error_answers(result.exchanges) if page.n < e.n <= (page.done or page.n)]


@check("REL-02", ALL_SCENARIOS)
def handled_error_pages(ctx: Context) -> Outcome:
    if ctx.config.kind != "web":
        return inapplicable("only a web app answers a user's browser")
    results = completed(ctx.results.values())
    served = [(r, p, errs) for r in results for p in pages(r) if (errs := errors_while_serving(r, p))]
    if not served:
        return skipped("the app never served its user while Request Finance answered it with an error")
    internal = [(r, p, errs) for r, p, errs in served if p.status == 500]
    if internal:
        evidence = [item for r, p, errs in internal[:MAX_EVIDENCE] for item in (
            ctx.evidence(r.name, p, "the app answered its user with 500"),
            ctx.evidence(r.name, errs[-1], f"while serving that page, Request Finance had answered it "
                                           f"{errs[-1].status}"))]
        return failed(f"the app answered its user with 500 after an error answer from Request Finance "
                      f"{len(internal)} time(s)", evidence)
    statuses = sorted({p.status for _, p, _ in served})
    return passed(f"{len(served)} pages served while Request Finance answered with an error were "
                  f"handled answers (status {', '.join(map(str, statuses))})")
