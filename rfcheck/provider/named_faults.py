"""The named faults: every way a scenario step, the admin API of ``rfcheck serve`` and the explorer can
make the mock misbehave, each defined once with its arguments, bounds and words.

A fault takes its arguments in order, as words in a scenario step (``fault token_endpoint_fails 503 2 1``)
or by name, as fields of a JSON body (``{"status": 503, "times": 2, "retry_after": 1}``); both are checked
against the same :class:`Param`. A *switch* (``clear`` given) stays on until cleared; an *action* (the
revocations, the key rotation) happens once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rfcheck.facts import KNOWN_SCOPES
from rfcheck.provider.faults import ID_TOKEN_FAULTS, REFRESH_ID_TOKEN_FAULTS
from rfcheck.provider.state import State

MAX_DELAY = 10.0  # seconds the token endpoint may be made to wait
MAX_FAILURES = 1000
MAX_RETRY_AFTER = 86_400


class FaultArgumentError(ValueError):
    """An argument a fault cannot take; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Param:
    """One argument of a fault: its JSON field name, its word in a step's usage, and what it accepts."""

    name: str
    usage: str
    kind: str  # number | integer | choice | scopes
    low: float = 0
    high: float = 0
    choices: tuple[str, ...] = ()
    required: bool = True
    default: Any = None
    only: Callable[[Any], str] | None = None  # a further rule: "" when the value is right

    def from_word(self, word: str) -> Any:
        """The value of a step's word; :class:`FaultArgumentError` naming what is wrong."""
        if self.kind == "choice":
            return self._checked(word)
        try:
            number: float = int(word) if self.kind == "integer" else float(word)
        except ValueError:
            raise FaultArgumentError(self.name, f"{word!r} is not a{'n integer' if self.kind == 'integer' else ' number'}"
                                     ) from None
        return self._checked(number)

    def from_json(self, value: Any) -> Any:
        if self.kind == "choice":
            if not isinstance(value, str):
                raise FaultArgumentError(self.name, f"expected one of {', '.join(self.choices)}, got {value!r}")
            return self._checked(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                self.kind == "integer" and not isinstance(value, int)):
            raise FaultArgumentError(self.name, f"expected a{'n integer' if self.kind == 'integer' else ' number'}, "
                                                f"got {value!r}")
        return self._checked(value)

    def _checked(self, value: Any) -> Any:
        if self.kind == "choice":
            if value not in self.choices:
                raise FaultArgumentError(self.name, f"{value!r} is not one of {', '.join(self.choices)}")
        elif not math.isfinite(value) or not self.low <= value <= self.high:
            raise FaultArgumentError(self.name, f"{value:g} is not between {self.low:g} and {self.high:g}")
        problem = self.only(value) if self.only else ""
        if problem:
            raise FaultArgumentError(self.name, problem)
        return value


@dataclass(frozen=True)
class NamedFault:
    """A fault by name: its arguments, the step label it gets in the journal, what it does and (a switch)
    how it is cleared and what its current value is."""

    name: str
    description: str
    params: tuple[Param, ...]
    label: Callable[[tuple[Any, ...]], str]
    apply: Callable[[State, str, tuple[Any, ...]], Any]  # (mock, the client's ID, values): the step's detail
    clear: Callable[[State], None] | None = None
    value: Callable[[State], Any] | None = None  # JSON-able; None, 0 or [] when off
    example: str = ""  # a JSON body for the admin API
    # the arguments --rfcheck-explore draws this fault with, as a step's words (none: never explored); the
    # ID token defects are not drawn: their scenarios judge them, and a random sequence would only repeat them
    explored: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        return " ".join(p.usage if p.required else f"[{p.usage}]" for p in self.params)

    @property
    def switch(self) -> bool:
        return self.clear is not None

    def from_words(self, words: Sequence[str]) -> tuple[Any, ...]:
        """The values of a step's words, in order (``scopes`` takes every word left)."""
        if self.params and self.params[-1].kind == "scopes":
            return (_scopes(list(words)),)
        required = sum(1 for p in self.params if p.required)
        if not required <= len(words) <= len(self.params):
            count = str(required) if required == len(self.params) else f"{required} to {len(self.params)}"
            raise FaultArgumentError("", f"takes {count} argument{'s' if len(self.params) != 1 else ''}, "
                                         f"not {len(words)}")
        values = [p.from_word(w) for p, w in zip(self.params, words)]
        return tuple(values + [p.default for p in self.params[len(words):]])

    def from_body(self, body: dict[str, Any]) -> tuple[Any, ...]:
        """The values of a JSON body's fields."""
        values = []
        for param in self.params:
            if param.kind == "scopes":
                scopes = body.get(param.name)
                values.append(_scopes(scopes.split() if isinstance(scopes, str) else scopes, param.name))
            elif param.name in body and body[param.name] is not None:
                values.append(param.from_json(body[param.name]))
            elif param.required:
                raise FaultArgumentError(param.name, f"is required ({param.usage})")
            else:
                values.append(param.default)
        return tuple(values)


def _scopes(scopes: Any, field: str = "scopes") -> tuple[str, ...]:
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise FaultArgumentError(field, "takes the scopes the user withholds, e.g. user:read")
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise FaultArgumentError(field, f"unknown scope {unknown[0]!r}; known: {', '.join(KNOWN_SCOPES)}")
    return tuple(scopes)


def _count(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _status(value: Any) -> str:
    return "" if value == 429 or 500 <= value <= 599 else f"{value} is not 429 or a 5xx status"


def _set(attribute: str) -> Callable[[State, str, tuple[Any, ...]], None]:
    def apply(mock: State, client_id: str, values: tuple[Any, ...]) -> None:
        setattr(mock.faults, attribute, values[0])
    return apply


def _reset(attribute: str, off: Any) -> Callable[[State], None]:
    return lambda mock: setattr(mock.faults, attribute, off)


def _pending(mock: State) -> list[dict[str, Any]]:
    return [{"status": f.status, "retry_after": f.retry_after} for f in mock.faults.pending_token_failures()]


def _withhold(mock: State, client_id: str, values: tuple[Any, ...]) -> None:
    mock.faults.withheld_scopes = frozenset(values[0])


def _revoke_refresh(mock: State, client_id: str, values: tuple[Any, ...]) -> Any:
    return mock.revoke_refresh_families(client_id)


def _revoke_access(mock: State, client_id: str, values: tuple[Any, ...]) -> Any:
    return mock.revoke_access_tokens(client_id)


_ID_FAULTS = tuple(sorted(ID_TOKEN_FAULTS))
_REFRESH_FAULTS = tuple(sorted(REFRESH_ID_TOKEN_FAULTS))

FAULTS: dict[str, NamedFault] = {fault.name: fault for fault in (
    NamedFault("revoke_refresh_tokens", "the user revokes the app: every refresh token family of the client is revoked",
               (), lambda v: "user revokes the app's refresh tokens", _revoke_refresh, explored=("",)),
    NamedFault("revoke_access_tokens",
               "the client's access tokens are revoked before they expire: the API answers 401 invalid_token",
               (), lambda v: "access tokens revoked", _revoke_access, explored=("",)),
    NamedFault("token_delay", "the token endpoint answers after SECONDS (concurrent refreshes overlap)",
               (Param("seconds", "SECONDS", "number", 0, MAX_DELAY),),
               lambda v: f"token endpoint answers in {float(v[0]) * 1000:g} ms", _set("token_delay"),
               _reset("token_delay", 0.0), lambda mock: mock.faults.token_delay, '{"seconds": 0.5}', ("0.1",)),
    NamedFault("token_endpoint_fails",
               "the next TIMES token requests are answered STATUS (429 or 5xx) with Retry-After: RETRY_AFTER",
               (Param("status", "STATUS", "integer", 100, 599, only=_status),
                Param("times", "TIMES", "integer", 1, MAX_FAILURES, required=False, default=1),
                Param("retry_after", "RETRY_AFTER", "integer", 0, MAX_RETRY_AFTER, required=False)),
               lambda v: f"token endpoint answers {v[0]} {_count(int(v[1]))}",
               lambda mock, client_id, v: mock.faults.fail_token_endpoint(int(v[0]), int(v[1]),
                                                                          None if v[2] is None else int(v[2])),
               lambda mock: mock.faults.clear_token_failures(), _pending,
               '{"status": 503, "times": 2, "retry_after": 1}', ("429 2 1", "503 1 1")),
    NamedFault("id_token", "every ID token issued from now on has the defect FAULT: " + ", ".join(_ID_FAULTS),
               (Param("fault", "FAULT", "choice", choices=_ID_FAULTS),),
               lambda v: f"ID tokens carry the fault {v[0]}", _set("id_token"), _reset("id_token", None),
               lambda mock: mock.faults.id_token, '{"fault": "' + "|".join(_ID_FAULTS) + '"}'),
    NamedFault("refresh_id_token", "ID tokens from the refresh grant name another "
               + " or ".join(f.removeprefix("changed_") for f in _REFRESH_FAULTS) + " (OIDC Core 12.2)",
               (Param("fault", "FAULT", "choice", choices=_REFRESH_FAULTS),),
               lambda v: f"refresh ID tokens change {v[0].removeprefix('changed_')}", _set("refresh_id_token"),
               _reset("refresh_id_token", None), lambda mock: mock.faults.refresh_id_token,
               '{"fault": "' + "|".join(_REFRESH_FAULTS) + '"}'),
    NamedFault("withhold_scopes", "the user withholds these scopes at consent, unless asked again with prompt=consent",
               (Param("scopes", "SCOPE...", "scopes"),), lambda v: f"user withholds {' '.join(v[0])}",
               _withhold, _reset("withheld_scopes", frozenset()),
               lambda mock: sorted(mock.faults.withheld_scopes), '{"scopes": ["user:read"]}', ("user:read",)),
    NamedFault("rotate_signing_key", "the signing key rotates: new ID tokens carry a new kid, published in the JWKS",
               (), lambda v: "signing key rotated", lambda mock, client_id, v: mock.keys.rotate().kid,
               explored=("",)),
)}
EXPLORED = tuple(f"fault {name} {words}".strip() for name, fault in FAULTS.items() for words in fault.explored)
SWITCHES = {name: fault for name, fault in FAULTS.items() if fault.switch}
