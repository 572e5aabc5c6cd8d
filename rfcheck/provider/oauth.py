"""The authorization server: discovery, JWKS, /authorize, /oauth/token, /userinfo, /oauth/revoke.

Strict where Auth0 is strict (exact redirect URIs, S256-only PKCE, nonce for the
front channel, single-use codes, refresh token rotation with reuse detection),
tolerant of everything that real client libraries send (the README's "What the mock's servers refuse" and the examples' clients).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any

import httpx

from rfcheck.journal import kept
from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, KNOWN_SCOPES
from rfcheck.provider.accounts import Client
from rfcheck.provider.authorize import authorize
from rfcheck.provider.faults import change_identity, make_id_token
from rfcheck.provider.http import (NO_STORE, Call, ProviderError, basic_credentials, bearer_challenge,
                                   json_response, oauth_error, parse_pairs, single_valued)
from rfcheck.provider.tokens import ACCESS_TOKEN_LIFETIME, AUDIENCE, RefreshFamily

__all__ = ["authorize", "discovery", "jwks", "revoke", "token", "userinfo"]

CODE_LIFETIME = 600
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="auth.request.finance"'}
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def discovery(call: Call) -> httpx.Response:
    """OpenID Provider metadata (OIDC Discovery §3); the issuer keeps Auth0's trailing slash."""
    issuer = call.site.issuer
    return json_response(200, {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}authorize",
        "token_endpoint": f"{issuer}oauth/token",
        "userinfo_endpoint": f"{issuer}userinfo",
        "jwks_uri": f"{issuer}.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}oauth/revoke",
        "scopes_supported": list(KNOWN_SCOPES),
        "response_types_supported": ["code", "token", "id_token", "id_token token", "code id_token",
                                     "code token", "code id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": [AUTHORIZATION_CODE, "refresh_token", CLIENT_CREDENTIALS],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": ["aud", "auth_time", "email", "email_verified", "exp", "iat", "iss",
                             "name", "nickname", "nonce", "sub", "updated_at"],
        "request_uri_parameter_supported": False,
    })


def jwks(call: Call) -> httpx.Response:
    return json_response(200, call.provider.keys.jwks(), {"Cache-Control": "public, max-age=15"})


# -- the token endpoint -----------------------------------------------------
def token(call: Call) -> httpx.Response:
    """RFC 6749 §3.2: one small handler per grant type, after client authentication."""
    provider = call.provider
    params = single_valued(parse_pairs(call.request), "request body")
    call.exchange.form.update(kept(params))
    grant_type = params.get("grant_type")
    call.note(f"grant_type={grant_type}", grant_type=grant_type)
    _apply_endpoint_faults(call)
    client, method = authenticate_client(call, params)
    call.note(f"client authenticated by {method}", client_id=client.client_id, client_auth=method)
    handler = _GRANTS.get(grant_type or "")
    if handler is None:
        if not grant_type:
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
        raise oauth_error(403, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    body = handler(call, client, params)
    provider.journal.add_secret(body["access_token"])
    for name in ("refresh_token", "id_token"):
        if name in body:
            provider.journal.add_secret(body[name])
    return json_response(200, body, NO_STORE)


def _apply_endpoint_faults(call: Call) -> None:
    faults = call.provider.faults
    if faults.token_delay:
        time.sleep(faults.token_delay)  # real seconds: a slow endpoint is a wall-clock matter
    failure = faults.next_token_failure()
    if failure is None:
        return
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    if failure.status == 429:
        raise oauth_error(429, "too_many_requests", "Global limit has been reached", headers=headers,
                          fault="429")
    raise oauth_error(failure.status, "temporarily_unavailable", "The service is temporarily unavailable",
                      headers=headers, fault=str(failure.status))


def authenticate_client(call: Call, params: dict[str, str]) -> tuple[Client, str]:
    """``client_secret_basic`` or ``client_secret_post``; both at once are fine when they agree."""
    basic = basic_credentials(call.request.headers.get("authorization", ""))
    body_id, body_secret = params.get("client_id"), params.get("client_secret")
    if basic and body_id and body_id != basic[0]:
        raise oauth_error(401, "invalid_client", "client_id in the body differs from the Basic credentials",
                          headers=_BASIC_CHALLENGE, client_auth="conflicting")
    if basic and body_secret and body_secret != basic[1]:
        raise oauth_error(401, "invalid_client", "client_secret in the body differs from the Basic credentials",
                          headers=_BASIC_CHALLENGE, client_auth="conflicting")
    client_id, secret, method = (basic[0], basic[1], "client_secret_basic") if basic else (
        body_id, body_secret, "client_secret_post")
    client = call.provider.clients.get(client_id or "")
    if client is None:
        raise oauth_error(401, "invalid_client", f"Unknown client: {client_id}" if client_id else
                          "Client authentication is required", headers=_BASIC_CHALLENGE if basic else None,
                          client_auth="none" if not client_id else method, client_id=client_id)
    if not secret or not hmac.compare_digest(_utf8(secret), _utf8(client.client_secret)):
        raise oauth_error(401, "invalid_client", "Unauthorized: wrong or missing client secret",
                          headers=_BASIC_CHALLENGE if basic else None,
                          client_auth="none" if not secret else method, client_id=client.client_id)
    return client, method


def _utf8(value: str) -> bytes:
    # compare_digest refuses non-ASCII str; a JSON body may even carry lone surrogates
    return value.encode("utf-8", "surrogatepass")


def _require(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise oauth_error(400, "invalid_request", f"Missing required parameter: {name}")
    return value


def _require_flow(client: Client, flow: str, grant_type: str) -> None:
    if client.flow != flow:
        raise oauth_error(403, "unauthorized_client",
                          f"Grant type '{grant_type}' not allowed for the client.")


def _grant_authorization_code(call: Call, client: Client, params: dict[str, str]) -> dict[str, Any]:
    _require_flow(client, AUTHORIZATION_CODE, AUTHORIZATION_CODE)
    provider = call.provider
    code = provider.codes.get(_require(params, "code"))
    if code is None or code.client_id != client.client_id:
        raise oauth_error(403, "invalid_grant", "Invalid authorization code", code_status="unknown")
    call.note("code issued at exchange " + str(code.exchange), code=code.code, code_exchange=code.exchange)
    if code.redeemed_at is not None:
        provider.revoke_code_grant(code)  # RFC 6749 §4.1.2: revoke what the code produced
        raise oauth_error(403, "invalid_grant", "Invalid authorization code",
                          note="authorization code reused: tokens issued from it revoked",
                          code_status="reused")
    if code.burned:
        raise oauth_error(403, "invalid_grant", "Invalid authorization code",
                          note="authorization code already refused once", code_status="burned")
    _check_code(call, code, params)
    return _issue_for_code(call, client, code)


def _check_code(call: Call, code: Any, params: dict[str, str]) -> None:
    if call.provider.clock.now() > code.issued_at + CODE_LIFETIME:
        code.burned = True
        raise oauth_error(403, "invalid_grant", "Invalid authorization code", note="code expired",
                          code_status="expired")
    if params.get("redirect_uri") != code.redirect_uri:
        code.burned = True
        raise oauth_error(403, "invalid_grant", "Redirect URI mismatch.",
                          note=f"redirect_uri {params.get('redirect_uri')!r} differs from the authorization request",
                          code_status="redirect_mismatch")
    _check_pkce(code, params.get("code_verifier"))


def _check_pkce(code: Any, verifier: str | None) -> None:
    """RFC 7636 §4.6, and RFC 9700 §4.8.2: a verifier for a code issued without a challenge is refused."""
    if code.code_challenge is None:
        if verifier is not None:
            code.burned = True
            raise oauth_error(403, "invalid_grant", "Failed to verify code verifier",
                              note="code_verifier sent for a code issued without a challenge (PKCE downgrade)",
                              code_status="pkce_downgrade")
        return
    digest = hashlib.sha256((verifier or "").encode("ascii", "replace")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if not verifier or not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(expected, code.code_challenge):
        code.burned = True
        raise oauth_error(403, "invalid_grant", "Failed to verify code verifier",
                          note="PKCE verification failed" if verifier else "code_verifier missing",
                          code_status="pkce_failed")


def _issue_for_code(call: Call, client: Client, code: Any) -> dict[str, Any]:
    provider = call.provider
    code.redeemed_at = provider.clock.now()
    family = None
    if "offline_access" in code.scope:
        family = provider.tokens.new_family(client.client_id, code.user.sub, code.scope)
        code.families.append(family)
    access = provider.tokens.mint_access(issuer=call.site.issuer, client_id=client.client_id,
                                         sub=code.user.sub, scope=code.scope, grant=AUTHORIZATION_CODE,
                                         family=family.id if family else None)
    code.access_jtis.append(access.jti)
    body = _token_body(access.token, code.scope)
    if family:
        body["refresh_token"] = family.current
    if "openid" in code.scope:
        claims = provider.tokens.id_claims(issuer=call.site.issuer, client_id=client.client_id,
                                           user=code.user.claims(), scope=code.scope, nonce=code.nonce,
                                           access_token=access.token)
        body["id_token"] = make_id_token(claims, provider.keys, provider.tokens.sign, provider.faults.id_token)
        if provider.faults.id_token:
            call.note(f"ID token fault applied: {provider.faults.id_token}", id_token_fault=provider.faults.id_token)
    call.note("code redeemed", code_status="redeemed", issued=_issued(access.jti, family, body))
    return body


def _issued(jti: str, family: RefreshFamily | None, body: dict[str, Any]) -> dict[str, Any]:
    return {"access_jti": jti, "family": family.id if family else None,
            "refresh_token": body.get("refresh_token"), "id_token": "id_token" in body}


def _token_body(access_token: str, scope: tuple[str, ...]) -> dict[str, Any]:
    # expires_in only: Python clients prefer expires_at when present (Authlib, requests-oauthlib)
    return {"access_token": access_token, "scope": " ".join(scope),
            "expires_in": ACCESS_TOKEN_LIFETIME, "token_type": "Bearer"}


_DEAD_REFRESH = ("Unknown or invalid refresh token.",)


def _grant_refresh_token(call: Call, client: Client, params: dict[str, str]) -> dict[str, Any]:
    _require_flow(client, AUTHORIZATION_CODE, "refresh_token")
    provider = call.provider
    presented = _require(params, "refresh_token")
    family = provider.tokens.find_refresh(presented)
    if family is None or family.client_id != client.client_id:
        raise _dead_refresh("unknown refresh token", "unknown")
    call.note("refresh family " + family.id, family=family.id)
    if family.revoked:
        raise _dead_refresh(f"refresh token of a revoked family ({family.revoked_because})", "revoked")
    if presented != family.current:
        provider.tokens.revoke_family(family, "rotated refresh token reused")
        raise _dead_refresh("rotated refresh token reused: family revoked", "rotated_reused")
    scope = _refresh_scope(params.get("scope"), family.scope)
    return _issue_for_refresh(call, client, family, scope)


def _dead_refresh(note: str, status: str) -> ProviderError:
    # Auth0's exact answer for every dead refresh token
    return oauth_error(403, "invalid_grant", _DEAD_REFRESH[0], note=note, refresh_status=status)


def _refresh_scope(requested: str | None, granted: tuple[str, ...]) -> tuple[str, ...]:
    """RFC 6749 §6: a refresh may narrow the scope, never widen it."""
    if not requested:
        return granted
    asked = tuple(dict.fromkeys(requested.split()))
    extra = [s for s in asked if s not in granted]
    if extra:
        raise oauth_error(403, "invalid_scope", f"Scope not granted originally: {' '.join(extra)}")
    return asked


def _issue_for_refresh(call: Call, client: Client, family: RefreshFamily,
                       scope: tuple[str, ...]) -> dict[str, Any]:
    provider = call.provider
    new_refresh = provider.tokens.rotate(family)  # Auth0 rotation: RFC 6749 §6 allows a new one
    access = provider.tokens.mint_access(issuer=call.site.issuer, client_id=client.client_id,
                                         sub=family.sub, scope=scope, grant="refresh_token",
                                         family=family.id)
    body = _token_body(access.token, scope)
    body["refresh_token"] = new_refresh
    if "openid" in scope:
        body["id_token"] = _refresh_id_token(call, client, family, scope, access.token)
    call.note("refresh token rotated", refresh_status="current", issued=_issued(access.jti, family, body))
    return body


def _refresh_id_token(call: Call, client: Client, family: RefreshFamily, scope: tuple[str, ...],
                      access_token: str) -> str:
    provider = call.provider
    user = provider.user_by_sub(family.sub).claims()
    claims = provider.tokens.id_claims(issuer=call.site.issuer, client_id=client.client_id, user=user,
                                       scope=scope, nonce=None, access_token=access_token)
    fault = provider.faults.refresh_id_token
    if fault:
        call.note(f"refresh ID token fault applied: {fault}", id_token_fault=fault)
        claims = change_identity(claims, fault)
    return provider.tokens.sign(claims)


def _grant_client_credentials(call: Call, client: Client, params: dict[str, str]) -> dict[str, Any]:
    _require_flow(client, CLIENT_CREDENTIALS, CLIENT_CREDENTIALS)
    audience = params.get("audience")
    call.note(f"audience={audience}", audience=audience)
    if not audience:
        raise oauth_error(403, "access_denied", "No audience parameter was provided, and no default "
                          "audience has been configured")
    if audience != AUDIENCE:
        raise oauth_error(403, "access_denied", f"Service not found: {audience}")
    asked = tuple((params.get("scope") or "").split())
    unknown = [s for s in asked if s not in KNOWN_SCOPES]
    if unknown:
        raise oauth_error(403, "invalid_scope", f"Unknown scope: {' '.join(unknown)}")
    if "offline_access" in asked:
        call.note("offline_access asked in the client credentials flow (no refresh token is ever issued)",
                  offline_access_asked=True)
    scope = tuple(s for s in asked if s == "user:read")
    access = call.provider.tokens.mint_access(issuer=call.site.issuer, client_id=client.client_id,
                                              sub=client.subject, scope=scope, grant=CLIENT_CREDENTIALS)
    body = _token_body(access.token, scope)
    call.note("client credentials token issued", issued=_issued(access.jti, None, body))
    return body


_GRANTS = {
    AUTHORIZATION_CODE: _grant_authorization_code,
    "refresh_token": _grant_refresh_token,
    CLIENT_CREDENTIALS: _grant_client_credentials,
}


# -- userinfo and revocation -------------------------------------------------
def userinfo(call: Call) -> httpx.Response:
    """OIDC Core §5.3: the claims the access token's scopes allow."""
    from rfcheck.provider.api import authenticate_bearer

    try:
        record = authenticate_bearer(call)
    except ProviderError as err:
        raise _userinfo_refusal(err)
    if "openid" not in record.scope:
        raise oauth_error(403, "insufficient_scope", "The access token was not granted the openid scope",
                          note="userinfo without openid scope",
                          headers={"WWW-Authenticate": bearer_challenge("insufficient_scope", scope="openid")})
    claims = call.provider.user_by_sub(record.sub).claims()
    allowed = {"sub"} | ({"name", "nickname", "updated_at"} if "profile" in record.scope else set()) | (
        {"email"} if "email" in record.scope else set())
    return json_response(200, {k: v for k, v in claims.items() if k in allowed})


def _userinfo_refusal(err: ProviderError) -> ProviderError:
    """The API's refusal in OAuth shape (RFC 6750 §3): the auth host answers ``{error, ...}`` bodies."""
    description = str(err.body.get("message", "")) if isinstance(err.body, dict) else str(err.body)
    challenge = err.headers.get("WWW-Authenticate") or bearer_challenge("invalid_token", description)
    error = "invalid_token" if 'error="invalid_token"' in challenge else "invalid_request"
    return oauth_error(401, error, description, note=err.note, headers={"WWW-Authenticate": challenge})


def revoke(call: Call) -> httpx.Response:
    """RFC 7009: revoking a refresh token revokes its family; unknown tokens still get 200."""
    params = single_valued(parse_pairs(call.request), "request body")
    call.exchange.form.update(kept(params))
    client, method = authenticate_client(call, params)
    family = call.provider.tokens.find_refresh(_require(params, "token"))
    if family is not None and family.client_id == client.client_id:
        call.provider.tokens.revoke_family(family, "revoked by the client")
        call.note("refresh family revoked by the client", family=family.id)
    return httpx.Response(200, headers=NO_STORE)
