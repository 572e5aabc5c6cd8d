"""The pytest plugin, tested through pytester: options, collection, fixtures, reports."""

from __future__ import annotations

import json
import signal
import subprocess
import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TARGET = """
from urllib.parse import urlencode

class Broken:
    def __init__(self, env): self.env = env
    def start_login(self):
        return self.env.issuer + "/authorize?" + urlencode({
            "response_type": "code", "client_id": self.env.client_id, "redirect_uri": self.env.redirect_uri,
            "audience": "accounts", "scope": "openid offline_access"})
    def finish_login(self, url): raise RuntimeError("never logs in")
    def exercise(self): raise RuntimeError("never called")

def make_target(env): return Broken(env)

def exploding_factory(env): raise ValueError("the factory cannot build the app")
"""


def _config(pytester: pytest.Pytester, body: str = "", factory: str = "target_app:make_target") -> None:
    pytester.makefile(".toml", rfcheck=f"""
[target]
name = "plugin-test"
kind = "python"
redirect_uri = "http://localhost:8000/callback"
{body}
[target.python]
factory = "{factory}"
""")
    pytester.makepyfile(target_app=TARGET)


def _report(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "reports" / "rfcheck-report.json").read_text())


def test_without_rfcheck_no_requirement_is_collected_and_no_server_starts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_own(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not [t for t in threading.enumerate() if t.name.startswith("rfcheck-")]
    assert not (pytester.path / "reports").exists()


def test_fixtures_serve_an_integrations_own_tests_without_rfcheck(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="""
        import httpx

        def test_discovery(rfcheck_provider, rfcheck_journal, rfcheck_clock):
            doc = httpx.get("https://auth.request.finance/.well-known/openid-configuration").json()
            assert doc["issuer"] == "https://auth.request.finance/"
            assert [e.path for e in rfcheck_journal] == ["/.well-known/openid-configuration"]
            before = rfcheck_clock.now()
            rfcheck_clock.travel(86_400)
            assert rfcheck_clock.now() - before >= 86_400
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_session_fixture_asked_for_without_rfcheck_says_what_it_needs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_own(rfcheck_judge): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the rfcheck_judge fixture belongs to a --rfcheck run*use rfcheck_provider or "
                                 "rfcheck_server*"])
    assert "plugin.py" not in result.stdout.str(), "no rfcheck source in the message"


def test_rfcheck_runs_the_catalogue_and_writes_all_three_reports(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={EXAMPLES / 'httpx_code'}", "-k", "NET")
    result.assert_outcomes(passed=3)
    # only NET was judged: the verdict says so instead of "ready"
    result.stdout.fnmatch_lines(["*rfcheck readiness*", "verdict: incomplete (acme-invoices-httpx*",
                                 "  not judged in this run (*): AUTH-01, *", "report: *rfcheck-report.json"])
    report = _report(pytester)
    assert [r["status"] for r in report["requirements"] if r["id"].startswith("NET")] == ["pass"] * 3
    assert all(r["status"] == "skip" for r in report["requirements"] if not r["id"].startswith("NET"))
    assert report["verdict"] == "incomplete" and "NET-01" not in report["not_judged"]
    for name in ("rfcheck-report.json", "rfcheck-report.md", "rfcheck-report.html"):
        assert (pytester.path / "reports" / name).stat().st_size > 0


def test_ini_options_enable_rfcheck_and_choose_the_report_folder(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"""
        [pytest]
        rfcheck = true
        rfcheck_target = {EXAMPLES / "httpx_code"}
        rfcheck_report = out
    """)
    pytester.runpytest("-k", "NET_01").assert_outcomes(passed=1)
    assert (pytester.path / "out" / "rfcheck-report.json").exists()


def test_network_override_is_judged_against(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={EXAMPLES / 'httpx_code'}",
                                "--rfcheck-network", "live", "-k", "NET_03")
    result.assert_outcomes(passed=1)  # the example reads its network from the environment
    assert _report(pytester)["target"]["network"] == "live"


def test_a_target_that_cannot_log_in_is_not_judged_and_fails_the_run(pytester: pytest.Pytester) -> None:
    # its login breaks before any ID token reached it: AUTH-04's remediation (verify RS256) would not fix it
    _config(pytester)
    result = pytester.runpytest("--rfcheck", "-k", "AUTH_04")
    result.assert_outcomes(skipped=1)
    assert result.ret == 1, "a target that was never driven fails the run"
    result.stdout.fnmatch_lines(["verdict: incomplete*", "*the target was not driven: *never logs in*"])
    report = _report(pytester)
    assert report["verdict"] == "incomplete" and "AUTH-04" in report["not_judged"]
    auth_04 = report["requirements"][3]
    assert auth_04["id"] == "AUTH-04" and auth_04["status"] == "skip"
    assert "before any ID token reached the app" in auth_04["reason"] and "never logs in" in auth_04["reason"]


def test_a_factory_that_raises_still_produces_a_report(pytester: pytest.Pytester) -> None:
    _config(pytester, factory="target_app:exploding_factory")
    result = pytester.runpytest("--rfcheck", "-k", "AUTH_04 or NET_01")
    # a target that cannot be built is an error, never a failed requirement (AUTH-04 would blame ID tokens)
    result.assert_outcomes(skipped=2)
    assert result.ret != 0
    report = _report(pytester)
    baseline = next(s for s in report["scenarios"] if s["name"] == "baseline")
    assert baseline["outcome"] == "error"
    assert "ValueError: the factory cannot build the app" in baseline["reason"]
    auth_04 = next(r for r in report["requirements"] if r["id"] == "AUTH-04")
    assert auth_04["status"] == "skip" and "could not be started or driven" in auth_04["reason"]
    assert {"AUTH-04", "NET-01"} <= set(report["not_judged"]) and report["verdict"] == "incomplete"


def test_a_start_failure_is_tried_once_not_in_every_scenario(pytester: pytest.Pytester) -> None:
    _config(pytester, factory="target_app:exploding_factory")
    pytester.runpytest("--rfcheck", "-k", "TOKEN")
    report = _report(pytester)
    errors = [s for s in report["scenarios"] if s["outcome"] == "error"]
    assert len(errors) > 3 and len({s["reason"] for s in errors}) == 1
    assert report["verdict"] == "incomplete"


def test_the_requirement_id_as_written_selects_it(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={EXAMPLES / 'httpx_code'}", "-k", "SEC-01")
    result.assert_outcomes(passed=1)
    assert [r["id"] for r in _report(pytester)["requirements"] if r["status"] == "pass"] == ["SEC-01"]


def test_no_requirement_selected_is_never_ready(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={EXAMPLES / 'httpx_code'}", "-k", "NO_SUCH")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["verdict: incomplete*"])
    assert _report(pytester)["verdict"] == "incomplete"


def test_a_should_warning_points_at_the_target_config_not_at_rfcheck(pytester: pytest.Pytester) -> None:
    config = EXAMPLES / "broken" / "no_pkce.toml"
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={config}", "-k", "FLOW-03")
    result.assert_outcomes(passed=1, warnings=1)
    target_line = config.read_text().splitlines().index("[target]") + 1
    # under the requirement's test ID: the config's [target] line, in the user's own words
    result.stdout.fnmatch_lines(["*warnings summary*", "scenarios/test_flow.py::test_FLOW_03",
                                 f"  {config}:{target_line}: RfcheckWarning: FLOW-03 (should) warn: *",
                                 "    fix: *", "    [[]target[]]"])
    assert "plugin.py" not in result.stdout.str() and "run.py" not in result.stdout.str()


def test_requirement_ids_carry_their_suite_file_and_last_failed_reruns_them(pytester: pytest.Pytester) -> None:
    # the suites live outside this rootdir (pytest alone would show "::test_FLOW_07")
    config = EXAMPLES / "broken" / "pkce_plain.toml"
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={config}", "-v", "-x", "-p", "cacheprovider",
                                "-k", "FLOW_01 or FLOW_07 or MAN_01")
    result.assert_outcomes(passed=1, failed=1)  # -x: MAN-01 comes after the failure
    result.stdout.fnmatch_lines(["rfcheck: scenario baseline completed in * s",
                                 "scenarios/test_flow.py::test_FLOW_01 PASSED*",
                                 "scenarios/test_flow.py::test_FLOW_07 FAILED*",
                                 "FAILED scenarios/test_flow.py::test_FLOW_07 - Failed: FLOW-07 (must) fail: *"])
    assert not [line for line in result.outlines if line.startswith(("::test_", "FAILED ::"))]
    assert "MAN-01" in _report(pytester)["not_judged"]
    again = pytester.runpytest("--rfcheck", f"--rfcheck-target={config}", "-p", "cacheprovider", "--lf")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*",
                                "FAILED scenarios/test_flow.py::test_FLOW_07 - *"])
    assert [s["name"] for s in _report(pytester)["scenarios"]] == ["baseline", "withheld_scope"], \
        "only what FLOW-07 reads ran"


def test_what_an_in_process_target_prints_is_judged_whether_pytest_captures_it_or_not(
        pytester: pytest.Pytester) -> None:
    # the target prints its token at every login; progress lines are written while the next scenario runs
    seen = []
    for capture in ("--capture=fd", "-s"):
        result = pytester.runpytest("--rfcheck", f"--rfcheck-target={EXAMPLES / 'broken' / 'logs_access_token.toml'}",
                                    "-k", "SEC_03 or OIDC", capture)  # OIDC's: scenarios that log in
        assert result.parseoutcomes()["failed"] == 1
        sec_03 = next(r for r in _report(pytester)["requirements"] if r["id"] == "SEC-03")
        seen.append(sorted(e["scenario"] for e in sec_03["evidence"]))  # a token per login: one per scenario
    assert seen[0] == seen[1] and len(seen[0]) > 3


def test_an_accepted_should_shortfall_is_reported_as_accepted(pytester: pytest.Pytester) -> None:
    config = (EXAMPLES / "broken" / "no_pkce.toml").read_text()
    pytester.syspathinsert(EXAMPLES / "broken")  # the variant's factory, from a config written elsewhere
    target = pytester.path / "accept.toml"
    target.write_text(config + '\n[target.accept]\nFLOW-03 = "a confidential client; decided on 2026-11-20"\n')
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={target}", "-k", "FLOW-03")
    result.assert_outcomes(passed=1)
    flow_03 = next(r for r in _report(pytester)["requirements"] if r["id"] == "FLOW-03")
    assert flow_03["status"] == "accepted"
    assert flow_03["reason"].startswith("accepted in [target.accept]: a confidential client")
    assert flow_03["evidence"]


def test_rfcheck_target_fixture_instead_of_a_factory(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", rfcheck="""
[target]
kind = "python"
redirect_uri = "http://localhost:8000/callback"
""")
    pytester.syspathinsert(EXAMPLES / "httpx_code")
    pytester.makeconftest("""
        import pytest, acme_invoices

        @pytest.fixture
        def rfcheck_target(rfcheck_env):
            return acme_invoices.make_target(rfcheck_env)
    """)
    pytester.runpytest("--rfcheck", "-k", "AUTH_04").assert_outcomes(passed=1)


@pytest.mark.parametrize(("toml", "message"), [
    ('[target]\nkind = "java"\n', "rfcheck.toml: *kind*java*"),
    ('[target]\nkind = "python"\nnetwrok = "test"\n', "rfcheck.toml: *netwrok*network*"),
])
def test_config_errors_are_usage_errors_naming_key_and_file(pytester: pytest.Pytester, toml: str,
                                                            message: str) -> None:
    pytester.makefile(".toml", rfcheck=toml)
    result = pytester.runpytest("--rfcheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
    assert "Traceback" not in result.stderr.str()


def test_missing_config_names_where_it_looked(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rfcheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*rfcheck.toml*pyproject.toml*"])


def test_junitxml_has_one_testcase_per_requirement(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={EXAMPLES / 'httpx_code'}", "-k", "NET",
                                "--junitxml", "junit.xml")
    result.assert_outcomes(passed=3)
    xml = (pytester.path / "junit.xml").read_text()
    assert xml.count("<testcase") == 3 and 'name="test_NET_01"' in xml


def test_rfcheck_runs_in_one_process_even_when_xdist_workers_are_asked_for(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={EXAMPLES / 'httpx_code'}", "-k", "NET",
                                "-n", "2")
    result.assert_outcomes(passed=3, warnings=1)
    assert [r["status"] for r in _report(pytester)["requirements"] if r["id"].startswith("NET")] == ["pass"] * 3
    result.stdout.fnmatch_lines(["*rfcheck: -n 2 is ignored under --rfcheck: the requirements share the scenarios*"])


@pytest.mark.parametrize(("run", "why"), [
    ("true", "its 3 steps succeeded without it: the target does not reach the mock"),
    ("sleep 5", "3 of its 3 steps failed (unit 1: the run did not finish within 0.3 s (step_timeout)"),
])
def test_a_target_that_never_reaches_request_finance_is_never_ready(pytester: pytest.Pytester, run: str,
                                                                     why: str) -> None:
    pytester.makefile(".toml", rfcheck=f"""
[target]
name = "talks-to-nobody"
kind = "command"
flow = "client_credentials"
[target.command]
run = "{run}"
step_timeout = 0.3
""")
    result = pytester.runpytest("--rfcheck")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["verdict: incomplete*"])
    report = _report(pytester)
    baseline = next(s for s in report["scenarios"] if s["name"] == "baseline")
    assert baseline["outcome"] == "error"
    assert baseline["reason"].startswith("in the baseline scenario the target sent no request to Request Finance; "
                                         + why), baseline["reason"]
    assert report["verdict"] == "incomplete" and report["summary"]["pass"] <= 2
    assert {"AUTH-01", "CC-01", "TOKEN-01", "NET-01"} <= set(report["not_judged"])
    assert [s["name"] for s in report["scenarios"] if s["outcome"] not in ("error", "not-run")] == []


def test_on_github_actions_the_summary_and_annotations_are_written(pytester: pytest.Pytester,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    config = EXAMPLES / "broken" / "hardcoded_test_network.toml"
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={config}", "-k", "NET or FLOW_03")
    written = summary.read_text()
    assert written.startswith("earlier step\n# Going Live readiness: "), "appended to what the job wrote"
    assert written.endswith((pytester.path / "reports" / "rfcheck-report.md").read_text() + "\n")
    errors = [line for line in result.outlines if line.startswith("::error ")]
    assert errors and all(line.startswith(f"::error file={config},title=NET-") for line in errors), result.outlines
    assert all("%0A" not in line.split("::", 2)[1] for line in errors)
    result.stdout.fnmatch_lines(["rfcheck: scenario baseline completed in * s"])


def test_off_github_actions_no_annotation_is_printed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = pytester.runpytest("--rfcheck", f"--rfcheck-target={EXAMPLES / 'broken' / 'hardcoded_test_network.toml'}",
                                "-k", "NET")
    assert not [line for line in result.outlines if line.startswith("::")]
    result.stdout.fnmatch_lines(["verdict: not-ready*"])


def test_sigterm_mid_run_stops_the_app_and_leaves_an_incomplete_report(tmp_path: Path) -> None:
    """What CI does to a cancelled job: no process, port or temporary folder of the run is left."""
    flask = EXAMPLES / "flask_app"
    private = tmp_path / "tmp"  # the run's own temporary folder: what is left there is the run's
    private.mkdir()
    run = subprocess.Popen([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={flask}",
                            f"--rfcheck-report={tmp_path}", "-p", "no:cacheprovider", "-q"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                           env={**os.environ, "TMPDIR": str(private)})
    assert run.stdout is not None
    app_pids: set[int] = set()
    seen = []
    for line in run.stdout:  # the first scenario done: the apps of the next ones follow at once
        seen.append(line)
        if line.startswith("rfcheck: scenario") or len(seen) > 200:
            break
    deadline = time.monotonic() + 60
    while not app_pids and time.monotonic() < deadline:  # the signal comes while an app of the run runs
        for stat in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if stat.read_bytes().split(b"\0")[1:2] == [b"app.py"] and \
                        Path(f"/proc/{stat.parent.name}/cwd").resolve() == flask:
                    app_pids.add(int(stat.parent.name))
            except OSError:
                continue
        time.sleep(0.05)
    began = time.monotonic()
    run.send_signal(signal.SIGTERM)
    rest, _ = run.communicate(timeout=30)
    assert app_pids, f"no app of the run was seen running: {run.poll()=} {''.join(seen)[-2000:]}"
    assert time.monotonic() - began < 30, rest[-2000:]  # stopped promptly, not after the scenarios (2 busy cores)
    report = json.loads((tmp_path / "rfcheck-report.json").read_text())
    assert report["verdict"] == "incomplete" and report["not_judged"], rest[-2000:]
    # the report says where the run was when it was stopped, not "deselected"
    assert report["notes"][0].startswith("the run was stopped by signal SIGTERM while scenario "), report["notes"]
    stopped = [s for s in report["scenarios"] if s["reason"].startswith("the run was stopped by signal SIGTERM "
                                                                         "while this scenario was at step ")]
    assert stopped and all(s["outcome"] == "error" for s in stopped), [s["reason"] for s in report["scenarios"]]
    never = [r for r in report["requirements"] if r["id"] in report["not_judged"]]
    assert all("deselected" not in r["reason"] for r in never), [r["reason"] for r in never]
    time.sleep(0.5)
    assert not [pid for pid in app_pids if Path(f"/proc/{pid}").exists()
                and b"app.py" in Path(f"/proc/{pid}/cmdline").read_bytes()], "the app outlived the run"
    left = sorted(p.name for p in private.iterdir())
    assert not left, f"temporary files left behind: {left}"


def test_what_a_target_prints_reaches_pytest_redacted(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck",
                           f"--rfcheck-target={EXAMPLES / 'broken' / 'logs_access_token.toml'}", "-k", "SEC_03", "-s",
                           "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "SEC-03 (must) fail" in done.stdout, "the printed token is still judged, from the whole output"
    assert "login ok; access token: eyJhbG…#" in done.stdout, "what the target printed is shown, redacted"
    assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}", done.stdout + done.stderr), "a whole token"
