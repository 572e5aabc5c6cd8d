"""bench/token_endpoint.py keeps working: its --quick mode starts the servers, drives them and
prints every number. Nothing here is timed: the benchmark is read by a person, not asserted on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "token_endpoint.py"
NUMBER = r"-?\d+(\.\d+)?"
ALWAYS = ("rsa2048_signs_per_s_1_thread", "rsa2048_signs_per_s_2_threads", "rfcheck_idle_rss_mib",
          "rfcheck_tokens_per_s", "rfcheck_p50_ms", "rfcheck_p99_ms", "rfcheck_cpu_cores", "rfcheck_peak_rss_mib",
          "rfcheck_rss_kib_per_token")
WITH_PEER = ("peer_tokens_per_s", "peer_p50_ms", "peer_p99_ms", "peer_cpu_cores", "ratio_rfcheck_over_peer")


def _ran(script: str, *args: str, timeout: int) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run a benchmark script as a user would; it must succeed. Its output, and its numbers by name."""
    done = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, _numbers(done.stdout)


def _numbers(output: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(rf"^(\w+) ({NUMBER})$", output, flags=re.M)}


def test_quick_run_prints_every_number_and_stops_its_servers() -> None:
    done, numbers = _ran(str(BENCH), "--quick", timeout=180)
    peer_installed = (ROOT / "bench" / "node_modules" / "oauth2-mock-server").exists()
    expected = ALWAYS + (WITH_PEER if peer_installed else ())
    assert [name for name in expected if name not in numbers] == [], done.stdout
    assert float(numbers["rfcheck_tokens_per_s"]) > 0
    if not peer_installed:
        assert "# peer skipped: bench/node_modules is absent" in done.stdout
    pids = [int(pid) for pid in re.findall(r"=(\d+)", _line(done.stdout, "# server pids:"))]
    assert pids and [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []


def test_a_server_that_cannot_start_fails_the_run(tmp_path: Path) -> None:
    # an empty checkout: the child finds no rfcheck package there and says so instead of its URL
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-peer", "--rfcheck-root", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "bench failed: rfcheck did not start" in done.stderr and "no rfcheck package" in done.stderr
    assert "rfcheck_tokens_per_s" not in done.stdout


def _line(output: str, prefix: str) -> str:
    return next((line for line in output.splitlines() if line.startswith(prefix)), "")


# -- bench/time_travel.py ------------------------------------------------------------------------
TRAVEL_BENCH = ROOT / "bench" / "time_travel.py"
TRAVEL_NUMBERS = ("travel_p50_ms", "travel_p99_ms", "travel_max_ms", "time_call_plain_ns", "time_call_moved_ns",
                  "ratio_moved_over_plain", "startup_plain_ms", "startup_instrumented_ms")


def test_time_travel_quick_run_prints_every_number() -> None:
    done, numbers = _ran(str(TRAVEL_BENCH), "--quick", timeout=180)
    assert [name for name in TRAVEL_NUMBERS if name not in numbers] == [], done.stdout
    assert (numbers["processes"], numbers["travels"]) == ("2", "10")


# -- bench/explore.py ------------------------------------------------------------------------------
def test_explore_quick_run_prints_every_number() -> None:
    done, numbers = _ran(str(ROOT / "bench" / "explore.py"), "--quick", timeout=300)
    for name in ("inprocess_examples", "inprocess_seconds_per_example", "web_examples", "web_seconds_per_example",
                 "ratio_web_over_inprocess"):
        assert name in numbers, done.stdout
    assert numbers["inprocess_examples"] == numbers["web_examples"] == "3"


def test_whole_run_benchmark_prints_every_number() -> None:
    """bench/whole_run.py keeps working: one run of each mode on the in-process example."""
    done, numbers = _ran(str(ROOT / "bench" / "whole_run.py"), "--runs", "1", "--example", "inprocess",
                         timeout=300)
    for mode in ("serial", "concurrent"):
        for name in ("wall_s_median", "wall_s_min", "wall_s_max", "rfcheck_cpu_s_median", "machine_cpu_s_median",
                     "rfcheck_cpu_ms_per_scenario"):
            assert f"inprocess_{mode}_{name}" in numbers, done.stdout
    assert float(numbers["inprocess_serial_wall_s_median"]) > 0
    assert "inprocess_ratio_serial_over_concurrent" in numbers


# -- bench/hostile.py ------------------------------------------------------------------------------
HOSTILE_BENCH = ROOT / "bench" / "hostile.py"
HOSTILE_NUMBERS = ("hostile_sent", "hostile_answers_500", "hostile_unrecorded", "hostile_unanswered",
                   "hostile_record_status_differs", "hostile_tunnels", "hostile_internal_errors",
                   "hostile_normal_request_after_status", "latency_alone_p50_ms", "latency_beside_40_slow_p50_ms",
                   "ratio_p50_beside_slow_over_alone", "memory_server_before_mib",
                   "memory_growth_ten_16mib_bodies_mib", "memory_growth_ten_1mib_bodies_mib",
                   "connections_200_idle_normal_request_ms")


def test_hostile_quick_run_prints_every_number_and_finds_nothing_wrong() -> None:
    done, numbers = _ran(str(HOSTILE_BENCH), "--quick", timeout=300)
    assert [name for name in HOSTILE_NUMBERS if name not in numbers] == [], done.stdout
    assert numbers["hostile_sent"] == "1000" and numbers["hostile_normal_request_after_status"] == "200"
    assert [numbers[f"hostile_{key}"] for key in ("answers_500", "unrecorded", "unanswered", "internal_errors")] == [
        "0", "0", "0", "0"]
    assert "# server process: 16 MiB bodies answered {'413': 10}" in done.stdout


def test_secret_scan_quick_run_prints_every_number_and_finds_the_padded_secret() -> None:
    done, numbers = _ran(str(ROOT / "bench" / "secret_scan.py"), "--quick", timeout=300)
    assert {"scan_500_tracked_files_s", "scan_500_files_per_s", "scan_30mb_padded_file_s"} <= set(numbers), done.stdout
    assert numbers["scan_30mb_padded_secret_found"] == "1"


def test_hostile_targets_quick_run_prints_every_number() -> None:
    done, numbers = _ran(str(ROOT / "bench" / "hostile_targets.py"), "--quick", timeout=600)
    cases = ("correct", "flood_5mb_per_unit", "page_10mb", "endless_page", "trickling_page")
    for case in cases:
        assert {f"{case}_wall_s", f"{case}_peak_rss_mib", f"{case}_exit"} <= set(numbers), done.stdout
    assert numbers["correct_exit"] == "0"
    assert numbers["endless_page_exit"] == numbers["trickling_page_exit"] == "1", "their units fail: not driven"
