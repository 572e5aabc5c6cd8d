"""Tests for rfcheck.provider.keys: RSA-2048 signing keys, the JWKS and rotation."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from rfcheck.provider.keys import KeySet, SigningKey


def test_signing_key_is_rsa_2048(signing_key: SigningKey) -> None:
    assert signing_key.private_key.key_size == 2048
    assert signing_key.public_key.public_numbers().e == 65537


def test_jwk_is_a_public_rs256_signing_key(signing_key: SigningKey) -> None:
    jwk = signing_key.jwk()
    assert jwk["kty"] == "RSA"
    assert jwk["alg"] == "RS256"
    assert jwk["use"] == "sig"
    assert jwk["kid"] == signing_key.kid
    assert {"n", "e"} <= set(jwk)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk), "private parts must never be published"


def test_jwk_verifies_what_the_private_key_signs(signing_key: SigningKey) -> None:
    token = jwt.encode({"sub": "x"}, signing_key.private_key, algorithm="RS256")
    public = jwt.PyJWK(signing_key.jwk()).key
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"sub": "x"}


def test_public_pem_is_the_public_key(signing_key: SigningKey) -> None:
    pem = signing_key.public_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    loaded = serialization.load_pem_public_key(pem)
    assert loaded.public_numbers() == signing_key.public_key.public_numbers()  # type: ignore[union-attr]


def test_keyset_publishes_its_one_key(keyset: KeySet, signing_key: SigningKey) -> None:
    assert keyset.current is signing_key
    assert [k["kid"] for k in keyset.jwks()["keys"]] == [signing_key.kid]


def test_find_by_kid(keyset: KeySet, signing_key: SigningKey) -> None:
    assert keyset.find(signing_key.kid) is signing_key
    assert keyset.find("no-such-kid") is None
    assert keyset.find(None) is None


def test_rotation_signs_with_a_new_key_and_keeps_the_old_one_published(keyset: KeySet,
                                                                       signing_key: SigningKey) -> None:
    new = keyset.rotate()
    assert keyset.current is new
    assert new.kid != signing_key.kid
    assert [k["kid"] for k in keyset.jwks()["keys"]] == [new.kid, signing_key.kid]  # newest first
    assert keyset.find(signing_key.kid) is signing_key


def test_signing_key_is_immutable(signing_key: SigningKey) -> None:
    with pytest.raises(AttributeError):
        signing_key.kid = "changed"  # type: ignore[misc]
