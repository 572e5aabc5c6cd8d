"""What time travel costs a process target: the handshake, and the clock calls it slows down.

Starts N Python processes under rfcheck's instrumentation (its sitecustomize: time-machine, one
control connection each), travels the clock M times, and prints one ``name value`` line per
number:

- ``travel_p50_ms`` / ``travel_p99_ms`` / ``travel_max_ms`` with N processes: how long a travel
  takes to return, i.e. until every process has confirmed the new offset (the handshake);
- ``faketime_write_p50_ms``: the same travel's libfaketime side (rewriting the offset file), the
  floor a handshake-free mechanism pays; ``ratio_handshake_over_file``;
- ``time_call_plain_ns`` / ``time_call_moved_ns``: one ``time.time()`` call in a target process
  without and with time-machine's patch, and ``ratio_moved_over_plain``;
- ``startup_plain_ms`` / ``startup_instrumented_ms``: interpreter start-up to exit, without and
  with the sitecustomize (the connection, the hello and the first offset).

Every child is stopped at the end, whatever happens. ``--quick`` uses few processes and travels
so the test suite can keep the script working (tests/test_bench.py); it asserts no timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rfcheck.provider.clock import Clock  # noqa: E402
from rfcheck.runtime import Instrumentation  # noqa: E402
from rfcheck.runtime.faketime import FakeTime, find_library  # noqa: E402

WAITER = "import sys\nfor line in sys.stdin:\n    print(line.strip(), flush=True)\n"
CALLS = ("import time\nn = {n}\nstart = time.perf_counter_ns()\nfor _ in range(n):\n    time.time()\n"
         "print((time.perf_counter_ns() - start) / n)\n")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(processes: int, travels: int, calls: int) -> dict[str, float]:
    clock = Clock()
    instrumentation = Instrumentation(clock, lambda host, port, via: None)
    env = instrumentation.environment(dict(os.environ))
    children: list[subprocess.Popen[str]] = []
    numbers: dict[str, float] = {}
    try:
        for _ in range(processes):
            children.append(subprocess.Popen([sys.executable, "-c", WAITER], env=env, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, text=True))
        for child in children:  # each has said hello and taken the offset once it echoes
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write("ready\n")
            child.stdin.flush()
            child.stdout.readline()
        durations = []
        for _ in range(travels):
            began = time.perf_counter()
            clock.travel(60)
            durations.append((time.perf_counter() - began) * 1000)
        if instrumentation.late:
            raise SystemExit(f"{len(instrumentation.late)} process(es) did not confirm a travel")
        numbers.update(processes=processes, travels=travels, travel_p50_ms=statistics.median(durations),
                       travel_p99_ms=percentile(durations, 0.99), travel_max_ms=max(durations))
        library = find_library()
        if library:
            fake = FakeTime(Clock(), library)
            try:
                writes = []
                for step in range(travels):
                    began = time.perf_counter()
                    fake._write(60.0 * step)
                    writes.append((time.perf_counter() - began) * 1000)
            finally:
                fake.close()
            numbers["faketime_write_p50_ms"] = statistics.median(writes)
            numbers["ratio_handshake_over_file"] = numbers["travel_p50_ms"] / max(numbers["faketime_write_p50_ms"],
                                                                                  1e-6)
        plain_env = {k: v for k, v in os.environ.items() if not k.startswith("RFCHECK_")}
        script = CALLS.format(n=calls)
        plain = float(subprocess.run([sys.executable, "-c", script], env=plain_env, capture_output=True,
                                     text=True, check=True).stdout)
        moved = float(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                     text=True, check=True).stdout)
        numbers.update(time_call_plain_ns=plain, time_call_moved_ns=moved, ratio_moved_over_plain=moved / plain)
        numbers["startup_plain_ms"] = _startup(plain_env)
        numbers["startup_instrumented_ms"] = _startup(env)
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        instrumentation.close()
    return numbers


def _startup(env: dict[str, str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--processes", type=int, default=8, help="Python processes following the clock")
    parser.add_argument("-t", "--travels", type=int, default=200, help="travels to time")
    parser.add_argument("--calls", type=int, default=200_000, help="time.time() calls per overhead measurement")
    parser.add_argument("--quick", action="store_true", help="2 processes, 10 travels (for the test suite)")
    args = parser.parse_args(argv)
    if args.quick:
        args.processes, args.travels, args.calls = 2, 10, 10_000
    for name, value in measure(args.processes, args.travels, args.calls).items():
        print(f"{name} {value:.3f}" if isinstance(value, float) else f"{name} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
