"""Tests for rfcheck.targets.faketime: a process started with FakeTime's environment follows
rfcheck's clock while it runs (libfaketime rereads the offset file), and a machine without
libfaketime is noted once and leaves a non-Python target's clock alone. A Python command
follows the clock through rfcheck's sitecustomize instead (tests/test_runtime.py has more)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rfcheck.harness import Harness
from rfcheck.provider.clock import Clock
from rfcheck.scenarios import PAST_EXPIRY
from rfcheck.targets.faketime import LIBRARY_PATTERNS, UNAVAILABLE, FakeTime, find_library

DAY = 86_400
SYSTEM_LIBRARY = next((path for pattern in LIBRARY_PATTERNS for path in glob.glob(pattern)), None)
needs_libfaketime = pytest.mark.skipif(SYSTEM_LIBRARY is None, reason="libfaketime is not installed")
CLOCK_PRINTER = "import sys, time\nfor _ in sys.stdin:\n    print(time.time(), time.monotonic(), flush=True)\n"



@pytest.fixture(autouse=True)
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RFCHECK_FAKETIME_LIB", raising=False)


@pytest.fixture
def faketime(tmp_path: Path) -> Iterator[Callable[[Clock], FakeTime]]:
    made: list[FakeTime] = []

    def make(clock: Clock) -> FakeTime:
        made.append(FakeTime(clock, SYSTEM_LIBRARY or str(tmp_path / "libfaketimeMT.so.1")))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


# -- finding the library ------------------------------------------------------------------------
def test_find_library_honours_rfcheck_faketime_lib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    library = tmp_path / "libfaketimeMT.so.1"
    library.write_bytes(b"")
    monkeypatch.setenv("RFCHECK_FAKETIME_LIB", str(library))
    assert find_library() == str(library)


def test_an_override_that_does_not_exist_means_no_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RFCHECK_FAKETIME_LIB", str(tmp_path / "missing.so"))
    assert find_library() is None, "a missing override must not fall back to the system library"


def test_without_an_override_the_system_library_is_found() -> None:
    assert find_library() == SYSTEM_LIBRARY


# -- the offset file and the environment ------------------------------------------------------------
def test_the_offset_file_follows_every_travel_until_closed(faketime: Callable[[Clock], FakeTime]) -> None:
    clock = Clock()
    fake = faketime(clock)
    assert fake.file.read_text() == "+0s\n"
    clock.travel(DAY)
    clock.travel(120.7)
    assert fake.file.read_text() == f"+{DAY + 120}s\n"
    fake.close()
    assert not fake.file.exists()
    clock.travel(DAY)  # no longer subscribed: nothing is written
    assert not fake.file.exists()


def test_the_environment_points_at_the_library_and_the_file(
        faketime: Callable[[Clock], FakeTime], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/opt/other/libpreloaded.so")
    fake = faketime(Clock())
    env = fake.environment()
    assert env["LD_PRELOAD"] == fake.library, "what was preloaded already is kept when merged (Instrumentation)"
    assert env["FAKETIME_TIMESTAMP_FILE"] == str(fake.file)
    assert env["FAKETIME_NO_CACHE"] == "1"  # reread the file on every clock call


@needs_libfaketime
def test_a_running_process_sees_its_clock_jump_when_rfcheck_travels(faketime: Callable[[Clock], FakeTime]) -> None:
    clock = Clock()
    fake = faketime(clock)
    child = subprocess.Popen([sys.executable, "-c", CLOCK_PRINTER], env={**os.environ, **fake.environment()},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    stdin, stdout = child.stdin, child.stdout
    assert stdin is not None and stdout is not None
    try:
        def ask() -> tuple[float, float]:
            stdin.write("\n")
            stdin.flush()
            wall, monotonic = stdout.readline().split()
            return float(wall), float(monotonic)

        before, real_before = ask(), clock.now()
        clock.travel(DAY)
        after, real_after = ask(), clock.now() - DAY
        assert abs(before[0] - real_before) < 5, "no travel yet: the child's clock is the real one"
        assert abs((after[0] - before[0]) - (DAY + real_after - real_before)) < 5
        assert after[1] - before[1] < 5, "the monotonic clock keeps running (timers and timeouts)"
    finally:
        stdin.close()
        child.wait(5)


# -- through the harness ---------------------------------------------------------------------------
@pytest.fixture
def command_harness(toml_harness: Callable[..., Harness]) -> Callable[[str], Harness]:
    def make(run: str) -> Harness:
        return toml_harness({"target": {"name": "clock-reader", "kind": "command", "flow": "client_credentials"},
                             "target.command": {"run": run}})

    return make


def test_without_libfaketime_the_harness_says_so_and_only_the_mocks_clock_moves(
        command_harness: Callable[[str], Harness], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RFCHECK_FAKETIME_LIB", str(tmp_path / "missing.so"))
    harness = command_harness('echo "clock file: [$FAKETIME_TIMESTAMP_FILE]"')
    result = harness.scenario("expiry")
    harness.scenario("baseline")
    assert harness.notes == [f"the target's clock cannot be fully moved: {UNAVAILABLE}"], (
        "noted once, however many drivers")
    (travel,) = result.events_of("travel")
    assert travel.detail == "only the mock's clock moved: the target's clock cannot be moved"
    assert set(result.output.splitlines()) == {"clock file: []"}


@needs_libfaketime
def test_with_libfaketime_a_command_targets_clock_travels_with_rfcheck(
        command_harness: Callable[[str], Harness]) -> None:
    harness = command_harness("date +%s.%N")
    result = harness.scenario("expiry")  # two units, travel, three units
    assert not harness.notes
    (travel,) = result.events_of("travel")
    assert travel.detail == "the target's clock moved too"
    times = [float(line) for line in result.output.splitlines()]
    assert len(times) == 5
    assert times[1] - times[0] < 5 and times[4] - times[2] < 5
    assert PAST_EXPIRY - 5 < times[2] - times[1] < PAST_EXPIRY + 5


def test_a_python_command_follows_rfcheck_s_clock_with_libfaketime_preloaded_or_not(
        command_harness: Callable[[str], Harness]) -> None:
    # libfaketime 0.9.10 makes time.sleep fail with EINVAL on Python 3.11+: rfcheck's sitecustomize
    # restarts the interpreter without it and moves the clock with time-machine instead
    harness = command_harness(f'"{sys.executable}" -c "import time; time.sleep(0.01); print(time.time())"')
    result = harness.scenario("expiry")
    assert [e.ok for e in result.events_of("unit")] == [True] * 5
    (travel,) = result.events_of("travel")
    assert travel.detail == "the target's clock moved too"
    assert not harness.notes
    times = [float(line) for line in result.output.splitlines()]
    assert PAST_EXPIRY - 5 < times[2] - times[1] < PAST_EXPIRY + 5
    assert "clock moved by time-machine (rfcheck's sitecustomize)" in result.notes[0]
