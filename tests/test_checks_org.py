"""Tests for rfcheck.checks.org: real scenarios against the httpx example and broken variants of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfcheck.checks import CHECKS
from rfcheck.checks import org  # noqa: F401  (registers the checks)
from rfcheck.config import TargetConfig
from rfcheck.harness import Harness
from rfcheck.facts import CLIENT_CREDENTIALS
from rfcheck.provider.accounts import DEFAULT_USER
from tests.helpers import WITHOUT_USER_READ, Acme, Judge, PlainPkce, details

FOREIGN_ORG = "64f1d2e3a4b5c6d7e8f90123"


class ForeignOrganization(Acme):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        super().exercise()
        self._api_get("/invoices", org_id=FOREIGN_ORG)


class PersonalOnly(Acme):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        self._api_get("/invoices")


class ListsButNeverActs(Acme):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        self._organizations()
        self._api_get("/invoices")


class ListsWithApiKey(Acme):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        key = self.rfcheck.lane.provider.api_key_for(DEFAULT_USER)
        self._http.get(f"{self._api}/users/organizations", headers={"Authorization": key, "X-Network": "test"})
        self._api_get("/invoices")


# -- ORG-01 -------------------------------------------------------------------------
def test_org01_passes_the_users_own_organization(judge: Judge) -> None:
    assert judge("ORG-01").status == "pass"


def test_org01_fails_a_foreign_organization(judge: Judge) -> None:
    finding = judge("ORG-01", ForeignOrganization)
    assert finding.status == "fail"
    assert f"X-Organization: {FOREIGN_ORG!r} is not an organization of the user (answered 403)" in details(finding)


def test_org01_skips_without_x_organization(judge: Judge) -> None:
    assert judge("ORG-01", PersonalOnly, WITHOUT_USER_READ).status == "skip"


# -- ORG-02 -------------------------------------------------------------------------
def test_org02_passes_listing_and_acting(judge: Judge) -> None:
    assert judge("ORG-02").status == "pass"


@pytest.mark.parametrize(("target", "scopes", "why"), [
    (PersonalOnly, WITHOUT_USER_READ, "never called"),
    (Acme, WITHOUT_USER_READ, "listing failed with 403"),
    (ListsButNeverActs, ("openid", "profile", "email", "offline_access", "user:read"), "no call with X-Organization"),
])
def test_org02_warns(judge: Judge, target: type, scopes: tuple[str, ...], why: str) -> None:
    finding = judge("ORG-02", target, scopes)
    assert finding.status == "warn" and why in details(finding)


def test_org02_skips_when_no_call_succeeded(judge: Judge) -> None:
    assert judge("ORG-02", PlainPkce).status == "skip"


def test_org02_skips_the_client_credentials_flow() -> None:
    config = TargetConfig(Path("x"), Path("."), "t", "python", CLIENT_CREDENTIALS, "test", "", (), Path("."))
    finding = CHECKS["ORG-02"].function(Harness(config).check_context({}))
    assert finding.status == "skip" and "client credentials" in finding.reason


# -- ORG-03 -------------------------------------------------------------------------
def test_org03_passes_oauth_listing(judge: Judge) -> None:
    assert judge("ORG-03").status == "pass"


def test_org03_fails_listing_with_an_api_key(judge: Judge) -> None:
    finding = judge("ORG-03", ListsWithApiKey)
    assert finding.status == "fail" and "API key" in details(finding)
    assert all(e.request == "GET /users/organizations" for e in finding.evidence)


def test_org03_skips_when_never_listed(judge: Judge) -> None:
    assert judge("ORG-03", PersonalOnly, WITHOUT_USER_READ).status == "skip"
