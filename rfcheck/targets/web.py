"""Web targets: the app started as a process and driven as a browser would drive it.

rfcheck's browser keeps a cookie jar, follows the app's redirects, consents as the
scenario's user when it reaches the mock's ``/authorize``, and comes back to the
app's callback. Cookies live as long as the app said (``Max-Age``, ``Expires``) on rfcheck's
clock, which travels: a session cookie that reached the end of its lifetime is gone, and a
step that then had to log in again says so. Every step has a timeout; the whole process group is stopped after
each scenario (or at the end of the run with ``restart = "session"``).

A page that runs scripts is handed over to headless Chromium (``[target.web] browser``; see
:mod:`rfcheck.targets.realbrowser`) with the cookies of the scenario so far, and the rest of the scenario
is driven there; every request Chromium makes is recorded like the script-less browser's own. When no
Chromium can be had (or ``browser = "simulated"``), the pages' scripts are not run and their exchange says
so (``scripts_not_run``: SEC-05 is then not judged); a login page or a unit of work whose page leaves the
work to its scripts (nothing reached Request Finance while the app served it) cannot be driven at all.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import http.cookiejar
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import httpx

from rfcheck import Environment
from rfcheck.targets.consent import short_url
from rfcheck.config import WebSpec
from rfcheck.journal import Exchange, kept
from rfcheck.provider.app import Provider
from rfcheck.provider.clock import Clock
from rfcheck.runtime import Surveyed
from rfcheck.targets import chromium
from rfcheck.targets.base import DriverError, Health, StepFailed, cause
from rfcheck.targets.chromium import NoBrowser, Visit, runs_scripts
from rfcheck.targets.deadline import Deadlines, client as deadline_client, client_tls
from rfcheck.targets.output import Known, Output, SecretScanner
from rfcheck.targets.process import TargetProcess
from rfcheck.targets.realbrowser import RealBrowser, snippet as _snippet

if TYPE_CHECKING:
    from rfcheck.runtime import Instrumentation, Survey

MAX_HOPS = 10
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
POLL_INTERVAL = 0.1
HEALTH_TIMEOUT = 5.0  # seconds for the app to answer its ready URL after an error answer (REL-01)
EXIT_GRACE = 1.0  # seconds a crashing app may take to exit once its connection broke
MAX_PAGE = 256 * 1024  # characters of each page kept in the journal (SEC-05 reads it; secrets beyond are excerpted)
PAGE_LIMIT = 2 * 1024 * 1024  # bytes of a page read as the user's page; the rest is counted, hashed and searched
# bytes of an answer the real browser gets (a script bundle is read whole); the rest is counted, hashed, searched
BROWSER_LIMIT = 64 * 1024 * 1024


class WebDriver(Surveyed):
    """Drives one web app process (or reuses it across scenarios with ``restart = "session"``)."""

    def __init__(self, spec: WebSpec, cwd: Path, filled: WebSpec, env: Mapping[str, str],
                 provider: Provider, instrumentation: "Instrumentation") -> None:
        self.spec = spec
        self._instrumentation = instrumentation
        self._survey: Survey | None = None
        self._cwd = cwd
        self._url = filled.url.rstrip("/")  # the spec with its placeholders filled in
        self._command = filled.start
        self._env = env
        self._provider = provider
        self._process: TargetProcess | None = None
        self._browser: httpx.Client | None = None
        self._prober: httpx.Client | None = None  # ready and health probes
        self._lifetimes: dict[str, tuple[float, str]] = {}  # cookie name -> (end on rfcheck's clock, as set)
        self._ended: list[str] = []  # cookies that reached the end of their lifetime in the current step
        self._offset = 0.0  # the clock's offset at the browser's last request
        self._follows: tuple[float, bool] | None = None  # (offset, whether the app's clock follows rfcheck's)
        self._deadlines = Deadlines(instrumentation.ports)  # each step's, and the lane's ports (a fixed-port app's own)
        self.strays: list[str] = []  # processes the app left outside its process group, stopped
        # the real browser, once a page of the scenario ran scripts (or from the start with browser = "chromium")
        self._real: RealBrowser | None = None
        self._forwarder: httpx.Client | None = None  # its requests to the app
        self._real_lock = threading.Lock()
        self._no_browser = ""  # why the scripts of the app's pages were not run
        self._browser_note = ""  # which browser played the user, for the scenario's notes

    # -- lifecycle ------------------------------------------------------------------
    def start(self, env: Environment, clock: Clock) -> None:
        self._browser = self._new_browser()
        self._survey = self._instrumentation.survey()
        self._no_browser, self._browser_note = "", ""
        if self.spec.browser == "chromium":
            try:
                self._open_real()
            except NoBrowser as err:
                raise DriverError(f'[target.web] browser = "chromium", but no Chromium can be had: {err}') from err
        if self._process is not None and self._process.running:
            self._observe()
            return  # restart = "session": the app keeps running
        self._refuse_taken_port()
        self._process = TargetProcess(self._command, self._cwd, self._env, "[target.web] start",
                                      Output(self._provider.journal.holds_secret))
        self._wait_ready()
        self._observe()

    # -- what runs, and whether its clock follows rfcheck's -------------------------------------
    def _observe(self) -> None:
        if self._survey is not None and self._process is not None and self._process.running:
            self._survey.observe(self._process.pgid)

    def _look(self) -> None:
        self._observe()

    def _refuse_taken_port(self) -> None:
        """Never drive another program that happens to listen where the app should (the README's target config)."""
        url = httpx.URL(self._url)
        asked = url.port or {"http": 80, "https": 443}.get(url.scheme, 80)
        host, port = self._deadlines.address(url.host, asked)  # a fixed-port app listens on the lane's port
        try:
            socket.create_connection((host, port), timeout=0.5).close()
        except OSError:
            return
        if port != asked:
            raise DriverError(f"port {port}, where rfcheck moves this app's fixed port {asked} on this lane, was taken "
                              "by another program before the app started: run again")
        if "{port}" in self.spec.url:
            raise DriverError(f"port {port}, picked free for {{port}} in [target.web] url, was taken by another "
                              "program before the app started: run again")
        raise DriverError(f"port {port} of [target.web] url {self._url} is already taken by another program; "
                          "stop it, or use {port} in url so that rfcheck picks a free port")

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.spec.ready_timeout
        probe = self._url + self.spec.ready
        while time.monotonic() < deadline:
            if not self._process.running:
                raise DriverError(f"the app exited with status {self._process.returncode} before answering "
                                  f"{probe}; {self._process.failure_output()}")
            try:
                with self._deadlines.until(max(deadline - time.monotonic(), 0.01)):
                    self._probe(probe, 1.0)
                return
            except httpx.HTTPError:
                time.sleep(POLL_INTERVAL)
        raise DriverError(f"the app did not answer {probe} within {self.spec.ready_timeout:g} s "
                          f"(ready_timeout); {self._process.failure_output()}")

    def _new_browser(self, cookies: httpx.Cookies | None = None) -> httpx.Client:
        return deadline_client(self._deadlines, client_tls(), timeout=self.spec.step_timeout, follow_redirects=False,
                               trust_env=False, cookies=cookies)

    def _new_forwarder(self) -> httpx.Client:
        """The real browser's client to the app: it keeps no cookie (each request carries Chromium's)."""
        return deadline_client(self._deadlines, client_tls(), timeout=self.spec.step_timeout, follow_redirects=False,
                               trust_env=False, cookies=httpx.Cookies(http.cookiejar.CookieJar(_KeepNone())))

    def _after_travel(self) -> None:
        """A travel is elapsed time for the app too: the keep-alive timers of its server (moved with its
        clock) close the connections the browser and the prober kept, as a real browser's would be after
        hours; each starts afresh, as a browser reconnects, rather than reusing a closed connection."""
        offset = self._provider.clock.offset
        if offset == self._offset:
            return
        self._offset = offset
        if self._browser is not None:
            old, self._browser = self._browser, self._new_browser(self._browser.cookies)
            old.close()
        if self._forwarder is not None:
            old, self._forwarder = self._forwarder, self._new_forwarder()
            old.close()
        if self._prober is not None:
            self._prober.close()
            self._prober = None

    def _probe(self, url: str, timeout: float) -> None:
        """GET ``url`` as a stranger would (no cookies), with one client kept for the driver's life: a
        client per probe built a TLS context each time, most of rfcheck's CPU while driving a web app."""
        self._after_travel()
        if self._prober is None:
            self._prober = deadline_client(self._deadlines, client_tls(), trust_env=False, follow_redirects=False)
        try:
            with self._prober.stream("GET", url, timeout=timeout):
                pass  # any answer will do: its body is never read (an endless one would never end)
        finally:
            self._prober.cookies.clear()

    def health(self) -> Health:
        """REL-01: the app is running and answers its ``ready`` URL (any HTTP answer will do)."""
        process = self._process
        if process is None:
            return Health(False, "the app was not running")
        what = f"GET {self.spec.ready}"
        if process.running:
            try:
                with self._deadlines.until(HEALTH_TIMEOUT):
                    self._probe(self._url + self.spec.ready, HEALTH_TIMEOUT)
                return Health(True, f"running and answering {what}")
            except httpx.HTTPError as err:
                if not process.wait_exit(EXIT_GRACE):
                    return Health(False, f"still running but no answer to {what} within "
                                         f"{HEALTH_TIMEOUT:g} s ({cause(err)})",
                                  process.first_errors(), process.tail())
        return Health(False, f"the process exited with status {process.returncode}", process.first_errors(),
                      process.tail())

    def stop(self) -> str:
        self._observe()
        self._close_real()
        if self._browser is not None:
            self._browser.close()
        if self._prober is not None:
            self._prober.close()
            self._prober = None
        if self._process is None:
            return ""
        if self.spec.restart == "session" and self._process.running:
            return self._process.take_output()
        self._process.stop()
        self.strays += self._process.strays
        output, self._process = self._process.take_output(), None
        return output

    def shutdown(self) -> None:
        """End the app for good (the end of the run)."""
        self._close_real()
        if self._process is not None:
            self._process.stop()
            self.strays += self._process.strays
            self._process = None

    # -- the user's browser -------------------------------------------------------------
    @property
    def runtime_note(self) -> str:
        return "; ".join(note for note in (super().runtime_note, self._browser_note) if note)

    def start_login(self) -> str:
        """Follow the app's login route until it sends the browser to the authorization server."""
        with self._deadlines.until(self.spec.step_timeout):
            return self._start_login()

    def _start_login(self) -> str:
        url = self._url + self.spec.login
        if self._real is not None:
            return self._real_login(url)
        for _ in range(MAX_HOPS):
            response = self._get(url, f"GET {httpx.URL(url).path}")
            location = response.headers.get("location")
            if not response.is_redirect or not location:
                if self._hand_over(response):  # a login page whose script sends the user on
                    return self._real_login(str(response.url))
                not_run = self._scripts_not_run(response)
                if not_run:  # its scripts may well start the login: whether they do was not seen
                    raise DriverError(f"GET {self.spec.login} answered {response.status_code} with a page that runs "
                                      f"scripts instead of a redirect to the authorization server; {not_run}")
                raise StepFailed(f"GET {self.spec.login} led to {response.status_code} instead of a redirect to "
                                 f"the authorization server: {_snippet(response)}")
            url = str(response.url.join(location))
            site = self._provider.site_for(httpx.URL(url))
            if site is not None and site.kind == "auth":
                return url
            if site is None and not self._is_app(httpx.URL(url)):
                raise StepFailed(f"GET {self.spec.login} sent the user to {short_url(url)}, which is neither the app "
                                 "nor Request Finance: rfcheck's browser goes nowhere else", kind="foreign_redirect")
        raise StepFailed(f"more than {MAX_HOPS} redirects from {self.spec.login}")

    def _real_login(self, url: str) -> str:
        """The login in the real browser: the page, or a script of it, sends the user to ``/authorize``."""
        visit = self._visit(url)
        if visit.login_url:
            return visit.login_url
        if visit.foreign:
            raise StepFailed(f"GET {self.spec.login} sent the user to {short_url(visit.foreign)}, which is neither the "
                             "app nor Request Finance: rfcheck's browser goes nowhere else", kind="foreign_redirect")
        assert self._real is not None
        raise StepFailed(f"GET {self.spec.login} led to {visit.status} instead of the authorization server, and no "
                         f"script of its page sent the user there: {self._real.answer_of(visit.document)}")

    def finish_login(self, callback_url: str) -> None:
        with self._deadlines.until(self.spec.step_timeout):
            self._finish_login(callback_url)

    def _finish_login(self, callback_url: str) -> None:
        landed = self._open(callback_url)
        if landed.status >= 400:
            where = ("the app answered the callback" if landed.path == httpx.URL(callback_url).path
                     else f"the callback led to GET {landed.path}, which answered")
            if landed.by_script:
                where = f"a script of the page the callback led to asked the app for {landed.by_script}, which answered"
            raise StepFailed(f"{where} with {landed.status}: {landed.snippet}", kind="error_status",
                             status=landed.status)

    def exercise(self) -> None:
        with self._deadlines.until(self.spec.step_timeout):
            self._exercise()

    def _exercise(self) -> None:
        self._ended = []
        for action in self.spec.actions:
            landed = self._open(self._url + action, unit=True)
            if landed.status >= 400:
                what = (f"GET {action}: a script of the page asked the app for {landed.by_script}, which answered"
                        if landed.by_script else f"GET {action} answered")
                raise StepFailed(f"{what} {landed.status}: {landed.snippet}", kind="error_status", status=landed.status)

    def _open(self, url: str, unit: bool = False) -> "_Landed":
        """GET ``url`` as the user, following the app's redirects, in whichever browser plays the user: the
        page it landed on, or the first request of the page's scripts that the app answered with an error."""
        if self._real is None:
            mark = self._provider.journal.mark()
            response = self._browse(url)
            if not self._hand_over(response):
                if unit and self._left_to_scripts(response, mark):
                    raise DriverError(f"GET {httpx.URL(url).path}: its page runs scripts and nothing reached Request "
                                      "Finance while the app served it, so the unit of work is left to those scripts, "
                                      f"which were not run ({self._no_browser})")
                return _Landed(response.status_code, response.request.url.path, _snippet(response))
            url = str(response.url)
        mark = self._provider.journal.mark()
        visit = self._visit(url)
        if unit and visit.refused_scripts and not self._reached_request_finance(mark):
            raise DriverError(f"GET {httpx.URL(url).path}: its page loads scripts from hosts rfcheck's browser does not "
                              f"reach (it goes nowhere but the app and Request Finance): "
                              f"{', '.join(short_url(s) for s in visit.refused_scripts[:3])}; nothing reached Request "
                              "Finance while it ran, so the unit of work was not done")
        return self._landed(visit)

    def _left_to_scripts(self, response: httpx.Response, mark: int) -> bool:
        """Whether a unit's page, whose scripts were not run, left its work to them: nothing reached Request
        Finance while the app served it (a single-page app's shell). Judging such a target without its scripts
        would blame it for what the browser never did: it was not driven."""
        exchange = response.extensions.get(_EXCHANGE)
        if exchange is None or not exchange.facts.get("scripts_not_run"):
            return False
        return not self._reached_request_finance(mark)

    def _reached_request_finance(self, mark: int) -> bool:
        """Whether the target (or a script of its page) sent Request Finance anything since ``mark``."""
        return any(e.host in ("auth", "api") and (e.origin == "target" or e.facts.get("from_page"))
                   for e in self._provider.journal.since(mark))

    def _browse(self, url: str) -> httpx.Response:
        """GET ``url`` and follow the app's redirects; reaching ``/authorize`` means the app wants a login."""
        for _ in range(MAX_HOPS):
            target = httpx.URL(url)
            site = self._provider.site_for(target)
            if site is None and not self._is_app(target):
                raise StepFailed(f"the app sent its user to {short_url(url)}, which is neither the app ({self._url}) "
                                 "nor Request Finance: rfcheck's browser goes nowhere else", kind="foreign_redirect")
            if site is not None and site.kind == "auth":
                raise StepFailed("the app sent the user to log in again" + self._ended_sessions(),
                                 kind="login_required")
            response = self._get(url, f"GET {target.path}")
            if not response.is_redirect:
                return response
            url = str(response.url.join(response.headers["location"]))
        raise StepFailed(f"more than {MAX_HOPS} redirects from {url}", kind="redirect_loop")

    def _is_app(self, url: httpx.URL) -> bool:
        """``url`` is on the app: its host and port (a loopback name for a loopback host, as a browser on
        the same machine reaches it either way)."""
        app = httpx.URL(self._url)
        port = url.port or {"http": 80, "https": 443}.get(url.scheme)
        app_port = app.port or {"http": 80, "https": 443}.get(app.scheme)
        if port != app_port:
            return False
        return url.host == app.host or {url.host, app.host} <= _LOOPBACK_NAMES

    def _get(self, url: str, what: str) -> httpx.Response:
        """One request of the user's script-less browser to the app, recorded in the journal with the app's answer."""
        return self._fetch("GET", url, what)

    def _fetch(self, method: str, url: str, what: str, headers: list[tuple[str, str]] | None = None,
               body: bytes = b"", forwarded: bool = False) -> httpx.Response:
        """One request to the app, of the script-less browser or (``forwarded``) of the real one, recorded in
        the journal with the app's answer."""
        self._check_alive(what)
        self._after_travel()
        if not forwarded:
            self._expire_cookies()
        client = self._forwarder if forwarded else self._browser
        assert client is not None, "start() first"
        exchange = self._record(method, url, headers or [], body)
        page = _Page(self._provider.journal.holds_secret, BROWSER_LIMIT if forwarded else PAGE_LIMIT)
        try:
            with client.stream(method, url, headers=headers, content=body or None) as response:
                page.read(response)
        except httpx.TimeoutException as err:
            got = f" (after {page.size:,} bytes of its answer)" if page.size else ""
            exchange.note(f"no whole answer within {self.spec.step_timeout:g} s{got}", no_answer=True)
            raise StepFailed(f"{what}: no whole answer within {self.spec.step_timeout:g} s (step_timeout){got}",
                             kind="no_answer") from err
        except httpx.HTTPError as err:
            exchange.note(f"no answer: {cause(err)}", no_answer=True)
            if self._process is not None and self._process.wait_exit(EXIT_GRACE):
                self._check_alive(what)
            raise StepFailed(f"{what}: the connection failed ({cause(err)})", kind="no_answer") from err
        finally:
            exchange.done = self._provider.journal.mark()
        self._answered(exchange, response, page, forwarded)
        response.extensions[_EXCHANGE] = exchange
        return response

    def _record(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Exchange:
        target = httpx.URL(url).copy_with(fragment=None)  # a fragment never leaves the browser
        form: dict[str, str] = {}
        content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
        if body and "x-www-form-urlencoded" in content_type:
            form = kept(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return self._provider.journal.open(
            at=self._provider.clock.now(), origin="browser", host="app", method=method.upper()[:16], url=str(target),
            path=target.path,
            query=dict(parse_qsl(target.query.decode(), keep_blank_values=True)), headers={}, form=form)

    def _answered(self, exchange: Exchange, response: httpx.Response, page: "_Page", forwarded: bool) -> None:
        exchange.headers = {k.lower(): v for k, v in response.request.headers.items()}
        self._provider.journal.answer(exchange, response.status_code, response.headers.items(),
                                      text=page.journal_text(response.text))
        if page.left_out:
            exchange.note(f"a page of {page.size:,} bytes: the first {page.limit:,} read as the user's page, the "
                          f"rest counted (sha256 {page.digest[:16]}…) and searched for secrets")
        exchange.facts["set_cookies"] = response.headers.get_list("set-cookie")
        self._note_lifetimes(exchange.facts["set_cookies"])
        location = response.headers.get("location")
        if response.is_redirect and location:
            site = self._provider.site_for(response.url.join(location))
            sent_to = "the authorization server (log in)" if site is not None and site.kind == "auth" else location
            exchange.note(f"redirect to {sent_to}", login_redirect=site is not None and site.kind == "auth")
        elif response.status_code >= 400:
            exchange.note(f"the app answered its user with {response.status_code}")
        elif not forwarded and runs_scripts(response.text, response.headers.get("content-type", "")):
            exchange.facts["runs_scripts"] = True

    # -- the real browser ---------------------------------------------------------------------------
    def _hand_over(self, response: httpx.Response) -> bool:
        """Whether the page the script-less browser just read runs scripts that the real browser is to run (it
        then gets that page as read, and the scenario's cookies); when none can be had, the page's exchange
        says why its scripts were not run (``scripts_not_run``, which SEC-05 reads)."""
        exchange = response.extensions.get(_EXCHANGE)
        if exchange is None or not exchange.facts.get("runs_scripts"):
            return False
        if self.spec.browser == "simulated":
            self._no_browser = '[target.web] browser = "simulated": rfcheck\'s browser runs no script'
        else:
            try:
                self._open_real()
            except NoBrowser as err:
                self._no_browser = f"no Chromium could be had to run them: {err}"
        real = self._real
        if real is None:
            exchange.note(f"the page runs scripts, which were not run ({self._no_browser})",
                          scripts_not_run=self._no_browser)
            self._browser_note = f"the app's pages run scripts, which rfcheck's browser did not run ({self._no_browser})"
            return False
        assert self._browser is not None
        real.hand_over(response, exchange,
                       chromium.cookies_for_browser(iter(self._browser.cookies.jar), httpx.URL(self._url).host))
        return True

    def _scripts_not_run(self, response: httpx.Response) -> str:
        exchange = response.extensions.get(_EXCHANGE)
        reason = exchange.facts.get("scripts_not_run") if exchange is not None else None
        return f"they may start the login, but they were not run ({reason})" if reason else ""

    def _open_real(self) -> None:
        """This scenario's context in the run's Chromium (launched if none runs yet); :class:`NoBrowser`
        when none can be had."""
        with self._real_lock:
            if self._real is not None:
                return
            real = RealBrowser(self._provider, self._is_app, functools.partial(self._fetch, forwarded=True),
                               self._deadlines, self.spec.step_timeout)
            real.start()
            self._real, self._forwarder = real, self._new_forwarder()
            why = ", as the app's pages run scripts" if self.spec.browser == "auto" else ""
            self._browser_note = self._real.note + why

    def _close_real(self) -> None:
        with self._real_lock:
            real, forwarder, self._real, self._forwarder = self._real, self._forwarder, None, None
        if real is not None:
            real.close()
        if forwarder is not None:
            forwarder.close()

    def _visit(self, url: str) -> Visit:
        assert self._real is not None
        self._forget_ended_cookies()
        return self._real.visit(url)

    def _landed(self, visit: Visit) -> "_Landed":
        assert self._real is not None
        if visit.login_url:
            raise StepFailed("the app sent the user to log in again" + self._ended_sessions(), kind="login_required")
        if visit.foreign:
            raise StepFailed(f"the app sent its user to {short_url(visit.foreign)}, which is neither the app "
                             f"({self._url}) nor Request Finance: rfcheck's browser goes nowhere else",
                             kind="foreign_redirect")
        status = visit.status or 0
        path = httpx.URL(visit.document or visit.url).path
        if status >= 400 or not visit.script_errors:
            return _Landed(status, path, self._real.answer_of(visit.document))
        method, url, status = visit.script_errors[0]
        return _Landed(status, path, self._real.answer_of(url), f"{method} {httpx.URL(url).path}")

    def _forget_ended_cookies(self) -> None:
        """Cookies whose lifetime ended on rfcheck's clock leave the real browser too (Chromium keeps its own)."""
        now = self._provider.clock.now()
        ended = [name for name, (end, _) in self._lifetimes.items() if end <= now]
        for name in ended:
            self._ended.append(f"{name} ({self._lifetimes.pop(name)[1]})")
        if ended and self._real is not None:
            self._real.forget_cookies(ended)

    # -- cookie lifetimes on rfcheck's clock ------------------------------------------------------
    def _note_lifetimes(self, set_cookies: list[str]) -> None:
        now = self._provider.clock.now()
        for header in set_cookies:
            name, end, said = cookie_lifetime(header, now)
            if not name:
                continue
            if end is not None and said.startswith("Expires") and not self._app_clock_follows():
                end += self._provider.clock.offset  # a date the app wrote on its own clock, which stood still
            if end is None:
                self._lifetimes.pop(name, None)
            else:
                self._lifetimes[name] = (end, said)

    def _app_clock_follows(self) -> bool:
        offset = self._provider.clock.offset
        if self._follows is None or self._follows[0] != offset:
            self._follows = (offset, self.can_move_clock)
        return self._follows[1]

    def _expire_cookies(self) -> None:
        """Drop the cookies whose lifetime ended on rfcheck's clock (the jar only knows the real one)."""
        assert self._browser is not None
        now = self._provider.clock.now()
        for cookie in list(self._browser.cookies.jar):
            lifetime = self._lifetimes.get(cookie.name)
            if lifetime is not None and lifetime[0] <= now:
                self._browser.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
                self._ended.append(f"{cookie.name} ({lifetime[1]})")
                del self._lifetimes[cookie.name]

    def _ended_sessions(self) -> str:
        if not self._ended:
            return ""
        ended, self._ended = self._ended, []
        return (f": its cookie {', '.join(ended)} had reached the end of the lifetime the app gave it, on "
                "rfcheck's clock")

    def _check_alive(self, what: str) -> None:
        if self._process is not None and not self._process.running:
            raise StepFailed(f"{what}: the app had exited (status {self._process.returncode})", kind="crashed")


def cookie_lifetime(header: str, now: float) -> tuple[str, float | None, str]:
    """A ``Set-Cookie`` header's cookie name, the moment its lifetime ends on a clock that reads ``now``
    (None: a browser-session cookie), and the attribute that said so (RFC 6265 §5.3: Max-Age wins)."""
    parts = [part.strip() for part in header.split(";")]
    name = parts[0].split("=", 1)[0].strip() if parts and "=" in parts[0] else ""
    attributes = {key.strip().lower(): value.strip() for key, _, value in (p.partition("=") for p in parts[1:])}
    max_age = attributes.get("max-age", "")
    if max_age.lstrip("-").isdigit():
        return name, now + int(max_age), f"Max-Age={max_age}"
    if "expires" in attributes:
        try:
            return name, parsedate_to_datetime(attributes["expires"]).timestamp(), f"Expires={attributes['expires']}"
        except (TypeError, ValueError):
            pass
    return name, None, ""


class _Page:
    """The body of one answer to the browser, read up to ``limit`` bytes (:data:`PAGE_LIMIT`; the real
    browser's :data:`BROWSER_LIMIT`): what a user would be shown. The rest is counted, hashed and searched for the secrets rfcheck issued (SEC-05), never kept."""

    def __init__(self, known: Known, limit: int = PAGE_LIMIT) -> None:
        self.limit = limit
        self.size = 0
        self.left_out = 0
        self._hash = hashlib.sha256()
        self._scanner = SecretScanner(known)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read(self, response: httpx.Response) -> None:
        kept = bytearray()
        for chunk in response.iter_bytes():
            self.size += len(chunk)
            room = self.limit - len(kept)
            if room > 0:
                kept += chunk[:room]
            rest = chunk[max(room, 0):]
            if rest:
                self.left_out += len(rest)
                self._hash.update(rest)
            self._scanner.feed(self._decoder.decode(chunk))
        self._scanner.close()
        response._content = bytes(kept)  # what .text and .content give from here on: the page as read

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()

    def journal_text(self, text: str) -> str:
        """The page as the journal keeps it: its first :data:`MAX_PAGE` characters, then an excerpt around
        each secret found in what lies beyond them."""
        kept = text[:MAX_PAGE]
        beyond = [hit for hit in self._scanner.hits if hit not in kept]
        if not beyond:
            return kept
        return kept + "\n[rfcheck: excerpts of the page beyond what is kept here]\n" + "\n".join(beyond)



_EXCHANGE = "rfcheck.exchange"  # the journal's record of an answer, among the answer's extensions


@dataclass(frozen=True)
class _Landed:
    """Where a step's page landed: its status and path, the start of the answer, and which request of its
    scripts (``by_script``) the app answered with an error, when a script's did."""

    status: int
    path: str
    snippet: str
    by_script: str = ""


class _KeepNone(http.cookiejar.DefaultCookiePolicy):
    """The real browser's client to the app keeps no cookie: Chromium keeps them, and sends them."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False
