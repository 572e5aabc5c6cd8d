"""Loopback transport: a real threaded HTTP server for clients in any language.

cheroot (CherryPy's production WSGI server: a thread pool, HTTP/1.1
keep-alive, TLS) serves the provider's handler on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import ssl
import threading
from collections.abc import Iterable
from typing import Any, Callable

import httpx
from cheroot import server, wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from rfcheck.provider.app import Provider
from rfcheck.provider.http import Site

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
_KEEP_ALIVE_CONNECTIONS = 256
# Idle keep-alive connections wait in cheroot's selector, not in a thread, so threads bound only the
# requests served at once. Python work holds the GIL (RSA signing releases it): past a few threads,
# more only add GIL hand-offs (bench/README.md). 8 still serves the concurrency scenario's parallel
# token requests (library.PARALLEL_UNITS, each held by the slow-endpoint fault) all at once.
_THREADS = 8
_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 1024 * 1024


PROXY = "proxy"


class _ProxyRequest(server.HTTPRequest):
    """cheroot refuses absolute-form request targets (400) unless it runs as a proxy."""

    def __init__(self, http_server: Any, conn: Any, proxy_mode: bool = True, strict_mode: bool = True) -> None:
        super().__init__(http_server, conn, proxy_mode=True, strict_mode=strict_mode)


class _ProxyConnection(server.HTTPConnection):
    RequestHandlerClass = _ProxyRequest


class LoopbackServer:
    """Serves one of the provider's hosts (``auth`` or ``api``) on a free loopback port.

    With ``kind = "proxy"`` it serves whatever host each request names (absolute-form
    URIs, or the ``Host`` header inside a CONNECT tunnel): the back end of proxy mode.
    """

    def __init__(self, provider: Provider, kind: str, *, threads: int = _THREADS,
                 tls: tuple[str, str] | None = None, port: int = 0) -> None:
        self.provider = provider
        self.kind = kind
        # cheroot's default listen backlog (5) drops SYNs under parallel clients: 1 s retransmit stalls
        self._server = wsgi.Server(("127.0.0.1", port), self._wsgi, numthreads=threads,
                                   server_name="rfcheck", request_queue_size=128, shutdown_timeout=1)
        # past cheroot's default of 10 idle keep-alive connections every answer says "Connection: close":
        # clients with more parallel connections then reconnect for each request
        self._server.keep_alive_conn_limit = _KEEP_ALIVE_CONNECTIONS
        # nginx's defaults: what no real client needs more of; cheroot answers 413/431-like errors beyond them
        self._server.max_request_header_size = _MAX_HEADER_BYTES
        self._server.max_request_body_size = _MAX_BODY_BYTES
        if kind == PROXY:  # absolute-form requests come from the proxy's relay (RFC 9112 §3.2.2)
            self._server.ConnectionClass = _ProxyConnection
        if tls:
            self._server.ssl_adapter = BuiltinSSLAdapter(*tls)
        self._scheme = "https" if tls else "http"
        self._thread: threading.Thread | None = None
        self.site: Site | None = None

    @property
    def url(self) -> str:
        if self.site is None:
            raise RuntimeError("the loopback server is not started")
        return self.site.base

    def start(self) -> str:
        """Bind, start serving in a daemon thread, register the URL with the provider."""
        self._server.prepare()
        port = self._server.bind_addr[1]
        self.site = Site(PROXY, f"http://127.0.0.1:{port}") if self.kind == PROXY else (
            self.provider.add_site(self.kind, f"{self._scheme}://127.0.0.1:{port}"))
        self._thread = threading.Thread(target=self._server.serve, name=f"rfcheck-{self.kind}", daemon=True)
        self._thread.start()
        return self.site.base

    def bind(self, provider: Provider) -> None:
        """Serve ``provider`` from now on, at the same URL (the next scenario on this server's lane)."""
        self.provider = provider
        if self.site is not None and self.kind != PROXY:
            self.site = provider.add_site(self.kind, self.site.base)

    def stop(self) -> None:
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            request = self._request(environ)
        except (httpx.InvalidURL, UnicodeError, ValueError) as err:  # a NUL in the path, a port that is no number
            target = str(environ.get("REQUEST_URI") or environ.get("PATH_INFO", ""))
            response = self.provider.refuse_malformed(str(environ.get("REQUEST_METHOD", "")), target,
                                                      f"{type(err).__name__}: {err}"[:300],
                                                      self.site if self.kind != PROXY else None)
        else:
            response = self.provider.handle(request, site=self._site_for(request.url))
        reason = response.reason_phrase or "Unknown"
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP]
        body = response.content
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{response.status_code} {reason}", headers)
        return [body]

    def _site_for(self, url: httpx.URL) -> Site | None:
        if self.kind != PROXY:
            return self.site
        # a plain-http absolute-form request to a real host (curl -x, requests' proxies) reaches the
        # same mock host; the journal keeps its http:// URL as evidence
        return self.provider.site_for(url) or self.provider.site_for(url.copy_with(scheme="https"))

    def _request(self, environ: dict[str, Any]) -> httpx.Request:
        raw_uri = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        if not raw_uri.startswith(("http://", "https://")):
            # inside a CONNECT tunnel the request names its host only in the Host header
            base = f"https://{environ.get('HTTP_HOST', '')}" if self.kind == PROXY else self.url
            raw_uri = f"{base}{raw_uri}"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        # a chunked body has no Content-Length: cheroot's input then reads the chunks to the end
        stream = environ["wsgi.input"]
        body = stream.read() if chunked else stream.read(length) if length else b""
        return httpx.Request(environ["REQUEST_METHOD"], _url(raw_uri), headers=_headers(environ), content=body)


@functools.lru_cache(maxsize=512)
def _url(raw_uri: str) -> httpx.URL:
    # parsing a URL costs more than the rest of the request's conversion; httpx.URL is immutable
    return httpx.URL(raw_uri)


@functools.lru_cache(maxsize=256)
def _header_name(environ_key: str) -> str:
    return environ_key[5:].replace("_", "-").title()


def _headers(environ: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    # WSGI hands header values over as latin-1 decoded text (PEP 3333): back to the bytes the client sent,
    # so that a value outside ASCII (a User-Agent naming "Société Générale") is carried, not a crash
    headers = [(_header_name(key).encode(), value.encode("latin-1", "replace")) for key, value in environ.items()
               if key.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(key):
            headers.append((name.encode(), environ[key].encode("latin-1", "replace")))
    return headers


def client_tls_context(ca_file: str) -> ssl.SSLContext:
    """An SSL context trusting only the run's CA (for rfcheck's own HTTPS clients)."""
    return ssl.create_default_context(cafile=ca_file)
