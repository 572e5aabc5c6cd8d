"""What the real browser costs: web scenarios played by rfcheck's script-less browser and by headless Chromium.

``examples/flask_app`` (its pages run no script) is driven both ways, ``[target.web] browser = "simulated"``
and ``"chromium"``, so that only the browser differs; ``examples/flask_spa`` (its pages run scripts, so
``auto`` drives it in Chromium) is the app the real browser is for. Each mode runs the same scenarios in one
harness, as a run does (Chromium launched once per run and shared by its lanes, one context per scenario),
one at a time (``jobs 1``) and at once (the default jobs: every lane's visits go to the one thread that
drives Chromium); the modes are interleaved over ``--runs`` rounds, so that a machine that gets busier or
quieter weighs on all alike.

Printed: one ``name value`` line per number (the median wall time per scenario, in seconds; the machine's
CPU seconds per scenario from ``/proc/stat``, which counts Chromium's processes and the app's, and whatever
else the machine ran meanwhile; the share of the run during which the one thread that drives Chromium was
busy: near 1, that thread would be what limits the lanes), then the ratios of Chromium over the script-less
browser.

    python3 bench/real_browser.py                 # 3 rounds, 8 scenarios per mode
    python3 bench/real_browser.py --quick         # 1 round, the baseline only: that it all still runs
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rfcheck.config import load_config  # noqa: E402
from rfcheck.harness import Harness  # noqa: E402
from rfcheck.lanes import default_jobs  # noqa: E402
from rfcheck.targets import chromium  # noqa: E402

SCENARIOS = ("baseline", "expiry", "rotation", "revoked_access", "revoked_refresh", "idle_return", "concurrency",
             "withheld_scope")
MODES = {  # name: (example, browser)
    "simulated": (ROOT / "examples" / "flask_app" / "rfcheck.toml", "simulated"),
    "chromium": (ROOT / "examples" / "flask_app" / "rfcheck.toml", "chromium"),
    "spa": (ROOT / "examples" / "flask_spa" / "rfcheck.toml", "auto"),
}


def machine_cpu() -> float:
    """CPU seconds the whole machine spent so far (user + nice + system, from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return (int(fields[0]) + int(fields[1]) + int(fields[2])) / 100


def thread_cpu(native_id: int) -> float:
    """CPU seconds one thread of this process spent so far (utime + stime of /proc/self/task/<tid>/stat)."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def driver_thread() -> int | None:
    """The native id of the thread that drives the run's Chromium (None when none runs)."""
    engine = chromium._Shared.engine
    return engine._thread.native_id if engine is not None else None


def one_run(mode: str, jobs: int, scenarios: tuple[str, ...]) -> tuple[float, float, float]:
    """Wall and machine CPU seconds per scenario of ``scenarios`` run in one harness of ``mode``, and the share
    of the wall time the thread that drives Chromium was busy (0 without one)."""
    file, browser = MODES[mode]
    config = load_config(file)
    assert config.web is not None
    config = dataclasses.replace(config, web=dataclasses.replace(config.web, browser=browser))
    began, cpu = time.monotonic(), machine_cpu()
    harness = Harness(config, jobs=jobs)
    harness.start()
    busy = 0.0
    try:
        harness.prefetch(scenarios)
        results = [harness.scenario(name) for name in scenarios]
        thread = driver_thread()
        busy = thread_cpu(thread) / (time.monotonic() - began) if thread is not None else 0.0
    finally:
        harness.stop()
        chromium.shutdown()  # what the end of a run does: the next run launches its own
    failed = [f"{r.name}: {r.outcome} {r.reason}" for r in results if r.outcome != "completed"]
    if failed:
        raise SystemExit(f"{mode}: scenarios did not complete: {failed}")
    count = len(scenarios)
    return (time.monotonic() - began) / count, (machine_cpu() - cpu) / count, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round of the baseline scenario only")
    args = parser.parse_args()
    # stopped from outside, the harness still stops the apps it started and the browser (finally, atexit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        found = chromium.find_chromium()
    except chromium.NoBrowser as err:
        raise SystemExit(f"no real browser to measure: {err}")
    runs, scenarios = (1, ("baseline",)) if args.quick else (args.runs, SCENARIOS)
    print(f"# {len(scenarios)} scenario(s) per mode, {runs} round(s); Chromium: {found.how}; "
          f"jobs at once: {default_jobs()}")
    launch = time.monotonic()
    chromium.acquire(found)
    chromium.release()
    chromium.shutdown()
    print(f"chromium_launch_and_close_s {time.monotonic() - launch:.3f}")
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    busy: dict[str, list[float]] = {}
    for _ in range(runs):
        for mode in MODES:
            for label, jobs in (("serial", 1), ("at_once", default_jobs())):
                wall, cpu, driving = one_run(mode, jobs, scenarios)
                walls.setdefault(f"{mode}_{label}", []).append(wall)
                cpus.setdefault(f"{mode}_{label}", []).append(cpu)
                busy.setdefault(f"{mode}_{label}", []).append(driving)
    medians = {name: statistics.median(values) for name, values in walls.items()}
    for name, values in walls.items():
        print(f"{name}_s_per_scenario {medians[name]:.3f}")
        print(f"{name}_min_s {min(values):.3f}")
        print(f"{name}_max_s {max(values):.3f}")
        print(f"{name}_machine_cpu_s_per_scenario {statistics.median(cpus[name]):.3f}")
        if not name.startswith("simulated"):  # how much of the run the one thread driving Chromium was busy
            print(f"{name}_driver_thread_busy {statistics.median(busy[name]):.2f}")
    for label in ("serial", "at_once"):
        print(f"ratio_chromium_over_simulated_{label} {medians[f'chromium_{label}'] / medians[f'simulated_{label}']:.2f}")
        print(f"ratio_spa_over_simulated_{label} {medians[f'spa_{label}'] / medians[f'simulated_{label}']:.2f}")
    for mode in MODES:
        print(f"ratio_{mode}_serial_over_at_once {medians[f'{mode}_serial'] / medians[f'{mode}_at_once']:.2f}")


if __name__ == "__main__":
    main()
