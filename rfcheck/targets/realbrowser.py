"""The real browser of one scenario: its context in the run's Chromium (:mod:`rfcheck.targets.chromium`),
the proxy every request of it goes through (:mod:`rfcheck.targets.pageproxy`), and what each request
gets, recorded in the journal as the browser's:

- the app: forwarded by the web driver's own client, and recorded as the script-less browser's requests
  are (the driver's ``fetch``), with the app's answer;
- Request Finance's hosts: served by the scenario's mock in process (the browser never connects to its
  servers, so nothing is recorded twice), the call marked ``from_page``; the browser's CORS preflights are
  answered here, so that what a page's script sends Request Finance is seen whatever CORS the real
  service allows;
- the mock's ``/authorize``: the app sends the user to log in; the visit ends there, and the scenario
  consents (as with the script-less browser);
- anything else: refused, and recorded.

What the browser held at the end of each visit goes on the visit's last exchange with the app
(``browser_held``), where SEC-05 reads it.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

from rfcheck.targets.consent import short_url
from rfcheck.journal import Exchange
from rfcheck.provider.app import Provider
from rfcheck.provider.state import Site
from rfcheck.targets import chromium
from rfcheck.targets.base import DriverError, StepFailed, cause
from rfcheck.targets.chromium import APP, LOGIN, MOCK, OTHER, NoBrowser, Visit
from rfcheck.targets.deadline import Deadlines, StepDeadline
from rfcheck.targets.output import SecretScanner
from rfcheck.targets.pageproxy import PageProxy
from rfcheck.transport.http11 import Response

KEPT = 256 * 1024  # characters of each thing the browser held kept in the journal; secrets beyond are excerpted
# what the browser's answers never carry on from the app's: the connection's, and what httpx decoded
_NOT_RELAYED = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length",
                "content-encoding", "upgrade", "te", "trailer"}
_NOT_FORWARDED = {"host", "accept-encoding", "content-length"}  # httpx sets these for what it can decode
# the driver's recorded request to the app: (method, url, what, headers, body) -> the app's answer
Fetch = Callable[[str, str, str, list[tuple[str, str]], bytes], httpx.Response]


class RealBrowser:
    """One scenario's context of the run's Chromium, and the router of its proxy."""

    def __init__(self, provider: Provider, is_app: Callable[[httpx.URL], bool], fetch: Fetch, deadlines: Deadlines,
                 step_timeout: float) -> None:
        self._provider, self._is_app, self._fetch = provider, is_app, fetch
        self._deadlines, self._step_timeout = deadlines, step_timeout
        self._lock = threading.Lock()
        self._prefetched: dict[str, deque[httpx.Response]] = {}  # pages read already by the script-less browser
        self._failures: list[StepFailed] = []  # requests to the app that it never answered
        self._answers: dict[str, str] = {}  # URL -> the start of the app's last answer to it
        self._visits: list[float] = []  # the deadlines of the visits under way (monotonic)
        self._handed: Exchange | None = None  # the last page handed over by the script-less browser
        self._proxy: PageProxy | None = None
        self._session: chromium.Session | None = None
        self.note = ""  # which browser, for the scenario's notes

    def start(self) -> None:
        """Open the context in the run's Chromium (launched if none runs yet); :class:`NoBrowser` when none
        can be had."""
        found = chromium.find_chromium()
        engine = chromium.acquire(found)
        proxy = PageProxy(self, engine.tls_for)
        try:
            proxy.start()
            self._session = engine.session(proxy.url, self.kind)
        except Exception as err:
            proxy.stop()
            chromium.release()
            raise NoBrowser(f"{found.how} opened no browser context ({cause(err)})") from err
        self._proxy = proxy
        self.note = f"the user's browser: headless Chromium {engine.version} ({found.how})"

    @property
    def session(self) -> chromium.Session:
        assert self._session is not None, "start() first"
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            chromium.release()
        if self._proxy is not None:
            self._proxy.stop()
        self._session = self._proxy = None

    def hand_over(self, response: httpx.Response, exchange: Exchange, cookies: list[dict[str, Any]]) -> None:
        """The page the script-less browser read (``exchange`` records it) is the next one this browser opens
        at its URL, with the scenario's cookies so far."""
        with self._lock:
            self._prefetched.setdefault(str(response.url), deque()).append(response)
            self._handed = exchange
        self.session.add_cookies(cookies)

    def forget_cookies(self, names: list[str]) -> None:
        self.session.forget_cookies(names)

    def answer_of(self, url: str) -> str:
        return self._answers.get(url, "(no answer kept)")

    # -- visits -----------------------------------------------------------------------------------
    def visit(self, url: str) -> Visit:
        """Open ``url``; a request of it that the app never answered ends the step as it would in the
        script-less browser. What the browser held after it is recorded."""
        what = f"GET {httpx.URL(url).path}"
        try:
            seconds = self._deadlines.clamp(None) or self._step_timeout
        except StepDeadline:
            raise StepFailed(f"{what}: the step's {self._step_timeout:g} s (step_timeout) were over",
                             kind="no_answer") from None
        mark, failed = self._provider.journal.mark(), len(self._failures)
        deadline = time.monotonic() + seconds
        with self._lock:
            self._visits.append(deadline)
        try:
            visit = self.session.visit(url, seconds)
        except concurrent.futures.TimeoutError:
            raise StepFailed(f"{what}: the page was not done within {self._step_timeout:g} s (step_timeout)",
                             kind="no_answer") from None
        except Exception as err:  # the browser itself failed: nothing the app did
            raise DriverError(f"headless Chromium failed while showing {short_url(url)}: {cause(err)}") from err
        finally:
            with self._lock:
                self._visits.remove(deadline)
        self._keep_held(visit, mark)
        failures = self._failures[failed:]
        if failures:
            raise min(failures, key=lambda failure: failure.kind != "crashed")
        if visit.timed_out and not visit.stopped:
            waiting = ", ".join(visit.unfinished[:3]) or what
            raise StepFailed(f"{what}: the page and its scripts were not done within {self._step_timeout:g} s "
                             f"(step_timeout); still waiting for {short_url(waiting)}", kind="no_answer")
        if visit.status is None and not visit.stopped:
            reason = visit.failed[0][1] if visit.failed else "no answer"
            raise StepFailed(f"{what}: the browser got no page ({reason})", kind="no_answer")
        return visit

    def _keep_held(self, visit: Visit, mark: int) -> None:
        """What the browser held after the visit, on its last exchange with the app (SEC-05 reads it there)."""
        if not visit.held:
            return
        journal = self._provider.journal
        ours = [e for e in journal.since(mark) if e.origin == "browser" and e.host == "app"]
        last = ours[-1] if ours else self._handed
        if last is None:
            return
        held = last.facts.setdefault("browser_held", [])
        known = {(item["where"], item["value"]) for item in held}
        for item in visit.held:
            value = _kept(item.value, journal.holds_secret)
            if (item.where, value) not in known:
                held.append({"where": item.where, "value": value, "cookie": item.cookie})
                known.add((item.where, value))
        names = sorted({item.where.split(" of ")[0] for item in visit.held})
        last.note(f"what the user's browser held after this page: {', '.join(names[:12])}"
                  + (" …" if len(names) > 12 else ""))

    # -- what the browser's requests are, and get ------------------------------------------------------
    def kind(self, url: str) -> str:
        """What a URL the browser asks for is: the app, the mock's ``/authorize`` (a login), the mock's other
        endpoints, anything else, or "" (not a network URL: ``data:``, ``about:``)."""
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            return OTHER
        if target.scheme not in ("http", "https"):
            return ""
        site = self._site(target)
        if site is not None:
            return LOGIN if site.kind == "auth" and target.path.rstrip("/") == "/authorize" else MOCK
        return APP if self._is_app(target) else OTHER

    def _site(self, target: httpx.URL) -> Site | None:
        site = self._provider.site_for(target)
        if site is None and target.scheme == "http":  # a real host's port 80 is the same mock host
            site = self._provider.site_for(target.copy_with(scheme="https"))
        return site

    def serve(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        """What one request of the browser gets: the app's answer, the mock's, or a refusal; each recorded in
        the journal as the browser's."""
        kind = self.kind(url)
        if kind == LOGIN:  # the app sends the user to log in: the visit ends here (the scenario consents)
            return Response(204)
        if kind == MOCK:
            return self._to_mock(method, url, headers, body)
        if kind == APP:
            return self._to_app(method, url, headers, body)
        answer = self._provider.handle(httpx.Request(method, url, headers=headers, content=body), origin="browser")
        return Response(answer.status_code, _relayed(answer), answer.content)

    def _to_app(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        if method == "GET":
            with self._lock:
                waiting = self._prefetched.get(url)
                ready = waiting.popleft() if waiting else None
            if ready is not None:  # the page the script-less browser read (and recorded) already
                self._answers[url] = snippet(ready)
                return Response(ready.status_code, _relayed(ready), ready.content)
        what = f"{method} {httpx.URL(url).path}"
        forwarded = [(name, value) for name, value in headers if name.lower() not in _NOT_FORWARDED]
        try:
            with self._deadlines.until(self._time_left()):
                response = self._fetch(method, url, what, forwarded, body)
        except StepFailed as err:
            with self._lock:
                self._failures.append(err)
            return Response(504 if err.kind == "no_answer" else 502, [("Content-Type", "text/plain")],
                            str(err).encode())
        self._answers[url] = snippet(response)
        return Response(response.status_code, _relayed(response), response.content)

    def _to_mock(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        target = httpx.URL(url)
        journal = self._provider.journal
        if method == "OPTIONS" and _header(headers, "access-control-request-method"):
            site = self._site(target)
            preflight = journal.open(
                at=self._provider.clock.now(), origin="browser", host=site.kind if site else "other", method=method,
                url=str(target), path=target.path, query=dict(parse_qsl(target.query.decode())),
                headers={k.lower(): v for k, v in headers}, form={})
            preflight.note("the browser's CORS preflight, answered by rfcheck's browser", preflight=True)
            allowed = _cors(headers, preflight=True)
            journal.answer(preflight, 204, allowed)
            return Response(204, allowed)
        mark = journal.mark()
        answer = self._provider.handle(httpx.Request(method, target, headers=headers, content=body), origin="browser",
                                       site=self._site(target))
        sent = next((e for e in journal.since(mark) if e.origin == "browser" and e.method == method.upper()
                     and e.path == target.path and not e.facts.get("from_page")), None)
        if sent is not None:
            sent.note("sent from the user's browser by a script of the app's page", from_page=True)
        return Response(answer.status_code, _relayed(answer) + _cors(headers, preflight=False), answer.content)

    def tunnel_to(self, host: str, port: int) -> bool:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if self.kind(f"https://{authority}/") in (APP, LOGIN, MOCK):
            return True
        journal = self._provider.journal
        refused = journal.open(at=self._provider.clock.now(), origin="browser", host="other", method="CONNECT",
                               url=f"https://{authority}/", path="/", query={}, headers={}, form={})
        journal.answer(refused, 403, [])
        refused.note("CONNECT refused: rfcheck's browser goes nowhere but the app and Request Finance; nothing is "
                     "forwarded", foreign=True)
        return False

    def proxy_failed(self, error: BaseException) -> None:
        self._provider.errors.append(error)

    def _time_left(self) -> float:
        """Seconds a request of the browser may take: until the latest deadline of the visits under way."""
        with self._lock:
            deadline = max(self._visits, default=time.monotonic() + self._step_timeout)
        return max(deadline - time.monotonic(), 0.01)


def snippet(response: httpx.Response) -> str:
    """The start of an answer's text, as a failed step shows it."""
    text = " ".join(response.text.split())
    return text[:200] or "(empty body)"


def _kept(text: str, known: Callable[[str], bool]) -> str:
    """``text`` as the journal keeps it: its first :data:`KEPT` characters, then an excerpt around each secret
    found beyond them."""
    if len(text) <= KEPT:
        return text
    scanner = SecretScanner(known)
    scanner.feed(text[KEPT:])
    scanner.close()
    beyond = "\n".join(scanner.hits)
    return text[:KEPT] + ("\n[rfcheck: excerpts of what lies beyond]\n" + beyond if beyond else "")


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in headers if key.lower() == name), "")


def _relayed(response: httpx.Response) -> list[tuple[str, str]]:
    """An answer's headers as the browser gets them (the body is sent as httpx decoded it)."""
    return [(name, value) for name, value in response.headers.multi_items() if name.lower() not in _NOT_RELAYED]


def _cors(headers: list[tuple[str, str]], preflight: bool) -> list[tuple[str, str]]:
    """What lets a page's script read an answer from Request Finance's hosts (Fetch Standard §3.2)."""
    origin = _header(headers, "origin")
    if not origin:
        return []
    allowed = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"),
               ("Vary", "Origin")]
    if preflight:
        allowed += [("Access-Control-Allow-Methods", _header(headers, "access-control-request-method") or "GET"),
                    ("Access-Control-Allow-Headers", _header(headers, "access-control-request-headers") or "*"),
                    ("Access-Control-Max-Age", "600")]
    return allowed
