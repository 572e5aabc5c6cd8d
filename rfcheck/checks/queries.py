"""Questions checks ask of a scenario's exchanges, named for what they find."""

from __future__ import annotations

from collections.abc import Iterable

from rfcheck.journal import Exchange
from rfcheck.observed import ACTIVE_EVERY, CLOCK_STILL, DAY, Event, ScenarioResult


def by_target(exchange: Exchange) -> bool:
    """Whether the app sent this request: from its own code, or from its page's scripts in the user's browser
    (``from_page``: judged as the app's, and named as made from the browser)."""
    return exchange.origin == "target" or bool(exchange.facts.get("from_page"))


def sent_by_target(result: ScenarioResult) -> list[Exchange]:
    return [e for e in result.exchanges if by_target(e)]


def api_calls(result: ScenarioResult) -> list[Exchange]:
    """Every request the target made to the API host."""
    return [e for e in sent_by_target(result) if e.host == "api"]


def token_requests(result: ScenarioResult, *grants: str) -> list[Exchange]:
    """Requests to ``/oauth/token`` (of the given grant types, or all)."""
    return token_requests_in(result.exchanges, *grants)


def authorize_requests(result: ScenarioResult) -> list[Exchange]:
    """Authorization requests, as the browser carried them to ``/authorize``."""
    return [e for e in result.exchanges if e.host == "auth" and e.path.rstrip("/") == "/authorize"]


def successful(exchanges: Iterable[Exchange]) -> list[Exchange]:
    return [e for e in exchanges if 200 <= e.status < 300]


def with_token_status(exchanges: Iterable[Exchange], *statuses: str) -> list[Exchange]:
    return [e for e in exchanges if e.facts.get("token_status") in statuses]


def issued_access_jti(exchange: Exchange) -> str | None:
    issued = exchange.facts.get("issued") or {}
    return issued.get("access_jti")


def completed(results: Iterable[ScenarioResult]) -> list[ScenarioResult]:
    return [r for r in results if r.completed]


def names(results: Iterable[ScenarioResult]) -> str:
    return ", ".join(r.name for r in results) or "(none)"


def id_token_accepted(result: ScenarioResult, login: Event) -> bool:
    """Whether the target accepted the login's ID token: the login completed, or its code was exchanged
    and the target went on to call the API (what then went wrong is another requirement's business)."""
    if login.ok:
        return True
    during = [e for e in result.exchanges if login.first < e.n <= login.last]
    exchanged = successful(token_requests_in(during, "authorization_code"))
    return bool(exchanged) and any(e.host == "api" and by_target(e) and e.n > exchanged[0].n for e in during)


def token_requests_in(exchanges: Iterable[Exchange], *grants: str) -> list[Exchange]:
    """The target's requests to ``/oauth/token`` among ``exchanges`` (of the given grant types, or all)."""
    found = [e for e in exchanges if by_target(e) and e.host == "auth"
             and e.path.rstrip("/") == "/oauth/token"]
    return [e for e in found if not grants or e.facts.get("grant_type") in grants]


def describe_failure(event: Event) -> str:
    """What the target did when a step failed, in words that stay the same from run to run (the caller
    redacts: an exception's message is the target's own text)."""
    if event.failure == "error_status":
        return f"the app answered its user with {event.status}"
    how = {"login_required": "the app sent the user to log in again", "crashed": "the process had gone down",
           "no_answer": "the app did not answer"}.get(event.failure)
    if how and ": its cookie " in event.detail:  # the session ended by its own cookie's lifetime
        how += event.detail[event.detail.index(": its cookie "):].splitlines()[0]
    lines = event.detail.strip().splitlines()
    return how or (lines[0][:200] if lines else "the target raised an error")


def expiry_travel(result: ScenarioResult) -> Event | None:
    """The travel that took the scenario past the 24 h lifetime of the token its last login got (with an
    active user, the last of several shorter travels); None when no travel went that far."""
    issued = 0.0
    for event in result.events:
        if event.kind == "login" and event.ok:
            issued = event.offset
        elif event.kind == "travel" and event.offset - issued >= DAY:
            return event
    return None


def renewal_due(result: ScenarioResult, travel: Event) -> int:
    """The journal position from which renewing the token before ``travel`` is a proactive renewal (its
    last :data:`ACTIVE_EVERY`), not a needless one."""
    issued = max((e.offset for e in result.events if e.kind == "login" and e.ok and e.first < travel.first),
                 default=0.0)
    due = [e.first for e in result.events if e.first <= travel.first and e.offset >= issued + DAY - ACTIVE_EVERY]
    return min(due, default=travel.first)


def clock_stood_still(result: ScenarioResult) -> str | None:
    """Why the target's clock did not travel with rfcheck's in this scenario (None when it did, or when
    the scenario never travelled): the target then believes its tokens younger than they are."""
    if not any(e.detail == CLOCK_STILL for e in result.events_of("travel")):
        return None
    named = [note.split(": ", 1)[1] for note in result.run_notes if note.startswith("the target's clock cannot")]
    return "the target's clock could not be moved (" + ("; ".join(named) or "no clock mover reached it") + ")"
