"""The fixtures of a ``--rfcheck`` session: the harness, the environment, each scenario, the judge."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from rfcheck.provider.clock import seconds_since_boot
from rfcheck import Environment, Target
from rfcheck.catalogue import requirement
from rfcheck.checks import CHECKS, inapplicable, reads_every_scenario, scenarios_read, undriven
from rfcheck.checks.groups import load_all
from rfcheck.explore import Exploration, Explored, ExploredFinding
from rfcheck.harness import Harness
from rfcheck.report.model import Finding
from rfcheck.run import RfcheckSession, requirement_message as _message, warn_at_config
from rfcheck.observed import ScenarioResult
from rfcheck.steps import SCENARIOS
from rfcheck.steps import builtin_folder
from rfcheck.targets.python import load_factory

load_all()


def _session(request: pytest.FixtureRequest) -> RfcheckSession:
    from rfcheck.options import session_key

    return request.config.stash[session_key]


@pytest.fixture(scope="session")
def rfcheck_harness(request: pytest.FixtureRequest) -> Harness:
    """The run's mock, loopback servers and registered client, started once."""
    session = _session(request)
    harness = session.start_harness(_python_factory(request.session, session))
    harness.prefetch(_scenarios_selected(request.session.items, session))
    if session.scenario_seconds is not None and request.config.pluginmanager.has_plugin("junitxml"):
        # the scenarios' time belongs to no requirement: the suite's property says where the run's time went
        record = request.getfixturevalue("record_testsuite_property")
        record("rfcheck.scenarios_seconds", f"{session.scenario_seconds:.3f}")
    return harness


def _scenarios_selected(items: list[pytest.Item], session: RfcheckSession) -> list[str]:
    """The scenarios the selected requirements read, to start at once. A selection that leaves requirements
    out (``-k TOKEN-03``) runs only the scenarios its requirements name, the baseline and the integration's
    own scenarios (``[target] scenarios``): a requirement that
    reads every scenario is judged on those (its reason says so), since pulling every scenario in for it
    would make any selection a whole run."""
    harness = session.harness
    assert harness is not None
    selected = [rid for item in items if (rid := requirement_of(item) if SUITE in Path(item.path).parents else None)
                and rid in CHECKS and session.target.flow in requirement(rid).applies_to]
    every = [rid for rid in CHECKS if session.target.flow in requirement(rid).applies_to]
    if set(every) <= set(selected):
        session.selected_scenarios = None
        return list(dict.fromkeys(name for rid in selected for name in scenarios_read(CHECKS[rid], harness.scenarios)))
    named = [name for rid in selected for name in CHECKS[rid].scenarios if name != "*"]
    own = [name for name in harness.scenarios if name not in SCENARIOS]  # [target] scenarios: asked for by name
    wanted = ["baseline", *named, *own] if "baseline" in harness.scenarios else [*named, *own]
    session.selected_scenarios = tuple(name for name in dict.fromkeys(wanted) if name in harness.scenarios)
    return list(session.selected_scenarios)


@pytest.fixture(scope="session")
def rfcheck_env(rfcheck_harness: Harness) -> Environment:
    """What the target is configured with for this run."""
    return rfcheck_harness.environment


def _python_factory(node: pytest.Session, session: RfcheckSession) -> Callable[[Environment], Target] | None:
    """The factory of a python target: ``[target.python] factory``, or the ``rfcheck_target`` fixture (as the
    run's session sees it: a conftest of the rootdir)."""
    if session.target.kind != "python":
        return None
    spec = session.target.python.factory if session.target.python else None
    if spec:
        return lambda env: load_factory(spec, session.target.root)(env)
    definitions = node._fixturemanager.getfixturedefs("rfcheck_target", node) or ()
    return _call_fixture(definitions[-1].func) if definitions else None


def _call_fixture(function: Callable[..., Any]) -> Callable[[Environment], Target]:
    """A ``rfcheck_target`` fixture function called as a factory (it receives ``rfcheck_env``)."""

    def make(env: Environment) -> Target:
        made = function(rfcheck_env=env)
        return cast(Target, next(made) if inspect.isgenerator(made) else made)

    return make


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

    The scenarios the requirement reads have run before the first requirement (see
    :func:`pytest_runtest_protocol`), or run while the test is set up; a target that cannot be started
    or driven makes the test a skip (not judged), never a failed requirement.
    """
    session = _session(request)
    own = requirement_of(request.node)
    if own is not None:
        _scenarios_for(request, session, own)

    def judge(requirement_id: str) -> Finding:
        finding = _accepted(session, _judge(request, session, requirement_id))
        session.record(finding)
        _act(finding, request.node, session)
        return finding

    return judge


def _scenarios_for(request: pytest.FixtureRequest, session: RfcheckSession,
                   requirement_id: str) -> dict[str, ScenarioResult]:
    """Run (once) the scenarios ``requirement_id`` reads; skip the test, not judged, when one could not run."""
    if session.target.flow not in requirement(requirement_id).applies_to:
        return {}
    harness: Harness = request.getfixturevalue("rfcheck_harness")
    read = scenarios_read(CHECKS[requirement_id], harness.scenarios, session.selected_scenarios)
    results = {name: harness.scenario(name) for name in read}
    broken = [r for r in results.values() if r.outcome == "error"]
    if broken:
        reason = f"not judged: the target could not be started or driven ({broken[0].reason})"
        finding = Finding(requirement_id, "skip", _first_line(reason), judged=False)
        session.record(finding)
        _record_properties(request.node, finding, session)
        # once, in the readiness summary, with the app's own error; the run fails (RfcheckSession)
        _skip("not judged: the target could not be driven (see the rfcheck readiness summary)")
    return results


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _judge(request: pytest.FixtureRequest, session: RfcheckSession, requirement_id: str) -> Finding:
    entry = requirement(requirement_id)
    if session.target.flow not in entry.applies_to:
        return inapplicable(requirement_id, f"does not apply to the {session.target.flow} flow")
    check = CHECKS[requirement_id]
    harness: Harness = request.getfixturevalue("rfcheck_harness")
    finding = check.function(harness.check_context(_scenarios_for(request, session, requirement_id)))
    if reads_every_scenario(check) and session.selected_scenarios is not None:
        read = scenarios_read(check, harness.scenarios, session.selected_scenarios)
        finding = dataclasses.replace(finding, reason=f"{finding.reason} (judged on the scenarios this selection ran: "
                                      f"{', '.join(read)}; a whole run reads all {len(harness.scenarios)})")
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


def _act(finding: Finding, node: pytest.Item, session: RfcheckSession) -> None:
    _record_properties(node, finding, session)
    message = _message(finding)
    if finding.status == "fail":
        pytest.fail(message, pytrace=False)
    elif finding.status == "warn":
        warn_at_config(message, session.target)
    elif finding.status in ("skip", "manual"):
        _skip(message)


def _skip(message: str) -> None:
    """A skip shown at the requirement's test (``-rs``, JUnit), not at the line of rfcheck that decided it."""
    raise pytest.skip.Exception(message, _use_item_location=True)


def _record_properties(node: pytest.Item, finding: Finding, session: RfcheckSession) -> None:
    """The requirement's outcome in rfcheck's terms, for CI tools (JUnit XML ``<properties>``): pytest's
    own outcomes say only passed, failed or skipped, so a warn passes and a manual requirement skips."""
    entry = requirement(finding.id)
    harness = session.harness
    read = (scenarios_read(CHECKS[finding.id], harness.scenarios, session.selected_scenarios)
            if harness is not None and finding.id in CHECKS and session.target.flow in entry.applies_to else [])
    node.user_properties += [
        ("rfcheck.id", finding.id),
        ("rfcheck.level", finding.level or entry.level),
        ("rfcheck.status", finding.status if finding.judged else "not judged"),
        ("rfcheck.evidence", len(finding.evidence)),
        ("rfcheck.reason", finding.reason),
        ("rfcheck.scenarios", ", ".join(read)),
    ]


SUITE = builtin_folder()


def _import_root(package: Path) -> Path:
    """The folder a package is imported from: the first one up that is no package itself."""
    while (package / "__init__.py").is_file():
        package = package.parent
    return package


IMPORT_ROOT = _import_root(SUITE)  # the source checkout, or site-packages for an installed rfcheck


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """A suite outside the rootdir (rfcheck installed, or a checkout beside the integration) keeps its file in
    its test IDs: ``scenarios/test_flow.py::test_FLOW_02`` (``rfcheck/_scenarios/...`` when installed), where
    pytest would show ``::test_FLOW_02``; the JUnit classname follows from it."""
    if module_path.parent != SUITE or module_path.name == "__init__.py":
        return None
    if module_path.is_relative_to(parent.config.rootpath):
        return None  # pytest's own ID, relative to the rootdir, names the file
    return pytest.Module.from_parent(parent, path=module_path, nodeid=module_path.relative_to(IMPORT_ROOT).as_posix())


def pytest_itemcollected(item: pytest.Item) -> None:
    """``-k SEC-01``, the ID as written, selects that requirement."""
    rid = requirement_of(item)
    if rid is not None and SUITE in Path(item.path).parents:
        item.extra_keyword_matches.add(rid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Before the first requirement: run every scenario the selected requirements read, outside any test's
    phases, so that each requirement's time (JUnit XML, ``--durations``) is its own judgement, not the whole
    run's; what the scenarios print still goes to pytest's capture, in the first requirement's setup."""
    from rfcheck.options import session_key

    session = item.config.stash.get(session_key, None)
    if session is not None and session.scenario_seconds is None and _judges_a_requirement(item) \
            and not getattr(item.config.option, "setupplan", False):
        began = seconds_since_boot()
        try:
            with _captured_for(item):
                _run_selected_scenarios(item.session, session)
        finally:
            session.scenario_seconds = seconds_since_boot() - began
    return (yield)


def _judges_a_requirement(item: pytest.Item) -> bool:
    return SUITE in Path(item.path).parents and requirement_of(item) is not None


def _run_selected_scenarios(pytest_session: pytest.Session, session: RfcheckSession) -> None:
    try:
        harness = session.start_harness(_python_factory(pytest_session, session))
        names = _scenarios_selected(pytest_session.items, session)
        if harness.jobs > 1:
            _side_by_side(harness, names)
        else:
            _one_at_a_time(harness, names)
    except Exception:  # a bug of rfcheck's, or a mock that cannot start: raised again where pytest shows it, in
        return  # the setup of the requirement that needs it (the harness keeps a scenario's exception)


def _side_by_side(harness: Harness, names: list[str]) -> None:
    harness.prefetch(names)
    for name in names:
        harness.scenario(name)
    harness.report_progress()  # the last scenario's line, before the first requirement's


def _one_at_a_time(harness: Harness, names: list[str]) -> None:
    """The baseline first (a target it cannot drive is not tried again), then the rest, each started once the
    one before has ended and its progress line is written: writing one suspends and resumes pytest's capture,
    which puts its own ``sys.stdout`` back over an in-process target's, whose output SEC-03 reads."""
    for name in sorted(names, key=lambda name: name != "baseline"):
        harness.prefetch([name])  # in the harness's thread: a Ctrl-C here leaves it in the report, under way
        harness.scenario(name)
        harness.report_progress()


@contextlib.contextmanager
def _captured_for(item: pytest.Item) -> Iterator[None]:
    """pytest's capture on while the scenarios run, their output kept as the first requirement's setup output
    (where a session fixture's would be); progress lines pass it, as they do in a test."""
    capture = item.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        yield
        return
    capture.resume_global_capture()
    try:
        yield
    finally:
        capture.suspend_global_capture(in_=False)
        out, err = capture.read_global_capture()
        for key, content in (("stdout", out), ("stderr", err)):
            if content:
                item.add_report_section("setup", key, content)


Explorer = Callable[[], Explored]


@pytest.fixture
def rfcheck_explore(request: pytest.FixtureRequest) -> Explorer:
    """``rfcheck_explore()``: the exploration (``--rfcheck-explore=N``); a ``must`` requirement it
    breaks fails the test, a ``should`` one warns, each with the shortest sequence found."""
    session = _session(request)

    def explore() -> Explored:
        from rfcheck.options import exploration_options

        examples, seconds, seed_value = exploration_options(request.config)
        if not examples:
            pytest.skip("no exploration was asked for (--rfcheck-explore=N)")
        seed_value = seed_value if seed_value is not None else random.randrange(2 ** 32)
        harness: Harness = request.getfixturevalue("rfcheck_harness")
        explored = Exploration(harness, examples, seconds, seed_value, session.progress).run()
        session.explored = explored
        for note in explored.notes:
            harness.note(note)
        _record_exploration(request.node, explored)
        musts = [f for f in explored.findings.values() if (f.finding.level or requirement(f.finding.id).level) == "must"]
        for found in explored.findings.values():
            if found not in musts:
                warn_at_config(_explored_message(found), session.target)
        if musts:
            pytest.fail("\n".join(_explored_message(found) for found in musts), pytrace=False)
        return explored

    return explore


def _record_exploration(node: pytest.Item, explored: Explored) -> None:
    """What the exploration did, for CI tools (JUnit XML ``<properties>``), as a requirement's outcome is."""
    node.user_properties += [
        ("rfcheck.explored.sequences", explored.examples),
        ("rfcheck.explored.replays", explored.replays),
        ("rfcheck.explored.seed", explored.seed),
        ("rfcheck.explored.findings", ", ".join(explored.findings)),
    ]


def _explored_message(found: ExploredFinding) -> str:
    return (f"{_message(found.finding)}\n  shortest sequence: {' -> '.join(found.steps)}\n"
            f"  replay file: {found.file_name}, written beside the reports (the rfcheck readiness summary names "
            f"its path); list it in [target] scenarios to replay it. It holds:\n"
            + "\n".join(f"    {line}" for line in found.scenario.splitlines()))
