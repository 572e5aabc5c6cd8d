"""What a scenario can make the mock do wrong, on purpose.

Each ID-token fault produces the defective token that one OIDC requirement is
about (the OpenID conformance suite's ``oidcc-client-test-*`` cases); the other
knobs make the token endpoint slow or unavailable and withhold scopes at consent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from rfcheck.provider.keys import KeySet

WRONG_ISSUER = "https://login.example.com/"
WRONG_AUDIENCE = "some-other-client"
EXPIRED_BY = 600  # seconds: well past every client's clock tolerance (about 30 s)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _flip_signature(token: str) -> str:
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{_b64(bytes(raw))}"


def _alg_none(claims: dict[str, Any], keys: KeySet) -> str:
    return _segments({"alg": "none", "typ": "JWT"}, claims) + "."


def _hs256_with_public_key(claims: dict[str, Any], keys: KeySet) -> str:
    # Algorithm confusion: HMAC keyed with the PEM of the published RSA key.
    signing_input = _segments({"alg": "HS256", "typ": "JWT", "kid": keys.current.kid}, claims)
    mac = hmac.new(keys.current.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


ClaimEdit = Callable[[dict[str, Any]], dict[str, Any]]


def _without(name: str) -> ClaimEdit:
    return lambda claims: {k: v for k, v in claims.items() if k != name}


def _expired(claims: dict[str, Any]) -> dict[str, Any]:
    iat = claims["iat"] - 2 * EXPIRED_BY
    return {**claims, "iat": iat, "auth_time": iat, "exp": claims["iat"] - EXPIRED_BY}


# ID-token faults that change claims; the token is then signed correctly.
CLAIM_FAULTS: dict[str, ClaimEdit] = {
    "wrong_iss": lambda c: {**c, "iss": WRONG_ISSUER},
    "wrong_aud": lambda c: {**c, "aud": WRONG_AUDIENCE},
    "expired": _expired,
    "wrong_nonce": lambda c: {**c, "nonce": "n-" + hashlib.sha256(str(c.get("nonce")).encode()).hexdigest()[:16]},
    "missing_sub": _without("sub"),
    "missing_iat": _without("iat"),
}
# ID-token faults that change how the token is signed.
SIGNING_FAULTS: dict[str, Callable[[dict[str, Any], KeySet], str]] = {
    "alg_none": _alg_none,
    "hs256_public_key": _hs256_with_public_key,
}
ID_TOKEN_FAULTS = frozenset({"bad_signature", *CLAIM_FAULTS, *SIGNING_FAULTS})
REFRESH_ID_TOKEN_FAULTS = frozenset({"changed_iss", "changed_sub"})


def make_id_token(claims: dict[str, Any], keys: KeySet, sign: Callable[[dict[str, Any]], str],
                  fault: str | None) -> str:
    """The ID token for ``claims``, with ``fault`` (one of :data:`ID_TOKEN_FAULTS`) applied."""
    if fault is None:
        return sign(claims)
    if fault in CLAIM_FAULTS:
        return sign(CLAIM_FAULTS[fault](claims))
    if fault in SIGNING_FAULTS:
        return SIGNING_FAULTS[fault](claims, keys)
    if fault == "bad_signature":
        return _flip_signature(sign(claims))
    raise ValueError(f"unknown ID token fault {fault!r}; expected one of {sorted(ID_TOKEN_FAULTS)}")


def change_identity(claims: dict[str, Any], fault: str) -> dict[str, Any]:
    """OIDC Core §12.2 fault: a refresh-response ID token whose ``iss`` or ``sub`` changed."""
    if fault == "changed_iss":
        return {**claims, "iss": WRONG_ISSUER}
    if fault == "changed_sub":
        return {**claims, "sub": claims["sub"] + "-other"}
    raise ValueError(f"unknown refresh ID token fault {fault!r}; expected one of {sorted(REFRESH_ID_TOKEN_FAULTS)}")


@dataclass(frozen=True)
class TokenEndpointFailure:
    """One answer the token endpoint gives instead of serving the request."""

    status: int
    retry_after: int | None = None


@dataclass
class Faults:
    """The knobs a scenario turns; all off by default."""

    id_token: str | None = None
    refresh_id_token: str | None = None
    withheld_scopes: frozenset[str] = frozenset()
    token_delay: float = 0.0
    _failures: deque[TokenEndpointFailure] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.id_token is not None and self.id_token not in ID_TOKEN_FAULTS:
            raise ValueError(f"unknown ID token fault {self.id_token!r}; expected one of {sorted(ID_TOKEN_FAULTS)}")
        if self.refresh_id_token is not None and self.refresh_id_token not in REFRESH_ID_TOKEN_FAULTS:
            raise ValueError(f"unknown refresh ID token fault {self.refresh_id_token!r}")

    def fail_token_endpoint(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next ``times`` token requests with ``status`` (429 or 5xx)."""
        with self._lock:
            self._failures.extend(TokenEndpointFailure(status, retry_after) for _ in range(times))

    def pending_token_failures(self) -> tuple[TokenEndpointFailure, ...]:
        with self._lock:
            return tuple(self._failures)

    def clear_token_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def next_token_failure(self) -> TokenEndpointFailure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None
