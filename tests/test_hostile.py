"""Hostile input over real sockets: whatever a client sends the loopback servers, the answer is
never a 500, nothing the server read goes unrecorded, and normal service goes on after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfcheck.provider.app import Provider
from rfcheck.transport.server import LoopbackServer
from tests.helpers import loopback_servers, raw_exchange

METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"HEAD", b"PATCH", b"BREW", b"get"])
PATHS = st.sampled_from([b"/authorize", b"/oauth/token", b"/.well-known/openid-configuration", b"/invoices",
                         b"/users/organizations", b"/userinfo", b"*", b"/", b"/%ff%00", b"/a?b=%zz&c"])
TEXT = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\r\n"))
HEADER = st.tuples(st.sampled_from([b"User-Agent", b"Authorization", b"X-Network", b"Content-Type", b"Accept",
                                    b"X-Organization", b"Cookie", b"X-Odd"]), TEXT)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Provider, LoopbackServer, LoopbackServer]]:
    provider = Provider()
    with loopback_servers(provider) as (auth, api):
        yield provider, auth, api


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=METHODS, path=PATHS, query=TEXT, headers=st.lists(HEADER, max_size=4), body=st.binary(max_size=200),
       length=st.one_of(st.none(), st.integers(-3, 400)), chunked=st.booleans(), on_api=st.booleans())
def test_hostile_requests_never_get_a_500(served: tuple[Provider, LoopbackServer, LoopbackServer], method: bytes,
                                          path: bytes, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes,
                                          length: int | None, chunked: bool, on_api: bool) -> None:
    provider, auth, api = served
    server = api if on_api else auth
    target = path + (b"?" + query.replace(b" ", b"%20") if query else b"")
    head = [method + b" " + target + b" HTTP/1.1", b"Host: h", b"Connection: close"]
    head += [name + b": " + value for name, value in headers]
    if chunked:
        head.append(b"Transfer-Encoding: chunked")
        payload = hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    else:
        if length is not None:
            head.append(b"Content-Length: " + str(length).encode())
        payload = body
    answer = raw_exchange(server.url, b"\r\n".join(head) + b"\r\n\r\n" + payload)
    status = answer.split(b"\r\n", 1)[0]
    assert not status.startswith(b"HTTP/1.1 5"), (status, answer[:300])
    assert provider.errors == [], provider.errors
    normal = raw_exchange(auth.url, b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert normal.startswith(b"HTTP/1.1 200 "), normal[:200]
