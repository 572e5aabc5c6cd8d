"""In-process transport: httpx clients reach the mock through respx, with no configuration.

Requests to the real Request Finance hosts (and to the loopback servers' URLs)
are served by the provider directly in the calling thread; other loopback
traffic passes through; anything else is recorded and refused, never forwarded.

While it routes, the default TLS contexts httpx makes for a new client (``verify=True`` or
``False``, no client certificate) are made once and shared: a target that builds an
``httpx.Client()`` per scenario, or per call, would otherwise load certifi's bundle each time
(20-25 ms), for a context that no request to the mock uses.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx
import respx

from rfcheck.provider.app import Provider
from rfcheck.provider.state import Site

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class _SharedContexts:
    """httpx's ``create_ssl_context`` as its transports call it while any in-process transport routes
    (reference-counted: own tests' fixtures and scenarios may nest): each kind of default context is made
    once per process, and handed to every client that asks for that kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._made: dict[tuple[Any, ...], ssl.SSLContext] = {}
        self._original: Callable[..., ssl.SSLContext] | None = None

    def enter(self) -> None:
        from httpx._transports import default  # where the transports look the function up

        with self._lock:
            self._users += 1
            if self._users == 1 and callable(getattr(default, "create_ssl_context", None)):
                self._original = default.create_ssl_context
                default.create_ssl_context = self._create  # type: ignore[assignment]

    def leave(self) -> None:
        from httpx._transports import default

        with self._lock:
            self._users -= 1
            if self._users == 0 and self._original is not None:
                default.create_ssl_context = self._original  # type: ignore[assignment]
                self._original = None  # the contexts made are kept for the next run: none of them changes

    def _create(self, verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        original = self._original or httpx.create_ssl_context
        if cert is not None or not isinstance(verify, bool):
            return original(verify=verify, cert=cert, trust_env=trust_env)  # the caller's own: never shared
        key = (verify, trust_env, os.environ.get("SSL_CERT_FILE") if trust_env else None,
               os.environ.get("SSL_CERT_DIR") if trust_env else None)
        with self._lock:
            made = self._made.get(key)
        if made is None:
            made = original(verify=verify, cert=None, trust_env=trust_env)
            with self._lock:
                made = self._made.setdefault(key, made)
        return made


_SHARED_CONTEXTS = _SharedContexts()


class InProcessTransport:
    """Routes every httpx request (sync or async) while started; a context manager."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=False)
        self._sharing = False

    def start(self) -> None:
        for site in self.provider.sites:
            url = httpx.URL(site.base)
            self.router.route(scheme=url.scheme, host=url.host, port=url.port).mock(
                side_effect=self._serve(site))
        self.router.route(host__in=LOOPBACK_HOSTS).pass_through()
        self.router.route().mock(side_effect=self.provider.handle)
        self.router.start()
        if not self._sharing:
            _SHARED_CONTEXTS.enter()
            self._sharing = True

    def stop(self) -> None:
        if self._sharing:
            _SHARED_CONTEXTS.leave()
            self._sharing = False
        self.router.stop(quiet=True)
        self.router.clear()

    def _serve(self, site: Site) -> "respx.types.SideEffectTypes":
        return lambda request: self.provider.handle(request, site=site)

    def __enter__(self) -> "InProcessTransport":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
