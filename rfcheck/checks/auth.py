"""AUTH: OAuth rather than API keys, tokens for this client, one flow, RS256 ID tokens."""

from __future__ import annotations

import re

from rfcheck.checks import ALL_SCENARIOS, Context, check
from rfcheck.checks.outcome import Outcome, failed, inapplicable, not_observed, passed, skipped, unjudged
from rfcheck.checks.queries import api_calls, completed, describe_failure, id_token_accepted, names, token_requests
from rfcheck.journal import Exchange
from rfcheck.facts import CLIENT_CREDENTIALS
from rfcheck.report.model import Evidence
from rfcheck.observed import Event, ScenarioResult

_FOREIGN_TOKEN = {"unknown": "a token the provider never issued",
                  "wrong_audience": "a token for another audience than accounts",
                  "bad_signature": "a token with an invalid signature",
                  "malformed": "a malformed token"}


@check("AUTH-01", ALL_SCENARIOS)
def bearer_on_every_call(ctx: Context) -> Outcome:
    results = completed(ctx.results.values())
    calls = [(r.name, e) for r in results for e in api_calls(r)]
    if not calls:
        return skipped(f"no API call was observed (scenarios: {names(ctx.results.values())})")
    evidence = [ctx.evidence(s, e, _auth_problem(e.facts.get("auth_kind")))
                for s, e in calls if e.facts.get("auth_kind") != "bearer"]
    if evidence:
        return failed(f"{len(evidence)} of {len(calls)} API calls did not use a Bearer access token",
                      evidence)
    return passed(f"all {len(calls)} API calls carried Authorization: Bearer")


def _auth_problem(kind: object) -> str:
    if kind == "api_key":
        return "Authorization carries an API key, not Bearer <access token>"
    return "no Authorization header"


@check("AUTH-02", ALL_SCENARIOS)
def tokens_issued_to_this_client(ctx: Context) -> Outcome:
    results = completed(ctx.results.values())
    bearer = [(r.name, e) for r in results for e in api_calls(r) if e.facts.get("auth_kind") == "bearer"]
    if not bearer:
        return skipped("no API call with a Bearer token was observed")
    evidence: list[Evidence] = []
    for scenario, exchange in bearer:
        status = exchange.facts.get("token_status")
        if status in _FOREIGN_TOKEN:
            evidence.append(ctx.evidence(scenario, exchange, _FOREIGN_TOKEN[str(status)]))
        elif exchange.facts.get("token_client") not in (None, ctx.client_id):
            evidence.append(ctx.evidence(scenario, exchange, "a token issued to another client"))
    if evidence:
        return failed(f"{len(evidence)} API calls used tokens not issued to this client for accounts",
                      evidence)
    return passed(f"all {len(bearer)} bearer tokens were issued to this client for audience accounts")


@check("AUTH-03", ALL_SCENARIOS)
def one_flow_per_client(ctx: Context) -> Outcome:
    requests = [(r.name, e) for r in ctx.results.values() for e in token_requests(r)]
    if not requests:
        return skipped("no token request was observed")
    kinds = {_flow_of(e.facts.get("grant_type")) for _, e in requests} - {None}
    if len(kinds) > 1:
        minority = [(s, e) for s, e in requests if _flow_of(e.facts.get("grant_type")) != ctx.config.flow]
        evidence = [ctx.evidence(s, e, f"grant_type={e.facts.get('grant_type')} from a {ctx.config.flow} client")
                    for s, e in minority[:5]]
        return failed("the client used both the authorization code and the client credentials grants",
                      evidence)
    return passed(f"all {len(requests)} token requests belong to the {ctx.config.flow} flow")


def _flow_of(grant_type: object) -> str | None:
    if grant_type in ("authorization_code", "refresh_token"):
        return "authorization_code"
    return "client_credentials" if grant_type == "client_credentials" else None


@check("AUTH-04", ("baseline", "oidc_hs256_confusion"))
def accepts_rs256_id_tokens(ctx: Context) -> Outcome:
    """Judged at the callback: what goes wrong after it belongs to the requirement that explains it."""
    if ctx.config.flow == CLIENT_CREDENTIALS:
        return inapplicable("the client credentials flow has no ID token")
    result = ctx.results["baseline"]
    unobserved = not_observed(result)
    if unobserved:
        return unobserved
    logins = result.events_of("login")
    if not logins:
        return inapplicable("the baseline scenario has no login")
    login = logins[0]
    if login.ok:
        return passed("the baseline login with an RS256 ID token completed: the code was exchanged and "
                      "the app's answer to its callback was not an error")
    if id_token_accepted(result, login):
        refused = [e for e in result.during(login) if e.host == "api" and e.status >= 400]
        after = (f"; the callback then failed on {refused[0].request_line}, answered {refused[0].status}, which "
                 "another requirement judges") if refused else ""
        return passed(f"the app accepted the RS256 ID token: it exchanged the code and went on to call "
                      f"the API{after}")
    return _failed_login(ctx, result, login)


# What an app says when it refuses an ID token: the words of its page or its error output.
_ID_TOKEN_WORDS = re.compile(r"id[ _-]?token|\bjw[tsk]s?\b|jwks|signature|algorithm|\balg\b|\bkid\b|\bnonce\b|"
                             r"audience|\baud\b|\biss\b|verif", re.IGNORECASE)
_ERROR_WORDS = re.compile(r"error|exception|invalid|fail|reject|refus|mismatch|denied|traceback", re.IGNORECASE)


def _failed_login(ctx: Context, result: ScenarioResult, login: Event) -> Outcome:
    """A failed login fails AUTH-04 only when a valid ID token reached the target and the failure points at
    it: the app's answer or its error output speaks of the ID token (its signature, algorithm, keys), or
    it accepted an HS256 token signed with its secret where it refused the RS256 one. Anything else (a 500
    on the page after the callback, a login that never exchanged its code) is not judged: AUTH-04's
    remediation would not fix it."""
    exchanges = result.during(login)
    delivered = [e for e in exchanges if (e.facts.get("issued") or {}).get("id_token")
                 or "id_token=" in e.response_headers.get("location", "")]
    refused = [e for e in exchanges if e.facts.get("error")]
    failure = ctx.redact(describe_failure(login))
    if not delivered and refused:
        return unjudged(f"the mock refused the login before any ID token was issued "
                        f"({refused[0].facts['error']} at {refused[0].request_line}); the FLOW "
                        "requirements report why")
    if not delivered:
        return unjudged(f"the baseline login failed before any ID token reached the app ({failure}), "
                        "so whether it accepts a valid one was not observed")
    cause = _id_token_cause(result, login, ctx.results.get("oidc_hs256_confusion"))
    if not cause:
        return unjudged(f"the baseline login failed after a valid RS256 ID token reached the app "
                        f"({failure}), but nothing the app answered or wrote points at the ID token, "
                        "so the cause is not one AUTH-04 can name")
    return failed(f"the baseline login failed with a valid RS256 ID token: {failure} ({cause})",
                  [ctx.evidence("baseline", _last(delivered), ctx.redact(login.detail))])


def _id_token_cause(result: ScenarioResult, login: Event, confusion: ScenarioResult | None) -> str:
    if confusion is not None and confusion.completed:
        forged = confusion.events_of("login")
        if forged and forged[0].ok:
            return "yet it accepted an HS256 ID token signed with its client secret"
    if _ID_TOKEN_WORDS.search(login.detail):
        return "its answer speaks of the ID token"
    said = [line for line in result.output.splitlines()
            if _ID_TOKEN_WORDS.search(line) and _ERROR_WORDS.search(line)]
    return "its output speaks of the ID token: " + said[0].strip()[:200] if said else ""


def _last(exchanges: list[Exchange]) -> Exchange | None:
    return exchanges[-1] if exchanges else None
