"""Moving a process's clock with libfaketime, when the machine has it.

The target runs with libfaketime preloaded and reads its offset from a file on
every clock call (``FAKETIME_NO_CACHE=1``), so rewriting the file moves its
clock while it runs. Statically linked programs (Go) are out of its reach. Python processes
leave it at once (rfcheck's ``sitecustomize``: libfaketime 0.9.10 breaks ``time.sleep`` on
Python 3.11+) and follow the clock with time-machine instead (:mod:`rfcheck.runtime`).
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

from rfcheck.provider.clock import Clock

LIBRARY_PATTERNS = ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1",
                    "/usr/local/lib/faketime/libfaketimeMT.so.1")
UNAVAILABLE = ("libfaketime is not installed (Debian: apt-get install faketime), so the clock of a process "
               "that is not Python cannot be moved: only the mock's clock travels for it, and its proactive "
               "refresh is not observable")


def find_library() -> str | None:
    override = os.environ.get("RFCHECK_FAKETIME_LIB")
    if override:
        return override if Path(override).exists() else None
    found = [path for pattern in LIBRARY_PATTERNS for path in glob.glob(pattern)]
    return found[0] if found else None


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
        return {"LD_PRELOAD": self.library, "FAKETIME_TIMESTAMP_FILE": str(self.file), "FAKETIME_NO_CACHE": "1",
                "DONT_FAKE_MONOTONIC": "1"}

    def _write(self, offset: float) -> None:
        # libfaketime reads "+Ns" as an offset from the real time
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(f"+{int(offset)}s\n")
        temporary.replace(self.file)

    def close(self) -> None:
        self._unsubscribe()
        self.file.unlink(missing_ok=True)
