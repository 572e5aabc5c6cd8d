"""Tests for the check registry (rfcheck.checks, rfcheck.checks.outcome): a check names its ID once, the
registry binds it and answers for a needed scenario that did not complete, and every scenario a check names
is a built-in one. The names are checked here, not in rfcheck.checks, which must not import the engine
that knows the scenarios (tests/test_architecture.py): against the files of scenarios/."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfcheck.checks import ALL_SCENARIOS, CHECKS, Check, Context, check
from rfcheck.checks.groups import load_all
from rfcheck.checks.outcome import (Outcome, failed, inapplicable, manual, not_observed, passed, skipped, unjudged,
                                    warned)
from rfcheck.observed import Issued, RunView, ScenarioResult
from rfcheck.report.model import Evidence, Finding

SCENARIO_FILES = Path(__file__).resolve().parents[1] / "scenarios"
EVIDENCE = Evidence("baseline", 3, "GET /invoices", "no X-Network header")


def context(*results: ScenarioResult) -> Context:
    view = RunView(config=None, client_id="", redirect_uris=(), secrets=frozenset(), issued=Issued(),
                   organizations=(), redact=lambda text: text)
    return Context(view, {r.name: r for r in results})


def test_every_scenario_a_check_reads_or_needs_is_a_scenario_file() -> None:
    checks = load_all()
    named = {(c.id, name) for c in checks.values() for name in c.scenarios + c.needs if name != "*"}
    missing = sorted((rid, name) for rid, name in named if not (SCENARIO_FILES / f"{name}.toml").is_file())
    assert named and missing == [], missing


def test_every_needed_scenario_is_one_the_check_reads() -> None:
    for registered in load_all().values():
        assert set(registered.needs) <= set(registered.scenarios) - {"*"}, registered.id


@pytest.mark.parametrize("scenarios, needs", [
    (("revoked_access",), ("revoked_acess",)),  # misspelt
    (ALL_SCENARIOS, ("revoked_access",)),  # "*" under a selection reads only what it selected
    (("revoked_access",), ("*",)),
], ids=["misspelt", "not-named", "every"])
def test_a_needed_scenario_the_check_does_not_name_is_refused_at_registration(
        scenarios: tuple[str, ...], needs: tuple[str, ...]) -> None:
    before = dict(CHECKS)
    with pytest.raises(ValueError, match=r"TOKEN-05 needs .*, which it does not name among the scenarios it reads"):
        check("TOKEN-05", scenarios, needs=needs)
    assert CHECKS == before


@pytest.mark.parametrize("outcome, reason", [("not-run", "client credentials only"), ("error", "no answer")])
def test_a_needed_scenario_not_completed_is_answered_before_the_check_runs(outcome: str, reason: str) -> None:
    def conclude(ctx: Context) -> Outcome:
        raise AssertionError("the check ran")

    result = ScenarioResult("revoked_access", outcome, reason)
    registered = Check("TOKEN-05", ("baseline", "revoked_access"), conclude, ("baseline", "revoked_access"))
    finding = registered.function(context(ScenarioResult("baseline", "completed"), result))
    unobserved = not_observed(result)
    assert unobserved is not None and finding == unobserved.finding("TOKEN-05")
    assert finding == (Finding("TOKEN-05", "skip", "scenario revoked_access does not apply: client credentials only")
                       if outcome == "not-run" else Finding("TOKEN-05", "skip", "scenario revoked_access could not "
                                                                                "run: no answer", judged=False))


def test_a_needed_scenario_the_caller_did_not_pass_is_not_judged() -> None:
    """A caller that asks with fewer results (the explorer judges one sequence) gets "not judged", not a
    KeyError and not a verdict."""
    registered = Check("TOKEN-05", ("revoked_access",), lambda ctx: passed("ran"), ("revoked_access",))
    assert registered.judge(context(ScenarioResult("baseline", "completed"))) == Finding(
        "TOKEN-05", "skip", "scenario revoked_access did not run", judged=False)


def test_with_every_needed_scenario_completed_the_check_concludes() -> None:
    registered = Check("NET-01", ("baseline",), lambda ctx: passed("all 2 API calls were right"), ("baseline",))
    assert registered.judge(context(ScenarioResult("baseline", "completed"))) == Finding(
        "NET-01", "pass", "all 2 API calls were right")


@pytest.mark.parametrize("rid, outcome, expected", [
    ("NET-01", passed("right"), Finding("NET-01", "pass", "right")),
    ("NET-01", failed("wrong", [EVIDENCE]), Finding("NET-01", "fail", "wrong", (EVIDENCE,))),
    ("CC-02", failed("wrong", [EVIDENCE]), Finding("CC-02", "warn", "wrong", (EVIDENCE,))),  # a should
    ("TOKEN-06", failed("harm", [EVIDENCE], level="must"), Finding("TOKEN-06", "fail", "harm", (EVIDENCE,), "must")),
    ("FLOW-06", warned("advice", [EVIDENCE]), Finding("FLOW-06", "warn", "advice", (EVIDENCE,))),
    ("MAN-01", manual("confirm it"), Finding("MAN-01", "manual", "confirm it")),
    ("REL-02", inapplicable("not a web app"), Finding("REL-02", "skip", "not a web app")),
    ("ORG-03", skipped("never listed"), Finding("ORG-03", "skip", "never listed", absence=True)),
    ("SEC-04", unjudged("nothing ran"), Finding("SEC-04", "skip", "nothing ran", judged=False)),
])
def test_an_outcome_becomes_the_finding_on_the_registered_id(rid: str, outcome: Outcome, expected: Finding) -> None:
    assert outcome.finding(rid) == expected


def test_the_finding_still_refuses_what_a_check_gets_wrong_naming_the_id() -> None:
    with pytest.raises(ValueError, match="NET-01: fail without evidence"):
        failed("wrong", []).finding("NET-01")
    with pytest.raises(ValueError, match="outcome 'skip' is not one of"):
        Outcome("skip", "no")
