"""An in-process target's sleeps are taken on rfcheck's clock (rfcheck.targets.python.SimulatedSleeps).

rfcheck owns the clock an in-process target reads, so a wait the target makes in its own calls is a travel
of that clock: the mock sees a retry after ``Retry-After`` exactly as when the target sleeps for real. What
is not the target's own call keeps real sleeps: rfcheck's threads, pytest, the mock's injected delays, and
every target thread while several of its calls run at once. Nothing here is timed: what is asserted is
where the clock went.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rfcheck.checks import CHECKS, token  # noqa: F401  (token: registers the TOKEN checks)
from rfcheck.config import load_config
from rfcheck.harness import Harness
from rfcheck.provider.clock import Clock
from rfcheck.targets import python as in_process
from rfcheck.targets.python import REAL_SLEEPS_ENV, PythonDriver, SimulatedSleeps, load_factory

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "httpx_code"


@pytest.fixture
def sleeps() -> Iterator[SimulatedSleeps]:
    with SimulatedSleeps(Clock()).installed() as installed:
        yield installed


def _offset(sleeps: SimulatedSleeps) -> float:
    return sleeps._clock.offset


def test_a_sleep_in_a_target_call_moves_rfchecks_clock_instead(sleeps: SimulatedSleeps) -> None:
    with sleeps.call():
        time.sleep(1.5)
        time.sleep(0.25)
    assert _offset(sleeps) == pytest.approx(1.75)
    assert sleeps.slept == pytest.approx(1.75)


def test_asyncio_sleep_in_a_target_call_moves_rfchecks_clock(sleeps: SimulatedSleeps) -> None:
    async def backs_off() -> str:
        return await asyncio.sleep(2, result="retried")

    with sleeps.call():
        assert asyncio.run(backs_off()) == "retried"
    assert _offset(sleeps) == pytest.approx(2)


def test_sleeps_outside_the_targets_calls_are_real(sleeps: SimulatedSleeps) -> None:
    time.sleep(0.01)  # pytest's thread, no target call under way
    with sleeps.call():
        other = threading.Thread(target=time.sleep, args=(0.01,))  # a thread the target did not get from rfcheck
        other.start()
        other.join()
    assert _offset(sleeps) == 0


def test_the_mocks_own_waits_stay_real(sleeps: SimulatedSleeps) -> None:
    """In process the mock answers on the target's thread: its slow token endpoint is a wall-clock matter."""
    namespace: dict[str, Any] = {"__name__": "rfcheck.provider.oauth"}
    exec("import time\ndef slow_endpoint():\n    time.sleep(0.01)\n", namespace)
    with sleeps.call():
        namespace["slow_endpoint"]()
    assert _offset(sleeps) == 0


def test_sleeps_are_real_while_several_target_calls_run_at_once(sleeps: SimulatedSleeps) -> None:
    barrier = threading.Barrier(2)

    def unit() -> None:
        with sleeps.call():
            barrier.wait()
            time.sleep(0.01)
            barrier.wait()

    threads = [threading.Thread(target=unit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _offset(sleeps) == 0


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), "1"])
def test_what_is_not_a_positive_wait_is_left_to_the_real_sleep(sleeps: SimulatedSleeps, seconds: Any) -> None:
    with sleeps.call():
        try:
            time.sleep(seconds)
        except (ValueError, TypeError):
            pass  # what the real time.sleep says about it
    assert _offset(sleeps) == 0


def test_the_real_functions_come_back_when_the_last_target_ends() -> None:
    real_sleep, real_async_sleep = time.sleep, asyncio.sleep
    with SimulatedSleeps(Clock()).installed(), SimulatedSleeps(Clock()).installed():
        assert time.sleep is not real_sleep and asyncio.sleep is not real_async_sleep
    assert time.sleep is real_sleep and asyncio.sleep is real_async_sleep


def _harness() -> Harness:
    config = load_config(EXAMPLE / "rfcheck.toml")
    harness = Harness(config, load_factory(config.python.factory, config.root) if config.python else None)
    harness.start()
    return harness


def test_retry_after_is_honoured_on_the_mocks_clock_at_no_wall_clock_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The httpx example sleeps through four Retry-After: 1 answers: the mock sees each retry a second
    (or more) after the answer, TOKEN-07 passes with its usual reason, and the scenario's note says how."""
    monkeypatch.delenv(REAL_SLEEPS_ENV, raising=False)
    harness = _harness()
    try:
        result = harness.scenario("token_endpoint_unavailable")
        tokens = [e for e in result.exchanges if e.path == "/oauth/token" and e.form.get("grant_type") == "refresh_token"]
        refused = [e for e in tokens if e.status in (429, 503)]
        assert len(refused) == 4
        for answer in refused:
            retry = next(e for e in tokens if e.n > answer.n)
            assert retry.at - answer.at >= 1.0
        finding = CHECKS["TOKEN-07"].function(harness.check_context({result.name: result}))
        assert finding.status == "pass" and "0 hasty" in finding.reason
        assert any("time.sleep and asyncio.sleep in the target's calls advance rfcheck's clock" in note
                   for note in result.notes)
    finally:
        harness.stop()
    assert time.sleep is in_process._real_sleep


def test_real_sleeps_on_request_give_the_same_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFCHECK_REAL_SLEEPS=1: the target sleeps for real, as in production; the answer is the same."""
    monkeypatch.setenv(REAL_SLEEPS_ENV, "1")
    harness = _harness()
    try:
        result = harness.scenario("token_endpoint_unavailable")
        finding = CHECKS["TOKEN-07"].function(harness.check_context({result.name: result}))
        assert finding.status == "pass" and "0 hasty" in finding.reason
        assert not any("advance rfcheck's clock" in note for note in result.notes)
    finally:
        harness.stop()


def test_a_slow_token_endpoint_still_overlaps_parallel_units() -> None:
    """The concurrency scenario's 0.5 s token delay is the mock's, and six units run at once: it stays real, so
    a client without a refresh lock still makes a storm of refreshes (TOKEN-06), as before."""
    config = load_config(ROOT / "examples" / "broken" / "no_refresh_lock.toml")
    assert config.python is not None
    harness = Harness(config, load_factory(config.python.factory, config.root))
    harness.start()
    try:
        result = harness.scenario("concurrency")
        finding = CHECKS["TOKEN-06"].function(harness.check_context({result.name: result}))
        assert finding.status in ("fail", "warn") and "refresh requests" in finding.reason
    finally:
        harness.stop()


def test_a_target_whose_clock_rfcheck_does_not_move_sleeps_for_real() -> None:
    class StillClock(PythonDriver):
        def _follow(self, clock: Clock) -> None:
            pass

    driver = StillClock(lambda env: object())  # type: ignore[arg-type, return-value]
    assert driver._call() is not None and driver._sleeps is None
    assert "advance rfcheck's clock" not in driver.runtime_note
