"""rfcheck's pytest options as the plugin and the fixtures read them (command line first, then the ini
file), and where the run's session is kept on pytest's config; a module of its own, so that neither the
plugin nor the fixtures it loads import the other."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from rfcheck.run import RfcheckSession

session_key = pytest.StashKey[RfcheckSession]()


def sequence_count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of sequences, not {text!r}")
    return int(text)


def job_count(text: str) -> int:
    from rfcheck.config import MAX_JOBS

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
