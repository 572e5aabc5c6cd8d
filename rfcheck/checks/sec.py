"""SEC: secrets and environments (Going Live; RFC 6750 §5.3, RFC 6819 §5.1.6).

SEC-01 scans the project folder with detect-secrets (:mod:`rfcheck.secrets_scan`);
SEC-02 reads the target config; SEC-03, SEC-04 and SEC-05 look for every secret and token rfcheck
issued: in the target's captured output, in requests to hosts that are not Request Finance, and
in everything a web app sent its user's browser.
"""

from __future__ import annotations

import base64
import binascii
import html
import zlib
from collections.abc import Iterable, Iterator
from urllib.parse import unquote

import httpx

from rfcheck.checks import ALL_SCENARIOS, Context, check
from rfcheck.checks.outcome import Outcome, failed, inapplicable, manual, passed, skipped, unjudged
from rfcheck.checks.queries import completed, names, sent_by_target
from rfcheck.journal import Exchange, redact_value
from rfcheck.report.model import Evidence
from rfcheck.observed import CODE, ScenarioResult
from rfcheck.secrets_scan import ScanError, scan_project

PROJECT_SCAN = "project scan"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_MOST_EVIDENCE = 10


# -- what rfcheck issued, by kind ----------------------------------------------------------
def issued_secrets(ctx: Context) -> dict[str, str]:
    """Every secret and token rfcheck issued in this run, mapped to what it is."""
    kinds = ctx.issued()
    for value in sorted(ctx.view.secrets):
        kinds.setdefault(value, "ID token" if value.startswith("eyJ") else "secret rfcheck issued")
    return kinds


def _found_in(text: str, kinds: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(value, kind) of each issued value that occurs in ``text``."""
    for value, kind in kinds.items():
        if value and value in text:
            yield value, kind


def _excerpt(text: str, value: str, kinds: dict[str, str], width: int = 120) -> str:
    """The line of ``text`` around ``value``, every issued value in it redacted."""
    start = text.find(value)
    end = text.find("\n", start)
    line = text[text.rfind("\n", 0, start) + 1:end if end >= 0 else len(text)]
    for known in sorted((k for k in kinds if k in line), key=len, reverse=True):
        line = line.replace(known, redact_value(known))
    return line if len(line) <= width else line[:width] + "…"


# -- SEC-01 --------------------------------------------------------------------------------
@check("SEC-01")
def no_plaintext_client_secret(ctx: Context) -> Outcome:
    folder = ctx.config.project
    try:
        report = scan_project(folder)
    except ScanError as err:
        return unjudged(f"the project folder could not be scanned: {err}")
    if report.hits:
        evidence = [ctx.evidence(PROJECT_SCAN, None, f"{hit.path}:{hit.line}: client secret "
                                 f"{redact_value(hit.value)} ({hit.found_by})") for hit in report.hits]
        return failed(f"{len(report.hits)} plaintext client secret(s) in {folder}", evidence)
    unread = f"; {len(report.unreadable)} could not be read: {', '.join(report.unreadable[:5])}" \
        if report.unreadable else ""
    ignored = sorted({hit.path for hit in report.ignored_hits})
    local = (f"; not judged, because git ignores them (they do not ship): {', '.join(ignored)}, which hold a "
             "secret-looking value: keep them out of the repository") if ignored else ""
    return passed(f"scanned {report.files} files in {folder} (git-tracked, .env*, config): "
                  f"no plaintext client secret{unread}{local}")


# -- SEC-02 --------------------------------------------------------------------------------
@check("SEC-02")
def separate_apps_per_environment(ctx: Context) -> Outcome:
    test, live = ctx.config.client_id_test, ctx.config.client_id_live
    if test and live:
        if test == live:
            detail = f"client_id_test = client_id_live = {test!r} in {ctx.config.file.name}"
            return failed("TEST/DEV and PRODUCTION use the same client ID, so the same OAuth app",
                          [ctx.evidence("target config", None, detail)])
        return passed("TEST/DEV and PRODUCTION have different client IDs (separate OAuth apps)")
    given = "only client_id_test is" if test else "only client_id_live is" if live else "neither client ID is"
    return manual(f"{given} given in the target config: confirm that PRODUCTION uses an "
                  "OAuth app of a separate Request Finance account, with a client ID different from TEST/DEV, "
                  "or set client_id_test and client_id_live in [target]")


# -- SEC-03 --------------------------------------------------------------------------------
@check("SEC-03", ALL_SCENARIOS)
def no_secret_in_logs(ctx: Context) -> Outcome:
    ran = [r for r in ctx.results.values() if r.outcome != "not-run"]
    if not ran:
        return skipped(f"none of the scenarios ran ({names(ctx.results.values())})")
    # SEC-03 (rfcheck/catalogue.py) names the client secret and the tokens. Authorization codes are
    # left out: single-use, and a web server's access log shows every callback URL.
    kinds = {value: kind for value, kind in issued_secrets(ctx).items() if kind != CODE}
    evidence = [ctx.evidence(r.name, None, f"the {kind} {redact_value(value)} is in the target's output: "
                             f"{_excerpt(r.output, value, kinds)!r}")
                for r in ran for value, kind in _found_in(r.output, kinds)]
    if evidence:
        return failed(f"the target wrote {len(evidence)} secret(s) or token(s) to its logs or output",
                      evidence[:_MOST_EVIDENCE])
    size = sum(len(r.output) for r in ran)
    return passed(f"neither the client secret nor any of the tokens rfcheck issued appears in the "
                  f"target's output ({size} characters captured in {names(ran)}, at its own log levels)")


# -- SEC-04 --------------------------------------------------------------------------------
def _places(exchange: Exchange) -> Iterator[tuple[str, str]]:
    """(where, text) of each part of a request that could carry a credential."""
    yield "URL", exchange.url
    for name, value in exchange.headers.items():
        yield f"{name} header", value
    for name, value in exchange.form.items():
        yield f"body field {name}", value


def _leaks(ctx: Context, scenario: str, exchange: Exchange, kinds: dict[str, str]) -> list[Evidence]:
    host = httpx.URL(exchange.url).host
    return [ctx.evidence(scenario, exchange, f"the {kind} {redact_value(value)} sent to {host} in the {where}")
            for where, text in _places(exchange) for value, kind in _found_in(text, kinds)]


def _intercepted(ctx: Context, results: Iterable[ScenarioResult]) -> bool:
    """Whether requests to other hosts would be seen: in-process (httpx), through the proxy or the runtime's
    instrumentation (hosts mode)."""
    ours = [e for r in results for e in sent_by_target(r) if e.host in ("auth", "api")]
    return ctx.config.proxy or ctx.config.hosts or any(httpx.URL(e.url).host not in _LOOPBACK for e in ours)


@check("SEC-04", ALL_SCENARIOS)
def credentials_only_to_request_finance(ctx: Context) -> Outcome:
    results = completed(ctx.results.values())
    if not results:
        return unjudged(f"no scenario ran to completion ({names(ctx.results.values())})")
    elsewhere = [(r.name, e) for r in results for e in sent_by_target(r) if e.host == "other"]
    kinds = issued_secrets(ctx)
    evidence = [item for scenario, e in elsewhere for item in _leaks(ctx, scenario, e, kinds)]
    if evidence:
        return failed(f"{len(evidence)} credential(s) or token(s) sent to hosts that are not Request "
                      "Finance", evidence[:_MOST_EVIDENCE])
    refused = sorted({httpx.URL(e.url).host for _, e in elsewhere if e.method == "CONNECT"})
    sent = [e for _, e in elsewhere if e.method != "CONNECT"]
    if refused and not sent:
        return passed(f"every request the target sent went to Request Finance; its {len(elsewhere)} "
                      f"attempt(s) to connect to {', '.join(refused)} were refused before anything was sent")
    if elsewhere:
        return passed(f"{len(sent)} request(s) to other hosts carried no credential or token"
                      + (f"; connections to {', '.join(refused)} were refused" if refused else ""))
    if not any(sent_by_target(r) for r in results):
        return skipped(f"the target sent no request at all in {names(results)}")
    if not _intercepted(ctx, results):
        return inapplicable("the target reached the mock through its configured loopback URLs, so its "
                            "requests to other hosts were not intercepted; set [target.intercept] proxy = "
                            "true or hosts = true to observe them")
    return passed(f"every intercepted request of the target in {names(results)} went to Request Finance")


# -- SEC-05 --------------------------------------------------------------------------------
BROWSER_KINDS = ("access token", "refresh token", "client secret")  # ID tokens are not judged here
_HELD = "which the user's browser held"


def cookie_readings(set_cookie: str) -> Iterator[str]:
    """What a cookie says when read: its value as sent, URL-decoded, and each dot-separated part decoded
    from base64url (zlib-inflated when the value starts with ``.``, as Flask/itsdangerous compress)."""
    value = set_cookie.split(";", 1)[0].partition("=")[2].strip().strip('"')
    yield value
    value = unquote(value)
    yield value
    compressed = value.startswith(".")
    for part in value.lstrip(".").split("."):
        raw = _base64url(part)
        if raw is None:
            continue
        if compressed:
            try:
                raw = zlib.decompress(raw)
            except zlib.error:
                pass
        yield raw.decode("utf-8", "replace")


def _base64url(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _browser_places(exchange: Exchange) -> Iterator[tuple[str, str]]:
    """(where, text) of everything the app sent its browser in one answer, and of what the browser held
    once the page's scripts had run (``browser_held``, recorded on the step's last exchange with the app)."""
    answer = f"of the answer to {exchange.method} {exchange.path}"
    yield f"page {answer}", exchange.response_text
    yield f"page {answer}", html.unescape(exchange.response_text)
    for name, value in exchange.response_headers.items():
        if name != "set-cookie":
            yield f"{name} header {answer}", unquote(value)
    for cookie in exchange.facts.get("set_cookies") or ():
        name = cookie.split("=", 1)[0].strip()
        for reading in cookie_readings(cookie):
            yield f"cookie {name} {answer}", reading
    for held in exchange.facts.get("browser_held") or ():
        where = f"{held['where']}, {_HELD} at the end of {exchange.step}"
        for reading in (cookie_readings(held["value"]) if held.get("cookie") else (held["value"],)):
            yield where, reading


def _sent_to_browser(ctx: Context, scenario: str, exchange: Exchange, kinds: dict[str, str]) -> Evidence | None:
    for where, text in _browser_places(exchange):
        for value, kind in _found_in(text, kinds):
            return ctx.evidence(scenario, exchange, f"the {kind} {redact_value(value)} in the {where}")
    return None


@check("SEC-05", ALL_SCENARIOS)
def no_token_in_the_browser(ctx: Context) -> Outcome:
    if ctx.config.kind != "web":
        return inapplicable("only a web app sends pages to a user's browser")
    kinds = {value: kind for value, kind in issued_secrets(ctx).items() if kind in BROWSER_KINDS}
    answers = [(r.name, e) for r in completed(ctx.results.values()) for e in r.exchanges
               if e.host == "app" and e.status]
    if not answers:
        return unjudged(f"the app answered no browser request ({names(ctx.results.values())})")
    evidence = [found for scenario, e in answers if (found := _sent_to_browser(ctx, scenario, e, kinds))]
    if evidence:
        kept = sum(1 for found in evidence if _HELD in found.detail)
        told = [f"{len(evidence) - kept} answer(s) of the app carried a token or the client secret to the user's "
                "browser"] if kept < len(evidence) else []
        told += [f"the user's browser held one once the app's scripts had run ({kept} time(s))"] if kept else []
        return failed("; ".join(told), evidence[:_MOST_EVIDENCE])
    # what a page's scripts fetch, store or send is only seen when they run (rfcheck.targets.chromium)
    not_run = [(scenario, e) for scenario, e in answers if e.facts.get("scripts_not_run")]
    if not_run:
        scenario, page = not_run[0]
        return unjudged(f"{len(not_run)} page(s) of the app run scripts, which were not run, so what they "
                        f"fetch and keep in the browser was not seen (GET {page.path} in {scenario}: "
                        f"{page.facts['scripts_not_run']})")
    ran = sum(1 for _, e in answers if e.facts.get("browser_held") is not None)
    held = (f", and what the browser held once the pages' scripts had run ({ran} time(s): cookies, localStorage, "
            "sessionStorage, IndexedDB)") if ran else ""
    return passed(f"none of the {len(answers)} answers the app sent its user's browser (pages, "
                  f"headers, redirects, cookies decoded){held} carried a token or the client secret")
