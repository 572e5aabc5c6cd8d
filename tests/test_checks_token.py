"""Tests for rfcheck.checks.token: real scenarios against the correct examples and broken variants.

Each broken target is the correct httpx example (``Acme``) or client credentials worker
(``Worker``) with one mistake; the check's own scenarios run through
:class:`rfcheck.harness.Harness`, and each test asserts pass on the correct target, fail
(or warn) with evidence on the broken one, and skip where nothing could be observed.
The ``judge`` fixture (conftest.py) and the loaded examples (``tests/helpers.py``) are shared
with the FLOW, SCOPE, ORG and CC tests.
"""

from __future__ import annotations

import re

import contextlib
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from rfcheck.checks import CHECKS, scenarios_read
from rfcheck.checks.queries import expiry_travel
from rfcheck.checks.token import lifetime, reading, refresh
from rfcheck.harness import Harness
from rfcheck.journal import Exchange
from rfcheck.report.model import Finding
from rfcheck.observed import Event, ScenarioResult
from rfcheck.steps import SCENARIOS
from rfcheck.targets.python import PythonDriver
from rfcheck.targets.base import Driver
from tests.helpers import FULL_SCOPES, WITHOUT_OFFLINE, Acme, Judge, Worker, acme, details, worker


class FrozenClockDriver(PythonDriver):
    """A Python target whose clock rfcheck cannot move (like a statically linked process)."""

    can_move_clock = False

    def _follow(self, clock: Any) -> None:
        pass


class FrozenClockHarness(Harness):
    def _make_driver(self, lane: Any, provider: Any) -> Driver:
        assert self.python_factory is not None
        return FrozenClockDriver(self.python_factory)


# -- broken variants of the code flow example ------------------------------------------
class LoginRefused(Acme):  # type: ignore[misc, valid-type]
    def finish_login(self, callback_url: str) -> None:
        raise acme.LoginError("refuses every login")


class RefreshEveryUnit(Acme):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        if self._session is not None:
            self._refresh(stale=self._session)
        super().exercise()


class Reactive(Acme):  # type: ignore[misc, valid-type]
    """Correct, but never looks at expires_at: refreshes once after a 401 invalid_token."""

    def _current_session(self) -> Any:
        if self._session is None:
            raise acme.ReauthorizationRequired("not logged in")
        return self._session


class ResendsOn401(Reactive):
    """A generic retry wrapper: sends a call three times with the same token before refreshing."""

    def _send(self, session: Any, path: str, org_id: str | None) -> httpx.Response:
        for _ in range(3):
            response: httpx.Response = super()._send(session, path, org_id)
            if response.status_code != 401:
                break
        return response


class NeverRefreshes(Reactive):
    def _refresh(self, stale: Any) -> Any:
        raise acme.ReauthorizationRequired("refreshing is not implemented")


class KeepsFirstRefreshToken(Acme):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        tokens = super()._token_request(form)
        if form.get("grant_type") == "refresh_token":
            tokens.pop("refresh_token", None)
        return tokens


class RetriesDeadRefreshToken(Acme):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        for attempt in range(5):
            try:
                return super()._token_request(form)
            except acme.TokenEndpointError as exc:
                if exc.error != "invalid_grant" or attempt == 4:
                    raise
        raise AssertionError("unreachable")


class ReconnectRefused(Acme):  # type: ignore[misc, valid-type]
    """Stops cleanly on invalid_grant, but cannot take a second login."""

    def finish_login(self, callback_url: str) -> None:
        if getattr(self, "_logged_in", False):
            raise acme.LoginError("already set up")
        super().finish_login(callback_url)
        self._logged_in = True


class NoRefreshLock(Acme):  # type: ignore[misc, valid-type]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refresh_lock = contextlib.nullcontext()


class NoBackoff(Acme):  # type: ignore[misc, valid-type]
    retry_sleep = 0.0

    def _token_request(self, form: dict[str, str]) -> Any:
        form = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        for _ in range(5):
            response = self._http.post(f"{self._auth}/oauth/token", data=form)
            if response.status_code != 429 and response.status_code < 500:
                break
            time.sleep(self.retry_sleep)
        if response.status_code != 200:
            raise acme.TokenEndpointError(str(response.json().get("error")))
        return response.json()


class IgnoresRetryAfter(NoBackoff):
    retry_sleep = 0.6  # backs off, but less than the Retry-After: 1 it was given


class RefreshTokenInHeader(Acme):  # type: ignore[misc, valid-type]
    def _send(self, session: Any, path: str, org_id: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session.access_token}", "X-Network": self._network,
                   "X-Refresh-Token": session.refresh_token or ""}
        return self._http.get(f"{self._api}{path}", headers=headers)


class RefreshTokenInUrl(Acme):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        if form.get("grant_type") != "refresh_token":
            return super()._token_request(form)
        body = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        return self._http.post(f"{self._auth}/oauth/token", params=body, data=body).json()


# -- broken variants of the client credentials worker ----------------------------------
class TokenPerUnit(Worker):  # type: ignore[misc, valid-type]
    def exercise(self) -> None:
        self._new_token(stale=self._token)
        super().exercise()


class HastyWorker(Worker):  # type: ignore[misc, valid-type]
    def _token_request(self, form: dict[str, str]) -> Any:
        with _patched(worker, "_retry_after", lambda response, default: 0.0):
            return super()._token_request(form)


@contextlib.contextmanager
def _patched(module: ModuleType, name: str, value: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


class EarlyRefresh(Acme):  # type: ignore[misc, valid-type]
    """Correct, with a wide proactive margin: refreshes once less than 4 h of validity remain."""

    def _current_session(self) -> Any:
        session = self._session
        if session is not None and session.expires_at - time.time() < 4 * 3600:
            return self._refresh(stale=session)
        return super()._current_session()


# -- the active user ---------------------------------------------------------------------
def test_the_user_stays_active_across_the_expiry(judge: Judge) -> None:
    result = judge.harness().scenario("expiry")
    labels = [(e.kind, e.label, e.offset) for e in result.events]
    stretch = labels[3:3 + 13]  # after the login and two units: the travel of 24 h 2 min, the user active
    assert stretch[0] == ("travel", "travel +0.0333333 h", 120)
    assert [label for kind, label, _ in stretch if kind == "unit"] == [f"active unit {i}" for i in range(1, 7)]
    assert [offset for kind, _, offset in stretch if kind == "unit"] == [120 + 4 * 3600 * i for i in range(6)]
    travel = expiry_travel(result)
    assert travel is not None and travel.offset == 86_520 and travel is result.events[3 + 12]
    assert [e.label for e in reading.units_after(result, travel)] == ["unit 3", "unit 4", "unit 5"]
    assert all(e.ok for e in result.events)


def test_a_renewal_in_the_token_s_last_4_h_is_proactive_not_a_second_token(judge: Judge) -> None:
    assert judge("TOKEN-01", EarlyRefresh).status == "pass"
    finding = judge("TOKEN-02", EarlyRefresh)
    assert finding.status == "pass" and "proactively" in finding.reason, finding


def test_back_after_three_days_a_refresh_is_right(judge: Judge) -> None:
    result = judge.harness().scenario("idle_return")
    assert [e.ok for e in result.events_of("unit")] == [True] * 3
    refreshes = [e for e in reading.token_calls(result, "refresh_token") if e.status == 200]
    assert len(refreshes) == 1 and judge("TOKEN-02").status == "pass"


# -- TOKEN-01 ----------------------------------------------------------------------------
def test_token01_passes_when_the_token_is_reused(judge: Judge) -> None:
    finding = judge("TOKEN-01")
    assert finding.status == "pass" and "baseline, expiry, rotation" in finding.reason
    assert judge("TOKEN-01", Worker, ()).status == "pass"


def test_token01_fails_a_refresh_per_unit_of_work(judge: Judge) -> None:
    finding = judge("TOKEN-01", RefreshEveryUnit)
    assert finding.status == "fail"
    assert "token request 2 in one 24 h window (grant_type=refresh_token)" in details(finding)
    assert {e.scenario for e in finding.evidence} >= {"baseline"}


def test_token01_fails_a_client_credentials_token_per_unit(judge: Judge) -> None:
    finding = judge("TOKEN-01", TokenPerUnit, ())
    assert finding.status == "fail" and "grant_type=client_credentials" in details(finding)


def test_token01_skips_when_no_unit_of_work_completed(judge: Judge) -> None:
    finding = judge("TOKEN-01", LoginRefused)
    assert finding.status == "skip" and "two completed units" in finding.reason


# -- TOKEN-02 ----------------------------------------------------------------------------
def test_token02_passes_a_proactive_refresh(judge: Judge) -> None:
    finding = judge("TOKEN-02")
    assert finding.status == "pass" and "proactively" in finding.reason


def test_token02_passes_one_refresh_after_a_401(judge: Judge) -> None:
    finding = judge("TOKEN-02", Reactive)
    assert finding.status == "pass" and "reactively, after a 401" in finding.reason


class SkipsRefreshedIdToken(Reactive):
    """Reactive, and does not verify the ID token of a refresh response."""

    def _check_refreshed_id_token(self, id_token: str, current: Any) -> None:
        pass


def test_token02_judges_a_target_whose_clock_cannot_move_on_the_reactive_path(judge: Judge) -> None:
    finding = judge("TOKEN-02", SkipsRefreshedIdToken, FULL_SCOPES, FrozenClockHarness)
    assert finding.status == "pass" and "reactively" in finding.reason
    assert "clock could not be moved" in finding.reason


def test_token02_passes_a_correct_app_whose_clock_cannot_move(judge: Judge) -> None:
    # ID tokens are then dated by the target's real clock, so the refreshed one is accepted.
    finding = judge("TOKEN-02", Reactive, FULL_SCOPES, FrozenClockHarness)
    assert finding.status == "pass" and "clock could not be moved" in finding.reason


def test_token02_fails_repeated_use_of_the_expired_token(judge: Judge) -> None:
    finding = judge("TOKEN-02", ResendsOn401)
    assert finding.status == "fail" and "expired token used again in unit 3" in details(finding)


def test_token02_fails_when_work_stops_after_expiry(judge: Judge) -> None:
    finding = judge("TOKEN-02", NeverRefreshes)
    assert finding.status == "fail" and "no refresh" in finding.reason
    assert "expired" in details(finding)


def test_token02_skips_without_a_refresh_token(judge: Judge) -> None:
    finding = judge("TOKEN-02", Acme, WITHOUT_OFFLINE)
    assert finding.status == "skip" and "no refresh token" in finding.reason


def test_parallel_units_meeting_the_401_once_each_are_not_repeated_use(judge: Judge) -> None:
    result = judge.harness(Reactive).scenario("concurrency")
    expired = [e for e in result.exchanges if e.facts.get("token_status") == "expired"]
    assert len(expired) >= 2  # several parallel units met the 401 before the shared refresh
    assert lifetime.repeated_expired_uses(result, ("refresh_token",)) == []


# -- TOKEN-03 ----------------------------------------------------------------------------
def test_token03_passes_rotation(judge: Judge) -> None:
    assert judge("TOKEN-03").status == "pass"


def test_token03_fails_reuse_of_a_rotated_refresh_token(judge: Judge) -> None:
    finding = judge("TOKEN-03", KeepsFirstRefreshToken)
    assert finding.status == "fail" and "already rotated out" in details(finding)


def _refresh(n: int, token: str, status: int, step: str, began: int, done: int, reused: bool = False) -> Exchange:
    return Exchange(n=n, at=0.0, origin="target", host="auth", method="POST",
                    url="https://auth.request.finance/oauth/token", path="/oauth/token", query={}, headers={},
                    form={"grant_type": "refresh_token", "refresh_token": token}, step=step, status=status,
                    facts={"refresh_status": "rotated_reused"} if reused else {}, done=done, step_began=began)


@pytest.mark.parametrize("step", ["unit 3", "unit 4", "parallel unit 2"], ids=["same-unit", "later-unit", "parallel"])
def test_token03_judges_by_what_the_app_knew_in_any_unit(step: str) -> None:
    """Sent after the rotation's answer had gone out (it arrived after the answer was recorded), the old
    refresh token was kept: TOKEN-03, in the unit that rotated it, a later one or a parallel one alike."""
    rotation = _refresh(1, "rt-1", 200, "unit 3", 0, done=2)
    reuse = _refresh(3, "rt-1", 403, step, 0, done=3, reused=True)
    result = ScenarioResult("rotation", "completed", exchanges=[rotation, reuse])
    assert refresh.stale_reuses(result) == [reuse] and refresh.races(result) == []


def test_token03_reuse_that_arrived_before_the_rotation_is_a_race() -> None:
    """Two refreshes in flight behind a slow token endpoint: the one numbered first is answered second,
    after the other rotated its token out. It was sent before the rotation existed: TOKEN-06's race."""
    reuse = _refresh(1, "rt-1", 403, "parallel unit 1", 0, done=2, reused=True)
    rotation = _refresh(2, "rt-1", 200, "parallel unit 2", 0, done=1)
    result = ScenarioResult("concurrency", "completed", exchanges=[reuse, rotation])
    assert refresh.stale_reuses(result) == [] and refresh.races(result) == [reuse]


def test_token03_skips_without_a_refresh_token(judge: Judge) -> None:
    finding = judge("TOKEN-03", Acme, WITHOUT_OFFLINE)
    assert finding.status == "skip" and "no refresh token" in finding.reason


# -- TOKEN-04 ----------------------------------------------------------------------------
def test_token04_passes_a_clean_stop_and_reconnect(judge: Judge) -> None:
    finding = judge("TOKEN-04")
    assert finding.status == "pass" and "restored the session" in finding.reason


def test_token04_fails_a_retry_loop_on_invalid_grant(judge: Judge) -> None:
    finding = judge("TOKEN-04", RetriesDeadRefreshToken)
    assert finding.status == "fail" and "5 refresh attempts" in finding.reason
    assert "invalid_grant (revoked), attempt 3" in details(finding)


def test_token04_fails_when_the_user_cannot_connect_again(judge: Judge) -> None:
    finding = judge("TOKEN-04", ReconnectRefused)
    assert finding.status == "fail" and "new login failed" in finding.reason


def test_token04_skips_without_a_refresh_token(judge: Judge) -> None:
    assert judge("TOKEN-04", Acme, WITHOUT_OFFLINE).status == "skip"


# -- TOKEN-05 ----------------------------------------------------------------------------
def test_token05_passes_one_refresh_after_revocation(judge: Judge) -> None:
    finding = judge("TOKEN-05")
    assert finding.status == "pass" and "used 1 time" in finding.reason


def test_token05_fails_a_loop_on_the_revoked_token(judge: Judge) -> None:
    finding = judge("TOKEN-05", ResendsOn401)
    assert finding.status == "fail" and "3 API calls with a revoked access token" in finding.reason


def test_token05_skips_when_the_revoked_token_was_never_used(judge: Judge) -> None:
    finding = judge("TOKEN-05", RefreshEveryUnit)  # refreshes before each unit: never meets the revocation
    assert finding.status == "skip" and "no API call with the revoked" in finding.reason


# -- TOKEN-06 ----------------------------------------------------------------------------
def test_token06_passes_one_shared_refresh(judge: Judge) -> None:
    assert judge("TOKEN-06").status == "pass"
    assert judge("TOKEN-06", Reactive).status == "pass"


def test_token06_fails_a_refresh_storm_that_cost_users_their_session(judge: Judge) -> None:
    # with rotation, the parallel refreshes present a token another has just rotated out: the provider
    # revokes the family and the units that lost the race have no session left (the harm level, must)
    finding = judge("TOKEN-06", NoRefreshLock)
    assert (finding.status, finding.level) == ("fail", "must"), finding
    assert re.search(r"the provider revoked the family(, \d more met the revoked family)?, and [1-6] of the 6 units lost "
                     r"their session", finding.reason), finding.reason
    assert "parallel unit" in details(finding)


def test_token06_warns_a_storm_that_did_no_harm(judge: Judge) -> None:
    # two refreshes at once, the second revoking the family, yet every unit carried on: should, a warning
    first = _refresh(2, "rt-1", 200, "parallel unit 1", 0, done=3)
    second = _refresh(3, "rt-1", 403, "parallel unit 2", 0, done=4, reused=True)
    units = [Event("unit", f"parallel unit {i}", ok=True, first=1, last=4) for i in (1, 2)]
    result = ScenarioResult("concurrency", "completed", events=units, exchanges=[first, second])
    finding = CHECKS["TOKEN-06"].function(judge.harness().check_context({"concurrency": result}))
    assert "no user lost their session" in finding.reason


def test_token06_skips_without_a_refresh_token(judge: Judge) -> None:
    assert judge("TOKEN-06", Acme, WITHOUT_OFFLINE).status == "skip"


# -- TOKEN-07 ----------------------------------------------------------------------------
def test_token07_passes_back_off_that_honours_retry_after(judge: Judge) -> None:
    finding = judge("TOKEN-07")
    assert finding.status == "pass" and "0 hasty" in finding.reason
    assert judge("TOKEN-07", Worker, ()).status == "pass"


def test_token07_warns_immediate_retries(judge: Judge) -> None:
    finding = judge("TOKEN-07", NoBackoff)
    assert finding.status == "warn" and "4 token requests retried at once" in finding.reason
    assert re.search(r"retried 0\.[0-4]\d s after a 429 with Retry-After: 1", details(finding))
    assert judge("TOKEN-07", HastyWorker, ()).status == "warn"


def test_token07_warns_back_off_shorter_than_retry_after(judge: Judge) -> None:
    finding = judge("TOKEN-07", IgnoresRetryAfter)
    assert finding.status == "warn" and "retried 0.6" in details(finding)


def test_token07_skips_when_no_token_request_met_the_outage(judge: Judge) -> None:
    finding = judge("TOKEN-07", Acme, WITHOUT_OFFLINE)
    assert finding.status == "skip" and "never met" in finding.reason


def _token_exchange(n: int, at: float, status: int, step: str = "unit 2", retry_after: str = "1") -> Exchange:
    return Exchange(n=n, at=at, origin="target", host="auth", method="POST", url="https://auth.request.finance"
                    "/oauth/token", path="/oauth/token", query={}, headers={}, form={"grant_type": "refresh_token"},
                    step=step, status=status, response_headers={"retry-after": retry_after} if status != 200 else {})


def _synthetic(judge: Judge, exchanges: list[Exchange]) -> Finding:
    harness = judge.harness()
    result = ScenarioResult("token_endpoint_unavailable", "completed", events=[Event("unit", "unit 2", True)],
                            exchanges=exchanges)
    return CHECKS["TOKEN-07"].function(harness.check_context({"token_endpoint_unavailable": result}))


def test_token07_tolerates_three_immediate_retries_and_warns_the_fourth(judge: Judge) -> None:
    hasty = [_token_exchange(i, 100 + i * 0.01, 429 if i < 4 else 200) for i in range(1, 5)]
    assert _synthetic(judge, hasty).status == "pass"
    hastier = hasty[:3] + [_token_exchange(4, 100.04, 503), _token_exchange(5, 100.05, 200)]
    assert _synthetic(judge, hastier).status == "warn"


def test_token07_does_not_count_a_new_unit_of_work_as_a_retry(judge: Judge) -> None:
    exchanges = [_token_exchange(i, 100 + i * 0.01, 429, step=f"unit {i}") for i in range(1, 6)]
    assert _synthetic(judge, exchanges).status == "pass"


# -- TOKEN-08 ----------------------------------------------------------------------------
def test_token08_passes_when_refresh_tokens_go_only_to_the_token_endpoint(judge: Judge) -> None:
    assert judge("TOKEN-08").status == "pass"


def test_token08_fails_a_refresh_token_on_the_api(judge: Judge) -> None:
    finding = judge("TOKEN-08", RefreshTokenInHeader)
    assert finding.status == "fail" and "header x-refresh-token" in details(finding)


def test_token08_fails_a_refresh_token_in_a_url(judge: Judge) -> None:
    finding = judge("TOKEN-08", RefreshTokenInUrl)
    assert finding.status == "fail" and "in the URL" in details(finding)
    assert all("POST /oauth/token" == e.request for e in finding.evidence)


def test_token08_skips_the_client_credentials_flow(judge: Judge) -> None:
    finding = judge("TOKEN-08", Worker, ())
    assert finding.status == "skip" and "client credentials" in finding.reason


# -- scenarios that could not run -----------------------------------------------------------
@pytest.mark.parametrize("requirement_id", ["TOKEN-02", "TOKEN-03", "TOKEN-04", "TOKEN-05", "TOKEN-06", "TOKEN-07"])
def test_a_scenario_that_could_not_run_is_a_skip(judge: Judge, requirement_id: str) -> None:
    check = CHECKS[requirement_id]
    results = {name: ScenarioResult(name, "error", "the target factory raised")
               for name in scenarios_read(check, SCENARIOS)}
    finding = check.function(judge.harness().check_context(results))
    assert finding.status == "skip" and "could not run" in finding.reason
