"""OIDC checks, judged on real scenario runs of a tiny in-test integration with switchable defects.

``TinyApp`` is a minimal authorization code client on httpx (served in process by the mock)
whose ``Options`` turn one defect on at a time; ``judge`` runs the scenarios a check reads
through a real :class:`~rfcheck.harness.Harness` and returns the check's finding.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
import pytest

from rfcheck import Environment
from rfcheck.checks import CHECKS, scenarios_read
from rfcheck.checks.groups import load_all
from rfcheck.config import TargetConfig
from rfcheck.harness import Harness
from rfcheck.lanes import Lane
from rfcheck.provider.app import Provider
from rfcheck.report.model import Finding
from rfcheck.targets.base import Driver

AUTH, API = "https://auth.request.finance", "https://api.request.finance"
OTHER_HOST = "https://telemetry.example.com/events"
SCOPES = ("openid", "profile", "email", "offline_access", "user:read")

load_all()


@dataclass(frozen=True)
class Options:
    """One switch per defect; the defaults make a correct integration."""

    verify_id_token: bool = True
    check_nonce: bool = True
    send_nonce: bool = True
    response_type: str = "code"
    check_refreshed_sub: bool = True
    refetch_jwks: bool = True
    api_before_verifying: bool = False
    log_tokens: bool = False
    token_to_other_host: bool = False
    post_to_other_host: bool = False
    create_invoices: bool = False
    audience: str = ""  # another audience than the one rfcheck hands over breaks every login


class LoginRefused(Exception):
    pass


class TinyApp:
    """A small but complete authorization code client; every defect is an ``Options`` switch."""

    def __init__(self, env: Environment, options: Options) -> None:
        self.env, self.options = env, options
        self.http = httpx.Client()
        self.pending: dict[str, str] = {}
        self.session: dict[str, Any] | None = None
        self.jwks: dict[str, Any] = {}

    def start_login(self) -> str:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        self.pending = {"state": secrets.token_urlsafe(12), "nonce": secrets.token_urlsafe(12), "verifier": verifier}
        params = {"response_type": self.options.response_type, "client_id": self.env.client_id,
                  "redirect_uri": self.env.redirect_uri, "audience": self.options.audience or self.env.audience,
                  "scope": " ".join(self.env.scopes), "state": self.pending["state"],
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        if self.options.send_nonce:
            params["nonce"] = self.pending["nonce"]
        return f"{AUTH}/authorize?{urlencode(params)}"

    def finish_login(self, callback_url: str) -> None:
        parts = urlsplit(callback_url)
        answer = dict(parse_qsl(parts.fragment or parts.query))
        if answer.get("state") != self.pending.get("state") or "code" not in answer:
            raise LoginRefused(f"bad callback: {answer.get('error', 'state mismatch')}")
        if "id_token" in answer:  # hybrid: the front-channel ID token is checked before the exchange
            self._verify(answer["id_token"], self.pending["nonce"])
        tokens = self._token({"grant_type": "authorization_code", "code": answer["code"],
                              "redirect_uri": self.env.redirect_uri, "code_verifier": self.pending["verifier"]})
        if self.options.api_before_verifying:
            self._call("GET", "/users", tokens["access_token"])
        claims = self._verify(tokens["id_token"], self.pending["nonce"]) if "id_token" in tokens else {}
        self.session = {"access": tokens["access_token"], "refresh": tokens.get("refresh_token"),
                        "expires_at": time.time() + tokens["expires_in"], "sub": claims.get("sub")}
        if self.options.log_tokens:
            print(f"logged in with access token {tokens['access_token']}")
        if self.options.token_to_other_host:
            self.http.post(OTHER_HOST, json={"event": "login", "token": tokens["access_token"]})

    def exercise(self) -> None:
        if self.session is None:
            raise LoginRefused("not logged in")
        if self.session["expires_at"] - time.time() < 60:
            self._refresh()
        self._call("GET", "/invoices", self.session["access"])
        if self.options.create_invoices:
            self._call("POST", "/invoices", self.session["access"], json={"invoiceItems": [{"name": "x"}]})
        if self.options.post_to_other_host:
            self.http.post(OTHER_HOST, json={"event": "unit"})

    def close(self) -> None:
        self.http.close()

    def _refresh(self) -> None:
        assert self.session is not None
        tokens = self._token({"grant_type": "refresh_token", "refresh_token": self.session["refresh"]})
        if "id_token" in tokens and self.options.check_refreshed_sub:
            if self._verify(tokens["id_token"], None).get("sub") != self.session["sub"]:  # OIDC Core §12.2
                self.session = None
                raise LoginRefused("the refreshed ID token names another user")
        self.session.update(access=tokens["access_token"], refresh=tokens["refresh_token"],
                            expires_at=time.time() + tokens["expires_in"])

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self.env.client_id, "client_secret": self.env.client_secret}
        response = self.http.post(f"{AUTH}/oauth/token", data=form)
        if response.status_code != 200:
            raise LoginRefused(f"token endpoint answered {response.status_code}")
        return dict(response.json())

    def _call(self, method: str, path: str, token: str, **kwargs: Any) -> None:
        headers = {"Authorization": f"Bearer {token}", "X-Network": self.env.network}
        response = self.http.request(method, f"{API}{path}", headers=headers, **kwargs)
        if response.status_code >= 300:
            raise LoginRefused(f"{method} {path} answered {response.status_code}")

    def _verify(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        if not self.options.verify_id_token:
            return dict(jwt.decode(id_token, options={"verify_signature": False}))
        kid = jwt.get_unverified_header(id_token).get("kid")
        if kid not in self.jwks and (self.options.refetch_jwks or not self.jwks):
            keys = self.http.get(f"{AUTH}/.well-known/jwks.json").json()["keys"]
            self.jwks = {k["kid"]: k for k in keys}
        if kid not in self.jwks:
            raise LoginRefused("unknown kid")
        try:
            claims = dict(jwt.decode(id_token, jwt.PyJWK(self.jwks[kid]).key, algorithms=["RS256"],
                                     audience=self.env.client_id, issuer=AUTH + "/", leeway=30,
                                     options={"require": ["iss", "sub", "aud", "exp", "iat"]}))
        except jwt.PyJWTError as err:
            raise LoginRefused(f"ID token rejected: {err}") from err
        if nonce and self.options.check_nonce and claims.get("nonce") != nonce:
            raise LoginRefused("nonce mismatch")
        return claims


class FixedClockHarness(Harness):
    """A harness whose Python drivers claim the target's clock cannot be moved (like a static binary)."""

    def new_driver(self, lane: Lane, provider: Provider) -> Driver:
        driver = super().new_driver(lane, provider)
        driver.can_move_clock = False
        return driver


def target_config(project: Path, *, scopes: tuple[str, ...] = SCOPES, **fields: Any) -> TargetConfig:
    fields = {"kind": "python", **fields}
    return TargetConfig(file=project / "rfcheck.toml", root=project, name="tiny", flow="authorization_code",
                        network="test", redirect_uri="http://localhost:8000/callback", scopes=scopes,
                        project=project, **fields)


@contextmanager
def running(project: Path, options: Options = Options(), harness_type: type[Harness] = Harness,
            **config: Any) -> Iterator[Harness]:
    """A started harness whose scenarios run ``TinyApp`` with ``options``."""
    harness = harness_type(target_config(project, **config), lambda env: TinyApp(env, options))
    harness.start()
    try:
        yield harness
    finally:
        harness.stop()


def judge(harness: Harness, requirement_id: str) -> Finding:
    """Run the scenarios ``requirement_id`` reads, then its check, as ``rfcheck_judge`` does."""
    registered = CHECKS[requirement_id]
    return registered.function(harness.check_context({name: harness.scenario(name)
                                                 for name in scenarios_read(registered, harness.scenarios)}))


def judge_all(project: Path, ids: list[str], options: Options = Options(), **kwargs: Any) -> dict[str, Finding]:
    with running(project, options, **kwargs) as harness:
        return {rid: judge(harness, rid) for rid in ids}


FAULT_IDS = [f"OIDC-0{n}" for n in range(1, 9)]


# -- OIDC-01..08 ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="module")
def correct(project: Path) -> dict[str, Finding]:
    return judge_all(project, [*FAULT_IDS, "OIDC-09", "OIDC-10"])


@pytest.mark.parametrize("rid", [*FAULT_IDS, "OIDC-09", "OIDC-10"])
def test_a_correct_client_passes(correct: dict[str, Finding], rid: str) -> None:
    finding = correct[rid]
    assert finding.status == "pass", finding
    assert finding.level is None  # token endpoint ID tokens: the catalogue level (should)


def test_an_unverified_id_token_warns_on_every_fault(project: Path) -> None:
    findings = judge_all(project, FAULT_IDS, Options(verify_id_token=False))
    for rid in FAULT_IDS:
        assert findings[rid].status == "warn", findings[rid]
        evidence = findings[rid].evidence[0]
        assert evidence.request == "POST /oauth/token" and "the login completed" in evidence.detail
        assert any(e.request == "GET /invoices" for e in findings[rid].evidence)
    assert {e.scenario for e in findings["OIDC-08"].evidence} == {"oidc_missing_sub", "oidc_missing_iat"}


def test_using_the_tokens_of_a_refused_login_warns(project: Path) -> None:
    finding = judge_all(project, ["OIDC-02"], Options(api_before_verifying=True))["OIDC-02"]
    assert finding.status == "warn", finding
    assert "login failed but its access token was used" in finding.reason
    assert [e.request for e in finding.evidence] == ["POST /oauth/token", "GET /users"]


def test_front_channel_id_tokens_are_a_must(project: Path) -> None:
    findings = judge_all(project, ["OIDC-04", "OIDC-05"], Options(response_type="code id_token"))
    assert findings["OIDC-04"].status == "pass" and findings["OIDC-04"].level == "must"
    unverified = judge_all(project, ["OIDC-05"], Options(response_type="code id_token", verify_id_token=False))
    assert unverified["OIDC-05"].status == "fail" and unverified["OIDC-05"].level == "must"
    assert unverified["OIDC-05"].evidence[0].request == "GET /authorize"


def test_nonce_not_compared_warns_and_no_nonce_skips(project: Path) -> None:
    unchecked = judge_all(project, ["OIDC-07"], Options(check_nonce=False))["OIDC-07"]
    assert unchecked.status == "warn" and unchecked.evidence[0].scenario == "oidc_wrong_nonce"
    unsent = judge_all(project, ["OIDC-07"], Options(send_nonce=False, check_nonce=False))["OIDC-07"]
    assert unsent.status == "skip" and "sends no nonce" in unsent.reason


def test_without_openid_the_group_is_skipped(project: Path) -> None:
    scopes = ("profile", "email", "offline_access")
    findings = judge_all(project, ["OIDC-01", "OIDC-09", "OIDC-10"], scopes=scopes)
    for finding in findings.values():
        assert finding.status == "skip" and "openid" in finding.reason, finding


def test_a_target_that_never_logs_in_is_skipped(project: Path) -> None:
    findings = judge_all(project, ["OIDC-03", "OIDC-09"], Options(audience="https://api.example.com"))
    for finding in findings.values():
        assert finding.status == "skip" and "AUTH-04" in finding.reason, finding


# -- OIDC-09 -------------------------------------------------------------------------------
def test_a_client_that_never_refetches_the_jwks_fails_rotation(project: Path) -> None:
    finding = judge_all(project, ["OIDC-09"], Options(refetch_jwks=False))["OIDC-09"]
    assert finding.status == "fail", finding
    assert "not fetched again" in finding.reason
    assert finding.evidence[0].scenario == "key_rotation" and finding.evidence[0].request == "POST /oauth/token"


def test_rotation_failure_with_a_fixed_clock_is_not_judged(project: Path) -> None:
    finding = judge_all(project, ["OIDC-09"], Options(refetch_jwks=False), harness_type=FixedClockHarness)["OIDC-09"]
    assert finding.status == "skip" and "clock could not be moved" in finding.reason, finding
    assert not finding.judged, "a must requirement the run could not judge makes the verdict incomplete"


# -- OIDC-10 -------------------------------------------------------------------------------
def test_using_a_refresh_with_another_sub_warns(project: Path) -> None:
    finding = judge_all(project, ["OIDC-10"], Options(check_refreshed_sub=False))["OIDC-10"]
    assert finding.status == "warn", finding
    assert finding.evidence[0].request == "POST /oauth/token" and "another sub" in finding.evidence[0].detail
    assert all(e.request == "GET /invoices" for e in finding.evidence[1:]) and len(finding.evidence) > 1


def test_no_refresh_skips_oidc_10(project: Path) -> None:
    scopes = ("openid", "profile", "email")  # no offline_access: no refresh token, no refresh
    finding = judge_all(project, ["OIDC-10"], scopes=scopes)["OIDC-10"]
    assert finding.status == "skip" and "did not refresh" in finding.reason, finding
