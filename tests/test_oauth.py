"""Tests for rfcheck.provider.oauth: discovery, JWKS, /oauth/token, /userinfo, /oauth/revoke."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import jwt
import pytest

from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from rfcheck.provider.accounts import Client
from rfcheck.facts import AUTH_HOST
from rfcheck.provider.app import Provider
from rfcheck.provider.tokens import half_hash
from tests.helpers import (FULL_SCOPE, ISSUER, REDIRECT_URI, Agent, Login, basic_header, redirect_params,
                           unverified)

DEAD_REFRESH = {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}


def oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, str]:
    """Assert an RFC 6749 §5.2 error (Auth0 shape, never cached) and return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str)
    assert response.headers["cache-control"] == "no-store"
    return dict(body)


def code_for(agent: Agent, client: Client, **params: str | None) -> str:
    return redirect_params(agent.authorize(client, **params))["code"]


def redeem(agent: Agent, client: Client, code: str, **params: str | None) -> httpx.Response:
    return agent.token(client, **{"grant_type": AUTHORIZATION_CODE, "code": code, "redirect_uri": REDIRECT_URI,
                                  **params})


# -- discovery and JWKS ------------------------------------------------------------------
def test_discovery(agent: Agent) -> None:
    response = agent.http.get(f"{AUTH_HOST}/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == "https://auth.request.finance/"
    assert meta["authorization_endpoint"] == "https://auth.request.finance/authorize"
    assert meta["token_endpoint"] == "https://auth.request.finance/oauth/token"
    assert meta["jwks_uri"] == "https://auth.request.finance/.well-known/jwks.json"
    assert meta["userinfo_endpoint"] == "https://auth.request.finance/userinfo"
    assert meta["revocation_endpoint"] == "https://auth.request.finance/oauth/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    assert {"openid", "profile", "email", "offline_access", "user:read"} <= set(meta["scopes_supported"])
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(meta["grant_types_supported"])


def test_discovery_answers_with_a_trailing_slash_in_the_path_too(agent: Agent) -> None:
    assert agent.http.get(f"{AUTH_HOST}/.well-known/openid-configuration/").status_code == 200


def test_jwks_publishes_rsa_2048_rs256_keys_with_kid(agent: Agent, provider: Provider) -> None:
    response = agent.http.get(f"{AUTH_HOST}/.well-known/jwks.json")
    assert response.status_code == 200 and "max-age" in response.headers["cache-control"]
    (key,) = response.json()["keys"]
    assert (key["kty"], key["alg"], key["use"], key["kid"]) == ("RSA", "RS256", "sig", provider.keys.current.kid)
    modulus = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
    assert len(modulus) * 8 == 2048
    assert "d" not in key


def test_issuer_is_consistent_everywhere(agent: Agent, code_client: Client, login: Callable[..., Login]) -> None:
    issuer = agent.http.get(f"{AUTH_HOST}/.well-known/openid-configuration").json()["issuer"]
    result = login()
    assert issuer == ISSUER and issuer.endswith("/")
    assert unverified(result.access_token)["iss"] == issuer
    assert unverified(result.id_token)["iss"] == issuer
    refreshed = agent.refresh(code_client, result.refresh_token).json()
    assert unverified(refreshed["access_token"])["iss"] == unverified(refreshed["id_token"])["iss"] == issuer


def test_issuer_follows_the_host_the_client_used(provider: Provider, agent: Agent, code_client: Client) -> None:
    base = "http://127.0.0.1:8765"
    provider.add_site("auth", base)
    meta = agent.http.get(f"{base}/.well-known/openid-configuration").json()
    assert meta["issuer"] == base + "/" and meta["token_endpoint"] == base + "/oauth/token"
    code = redirect_params(agent.http.get(agent.authorize_url(code_client).replace(AUTH_HOST, base)))["code"]
    tokens = agent.http.post(f"{base}/oauth/token", data={
        "grant_type": AUTHORIZATION_CODE, "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": code_client.client_id, "client_secret": code_client.client_secret}).json()
    assert unverified(tokens["access_token"])["iss"] == base + "/"
    assert unverified(tokens["id_token"])["iss"] == base + "/"
    assert agent.api("GET", "/invoices", tokens["access_token"]).status_code == 200  # a known issuer


def test_key_rotation(agent: Agent, provider: Provider, code_client: Client, login: Callable[..., Login]) -> None:
    before = login(nonce="n")
    old_kid = provider.keys.current.kid
    provider.keys.rotate()
    after = login(nonce="n")
    new_kid = jwt.get_unverified_header(after.id_token)["kid"]
    assert new_kid == provider.keys.current.kid != old_kid
    assert jwt.get_unverified_header(after.access_token)["kid"] == new_kid
    assert [k["kid"] for k in agent.jwks()["keys"]] == [new_kid, old_kid]
    agent.verify_id_token(after.id_token, code_client)
    agent.verify_id_token(before.id_token, code_client)  # the old key stays published
    assert agent.api("GET", "/invoices", before.access_token).status_code == 200


# -- the authorization code grant -------------------------------------------------------
def test_code_exchange_response(login: Callable[..., Login]) -> None:
    result = login(nonce="n")
    tokens, response = result.tokens, result.token_response
    assert set(tokens) == {"access_token", "refresh_token", "id_token", "scope", "expires_in", "token_type"}
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 86400
    assert "expires_at" not in tokens
    assert tokens["scope"] == FULL_SCOPE
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"].startswith("application/json")


def test_access_token_claims(login: Callable[..., Login], code_client: Client, provider: Provider) -> None:
    result = login(scope="offline_access user:read")
    header = jwt.get_unverified_header(result.access_token)
    assert header["alg"] == "RS256" and header["kid"] == provider.keys.current.kid
    claims = jwt.decode(result.access_token, provider.keys.current.public_key, algorithms=["RS256"],
                        audience="accounts", issuer=ISSUER)
    assert claims["sub"] == provider.user.sub
    assert claims["azp"] == code_client.client_id
    assert claims["scope"] == "offline_access user:read"
    assert claims["exp"] == claims["iat"] + 86400
    assert claims["jti"] in provider.tokens.access


def test_id_token(login: Callable[..., Login], agent: Agent, code_client: Client) -> None:
    result = login(nonce="nonce-1")
    assert jwt.get_unverified_header(result.id_token)["alg"] == "RS256"
    claims = agent.verify_id_token(result.id_token, code_client)
    assert claims["nonce"] == "nonce-1"
    assert claims["at_hash"] == half_hash(result.access_token)
    assert claims["sub"] == unverified(result.access_token)["sub"]
    assert claims["email"] == "ada.keller@example.com"


def test_id_token_without_nonce_when_none_sent(login: Callable[..., Login]) -> None:
    assert "nonce" not in unverified(login(nonce=None).id_token)


def test_no_id_token_without_openid(login: Callable[..., Login]) -> None:
    assert "id_token" not in login(scope="offline_access").tokens


def test_no_refresh_token_without_offline_access(login: Callable[..., Login]) -> None:
    tokens = login(scope="openid profile email").tokens
    assert "refresh_token" not in tokens and "id_token" in tokens


def test_code_is_single_use_and_reuse_revokes_its_tokens(agent: Agent, code_client: Client,
                                                         login: Callable[..., Login], provider: Provider) -> None:
    first = login()
    refreshed = agent.refresh(code_client, first.refresh_token).json()
    assert agent.api("GET", "/invoices", first.access_token).status_code == 200
    reuse = redeem(agent, code_client, first.code, code_verifier=first.verifier)
    oauth_error(reuse, 403, "invalid_grant")
    assert list(provider.journal)[-1].facts["code_status"] == "reused"
    for token in (first.access_token, refreshed["access_token"]):
        assert agent.api("GET", "/invoices", token).status_code == 401
    assert agent.refresh(code_client, refreshed["refresh_token"]).json() == DEAD_REFRESH


def test_code_is_bound_to_its_client(agent: Agent, code_client: Client, provider: Provider) -> None:
    other = provider.register_client(AUTHORIZATION_CODE, (REDIRECT_URI,))
    code = code_for(agent, code_client)
    oauth_error(redeem(agent, other, code), 403, "invalid_grant")
    assert redeem(agent, code_client, code).status_code == 200


@pytest.mark.parametrize("redirect_uri", [None, REDIRECT_URI + "/", "https://app.example/other"])
def test_code_is_bound_to_its_redirect_uri(agent: Agent, code_client: Client, redirect_uri: str | None) -> None:
    code = code_for(agent, code_client)
    oauth_error(redeem(agent, code_client, code, redirect_uri=redirect_uri), 403, "invalid_grant")
    oauth_error(redeem(agent, code_client, code), 403, "invalid_grant")  # refused once: burned


def test_code_expires_after_ten_minutes(agent: Agent, code_client: Client, provider: Provider) -> None:
    code = code_for(agent, code_client)
    provider.clock.travel(601)
    oauth_error(redeem(agent, code_client, code), 403, "invalid_grant")


def test_unknown_code(agent: Agent, code_client: Client) -> None:
    oauth_error(redeem(agent, code_client, "not-a-code"), 403, "invalid_grant")
    oauth_error(redeem(agent, code_client, None), 400, "invalid_request")


def test_pkce_verifier_is_checked(agent: Agent, code_client: Client, pkce: Callable[[], tuple[str, str]]) -> None:
    verifier, challenge = pkce()
    other_verifier, _ = pkce()
    code = code_for(agent, code_client, code_challenge=challenge, code_challenge_method="S256")
    oauth_error(redeem(agent, code_client, code, code_verifier=other_verifier), 403, "invalid_grant")
    code = code_for(agent, code_client, code_challenge=challenge, code_challenge_method="S256")
    oauth_error(redeem(agent, code_client, code), 403, "invalid_grant")  # verifier missing
    code = code_for(agent, code_client, code_challenge=challenge, code_challenge_method="S256")
    assert redeem(agent, code_client, code, code_verifier=verifier).status_code == 200


def test_pkce_downgrade_is_refused(agent: Agent, code_client: Client, pkce: Callable[[], tuple[str, str]],
                                   provider: Provider) -> None:
    verifier, _ = pkce()
    code = code_for(agent, code_client)  # issued without a challenge
    body = oauth_error(redeem(agent, code_client, code, code_verifier=verifier), 403, "invalid_grant")
    assert "verifier" in body["error_description"]
    assert list(provider.journal)[-1].facts["code_status"] == "pkce_downgrade"
    assert redeem(agent, code_client, code_for(agent, code_client)).status_code == 200  # no PKCE at all is fine


# -- client authentication ----------------------------------------------------------------
@pytest.mark.parametrize("method", ["post", "basic", "both"])
def test_client_authentication_methods(agent: Agent, code_client: Client, provider: Provider, method: str) -> None:
    response = agent.token(code_client, auth=method, grant_type=AUTHORIZATION_CODE,
                           code=code_for(agent, code_client), redirect_uri=REDIRECT_URI)
    assert response.status_code == 200, response.text
    expected = "client_secret_post" if method == "post" else "client_secret_basic"
    assert list(provider.journal)[-1].facts["client_auth"] == expected


def special_client(provider: Provider, secret: str) -> Client:
    client = Client("rfc_special-client_1", secret, AUTHORIZATION_CODE, (REDIRECT_URI,))
    provider.clients[client.client_id] = client
    return client


def test_basic_credentials_are_url_decoded(agent: Agent, provider: Provider) -> None:
    # RFC 6749 §2.3.1: form-urlencode id and secret, then base64 (Authlib, openid-client)
    client = special_client(provider, "s3cr+t/with:colon%and space")
    header = basic_header(quote(client.client_id, safe=""), quote(client.client_secret, safe="").replace("%20", "+"))
    response = agent.token(auth="none", headers={"Authorization": header}, grant_type=AUTHORIZATION_CODE,
                           code=code_for(agent, client), redirect_uri=REDIRECT_URI)
    assert response.status_code == 200, response.text


def test_basic_credentials_openid_client_v6_style(agent: Agent, provider: Provider) -> None:
    # openid-client v6 percent-encodes even '-' and '_'
    client = special_client(provider, "abc-def_ghi-jkl")
    encode = lambda value: quote(value, safe="").replace("-", "%2D").replace("_", "%5F")  # noqa: E731
    header = basic_header(encode(client.client_id), encode(client.client_secret))
    assert "%2D" in base64.b64decode(header.split()[1]).decode()
    response = agent.token(auth="none", headers={"Authorization": header}, grant_type=AUTHORIZATION_CODE,
                           code=code_for(agent, client), redirect_uri=REDIRECT_URI)
    assert response.status_code == 200, response.text


def test_both_methods_in_one_request_agree(agent: Agent, code_client: Client) -> None:
    # requests-oauthlib: Basic header and client_id (and sometimes the secret) in the body
    response = agent.token(code_client, auth="basic", client_id=code_client.client_id, grant_type=AUTHORIZATION_CODE,
                           code=code_for(agent, code_client), redirect_uri=REDIRECT_URI)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_both_methods_disagreeing_is_refused(agent: Agent, code_client: Client, field: str) -> None:
    response = agent.token(code_client, auth="basic", grant_type=AUTHORIZATION_CODE, **{field: "something-else"},
                           code=code_for(agent, code_client), redirect_uri=REDIRECT_URI)
    oauth_error(response, 401, "invalid_client")


def test_wrong_secret(agent: Agent, code_client: Client, provider: Provider) -> None:
    wrong = Client(code_client.client_id, "wrong-secret", AUTHORIZATION_CODE)
    oauth_error(agent.token(wrong, grant_type=AUTHORIZATION_CODE, code="x", redirect_uri=REDIRECT_URI),
                401, "invalid_client")
    response = agent.token(wrong, auth="basic", grant_type=AUTHORIZATION_CODE, code="x")
    oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_missing_or_unknown_client(agent: Agent, code_client: Client, provider: Provider) -> None:
    oauth_error(agent.token(grant_type=AUTHORIZATION_CODE, code="x"), 401, "invalid_client")
    assert list(provider.journal)[-1].facts["client_auth"] == "none"
    oauth_error(agent.token(grant_type=AUTHORIZATION_CODE, client_id=code_client.client_id), 401, "invalid_client")
    oauth_error(agent.token(grant_type=AUTHORIZATION_CODE, client_id="rfc_nobody", client_secret="x"),
                401, "invalid_client")


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic "])
def test_malformed_basic_credentials(agent: Agent, header: str) -> None:
    oauth_error(agent.token(headers={"Authorization": header}, grant_type=CLIENT_CREDENTIALS), 401, "invalid_client")


def test_non_ascii_secrets_are_refused_not_crashed_on(agent: Agent, cc_client: Client) -> None:
    oauth_error(agent.token(client_id=cc_client.client_id, client_secret="sécret", grant_type=CLIENT_CREDENTIALS,
                            audience="accounts"), 401, "invalid_client")
    raw = {"client_id": cc_client.client_id, "client_secret": "\ud800", "grant_type": CLIENT_CREDENTIALS}
    response = agent.http.post(f"{AUTH_HOST}/oauth/token", content=json.dumps(raw),
                               headers={"Content-Type": "application/json"})
    oauth_error(response, 401, "invalid_client")
    response = agent.http.post(f"{AUTH_HOST}/oauth/token", headers={"Authorization": b"Basic \xe9t\xe9"},
                               data={"grant_type": CLIENT_CREDENTIALS})
    oauth_error(response, 401, "invalid_client")


# -- request shape -------------------------------------------------------------------------
def test_unknown_parameters_are_ignored(agent: Agent, code_client: Client) -> None:
    response = redeem(agent, code_client, code_for(agent, code_client), allow_redirects="True", foo="bar")
    assert response.status_code == 200, response.text


def test_json_bodies_are_accepted(agent: Agent, code_client: Client, cc_client: Client) -> None:
    code = code_for(agent, code_client)
    response = agent.token(code_client, json_body=True, grant_type=AUTHORIZATION_CODE, code=code,
                           redirect_uri=REDIRECT_URI)
    assert response.status_code == 200, response.text
    response = agent.token(cc_client, json_body=True, grant_type=CLIENT_CREDENTIALS, audience="accounts")
    assert response.status_code == 200, response.text


def test_repeated_parameters_are_refused(agent: Agent, cc_client: Client) -> None:
    body = (f"grant_type=client_credentials&audience=accounts&audience=accounts&client_id={cc_client.client_id}"
            f"&client_secret={cc_client.client_secret}")
    response = agent.http.post(f"{AUTH_HOST}/oauth/token", content=body,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    oauth_error(response, 400, "invalid_request")


def test_grant_type_is_required_and_known(agent: Agent, cc_client: Client) -> None:
    oauth_error(agent.token(cc_client), 400, "invalid_request")
    oauth_error(agent.token(cc_client, grant_type="password", username="u", password="p"),
                403, "unsupported_grant_type")


def test_wrong_method_or_path_on_the_auth_host(agent: Agent) -> None:
    oauth_error(agent.http.get(f"{AUTH_HOST}/oauth/token"), 405, "invalid_request")
    oauth_error(agent.http.get(f"{AUTH_HOST}/oauth/nothing"), 404, "invalid_request")


# -- refresh tokens -----------------------------------------------------------------------
def test_refresh_rotates(agent: Agent, code_client: Client, login: Callable[..., Login], provider: Provider) -> None:
    first = login(nonce="n")
    response = agent.refresh(code_client, first.refresh_token, scope=FULL_SCOPE)  # extra scope: ignored/kept
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first.refresh_token
    assert second["access_token"] != first.access_token
    assert (second["token_type"], second["expires_in"]) == ("Bearer", 86400) and "expires_at" not in second
    assert response.headers["cache-control"] == "no-store"
    third = agent.refresh(code_client, second["refresh_token"]).json()
    assert third["refresh_token"] not in (first.refresh_token, second["refresh_token"])
    assert agent.api("GET", "/invoices", third["access_token"]).status_code == 200


def test_rotated_refresh_token_reuse_revokes_the_family(agent: Agent, code_client: Client,
                                                        login: Callable[..., Login], provider: Provider) -> None:
    first = login()
    newest = agent.refresh(code_client, first.refresh_token).json()["refresh_token"]
    reuse = agent.refresh(code_client, first.refresh_token)
    assert reuse.status_code == 403
    assert reuse.content == b'{"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}'
    assert reuse.json() == DEAD_REFRESH
    assert list(provider.journal)[-1].facts["refresh_status"] == "rotated_reused"
    dead = agent.refresh(code_client, newest)
    assert (dead.status_code, dead.json()) == (403, DEAD_REFRESH)
    assert list(provider.journal)[-1].facts["refresh_status"] == "revoked"


def test_unknown_or_foreign_refresh_token(agent: Agent, code_client: Client, provider: Provider,
                                          login: Callable[..., Login]) -> None:
    assert agent.refresh(code_client, "nope").json() == DEAD_REFRESH
    other = provider.register_client(AUTHORIZATION_CODE, (REDIRECT_URI,))
    token = login().refresh_token
    response = agent.refresh(other, token)
    assert (response.status_code, response.json()) == (403, DEAD_REFRESH)
    assert agent.refresh(code_client, token).status_code == 200  # still the owner's
    oauth_error(agent.refresh(code_client, None), 400, "invalid_request")


def test_refresh_may_narrow_but_not_widen_the_scope(agent: Agent, code_client: Client,
                                                    login: Callable[..., Login]) -> None:
    first = login(scope="openid offline_access")
    narrow = agent.refresh(code_client, first.refresh_token, scope="offline_access")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "offline_access"
    assert "id_token" not in narrow.json()
    oauth_error(agent.refresh(code_client, narrow.json()["refresh_token"], scope="openid user:read"),
                403, "invalid_scope")


def test_revoked_families_by_the_provider(agent: Agent, code_client: Client, login: Callable[..., Login],
                                          provider: Provider) -> None:
    token = login().refresh_token
    assert provider.revoke_refresh_families(code_client.client_id) == 1
    assert agent.refresh(code_client, token).json() == DEAD_REFRESH


# -- client credentials -------------------------------------------------------------------
def test_client_credentials(agent: Agent, cc_client: Client, provider: Provider) -> None:
    response = agent.token(cc_client, grant_type=CLIENT_CREDENTIALS, audience="accounts",
                           scope="openid offline_access user:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "scope", "expires_in", "token_type"}  # no refresh or ID token
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 86400, "user:read")
    claims = unverified(body["access_token"])
    assert (claims["sub"], claims["azp"], claims["aud"], claims["gty"]) == (
        f"{cc_client.client_id}@clients", cc_client.client_id, "accounts", "client-credentials")
    assert claims["exp"] == claims["iat"] + 86400
    assert any(e.facts.get("offline_access_asked") for e in provider.journal)
    assert response.headers["cache-control"] == "no-store"


def test_client_credentials_needs_the_accounts_audience(agent: Agent, cc_client: Client) -> None:
    oauth_error(agent.token(cc_client, grant_type=CLIENT_CREDENTIALS), 403, "access_denied")
    oauth_error(agent.token(cc_client, grant_type=CLIENT_CREDENTIALS, audience="https://api.request.finance"),
                403, "access_denied")
    oauth_error(agent.token(cc_client, grant_type=CLIENT_CREDENTIALS, audience="accounts", scope="admin"),
                403, "invalid_scope")


def test_one_flow_per_client(agent: Agent, cc_client: Client, code_client: Client) -> None:
    oauth_error(agent.token(code_client, grant_type=CLIENT_CREDENTIALS, audience="accounts"),
                403, "unauthorized_client")
    oauth_error(agent.token(cc_client, grant_type=AUTHORIZATION_CODE, code="x", redirect_uri=REDIRECT_URI),
                403, "unauthorized_client")
    oauth_error(agent.refresh(cc_client, "x"), 403, "unauthorized_client")


# -- endpoint faults ----------------------------------------------------------------------
@pytest.mark.parametrize(("status", "error"), [(429, "too_many_requests"), (503, "temporarily_unavailable"),
                                               (500, "temporarily_unavailable")])
def test_token_endpoint_failures_with_retry_after(agent: Agent, code_client: Client, provider: Provider,
                                                  status: int, error: str) -> None:
    code = code_for(agent, code_client)
    provider.faults.fail_token_endpoint(status, times=2, retry_after=3)
    for _ in range(2):
        response = redeem(agent, code_client, code)
        oauth_error(response, status, error)
        assert response.headers["retry-after"] == "3"
        assert list(provider.journal)[-1].facts["fault"] == str(status)
    assert redeem(agent, code_client, code).status_code == 200  # the code was never consumed
    assert provider.errors == []


def test_token_endpoint_failure_without_retry_after(agent: Agent, cc_client: Client, provider: Provider) -> None:
    provider.faults.fail_token_endpoint(503)
    response = agent.token(cc_client, grant_type=CLIENT_CREDENTIALS, audience="accounts")
    assert response.status_code == 503 and "retry-after" not in response.headers


def test_token_endpoint_delay(agent: Agent, cc_client: Client, provider: Provider) -> None:
    provider.faults.token_delay = 0.05
    started = time.monotonic()
    agent.cc_token(cc_client)
    assert time.monotonic() - started >= 0.05


# -- userinfo -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo(agent: Agent, login: Callable[..., Login], method: str, provider: Provider) -> None:
    token = login(scope="openid email offline_access").access_token
    response = agent.http.request(method, f"{AUTH_HOST}/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"sub": provider.user.sub, "email": "ada.keller@example.com"}


def test_userinfo_with_profile(agent: Agent, login: Callable[..., Login]) -> None:
    token = login(scope="openid profile").access_token
    body = agent.http.get(f"{AUTH_HOST}/userinfo", headers={"Authorization": f"Bearer {token}"}).json()
    assert set(body) == {"sub", "name", "nickname", "updated_at"}


def test_userinfo_needs_openid(agent: Agent, login: Callable[..., Login]) -> None:
    token = login(scope="offline_access").access_token
    response = agent.http.get(f"{AUTH_HOST}/userinfo", headers={"Authorization": f"Bearer {token}"})
    oauth_error(response, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("authorization", [None, "Bearer nonsense", "Bearer ", "Basic abc", "rk_unknown"])
def test_userinfo_refusals_are_oauth_shaped(agent: Agent, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = agent.http.get(f"{AUTH_HOST}/userinfo", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] in ("invalid_token", "invalid_request")
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_userinfo_refuses_api_keys(agent: Agent, provider: Provider) -> None:
    response = agent.http.get(f"{AUTH_HOST}/userinfo", headers={"Authorization": provider.api_key_for(provider.user)})
    oauth_error(response, 401, "invalid_token")


# -- revocation -----------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["first", "newest"])
def test_revoke_kills_the_family(agent: Agent, code_client: Client, login: Callable[..., Login],
                                 provider: Provider, which: str) -> None:
    first = login()
    newest = agent.refresh(code_client, first.refresh_token).json()["refresh_token"]
    revoked = agent.http.post(f"{AUTH_HOST}/oauth/revoke", data={
        "token": first.refresh_token if which == "first" else newest,
        "client_id": code_client.client_id, "client_secret": code_client.client_secret})
    assert revoked.status_code == 200 and revoked.headers["cache-control"] == "no-store"
    assert agent.refresh(code_client, newest).json() == DEAD_REFRESH
    assert any(e.facts.get("family") for e in provider.journal if e.path == "/oauth/revoke")


def test_revoke_with_basic_auth_and_unknown_token(agent: Agent, code_client: Client) -> None:
    response = agent.http.post(f"{AUTH_HOST}/oauth/revoke", data={"token": "unknown"},
                               headers={"Authorization": basic_header(code_client.client_id,
                                                                      code_client.client_secret)})
    assert response.status_code == 200  # RFC 7009 §2.2


def test_revoke_needs_client_authentication_and_a_token(agent: Agent, code_client: Client,
                                                        login: Callable[..., Login]) -> None:
    token = login().refresh_token
    oauth_error(agent.http.post(f"{AUTH_HOST}/oauth/revoke", data={"token": token}), 401, "invalid_client")
    oauth_error(agent.http.post(f"{AUTH_HOST}/oauth/revoke", data={
        "client_id": code_client.client_id, "client_secret": code_client.client_secret}), 400, "invalid_request")
    assert agent.refresh(code_client, token).status_code == 200


def test_revoke_by_another_client_does_nothing(agent: Agent, code_client: Client, provider: Provider,
                                               login: Callable[..., Login]) -> None:
    token = login().refresh_token
    other = provider.register_client(AUTHORIZATION_CODE, (REDIRECT_URI,))
    response = agent.http.post(f"{AUTH_HOST}/oauth/revoke", data={
        "token": token, "client_id": other.client_id, "client_secret": other.client_secret})
    assert response.status_code == 200
    assert agent.refresh(code_client, token).status_code == 200
