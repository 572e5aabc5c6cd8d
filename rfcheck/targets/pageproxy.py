"""The proxy of the real browser: every request Chromium makes for a scenario comes here, and only here.

Chromium is given this proxy for all of its traffic (loopback included), so rfcheck sees each request
before it goes anywhere, in the order the browser sent it, redirects included (Playwright's request
routing sees the first request of a redirect chain only): what the app, the mock and everything else
get is decided by the scenario's driver (:class:`Router`, the web driver), which records each request in
the journal as the browser's with its answer. HTTPS is a CONNECT tunnel that the proxy terminates with a
certificate of the browser's own CA (:meth:`rfcheck.targets.chromium.Engine.tls_for`) for the app and the
mock's hosts; a tunnel to any other host is refused, and recorded.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Protocol

from rfcheck.transport.http11 import HttpServer, LocalService, Refusal, Request, Response, Tunnel

THREADS = 16  # requests answered at once: the pages of parallel units and their scripts' requests
# what concerns the connection to the proxy, never the request (RFC 9110 §7.6.1)
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade"}


class Router(Protocol):
    """What the browser's requests get (the web driver decides, and records them)."""

    def serve(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        """The answer to one request of the browser."""

    def tunnel_to(self, host: str, port: int) -> bool:
        """Whether the browser may open a TLS tunnel to ``host:port`` (the app or the mock); a refused one
        is recorded by the router."""

    def proxy_failed(self, error: BaseException) -> None:
        """An unexpected error while serving the browser (kept for the run's notes)."""


class PageProxy(LocalService):
    """An HTTP proxy on 127.0.0.1 for one scenario's browser context."""

    def __init__(self, router: Router, tls_for: Callable[[str], ssl.SSLContext]) -> None:
        self._router = router
        self._tls_for = tls_for
        self.tunnel: Tunnel | None = self._tunnel
        super().__init__(HttpServer(self, threads=THREADS, name="browser-proxy"))

    # -- as the server's handler, in a worker thread ----------------------------------------------
    def respond(self, request: Request) -> Response:
        url = absolute_url(request)
        if url is None:
            return Response(400, [("Content-Type", "text/plain")], b"rfcheck's browser proxy: no absolute URL",
                            close=True)
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers
                   if name.decode("latin-1").lower() not in _HOP_BY_HOP]
        return self._router.serve(request.method, url, headers, request.body)

    def refuse(self, refusal: Refusal) -> Response:
        # Chromium sends nothing that the server refuses unread; should it, nothing reaches anyone
        return Response(refusal.status, [("Content-Type", "text/plain")], refusal.reason.encode(), close=True)

    def failed(self, error: BaseException) -> None:
        self._router.proxy_failed(error)

    def untrusted(self, alert: str) -> None:
        """Chromium turned a certificate of the browser's CA down: the request it meant is not made."""
        self._router.proxy_failed(ssl.SSLError(f"Chromium refused the browser CA's certificate ({alert})"))

    def trusted(self) -> None:
        pass

    def _tunnel(self, request: Request) -> ssl.SSLContext | Response:
        host, _, port = request.target.rpartition(":")
        host = host.strip("[]").lower().rstrip(".")
        if not (port.isdigit() and 0 < int(port) < 65536 and host):
            return Response(400, [("Content-Type", "text/plain")], b"not a host and port", close=True)
        if not self._router.tunnel_to(host, int(port)):
            return Response(403, [("Content-Type", "text/plain")],
                            f"rfcheck's browser goes nowhere but the app and Request Finance, not to {host}".encode(),
                            close=True)
        return self._tls_for(host)


def absolute_url(request: Request) -> str | None:
    """The URL a proxied request names: absolute-form (RFC 9112 §3.2.2), or inside a CONNECT tunnel the
    tunnel's authority and the path."""
    target = request.target
    if target.startswith(("http://", "https://")):
        return target
    if target.startswith("/") and request.tunnel:
        host, _, port = request.tunnel.rpartition(":")
        authority = request.tunnel if port != "443" else host
        return f"https://{authority}{target}"
    return None
