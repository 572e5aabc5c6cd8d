"""Temporary files and folders of a run, named so that the next run can sweep what a killed one left.

A run keeps tokens, its CA's private key and the target's state in temporary folders and removes them
when it ends. A run killed outright (SIGKILL, the OOM killer) cannot: every such name carries the
pid of the run that made it (``rfcheck-state-4242-…``), and :func:`sweep` removes those whose run is
gone. A pid that runs again (another program) keeps its entries: never remove what may be in use.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_NAME = re.compile(r"^rfcheck-[a-z]+-(\d+)-")


def folder(kind: str, parent: str | None = None) -> str:
    """A new private folder for ``kind`` (``state``, ``ca``, ``runtime``…) of this run."""
    return tempfile.mkdtemp(prefix=f"rfcheck-{kind}-{os.getpid()}-", dir=parent)


def file(kind: str) -> tuple[int, str]:
    """A new private file for ``kind`` of this run: (open handle, path), as :func:`tempfile.mkstemp`."""
    return tempfile.mkstemp(prefix=f"rfcheck-{kind}-{os.getpid()}-")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(parents: tuple[str, ...] = ()) -> list[str]:
    """Remove what runs that are gone left in the temporary folders; the names removed."""
    removed = []
    for parent in dict.fromkeys(parents or (tempfile.gettempdir(), "/tmp")):
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            match = _NAME.match(entry.name)
            if match is None or int(match.group(1)) == os.getpid() or _running(int(match.group(1))):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    Path(entry.path).unlink()
            except OSError:
                continue
            removed.append(entry.name)
    return removed
