"""Hostile requests for the loopback servers and the proxy, as raw bytes: the vocabulary and the
composition shared by the suite's fuzz test (tests/test_hostile.py) and the benchmark that sends
10,000 of them (bench/hostile.py)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

# well-formed parts are drawn more often than broken ones, so that requests get past the parser
# to the routes, the limits and the tunnels as often as they are refused at the first line
METHODS = st.sampled_from([b"GET", b"POST", b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"HEAD", b"PATCH",
                           b"BREW", b"get", b"CONNECT", b"CONNECT", b"G\x00T", b""])
PATHS = st.sampled_from([b"auth.request.finance:443", b"API.Request.Finance:443", b"/authorize", b"/oauth/token", b"/.well-known/openid-configuration", b"/invoices",
                         b"/users/organizations", b"/userinfo", b"*", b"/", b"/%ff%00", b"/a?b=%zz&c", b"/a\x00b",
                         b"https://auth.request.finance/oauth/token", b"http://api.request.finance/invoices",
                         b"http://example.com:abc/", b"auth.request.finance:443", b"/" + b"a" * 9000])
VERSIONS = st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9", b"XYZ", b""])
TEXT = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\r\n"))
HEADER = st.tuples(st.sampled_from([b"User-Agent", b"Authorization", b"X-Network", b"Content-Type", b"Accept",
                                    b"X-Organization", b"Cookie", b"X-Odd", b" Folded", b"Bad Name", b"Expect"]),
                   st.one_of(TEXT, st.just("AcmeInvoices/1.0 (Société Générale)".encode())))
FRAMING = st.one_of(
    st.tuples(st.just("none"), st.just(b"")),
    st.tuples(st.just("fit"), st.just(b"")),
    st.tuples(st.just("length"), st.sampled_from([b"-5", b"abc", b"16777216", b"0", b"3", b"400", b"1e3"])),
    st.tuples(st.just("chunked"), st.sampled_from([b"", b"zz", b"-1", b"ffffffffffffffffff", b" 3"])),
    st.tuples(st.just("both"), st.just(b"3")),
    st.tuples(st.just("gzip"), st.just(b"")))


@st.composite
def hostile_requests(draw: Any) -> tuple[bytes, str]:
    """A request's bytes, and which server it goes to (``auth``, ``api`` or ``proxy``)."""
    if draw(st.integers(0, 7)) == 0:  # a CONNECT to the proxy, and whatever follows it instead of TLS
        authority = draw(st.sampled_from([b"auth.request.finance:443", b"API.REQUEST.FINANCE:443", b"example.com:443",
                                          b"example.com:abc", b"[::1]:443", b":443", b"auth.request.finance:0"]))
        return (b"CONNECT " + authority + b" HTTP/1.1\r\nHost: " + authority + b"\r\n\r\n"
                + draw(st.binary(max_size=300)), "proxy")
    target = draw(PATHS)
    query = draw(TEXT)
    if query and draw(st.integers(0, 3)) and not target.endswith(b":443"):
        target += b"?" + (quote_from_bytes(query, safe="=&").encode() if draw(st.integers(0, 3)) else query)
    data = compose(draw(METHODS), target, draw(VERSIONS), draw(st.lists(HEADER, max_size=4)), draw(FRAMING),
                   draw(st.binary(max_size=200)), draw(st.integers(0, 9)) == 0)
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
    elif kind == "fit":
        head.append(b"Content-Length: " + str(len(body)).encode())
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


def statuses(answer: bytes) -> list[int]:
    """The status of every answer in what a connection received, read by their framing (a client
    whose framing the server read differently, e.g. a folded ``Connection: close``, may have sent two
    requests), interim ``100 Continue`` and an accepted tunnel's ``200 Connection Established`` left
    out; what follows a tunnel's acceptance is TLS, not answers."""
    found, at = [], 0
    while True:
        match = re.match(rb"HTTP/1\.1 (\d{3}) ([^\r\n]*)\r\n", answer[at:])
        end = answer.find(b"\r\n\r\n", at)
        if match is None or end < 0:
            return found
        status, head = int(match.group(1)), answer[at:end]
        if status == 200 and match.group(2) == b"Connection Established":
            return found
        if status != 100:
            found.append(status)
        length = re.search(rb"\r\ncontent-length: *(\d+)", head, flags=re.IGNORECASE)
        at = end + 4 + (int(length.group(1)) if length else 0)


def is_tunnel(answer: bytes) -> bool:
    """A CONNECT to a real host, accepted: the requests inside the tunnel are the ones recorded."""
    return answer.startswith(b"HTTP/1.1 200 Connection Established\r\n")
