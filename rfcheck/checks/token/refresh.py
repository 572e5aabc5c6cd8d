"""TOKEN-03, TOKEN-04 and TOKEN-08: the refresh token: the newest one presented, a dead one given up for a new
login, and sent nowhere but the token endpoint."""

from __future__ import annotations

from rfcheck.checks import ALL_SCENARIOS, Context, check
from rfcheck.checks.outcome import Outcome, failed, inapplicable, not_observed, passed, skipped, unjudged
from rfcheck.checks.queries import clock_stood_still, completed, describe_failure, names, successful
from rfcheck.checks.token.reading import (MAX_EVIDENCE, died_on, first_event, last_exchange, no_refresh_token,
                                         token_calls, units_after, units_before, unseen)
from rfcheck.facts import CLIENT_CREDENTIALS
from rfcheck.journal import Exchange
from rfcheck.observed import REFRESH_TOKEN, Event, ScenarioResult

DEAD_REFRESH = ("revoked", "rotated_reused", "unknown")
MAX_DEAD_REFRESHES = 2  # catalogue TOKEN-04
TOKEN_ENDPOINTS = ("/oauth/token", "/oauth/revoke")  # RFC 7009: revocation may carry it in the body


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
def uses_newest_refresh_token(ctx: Context) -> Outcome:
    results = completed(ctx.results.values())
    reused = [(r.name, e) for r in results for e in stale_reuses(r)]
    if reused:
        return failed(f"a rotated-out refresh token was presented again {len(reused)} time(s) in "
                      f"{names(r for r in results if stale_reuses(r))}: the provider revoked the whole family",
                      [ctx.evidence(s, e, "refresh token already rotated out (reuse detection revoked the family)")
                       for s, e in reused[:MAX_EVIDENCE]])
    result = ctx.results.get("rotation")
    unobserved = not_observed(result) if result else unjudged("the rotation scenario did not run")
    if unobserved:
        return unobserved
    assert result is not None
    rotated = [e for e in successful(token_calls(result, "refresh_token")) if e.facts.get("refresh_status") == "current"]
    raced = sum(len(races(r)) for r in results)
    if len(rotated) < 2:
        why = no_refresh_token(result) or (f"the rotation scenario saw {len(rotated)} successful refreshes; two in "
                                           "a row are needed to see the newest refresh token used")
        still = clock_stood_still(result)
        return unjudged(f"{why}; {still}") if still and not no_refresh_token(result) else skipped(why)
    after = ("no rotated-out token was presented again in any scenario" if not raced else
             f"no rotated-out token was presented again once the app had the new one ({raced} presented by refreshes "
             "sent while the rotating one was in flight: a race, which TOKEN-06 judges)")
    return passed(f"{len(rotated)} refreshes in a row each presented the newest refresh token, and {after}")


# -- TOKEN-04 --------------------------------------------------------------------
def dead_refresh_retries(result: ScenarioResult) -> list[Exchange]:
    """Refresh attempts with a dead refresh token: the first, then each one sent after an invalid_grant
    had been answered (parallel attempts already in flight did not know yet)."""
    dead = [e for e in token_calls(result, "refresh_token") if e.facts.get("refresh_status") in DEAD_REFRESH]
    return [e for i, e in enumerate(dead) if i == 0 or any(e.n > d.done for d in dead[:i])]


def _is_dead_refresh(exchange: Exchange) -> bool:
    return exchange.facts.get("refresh_status") in DEAD_REFRESH


@check("TOKEN-04", (*ALL_SCENARIOS, "revoked_refresh"))  # every scenario for loops, revoked_refresh for the rest
def stops_on_invalid_grant(ctx: Context) -> Outcome:
    results = completed(ctx.results.values())
    looping = [(r, dead) for r in results if len(dead := dead_refresh_retries(r)) > MAX_DEAD_REFRESHES]
    if looping:
        evidence = [ctx.evidence(r.name, e, f"invalid_grant ({e.facts.get('refresh_status')}), attempt {i + 1}")
                    for r, dead in looping for i, e in enumerate(dead)]
        most = max(len(dead) for _, dead in looping)
        return failed(f"up to {most} refresh attempts with a dead refresh token (at most "
                      f"{MAX_DEAD_REFRESHES}) in {names(r for r, _ in looping)}", evidence[:MAX_EVIDENCE])
    died = [(r, e) for r in results if (e := died_on(r, _is_dead_refresh))]
    if died:
        return failed(f"the process died on invalid_grant in {names(r for r, _ in died)} instead of "
                      "asking the user to connect again",
                      [ctx.evidence(r.name, e, "the last answer before the process went down") for r, e in died])
    result = ctx.results.get("revoked_refresh")
    unobserved = not_observed(result) if result else unjudged("the revoked refresh scenario did not run")
    if unobserved:
        return unobserved
    assert result is not None
    fault = first_event(result, "fault")
    if fault is None:
        return unjudged("the login failed, so the revoked refresh token was never met")
    dead = [e for e in dead_refresh_retries(result) if e.n > fault.first]
    if not dead:
        return unseen(result, "no refresh with the revoked refresh token was observed after the expiry")
    return _reconnected(ctx, result, fault, len(dead))


def _reconnected(ctx: Context, result: ScenarioResult, fault: Event, dead: int) -> Outcome:
    reconnect = first_event(result, "login", "reconnect")
    if reconnect is None:
        return unjudged("the scenario did not reach the user's new login")
    if not reconnect.ok:
        return failed(f"after invalid_grant, the user's new login failed ({ctx.redact(describe_failure(reconnect))})",
                      [ctx.evidence("revoked_refresh", last_exchange(result, reconnect), reconnect.detail)])
    broken = [u for u in units_after(result, reconnect) if not u.ok]
    if broken and any(u.ok for u in units_before(result, fault)):
        return failed("after invalid_grant and a new login, work did not resume",
                      [ctx.evidence("revoked_refresh", last_exchange(result, u), u.detail) for u in broken])
    after = "work failed before the revocation too" if broken else "the user's new login restored the session"
    return passed(f"{dead} refresh attempt(s) with the revoked refresh token, then it stopped; {after}")


# -- TOKEN-08 --------------------------------------------------------------------
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
def refresh_token_only_to_token_endpoint(ctx: Context) -> Outcome:
    tokens = frozenset(value for value, kind in ctx.issued().items() if kind == REFRESH_TOKEN)
    if not tokens:
        why = "the client credentials flow never gets one" if ctx.config.flow == CLIENT_CREDENTIALS else (
            "no login got as far as a token with offline_access")
        found = inapplicable if ctx.config.flow == CLIENT_CREDENTIALS else skipped
        return found(f"no refresh token was issued in this run: {why}")
    results = completed(ctx.results.values())
    searched = [(r.name, e) for r in results for e in r.exchanges if e.origin in ("target", "browser")]
    if not searched:
        return skipped(f"no exchange was observed (scenarios: {names(ctx.results.values())})")
    evidence = [ctx.evidence(s, e, leak) for s, e in searched if (leak := _leak(e, tokens))]
    if evidence:
        return failed(f"{len(evidence)} requests carried a refresh token outside the token "
                      "endpoint's body", evidence[:MAX_EVIDENCE])
    return passed(f"none of the {len(tokens)} refresh tokens issued appeared on the API or in a "
                  f"URL ({len(searched)} exchanges searched)")
