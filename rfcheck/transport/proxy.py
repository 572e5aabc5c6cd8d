"""Proxy mode: judge an app that hard-codes the real Request Finance hosts, unchanged.

The app gets ``HTTP_PROXY``/``HTTPS_PROXY`` pointing here. Absolute-form requests
(``GET https://api.request.finance/invoices``, as axios sends them through a
proxy) and ``CONNECT`` tunnels to the two real hosts reach the mock: tunnels are
terminated with a certificate for the real host name signed by the run's CA,
and the decrypted stream is served by the same loopback server code, routing by host.
Nothing is forwarded anywhere else; every attempt is recorded (SEC-04 evidence).

Hosts mode (``[target.intercept] hosts = true``) adds a direct TLS endpoint: the runtime's
instrumentation connects there instead of to the real host's port 443, and the endpoint
answers for both real names (SNI and certificate checks see the real name). Plain HTTP for the
real hosts' port 80 goes to a plain endpoint that routes by host the same way.
"""

from __future__ import annotations

import ssl

import httpx

from rfcheck.facts import API_HOST, AUTH_HOST
from rfcheck.provider.app import Provider
from rfcheck.tls import RunCA
from rfcheck.transport.http11 import Request, Response
from rfcheck.transport.server import PROXY, LoopbackServer, server_tls_context

REAL_HOSTS = tuple(httpx.URL(h).host for h in (AUTH_HOST, API_HOST))


class ProxyServer:
    """An HTTP proxy on 127.0.0.1 that only ever reaches the mock, and hosts mode's endpoints."""

    def __init__(self, provider: Provider, ca: RunCA) -> None:
        self.provider = provider
        self._contexts = {host: _context(ca, host) for host in REAL_HOSTS}
        self._front = LoopbackServer(provider, PROXY, tunnel=self._tunnel)
        self._direct = LoopbackServer(provider, PROXY, tls=_context(ca, *REAL_HOSTS))
        self._plain = LoopbackServer(provider, PROXY)
        self._servers = (self._front, self._direct, self._plain)

    @property
    def url(self) -> str:
        return self._front.url

    def routes(self) -> dict[str, tuple[str, int]]:
        """Hosts mode: where connections to the real hosts go instead (``host:port`` to address and port)."""
        direct, plain = ("127.0.0.1", self._direct.port), ("127.0.0.1", self._plain.port)
        return {**{f"{host}:443": direct for host in REAL_HOSTS}, **{f"{host}:80": plain for host in REAL_HOSTS}}

    def bind(self, provider: Provider) -> None:
        """Serve ``provider`` from now on (the next scenario on this proxy's lane)."""
        self.provider = provider
        for server in self._servers:
            server.bind(provider)

    def start(self) -> str:
        try:
            for server in self._servers:
                server.start()
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        for server in self._servers:
            server.stop()

    def _tunnel(self, request: Request) -> ssl.SSLContext | Response:
        """A CONNECT: TLS with the real host's certificate for the two real hosts; anything else is
        refused, and recorded as an attempt to reach that host (SEC-04's evidence)."""
        host, _, port = request.target.rpartition(":")
        host = host.lower().rstrip(".")  # host names are case-insensitive (RFC 4343)
        if not (port.isdigit() and 0 < int(port) < 65536) or not host:
            return self._refuse(f"https://{host or 'invalid'}/", 400,
                                f"{request.target[:80]!r} is not a host and port (RFC 9110 §9.3.6)")
        if host not in self._contexts:
            return self._refuse(f"https://{host}:{port}/", 403, f"{host} is not Request Finance")
        return self._contexts[host]

    def _refuse(self, url: str, status: int, reason: str) -> Response:
        return self._front.answer(self.provider.refuse_connect(url, status, reason), close=True)


def _context(ca: RunCA, *hosts: str) -> ssl.SSLContext:
    paths = ca.issue(hosts, hosts[0] if len(hosts) == 1 else "real-hosts")
    return server_tls_context(paths.cert_file, paths.key_file)
