"""Whole runs of ``pytest --rfcheck``: wall time and CPU, scenarios one at a time versus at once.

Each run is ``pytest --rfcheck`` in a fresh process, as a user types it, on a bundled example.
The modes are interleaved (serial, concurrent, serial, ...) so that a machine that gets busier
or quieter during the benchmark weighs on both alike. Printed: one ``name value`` line per
number (median and range of the wall time, the CPU time of rfcheck's own process and of the whole
machine, rfcheck's CPU per scenario) and the ratio serial over concurrent.

    python3 bench/whole_run.py                     # the in-process and Express examples, 5 runs each
    python3 bench/whole_run.py --runs 3 --example flask
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "inprocess": ROOT / "examples" / "httpx_code",
    "express": ROOT / "examples" / "node" / "express-app",
    "flask": ROOT / "examples" / "flask_app",
}
# runs pytest in this process and reports what it cost: its own CPU (rfcheck and pytest, every thread)
_RUNNER = """
import json, resource, sys, time
began = time.monotonic()
import pytest
code = pytest.main(sys.argv[2:])
me = resource.getrusage(resource.RUSAGE_SELF)
json.dump({"code": int(code), "wall": time.monotonic() - began, "self_cpu": me.ru_utime + me.ru_stime},
          open(sys.argv[1], "w"))
"""


def machine_cpu() -> float:
    """CPU seconds the whole machine spent so far (/proc/stat): the target's processes are not all
    rfcheck's children (a shell's), so the run's total is read there, with whatever else ran meanwhile."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def one_run(example: Path, jobs: int, report: Path) -> dict[str, float]:
    """One ``pytest --rfcheck`` in a fresh interpreter; its wall time is measured from outside too."""
    numbers = report / "cost.json"
    args = ["-q", "-p", "no:cacheprovider", "--rfcheck", f"--rfcheck-target={example}", f"--rfcheck-report={report}",
            f"--rfcheck-jobs={jobs}"]
    began, cpu = time.monotonic(), machine_cpu()
    done = subprocess.run([sys.executable, "-c", _RUNNER, str(numbers), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    wall, total = time.monotonic() - began, machine_cpu() - cpu
    if not numbers.exists():
        raise SystemExit(f"the run of {example.name} did not finish:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cost = json.loads(numbers.read_text())
    result = json.loads((report / "rfcheck-report.json").read_text())
    if cost["code"] not in (0, 1) or result["verdict"] != "ready":
        raise SystemExit(f"the run of {example.name} (jobs {jobs}) ended {cost['code']}, verdict {result['verdict']}")
    scenarios = len([s for s in result["scenarios"] if s["outcome"] != "not-run"])
    return {"wall": wall, "self_cpu": cost["self_cpu"], "machine_cpu": total, "scenarios": scenarios}


def summary(name: str, runs: list[dict[str, float]]) -> dict[str, float]:
    walls = [r["wall"] for r in runs]
    return {f"{name}_wall_s_median": statistics.median(walls), f"{name}_wall_s_min": min(walls),
            f"{name}_wall_s_max": max(walls),
            f"{name}_rfcheck_cpu_s_median": statistics.median(r["self_cpu"] for r in runs),
            f"{name}_machine_cpu_s_median": statistics.median(r["machine_cpu"] for r in runs),
            f"{name}_rfcheck_cpu_ms_per_scenario": 1000 * statistics.median(
                r["self_cpu"] / max(r["scenarios"], 1) for r in runs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per mode (default 5)")
    parser.add_argument("--jobs", type=int, default=0, help="jobs of the concurrent mode (default: rfcheck's)")
    parser.add_argument("--example", action="append", choices=sorted(EXAMPLES),
                        help="example to run (default: inprocess and express)")
    options = parser.parse_args()
    examples = options.example or ["inprocess", "express"]
    if "express" in examples and not (EXAMPLES["express"] / "node_modules").is_dir():
        raise SystemExit("the Express example needs its packages: (cd examples/node/express-app && npm ci)")
    from rfcheck.lanes import default_jobs

    jobs = options.jobs or default_jobs()
    print(f"jobs {jobs}")
    for example in examples:
        modes: dict[str, list[dict[str, float]]] = {"serial": [], "concurrent": []}
        with tempfile.TemporaryDirectory(prefix="rfcheck-bench-") as folder:
            for i in range(options.runs):
                for mode, count in (("serial", 1), ("concurrent", jobs)):
                    report = Path(folder) / f"{mode}-{i}"
                    report.mkdir()
                    modes[mode].append(one_run(EXAMPLES[example], count, report))
        numbers: dict[str, float] = {}
        for mode, runs in modes.items():
            numbers.update(summary(f"{example}_{mode}", runs))
        numbers[f"{example}_ratio_serial_over_concurrent"] = (
            numbers[f"{example}_serial_wall_s_median"] / numbers[f"{example}_concurrent_wall_s_median"])
        for name, value in numbers.items():
            print(f"{name} {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
