"""TOKEN: reuse the access token, renew it after expiry, rotate refresh tokens, never loop.

Windows, units and retries are read from the scenario's events (``login``, ``unit``,
``travel``, ``fault``) and from the ``step`` and position of each exchange; times come
from the exchanges' ``at``, which the mock's one clock stamps.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable

from rfcheck.catalogue import requirement
from rfcheck.checks import (ALL_SCENARIOS, Context, check, failed, inapplicable, not_observed, passed, skipped,
                            unjudged)
from rfcheck.checks.queries import (api_calls, clock_stood_still, completed, describe_failure, expiry_travel,
                                   issued_access_jti, names, renewal_due, sent_by_target, successful, token_requests)
from rfcheck.journal import Exchange
from rfcheck.facts import CLIENT_CREDENTIALS
from rfcheck.report.model import Evidence, Finding
from rfcheck.observed import ACTIVE_EVERY, DAY, REFRESH_TOKEN, Event, ScenarioResult

TOKEN_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
DEAD_REFRESH = ("revoked", "rotated_reused", "unknown")
RESETS = ("login", "fault")  # a login the scenario asked for, or a revocation: a new token is due at once
IDLE_FAILURES = ("redirect_loop",)  # how a return after days must never go (a crash is REL-01's)
MAX_EVIDENCE = 6
MAX_DEAD_REFRESHES = 2  # catalogue TOKEN-04
MAX_REVOKED_CALLS = 2  # catalogue TOKEN-05
MAX_IMMEDIATE_RETRIES = 3  # catalogue TOKEN-07
IMMEDIATE = 0.5  # seconds: a retry sooner than this after a 429/5xx did not back off
RETRY_AFTER_SLACK = 0.1  # seconds of measuring noise forgiven against Retry-After


# -- reading a scenario -----------------------------------------------------------
def grant_of(exchange: Exchange) -> str | None:
    """The grant type of a token request, also when a 429/5xx answered before it was parsed."""
    return exchange.facts.get("grant_type") or exchange.form.get("grant_type")


def unavailable(exchange: Exchange) -> bool:
    """The token endpoint refused to serve (429 or 5xx): the request never reached a grant."""
    return exchange.status == 429 or exchange.status >= 500


def token_calls(result: ScenarioResult, *grants: str) -> list[Exchange]:
    """The target's requests to ``/oauth/token`` of the given grant types, faulted ones included."""
    return [e for e in token_requests(result) if not grants or grant_of(e) in grants]


def event_of(result: ScenarioResult, exchange: Exchange) -> Event | None:
    """The step an exchange belongs to (by label and journal position; parallel units share a range)."""
    return next((ev for ev in result.events if ev.label == exchange.step and ev.first < exchange.n <= ev.last),
                None)


def first_event(result: ScenarioResult, kind: str, label: str | None = None) -> Event | None:
    return next((ev for ev in result.events if ev.kind == kind and (label is None or ev.label == label)), None)


def units_after(result: ScenarioResult, event: Event) -> list[Event]:
    return [ev for ev in result.events[result.events.index(event) + 1:] if ev.kind == "unit"]


def units_before(result: ScenarioResult, event: Event) -> list[Event]:
    return [ev for ev in result.events[:result.events.index(event)] if ev.kind == "unit"]


def last_exchange(result: ScenarioResult, event: Event) -> Exchange | None:
    during = [e for e in result.during(event) if e.step == event.label]
    return during[-1] if during else None


def no_refresh_token(result: ScenarioResult, then: str = "") -> str | None:
    """Why no refresh can be expected: the logins returned no refresh token (no offline_access)."""
    codes = successful(token_calls(result, "authorization_code"))
    if codes and not any((e.facts.get("issued") or {}).get("refresh_token") for e in codes):
        return "the login returned no refresh token (offline_access was not granted)" + then
    return None


def clock_note(result: ScenarioResult) -> str:
    return f" ({clock_stood_still(result)}: judged on the reactive path)" if clock_stood_still(result) else ""


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
def reuses_access_token(ctx: Context) -> Finding:
    results = completed(ctx.results.values())
    evidence: list[Evidence] = []
    for result in results:
        for group in windows(result).values():
            evidence += [ctx.evidence(result.name, e, f"token request {i + 2} in one 24 h window "
                                      f"(grant_type={grant_of(e)})") for i, e in enumerate(group[1:])]
    if evidence:
        return failed("TOKEN-01", f"{len(evidence)} token requests beyond the one each 24 h window needs, "
                      "while the access token was still valid", evidence[:MAX_EVIDENCE])
    observed = [r for r in results if _reuse_observed(r)]
    if not observed:
        return unjudged("TOKEN-01", "no 24 h window with two completed units of work was observed "
                       f"(scenarios: {names(ctx.results.values())})")
    requests = sum(len(group) for r in observed for group in windows(r).values())
    return passed("TOKEN-01", f"at most one token request per 24 h window in {names(observed)} "
                  f"({requests} in all): the access token was reused")


# -- TOKEN-02 (and CC-03): renewal after expiry --------------------------------------
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


def judge_renewal(ctx: Context, requirement_id: str, grants: tuple[str, ...], what: str,
                  unless: Callable[[ScenarioResult], str | None] = lambda result: None) -> Finding:
    """The expiry scenario: after the travel, a new token by ``grants`` and work that carries on
    (``unless`` gives a reason no renewal can be expected; checked after the repeated uses)."""
    result = ctx.results["expiry"]
    unobserved = not_observed(requirement_id, result)
    if unobserved:
        return unobserved
    travel = expiry_travel(result)
    if travel is None:
        login = first_event(result, "login")
        if login is not None and not login.ok:
            why = f"the login failed ({ctx.redact(describe_failure(login))})"
        elif result.crash is not None:
            why = f"the target went down after {result.crash.after} (REL-01 judges that)"
        else:
            why = "it ended before the travel"
        return unjudged(requirement_id, f"the expiry scenario never travelled past the token's lifetime: {why}")
    repeated = repeated_expired_uses(result, grants)
    if repeated:
        return failed(requirement_id, f"the expired access token was used repeatedly ({len(repeated)} times)",
                      [ctx.evidence("expiry", e, d) for e, d in repeated[:MAX_EVIDENCE]])
    reason = unless(result)
    if reason:
        return skipped(requirement_id, reason)
    if not any(u.ok for u in units_before(result, travel)):
        return unjudged(requirement_id, "no unit of work succeeded before the expiry, so carrying on after "
                       "it cannot be judged")
    return _carried_on(ctx, requirement_id, result, travel, grants, what)


def _carried_on(ctx: Context, requirement_id: str, result: ScenarioResult, travel: Event,
                grants: tuple[str, ...], what: str) -> Finding:
    after = [e for e in sent_by_target(result) if e.n > travel.first]
    requests = [e for e in token_calls(result, *grants) if e.n > renewal_due(result, travel)]
    renewals = successful(requests)
    # a session lost to a refresh token kept after its rotation is TOKEN-03's defect, not a missing renewal
    broken = [u for u in units_after(result, travel) if not u.ok and not _lost_to_a_stale_refresh_token(result, u)]
    still = clock_stood_still(result)
    if not renewals and still:
        did = f" ({ctx.redact(describe_failure(broken[0]))})" if broken else ""
        return unjudged(requirement_id, f"no {what} after the access token expired{did}, but {still}: it still "
                        "believed its token valid, where in production its clock would have run on")
    if not renewals:
        attempts = requests or [e for e in after if e.facts.get("token_status") == "expired"]
        did = f": {describe_failure(broken[0])}" if broken else ""
        evidence = [ctx.evidence("expiry", e, _answer(e)) for e in attempts[:MAX_EVIDENCE]]
        evidence += [ctx.evidence("expiry", _login_redirect(result, u), f"{u.label}: {ctx.redact(describe_failure(u))}")
                     for u in broken[:MAX_EVIDENCE]]
        return failed(requirement_id, f"no {what} after the access token expired{did}",
                      evidence or [ctx.evidence("expiry", None, f"no {what} after the travel past 24 h")])
    if broken and not all(u.ok for u in units_before(result, travel)):
        return unjudged(requirement_id, f"units of work failed before the expiry too, so the {len(broken)} "
                       f"failures after it ({ctx.redact(broken[0].detail)}) cannot be put down to the renewal")
    if broken and still:
        return unjudged(requirement_id, f"the {what} after the expiry succeeded, but {len(broken)} units of work "
                       f"failed afterwards ({ctx.redact(broken[0].detail)}); the target's clock could not be "
                       "moved, so tokens minted after the time travel look issued in its future (an ID token's "
                       "iat), which may be the cause")
    if broken:
        return failed(requirement_id, f"{len(broken)} units of work failed after the expiry",
                      [ctx.evidence("expiry", last_exchange(result, u), f"{u.label}: {u.detail}")
                       for u in broken[:MAX_EVIDENCE]])
    issued = {(e.facts.get("issued") or {}).get("access_jti") for e in renewals}
    used = [e for e in successful(api_calls(result)) if e.n > travel.first and e.facts.get("token_jti") in issued]
    if not used:
        return skipped(requirement_id, f"a {what} happened after the expiry, but no API call with the new "
                       "token was observed")
    path = "reactively, after a 401" if any(e.facts.get("token_status") == "expired" for e in after) else (
        "proactively, before any 401")
    return passed(requirement_id, f"after the expiry, with the user active every {ACTIVE_EVERY // 3600} h, "
                  f"{len(renewals)} {what} {path}; {len(used)} API calls then succeeded with the new token"
                  f"{clock_note(result)}")


def _answer(exchange: Exchange) -> str:
    problem = exchange.facts.get("error") or exchange.facts.get("token_status")
    return f"answered {exchange.status}" + (f" {problem}" if problem else "")


@check("TOKEN-02", ("expiry", "idle_return"))
def refreshes_after_expiry(ctx: Context) -> Finding:
    finding = judge_renewal(ctx, "TOKEN-02", ("refresh_token",), "refresh (grant_type=refresh_token)",
                            unless=lambda result: no_refresh_token(result, "; SCOPE-01 judges the session after "
                                                                           "expiry"))
    if finding.status not in ("pass", "skip"):
        return finding
    return _idle_return(ctx, finding)


def _idle_return(ctx: Context, finding: Finding) -> Finding:
    """An active user (docs/architecture.md): back after 3 days, a refresh and a new login are both right,
    and so is a handled error page; a 500 or a redirect loop is not (a crash is REL-01's)."""
    result = ctx.results.get("idle_return")
    if result is None or not result.completed:
        return finding
    travel = expiry_travel(result)
    if travel is None:
        return finding
    broken = [u for u in units_after(result, travel) if not u.ok and (
        u.failure in IDLE_FAILURES or (u.failure == "error_status" and u.status == 500))]
    if not broken:
        return finding
    return failed("TOKEN-02", f"when the user came back after {travel.offset / DAY:g} days ({travel.label}), "
                  f"{ctx.redact(describe_failure(broken[0]))} instead of refreshing or asking for a new login",
                  [ctx.evidence(result.name, _login_redirect(result, u), f"{u.label}: {ctx.redact(describe_failure(u))}")
                   for u in broken[:MAX_EVIDENCE]])


# -- TOKEN-03 --------------------------------------------------------------------
def _rotating_refresh(result: ScenarioResult, exchange: Exchange) -> Exchange | None:
    """The refresh that rotated out the refresh token ``exchange`` presents.

    Exchanges are numbered as they arrive and answered in whatever order the mock gets to them: under a
    slow token endpoint, a request that arrived first can be answered after the one that rotated its
    token out, so the rotating one may carry the higher number.
    """
    token = exchange.form.get("refresh_token")
    return next((e for e in token_calls(result, "refresh_token") if e is not exchange and e.status == 200
                 and e.form.get("refresh_token") == token), None)


def _reuses(result: ScenarioResult) -> list[tuple[Exchange, Exchange | None]]:
    """Every rotated-out refresh token presented again, with the refresh that rotated it out."""
    return [(e, _rotating_refresh(result, e)) for e in token_calls(result, "refresh_token")
            if e.facts.get("refresh_status") == "rotated_reused"]


def stale_reuses(result: ScenarioResult) -> list[Exchange]:
    """Rotated-out refresh tokens presented again in a request sent after the rotation's answer had
    reached the app (in a race what counts is what the app knew), in any unit of work.

    The journal numbers a request when it arrives and marks where the answer was sent (``done``): a
    request that arrived after the rotating answer went out was sent by an app that had the new token
    (RFC 6749 §6); one that arrived before it is a race of parallel refreshes, which TOKEN-06 judges.
    """
    return [e for e, rotating in _reuses(result) if rotating is None or e.n > rotating.done]


def races(result: ScenarioResult) -> list[Exchange]:
    """Rotated-out refresh tokens presented while the rotating refresh was still in flight."""
    stale = stale_reuses(result)
    return [e for e, _ in _reuses(result) if e not in stale]


@check("TOKEN-03", (*ALL_SCENARIOS, "rotation"))  # every scenario for reuse, the rotation for the rest
def uses_newest_refresh_token(ctx: Context) -> Finding:
    results = completed(ctx.results.values())
    reused = [(r.name, e) for r in results for e in stale_reuses(r)]
    if reused:
        return failed("TOKEN-03", f"a rotated-out refresh token was presented again {len(reused)} time(s) in "
                      f"{names(r for r in results if stale_reuses(r))}: the provider revoked the whole family",
                      [ctx.evidence(s, e, "refresh token already rotated out (reuse detection revoked the family)")
                       for s, e in reused[:MAX_EVIDENCE]])
    result = ctx.results.get("rotation")
    unobserved = not_observed("TOKEN-03", result) if result else unjudged("TOKEN-03", "the rotation scenario did not run")
    if unobserved:
        return unobserved
    assert result is not None
    rotated = [e for e in successful(token_calls(result, "refresh_token")) if e.facts.get("refresh_status") == "current"]
    raced = sum(len(races(r)) for r in results)
    if len(rotated) < 2:
        why = no_refresh_token(result) or (f"the rotation scenario saw {len(rotated)} successful refreshes; two in "
                                           "a row are needed to see the newest refresh token used")
        still = clock_stood_still(result)
        return unjudged("TOKEN-03", f"{why}; {still}") if still and not no_refresh_token(result) else (
            skipped("TOKEN-03", why))
    after = ("no rotated-out token was presented again in any scenario" if not raced else
             f"no rotated-out token was presented again once the app had the new one ({raced} presented by refreshes "
             "sent while the rotating one was in flight: a race, which TOKEN-06 judges)")
    return passed("TOKEN-03", f"{len(rotated)} refreshes in a row each presented the newest refresh token, and {after}")


def _unseen(requirement_id: str, result: ScenarioResult, what: str, refresh: bool = True) -> Finding:
    """A skip for a renewal the scenario never saw: a refresh does not apply without a refresh token; it
    was not judged when the target's clock stood still (it believed its token young, so never renewed it)."""
    none = no_refresh_token(result) if refresh else None
    if none:
        return skipped(requirement_id, none)
    still = clock_stood_still(result)
    return unjudged(requirement_id, f"{what}: {still}") if still else skipped(requirement_id, what)


# -- TOKEN-04 --------------------------------------------------------------------
def dead_refresh_retries(result: ScenarioResult) -> list[Exchange]:
    """Refresh attempts with a dead refresh token: the first, then each one sent after an invalid_grant
    had been answered (parallel attempts already in flight did not know yet)."""
    dead = [e for e in token_calls(result, "refresh_token") if e.facts.get("refresh_status") in DEAD_REFRESH]
    return [e for i, e in enumerate(dead) if i == 0 or any(e.n > d.done for d in dead[:i])]


def died_on(result: ScenarioResult, check_trigger: Callable[[Exchange], bool]) -> Exchange | None:
    """The error answer the target's process died on, when ``check_trigger`` says it is the one."""
    if result.crash is None or result.crash.trigger is None:
        return None
    trigger = next((e for e in result.exchanges if e.n == result.crash.trigger), None)
    return trigger if trigger is not None and check_trigger(trigger) else None


def _is_dead_refresh(exchange: Exchange) -> bool:
    return exchange.facts.get("refresh_status") in DEAD_REFRESH


@check("TOKEN-04", (*ALL_SCENARIOS, "revoked_refresh"))  # every scenario for loops, revoked_refresh for the rest
def stops_on_invalid_grant(ctx: Context) -> Finding:
    results = completed(ctx.results.values())
    looping = [(r, dead) for r in results if len(dead := dead_refresh_retries(r)) > MAX_DEAD_REFRESHES]
    if looping:
        evidence = [ctx.evidence(r.name, e, f"invalid_grant ({e.facts.get('refresh_status')}), attempt {i + 1}")
                    for r, dead in looping for i, e in enumerate(dead)]
        most = max(len(dead) for _, dead in looping)
        return failed("TOKEN-04", f"up to {most} refresh attempts with a dead refresh token (at most "
                      f"{MAX_DEAD_REFRESHES}) in {names(r for r, _ in looping)}", evidence[:MAX_EVIDENCE])
    died = [(r, e) for r in results if (e := died_on(r, _is_dead_refresh))]
    if died:
        return failed("TOKEN-04", f"the process died on invalid_grant in {names(r for r, _ in died)} instead of "
                      "asking the user to connect again",
                      [ctx.evidence(r.name, e, "the last answer before the process went down") for r, e in died])
    result = ctx.results.get("revoked_refresh")
    unobserved = not_observed("TOKEN-04", result) if result else unjudged("TOKEN-04", "the revoked refresh "
                                                                                  "scenario did not run")
    if unobserved:
        return unobserved
    assert result is not None
    fault = first_event(result, "fault")
    if fault is None:
        return unjudged("TOKEN-04", "the login failed, so the revoked refresh token was never met")
    dead = [e for e in dead_refresh_retries(result) if e.n > fault.first]
    if not dead:
        return _unseen("TOKEN-04", result, "no refresh with the revoked refresh token was observed after the expiry")
    return _reconnected(ctx, result, fault, len(dead))


def _reconnected(ctx: Context, result: ScenarioResult, fault: Event, dead: int) -> Finding:
    reconnect = first_event(result, "login", "reconnect")
    if reconnect is None:
        return unjudged("TOKEN-04", "the scenario did not reach the user's new login")
    if not reconnect.ok:
        return failed("TOKEN-04", f"after invalid_grant, the user's new login failed ({ctx.redact(describe_failure(reconnect))})",
                      [ctx.evidence("revoked_refresh", last_exchange(result, reconnect), reconnect.detail)])
    broken = [u for u in units_after(result, reconnect) if not u.ok]
    if broken and any(u.ok for u in units_before(result, fault)):
        return failed("TOKEN-04", "after invalid_grant and a new login, work did not resume",
                      [ctx.evidence("revoked_refresh", last_exchange(result, u), u.detail) for u in broken])
    after = "work failed before the revocation too" if broken else "the user's new login restored the session"
    return passed("TOKEN-04", f"{dead} refresh attempt(s) with the revoked refresh token, then it stopped; {after}")


# -- TOKEN-05 --------------------------------------------------------------------
@check("TOKEN-05", ("revoked_access",))
def no_loop_on_revoked_token(ctx: Context) -> Finding:
    result = ctx.results["revoked_access"]
    unobserved = not_observed("TOKEN-05", result)
    if unobserved:
        return unobserved
    revoked = [e for e in api_calls(result) if e.facts.get("token_status") == "revoked"]
    died = died_on(result, lambda e: e.host == "api" and e.status == 401)
    if died is not None:
        return failed("TOKEN-05", "the process died on the 401 invalid_token: that is not stopping cleanly",
                      [ctx.evidence(result.name, died, "the last answer before the process went down")])
    if not revoked:
        return skipped("TOKEN-05", "no API call with the revoked access token was observed")
    per_token = Counter(e.facts.get("token_jti") for e in revoked)
    looping = {jti for jti, count in per_token.items() if count > MAX_REVOKED_CALLS}
    calls = [e for e in revoked if e.facts.get("token_jti") in looping]
    if calls:
        evidence = [ctx.evidence("revoked_access", e, f"401 invalid_token (revoked), call {i + 1}")
                    for i, e in enumerate(calls)]
        return failed("TOKEN-05", f"{len(calls)} API calls with a revoked access token (at most "
                      f"{MAX_REVOKED_CALLS})", evidence[:MAX_EVIDENCE])
    last = max(e.n for e in revoked)
    refreshed = any(e.n > last for e in successful(token_calls(result, "refresh_token")))
    then = "then the target refreshed and carried on" if refreshed else "then the target stopped using it"
    return passed("TOKEN-05", f"the revoked access token was used {max(per_token.values())} time(s), {then}")


# -- TOKEN-06 --------------------------------------------------------------------
@check("TOKEN-06", ("concurrency",))
def one_refresh_for_parallel_units(ctx: Context) -> Finding:
    result = ctx.results["concurrency"]
    unobserved = not_observed("TOKEN-06", result)
    if unobserved:
        return unobserved
    parallel = [ev for ev in result.events_of("unit") if ev.label.startswith("parallel unit")]
    if not parallel:
        return unjudged("TOKEN-06", "the login failed, so no parallel units of work ran")
    start, end = min(ev.first for ev in parallel), max(ev.last for ev in parallel)
    refreshes = [e for e in token_calls(result, "refresh_token") if start < e.n <= end]
    if len(refreshes) > 1:
        evidence = [ctx.evidence("concurrency", e, f"refresh from {e.step} ({_answer(e)})") for e in refreshes]
        harm = _storm_harm(ctx, result, refreshes, parallel)
        if harm is not None:
            return harm
        lost = [u for u in parallel if not u.ok]
        why = (f"{len(lost)} units lost their session to a refresh token kept after its rotation (TOKEN-03), "
               "not to the storm" if lost else "no user lost their session")
        return failed("TOKEN-06", f"{len(parallel)} parallel units of work made {len(refreshes)} refresh "
                      f"requests instead of sharing one ({why}: should)", evidence[:MAX_EVIDENCE])
    if not refreshes:
        return _unseen("TOKEN-06", result, "no refresh was observed during the parallel units after expiry")
    return passed("TOKEN-06", f"{len(parallel)} parallel units of work after expiry shared one refresh")


def _storm_harm(ctx: Context, result: ScenarioResult, refreshes: list[Exchange], parallel: list[Event]) -> Finding | None:
    """A storm whose reused refresh token made the provider revoke the family, so that units of work then
    failed or sent their user to log in: with Auth0 rotation, a production outage at the first busy expiry
    (the catalogue's harm level, must). None when the storm did no such harm."""
    raced = races(result)  # a reuse sent after the rotation's answer arrived is TOKEN-03's, not the storm's
    revoking = [e for e in refreshes if e in raced]
    lost = [u for u in parallel if not u.ok]
    if not revoking or not lost:
        return None
    evidence = [ctx.evidence("concurrency", e, f"refresh from {e.step} presented the refresh token another "
                             "parallel refresh had just rotated out: the provider revoked the whole family")
                for e in revoking[:3]]
    evidence += [ctx.evidence("concurrency", _login_redirect(result, u), f"{u.label}: {ctx.redact(describe_failure(u))}")
                 for u in lost[:3]]
    after = sum(e.facts.get("refresh_status") == "revoked" for e in refreshes)
    more = f", {after} more met the revoked family" if after else ""
    return failed("TOKEN-06", f"{len(parallel)} parallel units of work made {len(refreshes)} refresh requests; "
                  f"{len(revoking)} presented a refresh token another had just rotated out, the provider revoked "
                  f"the family{more}, and {len(lost)} of the {len(parallel)} units lost their session", evidence,
                  level=requirement("TOKEN-06").harm_level)


# -- TOKEN-07 --------------------------------------------------------------------
def retries(result: ScenarioResult) -> list[tuple[Exchange, Exchange]]:
    """(refused, next) pairs: a 429/5xx token answer and the target's next token request in that unit."""
    calls = token_calls(result)
    return [(refused, nxt) for refused, nxt in zip(calls, calls[1:])
            if unavailable(refused) and nxt.step == refused.step]


def _hasty(refused: Exchange, retry: Exchange) -> str | None:
    """Why a retry came too soon: before Retry-After (RFC 9110 §10.2.3), or without any back-off."""
    waited, header = retry.at - refused.at, refused.response_headers.get("retry-after", "")
    asked = float(header) if header.replace(".", "", 1).isdigit() else None
    if asked is not None and waited < asked - RETRY_AFTER_SLACK:
        return f"retried {waited:.2f} s after a {refused.status} with Retry-After: {asked:g}"
    if waited < IMMEDIATE:
        return f"retried {waited:.2f} s after a {refused.status}, without backing off"
    return None


@check("TOKEN-07", ("token_endpoint_unavailable",))
def backs_off_on_unavailable(ctx: Context) -> Finding:
    result = ctx.results["token_endpoint_unavailable"]
    unobserved = not_observed("TOKEN-07", result)
    if unobserved:
        return unobserved
    refused = [e for e in token_calls(result) if unavailable(e)]
    died = died_on(result, unavailable)
    if died is not None:
        return failed("TOKEN-07", f"the process died on the token endpoint's {died.status}",
                      [ctx.evidence(result.name, died, "the last answer before the process went down")])
    if not refused:
        return _unseen("TOKEN-07", result, "the target never met the token endpoint's 429/503 answers", refresh=False)
    dropped = [u for u in result.events_of("unit") if u.failure == "login_required" and u.first > refused[0].n - 1
               and not _lost_to_a_stale_refresh_token(result, u)]
    if dropped:
        return failed("TOKEN-07", f"after a transient {refused[0].status} the app sent its user to log in again "
                      f"({len(dropped)} unit(s)), although the refresh token was still good: a transient error "
                      "cost the user their session",
                      [ctx.evidence(result.name, refused[0], f"the token endpoint answered {refused[0].status}")]
                      + [ctx.evidence(result.name, _login_redirect(result, u), f"{u.label}: {ctx.redact(describe_failure(u))}")
                         for u in dropped[:MAX_EVIDENCE]])
    pairs = retries(result)
    hasty = [(retry, problem) for refused_one, retry in pairs if (problem := _hasty(refused_one, retry))]
    if len(hasty) > MAX_IMMEDIATE_RETRIES:
        return failed("TOKEN-07", f"{len(hasty)} token requests retried at once after 429/503 (at most "
                      f"{MAX_IMMEDIATE_RETRIES})", [ctx.evidence(result.name, e, p) for e, p in hasty[:MAX_EVIDENCE]])
    waits = [retry.at - first.at for first, retry in pairs]
    how = f"{len(pairs)} retries, the shortest after {min(waits):.2f} s" if waits else "no retry"
    return passed("TOKEN-07", f"{len(refused)} 429/503 answers from the token endpoint met with back-off "
                  f"({how}; {len(hasty)} hasty)")


def _lost_to_a_stale_refresh_token(result: ScenarioResult, unit: Event) -> bool:
    """The session ended because the app presented a rotated-out refresh token (TOKEN-03's defect, not the
    outage's): Request Finance then revokes the whole family, and a new login is the only way on."""
    return any(e.facts.get("refresh_status") == "rotated_reused" for e in token_calls(result) if e.n <= unit.last)


def _login_redirect(result: ScenarioResult, unit: Event) -> Exchange | None:
    """The app's answer that sent its user to log in during ``unit`` (or the unit's last exchange)."""
    redirects = [e for e in result.during(unit) if e.facts.get("login_redirect")]
    return redirects[-1] if redirects else last_exchange(result, unit)


# -- TOKEN-08 --------------------------------------------------------------------
TOKEN_ENDPOINTS = ("/oauth/token", "/oauth/revoke")  # RFC 7009: revocation may carry it in the body


def _places(exchange: Exchange) -> dict[str, str]:
    """Where a refresh token must not be: any URL; headers and body except at the token endpoints."""
    places = {"URL": exchange.url}
    if not (exchange.host == "auth" and exchange.path.rstrip("/") in TOKEN_ENDPOINTS):
        places.update({f"header {k}": v for k, v in exchange.headers.items()})
        places.update({f"body field {k}": v for k, v in exchange.form.items()})
    return places


def _leak(exchange: Exchange, tokens: frozenset[str]) -> str | None:
    places = [place for place, value in _places(exchange).items() if any(t in value for t in tokens)]
    return f"a refresh token in the {places[0]}" if places else None


@check("TOKEN-08", ALL_SCENARIOS)
def refresh_token_only_to_token_endpoint(ctx: Context) -> Finding:
    tokens = frozenset(value for value, kind in ctx.issued().items() if kind == REFRESH_TOKEN)
    if not tokens:
        why = "the client credentials flow never gets one" if ctx.config.flow == CLIENT_CREDENTIALS else (
            "no login got as far as a token with offline_access")
        found = inapplicable if ctx.config.flow == CLIENT_CREDENTIALS else skipped
        return found("TOKEN-08", f"no refresh token was issued in this run: {why}")
    results = completed(ctx.results.values())
    searched = [(r.name, e) for r in results for e in r.exchanges if e.origin in ("target", "browser")]
    if not searched:
        return skipped("TOKEN-08", f"no exchange was observed (scenarios: {names(ctx.results.values())})")
    evidence = [ctx.evidence(s, e, leak) for s, e in searched if (leak := _leak(e, tokens))]
    if evidence:
        return failed("TOKEN-08", f"{len(evidence)} requests carried a refresh token outside the token "
                      "endpoint's body", evidence[:MAX_EVIDENCE])
    return passed("TOKEN-08", f"none of the {len(tokens)} refresh tokens issued appeared on the API or in a "
                  f"URL ({len(searched)} exchanges searched)")
