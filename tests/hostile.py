"""Hostile requests for the loopback servers and the proxy, as raw bytes: the vocabulary and the
composition shared by the suite's fuzz test (tests/test_hostile.py) and the benchmark that sends
10,000 of them (bench/hostile.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"HEAD", b"PATCH", b"BREW", b"get",
                           b"CONNECT", b"G\x00T", b""])
PATHS = st.sampled_from([b"/authorize", b"/oauth/token", b"/.well-known/openid-configuration", b"/invoices",
                         b"/users/organizations", b"/userinfo", b"*", b"/", b"/%ff%00", b"/a?b=%zz&c", b"/a\x00b",
                         b"https://auth.request.finance/oauth/token", b"http://api.request.finance/invoices",
                         b"http://example.com:abc/", b"auth.request.finance:443", b"/" + b"a" * 9000])
VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9", b"XYZ", b""])
TEXT = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\r\n"))
HEADER = st.tuples(st.sampled_from([b"User-Agent", b"Authorization", b"X-Network", b"Content-Type", b"Accept",
                                    b"X-Organization", b"Cookie", b"X-Odd", b" Folded", b"Bad Name", b"Expect"]),
                   st.one_of(TEXT, st.just("AcmeInvoices/1.0 (Société Générale)".encode())))
FRAMING = st.one_of(
    st.tuples(st.just("none"), st.just(b"")),
    st.tuples(st.just("length"), st.sampled_from([b"-5", b"abc", b"16777216", b"0", b"3", b"400", b"1e3"])),
    st.tuples(st.just("chunked"), st.sampled_from([b"", b"zz", b"-1", b"ffffffffffffffffff", b" 3"])),
    st.tuples(st.just("both"), st.just(b"3")),
    st.tuples(st.just("gzip"), st.just(b"")))


@st.composite
def hostile_requests(draw: Any) -> tuple[bytes, str]:
    """A request's bytes, and which server it goes to (``auth``, ``api`` or ``proxy``)."""
    target = draw(PATHS)
    query = draw(TEXT)
    if query:
        target += b"?" + query.replace(b" ", b"%20")
    data = compose(draw(METHODS), target, draw(VERSIONS), draw(st.lists(HEADER, max_size=4)), draw(FRAMING),
                   draw(st.binary(max_size=200)), draw(st.booleans()))
    return data, draw(st.sampled_from(["auth", "api", "proxy"]))


def compose(method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]],
            framing: tuple[str, bytes], body: bytes, many_headers: bool) -> bytes:
    head = [b" ".join(part for part in (method, target, version) if part), b"Host: h", b"Connection: close"]
    head += [name + b": " + value for name, value in headers]
    if many_headers:
        head += [b"X-Many-%d: 1" % i for i in range(150)]
    kind, value = framing
    if kind == "length":
        head.append(b"Content-Length: " + value)
        payload = body
    elif kind in ("chunked", "both"):
        head.append(b"Transfer-Encoding: chunked")
        if kind == "both":
            head.append(b"Content-Length: " + value)
        size = value or hex(len(body))[2:].encode()
        payload = size + b"\r\n" + body + b"\r\n0\r\n\r\n"
    elif kind == "gzip":
        head.append(b"Transfer-Encoding: gzip")
        payload = body
    else:
        payload = b""
    return b"\r\n".join(head) + b"\r\n\r\n" + payload


def is_tunnel(answer: bytes) -> bool:
    """A CONNECT to a real host, accepted: the requests inside the tunnel are the ones recorded."""
    return answer.startswith(b"HTTP/1.1 200 Connection Established\r\n")
