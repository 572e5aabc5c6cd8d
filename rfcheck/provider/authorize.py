"""``/authorize``: the front channel, with the simulated user's login and consent.

Errors about the client or its redirect URI are shown to the user (RFC 6749
§4.1.2.1: never redirect to an unverified URI); every other error is sent back
to the redirect URI. The user consents at once, granting what the scenario says.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import httpx

from rfcheck.facts import RESPONSE_TYPES
from rfcheck.journal import kept
from rfcheck.facts import AUTHORIZATION_CODE, KNOWN_SCOPES
from rfcheck.provider.faults import make_id_token
from rfcheck.provider.http import Call, ProviderError, parse_pairs
from rfcheck.provider.state import AuthCode
from rfcheck.provider.tokens import AUDIENCE, opaque
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest, no padding


class _Redirected(Exception):
    """An error that goes back to the client through its redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def authorize(call: Call) -> httpx.Response:
    """The authorization endpoint; OIDC Core §3.1.2.1: GET with a query, or POST with a form."""
    pairs = list(call.request.url.params.multi_items()) if call.request.method == "GET" else _form(call)
    params = dict(pairs)
    repeated = sorted(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
    if {"client_id", "redirect_uri"} & set(repeated):
        raise _shown(call, "invalid_request", "Parameter client_id or redirect_uri is repeated in the query")
    redirect_uri = _checked_redirect_uri(call, params)
    response_type = " ".join(sorted(params.get("response_type", "").split(), key=_order))
    mode = params.get("response_mode") or ("query" if response_type in ("code", "") else "fragment")
    state = params.get("state")
    _record(call, params, response_type)
    try:
        if repeated:  # RFC 6749 §4.1.2.1: invalid_request, sent back once the redirect URI is trusted
            raise _Redirected("invalid_request", f"Parameter {repeated[0]} is repeated in the query")
        answer = _grant(call, params, response_type, mode)
    except _Redirected as err:
        call.note(f"authorization refused: {err.error}: {err.description}", error=err.error)
        answer = {"error": err.error, "error_description": err.description}
    if state is not None:
        answer["state"] = state
    return _deliver(redirect_uri, answer, mode if mode in ("query", "fragment", "form_post") else "query")


def _form(call: Call) -> list[tuple[str, str]]:
    content_type = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _shown(call, "invalid_request", "A POST to /authorize must be form-encoded "
                                              "(application/x-www-form-urlencoded)")
    pairs = parse_pairs(call.request)
    call.exchange.form.update(kept(pairs))
    return pairs


def _order(part: str) -> int:
    return ("code", "id_token", "token").index(part) if part in ("code", "id_token", "token") else 9


def _checked_redirect_uri(call: Call, params: dict[str, str]) -> str:
    client = call.provider.clients.get(params.get("client_id", ""))
    if client is None:
        raise _shown(call, "invalid_request", f"Unknown client: {params.get('client_id', '(none)')}")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise _shown(call, "invalid_request", "Missing required parameter: redirect_uri")
    if redirect_uri not in client.redirect_uris:  # exact string match, no normalization
        raise _shown(call, "invalid_request",
                     f"The redirect_uri {redirect_uri} is not in the application's Allowed Callback URLs")
    return redirect_uri


def _shown(call: Call, error: str, description: str) -> ProviderError:
    call.note(f"error shown to the user: {description}", error=error, shown_to_user=True)
    page = (f"<!doctype html><title>Request Finance: error</title><h1>{html.escape(error)}</h1>"
            f"<p>{html.escape(description)}</p>")
    return ProviderError(400, page, {"Content-Type": "text/html; charset=utf-8"}, note=description)


def _record(call: Call, params: dict[str, str], response_type: str) -> None:
    call.note(f"response_type={response_type or '(none)'} scope={params.get('scope', '')}",
              response_type=response_type, scope_requested=tuple(params.get("scope", "").split()),
              state=params.get("state"), nonce=params.get("nonce"), prompt=params.get("prompt"),
              pkce_method=(params.get("code_challenge_method") or "plain") if params.get("code_challenge") else None,
              client_id=params.get("client_id"), redirect_uri=params.get("redirect_uri"),
              audience=params.get("audience"))


def _grant(call: Call, params: dict[str, str], response_type: str, mode: str) -> dict[str, str]:
    scope = _validated(call, params, response_type, mode)
    granted = _consent(call, scope, params.get("prompt"))
    return _issue(call, params, response_type, granted)


def _validated(call: Call, params: dict[str, str], response_type: str, mode: str) -> tuple[str, ...]:
    client = call.provider.clients[params["client_id"]]
    if client.flow != AUTHORIZATION_CODE:
        raise _Redirected("unauthorized_client", "The client is not allowed the authorization code flow")
    if response_type not in RESPONSE_TYPES:
        raise _Redirected("unsupported_response_type", f"Unsupported response type: {response_type or '(none)'}")
    if mode not in ("query", "fragment", "form_post"):
        raise _Redirected("invalid_request", f"Unsupported response_mode: {mode}")
    front_channel_tokens = response_type != "code"
    if front_channel_tokens and mode == "query":
        raise _Redirected("invalid_request", "Tokens must not be returned in the query (use fragment or form_post)")
    if front_channel_tokens and not params.get("nonce"):
        raise _Redirected("invalid_request", "Nonce required for implicit and hybrid flows")
    _check_audience(params.get("audience"))
    scope = _check_scope(params.get("scope", ""), response_type)
    if "code" in response_type.split():
        _check_challenge(params)
    return scope


def _check_audience(audience: str | None) -> None:
    if not audience:
        raise _Redirected("invalid_request", "Missing required parameter: audience (Request Finance expects accounts)")
    if audience != AUDIENCE:
        raise _Redirected("access_denied", f"Service not found: {audience}")


def _check_scope(raw: str, response_type: str) -> tuple[str, ...]:
    scope = tuple(dict.fromkeys(raw.split()))
    unknown = [s for s in scope if s not in KNOWN_SCOPES]
    if unknown:
        raise _Redirected("invalid_scope", f"Unknown scope: {' '.join(unknown)}")
    if "id_token" in response_type.split() and "openid" not in scope:
        raise _Redirected("invalid_request", "response_type id_token requires the openid scope")
    return scope


def _check_challenge(params: dict[str, str]) -> None:
    """RFC 7636 §4.3; Auth0 supports S256 only, and a missing method means plain."""
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise _Redirected("invalid_request", "code_challenge_method without code_challenge")
        return
    if (method or "plain") != "S256":
        raise _Redirected("invalid_request", f"Unsupported code_challenge_method: {method or 'plain'} (only S256)")
    if not _CHALLENGE.fullmatch(challenge):
        raise _Redirected("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier")


def _consent(call: Call, scope: tuple[str, ...], prompt: str | None) -> tuple[str, ...]:
    """The simulated user consents; withheld scopes are granted only when asked again."""
    withheld = call.provider.faults.withheld_scopes
    if prompt and "consent" in prompt.split():
        withheld = frozenset()
    granted = tuple(s for s in scope if s not in withheld)
    call.note(f"user {call.provider.user.sub} consented to {' '.join(granted)}", scope_granted=granted,
              user=call.provider.user.sub)
    return granted


def _issue(call: Call, params: dict[str, str], response_type: str, scope: tuple[str, ...]) -> dict[str, str]:
    provider = call.provider
    parts = response_type.split()
    answer: dict[str, str] = {}
    client_id = params["client_id"]
    if "code" in parts:
        answer["code"] = _new_code(call, params, scope).code
    if "token" in parts:  # never a refresh token outside the code flow
        access = provider.tokens.mint_access(issuer=call.site.issuer, client_id=client_id,
                                             sub=provider.user.sub, scope=scope, grant="implicit")
        provider.journal.add_secret(access.token)
        answer.update(access_token=access.token, token_type="Bearer", expires_in="86400")
        call.note("access token issued in the front channel", issued={"access_jti": access.jti})
    if "id_token" in parts:
        answer["id_token"] = _front_id_token(call, params, scope, answer)
    return answer


def _new_code(call: Call, params: dict[str, str], scope: tuple[str, ...]) -> AuthCode:
    provider = call.provider
    code = AuthCode(code=opaque(24), client_id=params["client_id"], redirect_uri=params["redirect_uri"],
                    scope=scope, user=provider.user, nonce=params.get("nonce"),
                    code_challenge=params.get("code_challenge"), issued_at=provider.clock.now(),
                    exchange=call.exchange.n)
    provider.codes[code.code] = code
    provider.journal.add_secret(code.code)
    call.note("authorization code issued", code=code.code)
    return code


def _front_id_token(call: Call, params: dict[str, str], scope: tuple[str, ...], answer: dict[str, str]) -> str:
    provider = call.provider
    claims = provider.tokens.id_claims(issuer=call.site.issuer, client_id=params["client_id"],
                                       user=provider.user.claims(), scope=scope, nonce=params.get("nonce"),
                                       access_token=answer.get("access_token"), code=answer.get("code"))
    token = make_id_token(claims, provider.keys, provider.tokens.sign, provider.faults.id_token)
    provider.journal.add_secret(token)
    return token


def _deliver(redirect_uri: str, answer: dict[str, Any], mode: str) -> httpx.Response:
    """Send the answer back in the response mode asked for (OAuth 2.0 Multiple Response Types)."""
    if mode == "form_post":
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(str(v))}">'
                         for k, v in answer.items())
        page = (f'<!doctype html><body onload="document.forms[0].submit()"><form method="post" '
                f'action="{html.escape(redirect_uri)}">{fields}</form></body>')
        return httpx.Response(200, text=page, headers={"Content-Type": "text/html; charset=utf-8",
                                                       "Cache-Control": "no-store"})
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return httpx.Response(302, headers={"Location": redirect_uri + separator + urlencode(answer),
                                        "Cache-Control": "no-store"})
