"""One integration, one store: tokens that crossed from one scenario's mock into another's.

Scenarios run side by side, each with a mock of its own; production has one Request Finance.
An integration that keeps its tokens outside its process (a cache file at a fixed path, Redis, a
database) shares them between the instances rfcheck starts, so a scenario may present a token
another scenario's mock issued: a real Request Finance token, which its own mock does not know
(docs/architecture.md, "One integration, one store"). A verdict built on that would blame the app for
rfcheck's parallel worlds, so once one crossing is seen every scenario is judged again on one
:class:`SharedWorld`: one token registry that knows every token of the run, one lane (one issuer),
one timeline that goes on from the furthest point any mock reached, one scenario at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import jwt

from rfcheck.journal import Exchange
from rfcheck.provider.clock import Clock
from rfcheck.provider.keys import KeySet
from rfcheck.provider.tokens import TokenStore

AUTHORIZATION_PREFIX = "bearer "


@dataclass
class Registry:
    """Every token store of the run, with the scenario whose mock it belongs to."""

    stores: list[tuple[str, TokenStore]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, scenario: str, store: TokenStore) -> None:
        with self.lock:
            self.stores.append((scenario, store))

    def all(self) -> list[TokenStore]:
        with self.lock:
            return [store for _, store in self.stores]

    def issuer_of(self, exchange: Exchange, besides: TokenStore) -> str | None:
        """The scenario whose mock issued the token ``exchange`` presented, when not ``besides``."""
        with self.lock:
            stores = list(self.stores)
        jti, refresh = _presented(exchange)
        for scenario, store in stores:
            if store is besides:
                continue
            if (jti and store.issued_access(jti)) or (refresh and store.issued_refresh(refresh)):
                return scenario
        return None


def _presented(exchange: Exchange) -> tuple[str, str]:
    """The access token's ``jti`` an API call presented, or the refresh token a token request did."""
    if exchange.host == "api":
        header = exchange.headers.get("authorization", "")
        if header.lower().startswith(AUTHORIZATION_PREFIX):
            try:
                claims = jwt.decode(header[len(AUTHORIZATION_PREFIX):].strip(), options={"verify_signature": False})
            except jwt.PyJWTError:
                return "", ""
            return str(claims.get("jti", "")), ""
        return "", ""
    return "", exchange.form.get("refresh_token", "")


def crossings(exchanges: Iterable[Exchange], own: TokenStore, registry: Registry) -> set[str]:
    """The other scenarios whose tokens this scenario's target presented."""
    found: set[str] = set()
    for exchange in exchanges:
        unknown = exchange.facts.get("token_status") == "unknown" or exchange.facts.get("refresh_status") == "unknown"
        if exchange.origin == "target" and unknown:
            issuer = registry.issuer_of(exchange, own)
            if issuer is not None:
                found.add(issuer)
    return found


class SharedWorld:
    """One token registry for the run and one timeline (``clock``, its lane's), one scenario at a time."""

    def __init__(self, registry: Registry, clock: Clock, keys: KeySet) -> None:
        self.tokens = TokenStore(clock, keys)
        self.tokens.siblings = registry.all
        registry.add("the shared world", self.tokens)
        self.offset = 0.0  # where the timeline goes on from
        self.lock = threading.RLock()
        self.scenarios: list[str] = []  # judged on this world, in order

    def note(self, crossed: dict[str, set[str]]) -> str:
        """What the run's notes say: which scenarios presented which other scenarios' tokens, and what to do."""
        pairs = "; ".join(f"{name} presented tokens of {', '.join(sorted(others))}"
                          for name, others in sorted(crossed.items()))
        return ("the integration keeps its tokens outside its process (a cache file at a fixed path, Redis, a "
                f"database), shared by every instance as in production: {pairs} (each scenario has a mock of its "
                "own, so their tokens crossed). Every scenario was judged again on one shared world: one token "
                "registry for the run, one timeline, one scenario at a time. To give each scenario a store of its "
                "own, keep it under {state_dir}, or point the app at one through an environment variable in "
                "[target.env]")
