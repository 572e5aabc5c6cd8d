"""Tests for rfcheck.checks.cc: real scenarios against the client credentials worker example and
broken variants of it (one mistake each), judged like the TOKEN tests (``tests/helpers.py``)."""

from __future__ import annotations

from typing import Any

import httpx

from rfcheck.checks import CHECKS
from rfcheck.checks import cc  # noqa: F401  (registers the checks)
from rfcheck.scenarios import ScenarioResult
from tests.helpers import Judge, Worker, details, worker

NO_SCOPES: tuple[str, ...] = ()


def cc_judge(judge: Judge, requirement_id: str, target: type = Worker) -> Any:
    return judge(requirement_id, target, NO_SCOPES)


# -- broken variants of the worker ---------------------------------------------------------
class NoAudience(Worker):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        return super()._token_request({k: v for k, v in form.items() if k != "audience"})


class NoClientSecret(Worker):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        response = self._http.post(f"{self._auth}/oauth/token", data={**form, "client_id": self._client_id})
        if response.status_code != 200:
            raise worker.TokenEndpointError(str(response.json().get("error")))
        return response.json()


class AsksOfflineAccess(Worker):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        return super()._token_request({**form, "scope": "offline_access"})


class Idle(Worker):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        pass


class Reactive(Worker):  # type: ignore[misc, valid-type]
    """Correct, but never looks at expires_at: a new token once after a 401 invalid_token."""

    def _current_token(self) -> Any:
        return self._token or self._new_token(stale=None)


class NeverRenews(Reactive):
    def _new_token(self, stale: Any) -> Any:
        if self._token is not None:
            raise worker.WorkerError("the token is fetched once at start-up")
        return super()._new_token(stale)


class ResendsExpired(Reactive):
    def _send(self, token: Any, path: str) -> httpx.Response:
        for _ in range(3):
            response: httpx.Response = super()._send(token, path)
            if response.status_code != 401:
                break
        return response


# -- CC-01 ---------------------------------------------------------------------------------
def test_cc01_passes_a_well_formed_request(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-01")
    assert finding.status == "pass" and "client_secret_basic" in finding.reason


def test_cc01_fails_a_request_without_audience(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-01", NoAudience)
    assert finding.status == "fail" and "no audience parameter: access_denied" in details(finding)


def test_cc01_fails_a_request_without_client_secret(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-01", NoClientSecret)
    assert finding.status == "fail" and "client authentication none" in details(finding)


def test_cc01_skips_without_token_requests(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-01", Idle)
    assert finding.status == "skip" and "no client credentials token request" in finding.reason


# -- CC-02 ---------------------------------------------------------------------------------
def test_cc02_passes_without_offline_access(judge: Judge) -> None:
    assert cc_judge(judge, "CC-02").status == "pass"


def test_cc02_warns_offline_access(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-02", AsksOfflineAccess)
    assert finding.status == "warn" and "scope='offline_access'" in details(finding)
    assert cc_judge(judge, "CC-01", AsksOfflineAccess).status == "pass"  # well formed otherwise


def test_cc02_skips_without_token_requests(judge: Judge) -> None:
    assert cc_judge(judge, "CC-02", Idle).status == "skip"


# -- CC-03 ---------------------------------------------------------------------------------
def test_cc03_passes_a_new_token_before_expiry(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-03")
    assert finding.status == "pass" and "proactively" in finding.reason


def test_cc03_passes_a_new_token_after_a_401(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-03", Reactive)
    assert finding.status == "pass" and "reactively" in finding.reason


def test_cc03_fails_when_work_stops_after_expiry(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-03", NeverRenews)
    assert finding.status == "fail" and "no client credentials token request after" in finding.reason


def test_cc03_fails_repeated_use_of_the_expired_token(judge: Judge) -> None:
    finding = cc_judge(judge, "CC-03", ResendsExpired)
    assert finding.status == "fail" and "expired token used again in unit 3" in details(finding)


def test_cc03_skips_a_scenario_that_could_not_run(judge: Judge) -> None:
    results = {"expiry": ScenarioResult("expiry", "error", "the target factory raised")}
    finding = CHECKS["CC-03"].function(judge.harness(Worker, NO_SCOPES).check_context(results))
    assert finding.status == "skip" and "could not run" in finding.reason
