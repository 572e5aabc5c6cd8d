"""Tests for rfcheck.checks.scope: real scenarios against the httpx example and broken variants of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rfcheck.targets.consent import consent
from rfcheck.checks import CHECKS
from rfcheck.checks import scope  # noqa: F401  (registers the checks)
from rfcheck.config import TargetConfig
from rfcheck.harness import Harness
from rfcheck.facts import CLIENT_CREDENTIALS
from tests.helpers import (FULL_SCOPES, WITHOUT_OFFLINE, WITHOUT_USER_READ, Acme, Judge, PlainPkce, details,
                           edit_url)


class NeverListsOrganizations(Acme):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        self._api_get("/invoices")


class SilentReauthorization(Acme):  # type: ignore[misc, valid-type]
    """No refresh token: logs the user in again by itself (an SSO session) when the token expires."""

    def _refresh(self, stale: Any) -> Any:
        if self._session is not None and self._session.refresh_token is None:
            self.finish_login(consent(self.rfcheck.lane.provider, self.start_login()))
            return self._session
        return super()._refresh(stale)


class RetriesInsufficientScope(Acme):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        session = self._current_session()
        for _ in range(4):
            if self._send(session, "/users/organizations", None).status_code == 200:
                break
        self._api_get("/invoices")


class RetriesOnceThenReauthorizes(Acme):  # type: ignore[misc, valid-type]
    def _send(self, session: Any, path: str, org_id: str | None) -> Any:
        resp = super()._send(session, path, org_id)
        return super()._send(session, path, org_id) if resp.status_code == 403 else resp


class NoConsentPrompt(Acme):  # type: ignore[misc, valid-type]
    def start_login(self) -> str:
        return edit_url(super().start_login(), drop=("prompt",))


# -- SCOPE-01 -----------------------------------------------------------------------
def test_scope01_passes_with_offline_access(judge: Judge) -> None:
    finding = judge("SCOPE-01")
    assert finding.status == "pass" and "offline_access" in finding.reason


def test_scope01_fails_without_offline_access_when_work_stops_at_expiry(judge: Judge) -> None:
    finding = judge("SCOPE-01", Acme, WITHOUT_OFFLINE)
    assert finding.status == "fail"
    assert "no offline_access" in details(finding) and "no refresh token" in details(finding)


def test_scope01_passes_without_offline_access_when_the_app_reauthorizes(judge: Judge) -> None:
    finding = judge("SCOPE-01", SilentReauthorization, WITHOUT_OFFLINE)
    assert finding.status == "pass" and "went on" in finding.reason


def test_scope01_skips_when_the_login_never_worked(judge: Judge) -> None:
    assert judge("SCOPE-01", PlainPkce).status == "skip"


# -- SCOPE-02 -----------------------------------------------------------------------
def test_scope02_warns_listing_the_missing_scopes(judge: Judge) -> None:
    assert judge("SCOPE-02").status == "pass"
    finding = judge("SCOPE-02", Acme, ("openid", "offline_access", "user:read"))
    assert finding.status == "warn" and "scope lacks profile email" in details(finding)


def test_scope02_skips_the_client_credentials_flow() -> None:
    config = TargetConfig(Path("x"), Path("."), "t", "python", CLIENT_CREDENTIALS, "test", "", (), Path("."))
    finding = CHECKS["SCOPE-02"].function(Harness(config).check_context({}))
    assert finding.status == "skip" and "client credentials" in finding.reason


# -- SCOPE-03 -----------------------------------------------------------------------
def test_scope03_fails_listing_without_user_read(judge: Judge) -> None:
    assert judge("SCOPE-03").status == "pass"
    finding = judge("SCOPE-03", Acme, WITHOUT_USER_READ)
    assert finding.status == "fail" and "insufficient_scope: user:read" in details(finding)
    assert all(e.request == "GET /users/organizations" for e in finding.evidence)


def test_scope03_skips_when_organizations_are_never_listed(judge: Judge) -> None:
    assert judge("SCOPE-03", NeverListsOrganizations, WITHOUT_USER_READ).status == "skip"


# -- SCOPE-04 -----------------------------------------------------------------------
def test_scope04_warns_on_an_unused_user_read(judge: Judge) -> None:
    assert judge("SCOPE-04").status == "pass"
    finding = judge("SCOPE-04", NeverListsOrganizations)
    assert finding.status == "warn" and finding.evidence[0].request == "GET /authorize"


def test_scope04_passes_without_user_read(judge: Judge) -> None:
    finding = judge("SCOPE-04", NeverListsOrganizations, WITHOUT_USER_READ)
    assert finding.status == "pass" and "does not ask" in finding.reason


def test_scope04_skips_when_no_call_succeeded(judge: Judge) -> None:
    assert judge("SCOPE-04", PlainPkce).status == "skip"


# -- SCOPE-05 -----------------------------------------------------------------------
def test_scope05_passes_a_reauthorization_with_prompt_consent(judge: Judge) -> None:
    finding = judge("SCOPE-05")
    assert finding.status == "pass" and "prompt=consent" in finding.reason


def test_scope05_fails_repeated_identical_retries(judge: Judge) -> None:
    finding = judge("SCOPE-05", RetriesInsufficientScope)
    assert finding.status == "fail" and "11 more times" in finding.reason  # 3 units x 4 calls, less the first
    assert {e.request for e in finding.evidence} == {"GET /users/organizations"}


def test_scope05_tolerates_one_retry(judge: Judge) -> None:
    assert judge("SCOPE-05", RetriesOnceThenReauthorizes).status == "pass"


def test_scope05_fails_a_reauthorization_without_prompt_consent(judge: Judge) -> None:
    finding = judge("SCOPE-05", NoConsentPrompt)
    assert finding.status == "fail" and "prompt=None" in details(finding)


@pytest.mark.parametrize(("target", "scopes", "why"), [
    (Acme, WITHOUT_USER_READ, "never asked for user:read"),
    (NeverListsOrganizations, FULL_SCOPES, "never met 403"),
])
def test_scope05_skips_when_nothing_was_withheld_or_met(judge: Judge, target: type, scopes: tuple[str, ...],
                                                         why: str) -> None:
    finding = judge("SCOPE-05", target, scopes)
    assert finding.status == "skip" and why in finding.reason

