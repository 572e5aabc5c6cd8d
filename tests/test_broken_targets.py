"""Broken and hostile targets, end to end: never ``ready`` without evidence, bounded memory and time,
nothing left running, no report lost. The targets are small stdlib apps in tests/apps/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rfcheck.harness import Harness
from rfcheck.targets import web as web_module
from tests.helpers import gone, toml

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


# -- bounded memory and time, nothing left running --------------------------------------------------
@pytest.fixture
def hostile(toml_harness: Callable[..., Harness]) -> Callable[..., Harness]:
    """``hostile(mode, actions=[...], **web)``: a started harness for tests/apps/web_app.py in ``mode``."""
    def make(mode: str, env: dict[str, str] | None = None, **web: Any) -> Harness:
        settings = {"start": f'"{sys.executable}" "{APPS / "web_app.py"}"', "url": "http://127.0.0.1:{port}",
                    "actions": ["/invoices"], "ready_timeout": 10, "step_timeout": 5, **web}
        return toml_harness({
            "target": {"name": f"web-{mode}", "kind": "web", "redirect_uri": "http://127.0.0.1:{port}/callback"},
            "target.web": settings, "target.env": {**WEB_ENV, "APP_MODE": mode, **(env or {})}})
    return make


def test_a_trickling_page_ends_its_step_at_the_step_timeout(hostile: Callable[..., Harness]) -> None:
    harness = hostile("", actions=["/trickle"], step_timeout=1.5)
    began = time.monotonic()
    result = harness.scenario("baseline")
    units = result.events_of("unit")
    assert units and not units[0].ok, result.events
    assert units[0].detail.startswith("GET /trickle: no whole answer within 1.5 s (step_timeout) (after ")
    assert time.monotonic() - began < 60, "each of its units ended at its deadline, not when the page did"


def test_an_endless_page_is_read_up_to_the_limit_and_cut_at_the_deadline(hostile: Callable[..., Harness]) -> None:
    result = hostile("", actions=["/endless"], step_timeout=2).scenario("baseline")
    unit = result.events_of("unit")[0]
    assert not unit.ok and "no whole answer within 2 s" in unit.detail, unit.detail
    page = next(e for e in result.exchanges if e.path == "/endless")
    assert len(page.response_text) <= web_module.MAX_PAGE


def test_an_endless_ready_url_does_not_hold_up_the_start(hostile: Callable[..., Harness]) -> None:
    # the ready probe takes any answer and never reads its body
    result = hostile("", ready="/endless").scenario("baseline")
    assert result.completed and result.events_of("login")[0].ok, result.reason


def test_a_huge_page_is_read_to_its_limit_and_a_token_at_its_end_is_still_found(
        hostile: Callable[..., Harness]) -> None:
    harness = hostile("", actions=["/huge"], env={"APP_PAGE_MB": "40"}, step_timeout=30)
    result = harness.scenario("baseline")
    assert result.events_of("unit")[0].ok, result.events
    page = next(e for e in result.exchanges if e.path == "/huge")
    assert len(page.response_text) < web_module.MAX_PAGE + 10_000
    assert any("the rest counted (sha256" in note for note in page.notes), page.notes
    tokens = [t for t in harness.secrets.values if t.startswith("eyJ") and t in page.response_text]
    assert tokens, "the access token at the end of a 40 MB page is excerpted for SEC-05"


def test_a_flood_of_output_is_kept_bounded_and_a_token_in_it_is_found(hostile: Callable[..., Harness]) -> None:
    harness = hostile("flood", env={"APP_FLOOD_MB": "20"}, step_timeout=30)
    result = harness.scenario("baseline")
    assert result.completed and result.events_of("unit")[0].ok, result.events
    assert len(result.output) < 1_000_000, "3 units of 20 MB each, kept as a head and a tail"
    tokens = [t for t in harness.secrets.values if t in result.output and t.startswith("eyJ")]
    assert tokens, "the access token in the middle of a 20 MB line is kept for SEC-03"


def test_a_setsid_daemon_is_stopped_with_its_app_and_named(hostile: Callable[..., Harness]) -> None:
    harness = hostile("daemon")
    result = harness.scenario("baseline")
    daemons = [int(line.split()[0][4:]) for line in result.output.splitlines() if line.endswith("daemon detached")]
    assert len(daemons) == 1, result.output[-2000:]
    assert gone(daemons[0]), "the daemon outside the app's process group was stopped"
    assert any(f"pid {daemons[0]}" in note and "outside its process group" in note for note in result.notes), \
        result.notes


# -- reports never lost ------------------------------------------------------------------------------
def rfcheck_run(report_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", "--rfcheck-target",
                           str(ROOT / "examples" / "httpx_code"), "--rfcheck-report", str(report_dir),
                           "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_report_that_cannot_be_written_fails_the_run_and_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the report folder should be")
    done = rfcheck_run(blocker / "reports", "-k", "NET_01")
    assert done.returncode == 1, done.stdout[-2000:]
    assert "verdict: incomplete" in done.stdout, "the verdict is still shown"
    assert f"rfcheck could not write the report into {blocker / 'reports'}: " in done.stdout


def test_a_report_is_replaced_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rfcheck.report import files

    report = tmp_path / "rfcheck-report.json"
    report.write_text("the last good report")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        files.write_atomically(report, "x" * 100_000)
    assert report.read_text() == "the last good report"
    assert [p.name for p in tmp_path.iterdir()] == ["rfcheck-report.json"], "no cut-off file is left"


def test_a_run_says_when_another_wrote_into_its_report_folder(tmp_path: Path) -> None:
    from rfcheck.run import _written_since

    (tmp_path / "rfcheck-report.json").write_text("{}")
    written = (tmp_path / "rfcheck-report.json").stat().st_mtime
    assert _written_since(tmp_path, written + 1) == "", "an older report is this folder's last run, replaced"
    said = _written_since(tmp_path, written - 1)
    assert said.startswith(f"another rfcheck run wrote its reports into {tmp_path} at ") and "replace" in said
    assert _written_since(tmp_path / "missing", 0) == ""


def test_a_run_sweeps_what_a_killed_run_left_in_the_temporary_folder(tmp_path: Path) -> None:
    from rfcheck import leftovers

    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp_path / f"rfcheck-state-{dead.pid}-abc123"
    (left / "cache").mkdir(parents=True)
    (left / "cache" / "token.json").write_text('{"refresh_token": "rt"}')
    (tmp_path / f"rfcheck-faketime-{dead.pid}-x").write_text("+0")
    mine = tmp_path / f"rfcheck-ca-{os.getpid()}-live"  # this run's own, in use
    mine.mkdir()
    other = tmp_path / "rfcheck-notes"  # not a name rfcheck gives
    other.mkdir()
    removed = leftovers.sweep((str(tmp_path),))
    assert sorted(removed) == sorted([left.name, f"rfcheck-faketime-{dead.pid}-x"])
    assert not left.exists() and mine.exists() and other.exists()


def test_the_browser_goes_to_no_host_but_the_app_and_the_mock(hostile: Callable[..., Harness]) -> None:
    result = hostile("", actions=["/elsewhere"]).scenario("baseline")
    unit = result.events_of("unit")[0]
    assert not unit.ok and unit.failure == "foreign_redirect", unit
    assert "sent its user to http://rfcheck-elsewhere.invalid:9/collect, which is neither the app" in unit.detail
    redirect = next(e for e in result.exchanges if e.path == "/elsewhere")
    assert redirect.origin == "browser" and redirect.status == 302 and "rfcheck-elsewhere" in " ".join(redirect.notes)
    assert not [e for e in result.exchanges if "rfcheck-elsewhere" in e.url], "no request went there"


def test_a_target_whose_login_answers_500_gets_one_clear_error(tmp_path: Path) -> None:
    done, report = run(web_config(tmp_path, "login_500"))
    assert done.returncode == 1 and report["verdict"] == "incomplete", done.stdout[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) < 40, done.stdout
    block = lines.index("rfcheck could not drive the target, so what it needs is not judged and the run fails:")
    assert "GET /login led to 500" in lines[block + 1]
    assert lines[block + 2].startswith('  the app\'s error: File "') and "in refuse_http" in lines[block + 2]
    assert lines[block + 3].strip() == ("InsecureTransportError: (insecure_transport) OAuth 2 MUST utilize https.")
    assert "its whole output: scenario baseline's \"output\" in " in lines[block + 4]
    assert "rfcheck/plugin.py" not in done.stdout and "def " not in done.stdout, "no rfcheck source"
    assert done.stdout.count("rfcheck could not drive the target") == 1


def test_a_partial_run_writes_beside_the_last_full_report(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    assert rfcheck_run(reports).returncode == 0
    full = (reports / "rfcheck-report.json").read_text()
    done = rfcheck_run(reports, "-k", "NET_01")
    assert done.returncode == 0, done.stdout[-2000:]
    assert (reports / "rfcheck-report.json").read_text() == full, "the full report is kept"
    partial = json.loads((reports / "rfcheck-report-partial.json").read_text())
    assert partial["verdict"] == "incomplete" and (reports / "rfcheck-report-partial.html").is_file()
    assert "a partial run: its reports are beside the full report of " in done.stdout
    assert f"report: {reports / 'rfcheck-report-partial.json'}" in done.stdout


def test_a_requirement_block_in_the_terminal_is_capped_and_names_no_missing_exchange() -> None:
    from rfcheck.run import MAX_SHOWN, requirement_message as _message
    from rfcheck.report.model import Evidence, Finding

    evidence = [Evidence("forged_callback", None, "", "the app had exited " + "x" * 2000)]
    evidence += [Evidence("expiry", n, "GET /invoices", "401 again") for n in range(1, 10)]
    message = _message(Finding("REL-01", "fail", "the process died", tuple(evidence)))
    lines = message.splitlines()
    assert lines[1].startswith("  [forged_callback] the app had exited xxx") and "#None" not in message
    assert len(lines[1]) < 400 and lines[2] == "  [expiry #1] GET /invoices: 401 again"
    assert f"  … {len(evidence) - MAX_SHOWN} more in the report" in lines
    assert len(lines) == 1 + MAX_SHOWN + 1 + 1  # the reason, the evidence shown, the count, the fix
