"""Tests for rfcheck.steps: scenarios as data.

Every built-in scenario is a file of scenarios/ that loads; a wrong step is an error naming
the file and the line; the runner takes the steps as written (a failed login ends the
scenario); an integration's own scenario files run like the built-in ones, appear in the
report and are read by the requirements that read every scenario.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rfcheck.checks import CHECKS
from rfcheck.checks.groups import load_all
from rfcheck.config import ConfigError, load_config
from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from rfcheck.scenarios import PAST_EXPIRY
from rfcheck.steps import (FAULTS, SCENARIOS, ScenarioFileError, builtin_folder, duration, load_file, own_scenarios,
                           step_reference)

ROOT = Path(__file__).resolve().parents[1]
HTTPX_EXAMPLE = ROOT / "examples" / "httpx_code"


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(body)
    return path


# -- the built-in scenarios --------------------------------------------------------------------
def test_the_built_in_scenarios_are_the_files_of_scenarios() -> None:
    folder = builtin_folder()
    assert folder == ROOT / "scenarios"
    assert sorted(SCENARIOS) == sorted(p.stem for p in folder.glob("*.toml"))
    assert len(SCENARIOS) == 22
    expiry = SCENARIOS["expiry"]
    assert [s.text for s in expiry.steps] == ["login", "units 2", "travel 24h2m active", "units 3"]
    assert expiry.flows == {AUTHORIZATION_CODE, CLIENT_CREDENTIALS}
    assert SCENARIOS["rotation"].flows == {AUTHORIZATION_CODE}
    assert SCENARIOS["oidc_hs256_confusion"].fault_arguments() == {"id_token": "hs256_public_key"}
    assert "id_token" not in SCENARIOS["baseline"].fault_arguments()


def test_every_scenario_a_check_names_exists() -> None:
    load_all()
    named = {name for check in CHECKS.values() for name in check.scenarios if name != "*"}
    assert named and named <= set(SCENARIOS), named - set(SCENARIOS)


def test_the_scenarios_folder_is_not_an_importable_package_of_the_wheel() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"scenarios" = "rfcheck/_scenarios"' in pyproject, "the wheel carries scenarios/ inside the package"


@pytest.mark.parametrize(("text", "seconds"), [("86520", 86_520), ("24h2m", PAST_EXPIRY), ("1d", 86_400),
                                               ("1h1m", 3_660), ("90s", 90), ("", None), ("soon", None),
                                               ("2m1h", None)])
def test_durations(text: str, seconds: int | None) -> None:
    assert duration(text) == seconds


def test_the_reference_names_every_step_and_fault() -> None:
    reference = step_reference()
    for word in ("login", "start_login", "units N [parallel]", "travel DURATION", "forge_callback",
                 "deliver_forged_callback", *(f"fault {name}" for name in FAULTS)):
        assert word in reference, word


# -- wrong files: the file, the line, what was expected ------------------------------------------
@pytest.mark.parametrize(("steps", "line", "message"), [
    ('"login",\n  "units three",', 4, "step 'units three': 'three' is not an integer"),
    ('"login",\n  "dance",', 4, "step 'dance': unknown step 'dance'; steps are: login, start_login"),
    ('"fault teleport",', 3, "step 'fault teleport': expected a named fault: id_token, refresh_id_token"),
    ('"fault id_token shiny",', 3, "fault id_token 'shiny' is not one of alg_none, bad_signature"),
    ('"fault token_endpoint_fails 429 2 1 9",', 3, "fault token_endpoint_fails takes 1 to 3 arguments, not 4 "
                                                "(usage: fault token_endpoint_fails STATUS [TIMES] [RETRY_AFTER])"),
    ('"fault token_endpoint_fails 404 1 1",', 3, "fault token_endpoint_fails 404 is not 429 or a 5xx status"),
    ('"fault withhold_scopes invoices:write",', 3, "fault withhold_scopes unknown scope 'invoices:write'"),
    ('"travel later",', 3, "step 'travel later': expected one duration, in seconds or like 1d, 24h2m"),
    ('"travel 24h2m idle",', 3, "step 'travel 24h2m idle': expected one duration, in seconds or like 1d, 24h2m, "
                                "1h1m, 90s, optionally followed by 'active'"),
    ('"units 3 maybe",', 3, "expected a number of units, optionally followed by 'parallel'"),
    ('"deliver_forged_callback",', 3, "no forge_callback step comes before it"),
])
def test_a_wrong_step_names_the_file_and_line(tmp_path: Path, steps: str, line: int, message: str) -> None:
    path = _write(tmp_path, "mine", f'description = "x"\nsteps = [\n  {steps}\n]\n')
    with pytest.raises(ScenarioFileError) as raised:
        load_file(path)
    assert str(raised.value).startswith(f"{path}, line {line}: "), raised.value
    assert message in str(raised.value)


@pytest.mark.parametrize(("body", "message"), [
    ('steps = ["login"]\n', "description must be a non-empty string"),
    ('description = "x"\nsteps = []\n', "steps is empty"),
    ('description = "x"\nsteps = "login"\n', "steps must be a list of strings"),
    ('description = "x"\nflows = ["implicit"]\nsteps = ["login"]\n', "flows must be a non-empty list of"),
    ('description = "x"\nwhen = "always"\nsteps = ["login"]\n', "unknown key 'when'"),
    ('description = "x"\nsteps = [\n', "not valid TOML"),
])
def test_a_wrong_file_names_it(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, "mine", body)
    with pytest.raises(ScenarioFileError, match=message) as raised:
        load_file(path)
    assert str(raised.value).startswith(str(path))


def test_a_file_name_must_be_a_scenario_name(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="must be a scenario name"):
        load_file(_write(tmp_path, "Not-A-Name", 'description = "x"\nsteps = ["login"]\n'))


# -- an integration's own scenarios ----------------------------------------------------------------
def _project(tmp_path: Path, scenarios: str, files: dict[str, str]) -> Path:
    shutil.copy(HTTPX_EXAMPLE / "acme_invoices.py", tmp_path)
    config = (HTTPX_EXAMPLE / "rfcheck.toml").read_text().replace(
        '[target.python]', f'scenarios = {scenarios}\n\n[target.python]')
    (tmp_path / "rfcheck.toml").write_text(config)
    (tmp_path / "rfcheck").mkdir()
    for name, body in files.items():
        (tmp_path / "rfcheck" / f"{name}.toml").write_text(body)
    return tmp_path / "rfcheck.toml"


LONG_IDLE = '''description = "Three days without use, then work again: one refresh, then the new token reused."
steps = [
  "login",
  "units 1",
  "travel 3d",
  "units 2",
]
'''


def test_an_integration_s_own_scenario_runs_and_is_judged_with_every_scenario(tmp_path: Path) -> None:
    config = _project(tmp_path, '["rfcheck/*.toml"]', {"long_idle": LONG_IDLE})
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={config}",
                           f"--rfcheck-report={tmp_path / 'reports'}", "-p", "no:cacheprovider", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "reports" / "rfcheck-report.json").read_text())
    assert report["verdict"] == "ready", done.stdout[-3000:]
    long_idle = next(s for s in report["scenarios"] if s["name"] == "long_idle")
    assert long_idle["outcome"] == "completed"
    steps = [x["step"] for x in long_idle["exchanges"]]
    assert "travel +72 h" not in steps and "unit 2" in steps and "unit 3" in steps
    refreshes = [x for x in long_idle["exchanges"] if x["path"] == "/oauth/token" and x["step"] == "unit 2"]
    assert len(refreshes) == 1, "one refresh after three days"
    reads_all = {r["id"]: r["reason"] for r in report["requirements"] if r["id"] in ("SEC-03", "TOKEN-03")}
    assert "long_idle" in reads_all["SEC-03"], reads_all


def test_a_wrong_scenario_of_the_integration_is_a_usage_error_naming_file_and_line(tmp_path: Path) -> None:
    config = _project(tmp_path, '["rfcheck/*.toml"]', {"broken": 'description = "x"\nsteps = [\n  "unit 1",\n]\n'})
    with pytest.raises(ConfigError) as raised:
        own_scenarios(load_config(config))
    assert f"[target] scenarios: {tmp_path / 'rfcheck' / 'broken.toml'}, line 3: step 'unit 1': unknown step" in str(
        raised.value)
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={config}",
                           "-p", "no:cacheprovider", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "broken.toml, line 3: step 'unit 1'" in done.stderr + done.stdout


@pytest.mark.parametrize(("pattern", "files", "message"), [
    ('["rfcheck/none/*.toml"]', {}, r"'rfcheck/none/\*.toml' matches no file in"),
    ('["rfcheck/*.toml"]', {"baseline": LONG_IDLE}, "a built-in scenario is already called 'baseline'"),
])
def test_scenario_patterns_are_checked(tmp_path: Path, pattern: str, files: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        own_scenarios(load_config(_project(tmp_path, pattern, files)))


def test_two_files_of_one_scenario_name_are_refused_naming_both(tmp_path: Path) -> None:
    config = _project(tmp_path, '["rfcheck/*.toml", "more/*.toml"]', {"long_idle": LONG_IDLE})
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "long_idle.toml").write_text(LONG_IDLE)
    target = load_config(config)  # the config itself is right: what its scenario files say is the steps' to check
    with pytest.raises(ConfigError) as raised:
        own_scenarios(target)
    assert str(raised.value) == (f"{config}: [target] scenarios: {tmp_path / 'more' / 'long_idle.toml'} and "
                                 f"{tmp_path / 'rfcheck' / 'long_idle.toml'} are both scenario 'long_idle'")


def test_a_huge_scenario_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as out:
        out.truncate(2 * 1024 ** 3)  # 2 GB, sparse: nothing is written
    read: list[Path] = []
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: read.append(self) or "")
    with pytest.raises(ScenarioFileError, match=r"huge.toml: 2,147,483,648 bytes, more than a scenario file may "
                                                r"have \(1,048,576\); it was not read"):
        load_file(path)
    assert read == []


def test_a_huge_target_config_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rfcheck.toml"
    with path.open("wb") as out:
        out.truncate(2 * 1024 ** 3)
    with pytest.raises(ConfigError, match=r"rfcheck.toml: .* has 2,147,483,648 bytes, more than a target config"):
        load_config(path)


def test_the_readme_names_every_fault_of_the_one_registry() -> None:
    """The steps, the admin API and the README read one registry: the README lists exactly its names."""
    from rfcheck.provider.named_faults import FAULTS as REGISTRY, SWITCHES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    steps_list = readme.split("Named faults: `revoke_refresh_tokens`", 1)[1].split("one registry", 1)[0]
    admin_list = readme.split("Named faults: `token_delay`", 1)[1].split("An unknown name", 1)[0]
    named = {"revoke_refresh_tokens"} | set(re.findall(r"`(\w+)[ `]", steps_list))
    assert named & set(REGISTRY) == set(REGISTRY), set(REGISTRY) - named
    assert set(re.findall(r"`(\w+)` `\{", "`token_delay` `{" + admin_list)) == set(SWITCHES)
    assert FAULTS is REGISTRY
    for fault in REGISTRY.values():
        for choice in (c for p in fault.params for c in p.choices):
            assert f"`{choice}`" in steps_list or choice in steps_list, choice


def test_every_scenario_a_check_declares_is_a_built_in_one() -> None:
    checks = load_all()
    unknown = {check.id: name for check in checks.values() for name in check.scenarios
               if name != "*" and name not in SCENARIOS}
    assert unknown == {}, unknown
