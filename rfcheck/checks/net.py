"""NET: the ``X-Network`` header on every API call (Going Live)."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.checks import ALL_SCENARIOS, Context, check
from rfcheck.checks.outcome import Outcome, failed, passed, skipped
from rfcheck.checks.queries import api_calls, completed, names
from rfcheck.facts import NETWORKS
from rfcheck.journal import Exchange
from rfcheck.report.model import Evidence



def _judge_calls(ctx: Context, bad: Callable[[Exchange], str | None], what: str,
                 relevant: Callable[[Exchange], bool] = lambda e: True) -> Outcome:
    results = completed(ctx.results.values())
    calls = [(r.name, e) for r in results for e in api_calls(r) if relevant(e)]
    if not calls:
        return skipped(f"no API call this requirement judges was observed "
                       f"(scenarios: {names(ctx.results.values())})")
    evidence: list[Evidence] = []
    for scenario, exchange in calls:
        problem = bad(exchange)
        if problem:
            evidence.append(ctx.evidence(scenario, exchange, problem))
    if evidence:
        return failed(f"{len(evidence)} of {len(calls)} API calls {what}", evidence)
    return passed(f"all {len(calls)} API calls in {names(results)} were right")


@check("NET-01", ALL_SCENARIOS)
def every_call_has_network(ctx: Context) -> Outcome:
    return _judge_calls(ctx, lambda e: None if e.header("x-network") is not None
                        else "no X-Network header", "had no X-Network header")


@check("NET-02", ALL_SCENARIOS)
def network_is_test_or_live(ctx: Context) -> Outcome:
    def bad(e: Exchange) -> str | None:
        value = e.header("x-network")
        return None if value is None or value in NETWORKS else f"X-Network: {value!r}"

    return _judge_calls(ctx, bad, "sent an X-Network other than exactly test or live",
                        lambda e: e.header("x-network") is not None)


@check("NET-03", ALL_SCENARIOS)
def network_matches_deployment(ctx: Context) -> Outcome:
    expected = ctx.config.network

    def bad(e: Exchange) -> str | None:
        value = e.header("x-network")  # missing or malformed values are NET-01's and NET-02's
        return None if value not in ("test", "live") or value == expected else (
            f"X-Network: {value!r} in a deployment configured for {expected!r}")

    return _judge_calls(ctx, bad, f"sent another network than the configured {expected!r}",
                        lambda e: e.header("x-network") in ("test", "live"))
