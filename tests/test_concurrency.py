"""Scenarios at once: the same answers as one at a time, only sooner.

Each example runs twice through ``pytest --rfcheck`` (a subprocess, as a user types it), once with
``--rfcheck-jobs 1`` and once with several jobs; the two JSON reports must agree on every verdict,
status, reason and piece of evidence once what differs between any two runs is taken out (times,
ports, process IDs, the random tokens and refresh family IDs a run issues). Durations are times too:
"retried after 1.00 s" reads 1.01 s on another run.

The same holds for what only makes runs faster: an in-process target's sleeps taken on rfcheck's clock
against real ones (``RFCHECK_REAL_SLEEPS=1``), and a fixed-port web app side by side (each lane moving its
port 3000 to one of its own) against one scenario at a time.
"""

from __future__ import annotations

import json
import os
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


def run(config: Path, jobs: int, out: Path, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rfcheck", f"--rfcheck-target={config}",
         f"--rfcheck-report={out}", f"--rfcheck-jobs={jobs}"],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT, env={**os.environ, **env})
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


def test_simulated_sleeps_give_the_answers_of_real_ones(tmp_path: Path) -> None:
    """In process, the target's time.sleep and asyncio.sleep advance rfcheck's clock instead of waiting: the
    four Retry-After: 1 answers of token_endpoint_unavailable cost no wall-clock time, and nothing else
    changes."""
    config = EXAMPLES / "httpx_code" / "rfcheck.toml"
    real = run(config, 1, tmp_path / "real", RFCHECK_REAL_SLEEPS="1")
    simulated = run(config, 1, tmp_path / "simulated", RFCHECK_REAL_SLEEPS="")
    assert real["verdict"] == "ready"
    assert answers(simulated) == answers(real)
    notes = {s["name"]: s["notes"] for s in simulated["scenarios"]}
    assert any("time.sleep and asyncio.sleep in the target's calls advance rfcheck's clock" in n
               for n in notes["token_endpoint_unavailable"])


@pytest.mark.skipif(not (EXPRESS / "node_modules").is_dir() or shutil.which("node") is None,
                    reason="the Express example's packages are not installed (npm ci in examples/node/express-app)")
def test_a_fixed_port_app_side_by_side_gives_the_answers_of_one_at_a_time(tmp_path: Path) -> None:
    from tests.test_fixed_port import fixed_port_express

    (tmp_path / "app").mkdir()
    config = fixed_port_express(tmp_path / "app")
    assert not serial_reason(load_config(config)), "rfcheck moves the port of a Node app: it runs side by side"
    serial = run(config, 1, tmp_path / "serial")
    concurrent = run(config, 4, tmp_path / "concurrent")
    assert serial["verdict"] == "ready"
    assert answers(concurrent) == answers(serial)


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


def test_signing_keys_made_ahead_are_each_handed_out_once() -> None:
    """Start-up: RSA keys come from a pool made ahead on a thread of their own, and no two key sets (of one
    scenario or of two) ever hold the same key: each scenario's rotation signs with a key of its own."""
    from rfcheck.provider.keys import KeyPool, KeySet, SigningKey

    pool = KeyPool(spares=2)
    pool.fill()
    taken = [pool.take() for _ in range(4)]
    numbers = {key.private_numbers().d for key in taken}
    assert len(numbers) == 4
    first = SigningKey.generate()
    scenarios = [KeySet(first) for _ in range(3)]  # the run's first key is shared, as before
    rotated = [keys.rotate() for keys in scenarios]
    assert len({key.kid for key in rotated}) == 3
    assert len({key.private_key.private_numbers().d for key in rotated} | {first.private_key.private_numbers().d}) == 4
    assert [keys.find(other.kid) for keys, other in zip(scenarios, rotated[1:] + rotated[:1])] == [None] * 3
