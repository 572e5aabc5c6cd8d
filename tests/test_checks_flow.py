"""Tests for rfcheck.checks.flow: real scenarios against the httpx example and broken variants of it.

Each broken target changes one thing of the correct example (``Acme``), runs the check's
own scenarios through :class:`rfcheck.harness.Harness`, and the test asserts the status
and that the evidence names what was wrong. The ``judge`` fixture (conftest.py), ``Acme``,
``PlainPkce`` and the other shared helpers come from ``tests/helpers.py``, as for the SCOPE,
ORG, TOKEN and CC tests.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from rfcheck.checks import CHECKS
from rfcheck.checks import flow  # noqa: F401  (registers the checks)
from rfcheck.config import TargetConfig
from rfcheck.harness import Harness
from rfcheck.facts import AUTHORIZATION_CODE
from rfcheck.scenarios import ScenarioResult
from tests.helpers import FULL_SCOPES, Acme, Judge, PlainPkce, acme, details, edit_url, start_harness


# -- broken variants of the example -------------------------------------------------
class NoPkce(Acme):  # type: ignore[misc, valid-type]
    def start_login(self) -> str:
        return edit_url(super().start_login(), drop=("code_challenge", "code_challenge_method"))

    def _token_request(self, form: dict[str, str]) -> Any:
        return super()._token_request({k: v for k, v in form.items() if k != "code_verifier"})


class NoStateCheck(Acme):  # type: ignore[misc, valid-type]
    """Takes any callback's state as its own (no login CSRF protection)."""

    def finish_login(self, callback_url: str) -> None:
        state = parse_qs(urlsplit(callback_url).query).get("state", [""])[0]
        if self._pending is not None:
            self._pending = replace(self._pending, state=state)
        super().finish_login(callback_url)


class NoStateNoPkce(NoStateCheck, NoPkce):
    pass


class WrongAudience(Acme):  # type: ignore[misc, valid-type]
    def start_login(self) -> str:
        return edit_url(super().start_login(), audience="https://api.request.finance")


class UnregisteredRedirect(Acme):  # type: ignore[misc, valid-type]
    def start_login(self) -> str:
        return edit_url(super().start_login(), redirect_uri="http://localhost:8000/callback/")


class ElsewhereLogin(Acme):  # type: ignore[misc, valid-type]
    def start_login(self) -> str:
        return "https://login.example.com/authorize?client_id=x"


class ReusesCode(Acme):  # type: ignore[misc, valid-type]
    def finish_login(self, callback_url: str) -> None:
        super().finish_login(callback_url)
        code = parse_qs(urlsplit(callback_url).query)["code"][0]
        self._http.post(f"{self._auth}/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": self._redirect_uri,
            "client_id": self._client_id, "client_secret": self._client_secret})


class RetriesAfter429(Acme):  # type: ignore[misc, valid-type]
    """Meets a 429 on its code exchange and retries it: not a reuse."""

    def start_login(self) -> str:
        self.rfcheck.lane.provider.faults.fail_token_endpoint(429, 1, 0)
        return super().start_login()


class NoClientAuth(Acme):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        resp = self._http.post(f"{self._auth}/oauth/token", data={**form, "client_id": self._client_id})
        if resp.status_code != 200:
            raise acme.TokenEndpointError(resp.json().get("error", ""))
        return resp.json()


class RedirectMismatch(Acme):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        if "redirect_uri" in form:
            form = {**form, "redirect_uri": form["redirect_uri"] + "?from=exchange"}
        return super()._token_request(form)


class SecretInAuthorizationUrl(Acme):  # type: ignore[misc, valid-type]
    def start_login(self) -> str:
        return edit_url(super().start_login(), client_secret=self._client_secret)


class TokenInQuery(Acme):  # type: ignore[misc, valid-type]
    def _send(self, session: Any, path: str, org_id: str | None) -> Any:
        headers = {"X-Network": self._network}
        return self._http.get(f"{self._api}{path}?access_token={session.access_token}", headers=headers)


class Implicit(Acme):  # type: ignore[misc, valid-type]
    """response_type=id_token token, tokens from the fragment; never a refresh token."""

    drop: tuple[str, ...] = ()
    wants_refresh_token = False

    def start_login(self) -> str:
        url = edit_url(super().start_login(), drop=("code_challenge", "code_challenge_method") + self.drop,
                       response_type="id_token token")
        return url

    def finish_login(self, callback_url: str) -> None:
        answer = dict(parse_qsl(urlsplit(callback_url).fragment))
        if "access_token" not in answer:
            raise acme.LoginError(f"authorization failed: {answer.get('error')}")
        if self.wants_refresh_token and "refresh_token" not in answer:
            raise acme.LoginError("no refresh token in the answer")
        self._session = acme._Session(answer["access_token"], time.time() + float(answer["expires_in"]), None,
                                      "sub", "iss")


class ImplicitWithoutNonce(Implicit):
    drop = ("nonce",)


class ImplicitExpectingRefresh(Implicit):
    wants_refresh_token = True


# -- FLOW-01 ------------------------------------------------------------------------
def test_flow01_passes_the_correct_example(judge: Judge) -> None:
    finding = judge("FLOW-01")
    assert finding.status == "pass", finding


@pytest.mark.parametrize(("target", "scopes", "named"), [
    (WrongAudience, FULL_SCOPES, "audience='https://api.request.finance': expected accounts"),
    (UnregisteredRedirect, FULL_SCOPES, "redirect_uri 'http://localhost:8000/callback/' is not the registered"),
    (Acme, ("profile", "email", "offline_access", "user:read"), "does not contain openid"),
    (Acme, ("openid", "invoices:write"), "unknown scope 'invoices:write'"),
    (ElsewhereLogin, FULL_SCOPES, "not the /authorize endpoint"),
])
def test_flow01_fails_naming_the_wrong_parameter(judge: Judge, target: type, scopes: tuple[str, ...],
                                                 named: str) -> None:
    finding = judge("FLOW-01", target, scopes)
    assert finding.status == "fail", finding
    assert named in details(finding)


def test_flow01_leaves_pkce_and_nonce_refusals_to_their_own_checks(judge: Judge) -> None:
    assert judge("FLOW-01", PlainPkce).status == "pass"
    assert judge("FLOW-01", ImplicitWithoutNonce).status == "pass"


# -- FLOW-02 ------------------------------------------------------------------------
def test_flow02_passes_when_the_state_check_refuses_the_callback(judge: Judge) -> None:
    finding = judge("FLOW-02")
    assert finding.status == "pass" and "state mismatch" in finding.reason


def test_flow02_passes_when_pkce_refuses_the_injected_code(judge: Judge) -> None:
    finding = judge("FLOW-02", NoStateCheck)
    assert finding.status == "pass" and "PKCE" in finding.reason


def test_flow02_fails_when_the_injected_code_is_redeemed(judge: Judge) -> None:
    finding = judge("FLOW-02", NoStateNoPkce)
    assert finding.status == "fail"
    assert "the attacker's code was redeemed" in details(finding)


def test_flow02_skips_when_the_exchange_failed_for_another_reason(judge: Judge) -> None:
    class NoStateMismatchedRedirect(NoStateCheck, RedirectMismatch):
        pass

    finding = judge("FLOW-02", NoStateMismatchedRedirect)
    assert finding.status == "skip" and "redirect_mismatch" in finding.reason


def test_flow02_skips_a_scenario_that_did_not_run() -> None:
    harness = Harness(TargetConfig(Path("x"), Path("."), "t", "python", AUTHORIZATION_CODE, "test", "", (), Path(".")))
    result = ScenarioResult("forged_callback", "error", "the target factory raised")
    finding = CHECKS["FLOW-02"].function(harness.check_context({"forged_callback": result}))
    assert finding.status == "skip" and "could not run" in finding.reason


# -- FLOW-03 and FLOW-07 ------------------------------------------------------------
def test_flow03_warns_without_pkce(judge: Judge) -> None:
    assert judge("FLOW-03").status == "pass"
    finding = judge("FLOW-03", NoPkce)
    assert finding.status == "warn" and "no code_challenge" in details(finding)


def test_flow03_skips_without_code_requests(judge: Judge) -> None:
    assert judge("FLOW-03", Implicit).status == "skip"


def test_flow07_fails_plain_with_the_refused_request(judge: Judge) -> None:
    assert judge("FLOW-07").status == "pass"
    finding = judge("FLOW-07", PlainPkce)
    assert finding.status == "fail"
    assert "code_challenge_method=plain" in details(finding) and "refused" in details(finding)
    assert finding.evidence[0].request == "GET /authorize"


def test_flow07_skips_without_pkce(judge: Judge) -> None:
    assert judge("FLOW-07", NoPkce).status == "skip"


# -- FLOW-04 ------------------------------------------------------------------------
def test_flow04_passes_single_authenticated_exchanges(judge: Judge) -> None:
    assert judge("FLOW-04").status == "pass"


def test_flow04_a_retry_after_429_is_not_reuse(judge: Judge) -> None:
    finding = judge("FLOW-04", RetriesAfter429)
    assert finding.status == "pass", finding


@pytest.mark.parametrize(("target", "named"), [
    (ReusesCode, "sent again"),
    (NoClientAuth, "no client authentication"),
    (RedirectMismatch, "differs from the one sent to /authorize"),
])
def test_flow04_fails(judge: Judge, target: type, named: str) -> None:
    finding = judge("FLOW-04", target)
    assert finding.status == "fail", finding
    assert named in details(finding)


def test_flow04_ignores_the_forged_code_refused_by_pkce(judge: Judge) -> None:
    harness = start_harness(NoStateCheck, FULL_SCOPES)
    try:
        result = harness.scenario("forged_callback")
        assert any(e.facts.get("code_status") == "pkce_downgrade" for e in result.exchanges)
        finding = CHECKS["FLOW-04"].function(harness.check_context({"forged_callback": result}))
    finally:
        harness.stop()
    assert finding.status == "skip"  # the attacker's code is FLOW-02's, and nothing else was exchanged


# -- FLOW-05 ------------------------------------------------------------------------
def test_flow05_passes_the_correct_example(judge: Judge) -> None:
    assert judge("FLOW-05").status == "pass"


@pytest.mark.parametrize(("target", "named"), [
    (SecretInAuthorizationUrl, "the client secret in query parameter 'client_secret'"),
    (TokenInQuery, "an access token in query parameter 'access_token'"),
])
def test_flow05_fails_on_credentials_in_urls(judge: Judge, target: type, named: str) -> None:
    finding = judge("FLOW-05", target)
    assert finding.status == "fail"
    assert named in details(finding)
    assert all("eyJ" not in e.request + e.detail for e in finding.evidence)


def test_flow05_front_channel_answer_is_not_the_target_sending(judge: Judge) -> None:
    assert judge("FLOW-05", Implicit).status == "pass"


# -- FLOW-06 ------------------------------------------------------------------------
def test_flow06_skips_the_code_flow(judge: Judge) -> None:
    finding = judge("FLOW-06")
    assert finding.status == "skip" and "code flow only" in finding.reason


def test_flow06_warns_on_a_conformant_implicit_login(judge: Judge) -> None:
    finding = judge("FLOW-06", Implicit)
    assert finding.status == "warn" and "RFC 9700" in finding.reason


@pytest.mark.parametrize(("target", "named"), [
    (ImplicitWithoutNonce, "no nonce"),
    (ImplicitExpectingRefresh, "no refresh token in the answer"),
])
def test_flow06_fails_a_broken_implicit_login(judge: Judge, target: type, named: str) -> None:
    finding = judge("FLOW-06", target)
    assert finding.status == "fail"
    assert named in details(finding)
