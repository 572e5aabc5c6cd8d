"""The one clock that every time-dependent decision asks.

It reads the operating system's realtime clock through ``clock_gettime``, which
freezegun does not patch, so the mock keeps the true rfcheck time while an
in-process target runs under freezegun. Time travel moves an offset and tells
the listeners (freezegun for in-process targets, libfaketime for processes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable

Listener = Callable[[float], None]


def _realtime() -> float:
    return time.clock_gettime(time.CLOCK_REALTIME)


def seconds_since_boot() -> float:
    """The operating system's monotonic clock, for how long rfcheck's own work takes: freezegun patches
    ``time.monotonic`` while an in-process target runs, not ``clock_gettime``."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class Clock:
    """Real time plus an offset that :meth:`travel` moves forward."""

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    @property
    def offset(self) -> float:
        """Seconds travelled so far."""
        return self._offset

    def now(self) -> float:
        """Seconds since the epoch, as rfcheck sees them."""
        return _realtime() + self._offset

    def datetime(self) -> datetime:
        """:meth:`now` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=timezone.utc)

    def travel(self, seconds: float) -> None:
        """Move the clock forward and tell every listener the new offset."""
        if seconds < 0:
            raise ValueError("the clock only travels forward")
        with self._lock:
            self._offset += seconds
            listeners = list(self._listeners)
        for listener in listeners:
            listener(self._offset)

    def restart(self) -> None:
        """Back to the real time (offset 0), for the next scenario on this clock; listeners are told."""
        with self._lock:
            self._offset = 0.0
            listeners = list(self._listeners)
        for listener in listeners:
            listener(0.0)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(offset)`` after each travel; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)
        return lambda: self._unsubscribe(listener)

    def _unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)


@contextmanager
def following(clock: Clock) -> Iterator[Clock]:
    """While inside, this process's ``time.time()`` and ``datetime.now()`` (freezegun) follow ``clock``:
    each travel moves them too. The mock itself reads the operating system's clock, which freezegun
    leaves alone, so nothing is counted twice."""
    from freezegun import freeze_time  # imported where a process follows the clock: in-process targets, own tests

    with freeze_time(clock.datetime(), tick=True) as frozen:
        unsubscribe = clock.subscribe(lambda _offset: frozen.move_to(clock.datetime()))
        try:
            yield clock
        finally:
            unsubscribe()
