"""The control socket that a target's instrumented processes talk to rfcheck through.

Every process that loads rfcheck's instrumentation (the Python ``sitecustomize``, the Node
preload) connects to a Unix socket in the run's private folder and says hello: its runtime,
its pid and what it could instrument. A process whose clock follows rfcheck's (Python, with
time-machine; Node, with libfaketime mapped into it) is sent the clock's offset at once and
after every travel, and acknowledges each one with the wall clock it now reads:
:meth:`ControlServer.travel` returns only when every such process has moved, or names those
that did not within :data:`TRAVEL_TIMEOUT`, and a process whose clock reads something else than
rfcheck's after a travel is known not to have moved (:attr:`Hello.stuck`). Forked children
(gunicorn workers) move before the processes that started them, so that a supervisor comparing
its clock with its workers' heartbeats never sees them a whole travel behind. Processes also
report the connections they refused (hosts other than Request Finance's, for SEC-04).

The protocol is one JSON object per line:

- process to rfcheck: ``{"hello": {...}}``, ``{"ack": generation, "wall": seconds}``,
  ``{"refused": {"host": ..., "port": ..., "via": ...}}``
- rfcheck to process: ``{"offset": seconds, "generation": n}``
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rfcheck import leftovers

MAX_SOCKET_PATH = 100  # a Unix socket's path is at most 107 bytes on Linux (sun_path)
TRAVEL_TIMEOUT = 5.0  # seconds every clock-following process has to confirm a travel
CLOCK_TOLERANCE = 3.0  # seconds between the wall clock a process acknowledges and rfcheck's
FOLLOWERS = ("time-machine", "libfaketime")
MAX_LINE = 64 * 1024

Refusal = Callable[[str, int, str], None]


@dataclass
class Hello:
    """What one instrumented process said about itself when it started."""

    pid: int
    runtime: str  # python | node
    version: str = ""
    executable: str = ""
    clock: str = ""  # "time-machine" / "libfaketime" when it follows rfcheck's clock; otherwise why not ("" = not its job)
    hosts: str = ""  # how it routes Request Finance's hosts ("resolver", "preload"), "" when it does not
    parent: int = 0  # the pid it was forked from (gunicorn workers), 0 for a fresh interpreter
    index: int = 0  # order of arrival in the run (see ControlServer.hellos_since)
    stuck: str = ""  # set when an acknowledged travel left its clock elsewhere: what it read instead

    @property
    def follows_clock(self) -> bool:
        return self.clock in FOLLOWERS


@dataclass
class _Peer:
    connection: socket.socket
    hello: Hello | None = None
    acked: int = -1
    open: bool = True
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self.send_lock:
            try:
                self.connection.sendall(data)
            except OSError:
                self.open = False


class ControlServer:
    """Listens on ``folder/control.sock`` (mode 0600) for the run's instrumented processes."""

    def __init__(self, folder: Path, offset: float, on_refused: Refusal) -> None:
        self._own_folder: Path | None = None
        if len(str(folder / "control.sock")) > MAX_SOCKET_PATH:  # a long TMPDIR: a short folder of its own
            self._own_folder = Path(leftovers.folder("ctl", "/tmp"))
            folder = self._own_folder
        self.path = str(folder / "control.sock")
        self._on_refused = on_refused
        self._offset = offset
        self._generation = 0
        self._changed = threading.Condition()
        self._peers: list[_Peer] = []
        self._hellos: list[Hello] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        os.chmod(self.path, 0o600)
        self._listener.listen(64)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="rfcheck-control", daemon=True)
        self._thread.start()

    # -- what the processes said -----------------------------------------------------------
    def mark(self) -> int:
        """A position in the hellos; :meth:`hellos_since` returns those that came after it."""
        with self._changed:
            return len(self._hellos)

    def hellos_since(self, mark: int) -> list[Hello]:
        with self._changed:
            return list(self._hellos[mark:])

    # -- the clock ---------------------------------------------------------------------------
    def travel(self, offset: float) -> list[Hello]:
        """Announce ``offset`` and wait until every clock-following process confirmed it.

        Returns the processes that neither confirmed nor went away within :data:`TRAVEL_TIMEOUT`.
        """
        with self._changed:
            self._generation += 1
            self._offset, generation = offset, self._generation
            peers = [p for p in self._peers if p.open and p.hello is not None and p.hello.follows_clock]
        deadline = time.monotonic() + TRAVEL_TIMEOUT
        children = [p for p in peers if p.hello is not None and p.hello.parent]
        late = self._announce(children, offset, generation, deadline)
        return late + self._announce([p for p in peers if p not in children], offset, generation, deadline)

    def _announce(self, peers: list[_Peer], offset: float, generation: int, deadline: float) -> list[Hello]:
        for peer in peers:
            peer.send({"offset": offset, "generation": generation})
        with self._changed:
            while True:
                waiting = [p for p in peers if p.open and p.acked < generation]
                remaining = deadline - time.monotonic()
                if not waiting or remaining <= 0:
                    return [p.hello for p in waiting if p.hello is not None]
                self._changed.wait(remaining)

    # -- connections -------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            peer = _Peer(connection)
            with self._changed:
                self._peers.append(peer)
            threading.Thread(target=self._serve, args=(peer,), name="rfcheck-control-peer", daemon=True).start()

    def _serve(self, peer: _Peer) -> None:
        reader = peer.connection.makefile("rb")
        try:
            for line in reader:
                if len(line) > MAX_LINE:
                    break
                try:
                    message = json.loads(line)
                except ValueError:
                    break  # not one of ours: drop the connection
                if isinstance(message, dict):
                    self._receive(peer, message)
        except OSError:
            pass
        finally:
            with self._changed:
                peer.open = False
                self._peers.remove(peer)
                self._changed.notify_all()
            reader.close()
            peer.connection.close()

    def _receive(self, peer: _Peer, message: dict[str, Any]) -> None:
        if isinstance(message.get("hello"), dict):
            hello = _hello(message["hello"])
            with self._changed:
                hello.index = len(self._hellos)
                self._hellos.append(hello)
                peer.hello = hello
                offset, generation = self._offset, self._generation
            if hello.follows_clock:
                peer.send({"offset": offset, "generation": generation})
        elif isinstance(message.get("ack"), int):
            wall = message.get("wall")
            with self._changed:
                if isinstance(wall, (int, float)) and peer.hello is not None and message["ack"] == self._generation:
                    behind = time.clock_gettime(time.CLOCK_REALTIME) + self._offset - wall  # freezegun-proof
                    if abs(behind) > CLOCK_TOLERANCE:
                        way = "behind" if behind > 0 else "ahead of"
                        size = f"{abs(behind) / 3600:.2f} h" if abs(behind) >= 360 else f"{abs(behind):.0f} s"
                        peer.hello.stuck = f"after a travel its clock read {size} {way} rfcheck's"
                peer.acked = max(peer.acked, message["ack"])
                self._changed.notify_all()
        elif isinstance(message.get("refused"), dict):
            refused = message["refused"]
            host, port = str(refused.get("host", ""))[:255], refused.get("port")
            if host:
                self._on_refused(host, port if isinstance(port, int) else 0, str(refused.get("via", ""))[:40])

    def close(self) -> None:
        self._closed = True
        try:
            try:  # wakes the thread blocked in accept() (closing alone does not, on Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._thread.join(timeout=5)
        finally:
            with self._changed:
                peers = list(self._peers)
            for peer in peers:
                try:
                    peer.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            Path(self.path).unlink(missing_ok=True)
            if self._own_folder is not None:
                shutil.rmtree(self._own_folder, ignore_errors=True)


def _hello(fields: dict[str, Any]) -> Hello:
    def text(name: str, limit: int = 200) -> str:
        value = fields.get(name, "")
        return str(value)[:limit] if value is not None else ""

    def number(name: str) -> int:
        value = fields.get(name)
        return value if isinstance(value, int) else 0

    return Hello(pid=number("pid"), runtime=text("runtime", 20), version=text("version", 40),
                 executable=text("executable"), clock=text("clock"), hosts=text("hosts", 40), parent=number("parent"))
