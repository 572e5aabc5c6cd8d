"""In-process Python targets: a factory called per scenario, its clock moved with freezegun, its sleeps
taken on rfcheck's clock (:class:`SimulatedSleeps`)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import logging
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable


from rfcheck import Environment, Target
from rfcheck.provider.clock import Clock, following
from rfcheck.targets.base import DriverError, StepFailed
from rfcheck.targets.output import Known, Output

Factory = Callable[[Environment], Target]


def load_factory(spec: str, root: Path) -> Factory:
    """Import ``module:callable`` with the config's folder on ``sys.path``."""
    module_name, _, attribute = spec.partition(":")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise DriverError(f"[target.python] factory {spec!r}: cannot import {module_name}: "
                          f"{type(err).__name__}: {err}") from err
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise DriverError(f"[target.python] factory {spec!r}: {module_name} has no callable {attribute!r}")
    return factory  # type: ignore[no-any-return]


class _Capture(logging.Handler):
    """Every log record the target emits at its own levels (rfcheck never raises a logger's level)."""

    def __init__(self, kept: Output) -> None:
        super().__init__(logging.NOTSET)
        self.kept = kept

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.kept.write(f"{record.levelname} {record.name}: {record.getMessage()}\n")
        except Exception:  # a target's malformed log call is its own business
            self.kept.write(f"{record.levelname} {record.name}: {record.msg!r}\n")


class _Redacting(logging.Filter):
    """Log records reach pytest (its captured log, live logging, JUnit XML) with tokens redacted."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call stays the integration's own business
            return True
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class _Tee(io.TextIOBase):
    """What the target prints: kept (bounded, searched whole) for SEC-03, passed on redacted (pytest shows it
    on a failure, with -s, or in JUnit XML: never a token or the client secret there)."""

    def __init__(self, inner: Any, sink: Output, redact: Callable[[str], str]) -> None:
        self._inner, self._sink, self._redact = inner, sink, redact

    def write(self, text: str) -> int:
        self._sink.write(text)
        if self._inner:
            self._inner.write(self._redact(text))
        return len(text)

    def flush(self) -> None:
        if self._inner:
            self._inner.flush()


REAL_SLEEPS_ENV = "RFCHECK_REAL_SLEEPS"  # "1": an in-process target's sleeps take real time, as in production
_real_sleep = time.sleep
_real_async_sleep = asyncio.sleep
_local = threading.local()  # .sleeps: the SimulatedSleeps whose target call runs on this thread
_installed = 0
_install_lock = threading.Lock()


class SimulatedSleeps:
    """An in-process target's ``time.sleep`` and ``asyncio.sleep`` advance rfcheck's clock instead of waiting.

    rfcheck owns the clock an in-process target reads (freezegun follows it), so a wait is a travel: a client
    that honours ``Retry-After: 1`` sends its retry one second later on the clock the mock records, as
    when it sleeps for real, without the second of wall-clock time. Only the target's own calls are
    concerned, on the thread that makes them (:meth:`call`): rfcheck's threads, pytest and the mock's own
    waits (a slow token endpoint, which it sleeps through on the target's thread in process) sleep for
    real, and so does every target thread while more than one of its calls is under way (parallel units
    of work), since skipping one thread's wait would hurry the others' real I/O. A thread the target starts
    itself sleeps for real too. Code that took ``sleep`` with ``from time import sleep`` before the
    target started keeps the real one.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._calls = 0  # target calls under way, on every thread
        self.slept = 0.0  # seconds of the target's sleeps taken on rfcheck's clock

    @contextlib.contextmanager
    def installed(self) -> Iterator["SimulatedSleeps"]:
        """While inside, ``time.sleep`` and ``asyncio.sleep`` dispatch on the calling thread (real elsewhere)."""
        _install()
        try:
            yield self
        finally:
            _uninstall()

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """One call of rfcheck's into the target, on the calling thread."""
        previous = getattr(_local, "sleeps", None)
        _local.sleeps = self
        with self._lock:
            self._calls += 1
        try:
            yield
        finally:
            with self._lock:
                self._calls -= 1
            _local.sleeps = previous

    def take(self, seconds: Any, caller: str) -> bool:
        """Whether a sleep of ``seconds`` called from module ``caller`` is taken on rfcheck's clock: then the
        clock has moved by it."""
        if caller == "rfcheck" or caller.startswith("rfcheck."):
            return False
        if not isinstance(seconds, (int, float)):
            return False  # what else the real sleep accepts or refuses, it decides
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds <= 0:
            return False
        with self._lock:
            if self._calls != 1:
                return False
            self.slept += seconds
        self._clock.travel(seconds)
        return True


def _owner() -> SimulatedSleeps | None:
    return getattr(_local, "sleeps", None)


def _caller(depth: int = 2) -> str:
    try:
        return str(sys._getframe(depth).f_globals.get("__name__", ""))
    except ValueError:
        return ""


def _sleep(seconds: Any) -> None:
    owner = _owner()
    if owner is not None and owner.take(seconds, _caller()):
        _real_sleep(0)  # the other threads may run, as they would while this one slept
        return
    _real_sleep(seconds)


async def _async_sleep(delay: Any, result: Any = None) -> Any:
    owner = _owner()
    if owner is not None and owner.take(delay, _caller()):
        delay = 0
    return await _real_async_sleep(delay, result)


_sleep.__name__ = _sleep.__qualname__ = "sleep"
_async_sleep.__name__ = _async_sleep.__qualname__ = "sleep"


def _install() -> None:
    global _installed
    with _install_lock:
        _installed += 1
        if _installed == 1:
            time.sleep = _sleep
            asyncio.sleep = _async_sleep  # type: ignore[assignment]
            asyncio.tasks.sleep = _async_sleep  # type: ignore[assignment]


def _uninstall() -> None:
    global _installed
    with _install_lock:
        _installed -= 1
        if _installed == 0:
            if time.sleep is _sleep:
                time.sleep = _real_sleep
            if asyncio.sleep is _async_sleep:
                asyncio.sleep = _real_async_sleep
            if asyncio.tasks.sleep is _async_sleep:
                asyncio.tasks.sleep = _real_async_sleep


class PythonDriver:
    """Drives a :class:`rfcheck.Target` made by ``factory`` inside the pytest process."""

    can_move_clock = True
    clock_note = ""

    def __init__(self, factory: Factory, redact: Callable[[str], str] = lambda text: text,
                 known: Known | None = None) -> None:
        self._redact = redact
        self._factory = factory
        self._target: Target | None = None
        self._stack = contextlib.ExitStack()
        self._logs = _Capture(Output(known))
        self._printed = Output(known)
        self._sleeps: SimulatedSleeps | None = None

    @property
    def runtime_note(self) -> str:
        note = ("instrumentation: in-process: httpx calls to Request Finance served by the mock (respx), "
                "clock moved by freezegun")
        if self._sleeps is not None:
            note += "; time.sleep and asyncio.sleep in the target's calls advance rfcheck's clock instead of waiting"
        return note

    def start(self, env: Environment, clock: Clock) -> None:
        self._follow(clock)
        self._capture_output()
        try:
            with self._call():
                self._target = self._factory(env)
        except Exception as err:
            self.stop()
            raise DriverError(f"the target factory raised {_describe(err)}") from err

    def _follow(self, clock: Clock) -> None:
        """The target's clock follows rfcheck's (freezegun), and its waits are taken on it, unless
        ``RFCHECK_REAL_SLEEPS=1`` asks for real ones."""
        self._stack.enter_context(following(clock))
        if os.environ.get(REAL_SLEEPS_ENV, "") != "1":
            self._sleeps = self._stack.enter_context(SimulatedSleeps(clock).installed())

    def _call(self) -> contextlib.AbstractContextManager[None]:
        return self._sleeps.call() if self._sleeps is not None else contextlib.nullcontext()

    def _capture_output(self) -> None:
        root = logging.getLogger()
        # first, so that rfcheck reads each record whole (SEC-03) before the others see it redacted
        root.handlers.insert(0, self._logs)
        self._stack.callback(root.removeHandler, self._logs)
        redacting = _Redacting(self._redact)
        for handler in root.handlers[1:]:  # pytest's log capture, live logging, the integration's own
            handler.addFilter(redacting)
            self._stack.callback(handler.removeFilter, redacting)
        self._stack.enter_context(contextlib.redirect_stdout(_Tee(sys.stdout, self._printed, self._redact)))
        self._stack.enter_context(contextlib.redirect_stderr(_Tee(sys.stderr, self._printed, self._redact)))

    @property
    def target(self) -> Target:
        if self._target is None:
            raise DriverError("the target is not started")
        return self._target

    def start_login(self) -> str:
        with self._call():
            return str(_step("start_login", self.target.start_login))

    def finish_login(self, callback_url: str) -> None:
        with self._call():
            _step("finish_login", lambda: self.target.finish_login(callback_url))

    def exercise(self) -> None:
        with self._call():
            _step("exercise", self.target.exercise)

    def health(self) -> None:
        """In-process targets share pytest's process: REL-01 does not apply to them."""
        return None

    def stop(self) -> str:
        close = getattr(self._target, "close", None)
        if callable(close):
            with contextlib.suppress(Exception), self._call():
                close()
        self._stack.close()
        self._target = None
        self._printed.close()
        return "\n".join(part for part in (self._logs.kept.take(), self._printed.take()) if part).strip()


def _step(name: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as err:
        raise StepFailed(f"{name}() raised {_describe(err)}") from err


def _describe(err: BaseException) -> str:
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(err).__name__}: {err}{where}"
