"""Minting and verifying the tokens the mock issues, and the refresh token families.

Access and ID tokens are RS256 JWTs (Auth0-shaped claims); refresh tokens are
opaque strings grouped in families so that rotation and reuse detection work as
with Auth0's refresh token rotation.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from rfcheck.provider.clock import Clock
from rfcheck.provider.keys import KeySet, SigningKey

from rfcheck.facts import ACCESS_TOKEN_LIFETIME, AUDIENCE, ID_TOKEN_LIFETIME  # noqa: F401  (re-exported)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def half_hash(value: str) -> str:
    """``at_hash`` / ``c_hash`` for RS256 (OIDC Core §3.1.3.6): left half of SHA-256, base64url."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _canonical(token: str) -> bool:
    """Each segment is base64url without padding and with zero unused bits: one spelling per token."""
    for segment in token.split("."):
        if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
            return False
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
            return False
    return True


def opaque(nbytes: int = 32) -> str:
    """A random token from the unreserved characters only (RFC 6749 §2.3.1 friendly)."""
    return secrets.token_urlsafe(nbytes)


@dataclass
class AccessRecord:
    """What the mock knows about an access token it issued."""

    jti: str
    token: str
    client_id: str
    sub: str
    scope: tuple[str, ...]
    audience: str
    exp: float
    grant: str
    family: str | None = None
    revoked: bool = False


@dataclass
class RefreshFamily:
    """The refresh tokens descending from one authorization (Auth0 rotation)."""

    id: str
    client_id: str
    sub: str
    scope: tuple[str, ...]
    tokens: list[str] = field(default_factory=list)
    revoked: bool = False
    revoked_because: str = ""

    @property
    def current(self) -> str:
        return self.tokens[-1]


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a bearer token: ``status`` is ``valid`` or why it is not."""

    status: str
    record: AccessRecord | None = None
    description: str = ""

    @property
    def valid(self) -> bool:
        return self.status == "valid"


class TokenStore:
    """Mints tokens, remembers every one, and judges the ones presented back."""

    def __init__(self, clock: Clock, keys: KeySet) -> None:
        self.clock = clock
        # ID tokens are checked by the client against its own clock: when the target's
        # clock cannot follow time travel, they are dated by the real time instead.
        self.id_token_clock = clock
        self.keys = keys
        self.access: dict[str, AccessRecord] = {}
        self.families: dict[str, RefreshFamily] = {}
        self._refresh_index: dict[str, RefreshFamily] = {}
        self._lock = threading.Lock()
        # bearer tokens whose signature was checked: the key that signed each, and its claims
        self._verified: dict[str, tuple[SigningKey, dict[str, Any]]] = {}
        # a shared world (rfcheck.world): tokens the run's other mocks issued are Request Finance's too
        self.siblings: Callable[[], Iterable["TokenStore"]] | None = None

    # -- signing ------------------------------------------------------------
    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.current
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})

    def mint_access(self, *, issuer: str, client_id: str, sub: str, scope: tuple[str, ...],
                    grant: str, family: str | None = None) -> AccessRecord:
        """An RS256 access token for audience ``accounts`` that lives 24 h."""
        now = int(self.clock.now())
        jti = opaque(12)
        audience: str | list[str] = AUDIENCE
        if "openid" in scope:  # Auth0 adds its userinfo audience when openid was granted
            audience = [AUDIENCE, f"{issuer}userinfo"]
        claims: dict[str, Any] = {"iss": issuer, "sub": sub, "aud": audience, "azp": client_id,
                  "scope": " ".join(scope), "iat": now, "exp": now + ACCESS_TOKEN_LIFETIME,
                  "jti": jti}
        if grant == "client_credentials":
            claims["gty"] = "client-credentials"
        record = AccessRecord(jti=jti, token=self.sign(claims), client_id=client_id, sub=sub,
                              scope=scope, audience=AUDIENCE, exp=now + ACCESS_TOKEN_LIFETIME, grant=grant,
                              family=family)
        with self._lock:
            self.access[jti] = record
        return record

    def id_claims(self, *, issuer: str, client_id: str, user: dict[str, Any],
                  scope: tuple[str, ...], nonce: str | None, access_token: str | None = None,
                  code: str | None = None) -> dict[str, Any]:
        """The claims of an ID token (OIDC Core §2), before any fault is applied."""
        now = int(self.id_token_clock.now())
        claims: dict[str, Any] = {"iss": issuer, "sub": user["sub"], "aud": client_id,
                                  "iat": now, "exp": now + ID_TOKEN_LIFETIME, "auth_time": now}
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = half_hash(access_token)
        if code:
            claims["c_hash"] = half_hash(code)
        if "profile" in scope:
            claims.update(name=user["name"], nickname=user["nickname"], updated_at=user["updated_at"])
        if "email" in scope:
            claims.update(email=user["email"], email_verified=True)
        return claims

    # -- refresh families ---------------------------------------------------
    def new_family(self, client_id: str, sub: str, scope: tuple[str, ...]) -> RefreshFamily:
        family = RefreshFamily(id=opaque(9), client_id=client_id, sub=sub, scope=scope)
        self.rotate(family)
        with self._lock:
            self.families[family.id] = family
        return family

    def rotate(self, family: RefreshFamily) -> str:
        """Issue the family's next refresh token; the previous one is now rotated out."""
        token = opaque(36)
        with self._lock:
            family.tokens.append(token)
            self._refresh_index[token] = family
        return token

    def find_refresh(self, token: str) -> RefreshFamily | None:
        with self._lock:
            family = self._refresh_index.get(token)
        if family is None and self.siblings is not None:
            family = next((f for store in self.siblings() if store is not self
                           if (f := store.issued_refresh(token)) is not None), None)
            if family is not None:
                with self._lock:  # adopted: from now on this world's own
                    self.families[family.id] = family
                    self._refresh_index.update(dict.fromkeys(family.tokens, family))
        return family

    def issued_refresh(self, token: str) -> RefreshFamily | None:
        """The family of a refresh token this store issued itself (None when it did not)."""
        with self._lock:
            return self._refresh_index.get(token)

    def issued_access(self, jti: str) -> AccessRecord | None:
        """The record of an access token this store issued itself (None when it did not)."""
        with self._lock:
            return self.access.get(jti)

    def revoke_family(self, family: RefreshFamily, because: str) -> None:
        """Auth0 revokes every refresh token of a family at once (reuse detection, revocation)."""
        family.revoked = True
        family.revoked_because = family.revoked_because or because

    def _adopt(self, jti: str) -> AccessRecord | None:
        """An access token another mock of the run issued, taken into this shared world."""
        assert self.siblings is not None
        record = next((r for store in self.siblings() if store is not self if (r := store.issued_access(jti))), None)
        if record is not None:
            with self._lock:
                self.access[jti] = record
        return record

    # -- judging bearer tokens ----------------------------------------------
    def verify_access(self, token: str, issuers: frozenset[str]) -> Verdict:
        """Judge a bearer token the way the API does (RFC 6750 §3.1 ``invalid_token``). A client presents one
        token for many calls: its signature is checked once (~0.2 ms), while its key stays published; what
        changes between calls (revocation, expiry, the issuers) is judged every time."""
        verified = self._verified.get(token)
        if verified is not None and self.keys.find(verified[0].kid) is verified[0]:
            return self._judge_claims(verified[1], issuers)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return Verdict("malformed", description="The access token is malformed")
        if not _canonical(token):  # RFC 4648 §3.5: pyjwt < 2.14 accepts other spellings of a signature
            return Verdict("bad_signature", description="The access token signature is invalid")
        key = self.keys.find(header.get("kid"))
        if key is None or header.get("alg") != "RS256":
            return Verdict("bad_signature", description="The access token signature is invalid")
        try:
            claims = jwt.decode(token, key.public_key, algorithms=["RS256"],
                                options={"verify_exp": False, "verify_aud": False,
                                         "verify_iat": False, "verify_nbf": False})
        except jwt.PyJWTError:
            return Verdict("bad_signature", description="The access token signature is invalid")
        self._verified[token] = (key, claims)
        return self._judge_claims(claims, issuers)

    def _judge_claims(self, claims: dict[str, Any], issuers: frozenset[str]) -> Verdict:
        record = self.access.get(str(claims.get("jti")))
        if record is None and self.siblings is not None:
            record = self._adopt(str(claims.get("jti")))
        if record is not None and self.siblings is not None:
            issuers = issuers | {str(claims.get("iss"))}  # a shared world: another lane's issuer is Request Finance's
        if record is None or claims.get("iss") not in issuers:
            return Verdict("unknown", description="The access token was not issued here")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if AUDIENCE not in audiences:
            return Verdict("wrong_audience", record, "The access token is not for audience accounts")
        if record.revoked:
            return Verdict("revoked", record, "The access token was revoked")
        if self.clock.now() >= record.exp:
            return Verdict("expired", record, "The access token expired")
        return Verdict("valid", record)
