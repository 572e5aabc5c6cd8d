"""The admin API of ``rfcheck serve``: a small JSON API on loopback that turns the mock's knobs.

It does over HTTP what a scenario does in a test run (rfcheck/library.py): move the clock, switch a
fault on or off, revoke the client's tokens, rotate the signing key, and read the journal. Its own
requests are not Request Finance exchanges and never enter the journal.

=====================  ========================================================================
``GET /``              the endpoints and the named faults
``GET /journal``       the exchanges so far, as ``Journal.describe`` gives them (``?since=N``: after
                       exchange N); ``last`` is the number to pass as ``since`` next time; each
                       exchange's ``step`` names the last admin action before it (``serve`` at first,
                       then e.g. ``after travel +86460 s``, ``after fault token_delay on``)
``GET /clock``         the mock's time and how far it has travelled
``POST /clock/travel`` ``{"seconds": N}``: move the clock forward (tokens expire at once)
``GET /faults``        every named fault, whether it is on, its value and the body it takes
``POST /faults/NAME``  switch a fault on with a JSON body (see :data:`FAULTS`)
``DELETE /faults/NAME`` switch it off
``POST /revoke``       ``{"what": "refresh"|"access"}``: revoke the client's refresh token families or
                       its live access tokens
``POST /keys/rotate``  sign ID and access tokens with a new key from now on (the old one stays published)
=====================  ========================================================================

Errors are JSON ``{"error", "message"}``: ``400`` names the field (``"field"``), ``404`` for an
unknown fault lists the known ones (``"known"``), ``405`` lists the allowed methods. It listens on
127.0.0.1 only and answers only requests addressed to a loopback name (``403`` otherwise), so that a
web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import io
import json
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from rfcheck.provider.accounts import KNOWN_SCOPES, Client
from rfcheck.provider.app import Provider
from rfcheck.provider.faults import ID_TOKEN_FAULTS, REFRESH_ID_TOKEN_FAULTS
from rfcheck.transport.http11 import HttpServer, Refusal, Request, Response, Tunnel

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
MAX_TRAVEL = 10 * 365 * 86_400  # seconds in one travel: the run's certificates stay valid ten years
MAX_DELAY = 60.0  # seconds the token endpoint may be made to wait
MAX_FAILURES = 1000
MAX_BODY = 64 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_STATUS_TEXT = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                413: "Payload Too Large", 500: "Internal Server Error"}


class AdminError(Exception):
    """An answer other than 200, as JSON."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                               413: "too_large"}.get(status, "error"), "message": message, **extra}


def bad(field: str, message: str) -> AdminError:
    """A 400 that names the field of the request body (or query) that is wrong."""
    return AdminError(400, f"{field}: {message}", field=field)


# -- the named faults ----------------------------------------------------------------------
@dataclass(frozen=True)
class NamedFault:
    """One knob of :class:`rfcheck.provider.faults.Faults`, as the admin API offers it."""

    name: str
    body: str  # what POST /faults/NAME takes, in words
    description: str
    switch_on: Callable[[Provider, dict[str, Any]], None]
    switch_off: Callable[[Provider], None]
    value: Callable[[Provider], Any]  # JSON-able; None, 0, [] when off


def _choice(body: dict[str, Any], field: str, allowed: Iterable[str]) -> str:
    options = sorted(allowed)
    value = body.get(field)
    if not isinstance(value, str) or value not in options:
        raise bad(field, f"expected one of {', '.join(options)}, got {json.dumps(value)}")
    return value


def _number(body: dict[str, Any], field: str, low: float, high: float, default: float | None = None) -> float:
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad(field, f"expected a number, got {json.dumps(value)}")
    if not low <= value <= high:
        raise bad(field, f"expected a number from {low:g} to {high:g}, got {value:g}")
    return float(value)


def _integer(body: dict[str, Any], field: str, low: int, high: int, default: int | None = None) -> int:
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(field, f"expected an integer, got {json.dumps(value)}")
    if not low <= value <= high:
        raise bad(field, f"expected an integer from {low} to {high}, got {value}")
    return value


def _token_delay_on(provider: Provider, body: dict[str, Any]) -> None:
    provider.faults.token_delay = _number(body, "seconds", 0.001, MAX_DELAY)


def _id_token_on(provider: Provider, body: dict[str, Any]) -> None:
    provider.faults.id_token = _choice(body, "fault", ID_TOKEN_FAULTS)


def _refresh_id_token_on(provider: Provider, body: dict[str, Any]) -> None:
    provider.faults.refresh_id_token = _choice(body, "fault", REFRESH_ID_TOKEN_FAULTS)


def _withheld_scopes_on(provider: Provider, body: dict[str, Any]) -> None:
    scopes = body.get("scopes")
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise bad("scopes", f"expected a non-empty list of scopes, got {json.dumps(scopes)}")
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise bad("scopes", f"unknown scope {unknown[0]!r}; known: {', '.join(KNOWN_SCOPES)}")
    provider.faults.withheld_scopes = frozenset(scopes)


def _fail_token_endpoint_on(provider: Provider, body: dict[str, Any]) -> None:
    status = _integer(body, "status", 400, 599)
    if status != 429 and status < 500:
        raise bad("status", f"expected 429 or a 5xx status, got {status}")
    times = _integer(body, "times", 1, MAX_FAILURES, default=1)
    retry_after = body.get("retry_after")
    if retry_after is not None:
        retry_after = _integer(body, "retry_after", 0, 86_400)
    provider.faults.fail_token_endpoint(status, times, retry_after)


def _fail_token_endpoint_off(provider: Provider) -> None:
    provider.faults.clear_token_failures()


def _pending_failures(provider: Provider) -> list[dict[str, Any]]:
    pending = provider.faults.pending_token_failures()
    return [{"status": f.status, "retry_after": f.retry_after} for f in pending]


FAULTS: dict[str, NamedFault] = {fault.name: fault for fault in (
    NamedFault("token_delay", '{"seconds": 0.5}',
               "the token endpoint waits this many real seconds before answering (a refresh lock shows)",
               _token_delay_on, lambda p: setattr(p.faults, "token_delay", 0.0),
               lambda p: p.faults.token_delay),
    NamedFault("id_token", '{"fault": "' + '|'.join(sorted(ID_TOKEN_FAULTS)) + '"}',
               "every ID token issued from now on has this defect (the login must be refused)",
               _id_token_on, lambda p: setattr(p.faults, "id_token", None),
               lambda p: p.faults.id_token),
    NamedFault("refresh_id_token", '{"fault": "' + '|'.join(sorted(REFRESH_ID_TOKEN_FAULTS)) + '"}',
               "ID tokens in refresh responses name another issuer or subject (OIDC Core 12.2)",
               _refresh_id_token_on, lambda p: setattr(p.faults, "refresh_id_token", None),
               lambda p: p.faults.refresh_id_token),
    NamedFault("withhold_scopes", '{"scopes": ["user:read"]}',
               "the user withholds these scopes at consent, unless asked again with prompt=consent",
               _withheld_scopes_on, lambda p: setattr(p.faults, "withheld_scopes", frozenset()),
               lambda p: sorted(p.faults.withheld_scopes)),
    NamedFault("token_endpoint_fails", '{"status": 503, "times": 2, "retry_after": 1}',
               "the next `times` token requests are answered with `status` (429 or 5xx), "
               "with Retry-After when given",
               _fail_token_endpoint_on, _fail_token_endpoint_off, _pending_failures),
)}

ENDPOINTS = ["GET /", "GET /journal?since=N", "GET /clock", "POST /clock/travel {\"seconds\": N}",
             "GET /faults", "POST /faults/NAME {...}", "DELETE /faults/NAME",
             "POST /revoke {\"what\": \"refresh\"|\"access\"}", "POST /keys/rotate"]


# -- the application -----------------------------------------------------------------------
class AdminApp:
    """The admin API as a WSGI application over one provider and its registered client."""

    def __init__(self, provider: Provider, client: Client) -> None:
        self.provider = provider
        self.client = client
        self._lock = threading.Lock()  # one admin action at a time
        provider.journal.set_step("serve")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, body = 200, self._dispatch(environ)
        except AdminError as err:
            status, body = err.status, err.body
        except Exception as err:  # an admin API bug must not take the mock down
            status, body = 500, {"error": "internal_error", "message": f"{type(err).__name__}: {err}"}
        data = (json.dumps(body, indent=2) + "\n").encode()
        start_response(f"{status} {_STATUS_TEXT.get(status, 'Error')}",
                       [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data))),
                        ("Cache-Control", "no-store")])
        return [data]

    def _dispatch(self, environ: dict[str, Any]) -> Any:
        if _host_name(environ.get("HTTP_HOST", "")) not in LOOPBACK_HOSTS:  # a web page whose name resolves to 127.0.0.1 (DNS rebinding)
            raise AdminError(403, f"the admin API answers only requests for {', '.join(LOOPBACK_HOSTS)}, "
                                  f"not {environ.get('HTTP_HOST', '(no Host header)')}")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if path.startswith("/faults/"):
            name = path[len("/faults/"):]
            fault = FAULTS.get(name)
            if fault is None:
                raise AdminError(404, f"unknown fault {name!r}", known=sorted(FAULTS))
            _allow(method, ("POST", "DELETE"), path)
            with self._lock:
                if method == "POST":
                    fault.switch_on(self.provider, _body(environ))
                    self._step(f"fault {name} on")
                else:
                    fault.switch_off(self.provider)
                    self._step(f"fault {name} off")
                return {"fault": name, **self._fault_state(fault)}
        routes: dict[str, tuple[str, Callable[[], Any]]] = {
            "/": ("GET", lambda: {"endpoints": ENDPOINTS, "faults": sorted(FAULTS)}),
            "/journal": ("GET", lambda: self._journal(query)),
            "/clock": ("GET", self._clock),
            "/clock/travel": ("POST", lambda: self._travel(_body(environ))),
            "/faults": ("GET", self._faults),
            "/revoke": ("POST", lambda: self._revoke(_body(environ))),
            "/keys/rotate": ("POST", self._rotate),
        }
        if path not in routes:
            raise AdminError(404, f"no admin endpoint {path}", endpoints=ENDPOINTS)
        allowed, action = routes[path]
        _allow(method, (allowed,), path)
        with self._lock:
            return action()

    # -- the endpoints ------------------------------------------------------------------
    def _step(self, label: str) -> None:
        """The journal's exchanges from now on belong to this admin action (``step`` in GET /journal)."""
        self.provider.journal.set_step(f"after {label}")

    def _journal(self, query: dict[str, str]) -> dict[str, Any]:
        raw = query.get("since", "0")
        try:
            since = int(raw)
        except ValueError:
            raise bad("since", f"expected an exchange number, got {raw!r}") from None
        if since < 0:
            raise bad("since", f"expected an exchange number of 0 or more, got {since}")
        journal = self.provider.journal
        exchanges = journal.since(since)
        return {"exchanges": [journal.describe(e) for e in exchanges],
                "last": exchanges[-1].n if exchanges else min(since, len(journal))}

    def _clock(self) -> dict[str, Any]:
        clock = self.provider.clock
        now = clock.datetime()
        return {"now": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "epoch": now.timestamp(),
                "offset": clock.offset}

    def _travel(self, body: dict[str, Any]) -> dict[str, Any]:
        seconds = _number(body, "seconds", 0, MAX_TRAVEL)
        self.provider.clock.travel(seconds)
        self._step(f"travel +{seconds:g} s")
        return {"travelled": seconds, **self._clock()}

    def _fault_state(self, fault: NamedFault) -> dict[str, Any]:
        value = fault.value(self.provider)
        return {"on": bool(value), "value": value}

    def _faults(self) -> dict[str, Any]:
        return {"faults": {name: {**self._fault_state(fault), "body": fault.body, "description": fault.description}
                           for name, fault in FAULTS.items()}}

    def _revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        what = _choice(body, "what", ("refresh", "access"))
        client_id = self.client.client_id
        if what == "refresh":
            count = self.provider.revoke_refresh_families(client_id, "revoked through rfcheck serve's admin API")
        else:
            count = self.provider.revoke_access_tokens(client_id)
        self._step(f"revoke {what}")
        return {"what": what, "revoked": count}

    def _rotate(self) -> dict[str, Any]:
        key = self.provider.keys.rotate()
        self._step("keys rotated")
        return {"kid": key.kid, "published": [k["kid"] for k in self.provider.keys.jwks()["keys"]]}


def _host_name(host: str) -> str:
    """``Host`` without its port: ``127.0.0.1:8080`` -> ``127.0.0.1``, ``[::1]:8080`` -> ``[::1]``."""
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.partition(":")[0]


def _allow(method: str, allowed: tuple[str, ...], path: str) -> None:
    if method not in allowed:
        raise AdminError(405, f"{method} is not allowed on {path}; use {' or '.join(allowed)}", allowed=list(allowed))


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object (whatever its Content-Type: ``curl -d`` sends a form type); empty is ``{}``."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise AdminError(413, f"the body is larger than {MAX_BODY} bytes")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    stream = environ["wsgi.input"]
    raw = stream.read(MAX_BODY + 1) if chunked else stream.read(length) if length else b""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad("body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise bad("body", "expected a JSON object")
    return body


# -- the server ----------------------------------------------------------------------------
class _WsgiBridge:
    """Serves a WSGI application (PEP 3333) from :class:`HttpServer`'s requests."""

    tunnel: Tunnel | None = None  # CONNECT is not for the admin API

    def __init__(self, app: AdminApp) -> None:
        self.app = app

    def respond(self, request: Request) -> Response:
        path, _, query = request.target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method, "PATH_INFO": unquote(path, "latin-1"), "QUERY_STRING": query,
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": request.scheme, "wsgi.input": io.BytesIO(request.body),
            "CONTENT_LENGTH": str(len(request.body))}
        for name, value in request.headers:
            key = name.decode("latin-1").upper().replace("-", "_")
            if key not in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):  # the body is read whole, de-chunked
                environ["CONTENT_TYPE" if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value.decode("latin-1")
        started: list[Any] = []
        body = b"".join(self.app(environ, lambda status, headers: started.extend((status, headers))))
        status, headers = started
        return Response(int(status.split(" ", 1)[0]), list(headers), body)

    def refuse(self, refusal: Refusal) -> Response:
        data = (json.dumps({"error": "bad_request", "message": refusal.reason}, indent=2) + "\n").encode()
        return Response(refusal.status, [("Content-Type", "application/json; charset=utf-8")], data, close=True)

    def failed(self, error: BaseException) -> None:
        """Nothing to record: the admin API's own requests never enter the journal."""

    def untrusted(self, alert: str) -> None:
        """Never called: the admin API is plain HTTP."""

    def trusted(self) -> None:
        """Never called: the admin API is plain HTTP."""


class AdminServer:
    """Serves :class:`AdminApp` on 127.0.0.1 (``port`` 0: a free one)."""

    def __init__(self, app: AdminApp, port: int = 0) -> None:
        self._server = HttpServer(_WsgiBridge(app), port=port, threads=4, name="admin")
        self.url = ""

    def start(self) -> str:
        """Bind (``OSError`` when the port is taken) and serve; returns the base URL."""
        self.url = f"http://127.0.0.1:{self._server.start()}"
        return self.url

    def stop(self) -> None:
        self._server.stop()
