"""The fixtures of a ``--rfcheck`` session: the harness, the environment, each scenario, the judge."""

from __future__ import annotations

import dataclasses
import inspect
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from rfcheck import Environment, Target
from rfcheck.catalogue import requirement
from rfcheck.checks import CHECKS, Context, inapplicable, load_all, scenarios_read, undriven
from rfcheck.explore import Exploration, Explored, ExploredFinding
from rfcheck.harness import Harness
from rfcheck.report.model import Finding
from rfcheck.run import RfcheckSession, RfcheckWarning, requirement_message as _message
from rfcheck.scenarios import SCENARIOS, ScenarioResult
from rfcheck.steps import builtin_folder
from rfcheck.targets.python import load_factory

load_all()


def _session(request: pytest.FixtureRequest) -> RfcheckSession:
    from rfcheck.plugin import session_key

    return request.config.stash[session_key]


@pytest.fixture(scope="session")
def rfcheck_harness(request: pytest.FixtureRequest) -> Harness:
    """The run's mock, loopback servers and registered client, started once."""
    session = _session(request)
    harness = session.start_harness(_python_factory(request, session))
    harness.prefetch(_scenarios_selected(request.session.items, session))
    return harness


def _scenarios_selected(items: list[pytest.Item], session: RfcheckSession) -> list[str]:
    """The scenarios the selected requirements read (``-k TOKEN`` runs only what TOKEN needs), to start at once."""
    harness = session.harness
    assert harness is not None
    names: list[str] = []
    for item in items:
        rid = requirement_of(item) if SUITE in Path(item.path).parents else None
        if rid is None or rid not in CHECKS or session.target.flow not in requirement(rid).applies_to:
            continue
        names += scenarios_read(CHECKS[rid], harness.scenarios)
    return list(dict.fromkeys(names))


@pytest.fixture(scope="session")
def rfcheck_env(rfcheck_harness: Harness) -> Environment:
    """What the target is configured with for this run."""
    return rfcheck_harness.environment


def _python_factory(request: pytest.FixtureRequest, session: RfcheckSession) -> Callable[[Environment], Target] | None:
    """The factory of a python target: ``[target.python] factory``, or the ``rfcheck_target`` fixture."""
    if session.target.kind != "python":
        return None
    spec = session.target.python.factory if session.target.python else None
    if spec:
        return lambda env: load_factory(spec, session.target.root)(env)
    definitions = request._fixturemanager.getfixturedefs("rfcheck_target", request.node) or ()
    return _call_fixture(definitions[-1].func) if definitions else None


def _call_fixture(function: Callable[..., Any]) -> Callable[[Environment], Target]:
    """A ``rfcheck_target`` fixture function called as a factory (it receives ``rfcheck_env``)."""

    def make(env: Environment) -> Target:
        made = function(rfcheck_env=env)
        return cast(Target, next(made) if inspect.isgenerator(made) else made)

    return make


def _scenario_fixture(name: str) -> Any:
    @pytest.fixture(scope="session", name=f"rfcheck_scenario_{name}")
    def fixture(rfcheck_harness: Harness) -> ScenarioResult:
        return rfcheck_harness.scenario(name)

    fixture.__doc__ = SCENARIOS[name].description
    return fixture


for _name in SCENARIOS:
    globals()[f"rfcheck_scenario_{_name}"] = _scenario_fixture(_name)


def requirement_of(node: pytest.Item) -> str | None:
    """The catalogue ID a suite test judges: ``test_TOKEN_03`` judges TOKEN-03."""
    name = getattr(node, "originalname", node.name)
    if not name.startswith("test_"):
        return None
    rid = name[len("test_"):].replace("_", "-")
    try:
        return requirement(rid).id
    except KeyError:
        return None


@pytest.fixture
def rfcheck_judge(request: pytest.FixtureRequest) -> Callable[[str], Finding]:
    """``rfcheck_judge("NET-01")``: run that requirement's check and turn its finding into an outcome.

    The scenarios the requirement reads run while the test is set up, so a target that cannot be
    started or driven makes the test an error (not judged), never a failed requirement.
    """
    session = _session(request)
    own = requirement_of(request.node)
    if own is not None:
        _scenarios_for(request, session, own)

    def judge(requirement_id: str) -> Finding:
        finding = _accepted(session, _judge(request, session, requirement_id))
        session.record(finding)
        _act(finding, request.node)
        return finding

    return judge


def _scenarios_for(request: pytest.FixtureRequest, session: RfcheckSession,
                   requirement_id: str) -> dict[str, ScenarioResult]:
    """Run (once) the scenarios ``requirement_id`` reads; raise TargetNotDriven when one could not run."""
    if session.target.flow not in requirement(requirement_id).applies_to:
        return {}
    harness: Harness = request.getfixturevalue("rfcheck_harness")
    results = {name: harness.scenario(name) for name in scenarios_read(CHECKS[requirement_id], harness.scenarios)}
    broken = [r for r in results.values() if r.outcome == "error"]
    if broken:
        reason = f"not judged: the target could not be started or driven ({broken[0].reason})"
        session.record(Finding(requirement_id, "skip", _first_line(reason), judged=False))
        # once, in the readiness summary, with the app's own error; the run fails (RfcheckSession)
        pytest.skip("not judged: the target could not be driven (see the rfcheck readiness summary)")
    return results


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _judge(request: pytest.FixtureRequest, session: RfcheckSession, requirement_id: str) -> Finding:
    entry = requirement(requirement_id)
    if session.target.flow not in entry.applies_to:
        return inapplicable(requirement_id, f"does not apply to the {session.target.flow} flow")
    check = CHECKS[requirement_id]
    harness: Harness = request.getfixturevalue("rfcheck_harness")
    finding = check.function(Context(harness, _scenarios_for(request, session, requirement_id)))
    if finding.absence and "baseline" in harness.scenarios:
        harness.scenario("baseline")  # whether the target was driven at all decides what an absence says
    return undriven(finding, harness.never_worked) if harness.never_worked else finding


def _accepted(session: RfcheckSession, finding: Finding) -> Finding:
    """``[target.accept]``: a should shortfall accepted on purpose keeps its evidence, with the reason."""
    reason = session.target.accept.get(finding.id)
    if reason is None or finding.status != "warn":
        return finding
    return dataclasses.replace(finding, status="accepted",
                               reason=f"accepted in [target.accept]: {reason} (shortfall: {finding.reason})")


def _act(finding: Finding, node: pytest.Item) -> None:
    message = _message(finding)
    if finding.status == "fail":
        pytest.fail(message, pytrace=False)
    elif finding.status == "warn":
        # shown at the requirement's test, not at this line of rfcheck
        path, line, _ = node.location
        warnings.warn_explicit(RfcheckWarning(message), RfcheckWarning, str(node.path), (line or 0) + 1)
    elif finding.status in ("skip", "manual"):
        pytest.skip(message)


SUITE = builtin_folder()


def pytest_itemcollected(item: pytest.Item) -> None:
    """``-k SEC-01``, the ID as written, selects that requirement."""
    rid = requirement_of(item)
    if rid is not None and SUITE in Path(item.path).parents:
        item.extra_keyword_matches.add(rid)


Explorer = Callable[[], Explored]


@pytest.fixture
def rfcheck_explore(request: pytest.FixtureRequest) -> Explorer:
    """``rfcheck_explore()``: the exploration (``--rfcheck-explore=N``); a ``must`` requirement it
    breaks fails the test, a ``should`` one warns, each with the shortest sequence found."""
    session = _session(request)

    def explore() -> Explored:
        from rfcheck.plugin import exploration_options

        examples, seconds, seed_value = exploration_options(request.config)
        if not examples:
            pytest.skip("no exploration was asked for (--rfcheck-explore=N)")
        seed_value = seed_value if seed_value is not None else random.randrange(2 ** 32)
        cache = getattr(request.config, "cache", None)
        database = cache.mkdir("rfcheck-explore") if cache is not None else None
        harness: Harness = request.getfixturevalue("rfcheck_harness")
        explored = Exploration(harness, examples, seconds, seed_value, database).run()
        session.explored = explored
        for note in explored.notes:
            harness.note(note)
        musts = [f for f in explored.findings.values() if (f.finding.level or requirement(f.finding.id).level) == "must"]
        for found in explored.findings.values():
            if found not in musts:
                path, line, _ = request.node.location
                warnings.warn_explicit(RfcheckWarning(_explored_message(found)), RfcheckWarning,
                                       str(request.node.path), (line or 0) + 1)
        if musts:
            pytest.fail("\n".join(_explored_message(found) for found in musts), pytrace=False)
        return explored

    return explore


def _explored_message(found: ExploredFinding) -> str:
    return (f"{_message(found.finding)}\n  shortest sequence: {' -> '.join(found.steps)}\n"
            f"  replay it: save as scenarios/<name>.toml in your project and list it in [target] scenarios:\n"
            + "\n".join(f"    {line}" for line in found.scenario.splitlines()))
