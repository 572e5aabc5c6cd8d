"""In-process transport: httpx clients reach the mock through respx, with no configuration.

Requests to the real Request Finance hosts (and to the loopback servers' URLs)
are served by the provider directly in the calling thread; other loopback
traffic passes through; anything else is recorded and refused, never forwarded.
"""

from __future__ import annotations

from types import TracebackType

import httpx
import respx

from rfcheck.provider.app import Provider
from rfcheck.provider.state import Site

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class InProcessTransport:
    """Routes every httpx request (sync or async) while started; a context manager."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=False)

    def start(self) -> None:
        for site in self.provider.sites:
            url = httpx.URL(site.base)
            self.router.route(scheme=url.scheme, host=url.host, port=url.port).mock(
                side_effect=self._serve(site))
        self.router.route(host__in=LOOPBACK_HOSTS).pass_through()
        self.router.route().mock(side_effect=self.provider.handle)
        self.router.start()

    def stop(self) -> None:
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
