"""Who exists at the mock Request Finance: registered OAuth clients and users."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote

from rfcheck.facts import FLOWS


def credential(prefix: str, nbytes: int) -> str:
    """Client IDs and secrets use the unreserved characters only, so no client mis-encodes them."""
    return prefix + secrets.token_urlsafe(nbytes).replace("-", "x").replace("_", "Z")


@dataclass(frozen=True)
class Client:
    """An OAuth app registered in a Request Finance account's Apps section."""

    client_id: str
    client_secret: str
    flow: str
    redirect_uris: tuple[str, ...] = ()
    name: str = "integration"

    @classmethod
    def register(cls, flow: str, redirect_uris: tuple[str, ...] = (), name: str = "integration") -> "Client":
        if flow not in FLOWS:
            raise ValueError(f"unknown flow {flow!r}; expected one of {', '.join(FLOWS)}")
        return cls(credential("rfc_", 18), credential("", 36), flow, redirect_uris, name)

    @property
    def subject(self) -> str:
        """The ``sub`` of client credentials tokens (Auth0: ``<client_id>@clients``)."""
        return f"{self.client_id}@clients"


@dataclass(frozen=True)
class Organization:
    id: str
    name: str


@dataclass(frozen=True)
class User:
    """The person who logs in at the mock's authorization page."""

    sub: str
    name: str
    email: str
    organizations: tuple[Organization, ...] = field(default=())

    @property
    def nickname(self) -> str:
        return self.email.split("@")[0]

    def claims(self) -> dict[str, str | int]:
        return {"sub": self.sub, "name": self.name, "nickname": self.nickname,
                "email": self.email, "updated_at": "2026-10-01T09:00:00.000Z"}

    def belongs_to(self, organization_id: str) -> bool:
        return any(o.id == organization_id for o in self.organizations)


ACME_ORG = Organization(id="6542a1b0c3d4e5f6a7b8c9d0", name="Acme Treasury")
DEFAULT_USER = User(sub="auth0|65f1c0ffee0000000000a1", name="Ada Keller",
                    email="ada.keller@example.com", organizations=(ACME_ORG,))
SOLO_USER = User(sub="auth0|65f1c0ffee0000000000b2", name="Bo Lindqvist",
                 email="bo.lindqvist@example.com")


def basic_forms(client_id: str, secret: str) -> set[str]:
    """The client secret as a Basic credential: raw, URL-encoded (RFC 6749 §2.3.1) and fully percent-encoded."""
    pairs = {(client_id, secret), (quote(client_id), quote(secret)),
             (quote(client_id, safe=""), quote(secret, safe=""))}
    return {base64.b64encode(f"{i}:{s}".encode()).decode() for i, s in pairs}
