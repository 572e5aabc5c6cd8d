"""``rfcheck report``: rendering a saved JSON report again, and comparing two runs, through the real
entry point, on a real report of the httpx example."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("rfcheck-report.json", "rfcheck-report.md", "rfcheck-report.html")
ID = re.compile(r"\b[A-Z]+-\d\d\b")


def rfcheck(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rfcheck", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a real run's three reports (examples/httpx_code: verdict ready)."""
    folder = tmp_path_factory.mktemp("real-report")
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", "--rfcheck-target=examples/httpx_code",
                           f"--rfcheck-report={folder}", "-p", "no:cacheprovider", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert {p.name for p in folder.iterdir()} >= set(NAMES)
    return folder


@pytest.fixture
def report(real: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((real / NAMES[0]).read_text(encoding="utf-8"))
    assert data["verdict"] == "ready"
    return data


@pytest.fixture
def save(tmp_path: Path) -> Callable[[str, dict[str, Any]], Path]:
    def write(name: str, data: dict[str, Any]) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path
    return write


def changed(data: dict[str, Any], **statuses: str) -> dict[str, Any]:
    """A copy of ``data`` with requirements set to new statuses (``NET_01="fail"``)."""
    result = copy.deepcopy(data)
    for entry in result["requirements"]:
        status = statuses.get(entry["id"].replace("-", "_"))
        if status is not None:
            entry["status"], entry["reason"] = status, f"now {status} (edited for the test)"
    return result


def ids(text: str) -> list[str]:
    return ID.findall(text)


# -- help ---------------------------------------------------------------------------------------------------
def test_help_describes_rendering_and_compare() -> None:
    done = rfcheck("report", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: rfcheck report [-h] [--out DIR | --compare OLD.json] REPORT.json" in done.stdout
    text = " ".join(done.stdout.split())
    assert "rfcheck-report.md" in text and "exit 1 on a regression" in text


def test_out_and_compare_together_are_bad_usage(real: Path) -> None:
    done = rfcheck("report", real / NAMES[0], "--out", "x", "--compare", real / NAMES[0])
    assert done.returncode == 2
    assert "not allowed with argument" in done.stderr


# -- rendering again -----------------------------------------------------------------------------------------
def test_rendering_again_gives_the_same_markdown_and_html(real: Path, tmp_path: Path) -> None:
    copied = tmp_path / "saved"
    copied.mkdir()
    shutil.copy(real / NAMES[0], copied / NAMES[0])
    done = rfcheck("report", copied / NAMES[0])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"wrote {copied / NAMES[1]}", f"wrote {copied / NAMES[2]}"]
    for name in NAMES[1:]:
        assert (copied / name).read_bytes() == (real / name).read_bytes(), name
    assert (copied / NAMES[0]).read_bytes() == (real / NAMES[0]).read_bytes()  # the input is left as it was


def test_rendering_reflects_the_json_it_reads(report: dict[str, Any], tmp_path: Path,
                                              save: Callable[[str, dict[str, Any]], Path]) -> None:
    edited = changed(report, NET_01="fail")
    edited["verdict"] = "not-ready"
    done = rfcheck("report", save("edited.json", edited))
    assert done.returncode == 0, done.stderr
    markdown = (tmp_path / NAMES[1]).read_text(encoding="utf-8")
    assert markdown.startswith("# Going Live readiness: ❌ NOT READY")
    assert "| ❌ fail | NET-01 | must |" in markdown
    assert "NET-01" in (tmp_path / NAMES[2]).read_text(encoding="utf-8")


def test_out_writes_into_a_new_folder_and_nothing_beside_the_json(real: Path, tmp_path: Path) -> None:
    copied = tmp_path / NAMES[0]
    shutil.copy(real / NAMES[0], copied)
    out = tmp_path / "site" / "reports"
    done = rfcheck("report", copied, "--out", out)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES[1:])
    assert (out / NAMES[1]).read_bytes() == (real / NAMES[1]).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAMES[0], "site"]


def test_out_that_is_a_file_is_an_input_error(real: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    done = rfcheck("report", real / NAMES[0], "--out", blocker)
    assert done.returncode == 3
    assert f"{blocker}: not a folder" in done.stderr


def test_the_console_script_renders_too(real: Path, tmp_path: Path) -> None:
    script = shutil.which("rfcheck")
    if script is None:
        pytest.skip("the rfcheck console script is not installed (python3 -m pip install -e .)")
    done = subprocess.run([script, "report", str(real / NAMES[0]), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / NAMES[1]).read_bytes() == (real / NAMES[1]).read_bytes()


# -- comparing -----------------------------------------------------------------------------------------------
def test_a_must_requirement_newly_failing_is_a_regression_named_first(
        report: dict[str, Any], save: Callable[[str, dict[str, Any]], Path]) -> None:
    old = changed(report, AUTH_01="fail", FLOW_03="warn")  # AUTH-01 gets fixed; FLOW-03 (should) too
    old["verdict"] = "not-ready"
    new = changed(report, NET_01="fail", SCOPE_02="skip")  # SCOPE-02 (should): another change
    done = rfcheck("report", save("new.json", new), "--compare", save("old.json", old))
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert ids(out)[0] == "NET-01"
    assert ids(out) == ["NET-01", "AUTH-01", "FLOW-03", "SCOPE-02", "NET-01"]
    sections = [line.split(" (")[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert sections[1:4] == ["Newly failing", "Fixed", "Other status changes"]
    assert "  NET-01 (must): pass -> fail: now fail (edited for the test)" in out.splitlines()
    assert "  AUTH-01 (must): fail -> pass" in out.splitlines()
    assert "Verdict: not-ready -> ready (better)" in out
    assert out.rstrip().endswith("Regression: NET-01 (must) newly fails.")


def test_a_worse_verdict_is_a_regression(report: dict[str, Any], save: Callable[[str, dict[str, Any]], Path]) -> None:
    new = changed(report, ORG_01="skip")
    new["not_judged"], new["verdict"] = ["ORG-01"], "incomplete"
    done = rfcheck("report", save("new.json", new), "--compare", save("old.json", report))
    assert done.returncode == 1, done.stdout
    assert "Verdict: ready -> incomplete (worse)" in done.stdout
    assert "Newly not judged (1): ORG-01 (must)" in done.stdout
    assert "Regression: the verdict got worse (ready -> incomplete)." in done.stdout


def test_incomplete_to_not_ready_is_worse_too(report: dict[str, Any],
                                              save: Callable[[str, dict[str, Any]], Path]) -> None:
    old = changed(report, ORG_01="skip")
    old["not_judged"], old["verdict"] = ["ORG-01"], "incomplete"
    new = copy.deepcopy(old)
    new["verdict"] = "not-ready"  # no requirement changed: only the verdict says so
    done = rfcheck("report", save("new.json", new), "--compare", save("old.json", old))
    assert done.returncode == 1
    assert "No requirement changed status." in done.stdout and "(worse)" in done.stdout


def test_a_should_requirement_newly_warning_is_listed_but_no_regression(
        report: dict[str, Any], save: Callable[[str, dict[str, Any]], Path]) -> None:
    new = changed(report, OIDC_03="warn")
    done = rfcheck("report", save("new.json", new), "--compare", save("old.json", report))
    assert done.returncode == 0, done.stdout
    assert "Newly short of a should (1):\n  OIDC-03 (should): pass -> warn" in done.stdout
    assert "Newly failing (must)" not in done.stdout
    assert "Verdict: ready (unchanged)" in done.stdout
    assert done.stdout.rstrip().endswith("No regression.")


def test_a_fix_is_no_regression(report: dict[str, Any], save: Callable[[str, dict[str, Any]], Path]) -> None:
    old = changed(report, NET_01="fail")
    old["verdict"] = "not-ready"
    done = rfcheck("report", save("new.json", report), "--compare", save("old.json", old))
    assert done.returncode == 0, done.stdout
    assert "Fixed (1):\n  NET-01 (must): fail -> pass" in done.stdout
    assert "Newly failing" not in done.stdout and "No regression." in done.stdout


def test_a_target_no_longer_driven_ranks_below_not_ready(report: dict[str, Any],
                                                          save: Callable[[str, dict[str, Any]], Path]) -> None:
    old = changed(report, NET_01="fail")
    old["verdict"] = "not-ready"
    new = changed(report, AUTH_01="skip")
    new["verdict"], new["not_judged"] = "incomplete", ["AUTH-01"]
    new["notes"] = ["the target was not driven: in the baseline scenario its login failed (login 1: ...)"]
    done = rfcheck("report", save("new.json", new), "--compare", save("old.json", old))
    assert done.returncode == 1, done.stdout
    assert "Verdict: not-ready -> incomplete, not driven (worse)" in done.stdout
    assert "Regression: the verdict got worse (not-ready -> incomplete, not driven)." in done.stdout


def test_the_same_run_twice_has_no_changes(real: Path) -> None:
    done = rfcheck("report", real / NAMES[0], "--compare", real / NAMES[0])
    assert done.returncode == 0, done.stderr
    assert ids(done.stdout) == []
    assert "No requirement changed status." in done.stdout and "Verdict: ready (unchanged)" in done.stdout


# -- inputs rfcheck cannot use -------------------------------------------------------------------------------
@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("{ not json", "invalid JSON"),
    ("[1, 2]", "not an rfcheck-report/1 report: the JSON is a list, not an object"),
    ('{"verdict": "ready"}', 'not an rfcheck-report/1 report: it has no "schema"'),
    ('{"schema": "rfcheck-report/2"}', "not an rfcheck-report/1 report: its schema is 'rfcheck-report/2'"),
    ('{"schema": "rfcheck-report/1"}', "not a valid rfcheck-report/1 report: 'rfcheck' is missing"),
])
@pytest.mark.parametrize("role", ["report", "compared"])
def test_a_bad_input_is_named(real: Path, tmp_path: Path, content: str | None, message: str, role: str) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content, encoding="utf-8")
    args = ["report", bad] if role == "report" else ["report", real / NAMES[0], "--compare", bad]
    done = rfcheck(*args)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.startswith(f"rfcheck report: {bad}: {message}"), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / NAMES[1]).exists() and done.stdout == ""


def test_a_report_with_an_unknown_status_is_named(report: dict[str, Any],
                                                  save: Callable[[str, dict[str, Any]], Path]) -> None:
    path = save("odd.json", changed(report, NET_01="broken"))
    done = rfcheck("report", path)
    assert done.returncode == 3
    assert f"{path}: not a valid rfcheck-report/1 report: requirements[" in done.stderr
    assert "(NET-01) has status 'broken'" in done.stderr
