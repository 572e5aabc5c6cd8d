"""Every snippet of the README is run by a test, as written: each fenced block is claimed by exactly
one rule below, and a block no rule claims fails the first test, so a new snippet comes with its run.

Where a command names a placeholder path (``path/to/your-app``, ``DIR``) the test substitutes a real
one; commands that only select or configure (options, ``-k``) are collected, not run in full, when a
full run of the same target is already made elsewhere (the README's first command, the examples'
end-to-end tests)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from rfcheck.config import load_config
from rfcheck.steps import builtin_folder, load_file
from tests.helpers import venv_with_this_interpreters_packages

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HTTPX_EXAMPLE = ROOT / "examples" / "httpx_code"


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language}): {self.code.splitlines()[0][:70]}"


def _blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [Block(match.group(1), match.group(2), text.count("\n", 0, match.start()) + 1)
            for match in re.finditer(r"^```(\w+)\n(.*?)\n```$", text, flags=re.S | re.M)]


# what claims a block, and the test that runs it
RULES: dict[str, tuple[str, re.Pattern[str]]] = {
    "main command": ("bash", re.compile(r"\A[^\n]*pytest --rfcheck --rfcheck-target=examples/httpx_code\Z")),
    "test command": ("bash", re.compile(r"\A[^\n]*\.\[dev\]\" && python3 -m pytest -n 4\Z")),
    "accept": ("toml", re.compile(r"\A\[target\.accept\]")),
    "python config": ("toml", re.compile(r'name = "acme-invoices"')),
    "factory": ("python", re.compile(r"def make_target\(env: rfcheck\.Environment\)")),
    "init then check": ("bash", re.compile(r"rfcheck init path/to/your-app[^\n]*\nrfcheck check path/to/your-app")),
    "pytest options": ("bash", re.compile(r"\Apytest --rfcheck +# target from")),
    "web config": ("toml", re.compile(r'kind = "web"')),
    "examples": ("bash", re.compile(r"\A\(cd examples/node/express-app && npm ci\)")),
    "scenario file": ("toml", re.compile(r"\A# scenarios/revoked_refresh\.toml")),
    "explore": ("bash", re.compile(r"\Apytest --rfcheck --rfcheck-explore=")),
    "report commands": ("bash", re.compile(r"\Arfcheck report reports/rfcheck-report\.json --out site/")),
    "serve": ("bash", re.compile(r"\Arfcheck serve --tls")),
    "admin API": ("bash", re.compile(r"\Acurl -X POST \$RF_ADMIN_URL/clock/travel")),
    "own tests": ("python", re.compile(r"def test_\w+\(rfcheck_")),  # tests/test_own_tests_api.py runs them
    "CI workflow": ("yaml", re.compile(r"\A# \.github/workflows/rfcheck\.yml")),
}


def _claimed(name: str) -> list[Block]:
    language, pattern = RULES[name]
    found = [block for block in _blocks() if block.language == language and pattern.search(block.code)]
    assert found, f"no README block for the rule {name!r} any more: update the rule with the README"
    return found


def _only(name: str) -> Block:
    (block,) = _claimed(name)
    return block


def test_every_readme_block_is_claimed_by_exactly_one_rule() -> None:
    for block in _blocks():
        rules = [name for name, (language, pattern) in RULES.items()
                 if block.language == language and pattern.search(block.code)]
        assert len(rules) == 1, f"{block} is claimed by {rules or 'no rule'}: give it a run in this file"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}


def _bash(script: str, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    # `pytest` and `rfcheck` as a user's shell finds them: this interpreter's
    bin_dir = str(Path(sys.executable).parent)
    env = {**_env(), **(env or {})}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout[-3000:] + done.stderr[-3000:]


def _lines(block: Block) -> list[str]:
    return [line for line in block.code.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _report(folder: Path) -> dict:
    return json.loads((folder / "rfcheck-report.json").read_text(encoding="utf-8"))


# -- the commands the README opens with run in tests/test_readme.py; here, that they are the ones it runs
def test_the_opening_commands_are_the_ones_test_readme_runs() -> None:
    from tests.test_readme import _commands

    assert [_only("main command").code, _only("test command").code] == _commands()


# -- configs -------------------------------------------------------------------------------------------
def test_the_accept_snippet_is_a_valid_part_of_a_config(tmp_path: Path) -> None:
    config = tmp_path / "rfcheck.toml"
    config.write_text((HTTPX_EXAMPLE / "rfcheck.toml").read_text() + "\n" + _only("accept").code + "\n")
    loaded = load_config(config)
    assert "ORG-02" in dict(loaded.accept)


def test_the_python_config_and_factory_run_as_written(tmp_path: Path) -> None:
    """The README's config, beside the httpx example whose make_target is the README's."""
    project = tmp_path / "acme"
    project.mkdir()
    module = (HTTPX_EXAMPLE / "acme_invoices.py").read_text()
    (project / "acme_invoices.py").write_text(module + "\n\n# the README's factory\n" + _only("factory").code + "\n")
    (project / "rfcheck.toml").write_text(_only("python config").code + "\n")
    assert dict(load_config(project / "rfcheck.toml").confirm)["MAN-01"].startswith("integration@acme.com")
    reports = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={project}",
                           f"--rfcheck-report={reports}", "-p", "no:cacheprovider", "-q", "-k", "FLOW_01 or NET_01"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, _tail(done)
    statuses = {item["id"]: item["status"] for item in _report(reports)["requirements"]}
    assert statuses["FLOW-01"] == "pass" and statuses["NET-01"] == "pass"


def test_the_web_config_loads(tmp_path: Path) -> None:
    config = tmp_path / "rfcheck.toml"
    config.write_text(_only("web config").code + "\n")
    loaded = load_config(config)
    assert loaded.kind == "web" and loaded.tls and dict(loaded.env)["NODE_EXTRA_CA_CERTS"] == "{ca_file}"


def test_the_scenario_snippet_is_the_shipped_scenario() -> None:
    snippet = tomllib.loads(_only("scenario file").code)
    shipped = builtin_folder() / "revoked_refresh.toml"
    assert snippet == tomllib.loads(shipped.read_text())
    assert [step.text for step in load_file(shipped).steps] == snippet["steps"]


# -- commands ---------------------------------------------------------------------------------------
def test_init_then_check_then_report_and_compare(tmp_path: Path) -> None:
    """The "your integration" commands on a copy of an example, then the report commands on its report."""
    app = tmp_path / "your-app"
    shutil.copytree(HTTPX_EXAMPLE, app, ignore=shutil.ignore_patterns("rfcheck.toml", "__pycache__"))
    lines = [line for line in _lines(_only("init then check")) if "pip install" not in line]
    assert [line.split()[:2] for line in lines] == [["rfcheck", "init"], ["rfcheck", "check"]]
    script = "\n".join(line.replace("path/to/your-app", str(app)) for line in lines)
    done = _bash(script, tmp_path)
    assert done.returncode == 0, _tail(done)
    assert (app / "rfcheck.toml").is_file() and _report(tmp_path / "reports")["verdict"] == "ready"

    (tmp_path / "last-release").mkdir()
    shutil.copy(tmp_path / "reports" / "rfcheck-report.json", tmp_path / "last-release")
    done = _bash("\n".join(_lines(_only("report commands"))), tmp_path)
    assert done.returncode == 0, _tail(done)
    assert {"rfcheck-report.md", "rfcheck-report.html"} <= {p.name for p in (tmp_path / "site").iterdir()}
    assert "No regression" in done.stdout


def _collected(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = line.split("#", 1)[0].strip().replace("PATH", ".").replace("DIR", "elsewhere")
    assert command.startswith("pytest ")
    return _bash(f"python3 -m {command} --collect-only -q -p no:cacheprovider", cwd, timeout=120)


@pytest.mark.parametrize("rule", ["pytest options", "explore"])
def test_option_lines_are_accepted_and_select_what_they_say(rule: str, tmp_path: Path) -> None:
    """Each line is a valid command line whose selection collects requirements (or the exploration);
    a full run with the same target is the README's first command."""
    project = tmp_path / "project"
    shutil.copytree(HTTPX_EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    for line in _lines(_only(rule)):
        done = _collected(line, project)
        assert done.returncode == 0, f"{line}\n{_tail(done)}"
        collected = [item for item in done.stdout.splitlines() if "::" in item]
        if "-k explore" in line:
            assert collected and all("explore" in item for item in collected), done.stdout
        else:
            assert any("test_AUTH_01" in item for item in collected), done.stdout


def test_every_example_command_is_run_by_its_end_to_end_test() -> None:
    tests = "\n".join(path.read_text() for path in (ROOT / "tests").glob("test_*.py"))
    for line in _lines(_only("examples")):
        (target,) = re.findall(r"--rfcheck-target=(\S+)", line)
        assert (ROOT / target).is_dir(), line
        assert target.split("/", 1)[1] in tests, f"no end-to-end test runs {target}"
        for folder in re.findall(r"\(cd (\S+) && npm ci\)", line):
            assert (ROOT / folder / "package-lock.json").is_file() and folder in (ROOT / ".ci" / "run").read_text()


def test_serve_with_an_env_file_then_the_admin_api(tmp_path: Path) -> None:
    """The serve command as written, its env file sourced as the README says, then every curl line."""
    (serve_line,) = _lines(_only("serve"))
    bin_dir = str(Path(sys.executable).parent)
    env = {**_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    served = subprocess.Popen(["bash", "-c", f"exec {serve_line}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert served.stdout is not None and served.stderr is not None
        lines: list[str] = []
        while not lines or lines[-1] not in ("ready\n", ""):  # "" once it exits
            lines.append(served.stdout.readline())
        assert lines[-1] == "ready\n", lines + [served.stderr.read() if served.poll() is not None else ""]
        calls = _lines(_only("admin API"))
        script = "set -a; . ./.env; set +a\n" + "\n".join(f"{call.split('#')[0].strip()} -sS -w '\\n%{{http_code}}\\n'"
                                                          for call in calls)
        done = _bash(script, tmp_path, timeout=60)
        assert done.returncode == 0, _tail(done)
        codes = re.findall(r"^(\d{3})$", done.stdout, flags=re.M)
        assert len(codes) == len(calls) and all(code.startswith("2") for code in codes), done.stdout
    finally:
        served.terminate()
        served.wait(timeout=20)
    assert served.returncode == 0


def test_the_ci_workflow_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    """The workflow's run line in a venv of its own, with RFCHECK a git URL of this checkout (what a
    team without a package index entry for rfcheck uses); the dependencies come from this interpreter's
    site-packages so that only rfcheck itself is installed from the URL."""
    workflow = _only("CI workflow").code
    (run_line,) = re.findall(r"- run: (.*pip install.*)", workflow)
    assert re.search(r"RFCHECK: git\+https://", workflow)
    env_dir = tmp_path / "venv"
    python = venv_with_this_interpreters_packages(env_dir)
    work = tmp_path / "your-app"
    shutil.copytree(HTTPX_EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**_env(), "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "RFCHECK": f"git+file://{ROOT}", "VIRTUAL_ENV": str(env_dir)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", run_line], cwd=work, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, _tail(done)
    where = subprocess.run([str(python), "-c", "import rfcheck; print(rfcheck.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert where.stdout.startswith(str(env_dir)), where.stdout + where.stderr
    assert _report(work / "reports")["verdict"] == "ready"
