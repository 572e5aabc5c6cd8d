"""A tiny, correct web integration for rfcheck's own tests: stdlib HTTP server + requests.

Authorization code flow with state, nonce and PKCE S256 against ``RF_ISSUER``, a session
cookie, and ``/invoices`` calling ``RF_API_URL``. ``APP_MODE`` makes it misbehave on purpose:
``crash`` exits at start, ``mute`` never listens, ``die_on_error`` exits when the API answers an error;
``APP_COOKIE_MAX_AGE`` gives its session cookie a lifetime; ``APP_CLOCK_MOVER_FAILS_ONCE`` (a path) makes
the first instance die after its code exchange as libfaketime's own failure does (every instance, with
``APP_MODE=clock_mover_fails``). Every line it writes names its pid, so the
tests can tell processes apart (and check that none outlives them).

It waits with ``threading.Event().wait`` rather than ``time.sleep``: rfcheck runs it under
libfaketime with ``DONT_FAKE_MONOTONIC=1``, and libfaketime 0.9.10 (Debian 12) breaks Python
3.11's ``time.sleep`` there (``OSError: [Errno 22]``, wolfcw/libfaketime#426).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

PID = os.getpid()
SESSIONS: dict[str, dict[str, Any]] = {}
LOCK = threading.Lock()


def setting(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        print(f"pid={PID} {name} is not set, giving up", file=sys.stderr, flush=True)
        sys.exit(3)
    return value


class InsecureTransportError(Exception):
    """What oauthlib raises for an http:// authorization server without OAUTHLIB_INSECURE_TRANSPORT."""


def refuse_http(url: str) -> None:
    if url.startswith("http://"):
        raise InsecureTransportError("(insecure_transport) OAuth 2 MUST utilize https.")


class App(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        route = {"/": self.home, "/login": self.login, "/callback": self.callback,
                 "/invoices": self.invoices, "/slow": self.slow, "/trickle": self.trickle,
                 "/endless": self.endless, "/huge": self.huge,
                 "/elsewhere": lambda params: self.redirect("http://rfcheck-elsewhere.invalid:9/collect")}.get(url.path)
        if route is None:
            self.answer(404, "not found")
        else:
            route({k: v[0] for k, v in parse_qs(url.query).items()})

    def log_message(self, format: str, *args: Any) -> None:  # stderr, like http.server, with the pid
        print(f"pid={PID} " + format % args, file=sys.stderr, flush=True)

    # -- routes ----------------------------------------------------------------------
    def home(self, params: dict[str, str]) -> None:
        if os.environ.get("APP_MODE") == "broken_after_login" and self.session():
            self.answer(500, "Internal Server Error")
            return
        self.answer(200, "home")

    def login(self, params: dict[str, str]) -> None:
        if os.environ.get("APP_MODE") == "login_500":  # as Flask answers an exception: 500, traceback on stderr
            try:
                refuse_http(ISSUER)
            except InsecureTransportError:
                traceback.print_exc()
                sys.stderr.flush()
                self.answer(500, "<!doctype html><title>500 Internal Server Error</title><h1>Internal Server "
                                 "Error</h1><p>The server encountered an internal error and was unable to complete "
                                 "your request.</p>")
                return
        sid, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        with LOCK:
            SESSIONS[sid] = {"state": state, "verifier": verifier}
        query = urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                           "audience": "accounts", "scope": "openid profile email offline_access",
                           "state": state, "nonce": nonce, "code_challenge": challenge,
                           "code_challenge_method": "S256"})
        lifetime = os.environ.get("APP_COOKIE_MAX_AGE", "")  # a session cookie that lives this many seconds
        self.redirect(f"{ISSUER}/authorize?{query}",
                      cookie=f"sid={sid}; Path=/; HttpOnly" + (f"; Max-Age={lifetime}" if lifetime else ""))

    def callback(self, params: dict[str, str]) -> None:
        session = self.session()
        if session is None or params.get("state") != session.get("state"):
            self.answer(400, "state mismatch")
            return
        tokens = requests.post(f"{ISSUER}/oauth/token", timeout=5, data={
            "grant_type": "authorization_code", "code": params.get("code", ""), "redirect_uri": REDIRECT_URI,
            "code_verifier": session["verifier"], "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        if tokens.status_code != 200:
            self.answer(400, f"token endpoint answered {tokens.status_code}")
            return
        session.update(access_token=tokens.json()["access_token"], state=None)
        marker = os.environ.get("APP_CLOCK_MOVER_FAILS_ONCE", "")  # as libfaketime's race takes an app down
        if marker and (os.environ.get("APP_MODE") == "clock_mover_fails" or not os.path.exists(marker)):
            open(marker, "w").close()
            print("libfaketime: In parse_ft_string(), failed to parse FAKETIME timestamp.\n"
                  "Please check specification +0 with format %Y-%m-%d %T", file=sys.stderr, flush=True)
            os._exit(139)
        print(f"pid={PID} logged in", flush=True)
        self.redirect("/")

    def invoices(self, params: dict[str, str]) -> None:
        session = self.session()
        if session is None or not session.get("access_token"):
            self.redirect("/login")
            return
        if os.environ.get("APP_MODE") == "broken_after_login":
            self.answer(500, "Internal Server Error")
            return
        if os.environ.get("APP_MODE") == "flood":  # megabytes of output without a newline, a token inside
            noise = "z" * (int(os.environ.get("APP_FLOOD_MB", "200")) * 512 * 1024)
            sys.stdout.write(f"pid={PID} debug {noise} token={session['access_token']} {noise}")
            sys.stdout.flush()
        answer = requests.get(f"{API_URL}/invoices", timeout=5, headers={
            "Authorization": f"Bearer {session['access_token']}", "X-Network": "test"})
        if answer.status_code != 200:
            if os.environ.get("APP_MODE") == "die_on_error":
                print(f"pid={PID} FATAL: the API answered {answer.status_code}", file=sys.stderr, flush=True)
                os._exit(1)
            self.answer(502, f"the API answered {answer.status_code}")
            return
        self.answer(200, f"{len(answer.json())} invoices")

    def slow(self, params: dict[str, str]) -> None:
        threading.Event().wait(10)
        self.answer(200, "finally")

    # -- hostile answers -------------------------------------------------------------------
    def trickle(self, params: dict[str, str]) -> None:
        """A page that comes one byte a second, for ever: only a deadline on the whole step ends it."""
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        for _ in range(100000):
            self.wfile.write(b".")
            self.wfile.flush()
            threading.Event().wait(1)

    def endless(self, params: dict[str, str]) -> None:
        """An endless chunked page, as fast as the socket takes it."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"x" * 65536
        while True:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def huge(self, params: dict[str, str]) -> None:
        """A page of APP_PAGE_MB megabytes, with the session's access token at its very end."""
        session = self.session() or {}
        size = int(os.environ.get("APP_PAGE_MB", "500")) * 1024 * 1024
        tail = f"<p>{session.get('access_token', '')}</p>".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(size + len(tail)))
        self.end_headers()
        block = b"<p>" + b"y" * 65529 + b"</p>"
        for _ in range(size // len(block)):
            self.wfile.write(block)
        self.wfile.write(b" " * (size % len(block)) + tail)

    # -- plumbing ----------------------------------------------------------------------
    def session(self) -> dict[str, Any] | None:
        cookies = dict(part.strip().split("=", 1) for part in self.headers.get("Cookie", "").split(";")
                       if "=" in part)
        with LOCK:
            return SESSIONS.get(cookies.get("sid", ""))

    def redirect(self, location: str, cookie: str = "") -> None:
        self.send_response(302)
        self.send_header("Location", location)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    mode = os.environ.get("APP_MODE", "")
    if mode == "mute":
        print(f"pid={PID} warming up the caches", flush=True)
        threading.Event().wait(60)
    ISSUER, API_URL = setting("RF_ISSUER").rstrip("/"), setting("RF_API_URL").rstrip("/")
    CLIENT_ID, CLIENT_SECRET = setting("RF_CLIENT_ID"), setting("RF_CLIENT_SECRET")
    REDIRECT_URI, PORT = setting("RF_REDIRECT_URI"), int(setting("PORT"))
    if mode == "crash":
        setting("RF_MISSING_SETTING")
    if mode == "daemon":  # a helper that leaves the app's process group and session (double fork, setsid)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                print(f"pid={os.getpid()} daemon detached", flush=True)
                threading.Event().wait(600)
            os._exit(0)
    server = ThreadingHTTPServer(("127.0.0.1", PORT), App)
    server.daemon_threads = True
    print(f"pid={PID} listening on {PORT}", flush=True)
    server.serve_forever()
