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
APP_EOC = ROOT / "examples" / "node" / "express-openid-connect"
APP_PP = ROOT / "examples" / "node" / "express-passport"
CHECK_REPORT = ROOT.parent / "shared" / "tools" / "check_report.py"

INSTALLED = all((app / "node_modules").is_dir() for app in (APP, APP_V5, APP_EOC, APP_PP)) and shutil.which("node") is not None


@pytest.fixture(autouse=True)
def _node_installed() -> None:
    if not INSTALLED:
        message = ("run `npm ci` in examples/node/express-app, express-openid-client-v5 and express-openid-connect "
                   "(.ci/run does)")
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
    # Auth0's own SDK with its default rolling 24 h session and its documented isExpired()/refresh(): the
    # user stays active across the expiry, so the session lives on and the refresh is seen (TOKEN-02)
    "../express-openid-connect/rfcheck.toml": ("ready", READY),
    # Passport's OpenID Connect strategy as its tutorial writes it: state, but no PKCE (a should)
    "../express-passport/rfcheck.toml": ("ready", {**READY, "FLOW-03": "warn", "FLOW-07": "skip"}),
}


def _judge(config: str, report_dir: Path, **env: str) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={(APP / config).resolve()}",
         f"--rfcheck-report={report_dir}", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
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
    if config.startswith("../express-openid-connect/"):
        token_02 = next(r for r in report["requirements"] if r["id"] == "TOKEN-02")
        assert "with the user active every 4 h" in token_02["reason"], token_02
        for scenario in report["scenarios"]:  # the clock mover came with pip install, and the process said so
            assert any(note.startswith("instrumentation: node ") and "clock moved by libfaketime from the "
                       "libfaketime " in note and "wheel (PyPI), confirmed by the process" in note
                       for note in scenario["notes"]), scenario["notes"]
    if config.startswith("../express-openid-client-v5/"):
        for scenario in report["scenarios"]:
            assert any(note.startswith("instrumentation: node ") and "clock moved by libfaketime" in note
                       and "rfcheck's preload connects them" in note for note in scenario["notes"]), scenario["notes"]
    if CHECK_REPORT.exists():
        checked = subprocess.run([sys.executable, str(CHECK_REPORT), str(tmp_path / "rfcheck-report.json")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout


def test_a_node_app_whose_clock_cannot_move_is_never_failed_for_it(tmp_path: Path) -> None:
    # no clock mover at all: the SDK's session cookie dates (written on the app's clock, which stood still)
    # are read on that clock, the refresh after the 401 is seen, and only OIDC-09 is left unjudged
    code, report = _judge("../express-openid-connect/rfcheck.toml", tmp_path, RFCHECK_FAKETIME_LIB=str(tmp_path / "none.so"))
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert not [i for i, status in statuses.items() if status in ("fail", "warn")], statuses
    assert (report["verdict"], report["not_judged"], code) == ("incomplete", ["OIDC-09"], 0)
    reasons = {r["id"]: r["reason"] for r in report["requirements"]}
    assert "the target's clock could not be moved (node (node): clock NOT moved: no libfaketime" in reasons["OIDC-09"]
    assert "reactively, after a 401" in reasons["TOKEN-02"]
    for scenario in report["scenarios"]:
        assert not any("clock moved" in note for note in scenario["notes"]), scenario["notes"]
