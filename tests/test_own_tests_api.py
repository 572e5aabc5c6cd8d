"""The own-tests API as the README documents it: its examples run as they are, in a test session
of their own without --rfcheck, and every one passes; its functions refuse what they cannot do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rfcheck.facts import CLIENT_CREDENTIALS
from rfcheck.provider.app import Provider
from rfcheck.testing import LoginFailed, consent_as_user, login

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples() -> list[str]:
    section = README.read_text().split("## Using the mock in your own tests", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)\n```", section, flags=re.S)


def test_the_readme_examples_pass_as_they_are(pytester: pytest.Pytester) -> None:
    httpx_only, any_client = _examples()
    files = {"test_httpx_examples": httpx_only, "test_any_client_examples": any_client}
    tests = [name for code in files.values() for name in re.findall(r"^def (test_\w+)", code, flags=re.M)]
    assert len(tests) == 6
    pytester.makepyfile(**files)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(tests))


def test_a_client_credentials_client_cannot_log_a_user_in() -> None:
    provider = Provider()
    client = provider.register_client(CLIENT_CREDENTIALS)
    with pytest.raises(LoginFailed, match="client_credentials client: it cannot log a user in"):
        login(provider, client)


def test_consent_refuses_what_is_not_the_mock_s_authorize_endpoint() -> None:
    with pytest.raises(LoginFailed, match="not the /authorize endpoint"):
        consent_as_user(Provider(), "https://login.example.com/authorize?client_id=x")


def test_a_login_without_openid_gets_no_id_token() -> None:
    provider = Provider()
    client = provider.register_client("authorization_code", ("http://localhost:8000/callback",))
    tokens = login(provider, client, scopes=("offline_access",))
    assert tokens.id_token == "" and tokens.refresh_token and tokens.expires_in == 86_400
    assert "openid" not in tokens.scope.split()


def test_the_loopback_server_is_gone_after_its_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_server='''
        import os, socket, pytest

        seen = {}

        @pytest.mark.parametrize("rfcheck_tls", [False, True])
        def test_serves(rfcheck_server, rfcheck_tls):
            seen[rfcheck_tls] = (rfcheck_server.issuer, rfcheck_server.ca_file)
            assert rfcheck_server.issuer.startswith("https://" if rfcheck_tls else "http://")
            assert (rfcheck_server.ca_file is not None) == rfcheck_tls
            assert rfcheck_server.url_for("invoices") == rfcheck_server.api_url + "/invoices"
            assert rfcheck_server.url_for("/jwks", host="auth").startswith(rfcheck_server.issuer)
            with pytest.raises(ValueError, match="'api' and 'auth'"):
                rfcheck_server.url_for("/x", host="admin")

        def test_after():
            for issuer, ca_file in seen.values():
                port = int(issuer.rsplit(":", 1)[1])
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", port), timeout=2)
                assert ca_file is None or not os.path.exists(ca_file)
            assert len(seen) == 2
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_an_internal_error_of_the_mock_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken_mock='''
        import httpx

        def test_uses_the_mock(rfcheck_provider, monkeypatch):
            def boom(call):
                raise RuntimeError("a bug in the mock")
            monkeypatch.setattr("rfcheck.provider.oauth.jwks", boom)
            monkeypatch.setitem(type(rfcheck_provider).__dict__["_route"].__globals__["_AUTH_ROUTES"],
                                ("GET", "/.well-known/jwks.json"), boom)
            answer = httpx.get("https://auth.request.finance/.well-known/jwks.json")
            assert answer.status_code == 500  # what the app saw; the test itself still passes here
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the mock hit 1 internal error(s) while serving this test; the first: "
                                 "RuntimeError: a bug in the mock*"])
