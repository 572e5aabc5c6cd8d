"""Tests for rfcheck.provider.authorize: /authorize with Auth0's and OIDC's rules.

Errors about the client or its redirect URI are shown to the user (a 400 page, never a
redirect); every other error goes back to the redirect URI (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import httpx
import jwt
import pytest

from rfcheck.facts import AUTHORIZATION_CODE
from rfcheck.provider.accounts import Client
from rfcheck.facts import AUTH_HOST
from rfcheck.provider.app import Provider
from rfcheck.provider.tokens import half_hash
from tests.helpers import FULL_SCOPE, REDIRECT_URI, Agent, Login, redirect_params, unverified

FRONT_CHANNEL_TOKENS = ["token", "id_token", "id_token token", "token id_token", "code id_token", "code token",
                        "code id_token token"]


def shown_to_user(response: httpx.Response) -> str:
    """The error page the user sees: a 400 HTML page and no redirect."""
    assert response.status_code == 400, (response.status_code, response.headers)
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def redirected_error(response: httpx.Response) -> dict[str, str]:
    answer = redirect_params(response)
    assert "error" in answer, answer
    assert response.headers["location"].startswith(REDIRECT_URI)
    assert not {"code", "access_token", "id_token"} & set(answer), answer
    return answer


# -- the code flow ------------------------------------------------------------------
def test_code_goes_back_in_the_query_with_state(agent: Agent, code_client: Client) -> None:
    response = agent.authorize(code_client, state="st-123")
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    assert location.fragment == ""
    answer = dict(parse_qsl(location.query))
    assert set(answer) == {"code", "state"} and answer["state"] == "st-123"
    assert response.headers["cache-control"] == "no-store"


def test_no_state_sent_none_returned(agent: Agent, code_client: Client) -> None:
    assert "state" not in redirect_params(agent.authorize(code_client, state=None))


def test_state_is_echoed_on_errors_too(agent: Agent, code_client: Client) -> None:
    answer = redirected_error(agent.authorize(code_client, audience=None, state="keep-me"))
    assert answer["state"] == "keep-me"


def test_redirect_uri_with_a_query_keeps_it(agent: Agent, provider: Provider) -> None:
    uri = "https://app.example/cb?tenant=7"
    client = provider.register_client(AUTHORIZATION_CODE, (uri,))
    location = agent.authorize(client, redirect_uri=uri).headers["location"]
    assert location.startswith(uri + "&code=")


def test_code_is_recorded_with_its_bindings(agent: Agent, code_client: Client, provider: Provider,
                                            pkce: Callable[[], tuple[str, str]]) -> None:
    _, challenge = pkce()
    code = redirect_params(agent.authorize(code_client, code_challenge=challenge, code_challenge_method="S256",
                                           nonce="n1"))["code"]
    stored = provider.codes[code]
    assert (stored.client_id, stored.redirect_uri, stored.nonce, stored.code_challenge) == (
        code_client.client_id, REDIRECT_URI, "n1", challenge)
    assert stored.scope == tuple(FULL_SCOPE.split())
    assert code in provider.journal.secrets


# -- implicit and hybrid: OIDC rules ------------------------------------------------------
@pytest.mark.parametrize("response_type", FRONT_CHANNEL_TOKENS)
def test_nonce_is_required_when_the_front_channel_returns_a_token(agent: Agent, code_client: Client,
                                                                  response_type: str) -> None:
    answer = redirected_error(agent.authorize(code_client, response_type=response_type))
    assert answer["error"] == "invalid_request" and "once" in answer["error_description"].lower()
    assert "#" in agent.authorize(code_client, response_type=response_type).headers["location"]


@pytest.mark.parametrize("response_type", FRONT_CHANNEL_TOKENS)
def test_front_channel_never_returns_a_refresh_token(agent: Agent, code_client: Client, response_type: str) -> None:
    response = agent.authorize(code_client, response_type=response_type, nonce="n")
    assert urlsplit(response.headers["location"]).query == ""  # tokens only in the fragment
    answer = redirect_params(response)
    assert "error" not in answer, answer
    assert "refresh_token" not in answer
    parts = set(response_type.split())
    assert ("code" in answer) == ("code" in parts)
    assert ("access_token" in answer) == ("token" in parts)
    assert ("id_token" in answer) == ("id_token" in parts)


def test_response_type_token_returns_only_an_access_token(agent: Agent, code_client: Client,
                                                          provider: Provider) -> None:
    answer = redirect_params(agent.authorize(code_client, response_type="token", nonce="n", state="s"))
    assert set(answer) == {"access_token", "token_type", "expires_in", "state"}
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == "86400"
    assert agent.api("GET", "/invoices", answer["access_token"]).status_code == 200
    assert answer["access_token"] in provider.journal.secrets


def test_implicit_id_token_carries_the_nonce(agent: Agent, code_client: Client) -> None:
    answer = redirect_params(agent.authorize(code_client, response_type="id_token", nonce="n-42"))
    claims = agent.verify_id_token(answer["id_token"], code_client)
    assert claims["nonce"] == "n-42"
    assert "at_hash" not in claims and "c_hash" not in claims


@pytest.mark.parametrize("response_type", ["id_token token", "token id_token"])
def test_token_id_token_has_a_correct_at_hash(agent: Agent, code_client: Client, response_type: str) -> None:
    answer = redirect_params(agent.authorize(code_client, response_type=response_type, nonce="n"))
    claims = agent.verify_id_token(answer["id_token"], code_client)
    assert claims["at_hash"] == half_hash(answer["access_token"])


def test_hybrid_code_id_token_has_c_hash_and_the_code_works(agent: Agent, code_client: Client) -> None:
    answer = redirect_params(agent.authorize(code_client, response_type="code id_token", nonce="n-h"))
    claims = agent.verify_id_token(answer["id_token"], code_client)
    assert claims["c_hash"] == half_hash(answer["code"])
    tokens = agent.token(code_client, grant_type="authorization_code", code=answer["code"],
                         redirect_uri=REDIRECT_URI).json()
    assert unverified(tokens["id_token"])["nonce"] == "n-h"
    assert "refresh_token" in tokens  # the back channel of a code flow may refresh


def test_tokens_in_the_query_are_refused(agent: Agent, code_client: Client) -> None:
    answer = redirected_error(agent.authorize(code_client, response_type="token", nonce="n", response_mode="query"))
    assert answer["error"] == "invalid_request"


def test_form_post_delivers_fields_in_a_self_submitting_page(agent: Agent, code_client: Client) -> None:
    response = agent.authorize(code_client, response_mode="form_post", state="s&<>")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert f'action="{REDIRECT_URI}"' in response.text
    assert 'name="code"' in response.text and 'value="s&amp;&lt;&gt;"' in response.text


@pytest.mark.parametrize("response_type", ["", "none", "code code", "device_code", "id_token code token extra"])
def test_unsupported_response_type(agent: Agent, code_client: Client, response_type: str) -> None:
    answer = redirected_error(agent.authorize(code_client, response_type=response_type, nonce="n"))
    assert answer["error"] == "unsupported_response_type"


def test_unsupported_response_mode(agent: Agent, code_client: Client) -> None:
    answer = redirected_error(agent.authorize(code_client, response_mode="web_message"))
    assert answer["error"] == "invalid_request"


def test_id_token_needs_the_openid_scope(agent: Agent, code_client: Client) -> None:
    answer = redirected_error(agent.authorize(code_client, response_type="id_token", nonce="n", scope="profile"))
    assert answer["error"] == "invalid_request"


# -- the client and its redirect URI: errors shown to the user -------------------------------------
@pytest.mark.parametrize("redirect_uri", [
    REDIRECT_URI + "/", "https://app.example/Callback", "http://app.example/callback", REDIRECT_URI + "?x=1",
    "https://app.example/callback#", "https://evil.example/callback", "",
])
def test_redirect_uri_must_match_exactly(agent: Agent, code_client: Client, redirect_uri: str) -> None:
    page = shown_to_user(agent.authorize(code_client, redirect_uri=redirect_uri))
    assert "invalid_request" in page


def test_missing_redirect_uri_is_shown(agent: Agent, code_client: Client) -> None:
    assert "redirect_uri" in shown_to_user(agent.authorize(code_client, redirect_uri=None))


@pytest.mark.parametrize("client_id", [None, "", "rfc_unknown"])
def test_unknown_client_is_shown(agent: Agent, client_id: str | None) -> None:
    page = shown_to_user(agent.http.get(agent.authorize_url(None, client_id=client_id)))
    assert "Unknown client" in page


def test_error_page_escapes_what_it_echoes(agent: Agent) -> None:
    page = shown_to_user(agent.http.get(agent.authorize_url(None, client_id="<script>x</script>")))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_shown_errors_are_journaled(agent: Agent, code_client: Client, provider: Provider) -> None:
    agent.authorize(code_client, redirect_uri="https://evil.example/")
    exchange = list(provider.journal)[-1]
    assert exchange.status == 400 and exchange.facts["shown_to_user"] is True


def test_repeated_client_id_is_shown(agent: Agent, code_client: Client) -> None:
    shown_to_user(agent.http.get(agent.authorize_url(code_client) + f"&client_id={code_client.client_id}"))


def test_other_repeated_parameters_go_back_to_the_client(agent: Agent, code_client: Client) -> None:
    answer = redirected_error(agent.http.get(agent.authorize_url(code_client) + "&scope=openid"))
    assert answer["error"] == "invalid_request" and "scope" in answer["error_description"]


def test_client_credentials_client_cannot_authorize(agent: Agent, provider: Provider) -> None:
    client = provider.register_client("client_credentials", (REDIRECT_URI,))
    assert redirected_error(agent.authorize(client))["error"] == "unauthorized_client"


# -- audience and scope ---------------------------------------------------------------
def test_audience_is_required(agent: Agent, code_client: Client) -> None:
    answer = redirected_error(agent.authorize(code_client, audience=None))
    assert answer["error"] == "invalid_request" and "audience" in answer["error_description"]


@pytest.mark.parametrize("audience", ["https://api.request.finance", "Accounts", "accounts "])
def test_audience_must_be_accounts(agent: Agent, code_client: Client, audience: str) -> None:
    assert redirected_error(agent.authorize(code_client, audience=audience))["error"] == "access_denied"


@pytest.mark.parametrize("scope", ["openid admin", "openid user:write", "OPENID"])
def test_unknown_scopes_are_refused(agent: Agent, code_client: Client, scope: str) -> None:
    assert redirected_error(agent.authorize(code_client, scope=scope))["error"] == "invalid_scope"


def test_known_scopes_are_granted(login: Callable[..., Login]) -> None:
    result = login(scope="openid profile email offline_access user:read")
    assert result.tokens["scope"] == "openid profile email offline_access user:read"


# -- PKCE ---------------------------------------------------------------------------------
def test_pkce_s256_is_accepted(login: Callable[..., Login], provider: Provider) -> None:
    login(pkce=True)
    assert [e.facts.get("pkce_method") for e in provider.journal if e.path == "/authorize"] == ["S256"]


def test_pkce_plain_is_refused(agent: Agent, code_client: Client, pkce: Callable[[], tuple[str, str]],
                               provider: Provider) -> None:
    verifier, _ = pkce()
    answer = redirected_error(agent.authorize(code_client, code_challenge=verifier, code_challenge_method="plain"))
    assert answer["error"] == "invalid_request" and "S256" in answer["error_description"]
    assert list(provider.journal)[-1].facts["pkce_method"] == "plain"


def test_pkce_without_method_means_plain_and_is_refused(agent: Agent, code_client: Client,
                                                        pkce: Callable[[], tuple[str, str]], provider: Provider) -> None:
    _, challenge = pkce()
    answer = redirected_error(agent.authorize(code_client, code_challenge=challenge))
    assert answer["error"] == "invalid_request" and "plain" in answer["error_description"]
    assert list(provider.journal)[-1].facts["pkce_method"] == "plain"


@pytest.mark.parametrize(("challenge", "method"), [
    (None, "S256"), ("short", "S256"), ("x" * 42 + "=", "S256"), ("A" * 44, "S256"), ("x" * 43, "s256"),
])
def test_malformed_pkce_is_refused(agent: Agent, code_client: Client, challenge: str | None, method: str) -> None:
    answer = redirected_error(agent.authorize(code_client, code_challenge=challenge, code_challenge_method=method))
    assert answer["error"] == "invalid_request"


# -- consent --------------------------------------------------------------------------------
def test_withheld_scope_is_not_granted(provider: Provider, login: Callable[..., Login], agent: Agent) -> None:
    provider.faults.withheld_scopes = frozenset({"user:read"})
    result = login(scope="openid offline_access user:read")
    assert result.tokens["scope"] == "openid offline_access"
    assert "user:read" not in unverified(result.access_token)["scope"].split()
    assert agent.api("GET", "/users/organizations", result.access_token).status_code == 403
    consent = next(e for e in provider.journal if "scope_granted" in e.facts)
    assert consent.facts["scope_granted"] == ("openid", "offline_access")


def test_prompt_consent_grants_the_withheld_scope(provider: Provider, login: Callable[..., Login],
                                                  agent: Agent) -> None:
    provider.faults.withheld_scopes = frozenset({"user:read"})
    result = login(scope="openid offline_access user:read", prompt="consent")
    assert result.tokens["scope"] == "openid offline_access user:read"
    assert agent.api("GET", "/users/organizations", result.access_token).status_code == 200
    assert any(e.facts.get("prompt") == "consent" for e in provider.journal)


def test_the_request_is_journaled(agent: Agent, code_client: Client, provider: Provider) -> None:
    agent.authorize(code_client, state="s1", nonce="n1", scope="openid email")
    facts = list(provider.journal)[-1].facts
    assert facts["response_type"] == "code" and facts["scope_requested"] == ("openid", "email")
    assert (facts["state"], facts["nonce"], facts["client_id"], facts["redirect_uri"], facts["audience"]) == (
        "s1", "n1", code_client.client_id, REDIRECT_URI, "accounts")
    assert facts["pkce_method"] is None


def test_implicit_id_token_is_signed_with_the_current_key(agent: Agent, code_client: Client,
                                                          provider: Provider) -> None:
    token = redirect_params(agent.authorize(code_client, response_type="id_token", nonce="n"))["id_token"]
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": provider.keys.current.kid, "typ": "JWT"}


def test_a_form_post_to_authorize_is_served_like_a_get(agent: Agent, code_client: Client) -> None:
    # OIDC Core §3.1.2.1: the authorization endpoint supports GET and POST
    form = dict(httpx.URL(agent.authorize_url(code_client, state="posted")).params)
    response = agent.http.post(f"{AUTH_HOST}/authorize", data=form)
    assert response.status_code == 302
    answer = redirect_params(response)
    assert answer["state"] == "posted" and answer["code"]


def test_a_post_to_authorize_that_is_not_a_form_is_shown_to_the_user(agent: Agent, code_client: Client) -> None:
    form = dict(httpx.URL(agent.authorize_url(code_client)).params)
    response = agent.http.post(f"{AUTH_HOST}/authorize", json=form)
    assert "form-encoded" in shown_to_user(response)
