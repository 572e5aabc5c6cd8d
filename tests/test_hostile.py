"""Hostile input over real sockets: whatever a client sends the loopback servers or the proxy, the
answer is never a 500, every request the server read (or gave up reading) is recorded, and normal
service goes on after it, slow clients included."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings

import rfcheck.transport.http11 as http11
from rfcheck.journal import KEPT_CHARS
from rfcheck.facts import CLIENT_CREDENTIALS
from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.tls import RunCA
from rfcheck.transport.proxy import ProxyServer
from rfcheck.transport.server import LoopbackServer
from tests.helpers import eventually, loopback_servers, raw_exchange
from tests.hostile import hostile_requests, is_tunnel, statuses

Served = tuple[Provider, Client, dict[str, Any]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The mock's two hosts and the proxy (its CONNECT tunnels included), on loopback ports."""
    provider = Provider()
    client = provider.register_client(CLIENT_CREDENTIALS, name="machine app")
    proxy = ProxyServer(provider, RunCA(tmp_path_factory.mktemp("ca")))
    with loopback_servers(provider) as (auth, api):
        proxy.start()
        try:
            yield provider, client, {"auth": auth, "api": api, "proxy": proxy}
        finally:
            proxy.stop()


def token_request(auth: LoopbackServer, client: Client) -> requests.Response:
    """A normal client credentials request, as ``requests`` sends it."""
    return requests.post(f"{auth.url}/oauth/token", data={"grant_type": "client_credentials", "audience": "accounts"},
                         auth=(client.client_id, client.client_secret), timeout=5)


@settings(max_examples=3000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=hostile_requests())
def test_hostile_requests_are_answered_recorded_and_never_500(served: Served, request: tuple[bytes, str]) -> None:
    provider, _, servers = served
    data, where = request
    mark = provider.journal.mark()
    answer = raw_exchange(servers[where].url, data)
    assert answer.startswith(b"HTTP/1.1 "), answer[:300]
    answered = statuses(answer)
    assert 500 not in answered, answer[:300]
    assert provider.errors == [], provider.errors
    # a record for every request, with the status its client got; a tunnel's inner requests are the ones
    assert [e.status for e in provider.journal.since(mark)] == answered, answer[:300]
    assert answered or is_tunnel(answer)


def test_normal_service_after_hostile_requests(served: Served) -> None:
    provider, client, servers = served
    response = token_request(servers["auth"], client)
    assert response.status_code == 200, response.text
    assert provider.errors == []


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
    (b"GET /" + b"a" * 70000, 414),  # the request line never ends
    (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-N%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
    (b"POST /oauth/token HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413),
    (b"POST /oauth/token HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"100000\r\n" + b"a" * 0x100000 + b"\r\n10\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n", 413),
    (b"POST /oauth/token HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host (RFC 9112 §3.2)
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400),  # TLS to the plain port
], ids=["uri-414", "endless-line-414", "fields-431", "block-431", "length-413", "chunked-413", "gzip-501",
        "version-505", "no-host-400", "tls-on-plain-400"])
def test_each_limit_has_its_status_and_a_record(served: Served, request_bytes: bytes, status: int) -> None:
    provider, _, servers = served
    mark = provider.journal.mark()
    answer = raw_exchange(servers["auth"].url, request_bytes)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[:2] == [b"HTTP/1.1", str(status).encode()], answer[:300]
    assert b'"error": "invalid_request"' in answer
    assert [(e.status, e.facts.get("refused_status")) for e in provider.journal.since(mark)] == [(status, status)]


@pytest.mark.parametrize(("sent", "what"), [
    (b"POST /oauth/token HTTP/1.1\r\nHost: h\r\n", "request head"),  # the head never ends
    (b"POST /oauth/token HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", "body"),  # the body stops
])
def test_a_client_that_stops_sending_is_answered_408_and_recorded(served: Served, monkeypatch: pytest.MonkeyPatch,
                                                                  sent: bytes, what: str) -> None:
    monkeypatch.setattr(http11, "HEAD_TIMEOUT", 0.3)
    monkeypatch.setattr(http11, "BODY_TIMEOUT", 0.3)
    provider, _, servers = served
    mark = provider.journal.mark()
    host, port = servers["auth"].url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as slow:
        slow.sendall(sent)
        assert slow.recv(4096).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    (exchange,) = provider.journal.since(mark)
    assert (exchange.method, exchange.path, exchange.status) == ("POST", "/oauth/token", 408)
    assert f"the {what} was not complete" in exchange.notes[0]


def test_slow_clients_do_not_hold_up_a_normal_request(served: Served) -> None:
    """100 clients sending their heads a few bytes at a time, and 100 that connect and say nothing:
    a normal token request is still answered, while they all hold their connections."""
    provider, client, servers = served
    auth = servers["auth"]
    mark = provider.journal.mark()
    host, port = auth.url.split("//")[1].split(":")
    with ExitStack() as stack:
        slow = [stack.enter_context(socket.create_connection((host, int(port)), timeout=5)) for _ in range(200)]
        for sock in slow[:100]:
            sock.sendall(b"POST /oauth/token HTTP/1.1\r\nHo")
        time.sleep(0.2)
        for sock in slow[:100]:
            sock.sendall(b"st: h\r\nUser-")
        response = token_request(auth, client)
        assert response.status_code == 200, response.text
        for sock in slow:  # all still open: the server answered without dropping them
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    # the 100 heads left unfinished are recorded when their clients close; the silent ones sent nothing
    deadline = time.monotonic() + 10
    while len(provider.journal.since(mark)) < 101 and time.monotonic() < deadline:
        time.sleep(0.05)
    recorded = provider.journal.since(mark)
    assert sorted((e.path, e.status) for e in recorded) == [("/oauth/token", 200)] + [("/oauth/token", 400)] * 100
    assert provider.errors == []


def test_the_journal_keeps_a_bounded_copy_of_a_large_body(served: Served) -> None:
    provider, client, servers = served
    mark = provider.journal.mark()
    value = "x" * (512 * 1024)
    body = f"grant_type=client_credentials&audience=accounts&padding={value}".encode()
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode())
    answer = raw_exchange(servers["auth"].url, b"POST /oauth/token HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\nAuthorization: Basic " + basic
                          + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 ")
    (exchange,) = provider.journal.since(mark)
    kept = exchange.form["padding"]
    assert kept.startswith("x" * KEPT_CHARS) and len(kept) < KEPT_CHARS + 200
    assert f"[{len(value)} characters, sha256 {hashlib.sha256(value.encode()).hexdigest()}]" in kept
    assert exchange.facts["body_bytes"] == len(body)
    assert exchange.facts["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert exchange.form["grant_type"] == "client_credentials"  # small values are kept whole


# -- what real clients send that a strict parser would refuse ---------------------------------------
def test_blank_lines_before_a_request_are_ignored(served: Served) -> None:
    """RFC 9112 §2.2: a server ignores at least one empty line before a request line (old clients
    send a CRLF after a POST body)."""
    _, _, servers = served
    jwks = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: h\r\n"
    assert raw_exchange(servers["auth"].url, b"\r\n\r\n" + jwks + b"Connection: close\r\n\r\n").startswith(
        b"HTTP/1.1 200 ")
    two = raw_exchange(servers["auth"].url, b"POST /oauth/token HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na=b"
                       b"\r\n" + jwks + b"Connection: close\r\n\r\n")
    assert statuses(two) == [401, 200], two[:400]  # the token request names no client; the GET is served


def test_a_raw_utf8_target_is_served_as_if_encoded(served: Served) -> None:
    provider, _, servers = served
    mark = provider.journal.mark()
    answer = raw_exchange(servers["auth"].url, "GET /.well-known/jwks.json?who=Société HTTP/1.1\r\nHost: h\r\n"
                          "Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    (exchange,) = provider.journal.since(mark)
    assert exchange.query == {"who": "Société"}


def test_answers_are_dated_by_the_mocks_clock(served: Served) -> None:
    provider, _, servers = served
    provider.clock.travel(86_400)  # tokens issued later in this module expire later: nothing here minds
    answer = raw_exchange(servers["auth"].url, b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: h\r\n"
                          b"Connection: close\r\n\r\n")
    date = next(line for line in answer.split(b"\r\n") if line.lower().startswith(b"date: "))[6:].decode()
    assert abs(parsedate_to_datetime(date).timestamp() - provider.clock.now()) < 5
    assert parsedate_to_datetime(date).timestamp() - time.time() > 86_000


# -- the server itself ---------------------------------------------------------------------------------
class _Failing:
    """A handler whose answer fails: the error is kept, the client's connection closed."""

    tunnel = None

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def respond(self, request: http11.Request) -> http11.Response:
        raise RuntimeError("the handler broke")

    def refuse(self, refusal: http11.Refusal) -> http11.Response:
        return http11.Response(refusal.status)

    def failed(self, error: BaseException) -> None:
        self.errors.append(error)

    def untrusted(self, alert: str) -> None:
        pass

    def trusted(self) -> None:
        pass


def test_an_error_of_the_handler_is_kept_never_swallowed() -> None:
    handler = _Failing()
    server = http11.HttpServer(handler)
    port = server.start()
    try:
        raw_exchange(f"http://127.0.0.1:{port}", b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert [str(e) for e in eventually(lambda: handler.errors)] == ["the handler broke"]
    finally:
        server.stop()


def test_stop_closes_the_connections_accepted_while_it_stops(provider: Provider) -> None:
    server = LoopbackServer(provider, "auth")
    host, port = server.start().split("//")[1].split(":")
    opened: list[socket.socket] = []
    done = threading.Event()

    def connect() -> None:
        while not done.is_set():
            try:
                opened.append(socket.create_connection((host, int(port)), timeout=1))
            except OSError:
                return

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    server.stop()
    done.set()
    for thread in threads:
        thread.join()
    assert opened
    served = [sock for sock in opened if _server_side_exists(int(port), sock.getsockname()[1])]
    for sock in served:  # each one the server accepted is closed by it, none left waiting for an idle timeout
        sock.settimeout(5)
        try:
            assert sock.recv(1) == b""
        except ConnectionResetError:
            pass
    assert not [p for p in _established_from(int(port))], "the server holds no connection after stop()"
    for sock in opened:
        sock.close()


def _tcp_rows() -> list[tuple[int, int, str]]:
    """(local port, remote port, state) of this machine's IPv4 TCP sockets (/proc/net/tcp)."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        rows.append((int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[3]))
    return rows


def _server_side_exists(port: int, client_port: int) -> bool:
    """Whether the kernel holds the server's end of the connection from ``client_port``. A connection the
    kernel completed as the listening socket closed may have none: its client end stays open, with no
    server to close it, whatever the server does (it learns so when it sends)."""
    return any(local == port and remote == client_port for local, remote, _ in _tcp_rows())


def _established_from(port: int) -> list[int]:
    """The client ports of the connections whose server end (local ``port``) is still open."""
    return [remote for local, remote, state in _tcp_rows() if local == port and state == "01"]
