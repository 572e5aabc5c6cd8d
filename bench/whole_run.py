"""Whole runs of ``pytest --rfcheck``: wall time and CPU of two ways of running one example.

Each run is ``pytest --rfcheck`` in a fresh process, as a user types it, on a bundled example. Each
example is a pair of modes, interleaved (first, second, first, ...) so that a machine that gets busier or
quieter during the benchmark weighs on both alike:

- ``inprocess``, ``express``, ``flask``: scenarios one at a time (``--rfcheck-jobs 1``) and at once;
- ``sleeps``: the in-process example with its sleeps taken for real (``RFCHECK_REAL_SLEEPS=1``) and on
  rfcheck's clock (the default);
- ``fixed_port``: a copy of the Express example written for port 3000, as Request Finance's own demo is,
  one scenario at a time and side by side (each lane moving the app's port 3000 to one of its own);
- ``select``: the Express example, the whole catalogue and ``-k TOKEN-03`` (a selection runs only the
  scenarios its requirements read; its verdict is ``incomplete``).

Printed: one ``name value`` line per number (median and range of the wall time, the CPU time of
rfcheck's own process and of the whole machine, rfcheck's CPU per scenario) and the ratio of the medians.
``--against PATH`` runs another checkout (the previous commit's, from ``git worktree add``) beside this one,
each of its runs right after this checkout's in the same mode, and prints its numbers as ``against_...``
with the ratio of this checkout's median wall time over its own.

    python3 bench/whole_run.py                     # inprocess, sleeps, express, fixed_port, select: 5 runs each
    python3 bench/whole_run.py --runs 3 --example flask --example sleeps
    python3 bench/whole_run.py --example inprocess --against ../rfcheck-before   # before and after
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPRESS = ROOT / "examples" / "node" / "express-app"
EXAMPLES = {
    "inprocess": ROOT / "examples" / "httpx_code",
    "sleeps": ROOT / "examples" / "httpx_code",
    "express": EXPRESS,
    "fixed_port": EXPRESS,  # copied, written for port 3000 (fixed_port_copy)
    "flask": ROOT / "examples" / "flask_app",
    "select": EXPRESS,
}
DEFAULT = ["inprocess", "sleeps", "express", "fixed_port", "select"]
NEEDS_NODE = ("express", "fixed_port", "select")
Mode = tuple[str, int, dict[str, str], tuple[str, ...]]  # name, --rfcheck-jobs, environment additions, arguments


def modes_of(example: str, jobs: int) -> list[Mode]:
    """The two modes an example is run in."""
    if example == "sleeps":
        return [("real", jobs, {"RFCHECK_REAL_SLEEPS": "1"}, ()), ("simulated", jobs, {"RFCHECK_REAL_SLEEPS": ""}, ())]
    if example == "fixed_port":
        return [("serial", 1, {}, ()), ("side_by_side", jobs, {}, ())]
    if example == "select":
        return [("whole", jobs, {}, ()), ("token_03", jobs, {}, ("-k", "TOKEN-03"))]
    return [("serial", 1, {}, ()), ("concurrent", jobs, {}, ())]


def fixed_port_copy(folder: Path) -> Path:
    """The Express example written for a fixed port: url and redirect URI on localhost:3000, the app on its
    default port 3000 (no PORT given)."""
    for source in EXPRESS.iterdir():
        if source.suffix in (".js", ".json") and source.name != "package-lock.json":
            shutil.copy(source, folder / source.name)
    (folder / "node_modules").symlink_to(EXPRESS / "node_modules")
    config = (EXPRESS / "rfcheck.toml").read_text().replace("localhost:{port}", "localhost:3000")
    (folder / "rfcheck.toml").write_text("\n".join(line for line in config.splitlines()
                                                  if not line.startswith("PORT = ")) + "\n")
    return folder
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


def one_run(example: Path, jobs: int, report: Path, env: dict[str, str] | None = None,
            root: Path = ROOT, extra: tuple[str, ...] = ()) -> dict[str, float]:
    """One ``pytest --rfcheck`` in a fresh interpreter, with the rfcheck of checkout ``root`` (and its copy of
    the example); its wall time is measured from outside too."""
    numbers = report / "cost.json"
    example = root / example.relative_to(ROOT) if example.is_relative_to(ROOT) else example
    args = ["-q", "-p", "no:cacheprovider", "--rfcheck", f"--rfcheck-target={example}", f"--rfcheck-report={report}",
            f"--rfcheck-jobs={jobs}", *extra]
    began, cpu = time.monotonic(), machine_cpu()
    done = subprocess.run([sys.executable, "-c", _RUNNER, str(numbers), *args], cwd=root, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})
    wall, total = time.monotonic() - began, machine_cpu() - cpu
    if not numbers.exists():
        raise SystemExit(f"the run of {example.name} did not finish:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cost = json.loads(numbers.read_text())
    result = json.loads((report / "rfcheck-report.json").read_text())
    expected = "incomplete" if extra else "ready"  # a selection judges only what it selected
    if cost["code"] not in (0, 1) or result["verdict"] != expected:
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
                        help=f"example to run (default: {', '.join(DEFAULT)})")
    parser.add_argument("--against", type=Path, metavar="PATH",
                        help="another checkout of rfcheck, run interleaved with this one (before and after)")
    options = parser.parse_args()
    roots = {"": ROOT, **({"against_": options.against.resolve()} if options.against else {})}
    examples = options.example or DEFAULT
    if any(e in NEEDS_NODE for e in examples) and not (EXPRESS / "node_modules").is_dir():
        raise SystemExit("the Express example needs its packages: (cd examples/node/express-app && npm ci)")
    from rfcheck.lanes import default_jobs

    jobs = options.jobs or default_jobs()
    print(f"jobs {jobs}")
    for example in examples:
        pair = modes_of(example, jobs)
        modes: dict[str, list[dict[str, float]]] = {f"{tag}{example}_{name}": []
                                                     for tag in roots for name, _, _, _ in pair}
        with tempfile.TemporaryDirectory(prefix="rfcheck-bench-") as folder:
            target = EXAMPLES[example]
            if example == "fixed_port":
                (Path(folder) / "app").mkdir()
                target = fixed_port_copy(Path(folder) / "app")
            for i in range(options.runs):
                for (mode, count, env, extra), (tag, root) in itertools.product(pair, roots.items()):
                    report = Path(folder) / f"{tag}{mode}-{i}"
                    report.mkdir()
                    modes[f"{tag}{example}_{mode}"].append(one_run(target, count, report, env, root, extra))
        numbers: dict[str, float] = {}
        for name, runs in modes.items():
            numbers.update(summary(name, runs))
        (first, *_), (second, *_) = pair
        numbers[f"{example}_ratio_{first}_over_{second}"] = (
            numbers[f"{example}_{first}_wall_s_median"] / numbers[f"{example}_{second}_wall_s_median"])
        numbers[f"{example}_ratio_{second}_over_{first}"] = 1 / numbers[f"{example}_ratio_{first}_over_{second}"]
        for mode in (first, second) if options.against else ():
            numbers[f"{example}_{mode}_ratio_over_against"] = (
                numbers[f"{example}_{mode}_wall_s_median"] / numbers[f"against_{example}_{mode}_wall_s_median"])
        for name, value in numbers.items():
            print(f"{name} {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
