"""The interface every kind of target is driven through, whatever its language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rfcheck import Environment
from rfcheck.provider.clock import Clock


class DriverError(Exception):
    """The target could not be set up at all (bad factory, app that never became ready)."""


class StepFailed(Exception):
    """The target refused or failed one step (a login, a unit of work); the run goes on.

    ``kind`` says how, for the checks: ``refused`` (an error the target raised or showed),
    ``bad_authorization_url`` (the login URL the target produced is not the mock's ``/authorize``),
    ``error_status`` (a web app answered its user with ``status`` >= 400), ``login_required``
    (the app sent its user to log in again), ``redirect_loop`` (more redirects than a browser
    follows), ``no_answer`` (a timeout) or ``crashed`` (the process was gone).
    """

    def __init__(self, message: str, kind: str = "refused", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class Driver(Protocol):
    """One target for one scenario: started, logged in, exercised, stopped."""

    @property
    def can_move_clock(self) -> bool:
        """Whether the target's clock follows rfcheck's (for a process target: every process's)."""

    @property
    def clock_note(self) -> str:
        """Why the target's clock cannot be moved, when it cannot ("" otherwise)."""

    @property
    def runtime_note(self) -> str:
        """The scenario's note on how each of the target's runtimes was instrumented."""

    def start(self, env: Environment, clock: Clock) -> None:
        """Create or start the target; its clock follows ``clock`` from now on, if it can."""

    def start_login(self) -> str:
        """The authorization URL the target sends its user to."""

    def finish_login(self, callback_url: str) -> None:
        """Deliver the user's return to the redirect URI; raises :class:`StepFailed` when refused."""

    def exercise(self) -> None:
        """One unit of API work; raises :class:`StepFailed` when the target gives up."""

    def stop(self) -> str:
        """Stop the target; returns what it wrote (logs, stdout, stderr) during the scenario."""

    def health(self) -> Health | None:
        """For a target that runs as a process (REL-01): is it alive and answering? None otherwise."""


@dataclass(frozen=True)
class Health:
    """One probe of a process target: ``alive`` means running and answering its ``ready`` URL.

    ``detail`` says what was seen (``exited with status 1``, ``no answer from GET /``);
    ``errors`` are the first error lines of its output and ``tail`` its last lines.
    """

    alive: bool
    detail: str = ""
    errors: str = ""
    tail: str = ""


def cause(err: BaseException) -> str:
    """An HTTP error with what caused it (``RemoteProtocolError: Server disconnected without sending a
    response``), not its class alone."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
