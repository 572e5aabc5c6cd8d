"""Tests for rfcheck.provider.api: bearer validation, API keys, X-Network, scopes,
organizations, rate-limit headers and the endpoints themselves."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from rfcheck.provider.accounts import ACME_ORG, SOLO_USER, Client
from rfcheck.provider.app import Provider
from rfcheck.provider.keys import SigningKey
from tests.helpers import Agent, Login, unverified

# RFC 6750 §3: challenge = "Bearer" [ 1*SP 1#auth-param ], auth-param = token "=" quoted-string here
_AUTH_PARAM = r'[A-Za-z_]+="[\x20\x21\x23-\x5B\x5D-\x7E]*"'
CHALLENGE = re.compile(rf"Bearer {_AUTH_PARAM}(, {_AUTH_PARAM})*")


def challenge_params(response: httpx.Response) -> dict[str, str]:
    value = response.headers["www-authenticate"]
    assert CHALLENGE.fullmatch(value), value
    return dict(re.findall(r'([A-Za-z_]+)="([^"]*)"', value))


def invalid_token(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 401, (response.status_code, response.text)
    assert isinstance(response.json()["message"], str)
    params = challenge_params(response)
    assert params["error"] == "invalid_token"
    return params


@pytest.fixture
def token(login: Callable[..., Login]) -> str:
    return login(scope="openid profile email offline_access user:read").access_token


# -- bearer tokens ------------------------------------------------------------------------
def test_valid_bearer_token(agent: Agent, token: str, provider: Provider) -> None:
    response = agent.api("GET", "/invoices", token)
    assert response.status_code == 200
    assert [i["invoiceNumber"] for i in response.json()] == ["ADA-TEST-1", "ADA-TEST-2"]
    facts = list(provider.journal)[-1].facts
    assert (facts["auth_kind"], facts["token_status"], facts["network"]) == ("bearer", "valid", "test")


def test_no_credentials(agent: Agent, provider: Provider) -> None:
    response = agent.api("GET", "/invoices")
    assert response.status_code == 401
    assert "error" not in challenge_params(response)  # RFC 6750 §3.1: no error code without credentials
    assert list(provider.journal)[-1].facts["auth_kind"] == "none"


@pytest.mark.parametrize("bearer", ["", "nonsense", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30."])
def test_malformed_token(agent: Agent, bearer: str) -> None:
    invalid_token(agent.api("GET", "/invoices", authorization=f"Bearer {bearer}"))


def test_tampered_signature(agent: Agent, token: str) -> None:
    head, body, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    invalid_token(agent.api("GET", "/invoices", f"{head}.{body}.{flipped}"))


def test_tampered_claims(agent: Agent, token: str) -> None:
    head, body, signature = token.split(".")
    claims = unverified(token)
    claims["scope"] += " admin"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    invalid_token(agent.api("GET", "/invoices", f"{head}.{forged_body}.{signature}"))


def test_token_from_another_signer(agent: Agent, token: str, provider: Provider) -> None:
    other = SigningKey.generate()
    forged = jwt.encode(unverified(token), other.private_key, algorithm="RS256",
                        headers={"kid": provider.keys.current.kid})
    invalid_token(agent.api("GET", "/invoices", forged))
    assert list(provider.journal)[-1].facts["token_status"] == "bad_signature"


def test_still_valid_just_before_expiry(agent: Agent, token: str, provider: Provider) -> None:
    provider.clock.travel(86_000)
    assert agent.api("GET", "/invoices", token).status_code == 200


def test_expired_by_time_travel(agent: Agent, token: str, provider: Provider) -> None:
    provider.clock.travel(86_401)
    params = invalid_token(agent.api("GET", "/invoices", token))
    assert "expired" in params["error_description"]
    assert list(provider.journal)[-1].facts["token_status"] == "expired"


def test_wrong_audience(agent: Agent, token: str, provider: Provider) -> None:
    other_audience = provider.tokens.sign({**unverified(token), "aud": "https://another-api.example"})
    invalid_token(agent.api("GET", "/invoices", other_audience))
    assert list(provider.journal)[-1].facts["token_status"] == "wrong_audience"


def test_unknown_token_signed_by_the_provider_key(agent: Agent, token: str, provider: Provider) -> None:
    invalid_token(agent.api("GET", "/invoices", provider.tokens.sign({**unverified(token), "jti": "made-up"})))
    assert list(provider.journal)[-1].facts["token_status"] == "unknown"


def test_revocation(agent: Agent, token: str, provider: Provider, code_client: Client,
                    login: Callable[..., Login]) -> None:
    another = login().access_token
    assert provider.revoke_access_tokens(code_client.client_id) == 2
    for revoked in (token, another):
        params = invalid_token(agent.api("GET", "/invoices", revoked))
        assert "revoked" in params["error_description"]
    assert provider.revoke_access_tokens(code_client.client_id) == 0
    assert agent.api("GET", "/invoices", login().access_token).status_code == 200


def test_revocation_is_per_client(agent: Agent, token: str, provider: Provider, cc_client: Client,
                                  cc_token: Callable[..., str]) -> None:
    machine = cc_token()
    provider.revoke_access_tokens(cc_client.client_id)
    invalid_token(agent.api("GET", "/invoices", machine))
    assert agent.api("GET", "/invoices", token).status_code == 200


def test_bearer_scheme_is_case_insensitive(agent: Agent, token: str) -> None:
    assert agent.api("GET", "/invoices", authorization=f"bearer {token}").status_code == 200


# -- API keys -------------------------------------------------------------------------------
def test_known_api_key_is_answered_and_recorded(agent: Agent, provider: Provider) -> None:
    key = provider.api_key_for(provider.user)
    response = agent.api("GET", "/invoices", authorization=key)
    assert response.status_code == 200
    assert [i["owner"] for i in response.json()] == [provider.user.sub] * 2
    facts = list(provider.journal)[-1].facts
    assert (facts["auth_kind"], facts["api_key_known"]) == ("api_key", True)


def test_api_key_of_another_user(agent: Agent, provider: Provider) -> None:
    response = agent.api("GET", "/users", authorization=provider.api_key_for(SOLO_USER))
    assert response.json()["id"] == SOLO_USER.sub


def test_unknown_api_key(agent: Agent, provider: Provider) -> None:
    response = agent.api("GET", "/invoices", authorization="rk_not-a-key")
    assert response.status_code == 401 and "message" in response.json()
    facts = list(provider.journal)[-1].facts
    assert (facts["auth_kind"], facts["api_key_known"]) == ("api_key", False)


def test_organizations_refuse_api_keys(agent: Agent, provider: Provider) -> None:
    response = agent.api("GET", "/users/organizations", authorization=provider.api_key_for(provider.user))
    assert response.status_code == 403 and "OAuth" in response.json()["message"]
    assert list(provider.journal)[-1].facts["auth_kind"] == "api_key"


# -- X-Network ----------------------------------------------------------------------------
@pytest.mark.parametrize("network", [None, "Live", "prod", "", "TEST", "test,live"])
def test_x_network_must_be_exactly_test_or_live(agent: Agent, token: str, provider: Provider,
                                                 network: str | None) -> None:
    response = agent.api("GET", "/invoices", token, network=network)
    assert response.status_code == 400
    message = response.json()["message"]
    assert "X-Network" in message and "test" in message and "live" in message
    assert list(provider.journal)[-1].facts["network"] == network


def test_networks_hold_separate_data(agent: Agent, token: str) -> None:
    test = agent.api("GET", "/invoices", token, network="test").json()
    live = agent.api("GET", "/invoices", token, network="live").json()
    assert {i["network"] for i in test} == {"test"} and {i["network"] for i in live} == {"live"}
    assert not {i["id"] for i in test} & {i["id"] for i in live}


def test_authentication_is_checked_before_the_network(agent: Agent) -> None:
    assert agent.api("GET", "/invoices", "bad", network=None).status_code == 401


def test_x_network_is_checked_for_api_keys_too(agent: Agent, provider: Provider) -> None:
    response = agent.api("GET", "/invoices", authorization=provider.api_key_for(provider.user), network="prod")
    assert response.status_code == 400


# -- scopes and organizations --------------------------------------------------------------
def test_organizations_need_user_read(agent: Agent, login: Callable[..., Login], provider: Provider) -> None:
    without = login(scope="openid offline_access").access_token
    response = agent.api("GET", "/users/organizations", without)
    assert response.status_code == 403
    params = challenge_params(response)
    assert (params["error"], params["scope"]) == ("insufficient_scope", "user:read")
    assert "user:read" in response.json()["message"]
    assert list(provider.journal)[-1].facts["insufficient_scope"] == "user:read"


def test_organizations_with_user_read(agent: Agent, token: str, provider: Provider) -> None:
    response = agent.api("GET", "/users/organizations", token)
    assert response.status_code == 200
    assert response.json() == [{"id": ACME_ORG.id, "name": ACME_ORG.name}]
    assert list(provider.journal)[-1].facts["organizations_listed"] is True


def test_user_read_only_matters_for_organizations(agent: Agent, login: Callable[..., Login]) -> None:
    without = login(scope="openid offline_access").access_token
    assert agent.api("GET", "/invoices", without).status_code == 200


def test_x_organization_of_a_member(agent: Agent, token: str, provider: Provider) -> None:
    response = agent.api("GET", "/invoices", token, headers={"X-Organization": ACME_ORG.id})
    assert response.status_code == 200
    assert {i["owner"] for i in response.json()} == {ACME_ORG.id}
    assert list(provider.journal)[-1].facts["organization"] == ACME_ORG.id


def test_x_organization_of_a_stranger(agent: Agent, token: str, provider: Provider) -> None:
    response = agent.api("GET", "/invoices", token, headers={"X-Organization": "64aaaaaaaaaaaaaaaaaaaaaa"})
    assert response.status_code == 403 and "not a member" in response.json()["message"]
    assert list(provider.journal)[-1].facts["org_denied"] == "64aaaaaaaaaaaaaaaaaaaaaa"


def test_x_organization_for_a_user_without_organizations(agent: Agent, provider: Provider,
                                                         login: Callable[..., Login]) -> None:
    provider.user = SOLO_USER
    token = login().access_token
    assert agent.api("GET", "/users/organizations", token).status_code == 403  # no user:read
    assert agent.api("GET", "/invoices", token, headers={"X-Organization": ACME_ORG.id}).status_code == 403
    assert agent.api("GET", "/users", token).json()["organization"] is None


def test_x_organization_with_client_credentials(agent: Agent, cc_token: Callable[..., str]) -> None:
    response = agent.api("GET", "/invoices", cc_token(), headers={"X-Organization": ACME_ORG.id})
    assert response.status_code == 403


def test_organization_data_is_written_there(agent: Agent, token: str) -> None:
    org = {"X-Organization": ACME_ORG.id}
    created = agent.api("POST", "/invoices", token, headers=org, json={"invoiceItems": [{"name": "x"}]}).json()
    assert created["owner"] == ACME_ORG.id
    assert agent.api("GET", f"/invoices/{created['id']}", token, headers=org).status_code == 200
    assert agent.api("GET", f"/invoices/{created['id']}", token).status_code == 404


# -- rate limit headers ---------------------------------------------------------------------
def test_rate_limit_headers(agent: Agent, token: str) -> None:
    first = agent.api("GET", "/invoices", token)
    second = agent.api("GET", "/currency", token)
    assert first.headers["x-rate-limit-limit"] == "15000"
    assert int(first.headers["x-rate-limit-remaining"]) - int(second.headers["x-rate-limit-remaining"]) == 1
    reset = int(first.headers["x-rate-limit-reset"])
    assert reset % 3600 == 0 and 0 < reset - time.time() <= 3600


def test_rate_limit_headers_on_errors_too(agent: Agent, token: str) -> None:
    for response in (agent.api("GET", "/invoices"), agent.api("GET", "/invoices", token, network="prod"),
                     agent.api("GET", "/nowhere", token), agent.api("DELETE", "/invoices", token)):
        assert response.headers["x-rate-limit-limit"] == "15000", response


def test_rate_limit_counts_per_credential(agent: Agent, token: str, login: Callable[..., Login]) -> None:
    agent.api("GET", "/invoices", token)
    fresh = agent.api("GET", "/invoices", login().access_token)
    assert fresh.headers["x-rate-limit-remaining"] == "14999"


# -- endpoints ------------------------------------------------------------------------------
def test_invoice_lifecycle(agent: Agent, token: str, provider: Provider) -> None:
    created = agent.api("POST", "/invoices", token, json={"invoiceNumber": "42", "invoiceItems": [{"name": "A"}]})
    assert created.status_code == 201
    invoice = created.json()
    assert (invoice["invoiceNumber"], invoice["network"], invoice["owner"]) == ("42", "test", provider.user.sub)
    assert any(e.facts.get("invoice_created") for e in provider.journal)
    got = agent.api("GET", f"/invoices/{invoice['id']}", token)
    assert got.status_code == 200 and got.json()["id"] == invoice["id"]
    on_chain = agent.api("POST", f"/invoices/{invoice['id']}", token)
    assert on_chain.status_code == 201 and on_chain.json()["requestId"].startswith("01")
    change = agent.api("POST", f"/invoices/{invoice['id']}/changes", token, json={"type": "declarePayment"})
    assert change.status_code == 201 and change.json()["invoiceId"] == invoice["id"]
    assert agent.api("GET", f"/invoices/{invoice['id']}", token, network="live").status_code == 404


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/invoices", {"invoiceItems": []}),
    ("POST", "/invoices", {}),
    ("POST", "/invoices", ["not", "an", "object"]),
    ("POST", "/invoices/000000000000000000000001/changes", {"type": "delete"}),
])
def test_bad_bodies(agent: Agent, token: str, method: str, path: str, body: object) -> None:
    response = agent.api(method, path, token, json=body)
    assert response.status_code == 400 and isinstance(response.json()["message"], str)


def test_non_json_body(agent: Agent, token: str) -> None:
    response = agent.api("POST", "/clients", token, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    deep = agent.api("POST", "/clients", token, content=b"[" * 50_000)
    assert deep.status_code == 400


@pytest.mark.parametrize(("method", "path"), [("GET", "/invoices/nope"), ("POST", "/invoices/nope"),
                                              ("POST", "/invoices/nope/changes")])
def test_unknown_invoice(agent: Agent, token: str, method: str, path: str) -> None:
    response = agent.api(method, path, token, json={"type": "addComment"})
    assert response.status_code == 404 and "not found" in response.json()["message"]


def test_clients(agent: Agent, token: str) -> None:
    assert agent.api("GET", "/clients", token).json() == []
    created = agent.api("POST", "/clients", token, json={"email": "ap@globex.example"})
    assert created.status_code == 201 and created.json()["email"] == "ap@globex.example"
    assert agent.api("GET", "/clients", token).json() == [created.json()]


def test_users(agent: Agent, token: str, provider: Provider) -> None:
    body = agent.api("GET", "/users", token).json()
    assert body["id"] == provider.user.sub and body["email"] == provider.user.email
    assert body["organization"] == {"id": ACME_ORG.id, "name": ACME_ORG.name}


def test_users_with_client_credentials(agent: Agent, cc_client: Client, cc_token: Callable[..., str]) -> None:
    body = agent.api("GET", "/users", cc_token()).json()
    assert body == {"id": f"{cc_client.client_id}@clients", "organization": None}


def test_currency(agent: Agent, token: str) -> None:
    currencies = agent.api("GET", "/currency", token).json()
    assert {"USDC-mainnet", "EUR"} <= {c["id"] for c in currencies}


def test_unknown_path_and_method(agent: Agent, token: str) -> None:
    missing = agent.api("GET", "/payments", token)
    assert missing.status_code == 404 and "message" in missing.json()
    wrong = agent.api("DELETE", "/invoices", token)
    assert wrong.status_code == 405 and "message" in wrong.json()


def test_trailing_slashes(agent: Agent, token: str) -> None:
    assert agent.api("GET", "/invoices/", token).status_code == 200
    assert agent.api("GET", "/users/organizations/", token).status_code == 200
