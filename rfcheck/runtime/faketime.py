"""Moving a process's clock with libfaketime.

The clock mover comes with ``pip install rfcheck``: PyPI's ``libfaketime`` wheel ships a built
``libfaketime.so.1``. ``RFCHECK_FAKETIME_LIB`` names another one; a system libfaketime (Debian's
``faketime``) is used only when the wheel's library cannot load on this machine (another CPU).

The target runs with the library preloaded and reads its offset from a file on every clock call
(``FAKETIME_NO_CACHE=1``), so rewriting the file moves its clock while it runs: the wall clock
and the monotonic one alike (a travel is elapsed time for the target; timers due within it fire,
a sleep begun afterwards is real). Programs that read the clock without asking libc (Go, through
the vDSO; statically linked ones) are out of its reach: :func:`unreachable` tells them. Python
processes leave it at once (rfcheck's ``sitecustomize``: libfaketime 0.9.10 breaks ``time.sleep``
on Python 3.11+) and follow the clock with time-machine instead (:mod:`rfcheck.runtime`).
"""

from __future__ import annotations

import functools
import glob
import importlib.metadata
import importlib.util
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rfcheck import leftovers
from rfcheck.provider.clock import Clock

SYSTEM_PATTERNS = ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1",
                   "/usr/local/lib/faketime/libfaketimeMT.so.1")
UNAVAILABLE = ("no libfaketime could be loaded on this machine (pip install libfaketime, or Debian's faketime "
               "package), so the clock of a process that is not Python cannot be moved")
# ELF e_machine values of the CPUs a wheel's library may be built for
_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183, "i686": 3, "i386": 3, "armv7l": 40}


@dataclass(frozen=True)
class Library:
    """A libfaketime that can be preloaded here, and where it comes from (for the run's notes)."""

    path: str
    origin: str  # "the libfaketime 3.0.1 wheel (PyPI)", "the system's (Debian faketime)", "RFCHECK_FAKETIME_LIB"


def find_library() -> Library | None:
    """The libfaketime to preload: ``RFCHECK_FAKETIME_LIB``, else the wheel's, else the system's."""
    override = os.environ.get("RFCHECK_FAKETIME_LIB")
    if override:
        return Library(override, "RFCHECK_FAKETIME_LIB") if Path(override).exists() else None
    wheel = _wheel_library()
    if wheel is not None:
        return wheel
    found = [path for pattern in SYSTEM_PATTERNS for path in glob.glob(pattern)]
    return Library(found[0], "the system's (Debian faketime)") if found else None


def _wheel_library() -> Library | None:
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    if not path.is_file() or not loads_here(path):
        return None
    try:
        version = importlib.metadata.version("libfaketime")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return Library(str(path), f"the libfaketime {version} wheel (PyPI)")


def loads_here(path: Path) -> bool:
    """Whether the shared library at ``path`` is built for this machine's CPU (the wheel is py3-none-any)."""
    expected = _MACHINES.get(platform.machine().lower())
    try:
        with open(path, "rb") as library:
            header = library.read(20)
    except OSError:
        return False
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return False
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return expected is None or machine == expected


GO_SECTIONS = frozenset({".go.buildinfo", ".note.go.buildid", ".gopclntab"})


@functools.lru_cache(maxsize=256)
def _section_names(device: int, inode: int, path: str) -> frozenset[str]:
    """The names of the ELF sections of the program at ``path`` (empty when it is not ELF)."""
    try:
        with open(path, "rb") as program:
            header = program.read(64)
            if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
                return frozenset()
            order: Literal["little", "big"] = "little" if header[5] == 1 else "big"

            def number(data: bytes, at: int, size: int) -> int:
                return int.from_bytes(data[at:at + size], order)

            table, entry, count, names = number(header, 40, 8), number(header, 58, 2), number(header, 60, 2), \
                number(header, 62, 2)
            if not table or entry < 64 or not 0 < count <= 4096 or names >= count:
                return frozenset()
            program.seek(table)
            sections = program.read(entry * count)
            strings_at, strings_size = number(sections, names * entry + 24, 8), number(sections, names * entry + 32, 8)
            program.seek(strings_at)
            strings = program.read(min(strings_size, 1 << 20))
    except OSError:
        return frozenset()
    found = set()
    for index in range(count):
        start = number(sections, index * entry, 4)
        end = strings.find(b"\0", start)
        if 0 <= start < len(strings) and end > start:
            found.add(strings[start:end].decode("latin-1"))
    return frozenset(found)


def unreachable(executable: str) -> str:
    """Why libfaketime cannot move the clock of the program in ``executable`` ("" when it can)."""
    try:
        status = os.stat(executable)
    except OSError:
        return ""
    if _section_names(status.st_dev, status.st_ino, executable) & GO_SECTIONS:
        return "a Go program reads its clock through the vDSO, which libfaketime cannot reach"
    return ""


class FakeTime:
    """The environment that puts a process on rfcheck's clock, and the file that moves it."""

    def __init__(self, clock: Clock, library: Library) -> None:
        self._clock = clock
        self.library = library
        handle, name = leftovers.file("faketime")
        os.close(handle)
        self.file = Path(name)
        self._write(clock.offset)
        self._unsubscribe = clock.subscribe(self._write)

    def environment(self) -> dict[str, str]:
        # the monotonic clock moves too: cool-downs and session timers measured on it see the time pass
        return {"LD_PRELOAD": self.library.path, "FAKETIME_TIMESTAMP_FILE": str(self.file), "FAKETIME_NO_CACHE": "1"}

    def _write(self, offset: float) -> None:
        # libfaketime reads "+Ns" as an offset from the real time
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(f"+{int(offset)}s\n")
        temporary.replace(self.file)

    def close(self) -> None:
        self._unsubscribe()
        self.file.unlink(missing_ok=True)
