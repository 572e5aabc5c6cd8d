"""Moving a process's clock with libfaketime, when the machine has it.

The target runs with libfaketime preloaded and reads its offset from a file on
every clock call (``FAKETIME_NO_CACHE=1``), so rewriting the file moves its
clock while it runs. Statically linked programs (Go) are out of its reach.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rfcheck.provider.clock import Clock

LIBRARY_PATTERNS = ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1",
                    "/usr/local/lib/faketime/libfaketimeMT.so.1")
# libfaketime 0.9.10 breaks Python 3.11+'s time.sleep (clock_nanosleep on an unfaked monotonic
# clock fails with EINVAL) and hangs its timed waits when monotonic is faked: a Python target is
# restarted without it, and rfcheck treats its clock as one it cannot move.
PYTHON_NAMES = ("python", "python3", *(f"python3.{minor}" for minor in range(8, 16)))
PYTHON_NOT_MOVED = ("the target runs on Python, whose clock libfaketime cannot move safely (it breaks "
                    "time.sleep on Python 3.11+): only the mock's clock travels for it")
UNAVAILABLE = ("libfaketime is not installed (Debian: apt-get install faketime), so the target's clock "
               "cannot be moved: only the mock's clock travels, and proactive refresh is not observable")


def find_library() -> str | None:
    override = os.environ.get("RFCHECK_FAKETIME_LIB")
    if override:
        return override if Path(override).exists() else None
    found = [path for pattern in LIBRARY_PATTERNS for path in glob.glob(pattern)]
    return found[0] if found else None


def without_faketime(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with libfaketime taken out again (for a Python target, see :data:`PYTHON_NOT_MOVED`)."""
    plain = {k: v for k, v in env.items() if not k.startswith("FAKETIME_") and k != "DONT_FAKE_MONOTONIC"}
    preload = " ".join(p for p in env.get("LD_PRELOAD", "").split() if "faketime" not in p)
    if preload:
        plain["LD_PRELOAD"] = preload
    else:
        plain.pop("LD_PRELOAD", None)
    return plain


class FakeTime:
    """The environment that puts a process on rfcheck's clock, and the file that moves it."""

    def __init__(self, clock: Clock, library: str) -> None:
        self._clock = clock
        self.library = library
        handle, name = tempfile.mkstemp(prefix="rfcheck-faketime-")
        os.close(handle)
        self.file = Path(name)
        self._write(clock.offset)
        self._unsubscribe = clock.subscribe(self._write)

    def environment(self) -> dict[str, str]:
        preload = " ".join(p for p in (self.library, os.environ.get("LD_PRELOAD", "")) if p)
        return {"LD_PRELOAD": preload, "FAKETIME_TIMESTAMP_FILE": str(self.file), "FAKETIME_NO_CACHE": "1",
                "DONT_FAKE_MONOTONIC": "1"}

    def _write(self, offset: float) -> None:
        # libfaketime reads "+Ns" as an offset from the real time
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(f"+{int(offset)}s\n")
        temporary.replace(self.file)

    def close(self) -> None:
        self._unsubscribe()
        self.file.unlink(missing_ok=True)
