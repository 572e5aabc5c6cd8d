"""ORG: organizations (the Request Finance "Organizations" page).

The scenarios' user is invited to one organization whose invoices are not in the
personal account; the mock answers ``403`` to an ``X-Organization`` the user does
not belong to, and lists organizations only for OAuth tokens with ``user:read``.
"""

from __future__ import annotations

from rfcheck.checks import Context, check
from rfcheck.checks.outcome import Outcome, failed, inapplicable, not_observed, passed, skipped, unjudged
from rfcheck.checks.queries import api_calls, completed, names, successful
from rfcheck.checks.scope import organization_listings
from rfcheck.facts import CLIENT_CREDENTIALS
from rfcheck.observed import ScenarioResult

SCENARIOS = ("baseline", "expiry")


@check("ORG-01", SCENARIOS)
def organization_ids_are_the_users(ctx: Context) -> Outcome:
    calls = [(r.name, e) for r in completed(ctx.results.values()) for e in api_calls(r)
             if e.header("x-organization") is not None]
    if not calls:
        return skipped(f"the target never sent X-Organization ({names(ctx.results.values())})")
    denied = [ctx.evidence(s, e, f"X-Organization: {e.facts['org_denied']!r} is not an organization of the user "
                                 f"(answered {e.status})") for s, e in calls if e.facts.get("org_denied")]
    if denied:
        return failed(f"{len(denied)} of {len(calls)} calls named an organization the user does not "
                      "belong to", denied)
    return passed(f"all {len(calls)} calls with X-Organization named an organization of the user")


@check("ORG-02", ("baseline",))
def lists_and_acts_in_organizations(ctx: Context) -> Outcome:
    if ctx.config.flow == CLIENT_CREDENTIALS:
        return inapplicable("the client credentials flow acts for the app's own account, not for a user "
                            "invited to organizations")
    result = ctx.results["baseline"]
    unobserved = not_observed(result)
    if unobserved:
        return unobserved
    return _judge_organization_use(ctx, result)


def _judge_organization_use(ctx: Context, result: ScenarioResult) -> Outcome:
    """Organizations page: list the user's organizations, then read one with X-Organization."""
    calls, tried = api_calls(result), [e for _, e in organization_listings([result])]
    if not tried and not successful(calls):
        return unjudged("no API call succeeded in the baseline scenario")
    org = ctx.view.organizations[0]
    listed = [e for e in tried if 200 <= e.status < 300]
    if not listed:
        evidence = [ctx.evidence(result.name, e, f"listing failed with {e.status}") for e in tried[:2]] or [
            ctx.evidence(result.name, calls[0], f"GET /users/organizations never called; the user is in {org!r}")]
        return failed(f"the target never listed the organizations of a user invited to {org!r}", evidence)
    acted = [e for e in successful(calls) if e.facts.get("organization")]
    if not acted:
        return failed("the target listed the user's organizations but never acted in one "
                      "(no call with X-Organization)",
                      [ctx.evidence(result.name, listed[0], "organizations listed; no call with X-Organization")])
    return passed(f"the target listed the user's organizations and acted in one ({len(acted)} calls)")


@check("ORG-03", SCENARIOS)
def organizations_listed_with_oauth(ctx: Context) -> Outcome:
    listings = organization_listings(list(ctx.results.values()))
    with_key = [ctx.evidence(s, e, "GET /users/organizations with an API key instead of a Bearer token")
                for s, e in listings if e.facts.get("auth_kind") == "api_key"]
    if with_key:
        return failed("organizations were listed with an API key", with_key)
    bearer = [e for _, e in listings if e.facts.get("auth_kind") == "bearer"]
    if not bearer:
        return skipped("the target never listed organizations with any credential")
    return passed(f"{len(bearer)} organization listing(s) used an OAuth access token, none an API key")
