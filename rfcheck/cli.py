"""``rfcheck``, the command: the same engine as the pytest plugin, for work outside a test run.

Subcommands (each with ``--help``):

- ``rfcheck serve``: the mock Request Finance on loopback, for an app under development;
- ``rfcheck init``: a commented ``rfcheck.toml`` for the project in a folder;
- ``rfcheck report``: render a JSON report again, or compare two runs.

The readiness run itself is ``pytest --rfcheck`` (``rfcheck check`` runs it for you).

Exit status: 0 success; 1 a regression (``report --compare``) or a failed run; 2 bad usage
(argparse's own); 3 an input rfcheck cannot use (a missing or malformed file, a taken port),
always with a message naming it; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import rfcheck
from rfcheck.commands import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError

# subcommand -> module in rfcheck.commands with add_arguments(parser) and run(args) -> int
COMMANDS = {
    "serve": "the mock Request Finance on loopback, for an app under development",
    "init": "write a commented rfcheck.toml for the project in a folder",
    "report": "render a JSON report as Markdown and HTML again, or compare two runs",
    "check": "run the readiness check (pytest --rfcheck) on a target",
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="rfcheck", description="Going Live readiness checks for Request Finance integrations.",
        epilog="The readiness run is also `pytest --rfcheck`. Exit status: 0 ok, 1 failed or regressed, "
               "2 bad usage, 3 unusable input, 130 interrupted.")
    top.add_argument("--version", action="version", version=f"rfcheck {rfcheck.__version__}")
    subparsers = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        _module(name).add_arguments(sub)
    return top


def _module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"rfcheck.commands.{name}")


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # after "--": arguments for pytest, as they are (rfcheck check ... -- -k TOKEN)
    passed = words[words.index("--") + 1:] if "--" in words else []
    args = parser().parse_args(words[:words.index("--")] if "--" in words else words)
    args.pytest_args = passed
    if args.command is None:
        parser().print_help()
        return EXIT_USAGE
    try:
        return int(_module(args.command).run(args))
    except UsageError as err:
        print(f"rfcheck {args.command}: {err}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(f"rfcheck {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rfcheck report --compare ... | head`
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
