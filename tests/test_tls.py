"""Tests for rfcheck.tls and the loopback server's TLS: certificates from the run's CA are
accepted by clients that trust ``ca_file`` and refused by those that do not; they stay valid
for years (a target's clock may be moved a long way); tls = true in the target config turns
the mock's URLs into https and tells the target's process to trust the CA."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import time
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from rfcheck.harness import Harness
from rfcheck.provider.app import Provider
from rfcheck.tls import LOOPBACK_NAMES, RunCA
from rfcheck.transport.server import LoopbackServer, client_tls_context
from tests.helpers import eventually

DISCOVERY = "/.well-known/openid-configuration"
YEAR = dt.timedelta(days=365)



@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> RunCA:
    return RunCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def https_server(ca: RunCA, provider: Provider) -> Iterator[LoopbackServer]:
    paths = ca.issue(LOOPBACK_NAMES, "loopback")
    server = LoopbackServer(provider, "auth", tls=(paths.cert_file, paths.key_file))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def https_auth(https_server: LoopbackServer) -> str:
    return https_server.url


def certificate(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


# -- the certificates ----------------------------------------------------------------------
def test_the_ca_and_its_certificates_stay_valid_beyond_a_year(ca: RunCA) -> None:
    server = certificate(ca.issue(("127.0.0.1", "localhost"), "server").cert_file)
    now = dt.datetime.now(dt.timezone.utc)
    for cert in (certificate(ca.ca_file), server):
        assert cert.not_valid_before_utc < now - dt.timedelta(hours=1), "valid already (clock skew)"
        assert cert.not_valid_after_utc > now + YEAR + dt.timedelta(days=30), "valid past a travelled year"


def test_a_server_certificate_names_its_hosts_and_is_signed_by_the_ca(ca: RunCA) -> None:
    paths = ca.issue(("auth.request.finance",), "auth")
    cert = certificate(paths.cert_file)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["auth.request.finance"]
    assert cert.issuer == certificate(ca.ca_file).subject
    cert.verify_directly_issued_by(certificate(ca.ca_file))
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert Path(paths.key_file).read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_loopback_names_cover_ip_addresses_and_localhost(ca: RunCA) -> None:
    cert = certificate(ca.issue(LOOPBACK_NAMES, "loopback").cert_file)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


# -- the loopback server over https ----------------------------------------------------------------
def test_requests_trusts_the_mock_with_the_ca_file_only(https_auth: str, ca: RunCA,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # REQUESTS_CA_BUNDLE (set machine-wide here) would override a Session's verify= otherwise
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert https_auth.startswith("https://127.0.0.1:")
    with requests.Session() as session:
        session.verify = ca.ca_file
        answer = session.get(https_auth + DISCOVERY, timeout=5)
        assert answer.status_code == 200
        assert answer.json()["issuer"] == https_auth + "/", "the issuer is the https URL"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https_auth + DISCOVERY, timeout=5)  # the system's CAs do not know the run's CA


def test_the_certificate_is_valid_for_localhost_too(https_auth: str, ca: RunCA) -> None:
    port = httpx.URL(https_auth).port
    answer = requests.get(f"https://localhost:{port}{DISCOVERY}", verify=ca.ca_file, timeout=5)
    assert answer.status_code == 200


def test_httpx_trusts_the_mock_with_the_ca_file_only(https_auth: str, ca: RunCA, tmp_path: Path) -> None:
    assert httpx.get(https_auth + DISCOVERY, verify=client_tls_context(ca.ca_file)).status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_auth + DISCOVERY, verify=ssl.create_default_context())
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_auth + DISCOVERY, verify=client_tls_context(RunCA(tmp_path).ca_file))  # another run's CA


def test_a_client_that_refuses_the_certificate_is_named_in_the_notes(https_auth: str, provider: Provider) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_auth + DISCOVERY, verify=ssl.create_default_context())
    assert eventually(lambda: provider.notices) == [
        f"a client refused the TLS certificate of {https_auth} (TLSV1_ALERT_UNKNOWN_CA): the target does not trust "
        "the run's CA, so it could not reach the mock over TLS; the README's \"What rfcheck does to each runtime\" "
        "says how each runtime is given it"]
    assert list(provider.journal) == []  # no request came


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def _node_fetch(url: str) -> str:
    done = subprocess.run(["node", "-e", "fetch(process.argv[1]).then(r => console.log(r.status), "
                           "e => console.log(e.cause && e.cause.code))", url],
                          capture_output=True, text=True, timeout=30)
    return done.stdout.strip() + done.stderr


def test_a_node_client_that_hangs_up_on_the_certificate_is_named_too(https_server: LoopbackServer,
                                                                     provider: Provider) -> None:
    # Node.js checks the certificate once it has it and hangs up without a TLS alert; a hang-up is also how
    # Go drops a dial it gave up, so it is named when the scenario ends with no request ever over TLS
    https_auth = https_server.url
    assert _node_fetch(https_auth + DISCOVERY) == "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    time.sleep(0.5)
    assert provider.notices == [], "not yet: a client that trusts the CA may still come"
    https_server.settle()
    assert eventually(lambda: provider.notices) == [
        f"a client refused the TLS certificate of {https_auth} (no TLS alert: the client hung up once it had the "
        "certificate, before any request): the target does not trust the run's CA, so it could not reach the mock "
        "over TLS; the README's \"What rfcheck does to each runtime\" says how each runtime is given it"]


def test_a_failed_handshake_sends_its_alert(https_auth: str, ca: RunCA) -> None:
    # no cipher in common (the server's key is ECDSA, the client offers RSA only): told why, not just cut off
    context = client_tls_context(ca.ca_file)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    host, port = https_auth.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        with pytest.raises(ssl.SSLError, match="ALERT_HANDSHAKE_FAILURE"):
            context.wrap_socket(sock, server_hostname="127.0.0.1")


def test_a_plain_http_request_to_the_https_server_is_answered_400_and_recorded(https_auth: str,
                                                                               provider: Provider) -> None:
    # an app configured with http:// for the mock: the request is evidence, as nginx answers it
    answer = httpx.get(https_auth.replace("https://", "http://") + DISCOVERY, timeout=2)
    assert answer.status_code == 400 and "plain HTTP request on a TLS port" in answer.text
    (exchange,) = list(provider.journal)
    assert (exchange.method, exchange.path, exchange.status) == ("GET", DISCOVERY, 400)


# -- tls = true in the target config -----------------------------------------------------------------
@pytest.fixture
def tls_harness(toml_harness: Callable[..., Harness]) -> Callable[..., Harness]:
    def make(target: dict[str, Any], **tables: dict[str, Any]) -> Harness:
        return toml_harness({"target": {"name": "tls", **target}, **tables})

    return make


def test_tls_true_serves_https_and_the_target_trusts_the_ca_through_its_environment(
        tls_harness: Callable[..., Harness]) -> None:
    # the web app of tests/apps uses requests, which reads REQUESTS_CA_BUNDLE from its environment
    app = Path(__file__).parent / "apps" / "web_app.py"
    harness = tls_harness(
        {"kind": "web", "tls": True, "redirect_uri": "http://127.0.0.1:{port}/callback"},
        **{"target.web": {"start": f'"{sys.executable}" "{app}"', "url": "http://127.0.0.1:{port}",
                          "actions": ["/invoices"]},
           "target.env": {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
                          "RF_CLIENT_SECRET": "{client_secret}", "RF_REDIRECT_URI": "{redirect_uri}",
                          "PORT": "{port}", "CA": "{ca_file}"}})
    assert harness.values["issuer"].startswith("https://127.0.0.1:")
    assert harness.values["api_url"].startswith("https://127.0.0.1:")
    assert Path(harness.values["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    result = harness.scenario("baseline")
    assert [(e.kind, e.ok) for e in result.events] == [("login", True)] + [("unit", True)] * 3, result.events
    assert [(e.host, e.path, e.status) for e in result.exchanges if e.origin == "target"] == [
        ("auth", "/oauth/token", 200)] + [("api", "/invoices", 200)] * 3
    assert all(e.url.startswith("https://") for e in result.exchanges if e.host != "app")


def test_tls_true_sets_the_ca_variables_of_the_targets_process(tls_harness: Callable[..., Harness]) -> None:
    harness = tls_harness({"kind": "command", "flow": "client_credentials", "tls": True},
                          **{"target.command": {"run": "env"}})
    result = harness.scenario("baseline")
    ca_file = harness.values["ca_file"]
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert f"{name}={ca_file}" in result.output.splitlines()
    harness.stop()
    assert not Path(ca_file).exists(), "the run's certificates and keys are removed at the end"


def test_without_tls_the_mock_is_plain_http_and_there_is_no_ca(tls_harness: Callable[..., Harness]) -> None:
    harness = tls_harness({"kind": "command", "flow": "client_credentials"},
                          **{"target.command": {"run": "env"}})
    assert harness.values["issuer"].startswith("http://127.0.0.1:")
    assert harness.values["ca_file"] == "" and harness.ca is None


def test_a_hang_up_beside_requests_over_tls_is_no_refused_certificate(https_server: LoopbackServer, ca: RunCA,
                                                                       provider: Provider) -> None:
    # a client that sent requests over TLS trusts the CA: its dials dropped at once (Go cancels the dials a
    # finished request started) say nothing about the certificate
    assert _node_fetch(https_server.url + DISCOVERY) == "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    answer = httpx.get(https_server.url + DISCOVERY, verify=client_tls_context(ca.ca_file), timeout=5)
    assert answer.status_code == 200
    https_server.settle()
    assert provider.notices == []
