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


def _examples() -> str:
    section = README.read_text().split("## Using the mock in your own tests", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)\n```", section, flags=re.S)
    return code


def test_the_readme_examples_pass_as_they_are(pytester: pytest.Pytester) -> None:
    code = _examples()
    tests = re.findall(r"^def (test_\w+)", code, flags=re.M)
    assert len(tests) == 4
    pytester.makepyfile(test_examples=code)
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
