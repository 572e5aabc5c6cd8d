"""``rfcheck check [TARGET] [-- PYTEST ARGS]``: the readiness run, ``pytest --rfcheck``, for a target."""

from __future__ import annotations

import argparse

from rfcheck.cli import run_pytest


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
    return run_pytest(arguments + list(args.pytest_args))
