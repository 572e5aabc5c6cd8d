"""FLOW: the authorization request and the code exchange (authorization code flow).

The authorization requests are read as the browser carried them to ``/authorize``
(the attacker's request of the forged callback scenario is never the target's);
the code exchanges as the target sent them to the token endpoint. The mock's
refusals are evidence, and each check says which parameter was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

from rfcheck.checks import ALL_SCENARIOS, Context, check
from rfcheck.checks.outcome import Outcome, failed, inapplicable, not_observed, passed, skipped, unjudged, warned
from rfcheck.checks.queries import api_calls, authorize_requests, completed, names, sent_by_target
from rfcheck.journal import Exchange
from rfcheck.facts import AUDIENCE, KNOWN_SCOPES, RESPONSE_TYPES
from rfcheck.report.model import Evidence
from rfcheck.observed import ACCESS_TOKEN, API_KEY, CLIENT_SECRET, REFRESH_TOKEN, Event, ScenarioResult

LOGINS = ("baseline", "withheld_scope")  # a first login, and a re-authorization built after a 403
EXCHANGES = ("baseline", "expiry", "withheld_scope")
Seen = list[tuple[str, Exchange]]

_PKCE_REFUSALS = ("code_challenge",)  # judged by FLOW-07
_FRONT_CHANNEL_REFUSALS = ("Nonce required", "Tokens must not be returned in the query")  # FLOW-06


# -- what the checks read ---------------------------------------------------------
def own_authorizations(results: Iterable[ScenarioResult]) -> Seen:
    """The target's authorization requests (never the attacker's), with their scenario."""
    return [(r.name, e) for r in completed(results) for e in authorize_requests(r) if e.origin != "attacker"]


def response_type(exchange: Exchange) -> str:
    """``response_type`` in the canonical order (``code id_token token``), as the mock reads it."""
    order = ("code", "id_token", "token")
    parts = exchange.params.get("response_type", "").split()
    return " ".join(sorted(parts, key=lambda p: order.index(p) if p in order else len(order)))


def requested_scope(exchange: Exchange) -> tuple[str, ...]:
    return tuple(exchange.params.get("scope", "").split())


def refusal(exchange: Exchange) -> str | None:
    """Why the mock refused an authorization request, in its own words, or None."""
    if "error" not in exchange.facts:
        return None
    for note in exchange.notes:
        for prefix in ("authorization refused: ", "error shown to the user: "):
            if note.startswith(prefix):
                return note[len(prefix):]
    return str(exchange.facts["error"])


def _login_of(result: ScenarioResult, exchange: Exchange) -> Event | None:
    return next((ev for ev in result.events_of("login") if ev.first < exchange.n <= ev.last), None)


# -- FLOW-01 ------------------------------------------------------------------------
@check("FLOW-01", LOGINS)
def authorization_request_well_formed(ctx: Context) -> Outcome:
    requests = own_authorizations(ctx.results.values())
    evidence = [ctx.evidence(s, e, "; ".join(problems)) for s, e in requests
                if (problems := _request_problems(ctx, e))]
    evidence += _logins_elsewhere(ctx)
    if evidence:
        return failed(f"{len(evidence)} authorization request(s) were malformed", evidence)
    if not requests:
        return skipped(f"no authorization request was observed ({names(ctx.results.values())})")
    return passed(f"all {len(requests)} authorization requests carried response_type, client_id, "
                  "the registered redirect_uri, audience=accounts and openid")


def _request_problems(ctx: Context, exchange: Exchange) -> list[str]:
    """RFC 6749 §4.1.1 and Going Live: the parameters the real service insists on."""
    query = exchange.params
    problems = [p for p in (_response_type_problem(exchange), _client_problem(ctx, query.get("client_id")),
                            _redirect_problem(ctx, query.get("redirect_uri")),
                            _audience_problem(query.get("audience")), _scope_problem(exchange)) if p]
    why = refusal(exchange)
    if why and not problems and not any(marker in why for marker in _PKCE_REFUSALS + _FRONT_CHANNEL_REFUSALS):
        problems.append(f"refused by the authorization server: {why}")
    return problems


def _response_type_problem(exchange: Exchange) -> str | None:
    if response_type(exchange) in RESPONSE_TYPES:
        return None  # code, or an implicit/hybrid type that FLOW-06 judges
    return f"response_type={exchange.params.get('response_type', '(missing)')!r}: expected code"


def _client_problem(ctx: Context, client_id: str | None) -> str | None:
    if not client_id:
        return "client_id is missing"
    return None if client_id == ctx.client_id else f"client_id {client_id!r} is not this app's client ID"


def _redirect_problem(ctx: Context, redirect_uri: str | None) -> str | None:
    if not redirect_uri:
        return "redirect_uri is missing"
    registered = ctx.redirect_uris()
    if redirect_uri in registered:  # exact string match, as Auth0's Allowed Callback URLs
        return None
    return f"redirect_uri {redirect_uri!r} is not the registered {', '.join(registered)!r} (exact match)"


def _audience_problem(audience: str | None) -> str | None:
    if audience == AUDIENCE:
        return None
    return "audience is missing (expected accounts)" if not audience else f"audience={audience!r}: expected accounts"


def _scope_problem(exchange: Exchange) -> str | None:
    scope = requested_scope(exchange)
    unknown = [s for s in scope if s not in KNOWN_SCOPES]
    if unknown:
        return f"unknown scope {' '.join(unknown)!r} (known: {' '.join(KNOWN_SCOPES)})"
    return None if "openid" in scope else f"scope {' '.join(scope) or '(missing)'!r} does not contain openid"


def _logins_elsewhere(ctx: Context) -> list[Evidence]:
    """Logins whose authorization URL was not Request Finance's ``/authorize`` at all."""
    return [ctx.evidence(r.name, None, event.detail) for r in completed(ctx.results.values())
            for event in r.events_of("login")
            if not event.ok and event.detail.startswith("start_login() returned")]


# -- FLOW-02 ------------------------------------------------------------------------
FORGERIES = {"forged_callback": "a foreign state while a login was pending",
             "forged_callback_no_state": "no state, after a completed login"}


@check("FLOW-02", tuple(FORGERIES))
def refuses_forged_callback(ctx: Context) -> Outcome:
    verdicts = [_judge_forgery(ctx, ctx.results[name]) for name in FORGERIES if name in ctx.results]
    misused = [v for v in verdicts if v.kind == "fail"]
    if misused:
        return failed("; ".join(v.reason for v in misused), [e for v in misused for e in v.evidence])
    unseen = [v for v in verdicts if v.skip]
    if unseen:
        return unjudged("; ".join(v.reason for v in unseen))
    return passed("; ".join(v.reason for v in verdicts))


def _judge_forgery(ctx: Context, result: ScenarioResult) -> Outcome:
    """One forged callback scenario: ``fail`` (misuse), ``pass`` (refused) or ``skip``, with the reason."""
    what = FORGERIES[result.name]
    unobserved = not_observed(result)
    if unobserved:
        return unobserved
    forged, delivery = result.facts.get("forged_codes") or [], _delivery(result)
    if not forged or delivery is None:
        return unjudged(f"the forged callback with {what} was never delivered "
                        f"({_why_not_delivered(ctx, result)})")
    exchanges = [e for e in _code_exchanges(result) if e.form.get("code") in forged]
    misuse = _forged_code_misuse(ctx, result, exchanges)
    if misuse:
        return failed(f"with {what}, the target redeemed an authorization code from a login it never "
                      "started (login CSRF / code injection)", misuse)
    return _forged_code_refused(ctx, result, delivery, exchanges, what)


def _why_not_delivered(ctx: Context, result: ScenarioResult) -> str:
    failed_steps = [e for e in result.events if not e.ok]
    if result.crash is not None:
        return f"the target was down after {result.crash.after}"
    return ctx.redact(failed_steps[0].detail) if failed_steps else "the attacker obtained no code"


def _delivery(result: ScenarioResult) -> Event | None:
    """The step that delivered the attacker's callback (the scenario's ``deliver_callback``)."""
    return next((e for e in result.events_of("forged_callback") if e.label == "forged callback"), None)


def _forged_code_misuse(ctx: Context, result: ScenarioResult, exchanges: list[Exchange]) -> list[Evidence]:
    """RFC 9700 §4.5: a successful exchange of the injected code, or API use of what it gave."""
    redeemed = [e for e in exchanges if e.facts.get("code_status") == "redeemed"]
    evidence = [ctx.evidence(result.name, e, "the attacker's code was redeemed") for e in redeemed]
    families = {(e.facts.get("issued") or {}).get("family") for e in redeemed} - {None}
    jtis = {(e.facts.get("issued") or {}).get("access_jti") for e in redeemed}
    jtis |= {(e.facts.get("issued") or {}).get("access_jti") for e in sent_by_target(result)
             if e.facts.get("family") in families}
    evidence += [ctx.evidence(result.name, e, "API call with a token issued from the attacker's code: the "
                                              "user now works in the attacker's account")
                 for e in api_calls(result) if e.facts.get("token_jti") in jtis - {None}]
    return evidence


def _forged_code_refused(ctx: Context, result: ScenarioResult, delivery: Event, exchanges: list[Exchange],
                         what: str) -> Outcome:
    statuses = {e.facts.get("code_status") for e in exchanges}
    if statuses & {"pkce_downgrade", "pkce_failed"}:
        return passed(f"with {what}, the target exchanged the injected code but PKCE made the "
                      "exchange fail (RFC 9700 §4.8.2); no token came from it")
    if exchanges:
        return unjudged(f"with {what}, the exchange of the injected code failed for another reason "
                        f"({', '.join(sorted(str(s) for s in statuses))}), so neither a state check "
                        "nor PKCE was seen protecting the login")
    if result.crash is not None and result.crash.after == delivery.label:
        return passed(f"with {what}, the target went down instead of redeeming the code (REL-01 "
                      "judges the crash)")
    if not delivery.ok:
        return passed(f"with {what}, the target refused the forged callback before any exchange "
                      f"({ctx.redact(_refusal(delivery))})")
    later = [u for u in result.events_of("unit") if u.first >= delivery.last]
    if later:
        return passed(f"with {what}, the target ignored the forged callback: it never exchanged the "
                      "code, and its next unit of work used the user's own tokens")
    return unjudged(f"with {what}, the target accepted the forged callback without an error but did "
                    "not exchange the code during the scenario; what it does with it later was not "
                    "observed")


def _refusal(delivery: Event) -> str:
    if delivery.failure == "error_status":
        return f"it answered {delivery.status}"
    how = {"crashed": "it went down", "no_answer": "it gave no answer",
           "login_required": "it sent the user to log in"}.get(delivery.failure)
    return how or delivery.detail.strip().splitlines()[0][:160]


# -- FLOW-03 and FLOW-07: PKCE -----------------------------------------------------
def _code_flow_requests(ctx: Context) -> Seen:
    return [(s, e) for s, e in own_authorizations(ctx.results.values()) if "code" in response_type(e).split()]


@check("FLOW-03", LOGINS)
def uses_pkce(ctx: Context) -> Outcome:
    requests = _code_flow_requests(ctx)
    if not requests:
        return skipped("no authorization request for a code was observed")
    missing = [ctx.evidence(s, e, "no code_challenge in the authorization request") for s, e in requests
               if not e.params.get("code_challenge")]
    if missing:
        return failed(f"{len(missing)} of {len(requests)} authorization requests did not use PKCE",
                      missing)
    return passed(f"all {len(requests)} authorization requests carried a code_challenge")


@check("FLOW-07", LOGINS)
def pkce_method_is_s256(ctx: Context) -> Outcome:
    requests = [(s, e) for s, e in _code_flow_requests(ctx)
                if "code_challenge" in e.params or "code_challenge_method" in e.params]
    if not requests:
        return inapplicable("the target does not use PKCE (see FLOW-03)")
    evidence = [ctx.evidence(s, e, problem) for s, e in requests if (problem := _pkce_problem(e))]
    if evidence:
        return failed("PKCE was not S256 with a well-formed challenge: the real service refuses "
                      "such a login", evidence)
    return passed(f"all {len(requests)} PKCE authorization requests used S256")


def _pkce_problem(exchange: Exchange) -> str | None:
    """RFC 7636 §4.2-4.3; Auth0 supports S256 only, and a missing method means plain."""
    method, challenge = exchange.params.get("code_challenge_method"), exchange.params.get("code_challenge")
    why = refusal(exchange)
    refused = f" (refused: {why})" if why else ""
    if not challenge:
        return f"code_challenge_method={method!r} without code_challenge{refused}"
    if method != "S256":
        return f"code_challenge_method={method or '(none, meaning plain)'}: only S256 is accepted{refused}"
    if why and "code_challenge" in why:
        return f"code_challenge is not a base64url SHA-256 digest (43 characters){refused}"
    return None


# -- FLOW-04 ------------------------------------------------------------------------
def _code_exchanges(result: ScenarioResult) -> list[Exchange]:
    """Every code exchange the target sent to the auth host, wherever it sent it."""
    return [e for e in sent_by_target(result)
            if e.host == "auth" and e.form.get("grant_type") == "authorization_code"]


@check("FLOW-04", EXCHANGES)
def code_exchanged_once_authenticated(ctx: Context) -> Outcome:
    results = completed(ctx.results.values())
    seen = [(r, e) for r in results for e in _code_exchanges(r)
            if e.form.get("code") not in (r.facts.get("forged_codes") or ())]
    if not seen:
        return skipped(f"no code exchange was observed ({names(ctx.results.values())})")
    evidence = [ctx.evidence(r.name, e, problem) for r, e in seen if (problem := _exchange_problem(r, e))]
    if evidence:
        return failed(f"{len(evidence)} of {len(seen)} code exchanges broke RFC 6749 §4.1.3", evidence)
    return passed(f"all {len(seen)} codes were exchanged once at /oauth/token, authenticated, "
                  "with the authorization request's redirect_uri")


def _exchange_problem(result: ScenarioResult, exchange: Exchange) -> str | None:
    if exchange.path.rstrip("/") != "/oauth/token":
        return f"code sent to {exchange.path}, not to the token endpoint /oauth/token"
    if exchange.facts.get("error") == "invalid_client":
        if exchange.facts.get("client_auth") == "none":
            return "no client authentication (neither client_secret_post nor client_secret_basic)"
        return f"client authentication refused: {_token_error(exchange)}"
    status = exchange.facts.get("code_status")
    if status == "redirect_mismatch":
        return (f"redirect_uri {exchange.form.get('redirect_uri', '(missing)')!r} differs from the one sent "
                "to /authorize")
    if status == "reused":
        first = _redemption(result, exchange)
        # a retry after a 429/5xx never redeemed the code, so the mock never calls it reused
        return f"code already redeemed at exchange #{first.n} sent again" if first else None
    return None


def _token_error(exchange: Exchange) -> str:
    body = exchange.response_json if isinstance(exchange.response_json, dict) else {}
    return str(body.get("error_description") or exchange.facts.get("error"))


def _redemption(result: ScenarioResult, exchange: Exchange) -> Exchange | None:
    code = exchange.form.get("code")
    return next((e for e in _code_exchanges(result) if e.n < exchange.n and e.form.get("code") == code
                 and e.facts.get("code_status") == "redeemed"), None)


# -- FLOW-05 ------------------------------------------------------------------------
@check("FLOW-05", ALL_SCENARIOS)
def no_credentials_in_urls(ctx: Context) -> Outcome:
    results = completed(ctx.results.values())
    sent = [(r.name, e) for r in results for e in r.exchanges if e.origin in ("target", "browser")]
    if not sent:
        return skipped(f"no request was observed ({names(ctx.results.values())})")
    credentials = _credentials(ctx)
    evidence = [ctx.evidence(s, e, problem) for s, e in sent if (problem := _url_problem(e, credentials))]
    if evidence:
        return failed(f"{len(evidence)} request(s) carried a secret or token in the URL "
                      "(RFC 9700 §4.3.2, RFC 6750 §2.3)", evidence)
    return passed(f"none of the {len(sent)} requests sent carried the client secret, a token or an "
                  "API key in its URL")


# how FLOW-05 names what it found in a URL
_CREDENTIAL_NAMES = {CLIENT_SECRET: "the client secret", ACCESS_TOKEN: "an access token",
                     REFRESH_TOKEN: "a refresh token", API_KEY: "an API key"}


def _credentials(ctx: Context) -> dict[str, str]:
    """Every secret the journal knows, named; codes (made for the callback URL, RFC 6749 §4.1.2) and ID
    tokens (``id_token_hint`` travels in a logout URL, OIDC RP-Initiated Logout §2) are not counted."""
    named = {value: _CREDENTIAL_NAMES[kind] for value, kind in ctx.issued().items() if kind in _CREDENTIAL_NAMES}
    return {secret: named[secret] for secret in ctx.view.secrets if secret in named}


def _url_problem(exchange: Exchange, credentials: dict[str, str]) -> str | None:
    url = unquote(exchange.url)
    for secret, kind in credentials.items():
        if secret in exchange.url or secret in url:
            where = next((f"query parameter {name!r}" for name, value in exchange.query.items() if secret in value),
                         "the URL")
            return f"{kind} in {where}"
    return None


# -- FLOW-06 ------------------------------------------------------------------------
@check("FLOW-06", LOGINS)
def implicit_and_hybrid_rules(ctx: Context) -> Outcome:
    requests = own_authorizations(ctx.results.values())
    if not requests:
        return skipped(f"no authorization request was observed ({names(ctx.results.values())})")
    front = [(s, e) for s, e in requests if response_type(e) in RESPONSE_TYPES - {"code"}]
    if not front:
        return inapplicable("the target uses the authorization code flow only (response_type=code)")
    evidence = [ctx.evidence(s, e, problem) for s, e in front if (problem := _front_channel_problem(ctx, s, e))]
    if evidence:
        return failed("the implicit/hybrid login broke the OIDC rules the real service applies",
                      evidence)
    kinds = ", ".join(sorted({response_type(e) for _, e in front}))
    # RFC 9700 §2.1.2: the implicit grant should not be used; nothing must-level broke, so warn only
    return warned(f"the target uses response_type={kinds}: tokens in the front channel "
                  "(RFC 9700 §2.1.2 advises the code flow with PKCE instead)",
                  [ctx.evidence(s, e, f"response_type={response_type(e)}") for s, e in front])


def _front_channel_problem(ctx: Context, scenario: str, exchange: Exchange) -> str | None:
    """OIDC Core §3.2.2.1 and §3.3.2.11: nonce required; no refresh token from the front channel."""
    why = refusal(exchange)
    if not exchange.params.get("nonce"):
        return "no nonce: the authorization server refuses implicit and hybrid requests without one"
    if why:
        return f"refused by the authorization server: {why}"
    result = ctx.results[scenario]
    login = _login_of(result, exchange)
    if login is not None and not login.ok:
        return f"the login broke on a conformant answer (no refresh token in the front channel): {login.detail}"
    return None
