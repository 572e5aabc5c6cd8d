"""Tests for rfcheck.checks.flow: real scenarios against the httpx example and broken variants of it.

Each broken target changes one thing of the correct example (``Acme``), runs the check's
own scenarios through :class:`rfcheck.harness.Harness`, and the test asserts the status
and that the evidence names what was wrong. ``make_judge`` is shared with the SCOPE and
ORG tests.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest

from rfcheck import Environment
from rfcheck.checks import CHECKS, Context
from rfcheck.checks import flow  # noqa: F401  (registers the checks)
from rfcheck.config import TargetConfig
from rfcheck.harness import Harness
from rfcheck.provider.accounts import AUTHORIZATION_CODE
from rfcheck.report.model import Finding
from rfcheck.scenarios import ScenarioResult

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "httpx_code" / "acme_invoices.py"
FULL_SCOPES = ("openid", "profile", "email", "offline_access", "user:read")


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rfcheck_tests_acme_invoices", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


acme = _load_example()
Acme: type = acme.AcmeInvoices
Judge = Callable[..., Finding]


def edit_url(url: str, drop: tuple[str, ...] = (), **values: str) -> str:
    """``url`` with query parameters removed or set."""
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k not in drop}
    return parts._replace(query=urlencode({**query, **values})).geturl()


def start_harness(target: type, scopes: tuple[str, ...], flow: str = AUTHORIZATION_CODE) -> Harness:
    """A started harness whose target is ``target`` built like the example's ``make_target``;
    the target gets the harness as ``rfcheck`` (to turn on faults or find API keys)."""
    config = TargetConfig(file=Path("rfcheck.toml"), root=Path("."), name=target.__name__, kind="python",
                          flow=flow, network="test", redirect_uri="http://localhost:8000/callback",
                          scopes=scopes, project=Path("."))

    def make(env: Environment) -> Any:
        made = target(client_id=env.client_id, client_secret=env.client_secret, redirect_uri=env.redirect_uri,
                      network=env.network, scopes=tuple(env.scopes))
        made.rfcheck = harness
        return made

    harness = Harness(config, make)
    harness.start()
    return harness


@contextmanager
def make_judge() -> Iterator[Judge]:
    """``judge(ID, target, scopes)``: run the check on its own scenarios; one harness per target."""
    harnesses: dict[tuple[type, tuple[str, ...]], Harness] = {}

    def judge(requirement_id: str, target: type = Acme, scopes: tuple[str, ...] = FULL_SCOPES) -> Finding:
        key = (target, scopes)
        if key not in harnesses:
            harnesses[key] = start_harness(target, scopes)
        harness, check = harnesses[key], CHECKS[requirement_id]
        return check.function(Context(harness, {name: harness.scenario(name) for name in check.scenarios}))

    try:
        yield judge
    finally:
        for harness in harnesses.values():
            harness.stop()


@pytest.fixture(scope="module")
def judge() -> Iterator[Judge]:
    with make_judge() as run:
        yield run


def details(finding: Finding) -> str:
    return " | ".join(e.detail for e in finding.evidence)


# -- broken variants of the example -------------------------------------------------
class NoPkce(Acme):  # type: ignore[misc, valid-type]
    def start_login(self) -> str:
        return edit_url(super().start_login(), drop=("code_challenge", "code_challenge_method"))

    def _token_request(self, form: dict[str, str]) -> Any:
        return super()._token_request({k: v for k, v in form.items() if k != "code_verifier"})


class PlainPkce(Acme):  # type: ignore[misc, valid-type]
    def start_login(self) -> str:
        url = super().start_login()
        return edit_url(url, code_challenge=self._pending.verifier, code_challenge_method="plain")


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
        self.rfcheck.provider.faults.fail_token_endpoint(429, 1, 0)
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
    finding = CHECKS["FLOW-02"].function(Context(harness, {"forged_callback": result}))
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
        finding = CHECKS["FLOW-04"].function(Context(harness, {"forged_callback": result}))
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
