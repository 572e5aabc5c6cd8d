"""Tests for rfcheck.provider.faults: each defective ID token is rejected by a careful
relying party (pyjwt with RS256 + audience + issuer) for exactly the intended reason,
and the token endpoint failures come and go as configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.provider.faults import (EXPIRED_BY, ID_TOKEN_FAULTS, REFRESH_ID_TOKEN_FAULTS, WRONG_AUDIENCE,
                                     WRONG_ISSUER, Faults, change_identity, make_id_token)
from tests.helpers import ISSUER, Agent, Login, redirect_params, unverified

NONCE = "nonce-sent-by-the-client"

# fault -> (the error pyjwt raises, the verification options under which the token is otherwise fine)
EXPECTED: dict[str, tuple[type[Exception], dict[str, Any]]] = {
    "bad_signature": (jwt.InvalidSignatureError, {}),
    "alg_none": (jwt.InvalidAlgorithmError, {}),
    "hs256_public_key": (jwt.InvalidAlgorithmError, {}),
    "wrong_iss": (jwt.InvalidIssuerError, {"issuer": WRONG_ISSUER}),
    "wrong_aud": (jwt.InvalidAudienceError, {"audience": WRONG_AUDIENCE}),
    "expired": (jwt.ExpiredSignatureError, {"options": {"verify_exp": False}}),
    "wrong_nonce": (AssertionError, {}),
    "missing_sub": (jwt.MissingRequiredClaimError, {"options": {"require": ["iss", "aud", "exp", "iat"]}}),
    "missing_iat": (jwt.MissingRequiredClaimError, {"options": {"require": ["iss", "sub", "aud", "exp"]}}),
}


def test_every_fault_is_covered() -> None:
    assert set(EXPECTED) == ID_TOKEN_FAULTS


def verify(agent: Agent, token: str, client: Client, *, issuer: str = ISSUER, audience: str | None = None,
           options: dict[str, Any] | None = None) -> dict[str, Any]:
    """RS256 against the JWKS, audience, issuer, required claims, then the nonce (the RP's own check)."""
    keys = agent.jwks()["keys"]
    kid = jwt.get_unverified_header(token).get("kid")
    jwk = next((k for k in keys if k["kid"] == kid), keys[0])  # no kid (alg none): the newest key
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=audience or client.client_id,
                        issuer=issuer, leeway=30,
                        options=options or {"require": ["iss", "sub", "aud", "exp", "iat"]})
    assert claims.get("nonce") == NONCE, "nonce mismatch"
    return dict(claims)


def faulty_login(provider: Provider, login: Callable[..., Login], fault: str) -> Login:
    provider.faults.id_token = fault
    return login(nonce=NONCE)


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_id_token_fault_is_rejected_for_its_reason(fault: str, provider: Provider, agent: Agent,
                                                   code_client: Client, login: Callable[..., Login]) -> None:
    error, relaxed = EXPECTED[fault]
    token = faulty_login(provider, login, fault).id_token
    with pytest.raises(error) as raised:
        verify(agent, token, code_client)
    if fault.startswith("missing_"):
        assert raised.value.claim == fault.removeprefix("missing_")  # type: ignore[attr-defined]
    if relaxed:  # only the intended defect: with that one check relaxed, the token verifies
        verify(agent, token, code_client, **relaxed)


def test_the_unfaulted_token_verifies(agent: Agent, code_client: Client, login: Callable[..., Login]) -> None:
    assert verify(agent, login(nonce=NONCE).id_token, code_client)["nonce"] == NONCE


def test_fault_is_noted_in_the_journal(provider: Provider, login: Callable[..., Login]) -> None:
    faulty_login(provider, login, "wrong_iss")
    assert [e.facts["id_token_fault"] for e in provider.journal if "id_token_fault" in e.facts] == ["wrong_iss"]


def test_bad_signature_changes_only_the_signature(provider: Provider, login: Callable[..., Login]) -> None:
    token = faulty_login(provider, login, "bad_signature").id_token
    claims = unverified(token)
    assert claims["nonce"] == NONCE and claims["iss"] == ISSUER


def test_alg_none_is_unsigned(provider: Provider, login: Callable[..., Login]) -> None:
    token = faulty_login(provider, login, "alg_none").id_token
    assert token.endswith(".")
    assert jwt.get_unverified_header(token)["alg"] == "none"


def test_hs256_fault_is_a_real_algorithm_confusion(provider: Provider, login: Callable[..., Login]) -> None:
    token = faulty_login(provider, login, "hs256_public_key").id_token
    signing_input, signature = token.rsplit(".", 1)
    mac = hmac.new(provider.keys.current.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == signature
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_expired_is_well_past_clock_tolerance(provider: Provider, login: Callable[..., Login]) -> None:
    claims = unverified(faulty_login(provider, login, "expired").id_token)
    assert claims["exp"] <= time.time() - EXPIRED_BY + 5
    assert claims["exp"] > claims["iat"]


def test_wrong_nonce_differs_from_the_one_sent(provider: Provider, login: Callable[..., Login]) -> None:
    assert unverified(faulty_login(provider, login, "wrong_nonce").id_token)["nonce"] != NONCE


def test_front_channel_id_token_gets_the_fault_too(provider: Provider, agent: Agent, code_client: Client) -> None:
    provider.faults.id_token = "wrong_aud"
    response = agent.authorize(code_client, response_type="id_token", nonce=NONCE, scope="openid")
    token = redirect_params(response)["id_token"]
    with pytest.raises(jwt.InvalidAudienceError):
        verify(agent, token, code_client)


@pytest.mark.parametrize(("fault", "claim"), [("changed_iss", "iss"), ("changed_sub", "sub")])
def test_refresh_id_token_identity_change(fault: str, claim: str, provider: Provider, agent: Agent,
                                          code_client: Client, login: Callable[..., Login]) -> None:
    first = login()
    provider.faults.refresh_id_token = fault
    response = agent.refresh(code_client, first.refresh_token)
    assert response.status_code == 200
    refreshed = unverified(response.json()["id_token"])
    original = unverified(first.id_token)
    assert refreshed[claim] != original[claim]
    other = "sub" if claim == "iss" else "iss"
    assert refreshed[other] == original[other]
    assert any(e.facts.get("id_token_fault") == fault for e in provider.journal)


def test_refresh_id_token_is_unchanged_without_fault(agent: Agent, code_client: Client,
                                                     login: Callable[..., Login]) -> None:
    first = login()
    refreshed = agent.refresh(code_client, first.refresh_token).json()["id_token"]
    assert (unverified(refreshed)["iss"], unverified(refreshed)["sub"]) == (
        unverified(first.id_token)["iss"], unverified(first.id_token)["sub"])
    assert "nonce" not in unverified(refreshed)


# -- unit level ---------------------------------------------------------------------
def test_change_identity() -> None:
    claims = {"iss": ISSUER, "sub": "auth0|x"}
    assert change_identity(claims, "changed_iss") == {"iss": WRONG_ISSUER, "sub": "auth0|x"}
    assert change_identity(claims, "changed_sub") == {"iss": ISSUER, "sub": "auth0|x-other"}
    with pytest.raises(ValueError, match="unknown refresh ID token fault"):
        change_identity(claims, "nope")
    assert REFRESH_ID_TOKEN_FAULTS == {"changed_iss", "changed_sub"}


def test_unknown_faults_are_refused(provider: Provider) -> None:
    with pytest.raises(ValueError, match="unknown ID token fault"):
        Faults(id_token="nope")
    with pytest.raises(ValueError, match="unknown refresh ID token fault"):
        Faults(refresh_id_token="changed_aud")
    with pytest.raises(ValueError, match="unknown ID token fault"):
        make_id_token({"sub": "x"}, provider.keys, provider.tokens.sign, "nope")


def test_token_endpoint_failures_are_served_in_order() -> None:
    faults = Faults()
    assert faults.next_token_failure() is None
    faults.fail_token_endpoint(429, times=2, retry_after=7)
    faults.fail_token_endpoint(503)
    served = [faults.next_token_failure() for _ in range(4)]
    assert [(f.status, f.retry_after) if f else None for f in served] == [(429, 7), (429, 7), (503, None), None]
