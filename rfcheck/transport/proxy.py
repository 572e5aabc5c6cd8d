"""Proxy mode: judge an app that hard-codes the real Request Finance hosts, unchanged.

The app gets ``HTTP_PROXY``/``HTTPS_PROXY`` pointing here. Absolute-form requests
(``GET https://api.request.finance/invoices``, as axios sends them through a
proxy) and ``CONNECT`` tunnels to the two real hosts reach the mock: tunnels are
terminated with a certificate for the real host name signed by the run's CA,
and the decrypted stream is relayed to a cheroot back end that routes by host.
Nothing is forwarded anywhere else; every attempt is recorded (SEC-04 evidence).

Hosts mode (``[target.intercept] hosts = true``) adds a direct TLS endpoint: the runtime's
instrumentation connects there instead of to the real host's port 443, and the endpoint
answers for both real names (SNI and certificate checks see the real name) and relays to
the same back end. Plain HTTP for the real hosts' port 80 goes to the back end directly.
"""

from __future__ import annotations

import selectors
import socket
import socketserver
import ssl
import threading
from typing import Any

import httpx

from rfcheck.provider.app import API_HOST, AUTH_HOST, Provider
from rfcheck.tls import RunCA
from rfcheck.transport.server import PROXY, LoopbackServer

MAX_HEAD = 64 * 1024
HEAD_TIMEOUT = 10  # seconds a client has to send its request head (a CONNECT, or an absolute-form request)
HANDSHAKE_TIMEOUT = 10  # seconds a tunnel's client has to start TLS
IDLE_TIMEOUT = 300
REAL_HOSTS = tuple(httpx.URL(h).host for h in (AUTH_HOST, API_HOST))


class _Handler(socketserver.BaseRequestHandler):
    server: "_ThreadingServer"

    def handle(self) -> None:
        self.request.settimeout(HEAD_TIMEOUT)  # a client that never finishes its head does not hold a thread
        try:
            head = _read_head(self.request)
        except OSError:
            return
        if not head:
            return
        self.request.settimeout(None)
        method, _, rest = head.partition(b" ")
        if method.upper() == b"CONNECT":
            self.server.proxy.tunnel(self.request, rest.split(b" ", 1)[0].decode("latin-1"))
        else:
            self.server.proxy.relay(self.request, head)


class _DirectHandler(socketserver.BaseRequestHandler):
    server: "_ThreadingServer"

    def handle(self) -> None:
        self.server.proxy.terminate(self.request)


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: "ProxyServer"


class ProxyServer:
    """An HTTP proxy on 127.0.0.1 that only ever reaches the mock."""

    def __init__(self, provider: Provider, ca: RunCA) -> None:
        self.provider = provider
        self._backend = LoopbackServer(provider, PROXY)
        self._contexts = {host: _server_context(ca, host) for host in REAL_HOSTS}
        self._server = _ThreadingServer(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._direct = _ThreadingServer(("127.0.0.1", 0), _DirectHandler)
        self._direct.proxy = self
        self._direct_context = _server_context(ca, *REAL_HOSTS)
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def routes(self) -> dict[str, tuple[str, int]]:
        """Hosts mode: where connections to the real hosts go instead (``host:port`` to address and port)."""
        backend = httpx.URL(self._backend.url)
        direct = ("127.0.0.1", int(self._direct.server_address[1]))
        plain = (backend.host, backend.port or 80)
        return {**{f"{host}:443": direct for host in REAL_HOSTS}, **{f"{host}:80": plain for host in REAL_HOSTS}}

    def bind(self, provider: Provider) -> None:
        """Relay to ``provider`` from now on (the next scenario on this proxy's lane)."""
        self.provider = provider
        self._backend.bind(provider)

    def start(self) -> str:
        self._backend.start()
        for server, name in ((self._server, "rfcheck-proxy"), (self._direct, "rfcheck-hosts")):
            thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.url

    def stop(self) -> None:
        for server in (self._server, self._direct):
            server.shutdown()
            server.server_close()
        self._backend.stop()

    def terminate(self, client: socket.socket) -> None:
        """A TLS connection meant for a real host: answer with its certificate, relay to the mock."""
        client.settimeout(HANDSHAKE_TIMEOUT)
        try:
            secure = self._direct_context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client gave up the handshake (it does not trust the run's CA), or never began it
        secure.settimeout(None)
        _pump(secure, self._backend_socket())

    def tunnel(self, client: socket.socket, authority: str) -> None:
        host, _, port = authority.rpartition(":")
        host = host.lower().rstrip(".")  # host names are case-insensitive (RFC 4343)
        if not (port.isdigit() and 0 < int(port) < 65536) or not host:
            # still a record for SEC-04: the attempt, with the host it named
            self._refuse(client, f"https://{host or 'invalid'}/", "CONNECT", b"400 Bad Request")
            return
        if host not in self._contexts:
            self._refuse(client, f"https://{host}:{port}/", "CONNECT")
            return
        client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        client.settimeout(HANDSHAKE_TIMEOUT)
        try:
            secure = self._contexts[host].wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client gave up the handshake (it does not trust the run's CA), or never began it
        secure.settimeout(None)
        _pump(secure, self._backend_socket())

    def relay(self, client: socket.socket, head: bytes) -> None:
        backend = self._backend_socket()
        backend.sendall(head)
        _pump(client, backend)

    def _backend_socket(self) -> socket.socket:
        url = httpx.URL(self._backend.url)
        return socket.create_connection((url.host, url.port or 80))

    def _refuse(self, client: socket.socket, url: str, method: str, status: bytes = b"403 Forbidden") -> None:
        # recorded as an exchange with a foreign host; the provider refuses it
        try:
            self.provider.handle(httpx.Request(method, url))
        except (httpx.InvalidURL, ValueError):
            self.provider.handle(httpx.Request(method, "https://invalid/"))
        client.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def _server_context(ca: RunCA, *hosts: str) -> ssl.SSLContext:
    paths = ca.issue(hosts, hosts[0] if len(hosts) == 1 else "real-hosts")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths.cert_file, paths.key_file)
    return context


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    return data


def _pump(a: Any, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ, b)
    selector.register(b, selectors.EVENT_READ, a)
    try:
        while _forward_once(selector, a, b):
            pass
    finally:
        selector.close()
        for sock in (a, b):
            try:
                sock.close()
            except OSError:
                pass


def _forward_once(selector: selectors.BaseSelector, a: Any, b: socket.socket) -> bool:
    # TLS may hold decrypted bytes that select() cannot see: drain those first
    ready: list[tuple[Any, Any]] = [(a, b)] if isinstance(a, ssl.SSLSocket) and a.pending() else [
        (key.fileobj, key.data) for key, _ in selector.select(timeout=IDLE_TIMEOUT)]
    if not ready:
        return False
    for source, sink in ready:
        try:
            data = source.recv(65536)
            if not data:
                return False
            sink.sendall(data)
        except OSError:
            return False
    return True
