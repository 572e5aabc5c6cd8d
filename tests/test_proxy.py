"""Tests for rfcheck.transport.proxy: through the proxy, CONNECT tunnels and absolute-form
requests to auth.request.finance and api.request.finance reach the mock (curl and requests
as clients); anything else is refused, never forwarded, and recorded as host "other" (the
evidence SEC-04 reads). Last, proxy mode end to end: a web app that hard-codes the real hosts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from rfcheck.harness import Harness
from rfcheck.journal import Exchange
from rfcheck.provider.app import Provider
from rfcheck.tls import RunCA
from rfcheck.transport.proxy import ProxyServer
from tests.helpers import eventually

DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture
def ca(tmp_path: Path) -> RunCA:
    return RunCA(tmp_path)


@pytest.fixture
def proxy(provider: Provider, ca: RunCA) -> Iterator[str]:
    server = ProxyServer(provider, ca)
    yield server.start()
    server.stop()


def curl(proxy: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "--silent", "--show-error", "--max-time", "5", "--proxy", proxy, *args],
                          capture_output=True, text=True, timeout=10)


def seen(provider: Provider) -> list[tuple[str, str, str, int]]:
    return [(e.host, e.method, e.url, e.status) for e in provider.journal]


def only(provider: Provider) -> Exchange:
    (exchange,) = list(provider.journal)
    return exchange


# -- CONNECT tunnels ------------------------------------------------------------------------------
def test_curl_tunnels_to_both_real_hosts_reach_the_mock(proxy: str, ca: RunCA, provider: Provider) -> None:
    discovery = curl(proxy, "--cacert", ca.ca_file, "https://auth.request.finance" + DISCOVERY)
    assert discovery.returncode == 0, discovery.stderr
    assert json.loads(discovery.stdout)["issuer"] == "https://auth.request.finance/"
    invoices = curl(proxy, "--cacert", ca.ca_file, "--write-out", "%{http_code}", "--output", "/dev/null",
                    "-H", "X-Network: test", "https://api.request.finance/invoices")
    assert invoices.stdout == "401", invoices.stderr  # the mock's answer: no token
    assert seen(provider) == [("auth", "GET", "https://auth.request.finance" + DISCOVERY, 200),
                              ("api", "GET", "https://api.request.finance/invoices", 401)]


def test_requests_tunnels_reach_the_mock_and_keep_the_connection(proxy: str, ca: RunCA, provider: Provider) -> None:
    with requests.Session() as session:
        session.proxies = {"https": proxy}
        for _ in range(2):  # the second request goes through the same tunnel
            answer = session.get("https://api.request.finance/invoices", verify=ca.ca_file, timeout=5,
                                 headers={"Authorization": "Bearer not-a-token", "X-Network": "test"})
            assert answer.status_code == 401
            assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert [(e.host, e.path, e.header("authorization")) for e in provider.journal] == [
        ("api", "/invoices", "Bearer not-a-token")] * 2


def test_a_tunnel_is_only_trusted_with_the_runs_ca(proxy: str, provider: Provider) -> None:
    refused = curl(proxy, "https://auth.request.finance" + DISCOVERY)  # the system's CAs only
    assert refused.returncode == 60, refused.stderr  # curl: peer certificate cannot be authenticated
    assert list(provider.journal) == []
    assert "a client refused the TLS certificate of a tunnel to Request Finance's real hosts" in "".join(
        eventually(lambda: provider.notices))


def test_curl_connect_to_another_host_is_refused_and_recorded(proxy: str, provider: Provider) -> None:
    refused = curl(proxy, "https://example.com/")
    assert refused.returncode == 56 and "403" in refused.stderr, refused.stderr
    exchange = only(provider)
    assert (exchange.host, exchange.method, exchange.url) == ("other", "CONNECT", "https://example.com/")
    assert exchange.facts["foreign"] is True


def test_requests_connect_to_another_host_is_refused(proxy: str, ca: RunCA, provider: Provider) -> None:
    with pytest.raises(requests.exceptions.ProxyError, match="403"):
        requests.get("https://telemetry.example:8443/collect", proxies={"https": proxy}, verify=ca.ca_file,
                     timeout=5)
    assert seen(provider) == [("other", "CONNECT", "https://telemetry.example:8443/", 403)]


# -- absolute-form requests -------------------------------------------------------------------------
def test_absolute_form_http_requests_to_the_real_hosts_reach_the_mock(proxy: str, provider: Provider) -> None:
    answer = requests.get("http://api.request.finance/invoices", proxies={"http": proxy}, timeout=5,
                          headers={"X-Network": "test"})
    assert answer.status_code == 401, answer.text
    by_curl = curl(proxy, "http://auth.request.finance" + DISCOVERY)
    assert json.loads(by_curl.stdout)["issuer"] == "https://auth.request.finance/", by_curl.stdout
    # the journal keeps the scheme the target used
    assert seen(provider) == [("api", "GET", "http://api.request.finance/invoices", 401),
                              ("auth", "GET", "http://auth.request.finance" + DISCOVERY, 200)]


def test_absolute_form_https_requests_reach_the_mock(proxy: str, provider: Provider) -> None:
    # what axios sends through an http proxy: the https URL in the request line, no tunnel
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GET https://api.request.finance/currency HTTP/1.1\r\nHost: api.request.finance\r\n"
                    b"X-Network: test\r\nConnection: close\r\n\r\n")
        status_line = raw.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 401"), status_line
    assert seen(provider) == [("api", "GET", "https://api.request.finance/currency", 401)]


def test_an_absolute_form_request_with_a_token_to_another_host_is_answered_502_and_recorded(
        proxy: str, provider: Provider) -> None:
    answer = requests.get("http://telemetry.example/collect?event=login", proxies={"http": proxy}, timeout=5,
                          headers={"Authorization": "Bearer x"})
    assert answer.status_code == 502
    assert "telemetry.example" in answer.json()["message"]
    exchange = only(provider)
    assert (exchange.host, exchange.url, exchange.status) == ("other", "http://telemetry.example/collect?event=login",
                                                              502)
    assert exchange.header("authorization") == "Bearer x", "the evidence of a token sent elsewhere"


def test_absolute_form_with_a_body_reaches_the_mock_whole(proxy: str, provider: Provider) -> None:
    answer = requests.post("http://auth.request.finance/oauth/token", proxies={"http": proxy}, timeout=5,
                           data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x" * 40,
                                 "audience": "accounts"})
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert only(provider).form["grant_type"] == "client_credentials"


# -- proxy mode end to end -------------------------------------------------------------------------
@pytest.fixture
def proxied_harness(toml_harness: Callable[..., Harness]) -> Harness:
    app = Path(__file__).parent / "apps" / "web_app.py"
    return toml_harness({
        "target": {"name": "hard-coded", "kind": "web", "redirect_uri": "http://127.0.0.1:{port}/callback"},
        "target.web": {"start": f'"{sys.executable}" "{app}"', "url": "http://127.0.0.1:{port}",
                       "actions": ["/invoices"]},
        "target.env": {"RF_ISSUER": "https://auth.request.finance", "RF_API_URL": "https://api.request.finance",
                       "RF_CLIENT_ID": "{client_id}", "RF_CLIENT_SECRET": "{client_secret}",
                       "RF_REDIRECT_URI": "{redirect_uri}", "PORT": "{port}"},
        "target.intercept": {"proxy": True}})


def test_an_app_that_hard_codes_the_real_hosts_is_judged_through_the_proxy(proxied_harness: Harness) -> None:
    values = proxied_harness.values
    assert values["proxy_url"].startswith("http://127.0.0.1:")
    assert values["issuer"].startswith("http://"), "proxy mode alone does not turn the loopback servers to https"
    result = proxied_harness.scenario("baseline")
    assert [(e.kind, e.ok) for e in result.events] == [("login", True)] + [("unit", True)] * 3, result.events
    mock = [e for e in result.exchanges if e.host != "app"]  # not the browser's requests to the app itself
    assert [(e.origin, e.host, e.url) for e in mock][:3] == [
        ("browser", "auth", mock[0].url),
        ("target", "auth", "https://auth.request.finance/oauth/token"),
        ("target", "api", "https://api.request.finance/invoices")]
    assert mock[0].url.startswith("https://auth.request.finance/authorize?")


def _connect(proxy: str, authority: str) -> bytes:
    host, port = proxy.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        return sock.recv(4096)


def test_connect_host_names_are_case_insensitive(proxy: str, provider: Provider) -> None:
    assert _connect(proxy, "AUTH.REQUEST.FINANCE:443").startswith(b"HTTP/1.1 200 "), "not a foreign host"
    assert seen(provider) == []


def test_a_malformed_connect_is_answered_400_and_recorded(proxy: str, provider: Provider) -> None:
    assert _connect(proxy, "example.com:abc").startswith(b"HTTP/1.1 400 ")
    assert [(e.host, e.method, e.url) for e in provider.journal.since(0)] == [("other", "CONNECT",
                                                                             "https://example.com/")]


def test_a_client_that_never_finishes_its_head_is_answered_408_and_recorded(proxy: str, provider: Provider,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import rfcheck.transport.http11 as module

    monkeypatch.setattr(module, "HEAD_TIMEOUT", 0.3)
    host, port = proxy.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as slow:
        slow.sendall(b"CONNECT auth.request.finance:443 HTTP/1.1\r\n")  # and nothing more
        slow.settimeout(5)
        assert slow.recv(100).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert [(e.method, e.status, e.facts.get("refused_status")) for e in provider.journal] == [("CONNECT", 408, 408)]
    assert _connect(proxy, "api.request.finance:443").startswith(b"HTTP/1.1 200 ")
