"""Loopback transport: the mock's hosts on real sockets, for clients in any language.

Each :class:`LoopbackServer` serves one host of the provider (``auth`` or ``api``) on 127.0.0.1
through :mod:`rfcheck.transport.http11`; with ``kind = "proxy"`` it serves whatever host each
request names, the front and back ends of proxy and hosts modes. Every request that reaches it,
read whole or refused, is recorded in the provider's journal.
"""

from __future__ import annotations

import functools
import ssl
from email.utils import formatdate

import httpx

from rfcheck.provider.app import Provider
from rfcheck.provider.state import Site
from rfcheck.transport.http11 import NO_ALERT, HttpServer, Refusal, Request, Response, Tunnel

# Requests answered at once (connections wait on the event loop, not in a thread). Python work
# holds the GIL (RSA signing releases it): past a few threads, more only add GIL hand-offs
# (bench/README.md). 8 still serves the concurrency scenario's parallel token requests
# (its "units 6 parallel", each held by the slow-endpoint fault) all at once.
_THREADS = 8

PROXY = "proxy"


class LoopbackServer:
    """Serves one of the provider's hosts (``auth`` or ``api``) on a loopback port.

    With ``kind = "proxy"`` it serves whatever host each request names (absolute-form URIs, or
    the ``Host`` header inside a CONNECT tunnel or on the hosts mode's endpoints); given
    ``tunnel``, it also answers CONNECT with it.
    """

    def __init__(self, provider: Provider, kind: str, *, threads: int = _THREADS,
                 tls: tuple[str, str] | ssl.SSLContext | None = None, port: int = 0,
                 tunnel: Tunnel | None = None) -> None:
        self.provider = provider
        self.kind = kind
        self._trusted = False  # a request came over TLS: clients here trust the run's CA
        self._suspected = False  # a TLS connection dropped at once, before any such request
        self.tunnel = tunnel
        context = server_tls_context(*tls) if isinstance(tls, tuple) else tls
        self._server = HttpServer(self, port=port, tls=context, threads=threads, name=kind)
        self._scheme = "https" if tls else "http"
        self.site: Site | None = None

    @property
    def url(self) -> str:
        if self.site is None:
            raise RuntimeError("the loopback server is not started")
        return self.site.base

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> str:
        """Bind and serve, register the URL with the provider; ``OSError`` when the port cannot be had."""
        def register(port: int) -> None:  # before the first request, whose URL names the site
            self.site = Site(PROXY, f"{self._scheme}://127.0.0.1:{port}") if self.kind == PROXY else (
                self.provider.add_site(self.kind, f"{self._scheme}://127.0.0.1:{port}"))

        self._server.start(register)
        return self.url

    def bind(self, provider: Provider) -> None:
        """Serve ``provider`` from now on, at the same URL (the next scenario on this server's lane)."""
        self.settle()
        self.provider = provider
        if self.site is not None and self.kind != PROXY:
            self.site = provider.add_site(self.kind, self.site.base)

    def stop(self) -> None:
        self._server.stop()
        self.settle()

    # -- as the server's handler, in a worker thread ------------------------------------------------
    def respond(self, request: Request) -> Response:
        provider = self.provider
        try:
            outgoing = _outgoing(request, self._base(request))
        except (httpx.InvalidURL, UnicodeError, ValueError) as err:  # OPTIONS *, a port that is no number
            answer = provider.refuse_malformed(request.method, request.target, f"{type(err).__name__}: {err}"[:300],
                                               self._own_site())
        else:
            answer = provider.handle(outgoing, site=self._site_for(outgoing.url))
        return self.answer(answer)

    def refuse(self, refusal: Refusal) -> Response:
        answer = self.provider.refuse_malformed(refusal.method, refusal.target, refusal.reason,
                                                self._own_site(), status=refusal.status)
        return self.answer(answer, close=True)

    def answer(self, response: httpx.Response, close: bool = False) -> Response:
        """The provider's answer as the server sends it, dated by the mock's clock (RFC 9110 §6.6.1),
        which moves with the scenario's time travel."""
        headers = list(response.headers.items())
        if "date" not in response.headers:
            headers.append(("Date", formatdate(self.provider.clock.now(), usegmt=True)))
        return Response(response.status_code, headers, response.content, close=close)

    def failed(self, error: BaseException) -> None:
        self.provider.errors.append(error)

    def untrusted(self, alert: str) -> None:
        if alert != NO_ALERT:
            self._distrust(alert)
        elif not self._trusted:
            # a hang-up right after the handshake is also a dial the client gave up (Go cancels the dials
            # a finished request started): it means distrust only if no request ever came over TLS here
            self._suspected = True

    def trusted(self) -> None:
        self._trusted, self._suspected = True, False

    def settle(self) -> None:
        """The end of a scenario here: hang-ups that no trusting client explained are named."""
        if self._suspected and not self._trusted:
            self._distrust(NO_ALERT)
        self._suspected = False

    def _distrust(self, alert: str) -> None:
        where = self.url if self.kind != PROXY else "a tunnel to Request Finance's real hosts"
        self.provider.notice(f"a client refused the TLS certificate of {where} ({alert}): the target does "
                             "not trust the run's CA, so it could not reach the mock over TLS; the README's "
                             "\"What rfcheck does to each runtime\" says how each runtime is given it")

    def _own_site(self) -> Site | None:
        return self.site if self.kind != PROXY else None

    def _base(self, request: Request) -> str:
        if self.kind != PROXY:
            return self.url
        # inside a CONNECT tunnel, or on the hosts mode's endpoints, a request names its host in Host
        host = (request.header(b"host") or b"").decode("latin-1") or request.tunnel
        return f"{request.scheme}://{host}"

    def _site_for(self, url: httpx.URL) -> Site | None:
        if self.kind != PROXY:
            return self.site
        # a plain-http request to a real host (curl -x, requests' proxies, hosts mode's port 80) reaches
        # the same mock host; the journal keeps its http:// URL as evidence
        return self.provider.site_for(url) or self.provider.site_for(url.copy_with(scheme="https"))


def _outgoing(request: Request, base: str) -> httpx.Request:
    target = request.target
    if target.startswith(("http://", "https://")):  # absolute form, through a proxy (RFC 9112 §3.2.2)
        url = _url(target)
    elif target.startswith("/"):
        url = _url(f"{base}{target}")
    else:  # OPTIONS *, or CONNECT's authority form where no tunnel is served
        raise ValueError(f"the request target {target[:80]!r} is neither a path nor an absolute URL")
    return httpx.Request(request.method, url, headers=request.headers, content=request.body)


@functools.lru_cache(maxsize=512)
def _url(raw_uri: str) -> httpx.URL:
    # parsing a URL costs more than the rest of the request's conversion; httpx.URL is immutable
    return httpx.URL(raw_uri)


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def client_tls_context(ca_file: str) -> ssl.SSLContext:
    """An SSL context trusting only the run's CA (for rfcheck's own HTTPS clients)."""
    return ssl.create_default_context(cafile=ca_file)


class LoopbackMock:
    """The provider's two hosts (``auth``, ``api``) on loopback ports, over TLS from a CA made for it when
    ``tls``: what ``rfcheck serve`` runs and what the ``rfcheck_server`` fixture gives a test. A context
    manager; on exit the servers stop and the CA's folder (its key with it) is removed.

    ``ports`` fixes a host's port (0, the default, picks a free one); a port that cannot be had is the
    ``OSError`` of its bind, with :attr:`failed` naming the host."""

    def __init__(self, provider: Provider, *, tls: bool = False, ports: dict[str, int] | None = None) -> None:
        from rfcheck.tls import RunCA  # the CA's cryptography only when a mock needs it

        self.provider = provider
        self.ports = {"auth": 0, "api": 0, **(ports or {})}
        self.ca = RunCA() if tls else None
        self.servers: dict[str, LoopbackServer] = {}
        self.failed: str | None = None

    @property
    def issuer(self) -> str:
        """The authorization server's base URL, no trailing slash (discovery names it with one)."""
        return self.servers["auth"].url

    @property
    def api_url(self) -> str:
        return self.servers["api"].url

    @property
    def ca_file(self) -> str | None:
        """The PEM of the CA that signs the servers' certificates (None without TLS)."""
        return self.ca.ca_file if self.ca else None

    def __enter__(self) -> "LoopbackMock":
        from rfcheck.tls import LOOPBACK_NAMES

        try:
            cert = self.ca.issue(LOOPBACK_NAMES, "loopback") if self.ca else None
            for kind in ("auth", "api"):
                self.failed = kind
                server = LoopbackServer(self.provider, kind, tls=(cert.cert_file, cert.key_file) if cert else None,
                                        port=self.ports[kind])
                server.start()
                self.servers[kind] = server
            self.failed = None
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        if self.ca is not None:
            import shutil

            shutil.rmtree(self.ca.folder, ignore_errors=True)
