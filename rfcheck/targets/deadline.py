"""Deadlines for a whole step, not one read: an httpx client whose every socket read and write is
bounded by the time left to the step (a page that trickles a byte a second ends at the deadline).

httpx's timeouts bound each read: an answer that keeps coming slowly never times out. The client
made by :func:`client` uses an httpcore network backend that gives every read, write, connect and
TLS handshake at most the time left until the deadline set with :meth:`Deadlines.until` for the
calling thread (parallel units of work each have their own).

The same backend gives a lane's fixed-port app its place of its own (:mod:`rfcheck.lanes`): an app
that asked for port 3000 listens on the lane's port instead, moved there by rfcheck's runtime
instrumentation, and every connection the browser or the prober opens to a loopback name on port
3000 reaches the lane's port. URLs, ``Host`` headers and redirects still say 3000, as the app does.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpcore
import httpx


class StepDeadline(httpcore.ReadTimeout):
    """The step's deadline passed (httpx turns it into :class:`httpx.ReadTimeout`)."""


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class Deadlines:
    """The deadline of the step each thread is taking, on the real monotonic clock; and the ports of the lane
    (``ports``: the port the app asked for -> where it listens instead) its connections follow."""

    def __init__(self, ports: Mapping[int, int] | None = None) -> None:
        self._local = threading.local()
        self.ports = dict(ports or {})

    def address(self, host: str, port: int) -> tuple[str, int]:
        """Where a connection to ``host:port`` goes: a loopback name on a mapped port reaches the lane's port."""
        if port in self.ports and host.lower() in LOOPBACK_HOSTS:
            return host, self.ports[port]
        return host, port

    @contextlib.contextmanager
    def until(self, seconds: float) -> Iterator[None]:
        """Every request the calling thread makes in this block ends within ``seconds`` of now."""
        previous = getattr(self._local, "at", None)
        self._local.at = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.at = previous

    def clamp(self, timeout: float | None) -> float | None:
        at = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise StepDeadline("the step's deadline passed")
        return left if timeout is None else min(timeout, left)

    @property
    def passed(self) -> bool:
        at = getattr(self._local, "at", None)
        return at is not None and time.monotonic() >= at


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._stream = stream
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadlines.clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadlines.clamp(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, self._deadlines.clamp(timeout)),
                       self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, deadlines: Deadlines) -> None:
        self._backend = httpcore.SyncBackend()
        self._deadlines = deadlines

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        host, port = self._deadlines.address(host, port)
        return _Stream(self._backend.connect_tcp(host, port, self._deadlines.clamp(timeout), local_address,
                                                 socket_options), self._deadlines)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_unix_socket(path, self._deadlines.clamp(timeout), socket_options),
                       self._deadlines)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def client(deadlines: Deadlines, verify: ssl.SSLContext, **options: Any) -> httpx.Client:
    """An httpx client (``options`` as for :class:`httpx.Client`) whose requests keep ``deadlines``."""
    transport = httpx.HTTPTransport(verify=verify)
    transport._pool = httpcore.ConnectionPool(ssl_context=verify, network_backend=_Backend(deadlines))
    return httpx.Client(transport=transport, verify=verify, **options)


@functools.lru_cache(maxsize=1)
def client_tls() -> ssl.SSLContext:
    """The TLS settings of rfcheck's browser and prober (httpx's defaults: certifi's roots), made once: a
    context costs about 40 ms to build, and each scenario's browser starts afresh after every travel."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
