"""The journal: every exchange the mock saw, parsed, with what the provider concluded.

Checks read it; reports write it out. It keeps real values in memory, since the
checks compare tokens, and everything that leaves the process goes through
:meth:`Journal.redact`.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from typing import Unpack


_SHORTEST_SECRET = 8
# what the journal keeps of one value (a header, a form field, a URL): far above any token, code or
# URL a client sends, so that checks compare whole values; a larger one is kept as its start, its
# size and its digest, so that hostile input cannot grow the run's memory
KEPT_CHARS = 8 * 1024
KEPT_FIELDS = 100


def keep(value: str) -> str:
    """``value`` as the journal keeps it: whole up to :data:`KEPT_CHARS`, else its start, its length
    and its SHA-256 (``abc…[1048576 characters, sha256 3f2a…]``)."""
    if len(value) <= KEPT_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[:KEPT_CHARS]}…[{len(value)} characters, sha256 {digest}]"


def kept(pairs: Any) -> dict[str, str]:
    """The first :data:`KEPT_FIELDS` of a mapping's or pairs' entries, each name and value kept."""
    items = pairs.items() if hasattr(pairs, "items") else pairs
    out: dict[str, str] = {}
    for name, value in items:
        if len(out) >= KEPT_FIELDS:
            break
        out[keep(name)] = keep(value)
    return out


def redact_value(value: str) -> str:
    """A token or secret as its first 6 characters and a hash fragment (``eyJhbG…#3f2a``)."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:4]
    return f"{value[:6]}…#{digest}"


class Facts(TypedDict, total=False):
    """What the mock (and rfcheck's browser) concluded about one exchange, declared once: the mock writes
    these keys through :meth:`Exchange.note`, the checks read them. Every key is optional."""

    # the authorization request (/authorize)
    response_type: str
    scope_requested: tuple[str, ...]
    state: str | None
    nonce: str | None
    prompt: str | None
    redirect_uri: str | None
    client_id: str | None
    audience: str | None
    pkce_method: str | None
    error: str  # why the authorization server refused it, as shown to the user
    shown_to_user: bool  # the refusal was a page for the user, not a redirect to the app
    scope_granted: tuple[str, ...]
    user: str  # the sub of the user who consented
    code: str  # the code issued (or presented)
    # the token endpoint
    grant_type: str | None
    client_auth: str  # how the client authenticated (basic, post, none...)
    code_status: str  # redeemed, reused, unknown, expired, mismatched...
    code_exchange: Any
    refresh_status: str  # current, rotated_reuse, revoked, unknown, expired...
    family: str  # the refresh token family
    offline_access_asked: bool
    issued: dict[str, Any]  # what the answer issued: access_jti, family, refresh, id_token...
    id_token_fault: str  # the defect the ID token was given (a fault scenario)
    fault: str  # a fault of the token endpoint that answered instead (a 429, a 5xx)
    # the API
    auth_kind: str  # bearer, api_key, none
    token_status: str  # valid, expired, revoked, unknown, foreign...
    token_jti: str | None
    token_client: str | None
    token_grant: str | None
    api_key_known: bool
    network: str | None  # the X-Network the call named
    insufficient_scope: str  # the scope the call lacked
    organization: str | None  # the X-Organization the call named
    org_denied: bool
    organizations_listed: int
    invoice_created: bool
    # how the request reached the mock
    foreign: bool  # a host that is not Request Finance: refused, never forwarded
    malformed: bool
    refused_status: int  # what the server answered a request it would not read
    internal_error: bool
    body_bytes: int  # a body over the kept size: how long it was, and its digest
    body_sha256: str
    # rfcheck's browser (host "app": the web target's own pages)
    set_cookies: list[str]
    login_redirect: bool
    from_page: bool  # a request a page made (a script's fetch), not a navigation
    preflight: bool
    no_answer: bool
    runs_scripts: bool
    scripts_not_run: str
    browser_held: Any
    forged_codes: list[str]


@dataclass
class Exchange:
    """One request to the mock and its answer.

    ``host`` is ``auth``, ``api``, ``app`` (the web target itself, as its user's
    browser reached it) or ``other`` (a host that is not Request Finance);
    ``origin`` is who sent it: the ``target``, rfcheck's ``browser``, or the ``attacker``.
    ``facts`` holds what the provider concluded, in a form checks query
    (``grant_type``, ``token_status``, ``issued``…); ``notes`` says it in words.
    """

    n: int
    at: float
    origin: str
    host: str
    method: str
    url: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]
    step: str
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_json: Any = None
    response_text: str = ""  # pages the app sent its user's browser (host ``app``), for SEC-05
    facts: Facts = field(default_factory=lambda: Facts())
    notes: list[str] = field(default_factory=list)
    done: int = 0  # the journal's length when the answer was complete: what was sent meanwhile overlapped
    step_began: int = 0  # the journal's length when its step began: what the target could know by then

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.path}"

    def note(self, text: str, **facts: Unpack[Facts]) -> None:
        """Record a conclusion in words and, optionally, as facts (only the keys :class:`Facts` declares)."""
        self.notes.append(text)
        self.facts.update(facts)

    @property
    def params(self) -> dict[str, str]:
        """The request's parameters wherever it carried them: the query, or a form body (a POST /authorize)."""
        return {**self.query, **self.form}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Secrets:
    """Every secret and token a run issued: what :meth:`redact` hides. One for a run, shared by the
    journals of its scenarios, so that no report or log line shows what another scenario issued."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if value and len(value) >= _SHORTEST_SECRET:
            with self._lock:
                self._values.add(value)

    @property
    def values(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._values)

    def held_in(self, text: str) -> bool:
        """Whether ``text`` (a token-shaped string of a target's output) is, or holds, a secret of the run."""
        with self._lock:
            return text in self._values or any(value in text for value in self._values if len(value) < len(text))

    def redact(self, text: str) -> str:
        """Replace every known secret or token in ``text`` by its redacted form."""
        for secret in sorted(self.values, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, redact_value(secret))
        return _JWT_SHAPE.sub(lambda m: redact_value(m.group(0)), text)


class Journal:
    """A thread-safe, append-only list of exchanges, with the step each belongs to."""

    def __init__(self, secrets: Secrets | None = None) -> None:
        self._exchanges: list[Exchange] = []
        self._secrets = secrets if secrets is not None else Secrets()
        self._lock = threading.Lock()
        self._step = "setup"
        self._began = 0
        self._local = threading.local()

    def __iter__(self) -> Iterator[Exchange]:
        with self._lock:
            return iter(list(self._exchanges))

    def __len__(self) -> int:
        return len(self._exchanges)

    def since(self, mark: int) -> list[Exchange]:
        """The exchanges recorded after :meth:`mark` returned ``mark``."""
        with self._lock:
            return self._exchanges[mark:]

    def mark(self) -> int:
        return len(self._exchanges)

    # -- steps: which part of a scenario an exchange belongs to ---------------
    @property
    def step(self) -> str:
        return getattr(self._local, "step", None) or self._step

    @property
    def current_step(self) -> str:
        """The step the scenario is at, seen from any thread (a report written on SIGTERM)."""
        return self._step

    def set_step(self, step: str) -> None:
        self._step, self._began = step, len(self._exchanges)

    @contextmanager
    def thread_step(self, step: str, began: int | None = None) -> Iterator[None]:
        """Attribute exchanges made from this thread to ``step`` (parallel units of work, all begun at
        ``began``)."""
        self._local.step, self._local.began = step, len(self._exchanges) if began is None else began
        try:
            yield
        finally:
            self._local.step = None

    # -- recording: the one writer of requests and answers -----------------------
    def open(self, **fields: Any) -> Exchange:
        """Append a new exchange; :meth:`answer` completes it."""
        with self._lock:
            began = self._began if getattr(self._local, "step", None) is None else self._local.began
            exchange = Exchange(n=len(self._exchanges) + 1, step=self.step, step_began=began, **fields)
            self._exchanges.append(exchange)
        return exchange

    def answer(self, exchange: Exchange, status: int, headers: Iterable[tuple[str, str]], *, json: Any = None,
               text: str = "") -> None:
        """Record ``exchange``'s answer: its status, headers (names lower-cased) and body as JSON or as the
        page text kept; it is complete now unless its end was marked before (an answer read while other
        exchanges were still coming in)."""
        exchange.status = status
        exchange.response_headers = {name.lower(): value for name, value in headers}
        exchange.response_json = json
        exchange.response_text = text
        if not exchange.done:
            exchange.done = self.mark()

    # -- redaction ----------------------------------------------------------
    def add_secret(self, value: str) -> None:
        """Remember a secret or token so that :meth:`redact` hides it everywhere."""
        self._secrets.add(value)

    def holds_secret(self, text: str) -> bool:
        """Whether ``text`` is, or holds, a secret or token of the run (a target's output, as it streams)."""
        return self._secrets.held_in(text)

    @property
    def secrets(self) -> frozenset[str]:
        """The secrets of the run (every journal sharing this one's :class:`Secrets`)."""
        return self._secrets.values

    def redact(self, text: str) -> str:
        """Replace every known secret or token in ``text`` by its redacted form."""
        return self._secrets.redact(text)

    def describe(self, exchange: Exchange) -> dict[str, Any]:
        """An exchange as the report shows it, redacted."""
        return {
            "n": exchange.n,
            "at": iso(exchange.at),
            "from": exchange.origin,
            "to": exchange.host,
            "method": exchange.method,
            "path": exchange.path,
            "status": exchange.status,
            "step": exchange.step,
            "note": self.redact("; ".join(exchange.notes)),
        }


# Anything shaped like a JWT is redacted even when rfcheck did not issue it.
_JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")


def iso(ts: float) -> str:
    """An epoch timestamp as ISO 8601 UTC with milliseconds (``2026-11-28T12:00:00.120Z``)."""
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
