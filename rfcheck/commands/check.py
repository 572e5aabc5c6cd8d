"""``rfcheck check [TARGET] [-- PYTEST ARGS]``: the readiness run, ``pytest --rfcheck``, for a target."""

from __future__ import annotations

import argparse

from rfcheck.commands import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, run_pytest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", default=None,
                        help="a folder holding rfcheck.toml (or [tool.rfcheck] in pyproject.toml), or the file itself "
                             "(default: the current folder)")
    parser.add_argument("--report", metavar="DIR", help="where the reports go (default: reports/)")
    parser.add_argument("--network", choices=("test", "live"), help="override the target's network for this run")
    parser.epilog = "Arguments after -- go to pytest as they are: rfcheck check . -- -k TOKEN -x"


def run(args: argparse.Namespace) -> int:
    arguments = ["--rfcheck", "-p", "no:cacheprovider"]
    if args.target:
        arguments.append(f"--rfcheck-target={args.target}")
    if args.report:
        arguments.append(f"--rfcheck-report={args.report}")
    if args.network:
        arguments.append(f"--rfcheck-network={args.network}")
    return exit_status(run_pytest(arguments + list(args.pytest_args)))


def exit_status(pytest_status: int) -> int:
    """pytest's exit status in rfcheck's terms (``rfcheck --help``): a usage error of pytest (a missing
    target, a typo in the config: pytest prints which) is an input rfcheck cannot use, 3; an interrupted
    run 130; a run that collected no requirement failed, 1."""
    return {0: EXIT_OK, 1: EXIT_FAILED, 2: EXIT_INTERRUPTED, 3: EXIT_INPUT, 4: EXIT_INPUT,
            5: EXIT_FAILED}.get(pytest_status, EXIT_FAILED)
