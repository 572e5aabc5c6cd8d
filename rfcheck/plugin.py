"""rfcheck's face in pytest: its options, the ``--rfcheck`` session (target loading, the harness and
environment fixtures, the scenarios run before the first requirement, the requirement judge, the
exploration) and the collection of the catalogue's suite.

Without ``--rfcheck`` the plugin only offers the fixtures of :mod:`rfcheck.mock_fixtures` for an
integration's own tests: no server starts, no requirement is collected, and the session fixtures say
that they need ``--rfcheck``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import inspect
import random
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from rfcheck import Environment, Target
from rfcheck.catalogue import requirement
from rfcheck.checks import CHECKS, inapplicable, reads_every_scenario, scenarios_read, undriven
from rfcheck.checks.groups import load_all
from rfcheck.config import MAX_JOBS, ConfigError, TargetConfig, find_config, load_config, with_network
from rfcheck.explore import Exploration, Explored, ExploredFinding
from rfcheck.facts import NETWORKS
from rfcheck.harness import Harness
from rfcheck.observed import ScenarioResult
from rfcheck.provider.clock import seconds_since_boot
from rfcheck.provider.keys import POOL
from rfcheck.report.model import Finding
from rfcheck.run import RfcheckSession, requirement_message as _message, warn_at_config
from rfcheck.steps import SCENARIOS, builtin_folder, own_scenarios
from rfcheck.targets.python import load_factory

SUITE = builtin_folder()  # the requirement suites beside the scenario files
session_key = pytest.StashKey[RfcheckSession]()  # the run's session, on pytest's config under --rfcheck


# -- options: the command line first, then the ini file -------------------------------------------------

def sequence_count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of sequences, not {text!r}")
    return int(text)


def job_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected a number of scenarios from 1 to {MAX_JOBS}, not {text!r}")
    return int(text)


def jobs_option(config: pytest.Config) -> int | None:
    """``--rfcheck-jobs`` (or ``rfcheck_jobs``); None: the default for the target."""
    value = option(config, "jobs")
    if value in (None, ""):
        return None
    try:
        return job_count(str(value).strip())
    except argparse.ArgumentTypeError as err:
        raise pytest.UsageError(f"rfcheck_jobs = {value!r}: {err}") from None


def exploration_options(config: pytest.Config) -> tuple[int, float, int | None]:
    """``--rfcheck-explore``, ``--rfcheck-explore-time`` and ``--rfcheck-seed`` (or their ini keys)."""
    def number(name: str, kind: type) -> Any:
        value = option(config, name)
        try:
            return kind(value) if value not in (None, "") else None
        except ValueError:
            raise pytest.UsageError(f"rfcheck_{name} = {value!r}: expected a number") from None

    from rfcheck.explore import DEFAULT_SECONDS  # hypothesis is imported only when exploring

    return number("explore", int) or 0, number("explore_time", float) or DEFAULT_SECONDS, number("seed", int)


def option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"rfcheck_{name}" if name else "rfcheck")
    return value if value not in (None, "") else config.getini(f"rfcheck_{name}" if name else "rfcheck")


# -- the session: configured, collected, closed -----------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rfcheck", "Request Finance Going Live checks")
    group.addoption("--rfcheck", action="store_true", default=None,
                    help="run the Going Live catalogue against the target and write the readiness report")
    group.addoption("--rfcheck-target", metavar="PATH",
                    help="folder holding rfcheck.toml or [tool.rfcheck] in pyproject.toml, or that file")
    group.addoption("--rfcheck-report", metavar="DIR", help="where reports go (default: reports/ under the rootdir)")
    group.addoption("--rfcheck-network", choices=NETWORKS,
                    help="override the target's network for this run")
    group.addoption("--rfcheck-explore", metavar="N", type=sequence_count,
                    help="after the catalogue, let hypothesis explore up to N sequences of Request Finance "
                         "behaviours for one that breaks a requirement")
    group.addoption("--rfcheck-explore-time", metavar="SECONDS", type=float,
                    help="the exploration's time budget (default: 120)")
    group.addoption("--rfcheck-seed", metavar="N", type=int, help="the exploration's seed (default: a random one, "
                                                                    "printed in the report)")
    group.addoption("--rfcheck-jobs", metavar="N", type=job_count,
                    help="scenarios run at once, each against its own instance of the target (default: twice the "
                         "cores, at most 8 and at most [target] jobs; 1 for targets that cannot run twice at once)")
    parser.addini("rfcheck", "run the Going Live catalogue (as --rfcheck)", type="bool", default=False)
    parser.addini("rfcheck_explore", "default for --rfcheck-explore", default="")
    parser.addini("rfcheck_explore_time", "default for --rfcheck-explore-time", default="")
    parser.addini("rfcheck_seed", "default for --rfcheck-seed", default="")
    parser.addini("rfcheck_target", "default for --rfcheck-target", default="")
    parser.addini("rfcheck_report", "default for --rfcheck-report", default="")
    parser.addini("rfcheck_network", "default for --rfcheck-network", default="")
    parser.addini("rfcheck_jobs", "default for --rfcheck-jobs", default="")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rfcheck_requirement(id): a Going Live requirement judged by rfcheck")
    config.pluginmanager.import_plugin("rfcheck.mock_fixtures")  # for the integration's own tests, always
    if not option(config, "") or hasattr(config, "workerinput"):
        return
    _run_in_one_process(config)
    _stop_cleanly_on_sigterm(config)
    config.add_cleanup(_unfreeze_start_up)  # before pytest's own cleanups: runs after their collector passes
    target = _load_target(config)
    POOL.fill()  # the run's first signing key (~50 ms, outside the GIL), made while pytest collects
    report_dir = Path(option(config, "report") or config.rootpath / "reports")
    session = RfcheckSession(target, report_dir if report_dir.is_absolute() else config.rootpath / report_dir)
    config.stash[session_key] = session
    session.progress = lambda line: _write_line(config, line)
    session.jobs = jobs_option(config)
    config.pluginmanager.register(session, "rfcheck-session")
    load_all()  # the checks, registered before the suite asks for them
    _collect_suite(config)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    if session_key in session.config.stash:
        _freeze_start_up()


_frozen = False  # this run took its start-up objects out of the collector's passes (_freeze_start_up)


def _freeze_start_up() -> None:
    """The objects made before the session starts (modules, classes, functions, plugins: some 75,000, alive
    until the process ends) are left out of the garbage collector's passes while the run goes on: a full pass
    over them costs 15-60 ms, and a run makes several (those its allocations trigger, and the five pytest makes
    at its end for unraisable exceptions). The start-up's young garbage is collected first; what the session
    makes is collected as before."""
    global _frozen
    gc.collect(1)
    gc.freeze()
    _frozen = True


def _unfreeze_start_up() -> None:
    """The start-up objects go back to the collector: a run inside another process (pytester's) leaves the
    collector as it found it."""
    global _frozen
    if _frozen:
        gc.unfreeze()
        _frozen = False


def _stop_cleanly_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (what CI sends a cancelled job) ends the run as Ctrl-C does: the target's processes are
    stopped, the temporary folders (the run CA's key among them) removed, an incomplete report written."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"rfcheck: stopped by signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


def _write_line(config: pytest.Config, line: str) -> None:
    """A line to the terminal while a test runs (past pytest's output capture, as live logging does)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.ensure_newline()
        reporter.write_line(line)


def _run_in_one_process(config: pytest.Config) -> None:
    """Scenarios are shared by many requirements and drive one target: no pytest-xdist workers."""
    workers = getattr(config.option, "numprocesses", None)
    if workers:
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"rfcheck: -n {workers} is ignored under --rfcheck: the requirements share the scenarios, which "
            "drive one target, so the run stays in this process"), stacklevel=2)
        config.option.numprocesses = None
        config.option.dist = "no"
        config.option.tx = []


def _load_target(config: pytest.Config) -> TargetConfig:
    try:
        target = load_config(find_config(_absolute(config, option(config, "target")), Path(config.invocation_params.dir)))
        own_scenarios(target)  # the integration's scenario files, checked before anything starts
        network = option(config, "network")
        return with_network(target, network) if network else target
    except ConfigError as err:
        raise pytest.UsageError(f"rfcheck: {err}") from None


def _absolute(config: pytest.Config, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else Path(config.invocation_params.dir) / path


def _collect_suite(config: pytest.Config) -> None:
    """Collect the catalogue; alone when no paths were given, beside them otherwise."""
    # the suites by name (pytest drops a file given beside its own folder), the exploration last
    suite = [str(path) for path in sorted(SUITE.glob("test_*.py"))]
    suite += [str(SUITE / "explore.py")] if exploration_options(config)[0] else []
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args.extend(suite)
    else:
        config.args[:] = suite


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(session_key, None)
    if session is not None:
        session.close()


# -- the fixtures and hooks of a --rfcheck session ------------------------------------------------------

def _session(request: pytest.FixtureRequest) -> RfcheckSession:
    session = request.config.stash.get(session_key, None)
    if session is None:
        pytest.fail(f"rfcheck: the {request.fixturename} fixture belongs to a --rfcheck run (or rfcheck = true "
                    "in the ini file); an integration's own tests use rfcheck_provider or rfcheck_server",
                    pytrace=False)
    return session


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
