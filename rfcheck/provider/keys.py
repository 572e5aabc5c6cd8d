"""The signing keys of the mock authorization server, published as a JWKS."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass(frozen=True)
class SigningKey:
    """One RSA-2048 key pair with its key ID."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> "SigningKey":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid=secrets.token_urlsafe(12), private_key=key)

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def public_pem(self) -> bytes:
        """The public key as PEM, as an algorithm-confusion attacker would use it."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        """The public JWK, Auth0-shaped (RFC 7517 §4)."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}


class KeySet:
    """The published keys; the newest one signs. Rotation keeps the old key published."""

    def __init__(self, first: SigningKey | None = None) -> None:
        self._keys = [first or SigningKey.generate()]
        self._lock = threading.Lock()

    @property
    def current(self) -> SigningKey:
        return self._keys[-1]

    def rotate(self) -> SigningKey:
        """Sign with a new key from now on, as Auth0's signing key rotation does."""
        key = SigningKey.generate()
        with self._lock:
            self._keys.append(key)
        return key

    def find(self, kid: str | None) -> SigningKey | None:
        return next((k for k in self._keys if k.kid == kid), None)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document, newest key first."""
        return {"keys": [k.jwk() for k in reversed(self._keys)]}
