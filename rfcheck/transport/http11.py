"""HTTP/1.1 on loopback for the mock's hosts, the proxy and the admin API: an event loop reads,
worker threads answer.

h11 parses and frames the messages. One asyncio event loop, in one thread for every server of the
run, holds the connections: a client that sends its head a byte a second, or opens a connection
and says nothing, costs a coroutine and a few buffers, never a thread. A request read whole (head
and body, within the limits below) goes to its server's worker threads, where the handler may sign
tokens and sleep through injected delays without holding up any other connection.

What no loopback client of the mock ever needs more of is refused, and the refusal is handed to
the handler like any request, so that it is recorded and answered in the shape of the host's
errors (RFC 9110 §15.5, RFC 6585 §5). The limits follow nginx's defaults:

=============================  =========  ======================================================
request line (method, target)  8 KiB      414 (nginx ``large_client_header_buffers 4 8k``)
header block                   64 KiB     431 (the block h11 buffers is bounded by the same)
header fields                  100        431 (Apache ``LimitRequestFields``)
body                           1 MiB      413 before it is read (nginx ``client_max_body_size``)
head                           10 s       408 once its first byte has come
body                           10 s       408 between two reads (nginx ``client_body_timeout``)
idle keep-alive connection     75 s       closed without a word (nginx ``keepalive_timeout``)
TLS handshake                  10 s       closed
=============================  =========  ======================================================
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

import h11

MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
MAX_BODY = 1024 * 1024
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0
IDLE_TIMEOUT = 75.0
HANDSHAKE_TIMEOUT = 10.0
LINGER = 2.0  # after a refusal, unread input is drained this long so the client reads the answer, not a reset
_READ = 16 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
_NO_BODY = {204, 304}
_BLANK = object()  # only blank lines came while waiting for a request
# the TLS alerts (RFC 8446 §6.2) a client sends when it does not trust the certificate, as OpenSSL names them
_REFUSED_CERTIFICATE = ("ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE", "ALERT_CERTIFICATE_UNKNOWN")
NO_ALERT = _NO_ALERT = "no TLS alert: the client hung up once it had the certificate, before any request"
_QUIET_TURNS = 10  # loop turns with no connection left before a stopping server counts as closed
_DROPPED_AT_ONCE = 1.0  # seconds: a pool's unused connection closes later than that (Chromium: 10 s and more)


@dataclass(frozen=True)
class Request:
    """One request, read whole. ``method`` and ``target`` are the bytes sent, decoded as latin-1."""

    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    scheme: str  # "https" when the connection (or the CONNECT tunnel it came through) is TLS
    tunnel: str = ""  # the CONNECT tunnel's authority (host:port), when it came through one

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key.lower() == name), None)


@dataclass(frozen=True)
class Refusal:
    """A request the server would not or could not read whole: what is known of it, and why."""

    status: int  # 400, 408, 413, 414, 431, 501 or 505
    reason: str
    method: str = ""
    target: str = ""
    scheme: str = "http"
    tunnel: str = ""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False


Tunnel = Callable[[Request], "ssl.SSLContext | Response"]


class Handler(Protocol):
    """What a server serves. Its methods run in a worker thread, never on the event loop."""

    # a CONNECT: the context that terminates TLS for its host, or the answer that refuses it; None:
    # CONNECT is a request like any other
    tunnel: Tunnel | None

    def respond(self, request: Request) -> Response: ...

    def refuse(self, refusal: Refusal) -> Response: ...

    def failed(self, error: BaseException) -> None:
        """An unexpected error of the server or the handler (kept for the run's notes)."""

    def untrusted(self, alert: str) -> None:
        """A client ended the TLS handshake refusing the server's certificate (``alert``: OpenSSL's
        name of the TLS alert it sent, or :data:`NO_ALERT`): no request came, but the user needs to
        know why."""

    def trusted(self) -> None:
        """A client sent a request over TLS: it trusts the certificate (called on the event loop)."""


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


# -- the event loop every server shares -----------------------------------------------------
class _SharedLoop:
    """One event loop thread while any server runs; gone when the last one stops."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _users = 0

    @classmethod
    def acquire(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(target=cls._run, args=(loop, ready), name="rfcheck-http", daemon=True)
                thread.start()
                ready.wait()
                cls._loop, cls._thread = loop, thread
            cls._users += 1
            return cls._loop

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users or cls._loop is None:
                return
            loop, thread = cls._loop, cls._thread
            cls._loop = cls._thread = None
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _accepting() -> bool:
    """Whether the loop still holds a socket it accepted and has not yet made a connection of (asyncio's task
    for it, which a loop stopped meanwhile would leave, its socket open, until the collector finds it)."""
    return any(getattr(task.get_coro(), "__qualname__", "").endswith("_accept_connection2")
               for task in asyncio.all_tasks())


class _Accepted(asyncio.StreamReaderProtocol):  # type: ignore[misc]
    """One accepted connection, as ``asyncio.start_server`` makes it, known to its server until it is lost: a
    socket accepted as the server stops is closed with it, never left for its client to wait on."""

    def __init__(self, server: "HttpServer", reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(reader, server._connection, loop=loop)
        self._owner = server
        self._accepted: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self._owner._closing:
            transport.abort()
            return
        self._accepted = transport
        self._owner._transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._accepted is not None:
            self._owner._transports.discard(self._accepted)
        super().connection_lost(exc)


# -- byte streams: plain TCP, or TLS over it --------------------------------------------------
class _Plain:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def recv(self) -> bytes:
        return await self.reader.read(_READ)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def linger(self) -> None:
        """Stop sending, and drain what the client still sends for a moment (a body it began)."""
        with contextlib.suppress(OSError, RuntimeError):
            if self.writer.can_write_eof():
                self.writer.write_eof()
        deadline, drained = time.monotonic() + LINGER, 0
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            while drained < 4 * MAX_BODY:
                chunk = await asyncio.wait_for(self.reader.read(65536), max(0.0, deadline - time.monotonic()))
                if not chunk:
                    break
                drained += len(chunk)

    def close(self) -> None:
        self.writer.close()


class _Tls:
    """TLS over a plain stream with ``ssl.SSLObject``: bytes read before the handshake (a
    ClientHello sent right behind a CONNECT) are not lost, as they would be by ``start_tls``."""

    def __init__(self, inner: _Plain, context: ssl.SSLContext, initial: bytes = b"") -> None:
        self._inner = inner
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.first_bytes = bytearray()  # what the client sent first: a plain HTTP request, if it was one
        self.delivered = 0  # bytes the client sent over TLS
        self.sent_certificate = False
        self.handshaken = 0.0
        if initial:
            self._incoming.write(initial)
            self.first_bytes += initial[:MAX_REQUEST_LINE]
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    async def handshake(self) -> None:
        await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT)
        self.handshaken = time.monotonic()

    def dropped_at_once(self) -> bool:
        """The client closed right after the handshake without a byte: how Node.js (and Java) turn down
        a certificate they do not trust, checked after the handshake, with no TLS alert."""
        return self.delivered == 0 and time.monotonic() - self.handshaken < _DROPPED_AT_ONCE

    async def _handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
                await self._flush()
                return
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    raise ConnectionError("the client closed the connection during the TLS handshake") from None
            except ssl.SSLError:
                # OpenSSL has written its alert (protocol version, no shared cipher...): the client's
                # error message names it only if it arrives
                with contextlib.suppress(OSError):
                    await self._flush()
                raise

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            await self._inner.send(data)
            self.sent_certificate = True  # the server's first flight carries it

    async def _fill(self) -> bool:
        data = await self._inner.recv()
        if data:
            self._incoming.write(data)
            if len(self.first_bytes) < MAX_REQUEST_LINE:
                self.first_bytes += data[:MAX_REQUEST_LINE - len(self.first_bytes)]
        else:
            self._incoming.write_eof()
        return bool(data)

    async def recv(self) -> bytes:
        while True:
            try:
                data = self._tls.read(_READ)
                self.delivered += len(data)
                return data
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def send(self, data: bytes) -> None:
        self._tls.write(data)
        await self._flush()

    async def linger(self) -> None:
        with contextlib.suppress(ssl.SSLError, OSError):  # close_notify, then as over plain TCP
            self._tls.unwrap()
        with contextlib.suppress(OSError):
            await self._flush()
        await self._inner.linger()

    def close(self) -> None:
        self._inner.close()


_Stream = Any  # _Plain | _Tls


# -- the server ---------------------------------------------------------------------------------
class HttpServer:
    """Serves ``handler`` on 127.0.0.1 (``port`` 0: a free one), over TLS when ``tls`` is given.

    ``threads`` bounds the requests answered at once, not the connections held: those wait on the
    shared event loop. CONNECT opens a tunnel only when the handler has a ``tunnel``.
    """

    def __init__(self, handler: Handler, *, port: int = 0, tls: ssl.SSLContext | None = None, threads: int = 8,
                 name: str = "http") -> None:
        self.handler = handler
        self._port, self._tls, self._threads, self._name = port, tls, threads, name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._transports: set[asyncio.Transport] = set()  # every accepted connection, until it is lost
        self._closing = False
        self.port = 0

    def start(self, ready: Callable[[int], None] | None = None) -> int:
        """Bind, call ``ready(port)``, then serve; returns the port. ``OSError`` (with its errno) when the
        port cannot be had. What ``ready`` sets up (the URL a handler needs) is there for the first request."""
        loop = _SharedLoop.acquire()
        self._executor = concurrent.futures.ThreadPoolExecutor(self._threads, thread_name_prefix=f"rfcheck-{self._name}")
        self._loop, self._closing = loop, False
        try:
            self._server = asyncio.run_coroutine_threadsafe(loop.create_server(
                lambda: _Accepted(self, asyncio.StreamReader(limit=MAX_HEAD, loop=loop), loop), "127.0.0.1",
                self._port, backlog=128, reuse_address=True, start_serving=False), loop).result(timeout=10)
            self.port = int(self._server.sockets[0].getsockname()[1])
            if ready is not None:
                ready(self.port)
            asyncio.run_coroutine_threadsafe(self._server.start_serving(), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self.port

    @property
    def address(self) -> tuple[str, int]:
        """The bound socket's address."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Close the port and every connection; returns when the server's threads are gone."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=5)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        _SharedLoop.release()

    async def _close(self) -> None:
        self._closing = True  # a connection accepted from now on is closed at once
        if self._server is not None:
            self._server.close()
        # until no connection is left, those accepted while closing included: a socket accepted just before
        # the close becomes a connection task a few loop turns later (its transport, then connection_made),
        # so the set must stay empty for several turns in a row
        quiet = 0
        for _ in range(200):
            await asyncio.sleep(0)
            if not self._connections and not _accepting():
                quiet += 1
                if quiet >= _QUIET_TURNS:
                    break
                continue
            quiet = 0
            for task in list(self._connections):
                task.cancel()
            await asyncio.wait(list(self._connections), timeout=2)
        for transport in list(self._transports):  # accepted, and never begun or never closed: closed now
            transport.abort()
        for _ in range(_QUIET_TURNS):  # their connection_lost
            await asyncio.sleep(0)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    # -- one connection -------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        stream: _Stream = _Plain(reader, writer)
        try:
            if self._tls is not None:
                secure = _Tls(stream, self._tls)
                try:
                    await secure.handshake()
                except (OSError, asyncio.TimeoutError) as err:  # ssl.SSLError is an OSError
                    await self._handshake_failed(err, secure, stream)
                    return
                stream = secure
            await self._serve(stream, "https" if self._tls else "http", "")
            if isinstance(stream, _Tls):
                await self._after_tls(stream)
        except (OSError, asyncio.CancelledError):  # the client went away (a reset, a TLS alert), or the server stops
            pass
        except Exception as err:  # a bug of ours: kept for the run's notes, the connection closed
            with contextlib.suppress(asyncio.CancelledError):
                await self._in_worker(self.handler.failed, err)
        finally:
            with contextlib.suppress(Exception):
                stream.close()
            self._connections.discard(task)

    async def _serve(self, stream: _Stream, scheme: str, tunnel: str, pending: bytes = b"") -> None:
        """Requests one after another on one connection; ``pending``: bytes already received."""
        while True:
            # a connection per request cycle, fed what came after the last request: blank lines
            # before a request line are ignored (RFC 9112 §2.2), h11 would refuse them
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            pending = pending.lstrip(b"\r\n")
            if pending:  # (h11 reads empty data as the end of the stream)
                conn.receive_data(pending)
            try:
                request = await self._read(conn, stream, scheme, tunnel, bytearray(pending[:MAX_REQUEST_LINE + 2]))
            except _Refused as refused:
                await self._refuse(stream, refused.refusal)
                return
            if request is None:
                return
            if isinstance(stream, _Tls):  # a request over TLS: its client trusts the certificate
                self.handler.trusted()
            if request.method == "CONNECT" and self.handler.tunnel is not None and not tunnel:
                await self._tunnel(conn, stream, request, self.handler.tunnel)
                return
            answer = await self._in_worker(self.handler.respond, request)
            await stream.send(_framed(conn, request, answer))
            if answer.close or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            pending = conn.trailing_data[0]

    async def _refuse(self, stream: _Stream, refusal: Refusal) -> None:
        answer = await self._in_worker(self.handler.refuse, refusal)
        with contextlib.suppress(OSError):
            await stream.send(_raw(answer, refusal.method == "HEAD"))
            await stream.linger()

    async def _tunnel(self, conn: h11.Connection, stream: _Stream, request: Request, tunnel: Tunnel) -> None:
        decision = await self._in_worker(tunnel, request)
        if isinstance(decision, Response):
            await stream.send(_raw(decision))
            return
        await stream.send(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        secure = _Tls(stream, decision, conn.trailing_data[0])
        try:
            await secure.handshake()
        except (OSError, asyncio.TimeoutError) as err:
            await self._handshake_failed(err, secure, stream, request.target)
            return
        await self._serve(secure, "https", request.target)
        await self._after_tls(secure)

    async def _after_tls(self, secure: _Tls) -> None:
        """A TLS connection served: one that carried requests shows the CA is trusted; one dropped at once
        may show a client that turned the certificate down (the handler weighs the two)."""
        if not secure.delivered and secure.dropped_at_once():
            await self._in_worker(self.handler.untrusted, _NO_ALERT)

    async def _handshake_failed(self, err: BaseException, secure: _Tls, plain: _Plain, tunnel: str = "") -> None:
        """A client that refused the certificate says so with an alert, and is named in the notes; a
        plain HTTP request on the TLS port is answered 400 and recorded, as nginx answers it; one
        that never began the handshake, or spoke something else, is just closed."""
        reason = getattr(err, "reason", None) or ""
        if isinstance(err, ConnectionError) and secure.first_bytes and secure.sent_certificate:
            # Node.js checks the certificate once it has it and hangs up without an alert
            await self._in_worker(self.handler.untrusted, _NO_ALERT)
            return
        if not isinstance(err, ssl.SSLError):
            return
        if any(alert in reason for alert in _REFUSED_CERTIFICATE):
            await self._in_worker(self.handler.untrusted, reason)
        elif reason == "HTTP_REQUEST":
            known = _with_request_line({"scheme": "http", "tunnel": tunnel}, secure.first_bytes)
            await self._refuse(plain, Refusal(400, "a plain HTTP request on a TLS port: use https://", **known))

    async def _read(self, conn: h11.Connection, stream: _Stream, scheme: str, tunnel: str,
                    line: bytearray) -> Request | None:
        """The next request, whole; None when the client closed or stayed idle between requests.
        ``line``: the start of what this request sent (tells a long target from long headers)."""
        known: dict[str, str] = {"scheme": scheme, "tunnel": tunnel}
        began: float | None = time.monotonic() if line else None  # when its first byte came: the head's clock
        while True:
            event = await self._next(conn, stream, known, line, lambda: began)
            if event is h11.NEED_DATA and began is None:
                began = time.monotonic()
            elif event is not h11.NEED_DATA and event is not _BLANK:
                break
        if not isinstance(event, h11.Request):
            return None
        head = event
        method, target = head.method.decode("latin-1"), head.target.decode("latin-1")
        known.update(method=method, target=target)
        self._check_head(head, known)
        if conn.they_are_waiting_for_100_continue:
            await stream.send(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        body = bytearray()
        while not isinstance(event, h11.EndOfMessage):
            event = await self._next(conn, stream, known, line, lambda: -1.0)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise _Refused(Refusal(413, f"the body is larger than {MAX_BODY} bytes", **known))
        return Request(method, target, list(head.headers.raw_items()), bytes(body), scheme, tunnel)

    async def _next(self, conn: h11.Connection, stream: _Stream, known: dict[str, str], line: bytearray,
                    began: Callable[[], float | None]) -> Any:
        """One h11 event, reading once if it needs data. ``began``: None while waiting for a new
        request's first byte, -1 while reading a body, else when its head began."""
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as err:
            raise _Refused(_refusal_for(err, known, line)) from None
        if event is not h11.NEED_DATA:
            return event
        started = began()
        timeout = (IDLE_TIMEOUT if started is None else BODY_TIMEOUT if started < 0
                   else HEAD_TIMEOUT - (time.monotonic() - started))
        try:
            data = await asyncio.wait_for(stream.recv(), max(timeout, 0.001))
        except asyncio.TimeoutError:
            if started is None:
                return None  # idle between requests: closed without a word
            what = "body" if started < 0 else "request head"
            limit = BODY_TIMEOUT if started < 0 else HEAD_TIMEOUT
            raise _Refused(Refusal(408, f"the {what} was not complete after {limit:g} s",
                                   **_with_request_line(known, line))) from None
        except OSError:
            data = b""
        if started is None:
            if not data:
                return None  # closed between requests
            data = data.lstrip(b"\r\n")  # blank lines before a request line (RFC 9112 §2.2)
            if not data:
                return _BLANK
        data = _encode_request_line(data, line)
        if len(line) <= MAX_REQUEST_LINE:
            line += data[:MAX_REQUEST_LINE + 2 - len(line)]
        conn.receive_data(data)
        return h11.NEED_DATA

    def _check_head(self, event: h11.Request, known: dict[str, str]) -> None:
        if len(event.method) + len(event.target) + 1 > MAX_REQUEST_LINE:
            raise _Refused(Refusal(414, f"the request target is longer than {MAX_REQUEST_LINE} bytes", **known))
        if len(event.headers) > MAX_HEADERS:
            raise _Refused(Refusal(431, f"more than {MAX_HEADERS} header fields", **known))
        if sum(len(k) + len(v) + 4 for k, v in event.headers) > MAX_HEAD:
            raise _Refused(Refusal(431, f"the header fields are longer than {MAX_HEAD} bytes", **known))
        if event.http_version not in (b"1.0", b"1.1"):
            raise _Refused(Refusal(505, f"HTTP/{event.http_version.decode('latin-1')} is not served", **known))
        length = dict(event.headers).get(b"content-length")
        if length is not None and int(length) > MAX_BODY:
            raise _Refused(Refusal(413, f"the body ({int(length)} bytes) is larger than {MAX_BODY} bytes", **known))

    async def _in_worker(self, call: Callable[[Any], Any], arg: Any) -> Any:
        assert self._executor is not None
        try:
            future = self._executor.submit(call, arg)
        except RuntimeError:  # the executor was shut down: the server is stopping
            raise asyncio.CancelledError from None
        return await asyncio.wrap_future(future)


def _encode_request_line(data: bytes, line: bytearray) -> bytes:
    """``data`` with bytes outside ASCII in the part that continues the request line percent-encoded:
    a client that sends a raw UTF-8 path (curl given one) is served as nginx serves it, where h11
    alone would refuse the line."""
    if b"\n" in line:
        return data
    end = data.find(b"\n")
    first, rest = (data, b"") if end < 0 else (data[:end], data[end:])
    if max(first, default=0) < 0x80:
        return data
    return b"".join(b"%%%02X" % byte if byte >= 0x80 else bytes((byte,)) for byte in first) + rest


# -- writing answers ------------------------------------------------------------------------------
def _refusal_for(err: h11.RemoteProtocolError, known: dict[str, str], line: bytearray) -> Refusal:
    status = err.error_status_hint
    if status == 431 and b"\n" not in line:  # h11's buffer overflowed before the request line ended
        return Refusal(414, f"the request line is longer than {MAX_REQUEST_LINE} bytes", **known)
    if status == 431:
        return Refusal(431, f"the request head is larger than {MAX_HEAD} bytes", **known)
    return Refusal(status if status in (400, 501) else 400, str(err)[:300] or "malformed request",
                   **_with_request_line(known, line))


def _with_request_line(known: dict[str, str], line: bytearray) -> dict[str, str]:
    """What is known of a request h11 did not parse: the method and target of its first line."""
    if known.get("method"):
        return known
    first = bytes(line).split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    method, _, rest = first.partition(" ")
    target = rest.rsplit(" ", 1)[0] if " " in rest else rest
    return {**known, "method": method[:16], "target": target[:MAX_REQUEST_LINE]}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _raw(answer: Response, head_only: bool = False) -> bytes:
    """An answer written as is, closing the connection (after a refusal, h11 will not frame one)."""
    lines = [f"HTTP/1.1 {answer.status} {_reason(answer.status)}"]
    lines += [f"{k}: {v}" for k, v in answer.headers if k.lower() not in _HOP_BY_HOP]
    lines += [f"Content-Length: {len(answer.body)}", "Connection: close"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if head_only else head + answer.body


def _framed(conn: h11.Connection, request: Request, answer: Response) -> bytes:
    headers = [(k, v) for k, v in answer.headers if k.lower() not in _HOP_BY_HOP]
    if answer.status not in _NO_BODY:
        headers.append(("Content-Length", str(len(answer.body))))
    if answer.close:
        headers.append(("Connection", "close"))
    data = conn.send(h11.Response(status_code=answer.status, headers=headers, reason=_reason(answer.status)))
    if answer.body and request.method != "HEAD" and answer.status not in _NO_BODY:
        data += conn.send(h11.Data(data=answer.body))
    return data + conn.send(h11.EndOfMessage())


class LocalService:
    """A handler of rfcheck's own (the admin API, a browser's proxy) on one :class:`HttpServer`: its base URL
    once started."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self.url = ""

    def start(self) -> str:
        """Bind (``OSError`` when the port is taken) and serve; returns the base URL."""
        self.url = f"http://127.0.0.1:{self._server.start()}"
        return self.url

    def stop(self) -> None:
        self._server.stop()
