"""A selection runs only what it reads: ``-k`` runs the scenarios its requirements name (and the
baseline), a requirement that reads every scenario is judged on those and says so, and the verdict
stays incomplete for what was left out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, selection: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", "--rfcheck-target=examples/httpx_code",
                           f"--rfcheck-report={tmp_path}", "-q", "-p", "no:cacheprovider", "-k", selection],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]  # the selected requirements passed; the report says incomplete
    return json.loads((tmp_path / "rfcheck-report.json").read_text())


@pytest.mark.parametrize(("selection", "scenarios", "judged"), [
    ("TOKEN_03", ["baseline", "rotation"], "TOKEN-03"),
    ("NET_01", ["baseline"], "NET-01"),
])
def test_a_selection_runs_only_the_scenarios_its_requirements_name(tmp_path: Path, selection: str,
                                                                    scenarios: list[str], judged: str) -> None:
    report = _run(tmp_path, selection)
    assert [s["name"] for s in report["scenarios"]] == scenarios
    assert report["verdict"] == "incomplete"
    finding = next(r for r in report["requirements"] if r["id"] == judged)
    assert finding["status"] == "pass"
    assert f"(judged on the scenarios this selection ran: {', '.join(scenarios)}; a whole run reads all" \
        in finding["reason"]
    assert judged not in report["not_judged"] and len(report["not_judged"]) > 40
