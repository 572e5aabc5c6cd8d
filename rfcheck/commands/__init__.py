"""The subcommands of ``rfcheck`` (see :mod:`rfcheck.cli`): each module has ``add_arguments(parser)``
and ``run(args) -> int``. What they share lives here, so that they never import the command line that
imports them."""

from __future__ import annotations

import subprocess
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """An input the command cannot use; the message names it (exit status 3)."""


def run_pytest(arguments: list[str]) -> int:
    """``pytest`` in this interpreter (for ``rfcheck check``)."""
    return subprocess.call([sys.executable, "-m", "pytest", *arguments])
