"""End to end: the Go web example (examples/go_web), a program whose clock rfcheck cannot move.

Go reads its clock through the vDSO, out of libfaketime's reach: rfcheck must say so in the
notes, never claim the clock moved, and never fail the app for what only a moving clock would
show. The app on golang.org/x/oauth2 and github.com/coreos/go-oidc (Debian's packages, built
offline by build.sh), reaching the mock through HTTPS_PROXY, refreshes once after a 401 as well as
by its own clock: ``ready``, TOKEN-02 judged on the reactive path. With renewal left to x/oauth2's
own clock (RF_REFRESH_ON_401=off: a 401 sends the user to log in again), what needed the app to
see the time pass is not judged: ``incomplete``, never a false ``fail``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_node_examples import CHECK_REPORT, READY

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "go_web"
BINARY = APP / "bin" / "go-web"
NOT_MOVED = "clock NOT moved: a Go program reads its clock through the vDSO, which libfaketime cannot reach"
NEEDS_THE_CLOCK = ["TOKEN-02", "TOKEN-03", "TOKEN-04", "TOKEN-06", "TOKEN-07", "OIDC-10"]

CASES = {
    # proxy mode: requests to other hosts would have been seen, and none carried credentials
    "rfcheck.toml": ("ready", {**READY, "SEC-04": "pass"}, []),
    "proactive-only.toml": ("incomplete", {**READY, "SEC-04": "pass", **dict.fromkeys(NEEDS_THE_CLOCK, "skip")},
                            NEEDS_THE_CLOCK),
}


@pytest.fixture(autouse=True)
def _built() -> None:
    if not BINARY.exists():
        message = "build the Go example first: sh examples/go_web/build.sh (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must judge the Go example: {message}")
        pytest.skip(message)


@pytest.mark.parametrize("config", list(CASES))
def test_go_example_gets_exactly_its_expected_statuses(config: str, tmp_path: Path) -> None:
    verdict, expected, not_judged = CASES[config]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={APP / config}",
         f"--rfcheck-report={tmp_path}", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "rfcheck-report.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    differences = {i: (expected[i], statuses.get(i)) for i in expected if statuses.get(i) != expected[i]}
    assert not differences, json.dumps(differences) + "\n" + done.stdout[-3000:]
    assert (report["verdict"], report["not_judged"]) == (verdict, not_judged)
    assert done.returncode == (1 if verdict == "not-ready" else 0), "not judged is a skip, never a failed test"
    assert f"go-web (go-web): {NOT_MOVED}" in " ".join(report["notes"]), report["notes"]
    for scenario in report["scenarios"]:
        assert scenario["outcome"] == "completed", scenario
        assert not any("clock moved" in note for note in scenario["notes"]), scenario["notes"]
        assert not any("refused the TLS certificate" in note for note in report["notes"]), (
            "a dial Go gave up is not a refused certificate")
    reasons = {r["id"]: r["reason"] for r in report["requirements"]}
    for requirement_id in not_judged:  # the reason is next to the requirement, not only in the notes
        assert "the target's clock could not be moved" in reasons[requirement_id] and NOT_MOVED in reasons[
            requirement_id], reasons[requirement_id]
        assert f"{requirement_id} " in done.stdout and "could not be moved" in done.stdout
    if config == "rfcheck.toml":
        assert "reactively, after a 401" in reasons["TOKEN-02"] and "judged on the reactive path" in reasons["TOKEN-02"]
    if CHECK_REPORT.exists():
        checked = subprocess.run([sys.executable, str(CHECK_REPORT), str(tmp_path / "rfcheck-report.json")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout
