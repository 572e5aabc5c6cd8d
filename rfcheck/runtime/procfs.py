"""What /proc says of a target's processes: its process group, and the processes that carry its mark (those
that left the group). Read by the runtime survey and by the drivers that stop a target."""

from __future__ import annotations

from pathlib import Path


def group_pids(pgid: int) -> list[int]:
    """The pids of the process group ``pgid`` that still run (read from /proc; zombies left out)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def marked(mark: str) -> dict[int, str]:
    """pid -> command line of every running process whose environment holds ``mark`` (``NAME=value``)."""
    needle = mark.encode() + b"\0"
    found = {}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle not in environ.read_bytes() + b"\0":
                continue
            pid = int(environ.parent.name)
            if not alive(pid):
                continue
            command = (environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found[pid] = command.strip()[:120] or "?"
        except (OSError, ValueError, IndexError):
            continue
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
