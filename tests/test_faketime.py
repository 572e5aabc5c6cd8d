"""Tests for rfcheck.runtime.faketime: the clock mover comes with ``pip install`` (PyPI's
libfaketime wheel), a process started with FakeTime's environment follows rfcheck's clock while it
runs, wall and monotonic (libfaketime rereads the offset file), Node confirms every travel, a Go
program is known to be out of reach, and a machine without libfaketime is noted once and leaves a
non-Python target's clock alone. A Python command follows the clock through rfcheck's
sitecustomize instead (tests/test_runtime.py has more)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rfcheck.harness import Harness
from rfcheck.provider.clock import Clock
from rfcheck.scenarios import PAST_EXPIRY
from rfcheck.runtime.faketime import UNAVAILABLE, FakeTime, Library, find_library, loads_here, unreachable

DAY = 86_400
LIBRARY = find_library()
needs_libfaketime = pytest.mark.skipif(LIBRARY is None, reason="libfaketime is not installed")
CLOCK_PRINTER = "import sys, time\nfor _ in sys.stdin:\n    print(time.time(), time.monotonic(), flush=True)\n"



@pytest.fixture(autouse=True)
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RFCHECK_FAKETIME_LIB", raising=False)


@pytest.fixture
def faketime(tmp_path: Path) -> Iterator[Callable[[Clock], FakeTime]]:
    made: list[FakeTime] = []

    def make(clock: Clock) -> FakeTime:
        made.append(FakeTime(clock, LIBRARY or Library(str(tmp_path / "libfaketime.so.1"), "a test")))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


# -- finding the library ------------------------------------------------------------------------
def test_find_library_honours_rfcheck_faketime_lib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    library = tmp_path / "libfaketimeMT.so.1"
    library.write_bytes(b"")
    monkeypatch.setenv("RFCHECK_FAKETIME_LIB", str(library))
    assert find_library() == Library(str(library), "RFCHECK_FAKETIME_LIB")


def test_an_override_that_does_not_exist_means_no_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RFCHECK_FAKETIME_LIB", str(tmp_path / "missing.so"))
    assert find_library() is None, "a missing override must not fall back to the system library"


def test_the_clock_mover_comes_with_pip_install() -> None:
    # the README's commands install no system package: the wheel's library is the one that runs
    found = find_library()
    assert found is not None and found.origin.startswith("the libfaketime ") and "wheel (PyPI)" in found.origin
    assert found.path.endswith("libfaketime.so.1") and loads_here(Path(found.path))


def test_a_library_built_for_another_cpu_does_not_load_here(tmp_path: Path) -> None:
    other = tmp_path / "libfaketime.so.1"
    header = bytearray(Path(sys.executable).resolve().read_bytes()[:64])
    header[18:20] = (0x1234).to_bytes(2, "little")
    other.write_bytes(bytes(header))
    assert loads_here(Path(sys.executable).resolve()) and not loads_here(other)
    other.write_text("not ELF")
    assert not loads_here(other)


def test_a_go_program_is_known_to_be_out_of_reach(tmp_path: Path) -> None:
    assert unreachable(sys.executable) == "" and unreachable("/bin/sh") == ""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (.ci/run installs Debian's golang-go)")
    assert "Go program reads its clock through the vDSO" in unreachable(str(Path(go).resolve()))


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
    assert env["LD_PRELOAD"] == fake.library.path, "what was preloaded already is kept when merged (Instrumentation)"
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
        assert abs((after[1] - before[1]) - (DAY + real_after - real_before)) < 5, "a travel is elapsed time"
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
    result = harness.scenario("expiry")  # two units, travel, three units (client credentials: no user to keep active)
    assert not harness.notes
    (travel,) = result.events_of("travel")
    assert travel.detail == "the target's clock moved too"
    _timeline([float(line) for line in result.output.splitlines()])
    assert "libfaketime from the libfaketime " in result.notes[0] and "wheel (PyPI)" in result.notes[0], result.notes


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
    _timeline([float(line) for line in result.output.splitlines()])
    assert "clock moved by time-machine, monotonic clocks with it (rfcheck's sitecustomize)" in result.notes[0]


def _timeline(times: list[float]) -> None:
    """What the expiry scenario's units read: 2, then 3 after the travel, 24 h 2 min after the second one."""
    assert len(times) == 5, times
    assert times[1] - times[0] < 5 and times[4] - times[2] < 5
    assert PAST_EXPIRY - 5 < times[2] - times[1] < PAST_EXPIRY + 5
