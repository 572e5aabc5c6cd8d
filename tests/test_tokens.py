"""Tests for rfcheck.provider.tokens: minting, claims, refresh families and bearer verdicts."""

from __future__ import annotations

import base64
import hashlib
import string

import jwt
import pytest

from rfcheck.provider.clock import Clock
from rfcheck.provider.keys import KeySet, SigningKey
from rfcheck.provider.tokens import (ACCESS_TOKEN_LIFETIME, AUDIENCE, ID_TOKEN_LIFETIME, TokenStore, half_hash,
                                     opaque)

ISSUER = "https://auth.request.finance/"
ISSUERS = frozenset({ISSUER})
USER = {"sub": "auth0|u1", "name": "Ada", "nickname": "ada", "email": "ada@example.com",
        "updated_at": "2026-10-01T09:00:00.000Z"}


@pytest.fixture
def store(keyset: KeySet) -> TokenStore:
    return TokenStore(Clock(), keyset)


def mint(store: TokenStore, scope: tuple[str, ...] = ("openid", "offline_access"), grant: str = "authorization_code"):
    return store.mint_access(issuer=ISSUER, client_id="client-1", sub="auth0|u1", scope=scope, grant=grant)


def test_half_hash_is_the_left_half_of_sha256_base64url() -> None:
    digest = hashlib.sha256(b"some-access-token").digest()
    expected = base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")
    assert half_hash("some-access-token") == expected
    assert len(expected) == 22


def test_opaque_tokens_use_unreserved_characters_and_differ() -> None:
    values = {opaque() for _ in range(20)}
    assert len(values) == 20
    allowed = set(string.ascii_letters + string.digits + "-_")
    assert all(set(v) <= allowed for v in values)


def test_access_token_claims(store: TokenStore, signing_key: SigningKey) -> None:
    record = mint(store, scope=("offline_access",))
    header = jwt.get_unverified_header(record.token)
    assert header["alg"] == "RS256" and header["kid"] == signing_key.kid
    claims = jwt.decode(record.token, signing_key.public_key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == "auth0|u1"
    assert claims["aud"] == "accounts"
    assert claims["azp"] == "client-1"
    assert claims["scope"] == "offline_access"
    assert claims["exp"] == claims["iat"] + ACCESS_TOKEN_LIFETIME == claims["iat"] + 86_400
    assert claims["jti"] == record.jti
    assert "gty" not in claims
    assert store.access[record.jti] is record


def test_openid_adds_the_userinfo_audience(store: TokenStore) -> None:
    claims = jwt.decode(mint(store).token, options={"verify_signature": False})
    assert claims["aud"] == ["accounts", ISSUER + "userinfo"]


def test_client_credentials_tokens_say_so(store: TokenStore) -> None:
    claims = jwt.decode(mint(store, scope=(), grant="client_credentials").token, options={"verify_signature": False})
    assert claims["gty"] == "client-credentials"
    assert claims["scope"] == ""


def test_access_tokens_are_unique(store: TokenStore) -> None:
    first, second = mint(store), mint(store)
    assert first.jti != second.jti and first.token != second.token


def test_id_claims(store: TokenStore) -> None:
    claims = store.id_claims(issuer=ISSUER, client_id="client-1", user=USER, scope=("openid", "profile", "email"),
                             nonce="n-1", access_token="at", code="cd")
    assert claims["iss"] == ISSUER and claims["aud"] == "client-1" and claims["sub"] == "auth0|u1"
    assert claims["exp"] == claims["iat"] + ID_TOKEN_LIFETIME
    assert claims["nonce"] == "n-1"
    assert claims["at_hash"] == half_hash("at") and claims["c_hash"] == half_hash("cd")
    assert claims["name"] == "Ada" and claims["email"] == "ada@example.com" and claims["email_verified"] is True


def test_id_claims_follow_the_scope_and_omit_absent_nonce(store: TokenStore) -> None:
    claims = store.id_claims(issuer=ISSUER, client_id="c", user=USER, scope=("openid",), nonce=None)
    assert not {"nonce", "at_hash", "c_hash", "name", "email"} & set(claims)


# -- refresh families -------------------------------------------------------------
def test_family_rotation(store: TokenStore) -> None:
    family = store.new_family("client-1", "auth0|u1", ("offline_access",))
    first = family.current
    second = store.rotate(family)
    assert second != first and family.current == second
    assert family.tokens == [first, second]
    assert store.find_refresh(first) is family and store.find_refresh(second) is family
    assert store.find_refresh("nope") is None
    assert store.families[family.id] is family


def test_revoke_family_keeps_the_first_reason(store: TokenStore) -> None:
    family = store.new_family("client-1", "auth0|u1", ("offline_access",))
    store.revoke_family(family, "rotated refresh token reused")
    store.revoke_family(family, "revoked by the client")
    assert family.revoked and family.revoked_because == "rotated refresh token reused"


# -- verdicts -------------------------------------------------------------------------
def test_valid_token(store: TokenStore) -> None:
    record = mint(store)
    verdict = store.verify_access(record.token, ISSUERS)
    assert verdict.valid and verdict.record is record


def test_expired_by_the_clock(store: TokenStore) -> None:
    record = mint(store)
    store.clock.travel(ACCESS_TOKEN_LIFETIME - 60)
    assert store.verify_access(record.token, ISSUERS).valid
    store.clock.travel(61)
    assert store.verify_access(record.token, ISSUERS).status == "expired"


def test_revoked(store: TokenStore) -> None:
    record = mint(store)
    record.revoked = True
    assert store.verify_access(record.token, ISSUERS).status == "revoked"


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9"])
def test_malformed(store: TokenStore, token: str) -> None:
    assert store.verify_access(token, ISSUERS).status == "malformed"


def test_signed_by_another_key_with_our_kid(store: TokenStore, signing_key: SigningKey) -> None:
    other = SigningKey.generate()
    claims = jwt.decode(mint(store).token, options={"verify_signature": False})
    forged = jwt.encode(claims, other.private_key, algorithm="RS256", headers={"kid": signing_key.kid})
    assert store.verify_access(forged, ISSUERS).status == "bad_signature"


def test_hs256_and_unknown_kid_are_bad_signatures(store: TokenStore, signing_key: SigningKey) -> None:
    claims = jwt.decode(mint(store).token, options={"verify_signature": False})
    hs = jwt.encode(claims, "secret-of-32-bytes-at-least-xxxxx", algorithm="HS256", headers={"kid": signing_key.kid})
    assert store.verify_access(hs, ISSUERS).status == "bad_signature"
    unknown_kid = jwt.encode(claims, signing_key.private_key, algorithm="RS256", headers={"kid": "other"})
    assert store.verify_access(unknown_kid, ISSUERS).status == "bad_signature"


def test_not_issued_here(store: TokenStore) -> None:
    claims = jwt.decode(mint(store).token, options={"verify_signature": False})
    assert store.verify_access(store.sign({**claims, "jti": "never-minted"}), ISSUERS).status == "unknown"
    assert store.verify_access(store.sign({**claims, "iss": "https://evil.example/"}), ISSUERS).status == "unknown"


def test_wrong_audience(store: TokenStore) -> None:
    record = mint(store)
    claims = jwt.decode(record.token, options={"verify_signature": False})
    verdict = store.verify_access(store.sign({**claims, "aud": "https://other-api"}), ISSUERS)
    assert verdict.status == "wrong_audience" and not verdict.valid


def test_tokens_signed_before_a_rotation_stay_valid(store: TokenStore) -> None:
    before = mint(store)
    store.keys.rotate()
    after = mint(store)
    assert jwt.get_unverified_header(after.token)["kid"] != jwt.get_unverified_header(before.token)["kid"]
    assert store.verify_access(before.token, ISSUERS).valid
    assert store.verify_access(after.token, ISSUERS).valid


def test_other_spellings_of_a_token_are_refused_even_by_a_lenient_pyjwt(store: TokenStore,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # pyjwt < 2.14 decodes base64url leniently (ignores unused bits, accepts '+' '/'): the
    # store must not depend on that. Simulate the older decoder and tamper with the last bits.
    monkeypatch.setattr(jwt.api_jws.PyJWS, "_decode_base64url_segment",
                        staticmethod(lambda segment, name: jwt.utils.base64url_decode(segment)), raising=False)
    token = mint(store).token
    alphabet = string.ascii_letters + string.digits + "-_"
    last = alphabet.index(token[-1])
    same_bytes = alphabet[last ^ 1]  # a 2048-bit signature leaves 4 unused bits in its last character
    respelled = token[:-1] + same_bytes
    assert jwt.utils.base64url_decode(respelled.split(".")[2]) == jwt.utils.base64url_decode(token.split(".")[2])
    assert store.verify_access(respelled, ISSUERS).status == "bad_signature"
