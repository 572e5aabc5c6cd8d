"""The interface every kind of target is driven through, whatever its language."""

from __future__ import annotations

from typing import Protocol

from rfcheck import Environment
from rfcheck.provider.clock import Clock


class DriverError(Exception):
    """The target could not be set up at all (bad factory, app that never became ready)."""


class StepFailed(Exception):
    """The target refused or failed one step (a login, a unit of work); the run goes on."""


class Driver(Protocol):
    """One target for one scenario: started, logged in, exercised, stopped."""

    can_move_clock: bool
    clock_note: str  # why the clock cannot be moved, when a capable machine still could not

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
