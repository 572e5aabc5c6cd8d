"""pytest glue: options, target loading, the scenario fixtures, the requirement judge, reports.

Without ``--rfcheck`` the plugin only offers the fixtures of :mod:`rfcheck.mock_fixtures` for an
integration's own tests; no server starts and no requirement is collected.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from rfcheck.config import ConfigError, TargetConfig, find_config, load_config, with_network
from rfcheck.facts import NETWORKS
from rfcheck.options import exploration_options, job_count, jobs_option, option, sequence_count, session_key
from rfcheck.run import RfcheckSession
from rfcheck.steps import builtin_folder, own_scenarios

SUITE = builtin_folder()  # the requirement suites beside the scenario files


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
    target = _load_target(config)
    report_dir = Path(option(config, "report") or config.rootpath / "reports")
    session = RfcheckSession(target, report_dir if report_dir.is_absolute() else config.rootpath / report_dir)
    config.stash[session_key] = session
    session.progress = lambda line: _write_line(config, line)
    session.jobs = jobs_option(config)
    config.pluginmanager.register(session, "rfcheck-session")
    config.pluginmanager.import_plugin("rfcheck.fixtures")
    _collect_suite(config)


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
