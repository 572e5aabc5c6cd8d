"""OIDC: ID token validation, judged like the OpenID conformance suite's relying-party tests.

A fault scenario hands the integration a defective ID token at login (rfcheck/catalogue.py,
"OIDC"): "rejects" means the login does not complete and no access token issued during
that login is used on the API. The level is ``should`` for ID tokens from the token
endpoint and ``must`` (``front_channel_level``) when the target takes ID tokens from the
front channel (an ``id_token`` response type, implicit or hybrid).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rfcheck.catalogue import requirement
from rfcheck.checks import Context, check
from rfcheck.checks.outcome import Outcome, failed, inapplicable, not_observed, passed, skipped, unjudged
from rfcheck.checks.queries import (api_calls, authorize_requests, clock_stood_still, describe_failure, id_token_accepted,
                                    issued_access_jti,
                                    successful, token_requests)
from rfcheck.journal import Exchange
from rfcheck.report.model import Evidence
from rfcheck.observed import Event, ScenarioResult

BASELINE = "baseline"
_JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class _Verdict:
    """How one fault scenario went: ``accepted`` (with evidence), ``rejected`` or ``unobserved``."""

    verdict: str
    reason: str
    evidence: list[Evidence] = field(default_factory=list)


# -- what the target asks for ---------------------------------------------------------
def _authorizations(ctx: Context) -> list[Exchange]:
    return [e for r in ctx.results.values() for e in authorize_requests(r) if "error" not in e.facts]


def _front_channel(ctx: Context) -> bool:
    """OIDC Core §3.2/§3.3: an ``id_token`` response type hands the ID token over in the front channel."""
    return any("id_token" in str(e.facts.get("response_type", "")).split() for e in _authorizations(ctx))


def _level(ctx: Context, requirement_id: str) -> str | None:
    return requirement(requirement_id).front_channel_level if _front_channel(ctx) else None


def _with_level(outcome: Outcome, level: str | None) -> Outcome:
    return replace(outcome, level=level) if level and outcome.level is None else outcome


def _baseline_precondition(ctx: Context) -> Outcome | None:
    """:func:`_precondition`, and a skip when the baseline scenario did not complete: OIDC-01..08 give it the
    front channel's level, so the registry's ``needs`` (no level) cannot answer it for them."""
    return not_observed(ctx.results[BASELINE]) or _precondition(ctx)


def _precondition(ctx: Context) -> Outcome | None:
    """Once the baseline scenario completed, a skip when its login never took a valid ID token or the target
    does not ask for ``openid``."""
    baseline = ctx.results[BASELINE]
    logins = baseline.events_of("login")
    if not logins:
        return inapplicable("the baseline scenario has no login, so no ID token to judge")
    if not id_token_accepted(baseline, logins[0]):
        return unjudged(f"the target did not accept even the baseline login's valid ID token "
                        f"({ctx.redact(describe_failure(logins[0]))}); AUTH-04 reports that")
    asked = [e for e in authorize_requests(baseline) if "openid" in (e.facts.get("scope_requested") or ())]
    if not asked:
        return inapplicable("the target does not ask for the openid scope, so it receives no ID token")
    return None


# -- one fault scenario -------------------------------------------------------------
def _within(event: Event, exchange: Exchange) -> bool:
    return event.first < exchange.n <= event.last


def _front_channel_id_tokens(result: ScenarioResult, event: Event) -> list[Exchange]:
    """Authorization responses of ``event`` that carried an ID token (implicit or hybrid)."""
    return [e for e in authorize_requests(result) if _within(event, e) and "error" not in e.facts
            and 200 <= e.status < 400 and "id_token" in str(e.facts.get("response_type", "")).split()]


def _token_endpoint_id_tokens(result: ScenarioResult, event: Event) -> list[Exchange]:
    """Code exchanges of ``event`` whose response carried an ID token."""
    return [e for e in successful(token_requests(result, "authorization_code"))
            if _within(event, e) and (e.facts.get("issued") or {}).get("id_token")]


def _id_tokens_handed_over(result: ScenarioResult, event: Event) -> list[Exchange]:
    return _front_channel_id_tokens(result, event) + _token_endpoint_id_tokens(result, event)


def _carriers(result: ScenarioResult, login: Event) -> list[Exchange]:
    """The exchanges of ``login`` that handed the target the defective ID token."""
    # The fault is on for the whole scenario, so every front-channel ID token carries it; the
    # token endpoint notes it (id_token_fault) on the responses it applied to.
    return _front_channel_id_tokens(result, login) + [
        e for e in _token_endpoint_id_tokens(result, login) if e.facts.get("id_token_fault")]


def _tokens_used(result: ScenarioResult, login: Event) -> list[Exchange]:
    """API calls with an access token issued during ``login`` (front channel or code exchange)."""
    issued = {issued_access_jti(e) for e in result.during(login)} - {None}
    return [e for e in api_calls(result) if e.facts.get("token_jti") in issued]


def _judge_fault(ctx: Context, result: ScenarioResult) -> _Verdict:
    fault = result.fault_arguments.get("id_token") or "an ID token defect"
    if not result.completed:
        return _Verdict("unobserved", f"scenario {result.name} could not run: {result.reason}")
    logins = result.events_of("login")
    carriers = _carriers(result, logins[0]) if logins else []
    if not carriers:
        why = ctx.redact(logins[0].detail) if logins else "no login was attempted"
        return _Verdict("unobserved", f"{result.name}: the ID token with the defect {fault} was never "
                                      f"handed over ({why})")
    login, used = logins[0], _tokens_used(result, logins[0])
    if login.ok or used:
        what = "the login completed" if login.ok else "the login failed but its access token was used"
        evidence = [ctx.evidence(result.name, e, f"ID token with the defect {fault}: {what}") for e in carriers]
        evidence += [ctx.evidence(result.name, e, "API call with the access token from that login")
                     for e in used[:3]]
        return _Verdict("accepted", f"{result.name}: {what}", evidence)
    return _Verdict("rejected", f"{result.name}: login refused ({ctx.redact(login.detail)})")


def _judge_rejection(ctx: Context, requirement_id: str, scenarios: tuple[str, ...]) -> Outcome:
    level = _level(ctx, requirement_id)
    blocked = _baseline_precondition(ctx)
    if blocked:
        return _with_level(blocked, level)
    outcomes = [_judge_fault(ctx, ctx.results[name]) for name in scenarios]
    accepted = [o for o in outcomes if o.verdict == "accepted"]
    if accepted:
        return failed("the target accepted a defective ID token: "
                      + "; ".join(o.reason for o in accepted), [e for o in accepted for e in o.evidence], level)
    unobserved = [o for o in outcomes if o.verdict == "unobserved"]
    if unobserved:
        return _with_level(unjudged("; ".join(o.reason for o in unobserved)), level)
    return _with_level(passed("the target refused the login and used none of its tokens: "
                              + "; ".join(o.reason for o in outcomes)), level)


def _fault_scenarios(*names: str) -> tuple[str, ...]:
    return (BASELINE, *names)


# -- OIDC-01..08: one fault each (OIDC-08: two) ----------------------------------------
@check("OIDC-01", _fault_scenarios("oidc_bad_signature"))
def rejects_bad_signature(ctx: Context) -> Outcome:
    return _judge_rejection(ctx, "OIDC-01", ("oidc_bad_signature",))


@check("OIDC-02", _fault_scenarios("oidc_alg_none"))
def rejects_alg_none(ctx: Context) -> Outcome:
    return _judge_rejection(ctx, "OIDC-02", ("oidc_alg_none",))


@check("OIDC-03", _fault_scenarios("oidc_hs256_confusion"))
def rejects_hs256_confusion(ctx: Context) -> Outcome:
    return _judge_rejection(ctx, "OIDC-03", ("oidc_hs256_confusion",))


@check("OIDC-04", _fault_scenarios("oidc_wrong_iss"))
def rejects_wrong_issuer(ctx: Context) -> Outcome:
    return _judge_rejection(ctx, "OIDC-04", ("oidc_wrong_iss",))


@check("OIDC-05", _fault_scenarios("oidc_wrong_aud"))
def rejects_wrong_audience(ctx: Context) -> Outcome:
    return _judge_rejection(ctx, "OIDC-05", ("oidc_wrong_aud",))


@check("OIDC-06", _fault_scenarios("oidc_expired"))
def rejects_expired(ctx: Context) -> Outcome:
    return _judge_rejection(ctx, "OIDC-06", ("oidc_expired",))


@check("OIDC-07", _fault_scenarios("oidc_wrong_nonce"))
def rejects_wrong_nonce(ctx: Context) -> Outcome:
    level = _level(ctx, "OIDC-07")
    blocked = _baseline_precondition(ctx)
    if blocked:
        return _with_level(blocked, level)
    # OIDC Core §3.1.3.7 step 11: the nonce check applies only when the client sent one.
    requests = authorize_requests(ctx.results["oidc_wrong_nonce"]) or authorize_requests(ctx.results[BASELINE])
    if not any(e.facts.get("nonce") for e in requests):
        return _with_level(inapplicable("the target sends no nonce in its authorization requests, "
                                        "so there is no nonce to compare"), level)
    return _judge_rejection(ctx, "OIDC-07", ("oidc_wrong_nonce",))


@check("OIDC-08", _fault_scenarios("oidc_missing_sub", "oidc_missing_iat"))
def rejects_missing_claims(ctx: Context) -> Outcome:
    return _judge_rejection(ctx, "OIDC-08", ("oidc_missing_sub", "oidc_missing_iat"))


# -- OIDC-09: key rotation -------------------------------------------------------------
def _event(result: ScenarioResult, kind: str, label: str) -> Event | None:
    return next((e for e in result.events_of(kind) if e.label == label), None)


def _rotation_failure(ctx: Context, result: ScenarioResult, login: Event) -> Outcome:
    exchange = _id_tokens_handed_over(result, login)[-1]
    refetched = any(e.path.endswith(_JWKS_PATH) for e in result.during(login))
    jwks = ("the JWKS was fetched again, yet the new key was not accepted" if refetched
            else "the JWKS was not fetched again for the unknown kid")
    if not login.ok:
        return failed(f"the login after the key rotation failed ({ctx.redact(login.detail)}); {jwks}",
                      [ctx.evidence(result.name, exchange, f"ID token signed by the new key; {jwks}")])
    calls = [e for e in api_calls(result) if e.n > login.last]
    return failed("the login after the key rotation completed but no API call succeeded afterwards",
                  [ctx.evidence(result.name, e, f"answered {e.status}") for e in calls[:3]]
                  or [ctx.evidence(result.name, exchange, "no API call after the login")])


@check("OIDC-09", (BASELINE, "key_rotation"), needs=(BASELINE,))
def accepts_rotated_key(ctx: Context) -> Outcome:
    result = ctx.results["key_rotation"]
    blocked = _precondition(ctx) or not_observed(result)  # the baseline's login is judged first
    if blocked:
        return blocked
    login = _event(result, "login", "login after rotation")
    if login is None:
        first = result.events_of("login")
        why = ctx.redact(first[0].detail) if first else "no login"
        return unjudged(f"the key rotation scenario never reached the login after rotation ({why})")
    if login.ok and successful(e for e in api_calls(result) if e.n > login.last):
        return passed("after the key rotation, the login with the new kid completed and led to API use")
    if not _id_tokens_handed_over(result, login):
        return skipped(f"no ID token was handed over at the login after rotation "
                       f"({ctx.redact(login.detail) or 'none was asked for'})")
    still = clock_stood_still(result)
    if still:
        # OIDC-09: fair to clients that rate-limit JWKS fetches (openid-client: once
        # a minute); the rotation must come an hour after the client's last fetch on its own clock.
        return unjudged(f"{still}, so the key rotation could not happen an hour after its last JWKS "
                        "fetch as real rotations do (and the new ID token's iat was in its future): a "
                        "client that rate-limits JWKS fetches would be judged unfairly")
    return _rotation_failure(ctx, result, login)


# -- OIDC-10: identity change on refresh ----------------------------------------------
@check("OIDC-10", (BASELINE, "refresh_identity"), needs=(BASELINE,))
def refuses_changed_identity(ctx: Context) -> Outcome:
    result = ctx.results["refresh_identity"]
    blocked = _precondition(ctx) or not_observed(result)  # the baseline's login is judged first
    if blocked:
        return blocked
    refreshes = successful(token_requests(result, "refresh_token"))
    faulty = [e for e in refreshes if e.facts.get("id_token_fault")]
    if not faulty:
        with_id_token = [e for e in refreshes if (e.facts.get("issued") or {}).get("id_token")]
        why = (f"{len(with_id_token)} refresh response(s) carried an ID token, but none after the identity "
               "change was switched on" if with_id_token
               else "the refresh responses carried no ID token (openid was not in the refreshed scope)" if refreshes
               else "the target made no successful refresh after expiry (no refresh token, or it did not "
                    "refresh: SCOPE-01 and TOKEN-02 judge that)")
        still = clock_stood_still(result)
        return unjudged(f"{why}; {still}") if still and not refreshes else skipped(why)
    issued = {issued_access_jti(e) for e in faulty} - {None}
    used = [e for e in api_calls(result) if e.facts.get("token_jti") in issued]
    if used:
        evidence = [ctx.evidence(result.name, faulty[0], "refresh response whose ID token names another sub")]
        evidence += [ctx.evidence(result.name, e, "API call with the access token from that refresh")
                     for e in used[:3]]
        return failed(f"the target used the access token of a refresh whose ID token changed sub "
                      f"({len(used)} API calls)", evidence)
    return passed(f"the target used no access token from the {len(faulty)} refresh(es) whose ID token "
                  "named another subject")
