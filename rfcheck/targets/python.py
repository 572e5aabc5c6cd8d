"""In-process Python targets: a factory called per scenario, its clock moved with freezegun."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Callable


from rfcheck import Environment, Target
from rfcheck.provider.clock import Clock
from rfcheck.targets.base import DriverError, StepFailed
from rfcheck.targets.output import Known, Output
from rfcheck.testing import following

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


class PythonDriver:
    """Drives a :class:`rfcheck.Target` made by ``factory`` inside the pytest process."""

    can_move_clock = True
    clock_note = ""
    runtime_note = ("instrumentation: in-process: httpx calls to Request Finance served by the mock (respx), "
                    "clock moved by freezegun")

    def __init__(self, factory: Factory, redact: Callable[[str], str] = lambda text: text,
                 known: Known | None = None) -> None:
        self._redact = redact
        self._factory = factory
        self._target: Target | None = None
        self._stack = contextlib.ExitStack()
        self._logs = _Capture(Output(known))
        self._printed = Output(known)

    def start(self, env: Environment, clock: Clock) -> None:
        self._follow(clock)
        self._capture_output()
        try:
            self._target = self._factory(env)
        except Exception as err:
            self.stop()
            raise DriverError(f"the target factory raised {_describe(err)}") from err

    def _follow(self, clock: Clock) -> None:
        self._stack.enter_context(following(clock))

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
        return str(_step("start_login", self.target.start_login))

    def finish_login(self, callback_url: str) -> None:
        _step("finish_login", lambda: self.target.finish_login(callback_url))

    def exercise(self) -> None:
        _step("exercise", self.target.exercise)

    def health(self) -> None:
        """In-process targets share pytest's process: REL-01 does not apply to them."""
        return None

    def stop(self) -> str:
        close = getattr(self._target, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
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
