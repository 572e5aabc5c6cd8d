"""End to end: the Node/Express example integrations, judged through real processes.

The correct app (openid-client v6 over HTTPS with the run's CA) must be ready; each broken
variant must differ from it in exactly the statuses its defect explains; the variant that
hard-codes the real hosts is judged unchanged through proxy mode. The Express 4 +
openid-client v5 app (Node's https module and fetch, real hosts hard-coded, no preload of its
own) is judged unchanged through hosts mode, its clock moved by libfaketime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "node" / "express-app"
APP_V5 = ROOT / "examples" / "node" / "express-openid-client-v5"
CHECK_REPORT = ROOT.parent / "shared" / "tools" / "check_report.py"

INSTALLED = all((app / "node_modules").is_dir() for app in (APP, APP_V5)) and shutil.which("node") is not None


@pytest.fixture(autouse=True)
def _node_installed() -> None:
    if not INSTALLED:
        message = "run `npm ci` in examples/node/express-app and examples/node/express-openid-client-v5 (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must judge the Node examples: {message}")
        pytest.skip(message)

READY = {
    **dict.fromkeys(["AUTH-01", "AUTH-02", "AUTH-03", "AUTH-04"], "pass"),
    **dict.fromkeys(["FLOW-01", "FLOW-02", "FLOW-03", "FLOW-04", "FLOW-05", "FLOW-07"], "pass"),
    "FLOW-06": "skip",
    **dict.fromkeys(["CC-01", "CC-02", "CC-03"], "skip"),
    **dict.fromkeys(["SCOPE-01", "SCOPE-02", "SCOPE-03", "SCOPE-04", "SCOPE-05"], "pass"),
    **dict.fromkeys([f"TOKEN-0{i}" for i in range(1, 9)], "pass"),
    **dict.fromkeys(["NET-01", "NET-02", "NET-03", "ORG-01", "ORG-02", "ORG-03"], "pass"),
    **dict.fromkeys([f"OIDC-{i:02d}" for i in range(1, 11)], "pass"),
    "SEC-01": "pass", "SEC-02": "manual", "SEC-03": "pass",
    "SEC-04": "skip",  # reached only through the loopback URLs: no other host could be seen
    "SEC-05": "pass", "REL-01": "pass", "REL-02": "pass",
    "MAN-01": "manual", "MAN-02": "manual", "MAN-03": "skip", "MAN-04": "skip", "MAN-05": "manual",
    "MAN-06": "manual",
}

CASES = {
    "rfcheck.toml": ("ready", READY),
    "broken-network.toml": ("not-ready", {**READY, "NET-03": "fail"}),
    # a refresh per request: never a revoked token in use, and every parallel unit refreshes
    "broken-refresh-every-request.toml": ("not-ready", {**READY, "TOKEN-01": "fail", "TOKEN-05": "skip",
                                                        "TOKEN-06": "warn"}),
    "broken-stale-refresh-token.toml": ("not-ready", {**READY, "TOKEN-03": "fail"}),
    # a rejected promise nobody handles ends Node 20: on invalid_grant, on a refreshed ID token naming
    # another user and on a 403 (so the re-authorization after the withheld scope is never reached)
    "broken-unhandled-rejection.toml": ("not-ready", {**READY, "REL-01": "fail", "TOKEN-04": "fail",
                                                      "SCOPE-05": "skip"}),
    # proxy mode: requests to other hosts would have been seen, and none carried credentials
    "hardcoded-hosts.toml": ("ready", {**READY, "SEC-04": "pass"}),
    # hosts mode: the unchanged app reached the mock at the real host names; other hosts would have been seen
    "../express-openid-client-v5/rfcheck.toml": ("ready", {**READY, "SEC-04": "pass"}),
    # keeps the login's refresh token: its reuse revokes the family; the session lost during the token
    # endpoint's outage is TOKEN-03's doing, not a failure to back off (TOKEN-07)
    "../express-openid-client-v5/broken-keeps-first-refresh-token.toml": (
        "not-ready", {**READY, "SEC-04": "pass", "TOKEN-03": "fail"}),
}


def _judge(config: str, report_dir: Path) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={(APP / config).resolve()}",
         f"--rfcheck-report={report_dir}", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    report_file = report_dir / "rfcheck-report.json"
    assert report_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, json.loads(report_file.read_text())


@pytest.mark.parametrize("config", list(CASES))
def test_node_example_gets_exactly_its_expected_statuses(config: str, tmp_path: Path) -> None:
    verdict, expected = CASES[config]
    code, report = _judge(config, tmp_path)
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    differences = {i: (expected[i], statuses.get(i)) for i in expected if statuses.get(i) != expected[i]}
    assert not differences, "expected vs seen: " + json.dumps(differences) + "\n" + json.dumps(
        [r for r in report["requirements"] if r["id"] in differences], indent=1)[:4000]
    assert report["verdict"] == verdict
    assert code == (0 if verdict == "ready" else 1)
    crashed = expected["REL-01"] == "fail"
    assert all(s["outcome"] in (("completed", "crashed") if crashed else ("completed",))
               for s in report["scenarios"]), report["scenarios"]
    if config.startswith("../express-openid-client-v5/"):
        for scenario in report["scenarios"]:
            assert any(note.startswith("instrumentation: node ") and "clock moved by libfaketime" in note
                       and "rfcheck's preload connects them" in note for note in scenario["notes"]), scenario["notes"]
    if CHECK_REPORT.exists():
        checked = subprocess.run([sys.executable, str(CHECK_REPORT), str(tmp_path / "rfcheck-report.json")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout
