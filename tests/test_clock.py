"""Tests for rfcheck.provider.clock: real time plus an offset, time travel, listeners."""

from __future__ import annotations

import time

import freezegun
import pytest

from rfcheck.journal import iso
from rfcheck.provider.clock import Clock


def test_now_is_real_time_without_travel() -> None:
    assert Clock().now() == pytest.approx(time.time(), abs=2)


def test_travel_moves_now_and_offset() -> None:
    clock = Clock()
    before = clock.now()
    clock.travel(86_401)
    assert clock.offset == 86_401
    assert clock.now() - before == pytest.approx(86_401, abs=2)


def test_travel_accumulates() -> None:
    clock = Clock(offset=10)
    clock.travel(5)
    clock.travel(0)
    assert clock.offset == 15


def test_travel_backwards_is_refused() -> None:
    clock = Clock()
    with pytest.raises(ValueError, match="forward"):
        clock.travel(-1)
    assert clock.offset == 0


def test_listeners_hear_the_new_offset_until_unsubscribed() -> None:
    clock = Clock()
    heard: list[float] = []
    unsubscribe = clock.subscribe(heard.append)
    clock.travel(60)
    clock.travel(40)
    unsubscribe()
    clock.travel(1)
    unsubscribe()  # a second call is harmless
    assert heard == [60, 100]


def test_clock_ignores_freezegun() -> None:
    # An in-process target runs under freezegun; the mock must keep the true time.
    clock = Clock()
    with freezegun.freeze_time("2001-01-01"):
        assert time.time() < 1_000_000_000
        assert clock.now() > 1_700_000_000


def test_datetime_is_aware_utc_and_matches_now() -> None:
    clock = Clock(offset=3600)
    moment = clock.datetime()
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0
    assert moment.timestamp() == pytest.approx(clock.now(), abs=2)


@pytest.mark.parametrize(("ts", "expected"), [
    (0, "1970-01-01T00:00:00.000Z"),
    (1_795_867_200.12, "2026-11-28T12:00:00.120Z"),
    (1_795_867_200.9999, "2026-11-28T12:00:00.999Z"),
])
def test_iso_has_milliseconds_and_z(ts: float, expected: str) -> None:
    assert iso(ts) == expected
