"""CC: the client credentials flow (RFC 6749 §4.4): well-formed token requests, renewal after expiry."""

from __future__ import annotations

from rfcheck.checks import Context, check
from rfcheck.checks.outcome import Outcome, failed, passed, skipped
from rfcheck.checks.queries import completed, names
from rfcheck.checks.token.lifetime import judge_renewal
from rfcheck.checks.token.reading import MAX_EVIDENCE, grant_of, token_calls, unavailable
from rfcheck.journal import Exchange
from rfcheck.facts import CLIENT_CREDENTIALS

SCENARIOS = ("baseline", "expiry")
OTHER_FLOW = ("authorization_code", "refresh_token")  # AUTH-03 judges a client that mixes flows


def _requests(ctx: Context) -> list[tuple[str, Exchange]]:
    """The target's token requests that were served (not 429/5xx) and are not of the other flow."""
    return [(r.name, e) for r in completed(ctx.results.values()) for e in token_calls(r)
            if not unavailable(e) and grant_of(e) not in OTHER_FLOW]


def _malformed(exchange: Exchange) -> str | None:
    """Why the provider refused a client credentials request, as the real service would (§4.4.2)."""
    grant = grant_of(exchange)
    if grant != CLIENT_CREDENTIALS:
        return f"grant_type={grant!r}, not client_credentials"
    error = exchange.facts.get("error")
    if error is None and exchange.status < 400:
        return None
    body = exchange.response_json if isinstance(exchange.response_json, dict) else {}
    description = body.get("error_description", "")
    if exchange.facts.get("client_auth") in ("none", "conflicting"):
        return f"client authentication {exchange.facts['client_auth']}: {error}"
    if not exchange.form.get("audience"):
        return f"no audience parameter: {error}: {description}"
    return f"refused with {exchange.status} {error}: {description}"


@check("CC-01", SCENARIOS)
def well_formed_token_request(ctx: Context) -> Outcome:
    requests = _requests(ctx)
    if not requests:
        return skipped("no client credentials token request was observed "
                       f"(scenarios: {names(ctx.results.values())})")
    evidence = [ctx.evidence(s, e, problem) for s, e in requests if (problem := _malformed(e))]
    if evidence:
        return failed(f"{len(evidence)} of {len(requests)} token requests were malformed",
                      evidence[:MAX_EVIDENCE])
    methods = sorted({str(e.facts.get("client_auth")) for _, e in requests})
    return passed(f"all {len(requests)} token requests were grant_type=client_credentials with "
                  f"audience=accounts, authenticated by {', '.join(methods)}")


def _asks_offline_access(exchange: Exchange) -> bool:
    return bool(exchange.facts.get("offline_access_asked")) or (
        "offline_access" in exchange.form.get("scope", "").split())


@check("CC-02", SCENARIOS)
def no_offline_access(ctx: Context) -> Outcome:
    requests = [(s, e) for s, e in _requests(ctx) if grant_of(e) == CLIENT_CREDENTIALS]
    if not requests:
        return skipped("no client credentials token request was observed "
                       f"(scenarios: {names(ctx.results.values())})")
    asking = [(s, e) for s, e in requests if _asks_offline_access(e)]
    if asking:
        return failed(f"{len(asking)} of {len(requests)} token requests asked for offline_access, "
                      "which this flow never grants", [ctx.evidence(s, e, f"scope={e.form.get('scope', '')!r}")
                                                       for s, e in asking[:MAX_EVIDENCE]])
    return passed(f"none of the {len(requests)} token requests asked for offline_access")


@check("CC-03", ("expiry",), needs=("expiry",))
def new_token_after_expiry(ctx: Context) -> Outcome:
    return judge_renewal(ctx, (CLIENT_CREDENTIALS,), "client credentials token request")
