"""The Going Live catalogue as pytest tests, made from the catalogue itself.

Each suite file of the built-in folder (``scenarios/test_net.py``) holds the tests of one catalogue group:
:func:`requirement_tests` makes one test per requirement of the group, in catalogue order, named from its
ID (``test_NET_01`` judges NET-01), so that ``-k NET_01`` and the test IDs stay what users type, and a
requirement added to the catalogue is collected without touching a suite file. Each test asks the
``rfcheck_judge`` fixture (:mod:`rfcheck.plugin`) for its verdict.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rfcheck.catalogue import CATALOGUE, Requirement

PREFIX = "test_"


def test_name(requirement_id: str) -> str:
    """``NET-01`` -> ``test_NET_01``."""
    return PREFIX + requirement_id.replace("-", "_")


def requirement_tests(suite_file: str) -> dict[str, Callable[..., None]]:
    """The tests of the group a suite file is named for (``test_token.py``: TOKEN), as module globals;
    each reports the line that made it as its location."""
    group = Path(suite_file).stem[len(PREFIX):].upper()
    members = [r for r in CATALOGUE if r.group == group]
    if not members:
        groups = ", ".join(dict.fromkeys(r.group for r in CATALOGUE))
        raise ValueError(f"{suite_file}: no requirement of a group {group!r} in the catalogue (groups: {groups})")
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    line, module = (caller.f_lineno, caller.f_globals.get("__name__", "")) if caller is not None else (1, "")
    return {test_name(r.id): _test_of(r, suite_file, line, module) for r in members}


def _test_of(req: Requirement, suite_file: str, line: int, module: str) -> Callable[..., None]:
    def judged(rfcheck_judge: Callable[[str], Any]) -> None:
        rfcheck_judge(req.id)

    name = test_name(req.id)
    judged.__name__ = judged.__qualname__ = name
    judged.__module__ = module
    judged.__doc__ = f"{req.id} ({req.level}): {req.title}"
    # pytest locates a test by its code (a skip's location, a failure's file): the suite file's line
    code = judged.__code__.replace(co_filename=suite_file, co_firstlineno=line, co_name=name)
    judged.__code__ = code.replace(co_qualname=name) if sys.version_info >= (3, 11) else code
    return judged
