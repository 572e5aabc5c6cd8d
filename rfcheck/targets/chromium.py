"""Headless Chromium for web targets whose pages run scripts (``[target.web] browser``).

rfcheck's script-less browser (:mod:`rfcheck.targets.web`) cannot see what a page's scripts do: fetch a
token from the app's backend, keep one in localStorage, call the API from the browser, start a login.
Once a page runs scripts (:func:`runs_scripts`), the rest of the scenario is driven in headless Chromium
through Playwright (:func:`find_chromium` says which, or why none).

- One Chromium process serves every scenario of a run (:class:`Engine`, kept while scenarios use it and
  for :data:`LINGER` seconds after, so that scenarios that follow one another share it), each scenario in
  a context of its own (cookies, storage), each visit in a page of its own, so that parallel units load
  their pages at once. Playwright's objects belong to one thread: that thread runs Playwright's asyncio
  API, and the lanes' threads hand it their visits (:func:`asyncio.run_coroutine_threadsafe`); its sync
  API would make each lane's visit wait for the one before.
- Chromium reaches nothing by itself: each context's proxy is rfcheck's (:mod:`rfcheck.targets.pageproxy`),
  which serves every request the browser makes and records it in the journal.
- TLS: that proxy terminates the browser's TLS with certificates of a CA made for the browser alone, which
  Chromium accepts through ``--ignore-certificate-errors-spki-list`` naming that CA's key and nothing else.
  Playwright's ``ignore_https_errors`` would accept any certificate at all, and the browser never
  connects to the mock's servers (the proxy serves the mock's hosts in process), so the run's CA need not
  be trusted by it.
- A visit ends when the page has loaded and no request of it was in flight or began while a timer of
  :data:`QUIET` seconds ran in the page (what its scripts do later, on timers of their own, is not seen);
  then what the browser holds (cookies, localStorage, sessionStorage, IndexedDB) is read.
  Service workers are blocked: every request is the page's own.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rfcheck import leftovers
from rfcheck.runtime.procfs import marked
from rfcheck.tls import RunCA

T = TypeVar("T")

ENV_CHROMIUM = "RFCHECK_CHROMIUM"  # the Chromium (or Chrome) executable to use, when set
SYSTEM_CHROMIUM = "/usr/bin/chromium"
MARK = "RFCHECK_BROWSER"  # marks the browser's processes (Chromium calls setsid: not a process group)
QUIET = 0.1  # seconds of a page timer with no request in flight after which a loaded page's scripts are done
LINGER = 5.0  # seconds the browser outlives its last scenario, for the next one to use it
TIMEOUT = 30.0  # seconds for the browser to start, or to do anything asked of it besides a visit
CALL_MARGIN = 5.0  # seconds a call to the browser may take beyond its visit's own deadline
_TICK = 0.02
_PAGE_TIMER = "ms => new Promise(done => setTimeout(done, ms))"
# as root and on a closed network: no sandbox (it needs user namespaces), nothing fetched in the background
_FLAGS = ("--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--disable-default-apps", "--no-default-browser-check")
HOW_TO_GET_ONE = ("install Debian's chromium (apt-get install chromium), or run `python3 -m playwright install "
                  f"chromium` where the network allows, or name a Chromium executable in {ENV_CHROMIUM}")

# what a request of the browser is, as :class:`Visit` tells them apart (the driver classifies)
APP, LOGIN, MOCK, OTHER = "app", "login", "mock", "other"
Classify = Callable[[str], str]


class NoBrowser(Exception):
    """No real browser can be had: ``str(err)`` says what is missing and how to get one."""


# -- which pages run scripts -------------------------------------------------------------------
_JAVASCRIPT_TYPES = {"", "module", "text/javascript", "application/javascript", "text/ecmascript",
                     "application/ecmascript", "application/x-javascript", "text/jscript", "text/livescript"}


class _ScriptFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): (value or "") for name, value in attrs}
        # HTML §4.12.1: a script runs when its type is absent, empty, a JavaScript MIME type or "module";
        # JSON data (application/json, ld+json, importmap) and templates never do
        script = tag == "script" and names.get("type", "").split(";")[0].strip().lower() in _JAVASCRIPT_TYPES
        handler = any(name.startswith("on") and len(name) > 2 for name in names)
        javascript_url = any(value.strip().lower().startswith("javascript:") for value in names.values())
        self.found = self.found or script or handler or javascript_url


def runs_scripts(page: str, content_type: str) -> bool:
    """Whether a page the app sent runs scripts in a browser: an HTML document holding a ``<script>`` that
    is not data, an inline event handler (``onload=``) or a ``javascript:`` URL."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in ("text/html", "application/xhtml+xml") and (kind or not page.lstrip().startswith("<")):
        return False
    finder = _ScriptFinder()
    try:
        finder.feed(page)
        finder.close()
    except (AssertionError, ValueError):  # markup the parser gives up on: a browser runs what it can
        return "<script" in page.lower()
    return finder.found


# -- which Chromium --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Found:
    """The Chromium to launch: ``executable`` (None: Playwright's own, from ``playwright install``) and
    ``how`` it was found, as the report's notes say it."""

    executable: str | None
    how: str


def find_chromium(environ: dict[str, str] | None = None) -> Found:
    """The Chromium rfcheck drives: :data:`ENV_CHROMIUM`, else Debian's ``/usr/bin/chromium``, else
    ``chromium`` on PATH, else Playwright's own browser; :class:`NoBrowser` when Playwright itself is
    missing or :data:`ENV_CHROMIUM` names no executable."""
    environ = dict(os.environ) if environ is None else environ
    if importlib.util.find_spec("playwright") is None:
        raise NoBrowser("the Python package playwright, which drives it, is not installed (python3 -m pip "
                        "install playwright); then " + HOW_TO_GET_ONE)
    named = environ.get(ENV_CHROMIUM, "")
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise NoBrowser(f"{ENV_CHROMIUM}={named} names no executable file; " + HOW_TO_GET_ONE)
        return Found(named, f"{named} ({ENV_CHROMIUM})")
    if os.access(SYSTEM_CHROMIUM, os.X_OK):
        return Found(SYSTEM_CHROMIUM, SYSTEM_CHROMIUM)
    on_path = shutil.which("chromium", path=environ.get("PATH"))
    if on_path:
        return Found(on_path, on_path)
    return Found(None, "Playwright's own Chromium")


# -- the browser process ----------------------------------------------------------------------------
class Engine:
    """One headless Chromium and the thread that drives it (Playwright's asyncio API on its own loop)."""

    def __init__(self, found: Found) -> None:
        self.found = found
        self.version = ""
        self._mark = f"{MARK}={os.getpid()}-{secrets.token_hex(8)}"
        self._home = leftovers.folder("browser")  # the browser's HOME: nothing written to the user's own
        self.ca = RunCA(Path(leftovers.folder("browserca")))
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._ca_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rfcheck-chromium", daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self._browser: Any = None
        try:
            self.call(self._launch(), TIMEOUT)
        except Exception as err:
            self.close()
            raise NoBrowser(f"{found.how} could not be started ({_first_line(err)}); " + HOW_TO_GET_ONE) from err
        except BaseException:  # Ctrl-C while it started
            self.close()
            raise

    async def _launch(self) -> None:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        flags = [*_FLAGS, f"--ignore-certificate-errors-spki-list={self._ca_spki()}"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")
        name, _, value = self._mark.partition("=")
        env = {**os.environ, "HOME": self._home, name: value}
        self._browser = await self._playwright.chromium.launch(
            executable_path=self.found.executable, args=flags, env=env, headless=True,
            timeout=TIMEOUT * 1000)
        self.version = self._browser.version

    def _ca_spki(self) -> str:
        """Chromium's form of the CA's public key: base64 of the SHA-256 of its SubjectPublicKeyInfo."""
        cert = x509.load_pem_x509_certificate(Path(self.ca.ca_file).read_bytes())
        der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")

    def tls_for(self, host: str) -> ssl.SSLContext:
        """The server side of the browser's TLS to ``host`` (the proxy's end of a CONNECT tunnel): a certificate
        of the browser's CA, sent with that CA so that Chromium finds the key it was told to accept."""
        with self._ca_lock:
            if host not in self._contexts:
                paths = self.ca.issue((host,), re.sub(r"[^A-Za-z0-9.-]", "_", host) or "host")
                chain = Path(paths.cert_file).with_suffix(".chain.pem")
                chain.write_bytes(Path(paths.cert_file).read_bytes() + Path(self.ca.ca_file).read_bytes())
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(str(chain), paths.key_file)
                self._contexts[host] = context
            return self._contexts[host]

    @property
    def alive(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coroutine`` on the browser's thread; its result, or its error, within ``timeout`` seconds."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def session(self, proxy_url: str, classify: Classify) -> "Session":
        """A new context (a fresh profile: no cookie, no storage) whose every request goes to ``proxy_url``."""
        context = self.call(self._browser.new_context(proxy={"server": proxy_url}, service_workers="block"),
                            TIMEOUT)
        return Session(self, context, classify)

    def close(self) -> None:
        """Close the browser, stop its thread, and make sure none of its processes is left."""
        if self._browser is not None or self._playwright is not None:
            try:
                self.call(self._close(), TIMEOUT)
            except Exception:  # a browser that died already; what is left of it is killed below
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        _kill_marked(self._mark)
        shutil.rmtree(self._home, ignore_errors=True)
        shutil.rmtree(self.ca.folder, ignore_errors=True)

    async def _close(self) -> None:
        browser, playwright, self._browser, self._playwright = self._browser, self._playwright, None, None
        try:
            if browser is not None:
                await browser.close()
        finally:
            if playwright is not None:
                await playwright.stop()


def _kill_marked(mark: str) -> None:
    deadline = time.monotonic() + 5
    while (left := marked(mark)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__


# -- one browser for the run ----------------------------------------------------------------------
class _Shared:
    """The run's :class:`Engine`: made on first use, kept while a scenario uses it and :data:`LINGER`
    seconds after the last one, closed at the latest when the process exits."""

    lock = threading.Lock()
    engine: Engine | None = None
    users = 0
    closer: threading.Timer | None = None
    failed: dict[Found, NoBrowser] = {}  # a Chromium that would not start is not tried again for every scenario


def acquire(found: Found) -> Engine:
    """The run's browser (launched now if none runs); :func:`release` it when done. :class:`NoBrowser`
    when it cannot be started."""
    with _Shared.lock:
        if _Shared.closer is not None:
            _Shared.closer.cancel()
            _Shared.closer = None
        if _Shared.engine is not None and not _Shared.engine.alive:
            _Shared.engine.close()
            _Shared.engine = None
        if _Shared.engine is None:
            if found in _Shared.failed:
                raise _Shared.failed[found]
            try:
                _Shared.engine = Engine(found)
            except NoBrowser as err:
                _Shared.failed[found] = err
                raise
        _Shared.users += 1
        return _Shared.engine


def release() -> None:
    with _Shared.lock:
        _Shared.users = max(0, _Shared.users - 1)
        if _Shared.users == 0 and _Shared.engine is not None and _Shared.closer is None:
            _Shared.closer = threading.Timer(LINGER, _close_idle)
            _Shared.closer.daemon = True
            _Shared.closer.start()


def _close_idle() -> None:
    with _Shared.lock:
        engine = _Shared.engine if _Shared.users == 0 else None
        if engine is not None:
            _Shared.engine, _Shared.closer = None, None
    if engine is not None:
        engine.close()


def shutdown() -> None:
    """Close the run's browser now (the end of a run; also at the process's exit)."""
    with _Shared.lock:
        engine, _Shared.engine, _Shared.users = _Shared.engine, None, 0
        if _Shared.closer is not None:
            _Shared.closer.cancel()
            _Shared.closer = None
    if engine is not None:
        engine.close()


atexit.register(shutdown)


# -- one scenario's browser -------------------------------------------------------------------------
@dataclass
class Held:
    """Something the browser held at the end of a visit: where (``localStorage item rt of
    http://localhost:5000``) and its value; ``cookie`` values are ``name=value``."""

    where: str
    value: str
    cookie: bool = False


@dataclass
class Visit:
    """What one visit of a page showed: where its main frame went and how the app answered it."""

    url: str
    status: int | None = None  # the app's answer to the last document the main frame loaded
    document: str = ""  # that document's URL
    login_url: str = ""  # the authorization URL the page sent the browser to (the app wants a login)
    foreign: str = ""  # a URL that is neither the app nor the mock, where the page sent the browser
    script_errors: list[tuple[str, str, int]] = field(default_factory=list)  # (method, url, status) >= 400
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, Chromium's error) of requests never answered
    refused_scripts: list[str] = field(default_factory=list)  # scripts of the page on hosts the browser may not reach
    timed_out: bool = False
    unfinished: list[str] = field(default_factory=list)  # requests still in flight when the time was up
    held: list[Held] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return bool(self.login_url or self.foreign)


class Session:
    """One scenario's context of the run's browser: its pages share its cookies and storage."""

    def __init__(self, engine: Engine, context: Any, classify: Classify) -> None:
        self._engine = engine
        self._context = context
        self._classify = classify
        self._idle: list[Any] = []  # pages of finished visits, on about:blank: a new page costs ~80 ms

    def visit(self, url: str, seconds: float) -> Visit:
        """Open ``url`` in a page of its own and wait, at most ``seconds``, until it and its scripts are done."""
        return self._engine.call(self._visit(url, max(seconds, 0.1)), seconds + CALL_MARGIN)

    def add_cookies(self, cookies: list[dict[str, Any]]) -> None:
        if cookies:
            self._engine.call(self._context.add_cookies(cookies), TIMEOUT)

    def forget_cookies(self, names: list[str]) -> None:
        """Drop these cookies (their lifetime ended on rfcheck's clock, which Chromium does not follow)."""
        for name in names:
            self._engine.call(self._context.clear_cookies(name=name), TIMEOUT)

    def close(self) -> None:
        try:
            self._engine.call(self._context.close(), TIMEOUT)
        except Exception:  # the browser went away: nothing of the context is left to close
            pass

    async def _visit(self, url: str, seconds: float) -> Visit:
        from playwright.async_api import Error as PlaywrightError

        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        visit = Visit(url)
        page = self._idle.pop() if self._idle else await self._context.new_page()
        watch = _Watch(page, visit, self._classify, loop)
        try:
            try:
                await page.goto(url, wait_until="commit", timeout=seconds * 1000)
            except PlaywrightError:
                pass  # an answer the browser did not show (rfcheck's 204 to a login): the watch knows why
            await watch.settle(deadline)
            visit.held = await self._held(page)
        finally:
            watch.stop()
            await self._put_away(page)
        return visit

    async def _put_away(self, page: Any) -> None:
        """Keep the page for the next visit once its scripts are stopped (a page left running would go on
        sending requests between the scenario's steps); a page that will not go is closed."""
        from playwright.async_api import Error as PlaywrightError

        try:
            await page.goto("about:blank", timeout=TIMEOUT * 1000)
            self._idle.append(page)
        except PlaywrightError:
            with contextlib.suppress(PlaywrightError):
                await page.close()

    async def _held(self, page: Any) -> list[Held]:
        from playwright.async_api import Error as PlaywrightError

        held = [Held(f"cookie {c['name']} of {c['domain']}{' (HttpOnly)' if c.get('httpOnly') else ''}",
                     f"{c['name']}={c['value']}", cookie=True) for c in await self._context.cookies()]
        state = await self._context.storage_state(indexed_db=True)
        for origin in state.get("origins", []):
            held += [Held(f"localStorage item {item['name']} of {origin['origin']}", item["value"])
                     for item in origin.get("localStorage", [])]
            held += [Held(f"IndexedDB database {db.get('name', '?')} of {origin['origin']}", json.dumps(db))
                     for db in origin.get("indexedDB", [])]
        origins: set[str] = set()
        for frame in page.frames:
            try:
                origin, items = await frame.evaluate("() => [location.origin, Object.entries(sessionStorage)]")
            except PlaywrightError:  # a frame gone, or one whose origin keeps no storage (about:blank)
                continue
            if origin not in origins:
                origins.add(origin)
                held += [Held(f"sessionStorage item {name} of {origin}", value) for name, value in items]
        return held


class _Watch:
    """What the page's requests show while it loads, and when it is done."""

    def __init__(self, page: Any, visit: Visit, classify: Classify, loop: asyncio.AbstractEventLoop) -> None:
        self._page, self._visit, self._classify, self._loop = page, visit, classify, loop
        self._pending: set[Any] = set()
        self._loading = True  # a document of the main frame is on its way
        self._began = 0  # requests the page began
        self._listeners = {"request": self._request, "requestfinished": self._finished,
                           "requestfailed": self._failed, "response": self._response, "load": self._load}
        for event, listener in self._listeners.items():
            page.on(event, listener)

    def stop(self) -> None:
        for event, listener in self._listeners.items():
            self._page.remove_listener(event, listener)

    def _main(self, request: Any) -> bool:
        try:
            return bool(request.is_navigation_request() and request.frame == self._page.main_frame)
        except Exception:  # a request of no frame (a worker's)
            return False

    def _request(self, request: Any) -> None:
        self._pending.add(request)
        self._began += 1
        kind = self._classify(request.url)
        if kind == LOGIN and not self._visit.login_url:
            self._visit.login_url = request.url
        elif self._main(request):
            self._loading = True
            if kind == OTHER and not self._visit.foreign:
                self._visit.foreign = request.url

    def _done(self, request: Any) -> None:
        self._pending.discard(request)

    def _finished(self, request: Any) -> None:
        self._done(request)

    def _failed(self, request: Any) -> None:
        self._done(request)
        kind = self._classify(request.url)
        if kind != LOGIN:
            self._visit.failed.append((request.url, str(request.failure or "failed")))
        if kind == OTHER and request.resource_type == "script":
            self._visit.refused_scripts.append(request.url)
        if self._main(request):
            self._loading = False

    def _response(self, response: Any) -> None:
        request = response.request
        status = response.status
        if self._main(request):
            if not 300 <= status < 400:
                self._visit.status, self._visit.document = status, response.url
            if status in (204, 205):  # no document to show: the main frame stays where it was
                self._loading = False
        elif request.resource_type in ("fetch", "xhr") and status >= 400 and self._classify(request.url) == APP:
            self._visit.script_errors.append((request.method, request.url, status))
        elif request.resource_type == "script" and self._classify(request.url) == OTHER:
            self._visit.refused_scripts.append(request.url)  # answered by rfcheck's refusal, not by that host

    def _load(self, page: Any) -> None:
        self._loading = False

    async def settle(self, deadline: float) -> None:
        """Wait until the page was sent elsewhere, or has loaded and no request of it was in flight or began
        during a timer of :data:`QUIET` seconds run by the page itself (it fires only once the page's scripts
        have given back its event loop: a busy script is waited for); past ``deadline``, the visit timed out."""
        from playwright.async_api import Error as PlaywrightError

        while self._loop.time() < deadline:
            if self._visit.stopped:
                return
            if self._loading or self._pending:
                await asyncio.sleep(_TICK)
                continue
            began = self._began
            try:
                await asyncio.wait_for(self._page.evaluate(_PAGE_TIMER, QUIET * 1000),
                                       max(deadline - self._loop.time(), 0.01))
            except PlaywrightError:  # the page navigated meanwhile: its new document is waited for
                continue
            except asyncio.TimeoutError:
                break
            if not self._loading and not self._pending and self._began == began:
                return
        self._visit.timed_out = True
        self._visit.unfinished = [f"{r.method} {r.url}" for r in self._pending]


def cookies_for_browser(jar: Iterator[Any], host: str) -> list[dict[str, Any]]:
    """The script-less browser's cookies (``http.cookiejar`` cookies for the app's ``host``) as Playwright
    takes them, when a scenario moves on to the real browser."""
    cookies = []
    for cookie in jar:
        rest = {key.lower(): value for key, value in getattr(cookie, "_rest", {}).items()}
        same_site = str(rest.get("samesite") or "Lax").capitalize()
        entry: dict[str, Any] = {"name": cookie.name, "value": cookie.value or "", "domain": host,
                                 "path": cookie.path or "/", "secure": bool(cookie.secure),
                                 "httpOnly": "httponly" in rest,
                                 "sameSite": same_site if same_site in ("Strict", "Lax", "None") else "Lax"}
        if cookie.expires:
            entry["expires"] = float(cookie.expires)
        cookies.append(entry)
    return cookies
