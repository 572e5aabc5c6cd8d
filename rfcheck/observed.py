"""What a run observed, as the checks read it: each scenario's steps and exchanges, what its mock
issued, and a frozen view of the run (the config, the client, the secrets rfcheck made).

The engine (:mod:`rfcheck.scenarios`, :mod:`rfcheck.harness`) fills these in; the checks
(:mod:`rfcheck.checks`) read nothing else, so that a check can be tested from a journal alone. This
module imports only the journal and the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rfcheck.journal import Exchange

DAY = 86_400
# an active user (docs/architecture.md): real users are active across the expiry of their token, so a
# travel that reaches it keeps one unit of work at least every 4 h of scenario time
ACTIVE_EVERY = 4 * 3600
CLOCK_STILL = "only the mock's clock moved: the target's clock cannot be moved"  # a travel's detail

# what a secret or token the mock issued is, as checks name it
ACCESS_TOKEN = "access token"
REFRESH_TOKEN = "refresh token"
CLIENT_SECRET = "client secret"
BASIC_CREDENTIALS = "client secret (as Basic credentials)"
API_KEY = "API key"
CODE = "authorization code"


@dataclass(frozen=True)
class Issued:
    """What one mock issued, in the order it issued it: ``(value, kind)`` pairs (kinds above), and the
    clients registered with their redirect URIs."""

    values: tuple[tuple[str, str], ...] = ()
    clients: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def of(self, *kinds: str) -> list[str]:
        return [value for value, kind in self.values if kind in kinds]


@dataclass(frozen=True)
class RunView:
    """The run as a check sees it: the target config (frozen), the client rfcheck registered, every secret
    it made (ID tokens too), what the run's own mock issued, the user's organizations, and the redaction."""

    config: Any  # rfcheck.config.TargetConfig
    client_id: str
    redirect_uris: tuple[str, ...]
    secrets: frozenset[str]
    issued: Issued
    organizations: tuple[str, ...]
    redact: Callable[[str], str]


@dataclass
class Event:
    """One step a scenario took and how the target fared."""

    kind: str  # login | unit | travel | fault | forged_callback
    label: str
    ok: bool
    detail: str = ""
    first: int = 0  # journal position before the step
    last: int = 0  # journal position after it
    failure: str = ""  # how a failed step failed: StepFailed.kind (refused, error_status, login_required…)
    status: int | None = None  # the status a web app answered its user with, when that failed the step
    offset: float = 0.0  # seconds the scenario's clock had travelled (since the scenario began) when the step ended


@dataclass(frozen=True)
class Crash:
    """REL-01: the target's process died or stopped answering after ``after`` (a step's label).

    ``trigger`` is the journal number of what the mock last told the target before it (see
    :func:`last_answer`; None when there was nothing); ``detail`` what the probe saw.
    """

    after: str
    detail: str
    trigger: int | None
    errors: str = ""
    tail: str = ""


@dataclass(frozen=True)
class Probe:
    """One health probe of a process target (REL-01): after which step, and whether it was alive."""

    after: str
    alive: bool
    detail: str
    mark: int  # journal position when it was taken


@dataclass
class ScenarioResult:
    """What one scenario observed: its steps, the exchanges they caused and the target's output."""

    name: str
    outcome: str  # completed | error | not-run
    reason: str = ""
    events: list[Event] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    output: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    probes: list[Probe] = field(default_factory=list)
    crash: Crash | None = None
    notes: list[str] = field(default_factory=list)  # how the target's runtimes were instrumented
    run_notes: list[str] = field(default_factory=list)  # what limits the whole run's judgement (a clock not moved)
    issued: Issued = field(default_factory=lambda: Issued(), repr=False, compare=False)  # what its mock issued
    fault_arguments: dict[str, str] = field(default_factory=dict)  # fault name -> the argument its step gave
    # the scenario's own mock, for the engine's notes (its notices and errors); checks read ``issued``
    provider: Any = field(default=None, repr=False, compare=False)

    def during(self, event: Event) -> list[Exchange]:
        return [e for e in self.exchanges if event.first < e.n <= event.last]

    def events_of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    @property
    def completed(self) -> bool:
        return self.outcome == "completed"


ERROR_HOSTS = ("auth", "api")


def error_answers(exchanges: list[Exchange]) -> list[Exchange]:
    """The mock's error answers to the target (4xx/5xx from Request Finance)."""
    return [e for e in exchanges if e.origin == "target" and e.host in ERROR_HOSTS and e.status >= 400]


def last_answer(exchanges: list[Exchange], since: int) -> Exchange | None:
    """What Request Finance last told the target before it went down: the step's last error answer, else
    the step's last answer of any kind (a refresh whose ID token names another user is a 200), else
    the scenario's last error answer."""
    step = [e for e in exchanges if e.n > since and e.origin == "target" and e.host in ERROR_HOSTS]
    for candidates in (error_answers(step), step, error_answers(exchanges)):
        if candidates:
            return candidates[-1]
    return None
