"""TOKEN-05, TOKEN-06 and TOKEN-07: no storm of requests when tokens meet trouble: a revoked access token,
parallel units of work at the expiry, a token endpoint answering 429/5xx."""

from __future__ import annotations

from collections import Counter

from rfcheck.catalogue import requirement
from rfcheck.checks import Context, check
from rfcheck.checks.outcome import Outcome, failed, passed, skipped, unjudged
from rfcheck.checks.queries import api_calls, describe_failure, successful
from rfcheck.checks.token.reading import (MAX_EVIDENCE, answer, died_on, login_redirect, lost_to_a_stale_refresh_token,
                                         token_calls, unavailable, unseen)
from rfcheck.checks.token.refresh import races
from rfcheck.journal import Exchange
from rfcheck.observed import Event, ScenarioResult

MAX_REVOKED_CALLS = 2  # catalogue TOKEN-05
MAX_IMMEDIATE_RETRIES = 3  # catalogue TOKEN-07
IMMEDIATE = 0.5  # seconds: a retry sooner than this after a 429/5xx did not back off
RETRY_AFTER_SLACK = 0.1  # seconds of measuring noise forgiven against Retry-After


# -- TOKEN-05 --------------------------------------------------------------------
@check("TOKEN-05", ("revoked_access",), needs=("revoked_access",))
def no_loop_on_revoked_token(ctx: Context) -> Outcome:
    result = ctx.results["revoked_access"]
    revoked = [e for e in api_calls(result) if e.facts.get("token_status") == "revoked"]
    died = died_on(result, lambda e: e.host == "api" and e.status == 401)
    if died is not None:
        return failed("the process died on the 401 invalid_token: that is not stopping cleanly",
                      [ctx.evidence(result.name, died, "the last answer before the process went down")])
    if not revoked:
        return skipped("no API call with the revoked access token was observed")
    per_token = Counter(e.facts.get("token_jti") for e in revoked)
    looping = {jti for jti, count in per_token.items() if count > MAX_REVOKED_CALLS}
    calls = [e for e in revoked if e.facts.get("token_jti") in looping]
    if calls:
        evidence = [ctx.evidence("revoked_access", e, f"401 invalid_token (revoked), call {i + 1}")
                    for i, e in enumerate(calls)]
        return failed(f"{len(calls)} API calls with a revoked access token (at most "
                      f"{MAX_REVOKED_CALLS})", evidence[:MAX_EVIDENCE])
    last = max(e.n for e in revoked)
    refreshed = any(e.n > last for e in successful(token_calls(result, "refresh_token")))
    then = "then the target refreshed and carried on" if refreshed else "then the target stopped using it"
    return passed(f"the revoked access token was used {max(per_token.values())} time(s), {then}")


# -- TOKEN-06 --------------------------------------------------------------------
@check("TOKEN-06", ("concurrency",), needs=("concurrency",))
def one_refresh_for_parallel_units(ctx: Context) -> Outcome:
    result = ctx.results["concurrency"]
    parallel = [ev for ev in result.events_of("unit") if ev.label.startswith("parallel unit")]
    if not parallel:
        return unjudged("the login failed, so no parallel units of work ran")
    start, end = min(ev.first for ev in parallel), max(ev.last for ev in parallel)
    refreshes = [e for e in token_calls(result, "refresh_token") if start < e.n <= end]
    if len(refreshes) > 1:
        evidence = [ctx.evidence("concurrency", e, f"refresh from {e.step} ({answer(e)})") for e in refreshes]
        harm = _storm_harm(ctx, result, refreshes, parallel)
        if harm is not None:
            return harm
        lost = [u for u in parallel if not u.ok]
        why = (f"{len(lost)} units lost their session to a refresh token kept after its rotation (TOKEN-03), "
               "not to the storm" if lost else "no user lost their session")
        return failed(f"{len(parallel)} parallel units of work made {len(refreshes)} refresh "
                      f"requests instead of sharing one ({why}: should)", evidence[:MAX_EVIDENCE])
    if not refreshes:
        return unseen(result, "no refresh was observed during the parallel units after expiry")
    return passed(f"{len(parallel)} parallel units of work after expiry shared one refresh")


def _storm_harm(ctx: Context, result: ScenarioResult, refreshes: list[Exchange], parallel: list[Event]) -> Outcome | None:
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
    evidence += [ctx.evidence("concurrency", login_redirect(result, u), f"{u.label}: {ctx.redact(describe_failure(u))}")
                 for u in lost[:3]]
    after = sum(e.facts.get("refresh_status") == "revoked" for e in refreshes)
    more = f", {after} more met the revoked family" if after else ""
    return failed(f"{len(parallel)} parallel units of work made {len(refreshes)} refresh requests; "
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


@check("TOKEN-07", ("token_endpoint_unavailable",), needs=("token_endpoint_unavailable",))
def backs_off_on_unavailable(ctx: Context) -> Outcome:
    result = ctx.results["token_endpoint_unavailable"]
    refused = [e for e in token_calls(result) if unavailable(e)]
    died = died_on(result, unavailable)
    if died is not None:
        return failed(f"the process died on the token endpoint's {died.status}",
                      [ctx.evidence(result.name, died, "the last answer before the process went down")])
    if not refused:
        return unseen(result, "the target never met the token endpoint's 429/503 answers", refresh=False)
    dropped = [u for u in result.events_of("unit") if u.failure == "login_required" and u.first > refused[0].n - 1
               and not lost_to_a_stale_refresh_token(result, u)]
    if dropped:
        return failed(f"after a transient {refused[0].status} the app sent its user to log in again "
                      f"({len(dropped)} unit(s)), although the refresh token was still good: a transient error "
                      "cost the user their session",
                      [ctx.evidence(result.name, refused[0], f"the token endpoint answered {refused[0].status}")]
                      + [ctx.evidence(result.name, login_redirect(result, u), f"{u.label}: {ctx.redact(describe_failure(u))}")
                         for u in dropped[:MAX_EVIDENCE]])
    pairs = retries(result)
    hasty = [(retry, problem) for refused_one, retry in pairs if (problem := _hasty(refused_one, retry))]
    if len(hasty) > MAX_IMMEDIATE_RETRIES:
        return failed(f"{len(hasty)} token requests retried at once after 429/503 (at most "
                      f"{MAX_IMMEDIATE_RETRIES})", [ctx.evidence(result.name, e, p) for e, p in hasty[:MAX_EVIDENCE]])
    waits = [retry.at - first.at for first, retry in pairs]
    how = f"{len(pairs)} retries, the shortest after {min(waits):.2f} s" if waits else "no retry"
    return passed(f"{len(refused)} 429/503 answers from the token endpoint met with back-off "
                  f"({how}; {len(hasty)} hasty)")
