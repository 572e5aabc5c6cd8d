"""What the TOKEN checks read of a scenario: its token requests, its steps, and how a renewal went unseen.

Windows, units and retries are read from the scenario's events (``login``, ``unit``,
``travel``, ``fault``) and from the ``step`` and position of each exchange; times come
from the exchanges' ``at``, which the mock's one clock stamps.
"""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.checks.outcome import Outcome, skipped, unjudged
from rfcheck.checks.queries import clock_stood_still, successful, token_requests
from rfcheck.journal import Exchange
from rfcheck.observed import Event, ScenarioResult

MAX_EVIDENCE = 6


# -- reading a scenario ----------------------------------------------------------
def grant_of(exchange: Exchange) -> str | None:
    """The grant type of a token request, also when a 429/5xx answered before it was parsed."""
    return exchange.facts.get("grant_type") or exchange.form.get("grant_type")


def unavailable(exchange: Exchange) -> bool:
    """The token endpoint refused to serve (429 or 5xx): the request never reached a grant."""
    return exchange.status == 429 or exchange.status >= 500


def token_calls(result: ScenarioResult, *grants: str) -> list[Exchange]:
    """The target's requests to ``/oauth/token`` of the given grant types, faulted ones included."""
    return [e for e in token_requests(result) if not grants or grant_of(e) in grants]


def event_of(result: ScenarioResult, exchange: Exchange) -> Event | None:
    """The step an exchange belongs to (by label and journal position; parallel units share a range)."""
    return next((ev for ev in result.events if ev.label == exchange.step and ev.first < exchange.n <= ev.last),
                None)


def first_event(result: ScenarioResult, kind: str, label: str | None = None) -> Event | None:
    return next((ev for ev in result.events if ev.kind == kind and (label is None or ev.label == label)), None)


def units_after(result: ScenarioResult, event: Event) -> list[Event]:
    return [ev for ev in result.events[result.events.index(event) + 1:] if ev.kind == "unit"]


def units_before(result: ScenarioResult, event: Event) -> list[Event]:
    return [ev for ev in result.events[:result.events.index(event)] if ev.kind == "unit"]


def last_exchange(result: ScenarioResult, event: Event) -> Exchange | None:
    during = [e for e in result.during(event) if e.step == event.label]
    return during[-1] if during else None


def no_refresh_token(result: ScenarioResult, then: str = "") -> str | None:
    """Why no refresh can be expected: the logins returned no refresh token (no offline_access)."""
    codes = successful(token_calls(result, "authorization_code"))
    if codes and not any((e.facts.get("issued") or {}).get("refresh_token") for e in codes):
        return "the login returned no refresh token (offline_access was not granted)" + then
    return None


def clock_note(result: ScenarioResult) -> str:
    return f" ({clock_stood_still(result)}: judged on the reactive path)" if clock_stood_still(result) else ""


# -- what several checks say -----------------------------------------------------
def answer(exchange: Exchange) -> str:
    problem = exchange.facts.get("error") or exchange.facts.get("token_status")
    return f"answered {exchange.status}" + (f" {problem}" if problem else "")


def login_redirect(result: ScenarioResult, unit: Event) -> Exchange | None:
    """The app's answer that sent its user to log in during ``unit`` (or the unit's last exchange)."""
    redirects = [e for e in result.during(unit) if e.facts.get("login_redirect")]
    return redirects[-1] if redirects else last_exchange(result, unit)


def lost_to_a_stale_refresh_token(result: ScenarioResult, unit: Event) -> bool:
    """The session ended because the app presented a rotated-out refresh token (TOKEN-03's defect, not the
    outage's): Request Finance then revokes the whole family, and a new login is the only way on."""
    return any(e.facts.get("refresh_status") == "rotated_reused" for e in token_calls(result) if e.n <= unit.last)


def died_on(result: ScenarioResult, check_trigger: Callable[[Exchange], bool]) -> Exchange | None:
    """The error answer the target's process died on, when ``check_trigger`` says it is the one."""
    if result.crash is None or result.crash.trigger is None:
        return None
    trigger = next((e for e in result.exchanges if e.n == result.crash.trigger), None)
    return trigger if trigger is not None and check_trigger(trigger) else None


def unseen(result: ScenarioResult, what: str, refresh: bool = True) -> Outcome:
    """A skip for a renewal the scenario never saw: a refresh does not apply without a refresh token; it
    was not judged when the target's clock stood still (it believed its token young, so never renewed it)."""
    none = no_refresh_token(result) if refresh else None
    if none:
        return skipped(none)
    still = clock_stood_still(result)
    return unjudged(f"{what}: {still}") if still else skipped(what)
