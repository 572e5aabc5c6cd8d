"""The fixtures of a ``--rfcheck`` session: the harness, the environment, each scenario, the judge."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any, cast

import pytest

from rfcheck import Environment, Target
from rfcheck.catalogue import requirement
from rfcheck.checks import CHECKS, Context, load_all, skipped
from rfcheck.harness import Harness
from rfcheck.report.model import Finding
from rfcheck.run import RfcheckSession, RfcheckWarning
from rfcheck.scenarios import SCENARIOS, ScenarioResult
from rfcheck.targets.python import load_factory

load_all()


def _session(request: pytest.FixtureRequest) -> RfcheckSession:
    from rfcheck.plugin import session_key

    return request.config.stash[session_key]


@pytest.fixture(scope="session")
def rfcheck_harness(request: pytest.FixtureRequest) -> Harness:
    """The run's mock, loopback servers and registered client, started once."""
    session = _session(request)
    return session.start_harness(_python_factory(request, session))


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


@pytest.fixture
def rfcheck_judge(request: pytest.FixtureRequest) -> Callable[[str], Finding]:
    """``rfcheck_judge("NET-01")``: run that requirement's check and turn its finding into an outcome."""
    session = _session(request)

    def judge(requirement_id: str) -> Finding:
        finding = _judge(request, session, requirement_id)
        session.record(finding)
        _act(finding)
        return finding

    return judge


def _judge(request: pytest.FixtureRequest, session: RfcheckSession, requirement_id: str) -> Finding:
    entry = requirement(requirement_id)
    if session.target.flow not in entry.applies_to:
        return skipped(requirement_id, f"does not apply to the {session.target.flow} flow")
    check = CHECKS[requirement_id]
    harness: Harness = request.getfixturevalue("rfcheck_harness")
    results = {name: request.getfixturevalue(f"rfcheck_scenario_{name}") for name in check.scenarios}
    return check.function(Context(harness, results))


def _act(finding: Finding) -> None:
    message = _message(finding)
    if finding.status == "fail":
        pytest.fail(message, pytrace=False)
    elif finding.status == "warn":
        warnings.warn(RfcheckWarning(message), stacklevel=2)
    elif finding.status in ("skip", "manual"):
        pytest.skip(message)


def _message(finding: Finding) -> str:
    entry = requirement(finding.id)
    lines = [f"{finding.id} ({finding.level or entry.level}) {finding.status}: {finding.reason}"]
    lines += [f"  [{e.scenario} #{e.exchange}] {e.request}: {e.detail}" for e in finding.evidence]
    if finding.status in ("fail", "warn"):
        lines.append(f"  fix: {entry.remediation}")
    return "\n".join(lines)
