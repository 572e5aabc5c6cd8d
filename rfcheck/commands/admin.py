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
from typing import Any
from urllib.parse import parse_qsl, unquote

from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.provider.named_faults import SWITCHES, FaultArgumentError, NamedFault
from rfcheck.transport.http11 import HttpServer, LocalService, Refusal, Request, Response, Tunnel

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
MAX_TRAVEL = 10 * 365 * 86_400  # seconds in one travel: the run's certificates stay valid ten years
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


def _switch_on(fault: NamedFault, provider: Provider, client: Client, body: dict[str, Any]) -> None:
    try:
        values = fault.from_body(body)
    except FaultArgumentError as err:
        raise bad(err.field or fault.name, str(err)) from None
    fault.apply(provider, client.client_id, values)


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
            fault = SWITCHES.get(name)
            if fault is None or fault.clear is None:
                raise AdminError(404, f"unknown fault {name!r}", known=sorted(SWITCHES))
            _allow(method, ("POST", "DELETE"), path)
            with self._lock:
                if method == "POST":
                    _switch_on(fault, self.provider, self.client, _body(environ))
                    self._step(f"fault {name} on")
                else:
                    fault.clear(self.provider)
                    self._step(f"fault {name} off")
                return {"fault": name, **self._fault_state(fault)}
        routes: dict[str, tuple[str, Callable[[], Any]]] = {
            "/": ("GET", lambda: {"endpoints": ENDPOINTS, "faults": sorted(SWITCHES)}),
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
        value = fault.value(self.provider) if fault.value else None
        return {"on": bool(value), "value": value}

    def _faults(self) -> dict[str, Any]:
        return {"faults": {name: {**self._fault_state(fault), "body": fault.example, "description": fault.description}
                           for name, fault in SWITCHES.items()}}

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


class AdminServer(LocalService):
    """Serves :class:`AdminApp` on 127.0.0.1 (``port`` 0: a free one)."""

    def __init__(self, app: AdminApp, port: int = 0) -> None:
        super().__init__(HttpServer(_WsgiBridge(app), port=port, threads=4, name="admin"))
