"""Scenarios at once: the same answers as one at a time, only sooner.

Each example runs twice through ``pytest --rfcheck`` (a subprocess, as a user types it), once with
``--rfcheck-jobs 1`` and once with several jobs; the two JSON reports must agree on every verdict,
status, reason and piece of evidence once what differs between any two runs is taken out (times,
ports, process IDs, the random tokens and refresh family IDs a run issues). Durations are times too:
"retried after 1.00 s" reads 1.01 s on another run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rfcheck.config import load_config
from rfcheck.lanes import serial_reason

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EXPRESS = EXAMPLES / "node" / "express-app"
RUN_TIMEOUT = 180

# what differs between any two runs, serial or not: times first (clock readings, measured durations)
_NOISE = [
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d([.,]\d+)?Z?"), "<time>"),
    (re.compile(r"\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<seconds> s"),
    (re.compile(r"\S{0,6}…#[0-9a-f]{4}"), "<redacted>"),  # a token or secret as the journal redacts it
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), r"\1:<port>"),
    (re.compile(r"\bpid \d+"), "pid <n>"),
    (re.compile(r"refresh family [A-Za-z0-9_-]+"), "refresh family <id>"),
    (re.compile(r"\bstate=[A-Za-z0-9_-]+"), "state=<random>"),  # the app's own random state in its access log
    (re.compile(r"\brfc_[A-Za-z0-9_-]+"), "<client_id>"),
]


def _quiet(text: Any) -> Any:
    if isinstance(text, str):
        for pattern, replacement in _NOISE:
            text = pattern.sub(replacement, text)
    return text


def answers(report: dict[str, Any]) -> dict[str, Any]:
    """What a report concludes: the verdict, each requirement, each scenario's outcome, the notes."""
    return {
        "verdict": report["verdict"], "summary": report["summary"], "not_judged": report["not_judged"],
        "notes": [_quiet(n) for n in report["notes"]],
        "requirements": [{"id": r["id"], "status": r["status"], "reason": _quiet(r["reason"]),
                          "evidence": [{k: _quiet(v) for k, v in e.items()} for e in r["evidence"]]}
                         for r in report["requirements"]],
        "scenarios": [{"name": s["name"], "outcome": s["outcome"], "reason": _quiet(s["reason"])}
                      for s in report["scenarios"]],
    }


def run(config: Path, jobs: int, out: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rfcheck", f"--rfcheck-target={config}",
         f"--rfcheck-report={out}", f"--rfcheck-jobs={jobs}"],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads((out / "rfcheck-report.json").read_text())
    return report


EXAMPLE_CONFIGS = [
    pytest.param(EXAMPLES / "flask_app" / "rfcheck.toml", "ready", id="flask-correct"),
    pytest.param(EXAMPLES / "flask_app" / "broken_tokens_in_cookie_session.toml", "not-ready",
                 id="flask-tokens-in-cookie"),
    pytest.param(EXAMPLES / "flask_app" / "broken_crash_on_error.toml", "not-ready", id="flask-crash"),
    pytest.param(EXPRESS / "rfcheck.toml", "ready", id="express-correct", marks=pytest.mark.skipif(
        not (EXPRESS / "node_modules").is_dir() or shutil.which("node") is None,
        reason="the Express example's packages are not installed (npm ci in examples/node/express-app)")),
]


@pytest.mark.parametrize(("config", "verdict"), EXAMPLE_CONFIGS)
def test_scenarios_at_once_give_the_answers_of_scenarios_one_at_a_time(config: Path, verdict: str,
                                                                       tmp_path: Path) -> None:
    assert not serial_reason(load_config(config)), "the example must be one whose scenarios may run at once"
    serial = run(config, 1, tmp_path / "serial")
    concurrent = run(config, 4, tmp_path / "concurrent")
    assert serial["verdict"] == verdict
    assert answers(concurrent) == answers(serial)
    assert [s["name"] for s in concurrent["scenarios"]] == sorted(s["name"] for s in concurrent["scenarios"])


def test_an_in_process_target_runs_one_scenario_at_a_time_and_says_why(tmp_path: Path) -> None:
    report = run(EXAMPLES / "httpx_code" / "rfcheck.toml", 4, tmp_path / "report")
    assert report["verdict"] == "ready"
    assert any(n.startswith("scenarios ran one at a time: an in-process Python target") for n in report["notes"])


@pytest.mark.parametrize("value", ["0", "many", "65"])
def test_a_wrong_jobs_option_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makefile(".toml", rfcheck='[target]\nkind = "python"\n')
    result = pytester.runpytest("--rfcheck", f"--rfcheck-jobs={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--rfcheck-jobs: expected a number of scenarios from 1 to 64, not '{value}'*"])


def test_an_internal_error_and_a_transport_notice_are_run_notes(tmp_path: Path) -> None:
    from rfcheck.harness import Harness
    from rfcheck.scenarios import ScenarioResult

    (tmp_path / "rfcheck.toml").write_text('[target]\nkind = "python"\n')
    harness = Harness(load_config(tmp_path / "rfcheck.toml"))
    provider = harness.new_provider(harness.provider.clock)
    provider.errors.append(KeyError("family"))
    provider.notice("a client refused the TLS certificate of https://127.0.0.1:1 (TLSV1_ALERT_UNKNOWN_CA)")
    harness.results["baseline"] = ScenarioResult("baseline", "completed", provider=provider)
    assert ("rfcheck internal error while serving the baseline scenario: KeyError: 'family' (its request was "
            "answered 500, or its connection closed; please report it)") in harness.notes
    assert ("baseline: a client refused the TLS certificate of https://127.0.0.1:1 (TLSV1_ALERT_UNKNOWN_CA)"
            in harness.notes)


def test_the_targets_port_is_free_and_outside_the_range_of_outgoing_connections() -> None:
    """A port probed free inside ip_local_port_range can be taken by any connection the machine opens
    before the target binds it: ``{port}`` comes from outside it."""
    import socket

    from rfcheck.lanes import free_port

    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high and port >= 1024
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))
