"""TOKEN-01 and TOKEN-02 (and CC-03's renewal): the access token is reused while it is valid and renewed
after it expired, with the work carrying on."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable

from rfcheck.checks import Context, check
from rfcheck.checks.outcome import Outcome, failed, not_observed, passed, skipped, unjudged
from rfcheck.checks.queries import (api_calls, clock_stood_still, completed, describe_failure, expiry_travel,
                                   issued_access_jti, names, renewal_due, sent_by_target, successful, token_requests)
from rfcheck.checks.token.reading import (MAX_EVIDENCE, answer, clock_note, event_of, first_event, grant_of,
                                         last_exchange, login_redirect, lost_to_a_stale_refresh_token,
                                         no_refresh_token, token_calls, unavailable, units_after, units_before)
from rfcheck.journal import Exchange
from rfcheck.report.model import Evidence
from rfcheck.observed import ACTIVE_EVERY, DAY, Event, ScenarioResult

TOKEN_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
RESETS = ("login", "fault")  # a login the scenario asked for, or a revocation: a new token is due at once
IDLE_FAILURES = ("redirect_loop",)  # how a return after days must never go (a crash is REL-01's)


# -- TOKEN-01 --------------------------------------------------------------------
def window_starts(result: ScenarioResult) -> list[int]:
    """Where the scenario's expiry windows begin (journal positions).

    A login or a fault opens one at once; otherwise a window lasts until its token is in the last
    :data:`ACTIVE_EVERY` of its 24 h, where a proactive renewal is due (an active user works every 4 h,
    so the renewal falls in the unit before the expiry or in the one after it).
    """
    starts, opened = [], 0.0
    for event in result.events:
        if event.kind in RESETS or event.offset - opened >= DAY - ACTIVE_EVERY:
            starts.append(event.first)
            opened = event.offset
    return starts


def windows(result: ScenarioResult) -> dict[int, list[Exchange]]:
    """The target's token requests per expiry window (see :func:`window_starts`)."""
    starts = window_starts(result)
    grouped: dict[int, list[Exchange]] = defaultdict(list)
    for exchange in token_calls(result, *TOKEN_GRANTS):
        if not unavailable(exchange):  # a retry after 429/5xx is TOKEN-07's business
            grouped[bisect_left(starts, exchange.n)].append(exchange)
    return grouped


def _reuse_observed(result: ScenarioResult) -> bool:
    """Two completed units of work in one window: only then does reuse show."""
    starts = window_starts(result)
    ok_units = Counter(bisect_right(starts, ev.first) for ev in result.events if ev.kind == "unit" and ev.ok)
    return any(count >= 2 for count in ok_units.values())


@check("TOKEN-01", ("baseline", "expiry", "rotation"))
def reuses_access_token(ctx: Context) -> Outcome:
    results = completed(ctx.results.values())
    evidence: list[Evidence] = []
    for result in results:
        for group in windows(result).values():
            evidence += [ctx.evidence(result.name, e, f"token request {i + 2} in one 24 h window "
                                      f"(grant_type={grant_of(e)})") for i, e in enumerate(group[1:])]
    if evidence:
        return failed(f"{len(evidence)} token requests beyond the one each 24 h window needs, "
                      "while the access token was still valid", evidence[:MAX_EVIDENCE])
    observed = [r for r in results if _reuse_observed(r)]
    if not observed:
        return unjudged("no 24 h window with two completed units of work was observed "
                        f"(scenarios: {names(ctx.results.values())})")
    requests = sum(len(group) for r in observed for group in windows(r).values())
    return passed(f"at most one token request per 24 h window in {names(observed)} "
                  f"({requests} in all): the access token was reused")


# -- TOKEN-02 (and CC-03): renewal after expiry ----------------------------------
def repeated_expired_uses(result: ScenarioResult, grants: tuple[str, ...]) -> list[tuple[Exchange, str]]:
    """Calls with an expired token made after a newer token was obtained, or a second one in one unit.

    Parallel units that each meet the 401 once before their shared renewal are fine: a renewal
    counts against a call only when it happened in the same unit or in a unit that had ended. When
    the target's clock stood still, it believed the token young: only a use after a newer token was
    obtained shows regardless of its clock.
    """
    still = clock_stood_still(result) is not None
    renewals = successful(token_calls(result, *grants))
    minted = {issued_access_jti(e): e.n for e in successful(token_requests(result))}
    seen: Counter[str] = Counter()
    found: list[tuple[Exchange, str]] = []
    for call in api_calls(result):
        if call.facts.get("token_status") != "expired":
            continue
        seen[call.step] += 1
        unit, since = event_of(result, call), minted.get(call.facts.get("token_jti"), 0)
        if seen[call.step] > 1 and not still:
            found.append((call, f"expired token used again in {call.step} (use {seen[call.step]})"))
        elif any(since < r.n < call.n and _obtained_before(result, r, unit) for r in renewals):
            found.append((call, "expired token used after a new access token was obtained"))
    return found


def _obtained_before(result: ScenarioResult, renewal: Exchange, unit: Event | None) -> bool:
    source = event_of(result, renewal)
    return unit is None or source is None or source is unit or source.last <= unit.first


def judge_renewal(ctx: Context, grants: tuple[str, ...], what: str,
                  unless: Callable[[ScenarioResult], str | None] = lambda result: None) -> Outcome:
    """The expiry scenario, once it completed (CC-03 needs it, TOKEN-02 asks first): after the travel, a new
    token by ``grants`` and work that carries on (``unless`` gives a reason no renewal can be expected;
    checked after the repeated uses)."""
    result = ctx.results["expiry"]
    travel = expiry_travel(result)
    if travel is None:
        login = first_event(result, "login")
        if login is not None and not login.ok:
            why = f"the login failed ({ctx.redact(describe_failure(login))})"
        elif result.crash is not None:
            why = f"the target went down after {result.crash.after} (REL-01 judges that)"
        else:
            why = "it ended before the travel"
        return unjudged(f"the expiry scenario never travelled past the token's lifetime: {why}")
    repeated = repeated_expired_uses(result, grants)
    if repeated:
        return failed(f"the expired access token was used repeatedly ({len(repeated)} times)",
                      [ctx.evidence("expiry", e, d) for e, d in repeated[:MAX_EVIDENCE]])
    reason = unless(result)
    if reason:
        return skipped(reason)
    if not any(u.ok for u in units_before(result, travel)):
        return unjudged("no unit of work succeeded before the expiry, so carrying on after "
                        "it cannot be judged")
    return _carried_on(ctx, result, travel, grants, what)


def _carried_on(ctx: Context, result: ScenarioResult, travel: Event, grants: tuple[str, ...],
                what: str) -> Outcome:
    after = [e for e in sent_by_target(result) if e.n > travel.first]
    requests = [e for e in token_calls(result, *grants) if e.n > renewal_due(result, travel)]
    renewals = successful(requests)
    # a session lost to a refresh token kept after its rotation is TOKEN-03's defect, not a missing renewal
    broken = [u for u in units_after(result, travel) if not u.ok and not lost_to_a_stale_refresh_token(result, u)]
    still = clock_stood_still(result)
    if not renewals and still:
        did = f" ({ctx.redact(describe_failure(broken[0]))})" if broken else ""
        return unjudged(f"no {what} after the access token expired{did}, but {still}: it still "
                        "believed its token valid, where in production its clock would have run on")
    if not renewals:
        attempts = requests or [e for e in after if e.facts.get("token_status") == "expired"]
        did = f": {describe_failure(broken[0])}" if broken else ""
        evidence = [ctx.evidence("expiry", e, answer(e)) for e in attempts[:MAX_EVIDENCE]]
        evidence += [ctx.evidence("expiry", login_redirect(result, u), f"{u.label}: {ctx.redact(describe_failure(u))}")
                     for u in broken[:MAX_EVIDENCE]]
        return failed(f"no {what} after the access token expired{did}",
                      evidence or [ctx.evidence("expiry", None, f"no {what} after the travel past 24 h")])
    if broken and not all(u.ok for u in units_before(result, travel)):
        return unjudged(f"units of work failed before the expiry too, so the {len(broken)} "
                        f"failures after it ({ctx.redact(broken[0].detail)}) cannot be put down to the renewal")
    if broken and still:
        return unjudged(f"the {what} after the expiry succeeded, but {len(broken)} units of work "
                        f"failed afterwards ({ctx.redact(broken[0].detail)}); the target's clock could not be "
                        "moved, so tokens minted after the time travel look issued in its future (an ID token's "
                        "iat), which may be the cause")
    if broken:
        return failed(f"{len(broken)} units of work failed after the expiry",
                      [ctx.evidence("expiry", last_exchange(result, u), f"{u.label}: {u.detail}")
                       for u in broken[:MAX_EVIDENCE]])
    issued = {(e.facts.get("issued") or {}).get("access_jti") for e in renewals}
    used = [e for e in successful(api_calls(result)) if e.n > travel.first and e.facts.get("token_jti") in issued]
    if not used:
        return skipped(f"a {what} happened after the expiry, but no API call with the new "
                       "token was observed")
    path = "reactively, after a 401" if any(e.facts.get("token_status") == "expired" for e in after) else (
        "proactively, before any 401")
    return passed(f"after the expiry, with the user active every {ACTIVE_EVERY // 3600} h, "
                  f"{len(renewals)} {what} {path}; {len(used)} API calls then succeeded with the new token"
                  f"{clock_note(result)}")


@check("TOKEN-02", ("expiry", "idle_return"))  # no needs: an expiry not observed still lets the idle return fail
def refreshes_after_expiry(ctx: Context) -> Outcome:
    renewal = not_observed(ctx.results["expiry"]) or judge_renewal(
        ctx, ("refresh_token",), "refresh (grant_type=refresh_token)",
        unless=lambda result: no_refresh_token(result, "; SCOPE-01 judges the session after expiry"))
    if renewal.kind != "pass" and not renewal.skip:
        return renewal
    return _idle_return(ctx, renewal)


def _idle_return(ctx: Context, renewal: Outcome) -> Outcome:
    """An active user (docs/architecture.md): back after 3 days, a refresh and a new login are both right,
    and so is a handled error page; a 500 or a redirect loop is not (a crash is REL-01's)."""
    result = ctx.results.get("idle_return")
    if result is None or not result.completed:
        return renewal
    travel = expiry_travel(result)
    if travel is None:
        return renewal
    broken = [u for u in units_after(result, travel) if not u.ok and (
        u.failure in IDLE_FAILURES or (u.failure == "error_status" and u.status == 500))]
    if not broken:
        return renewal
    return failed(f"when the user came back after {travel.offset / DAY:g} days ({travel.label}), "
                  f"{ctx.redact(describe_failure(broken[0]))} instead of refreshing or asking for a new login",
                  [ctx.evidence(result.name, login_redirect(result, u), f"{u.label}: {ctx.redact(describe_failure(u))}")
                   for u in broken[:MAX_EVIDENCE]])
