"""Tests for rfcheck.transport: respx in-process routing for unconfigured httpx clients
(sync and async), and the loopback server for any other client (requests here)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlsplit

import httpcore
import httpx
import jwt
import pytest
import requests

import rfcheck.provider.app as app_module
from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from rfcheck.provider.accounts import Client
from rfcheck.facts import API_HOST, AUTH_HOST
from rfcheck.provider.app import Provider
from rfcheck.transport.inprocess import InProcessTransport
from rfcheck.transport.server import LoopbackServer
from tests.helpers import FULL_SCOPE, REDIRECT_URI, loopback_servers, pkce_pair, raw_exchange


def login_params(client: Client, challenge: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT_URI,
            "audience": "accounts", "scope": FULL_SCOPE, "state": "st", "code_challenge": challenge,
            "code_challenge_method": "S256"}


def code_from(location: str) -> str:
    return dict(parse_qsl(urlsplit(location).query))["code"]


# -- in process: respx ----------------------------------------------------------------------
@pytest.fixture
def inprocess(provider: Provider) -> Iterator[InProcessTransport]:
    with InProcessTransport(provider) as transport:
        yield transport


def test_sync_httpx_client_without_configuration(inprocess: InProcessTransport, provider: Provider,
                                                 code_client: Client) -> None:
    verifier, challenge = pkce_pair()
    with httpx.Client() as client:
        front = client.get(f"{AUTH_HOST}/authorize", params=login_params(code_client, challenge))
        assert front.status_code == 302
        tokens = client.post(f"{AUTH_HOST}/oauth/token", auth=(code_client.client_id, code_client.client_secret),
                             data={"grant_type": AUTHORIZATION_CODE, "code": code_from(front.headers["location"]),
                                   "redirect_uri": REDIRECT_URI, "code_verifier": verifier}).json()
        invoices = client.get(f"{API_HOST}/invoices", headers={"Authorization": f"Bearer {tokens['access_token']}",
                                                              "X-Network": "test"})
    assert invoices.status_code == 200 and len(invoices.json()) == 2
    assert [e.facts.get("client_auth") for e in provider.journal][1] == "client_secret_basic"
    assert [(e.host, e.status) for e in provider.journal] == [("auth", 302), ("auth", 200), ("api", 200)]


def test_module_level_httpx_functions(inprocess: InProcessTransport) -> None:
    response = httpx.get(f"{AUTH_HOST}/.well-known/openid-configuration")
    assert response.json()["issuer"] == AUTH_HOST + "/"


def test_async_httpx_client_without_configuration(inprocess: InProcessTransport, provider: Provider,
                                                  cc_client: Client) -> None:
    async def work() -> list[int]:
        async with httpx.AsyncClient() as client:
            token = (await client.post(f"{AUTH_HOST}/oauth/token", data={
                "grant_type": CLIENT_CREDENTIALS, "audience": "accounts", "client_id": cc_client.client_id,
                "client_secret": cc_client.client_secret})).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}", "X-Network": "live"}
            answers = await asyncio.gather(*(client.get(f"{API_HOST}/{path}", headers=headers)
                                             for path in ("invoices", "clients", "currency")))
            return [a.status_code for a in answers]

    assert asyncio.run(work()) == [200, 200, 200]
    assert len(provider.journal) == 4


def test_foreign_hosts_are_recorded_and_never_forwarded(inprocess: InProcessTransport, provider: Provider) -> None:
    response = httpx.post("https://collector.example/log", json={"token": "x"})
    assert response.status_code == 502 and "does not forward" in response.json()["message"]
    exchange = list(provider.journal)[-1]
    assert exchange.host == "other" and exchange.facts["foreign"] is True


def test_stop_restores_httpx(provider: Provider) -> None:
    original = httpcore.ConnectionPool.handle_request
    transport = InProcessTransport(provider)
    transport.start()
    assert httpcore.ConnectionPool.handle_request is not original
    transport.stop()
    assert httpcore.ConnectionPool.handle_request is original
    assert not list(transport.router.routes)


def _context(client: httpx.Client | httpx.AsyncClient) -> ssl.SSLContext:
    return client._transport._pool._ssl_context  # type: ignore[union-attr]


def test_default_tls_contexts_are_made_once_while_routing_and_never_after(provider: Provider) -> None:
    from httpx._transports import default

    original = default.create_ssl_context
    with InProcessTransport(provider), InProcessTransport(provider):  # nested, as own tests and scenarios may be
        first, second, other = httpx.Client(), httpx.AsyncClient(), httpx.Client(verify=False)
        own = ssl.create_default_context()
        given = httpx.Client(verify=own)
        assert _context(first) is _context(second), "one default context, made once"
        assert _context(other) is not _context(first) and _context(other).verify_mode == ssl.CERT_NONE
        assert _context(given) is own, "a context the caller made is its own"
        assert first.get("https://auth.request.finance/.well-known/openid-configuration").status_code == 200
    assert default.create_ssl_context is original
    assert _context(httpx.Client()) is not _context(first), "after the run, httpx makes its own again"


# -- loopback server: requests and any other client -------------------------------------------------
@pytest.fixture(scope="module")
def loopback(make_provider: Callable[[], Provider]) -> Iterator[tuple[Provider, LoopbackServer, LoopbackServer]]:
    provider = make_provider()
    with loopback_servers(provider) as (auth, api):
        yield provider, auth, api
    assert provider.errors == []


def test_loopback_login_with_requests(loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    provider, auth, api = loopback
    client = provider.register_client(AUTHORIZATION_CODE, (REDIRECT_URI,))
    meta = requests.get(f"{auth.url}/.well-known/openid-configuration").json()
    assert meta["issuer"] == auth.url + "/" and meta["token_endpoint"] == auth.url + "/oauth/token"
    verifier, challenge = pkce_pair()
    front = requests.get(meta["authorization_endpoint"], params=login_params(client, challenge),
                         allow_redirects=False)
    assert front.status_code == 302 and dict(parse_qsl(urlsplit(front.headers["location"]).query))["state"] == "st"
    back = requests.post(meta["token_endpoint"], auth=(client.client_id, client.client_secret), data={
        "grant_type": AUTHORIZATION_CODE, "code": code_from(front.headers["location"]),
        "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    assert back.status_code == 200, back.text
    assert back.headers["cache-control"] == "no-store"
    tokens = back.json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["iss"] == meta["issuer"]
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "X-Network": "test"}
    created = requests.post(f"{api.url}/invoices", headers=headers, json={"invoiceItems": [{"name": "A"}]})
    assert created.status_code == 201 and created.headers["x-rate-limit-limit"] == "15000"
    assert requests.get(f"{api.url}/invoices/{created.json()['id']}", headers=headers).status_code == 200
    assert requests.get(f"{api.url}/invoices", headers={**headers, "X-Network": "prod"}).status_code == 400


def test_loopback_json_token_request_and_errors(loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    provider, auth, _ = loopback
    client = provider.register_client(CLIENT_CREDENTIALS)
    ok = requests.post(f"{auth.url}/oauth/token", json={
        "grant_type": CLIENT_CREDENTIALS, "audience": "accounts", "client_id": client.client_id,
        "client_secret": client.client_secret})
    assert ok.status_code == 200, ok.text
    refused = requests.post(f"{auth.url}/oauth/token", data={"grant_type": CLIENT_CREDENTIALS})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    exchange = list(provider.journal)[-1]
    assert exchange.headers["content-type"] == "application/x-www-form-urlencoded"
    assert exchange.form == {"grant_type": CLIENT_CREDENTIALS}


def test_loopback_reads_chunked_bodies(loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    provider, auth, _ = loopback
    client = provider.register_client(CLIENT_CREDENTIALS)
    body = (f"grant_type={CLIENT_CREDENTIALS}&audience=accounts&client_id={client.client_id}"
            f"&client_secret={client.client_secret}").encode()
    response = requests.post(f"{auth.url}/oauth/token", data=iter([body[:25], body[25:]]),  # no Content-Length
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert list(provider.journal)[-1].headers["transfer-encoding"] == "chunked"


def test_loopback_serves_parallel_clients(loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    provider, _, api = loopback
    key = provider.api_key_for(provider.user)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: requests.get(f"{api.url}/currency", headers={
            "Authorization": key, "X-Network": "test"}).status_code, range(16)))
    assert statuses == [200] * 16


def test_loopback_listen_backlog_holds_a_burst_of_connections(
        loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    # A short listen backlog drops SYNs and the client retransmits after 1 s: a stall that would
    # distort the concurrency scenarios (TOKEN-06). The kernel reports the backlog of a
    # listening socket as its Send-Q (ss -ltn).
    _, _, api = loopback
    port = httpx.URL(api.url).port
    listing = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
    if listing.returncode != 0:
        pytest.skip(f"ss is not available: {listing.stderr.strip()}")
    backlog = int(listing.stdout.split()[2])
    assert backlog >= 64


def test_loopback_binds_127_0_0_1_only(loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    _, auth, api = loopback
    for server in (auth, api):
        assert urlsplit(server.url).hostname == "127.0.0.1"
        host, port = server._server.address
        assert host == "127.0.0.1" and port == urlsplit(server.url).port


def test_loopback_internal_errors_are_500_and_kept(loopback: tuple[Provider, LoopbackServer, LoopbackServer],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    provider, auth, _ = loopback

    def broken(call: object) -> object:
        raise RuntimeError("boom in the server thread")

    monkeypatch.setitem(app_module._AUTH_ROUTES, ("GET", "/.well-known/jwks.json"), broken)
    response = requests.get(f"{auth.url}/.well-known/jwks.json")
    assert response.status_code == 500 and response.json()["error"] == "server_error"
    assert [str(e) for e in provider.errors] == ["boom in the server thread"]
    provider.errors.clear()


def test_loopback_and_inprocess_together(loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    provider, auth, _ = loopback
    with InProcessTransport(provider):
        response = httpx.get(f"{auth.url}/.well-known/openid-configuration")
    assert response.json()["issuer"] == auth.url + "/"


def test_url_before_start_is_an_error(provider: Provider) -> None:
    with pytest.raises(RuntimeError, match="not started"):
        LoopbackServer(provider, "api").url


def test_stop_leaves_no_thread_and_closes_the_port(provider: Provider) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    server = LoopbackServer(provider, "api", threads=4)
    port = urlsplit(server.start()).port
    assert port is not None
    assert requests.get(f"{server.url}/currency", headers={"X-Network": "test"}).status_code == 401
    assert {thread.ident for thread in threading.enumerate()} - before
    server.stop()
    left = [thread.name for thread in threading.enumerate() if thread.ident not in before and thread.is_alive()]
    assert left == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_header_value_outside_ascii_is_carried_not_a_500(
        loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    # real clients send them: a User-Agent naming the company, in UTF-8 (RFC 9110 §5.5: opaque octets)
    provider, auth, _ = loopback
    mark = provider.journal.mark()
    answer = raw_exchange(auth.url, b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: h\r\nUser-Agent: "
                          + "AcmeInvoices/1.0 (Société Générale)".encode() + b"\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    (exchange,) = provider.journal.since(mark)
    assert exchange.headers["user-agent"] == "AcmeInvoices/1.0 (Société Générale)"


def test_a_request_the_server_cannot_read_is_answered_400_and_recorded(
        loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    provider, auth, _ = loopback
    mark = provider.journal.mark()
    for request in (b"GET /auth\x00orize HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",  # a NUL in the path
                    b"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\nConnection: close\r\n\r\n"):
        answer = raw_exchange(auth.url, request)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200]
        assert b'"error": "invalid_request"' in answer or b'"error":"invalid_request"' in answer
    recorded = provider.journal.since(mark)
    assert [(e.status, e.facts.get("malformed")) for e in recorded] == [(400, True), (400, True)]
    # and the server still serves
    assert raw_exchange(auth.url, b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").startswith(
        b"HTTP/1.1 200 ")


def test_a_body_over_the_limit_is_refused_before_it_is_read(
        loopback: tuple[Provider, LoopbackServer, LoopbackServer]) -> None:
    _, auth, _ = loopback
    answer = raw_exchange(auth.url, b"POST /oauth/token HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                        b"Content-Length: 16777216\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
