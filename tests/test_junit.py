"""JUnit XML of a readiness run, read as CI tools read it: a testcase per requirement with the suite module
as its classname, rfcheck's own outcome in its properties (pytest knows only passed, failed and skipped),
each requirement's own time (the scenarios run before the first one, their time a property of the suite),
and skips that point at the requirement's test rather than at rfcheck's code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SLOW_TARGET = """
import time

import acme_invoices

def make_target(env):
    target = acme_invoices.make_target(env)
    work = target.exercise

    def slow_work():  # every unit of work takes a while of real work, as a real app's does (a sleep in
        # process would take no real time: rfcheck's clock moves instead)
        end = time.clock_gettime(time.CLOCK_MONOTONIC) + 0.15
        while time.clock_gettime(time.CLOCK_MONOTONIC) < end:
            pass
        work()

    target.exercise = slow_work
    return target

def exploding_factory(env):
    raise ValueError("the factory cannot build the app")
"""


def _junit(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, ET.Element]:
    result = pytester.runpytest("--rfcheck", "--junitxml=junit.xml", *args)
    return result, ET.parse(pytester.path / "junit.xml").getroot()


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


def _properties(element: ET.Element) -> dict[str, str]:
    node = element.find("properties")
    return {p.get("name", ""): p.get("value", "") for p in node.iter("property")} if node is not None else {}


def _requirements(pytester: pytest.Pytester) -> dict[str, dict]:
    report = json.loads((pytester.path / "reports" / "rfcheck-report.json").read_text())
    return {r["id"]: r for r in report["requirements"]}


def _slow_target(pytester: pytest.Pytester, factory: str = "slow_target:make_target") -> None:
    pytester.syspathinsert(EXAMPLES / "httpx_code")
    pytester.makepyfile(slow_target=SLOW_TARGET)
    config = (EXAMPLES / "httpx_code" / "rfcheck.toml").read_text()
    pytester.makefile(".toml", rfcheck=config.replace("acme_invoices:make_target", factory))


def test_each_requirement_is_a_testcase_of_its_group_with_rfcheck_s_outcome(pytester: pytest.Pytester) -> None:
    config = EXAMPLES / "broken" / "pkce_plain.toml"
    result, root = _junit(pytester, f"--rfcheck-target={config}", "-k", "FLOW_01 or FLOW_07 or CC_01 or MAN_01")
    result.assert_outcomes(passed=1, failed=1, skipped=2)
    cases = _cases(root)
    assert set(cases) == {"test_FLOW_01", "test_FLOW_07", "test_CC_01", "test_MAN_01"}
    assert {name: case.get("classname") for name, case in cases.items()} == {
        "test_FLOW_01": "scenarios.test_flow", "test_FLOW_07": "scenarios.test_flow",
        "test_CC_01": "scenarios.test_cc", "test_MAN_01": "scenarios.test_man"}
    reported = _requirements(pytester)
    for name, case in cases.items():
        rid = name.removeprefix("test_").replace("_", "-")
        properties = _properties(case)
        assert properties["rfcheck.id"] == rid
        assert properties["rfcheck.level"] == reported[rid]["level"]
        assert properties["rfcheck.status"] == reported[rid]["status"]
        assert properties["rfcheck.evidence"] == str(len(reported[rid]["evidence"]))
        assert properties["rfcheck.reason"] == reported[rid]["reason"]
    assert [_properties(cases[n])["rfcheck.status"] for n in ("test_FLOW_01", "test_FLOW_07", "test_CC_01",
                                                             "test_MAN_01")] == ["pass", "fail", "skip", "manual"]
    assert int(_properties(cases["test_FLOW_07"])["rfcheck.evidence"]) > 0
    assert _properties(cases["test_FLOW_07"])["rfcheck.scenarios"] == "baseline, withheld_scope"
    assert _properties(cases["test_CC_01"])["rfcheck.scenarios"] == "", "it does not apply: it reads nothing"
    for name in ("test_CC_01", "test_MAN_01"):  # the skip is the requirement's, not a line of rfcheck's code
        skipped = cases[name].find("skipped")
        assert skipped is not None and "plugin.py" not in (skipped.text or "")
        assert f"scenarios/test_{name.split('_')[1].lower()}.py:" in (skipped.text or ""), skipped.text


def test_a_warning_and_a_requirement_not_judged_say_so_in_their_properties(pytester: pytest.Pytester) -> None:
    result, root = _junit(pytester, f"--rfcheck-target={EXAMPLES / 'broken' / 'no_pkce.toml'}", "-k", "FLOW_03")
    result.assert_outcomes(passed=1, warnings=1)
    warned = _properties(_cases(root)["test_FLOW_03"])
    assert (warned["rfcheck.status"], warned["rfcheck.level"]) == ("warn", "should")
    assert warned["rfcheck.reason"] == _requirements(pytester)["FLOW-03"]["reason"]

    _slow_target(pytester, "slow_target:exploding_factory")
    result, root = _junit(pytester, "-k", "AUTH_04")
    result.assert_outcomes(skipped=1)
    unjudged = _properties(_cases(root)["test_AUTH_04"])
    assert unjudged["rfcheck.status"] == "not judged" and "could not be started or driven" in unjudged["rfcheck.reason"]


def test_a_requirement_s_time_is_its_own_not_the_scenarios(pytester: pytest.Pytester) -> None:
    _slow_target(pytester)
    result, root = _junit(pytester, "-k", "FLOW_01 or FLOW_03 or SCOPE_05")
    result.assert_outcomes(passed=3)
    times = {name: float(case.get("time", "nan")) for name, case in _cases(root).items()}
    suite = root.find("testsuite")
    assert suite is not None
    scenarios = float(_properties(suite)["rfcheck.scenarios_seconds"])
    # baseline and withheld_scope (what the three read, and all that ran) do units of work of 0.15 s each
    report = json.loads((pytester.path / "reports" / "rfcheck-report.json").read_text())
    assert sorted(s["name"] for s in report["scenarios"]) == ["baseline", "withheld_scope"]
    assert scenarios >= 0.3, scenarios
    assert max(times.values()) < scenarios / 3, (times, scenarios)
    assert float(suite.get("time", "0")) >= scenarios, "the run's time is still the suite's"
    # the progress lines come before the first requirement's result, not in the middle of its line
    result.stdout.fnmatch_lines(["rfcheck: scenario baseline completed in * s",
                                 "rfcheck: scenario withheld_scope completed in * s", "", "scenarios/test_flow.py ..*"])
