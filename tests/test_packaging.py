"""The built wheel: it carries the scenario files, the requirement suites and the runtime
instrumentation inside the ``rfcheck`` package (never a top-level ``scenarios`` package in
site-packages), and a wheel-installed rfcheck runs the catalogue on the bundled example."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import venv_with_this_interpreters_packages

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("rfcheck-*.whl")
    return path


def test_the_wheel_carries_scenarios_inside_the_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if n.split("/")[0] not in ("rfcheck",) and ".dist-info/" not in n] == []
    for scenario in (ROOT / "scenarios").iterdir():
        if scenario.suffix in (".toml", ".py"):
            assert f"rfcheck/_scenarios/{scenario.name}" in names, scenario.name
    for needed in ("rfcheck/runtime/python/sitecustomize.py", "rfcheck/runtime/node/preload.cjs",
                   "rfcheck/report/templates/report.html.j2", "rfcheck/py.typed"):
        assert needed in names, needed


def test_a_wheel_installed_rfcheck_runs_the_catalogue(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    python = venv_with_this_interpreters_packages(env_dir)
    pip = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, text=True)
    assert pip.returncode == 0, "pip comes from this interpreter's site-packages: " + pip.stderr
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples" / "httpx_code", work / "httpx_code")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    where = subprocess.run([str(python), "-c", "import rfcheck, rfcheck.steps as s; print(rfcheck.__file__); "
                            "print(s.builtin_folder())"], cwd=work, env=env, capture_output=True, text=True)
    module, folder = where.stdout.split()
    assert module.startswith(str(env_dir)) and folder.endswith("rfcheck/_scenarios"), where.stdout + where.stderr
    done = subprocess.run([str(python), "-m", "pytest", "--rfcheck", "--rfcheck-target=httpx_code", "-q",
                           "-p", "no:cacheprovider"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads((work / "reports" / "rfcheck-report.json").read_text())
    assert report["verdict"] == "ready", done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == 0
    assert len(report["scenarios"]) >= 15
