"""The README's two opening commands are true: the main one runs and gets a real report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import venv_with_this_interpreters_packages

ROOT = Path(__file__).resolve().parents[1]
CHECK_REPORT = ROOT.parent / "shared" / "tools" / "check_report.py"


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return [block.strip() for block in blocks[:2]]


def test_the_readme_opens_with_the_two_commands() -> None:
    main, tests = _commands()
    assert "pytest --rfcheck" in main and "pip install" in main
    assert "python3 -m pytest" in tests and "pip install" in tests


def test_ci_runs_the_readme_test_command() -> None:
    assert _commands()[1] in (ROOT / ".ci" / "run").read_text()


def test_the_main_command_produces_a_ready_report(tmp_path: Path) -> None:
    """As written, in a fresh venv of its own (whose `python3` comes first on PATH): its `pip install -e .`
    then never reinstalls the rfcheck that the other tests of this run are importing."""
    main = _commands()[0]
    report_dir = ROOT / "reports"
    for old in report_dir.glob("rfcheck-report.*"):
        old.unlink()
    env_dir = tmp_path / "venv"
    venv_with_this_interpreters_packages(env_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env.update(PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(env_dir))
    done = subprocess.run(["bash", "-c", main], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((report_dir / "rfcheck-report.json").read_text())
    assert report["verdict"] == "ready"
    assert {"rfcheck-report.json", "rfcheck-report.md", "rfcheck-report.html"} <= {
        p.name for p in report_dir.iterdir()}
    if not CHECK_REPORT.exists():
        pytest.skip(f"{CHECK_REPORT} is not beside this checkout")
    checked = subprocess.run([sys.executable, str(CHECK_REPORT), str(report_dir / "rfcheck-report.json")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
