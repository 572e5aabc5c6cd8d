"""rfcheck's peak memory and wall time against hostile web targets (tests/apps/web_app.py's modes):
a flood of output without newlines, a huge page, an endless page, a page that trickles, and the
same app behaving for comparison.

Each case is one ``pytest --rfcheck -k ORG_02`` run in a fresh process, as a user types it: ORG-02
reads the baseline scenario only (a login and three units of work, each meeting the hostile answer),
which is what peak memory depends on; more scenarios repeat it, one lane at a time per job. rfcheck's peak resident
memory is its own process's ``VmHWM`` (read from /proc while it runs: the target is a separate
process and is not counted). Prints one ``name value`` line per number.

    python3 bench/hostile_targets.py            # 200 MB of output per unit, a 500 MB page
    python3 bench/hostile_targets.py --quick    # 5 MB and 10 MB, 1 s deadlines: what the suite runs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "web_app.py"
CONFIG = """
[target]
name = "hostile-{name}"
kind = "web"
redirect_uri = "http://127.0.0.1:{{port}}/callback"
[target.web]
start = '"{python}" "{app}"'
url = "http://127.0.0.1:{{port}}"
actions = ["{action}"]
step_timeout = {step_timeout}
[target.env]
RF_ISSUER = "{{issuer}}"
RF_API_URL = "{{api_url}}"
RF_CLIENT_ID = "{{client_id}}"
RF_CLIENT_SECRET = "{{client_secret}}"
RF_REDIRECT_URI = "{{redirect_uri}}"
PORT = "{{port}}"
APP_MODE = "{mode}"
APP_FLOOD_MB = "{flood_mb}"
APP_PAGE_MB = "{page_mb}"
"""


def peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(name: str, folder: Path, mode: str = "", action: str = "/invoices", step_timeout: float = 30,
        flood_mb: int = 0, page_mb: int = 0) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit status) of one run."""
    case = folder / name
    case.mkdir()
    (case / "rfcheck.toml").write_text(CONFIG.format(
        name=name, python=sys.executable, app=APP, action=action, step_timeout=step_timeout, mode=mode,
        flood_mb=flood_mb, page_mb=page_mb))
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--rfcheck", "--rfcheck-target", str(case / "rfcheck.toml"),
         "--rfcheck-report", str(case / "reports"), "-k", "ORG_02", "-q", "-p", "no:cacheprovider"],
        cwd=case, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, peak_kib(process.pid))
        time.sleep(0.05)
    return time.monotonic() - began, peak / 1024, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small floods and pages (the suite's run)")
    args = parser.parse_args()
    flood, page, deadline = (5, 10, 1) if args.quick else (200, 500, 2)
    cases = [
        ("correct", {}),
        (f"flood_{flood}mb_per_unit", {"mode": "flood", "flood_mb": flood}),
        (f"page_{page}mb", {"action": "/huge", "page_mb": page}),
        ("endless_page", {"action": "/endless", "step_timeout": deadline}),
        ("trickling_page", {"action": "/trickle", "step_timeout": deadline}),
    ]
    with tempfile.TemporaryDirectory(prefix="rfcheck-bench-") as folder:
        baseline = None
        for name, options in cases:
            wall, peak, status = run(name, Path(folder), **options)  # type: ignore[arg-type]
            baseline = baseline or peak
            print(f"{name}_wall_s {wall:.2f}")
            print(f"{name}_peak_rss_mib {peak:.1f}")
            print(f"{name}_peak_rss_over_correct {peak / baseline:.2f}")
            print(f"{name}_exit {status}")


if __name__ == "__main__":
    main()
