"""SCOPE: which scopes the integration asks for, and what it does when one is missing.

What the target asked is read from its own requests: the ``scope`` of its
authorization requests (authorization code flow) or of its client credentials
token requests; what it did with them from its API calls.
"""

from __future__ import annotations

from rfcheck.checks import Context, check
from rfcheck.checks.outcome import Outcome, failed, inapplicable, passed, skipped, unjudged
from rfcheck.checks.flow import own_authorizations, requested_scope
from rfcheck.checks.queries import (api_calls, clock_stood_still, completed, expiry_travel, names, successful,
                                   token_requests, with_token_status)
from rfcheck.journal import Exchange
from rfcheck.facts import CLIENT_CREDENTIALS
from rfcheck.observed import ScenarioResult

DOCUMENTED = ("openid", "profile", "email")  # Going Live
ORGANIZATIONS = "/users/organizations"
Seen = list[tuple[str, Exchange]]


def lists_organizations(exchange: Exchange) -> bool:
    """A ``GET /users/organizations`` call (needs ``user:read``, OAuth only)."""
    return exchange.method == "GET" and exchange.path.rstrip("/") == ORGANIZATIONS


def organization_listings(results: list[ScenarioResult]) -> Seen:
    return [(r.name, e) for r in completed(results) for e in api_calls(r) if lists_organizations(e)]


def _scope_requests(ctx: Context) -> Seen:
    """The requests in which the target asked for its scopes, for its flow."""
    if ctx.config.flow == CLIENT_CREDENTIALS:
        return [(r.name, e) for r in completed(ctx.results.values()) for e in token_requests(r, CLIENT_CREDENTIALS)]
    return own_authorizations(ctx.results.values())


def _asked(exchange: Exchange) -> tuple[str, ...]:
    if exchange.path.rstrip("/") == "/authorize":
        return requested_scope(exchange)
    return tuple(exchange.form.get("scope", "").split())


# -- SCOPE-01 -----------------------------------------------------------------------
@check("SCOPE-01", ("expiry",), needs=("expiry",))
def asks_offline_access(ctx: Context) -> Outcome:
    result = ctx.results["expiry"]
    requests = own_authorizations([result])
    logins = result.events_of("login")
    if not requests or not logins or not logins[0].ok:
        return unjudged("the login of the expiry scenario did not complete")
    without = [e for _, e in requests if "offline_access" not in requested_scope(e)]
    if not without:
        return passed("the authorization request asks for offline_access, so a refresh token is issued")
    return _judged_by_expiry(ctx, result, without)


def _judged_by_expiry(ctx: Context, result: ScenarioResult, without: list[Exchange]) -> Outcome:
    """No offline_access: acceptable only if the work after the 24 h expiry still went on."""
    travel = expiry_travel(result)
    if travel is None:
        return unjudged("the expiry scenario never moved past the token lifetime")
    after = [ev for ev in result.events_of("unit") if ev.first >= travel.last]
    later_calls = [e for e in api_calls(result) if e.n > travel.last]
    working = successful(with_token_status(later_calls, "valid"))
    if after and all(ev.ok for ev in after) and working:
        return passed("no offline_access, but the work after the 24 h expiry went on with a new token")
    still = clock_stood_still(result)
    if still:
        return unjudged(f"no offline_access, and the work after the 24 h expiry did not go on, but {still}")
    evidence = [ctx.evidence(result.name, without[0], f"scope={' '.join(requested_scope(without[0]))}: "
                                                      "no offline_access, so no refresh token")]
    evidence += [ctx.evidence(result.name, _last(result.during(ev)), ev.detail) for ev in after if not ev.ok][:3]
    return failed("without offline_access the session died at the 24 h expiry and the app did not "
                  "carry on", evidence)


def _last(exchanges: list[Exchange]) -> Exchange | None:
    return exchanges[-1] if exchanges else None


# -- SCOPE-02 -----------------------------------------------------------------------
@check("SCOPE-02", ("baseline",))
def asks_documented_scopes(ctx: Context) -> Outcome:
    if ctx.config.flow == CLIENT_CREDENTIALS:
        return inapplicable("the client credentials flow has no user: openid profile email do not apply")
    requests = own_authorizations(ctx.results.values())
    if not requests:
        return skipped(f"no authorization request was observed ({names(ctx.results.values())})")
    evidence = []
    for scenario, exchange in requests:
        missing = [s for s in DOCUMENTED if s not in requested_scope(exchange)]
        if missing:
            evidence.append(ctx.evidence(scenario, exchange, f"scope lacks {' '.join(missing)}"))
    if evidence:
        return failed("the authorization request does not ask for all of openid profile email",
                      evidence)
    return passed("every authorization request asks for openid profile email")


# -- SCOPE-03 -----------------------------------------------------------------------
@check("SCOPE-03", ("baseline", "expiry"))  # the user grants everything asked here (not withheld_scope)
def user_read_before_listing(ctx: Context) -> Outcome:
    listings = organization_listings(list(ctx.results.values()))
    if not listings:
        return skipped("the target never called GET /users/organizations")
    refused = [ctx.evidence(s, e, f"403 insufficient_scope: {e.facts['insufficient_scope']} not in the token")
               for s, e in listings if e.facts.get("insufficient_scope")]
    if refused:
        return failed("GET /users/organizations was called without user:read", refused)
    return passed(f"all {len(listings)} GET /users/organizations calls had user:read")


# -- SCOPE-04 -----------------------------------------------------------------------
@check("SCOPE-04", ("baseline", "expiry"))
def no_unused_user_read(ctx: Context) -> Outcome:
    requests = _scope_requests(ctx)
    if not requests:
        return skipped(f"no request asking for scopes was observed ({names(ctx.results.values())})")
    askers = [(s, e) for s, e in requests if "user:read" in _asked(e)]
    if not askers:
        return passed("the target does not ask for user:read")
    if organization_listings(list(ctx.results.values())):
        return passed("the target asks for user:read and lists organizations with it")
    if not any(successful(api_calls(r)) for r in completed(ctx.results.values())):
        return unjudged("no API call succeeded, so whether user:read is used could not be observed")
    return failed("the target asks for user:read but never lists organizations (RFC 9700 §2.3)",
                  [ctx.evidence(s, e, "scope asks user:read; GET /users/organizations was never called")
                   for s, e in askers[:3]])


# -- SCOPE-05 -----------------------------------------------------------------------
RETRIES_TOLERATED = 1  # like TOKEN-05: one more identical call is not yet a loop


@check("SCOPE-05", ("withheld_scope",), needs=("withheld_scope",))
def reauthorizes_with_consent(ctx: Context) -> Outcome:
    result = ctx.results["withheld_scope"]
    requests = [e for _, e in own_authorizations([result])]
    if not requests or "user:read" not in requested_scope(requests[0]):
        return inapplicable("the target never asked for user:read, so no scope was withheld")
    refusals = [e for e in api_calls(result) if e.facts.get("insufficient_scope")]
    if not refusals:
        return skipped("the target never met 403 insufficient_scope (it did not call an endpoint "
                       "needing the withheld user:read, or asked prompt=consent from the start)")
    return _after_refusal(ctx, result, refusals[0], [e for e in requests if e.n > refusals[0].n])


def _after_refusal(ctx: Context, result: ScenarioResult, first: Exchange, later: list[Exchange]) -> Outcome:
    """RFC 6750 §3.1: retrying cannot help; the user must be asked again (OIDC Core §3.1.2.1)."""
    # a retry: the same method and path refused again before the next authorization request, whatever
    # the token (a refreshed token keeps the scope, so refresh-and-retry loops count too)
    until = later[0].n if later else result.exchanges[-1].n + 1
    retries = [e for e in api_calls(result) if first.n < e.n < until
               and (e.method, e.path) == (first.method, first.path) and e.facts.get("insufficient_scope")]
    if len(retries) > RETRIES_TOLERATED:
        return failed(f"after 403 insufficient_scope the target sent the same call {len(retries)} "
                      "more times instead of re-authorizing",
                      [ctx.evidence(result.name, first, "403 insufficient_scope"),
                       *(ctx.evidence(result.name, e, "the same call, refused again") for e in retries[:3])])
    consent = [e for e in later if "consent" in e.params.get("prompt", "").split()]
    if consent:
        return passed("after 403 insufficient_scope the target re-authorized with prompt=consent")
    if later:
        return failed("the re-authorization after 403 insufficient_scope did not send prompt=consent, "
                      "so the user was not asked again for the withheld scope",
                      [ctx.evidence(result.name, first, "403 insufficient_scope"),
                       *(ctx.evidence(result.name, e, f"prompt={e.params.get('prompt')!r}") for e in later[:2])])
    login = next((ev for ev in result.events_of("login") if ev.first >= first.n), None)
    detail = f": {ctx.redact(login.detail)}" if login and login.detail else ""
    return skipped(f"no authorization request after the 403 was observed{detail}")
