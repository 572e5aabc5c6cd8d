"""The mock's state: what its endpoints read and change, without the routing that calls them.

The endpoint modules (:mod:`~rfcheck.provider.oauth`, :mod:`~rfcheck.provider.api`,
:mod:`~rfcheck.provider.authorize`) serve a :class:`~rfcheck.provider.http.Call` whose ``provider`` is a
:class:`State`; :mod:`rfcheck.provider.app` routes requests to them. So the endpoints depend on the state
and the router on the endpoints, one way.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import httpx

from rfcheck.facts import API_HOST, AUTH_HOST
from rfcheck.journal import Journal, Secrets
from rfcheck.observed import ACCESS_TOKEN, API_KEY, BASIC_CREDENTIALS, CLIENT_SECRET, CODE, REFRESH_TOKEN, Issued
from rfcheck.provider.accounts import DEFAULT_USER, SOLO_USER, Client, User, basic_forms, credential
from rfcheck.provider.clock import Clock
from rfcheck.provider.data import ApiData
from rfcheck.provider.faults import Faults
from rfcheck.provider.keys import KeySet
from rfcheck.provider.tokens import RefreshFamily, TokenStore


@dataclass(frozen=True)
class Site:
    """One of the mock's hosts as the target reached it: ``auth`` or ``api``, and its base URL."""

    kind: str
    base: str

    @property
    def issuer(self) -> str:
        """The issuer string for this auth host: the base URL with its trailing slash (Auth0)."""
        return self.base.rstrip("/") + "/"


@dataclass
class AuthCode:
    """An authorization code and everything it is bound to."""

    code: str
    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    user: User
    nonce: str | None
    code_challenge: str | None
    issued_at: float
    exchange: int
    redeemed_at: float | None = None
    burned: bool = False
    access_jtis: list[str] = field(default_factory=list)
    families: list[RefreshFamily] = field(default_factory=list)



class State:
    """State of the mock service: clients, users, codes, tokens, faults, its hosts; what the endpoints
    read and change (:class:`rfcheck.provider.app.Provider` adds the handler that routes to them)."""

    def __init__(self, clock: Clock | None = None, keys: KeySet | None = None, secrets: Secrets | None = None) -> None:
        self.clock = clock or Clock()
        self.keys = keys or KeySet()
        self.journal = Journal(secrets)
        self.tokens = TokenStore(self.clock, self.keys)
        self.data = ApiData()
        self.faults = Faults()
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthCode] = {}
        self.user: User = DEFAULT_USER
        self.users = {u.sub: u for u in (DEFAULT_USER, SOLO_USER)}
        self.api_keys = {credential("rk_", 24): u for u in self.users.values()}
        for key in self.api_keys:
            self.journal.add_secret(key)
        self.errors: list[BaseException] = []
        self.notices: list[str] = []  # what the transport saw that is no exchange (a refused certificate)
        self._sites: dict[str, Site] = {}
        self._calls: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        self.add_site("auth", AUTH_HOST)
        self.add_site("api", API_HOST)

    # -- configuration -------------------------------------------------------
    def add_site(self, kind: str, base: str) -> Site:
        """Serve ``kind`` (``auth`` or ``api``) at ``base`` too (a loopback server's URL)."""
        site = Site(kind, base.rstrip("/"))
        self._sites[origin_of(httpx.URL(site.base))] = site
        return site

    @property
    def sites(self) -> list[Site]:
        return list(self._sites.values())

    def site_for(self, url: httpx.URL) -> Site | None:
        return self._sites.get(origin_of(url))

    @property
    def issuers(self) -> frozenset[str]:
        return frozenset(s.issuer for s in self._sites.values() if s.kind == "auth")

    def issued(self) -> Issued:
        """What this mock issued so far, in order: tokens, client secrets (raw and as Basic credentials), API
        keys and codes, and the clients with their redirect URIs (what the checks read of it)."""
        with self._lock:
            values = [(record.token, ACCESS_TOKEN) for record in list(self.tokens.access.values())]
            values += [(token, REFRESH_TOKEN) for family in list(self.tokens.families.values())
                       for token in family.tokens]
            for client in list(self.clients.values()):
                values.append((client.client_secret, CLIENT_SECRET))
                values += [(form, BASIC_CREDENTIALS) for form in sorted(basic_forms(client.client_id,
                                                                                      client.client_secret))]
            values += [(key, API_KEY) for key in self.api_keys]
            values += [(code, CODE) for code in list(self.codes)]
            clients = tuple((c.client_id, tuple(c.redirect_uris)) for c in list(self.clients.values()))
        return Issued(tuple(values), clients)

    def register_client(self, flow: str, redirect_uris: tuple[str, ...] = (), name: str = "integration") -> Client:
        return self.add_client(Client.register(flow, redirect_uris, name))

    def add_client(self, client: Client) -> Client:
        """Know ``client`` (registered elsewhere: a run's client, in each scenario's provider)."""
        self.clients[client.client_id] = client
        self.journal.add_secret(client.client_secret)
        for form in basic_forms(client.client_id, client.client_secret):
            self.journal.add_secret(form)
        return client

    def user_by_sub(self, sub: str) -> User:
        return self.users.get(sub, self.user)

    def api_key_for(self, user: User) -> str:
        return next(key for key, owner in self.api_keys.items() if owner == user)

    # -- scenario actions ------------------------------------------------------
    def revoke_access_tokens(self, client_id: str) -> int:
        """Revoke every live access token of a client (as an admin would); returns how many."""
        now = self.clock.now()
        live = [r for r in self.tokens.access.values()
                if r.client_id == client_id and not r.revoked and r.exp > now]
        for record in live:
            record.revoked = True
        return len(live)

    def revoke_refresh_families(self, client_id: str, because: str = "revoked by the user") -> int:
        families = [f for f in self.tokens.families.values() if f.client_id == client_id and not f.revoked]
        for family in families:
            self.tokens.revoke_family(family, because)
        return len(families)

    def revoke_code_grant(self, code: AuthCode) -> None:
        """RFC 6749 §4.1.2: revoke every token issued based on the code, refreshed ones included."""
        families = {family.id for family in code.families}
        for record in list(self.tokens.access.values()):
            if record.jti in code.access_jtis or (record.family is not None and record.family in families):
                record.revoked = True
        for family in code.families:
            self.tokens.revoke_family(family, "authorization code reused")

    def count_api_call(self, credential_header: str, window: int) -> int:
        with self._lock:
            self._calls[(credential_header, window)] += 1
            return self._calls[(credential_header, window)]


def origin_of(url: httpx.URL) -> str:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    return f"{url.scheme}://{url.host}:{port}"
