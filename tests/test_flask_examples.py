"""End to end: the Flask + Authlib example (examples/flask_app), judged as a real web process.

The correct app keeps its tokens server-side, refreshes under a lock, checks state and PKCE and
answers every Request Finance error with a handled page: it must be ``ready`` with no warning,
its clock moved with rfcheck's, so that its proactive refresh (Authlib's, by the clock) is seen.
Each broken variant must differ from it in exactly the statuses its defect explains: a crash on
an error answer (REL-01), a 500 on a 503 and a logout on a 429 (REL-02, TOKEN-07), tokens in a
page or in Flask's readable cookie session (SEC-05), no state and no PKCE (FLOW-02), the bearer
header in an error log (SEC-03).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rfcheck.catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "flask_app"
CHECK_REPORT = ROOT.parent / "shared" / "tools" / "check_report.py"
INSTALLED = all(importlib.util.find_spec(name) for name in ("flask", "authlib", "requests"))


@pytest.fixture(autouse=True)
def _flask_installed() -> None:
    if not INSTALLED:
        message = "install the dev extras (pip install -e '.[dev]'): the Flask example needs flask and authlib"
        if os.environ.get("CI"):
            pytest.fail(f"CI must judge the Flask example: {message}")
        pytest.skip(message)


READY = {req.id: "pass" for req in CATALOGUE}
READY.update({
    "FLOW-06": "skip",  # implicit/hybrid only
    "CC-01": "skip", "CC-02": "skip", "CC-03": "skip", "MAN-03": "skip",  # client credentials only
    "SEC-02": "manual",  # no client IDs in the config
    "SEC-04": "skip",  # reached through the loopback URLs: requests to other hosts are not intercepted
    "MAN-01": "manual", "MAN-02": "manual", "MAN-05": "manual", "MAN-06": "manual",
    "MAN-04": "skip",  # never creates invoices
})

CASES = {
    "rfcheck.toml": ("ready", READY),
    # it dies on invalid_grant, on the changed identity of a refreshed ID token and on a 403; so the
    # re-authorization after the withheld scope is never reached
    "broken_crash_on_error.toml": ("not-ready", {**READY, "REL-01": "fail", "TOKEN-04": "fail",
                                                 "SCOPE-05": "skip"}),
    "broken_error_500_on_503.toml": ("ready", {**READY, "REL-02": "warn", "TOKEN-07": "warn"}),
    "broken_tokens_in_page.toml": ("not-ready", {**READY, "SEC-05": "fail"}),
    "broken_tokens_in_cookie_session.toml": ("not-ready", {**READY, "SEC-05": "fail"}),
    # no PKCE and no nonce either: FLOW-07 and OIDC-07 have nothing to judge
    "broken_no_state.toml": ("not-ready", {**READY, "FLOW-02": "fail", "FLOW-03": "warn", "FLOW-07": "skip",
                                           "OIDC-07": "skip"}),
    "broken_logs_bearer_on_error.toml": ("not-ready", {**READY, "SEC-03": "fail"}),
    # Flask + requests-oauthlib, ID tokens verified by PyJWT's PyJWKClient with its defaults: its JWKS
    # cache and its cool-down run on time.monotonic, which travels with rfcheck's clock (OIDC-09)
    "../flask_pyjwt/rfcheck.toml": ("ready", READY),
    # requests-oauthlib's token_updater stores nothing: the rotated refresh token is presented again (TOKEN-03),
    # an extra refresh each time (TOKEN-01); the two refreshes of the parallel units did no harm of their own
    "../flask_pyjwt/broken_token_updater_noop.toml": ("not-ready", {**READY, "TOKEN-01": "fail", "TOKEN-03": "fail",
                                                                    "TOKEN-06": "warn"}),
    # no refresh lock: the storm after expiry revokes the family and logs the users out (TOKEN-06 at must)
    "../flask_pyjwt/broken_no_refresh_lock.toml": ("not-ready", {**READY, "TOKEN-06": "fail"}),
    # Flask + requests-oauthlib as its documentation writes it (OAuth2Session, token_updater)
    "../flask_requests_oauthlib/rfcheck.toml": ("ready", READY),
}


def judge(config: Path, report_dir: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={config}", f"--rfcheck-report={report_dir}",
         "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    report_file = report_dir / "rfcheck-report.json"
    assert report_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(report_file.read_text())


def assert_statuses(report: dict, expected: dict[str, str]) -> None:
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    differences = {i: (expected[i], statuses.get(i)) for i in expected if statuses.get(i) != expected[i]}
    assert not differences, "expected vs seen: " + json.dumps(differences) + "\n" + json.dumps(
        [r for r in report["requirements"] if r["id"] in differences], indent=1)[:4000]


def assert_contract(report_file: Path) -> None:
    if CHECK_REPORT.exists():
        checked = subprocess.run([sys.executable, str(CHECK_REPORT), str(report_file)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("config", list(CASES))
def test_flask_example_gets_exactly_its_expected_statuses(config: str, tmp_path: Path) -> None:
    verdict, expected = CASES[config]
    done, report = judge(APP / config, tmp_path)
    assert_statuses(report, expected)
    assert (report["verdict"], report["not_judged"]) == (verdict, [])
    assert done.returncode == (0 if verdict == "ready" else 1), done.stdout[-3000:]
    crashed = {s["name"] for s in report["scenarios"] if s["outcome"] == "crashed"}
    assert bool(crashed) == (expected["REL-01"] == "fail"), report["scenarios"]
    assert all(s["outcome"] in ("completed", "crashed") for s in report["scenarios"])
    assert_contract(tmp_path / "rfcheck-report.json")
    token_06 = next(r for r in report["requirements"] if r["id"] == "TOKEN-06")
    assert token_06["level"] == ("must" if token_06["status"] == "fail" else "should"), token_06
    if config in ("rfcheck.toml", "../flask_pyjwt/rfcheck.toml"):
        assert "RfcheckWarning" not in done.stdout, "the correct app is ready with no warning"
        # its clock followed rfcheck's (rfcheck's sitecustomize): Authlib refreshed by the clock, before any 401
        token_02 = next(r for r in report["requirements"] if r["id"] == "TOKEN-02")
        assert "proactively, before any 401" in token_02["reason"], token_02
        assert report["notes"] == []
        for scenario in report["scenarios"]:
            (note,) = scenario["notes"]
            assert note.startswith("instrumentation: python ") and note.endswith(
                "clock moved by time-machine, monotonic clocks with it (rfcheck's sitecustomize)"), note


def test_a_crash_names_the_answer_it_died_on_and_shows_the_app_s_error(tmp_path: Path) -> None:
    _, report = judge(APP / "broken_crash_on_error.toml", tmp_path)
    rel = next(r for r in report["requirements"] if r["id"] == "REL-01")
    assert rel["reason"].startswith("the process went down in 3 of ")
    revoked = next(e for e in rel["evidence"] if e["scenario"] == "revoked_refresh")
    assert (revoked["request"], revoked["detail"].splitlines()[0]) == (
        "POST /oauth/token", "the process exited with status 1, after POST /oauth/token answered 403: refresh "
        "token of a revoked family (revoked by the user) (step: unit 2)")
    assert "CRITICAL" in revoked["detail"], "the app's own error line is in the evidence"
    markdown = (tmp_path / "rfcheck-report.md").read_text()
    assert "the process exited with status 1, after POST /oauth/token answered 403" in markdown
