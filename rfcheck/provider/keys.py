"""The signing keys of the mock authorization server, published as a JWKS."""

from __future__ import annotations

import collections
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
        """A new key pair, never handed out before (from :data:`POOL` when it has one ready)."""
        return cls(kid=secrets.token_urlsafe(12), private_key=POOL.take())

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


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class KeyPool:
    """RSA-2048 key pairs made ahead of need, on a thread of their own (about 50 ms each, outside the GIL), so
    that a scenario that rotates its signing key, or the next run's first key, does not wait for one. Every key
    leaves the pool once: no two key sets, of one scenario or of two, ever hold the same key."""

    def __init__(self, spares: int = 1) -> None:
        self.spares = spares
        self._ready: collections.deque[rsa.RSAPrivateKey] = collections.deque()
        self._lock = threading.Lock()
        self._filling = False

    def take(self) -> rsa.RSAPrivateKey:
        """A key from the pool, or a new one made now when none is ready; the pool then fills again behind."""
        with self._lock:
            key = self._ready.popleft() if self._ready else None
        self.fill()
        return key if key is not None else _new_rsa_key()

    def fill(self) -> None:
        """Make keys in the background until :attr:`spares` are ready (a thread that ends when they are)."""
        with self._lock:
            if self._filling or len(self._ready) >= self.spares:
                return
            self._filling = True
        # never a daemon (a thread inherits that from the one starting it, often a server's): a key half made by
        # OpenSSL when the interpreter exits would abort it; a key takes ~50 ms
        threading.Thread(target=self._fill, name="rfcheck-keys", daemon=False).start()

    def _fill(self) -> None:
        try:
            while True:
                with self._lock:
                    if len(self._ready) >= self.spares:
                        self._filling = False  # in the same hold as the count: a take() after it fills again
                        return
                key = _new_rsa_key()
                with self._lock:
                    self._ready.append(key)
        except BaseException:
            with self._lock:
                self._filling = False
            raise


POOL = KeyPool()


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
