"""Broken and hostile targets, end to end: never ``ready`` without evidence, bounded memory and time,
nothing left running, no report lost. The targets are small stdlib apps in tests/apps/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import toml

ROOT = Path(__file__).resolve().parents[1]
APPS = Path(__file__).parent / "apps"
WEB_ENV = {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
           "RF_CLIENT_SECRET": "{client_secret}", "RF_REDIRECT_URI": "{redirect_uri}", "PORT": "{port}"}
CC_ENV = {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_AUDIENCE": "{audience}",
          "RF_CLIENT_ID": "{client_id}", "RF_CLIENT_SECRET": "{client_secret}"}


def web_config(folder: Path, mode: str, **web: Any) -> Path:
    config = folder / "rfcheck.toml"
    config.write_text(toml({
        "target": {"name": f"web-{mode}", "kind": "web", "redirect_uri": "http://127.0.0.1:{port}/callback"},
        "target.web": {"start": f'"{sys.executable}" "{APPS / "web_app.py"}"', "url": "http://127.0.0.1:{port}",
                       "actions": ["/invoices"], **web},
        "target.env": {**WEB_ENV, "APP_MODE": mode}}))
    return config


def run(config: Path, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", "--rfcheck-target", str(config),
                           "--rfcheck-report", str(config.parent / "reports"), "-p", "no:cacheprovider",
                           "-p", "no:hypothesispytest", "-q", *args],
                          cwd=config.parent, env=env, capture_output=True, text=True, timeout=timeout)
    report_file = config.parent / "reports" / "rfcheck-report.json"
    assert report_file.is_file(), f"no report (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done, json.loads(report_file.read_text(encoding="utf-8"))


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["status"] for r in report["requirements"]}


def reason(report: dict[str, Any], rid: str) -> str:
    return next(r["reason"] for r in report["requirements"] if r["id"] == rid)


# -- ready only on evidence ----------------------------------------------------------------------
def test_a_web_app_whose_pages_after_login_answer_500_is_never_ready(tmp_path: Path) -> None:
    done, report = run(web_config(tmp_path, "broken_after_login"))
    assert report["verdict"] == "incomplete", report["not_judged"]
    assert done.returncode == 1, done.stdout[-3000:]
    seen = statuses(report)
    # what the broken pages hide is not judged, with the reason; nothing is blamed on the ID token
    for rid in ("AUTH-01", "AUTH-04", "NET-01", "TOKEN-01", "TOKEN-02", "ORG-03", "SCOPE-03"):
        assert seen[rid] == "skip" and rid in report["not_judged"], (rid, reason(report, rid))
    assert "fail" not in seen.values(), {k: v for k, v in seen.items() if v == "fail"}
    assert "the callback led to GET /, which answered with 500" in reason(report, "ORG-03")
    assert "nothing the app answered or wrote points at the ID token" in reason(report, "AUTH-04")
    # what does not apply stays judged: the app does PKCE, so FLOW-07 is judged on what it sent
    assert seen["FLOW-03"] == "pass" and "FLOW-03" not in report["not_judged"]
    assert any("the target was not driven" in note for note in report["notes"])
    assert "the target was not driven" in done.stdout


def test_a_command_whose_every_run_fails_is_never_ready(tmp_path: Path) -> None:
    config = tmp_path / "rfcheck.toml"
    config.write_text(toml({
        "target": {"name": "failing-job", "kind": "command", "flow": "client_credentials"},
        "target.command": {"run": f'"{sys.executable}" "{APPS / "cc_worker.py"}" failing'},
        "target.env": CC_ENV}))
    done, report = run(config)
    # it earns its TOKEN-01 fail (a new process, so a new token, for every run); the rest is not ready either
    assert report["verdict"] == "not-ready" and done.returncode == 1, report["not_judged"]
    seen = statuses(report)
    assert seen["TOKEN-01"] == "fail" and seen["CC-03"] == "skip" and "CC-03" in report["not_judged"]
    for rid in ("ORG-01", "ORG-03", "MAN-04"):  # never seen doing it: says nothing of a job that never works
        assert seen[rid] == "skip" and rid in report["not_judged"], (rid, reason(report, rid))
    for rid in ("TOKEN-08", "REL-01", "SCOPE-02"):  # does not apply to a client credentials job run per unit
        assert seen[rid] == "skip" and rid not in report["not_judged"], (rid, reason(report, rid))
    # what its runs did send is still judged on what they sent
    assert seen["AUTH-01"] == "pass" and seen["NET-01"] == "pass" and seen["CC-01"] == "pass"
    assert "none of its 3 units of work succeeded" in " ".join(report["notes"]), report["notes"]
    assert "then the export failed" in " ".join(report["notes"])
