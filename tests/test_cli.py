"""The `rfcheck` command itself, through its real entry points: `--version`, `--help`, no
subcommand, an unknown one, and `rfcheck check` running the readiness check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rfcheck

ROOT = Path(__file__).resolve().parents[1]


def rfcheck_command(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rfcheck", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_version_through_both_entry_points() -> None:
    assert rfcheck_command("--version").stdout.strip() == f"rfcheck {rfcheck.__version__}"
    script = shutil.which("rfcheck")
    if script is None:
        pytest.skip("the rfcheck console script is not installed (pip install -e .)")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, f"rfcheck {rfcheck.__version__}")


def test_help_lists_every_subcommand_and_the_exit_codes() -> None:
    done = rfcheck_command("--help")
    assert done.returncode == 0
    for command in ("serve", "init", "report", "check"):
        assert command in done.stdout
        sub = rfcheck_command(command, "--help")
        assert sub.returncode == 0 and sub.stdout.startswith(f"usage: rfcheck {command}"), sub.stderr
    assert "3 unusable input" in done.stdout.replace("\n", " ")


def test_no_subcommand_is_a_usage_error_with_the_help() -> None:
    done = rfcheck_command()
    assert done.returncode == 2 and "usage: rfcheck" in done.stdout


def test_an_unknown_subcommand_is_a_usage_error() -> None:
    done = rfcheck_command("judge")
    assert done.returncode == 2 and "invalid choice: 'judge'" in done.stderr


def test_check_runs_the_readiness_check(tmp_path: Path) -> None:
    done = rfcheck_command("check", str(ROOT / "examples" / "httpx_code"), "--report", str(tmp_path), "--", "-k",
                           "NET", timeout=300)
    report = json.loads((tmp_path / "rfcheck-report.json").read_text())
    assert done.returncode == 0, done.stdout[-2000:]
    assert {r["id"]: r["status"] for r in report["requirements"] if r["id"].startswith("NET")} == {
        "NET-01": "pass", "NET-02": "pass", "NET-03": "pass"}
    assert report["verdict"] == "incomplete", "only NET was selected"


def test_check_exits_as_its_help_says_for_a_target_that_is_not_there(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rfcheck", "check", str(tmp_path / "nonexistent")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr  # an input rfcheck cannot use, named
    assert "nonexistent" in done.stdout + done.stderr


def test_check_exits_3_for_a_typo_in_the_target_config_and_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "rfcheck.toml").write_text('[target]\nkind = "python"\nnetwrok = "test"\n')
    done = rfcheck_command("check", str(tmp_path), "--report", str(tmp_path / "reports"), cwd=tmp_path, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr  # pytest's usage error (4), in rfcheck's terms
    assert "rfcheck.toml" in done.stderr and "netwrok" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
