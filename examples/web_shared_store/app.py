"""Acme Invoices: a Request Finance integration as a Flask web app whose tokens live in SQLite.

The authorization code flow written by hand on ``requests`` and PyJWT, the way a team writes it
when it runs several instances of the app (gunicorn workers, containers, hosts with one shared
volume): nothing about a user lives in a process. One SQLite database at a fixed path,
``<tempdir>/acme-rf-web-store/<client_id>.sqlite3`` (``ACME_TOKEN_STORE_DIR`` moves the folder),
holds

- ``tokens``: the Request Finance tokens of each user, keyed by the ID token's ``sub`` (one row
  per user, shared by all of that user's browsers and by every instance of the app);
- ``browser_sessions``: the browser's session cookie (a random ID, stored hashed) -> ``sub``;
- ``pending_logins``: logins a browser started (``state``, PKCE verifier, ``nonce``).

What it does, requirement by requirement (see README.md):

- ``/login``: ``response_type=code``, scope ``openid profile email offline_access user:read``,
  ``audience=accounts``, ``state``, ``nonce``, PKCE ``S256``; ``prompt=consent`` after an
  ``insufficient_scope``;
- ``/callback``: only for a ``state`` this browser started; the code exchanged once with the
  verifier and ``client_secret_basic``; the ID token verified with PyJWT (``PyJWKClient``, RS256
  only, ``aud`` = client ID, ``iss`` from discovery with its trailing slash, ``exp``, ``iat``,
  ``sub``, ``nonce``); a new session ID at login;
- tokens reused until a minute before they expire; the refresh runs in a SQLite ``BEGIN
  IMMEDIATE`` transaction that reads the row again, so requests in any process share one
  refresh, and the rotated refresh token is stored in the same transaction;
- ``401`` from the API: one refresh and one retry; ``invalid_grant``: the stored tokens are
  deleted and the user is sent to ``/login``; ``403 insufficient_scope``: a new authorization
  with ``prompt=consent``; ``429``/``5xx`` from the token endpoint: at most 2 retries honouring
  ``Retry-After``, then a ``503`` page while the session and the tokens are kept;
- ``X-Network`` on every API call; every Request Finance error becomes a page the app chose
  (400, 502, 503) or a redirect to log in again, never a 500; nothing it logs holds a token or
  the client secret.

Configuration comes from the environment only (see ``Settings``). Run it with ``python3 app.py``.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import fcntl
import hashlib
import logging
import os
import re
import secrets
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NoReturn
from urllib.parse import quote_plus, urlencode

import jwt
import requests
from flask import Flask, Response, g, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import escape

SCOPES = "openid profile email offline_access user:read"
AUDIENCE = "accounts"
REFRESH_MARGIN = 60.0  # seconds: refresh when less validity than this remains
MAX_TOKEN_RETRIES = 2  # token endpoint retries after 429/5xx (so at most 3 attempts)
MAX_RETRY_WAIT = 5.0  # seconds: a longer Retry-After is not waited for while the user waits
HTTP_TIMEOUT = 5  # seconds, for every request to Request Finance
ID_TOKEN_LEEWAY = 30  # seconds of clock skew tolerated on exp/iat
SESSION_IDLE_TIMEOUT = 14 * 24 * 3600.0  # a browser session unused for two weeks ends
SESSION_TOUCH_INTERVAL = 300.0  # last_seen is updated at most every 5 minutes
PENDING_LOGIN_TTL = 600.0  # a started login must come back within 10 minutes
MAX_PENDING_LOGINS = 5  # per browser session (several tabs may start a login)
DB_BUSY_TIMEOUT = 30.0  # seconds a request waits for another one's refresh to commit
SESSION_COOKIE = "acme_session"
DEFAULT_STORE_DIR = os.path.join(tempfile.gettempdir(), "acme-rf-web-store")

log = logging.getLogger("acme")


# -- configuration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Everything from environment variables; no secret ever lives in a file."""

    issuer: str  # RF_ISSUER: https://auth.request.finance (no trailing slash)
    api_url: str  # RF_API_URL: https://api.request.finance
    client_id: str  # RF_CLIENT_ID
    client_secret: str  # RF_CLIENT_SECRET (from a secret manager)
    redirect_uri: str  # RF_REDIRECT_URI: this app's registered callback
    network: str  # RF_NETWORK: exactly "test" or "live"
    port: int  # PORT
    store_dir: str  # ACME_TOKEN_STORE_DIR: the folder of the shared SQLite store

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        names = {"issuer": "RF_ISSUER", "api_url": "RF_API_URL", "client_id": "RF_CLIENT_ID",
                 "client_secret": "RF_CLIENT_SECRET", "redirect_uri": "RF_REDIRECT_URI",
                 "network": "RF_NETWORK"}
        missing = [variable for variable in names.values() if not env.get(variable)]
        if missing:
            raise SystemExit(f"configuration error: missing environment variable(s) {', '.join(missing)}")
        values = {key: env[variable] for key, variable in names.items()}
        if values["network"] not in ("test", "live"):
            raise SystemExit('configuration error: RF_NETWORK must be exactly "test" or "live"')
        if not re.fullmatch(r"[A-Za-z0-9._~-]+", values["client_id"]):
            raise SystemExit("configuration error: RF_CLIENT_ID has unexpected characters")  # names the store
        values["issuer"] = values["issuer"].rstrip("/")
        values["api_url"] = values["api_url"].rstrip("/")
        return cls(port=int(env.get("PORT", "5000")),
                   store_dir=env.get("ACME_TOKEN_STORE_DIR") or DEFAULT_STORE_DIR, **values)


# -- errors: every one of them ends as a page or a redirect (see register_error_pages) ----------
class RequestFinanceError(Exception):
    """Base class: Request Finance said no, or could not be reached."""


class LoginRequired(RequestFinanceError):
    """The user's grant is gone (refresh token revoked or expired): they must log in again."""


class ConsentRequired(RequestFinanceError):
    """The API answered 403 insufficient_scope: retrying cannot help, the user must consent again."""


class TokenEndpointUnavailable(RequestFinanceError):
    """The token endpoint kept answering 429/5xx after the bounded retries; the tokens are kept."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TokenRefused(RequestFinanceError):
    """The token endpoint answered an OAuth error (invalid_grant, invalid_client, ...)."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(f"token request refused: {error} (HTTP {status})")
        self.error = error


class ApiError(RequestFinanceError):
    """An API call failed for another reason."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class InvalidIdToken(Exception):
    """The ID token failed a check PyJWT does not do itself (nonce, identity on refresh)."""


# -- the authorization server, from discovery ---------------------------------------------------
@dataclass(frozen=True)
class Provider:
    issuer: str  # from discovery: "https://auth.request.finance/" (trailing slash, Auth0 style)
    authorization_endpoint: str
    token_endpoint: str
    jwks: jwt.PyJWKClient

    @classmethod
    def discover(cls, settings: Settings) -> "Provider":
        url = f"{settings.issuer}/.well-known/openid-configuration"
        for attempt in range(3):
            try:
                response = requests.get(url, timeout=HTTP_TIMEOUT)
                response.raise_for_status()
                metadata = response.json()
                break
            except (requests.RequestException, ValueError) as err:
                if attempt == 2:
                    raise SystemExit(f"discovery failed at {url}: {type(err).__name__}") from None
                time.sleep(1)
        # One PyJWKClient per process, default settings: the JWKS is cached; an unknown kid fetches
        # it again (key rotation).
        return cls(issuer=metadata["issuer"], authorization_endpoint=metadata["authorization_endpoint"],
                   token_endpoint=metadata["token_endpoint"], jwks=jwt.PyJWKClient(metadata["jwks_uri"]))

    def verify_id_token(self, id_token: str, client_id: str, nonce: str | None) -> dict[str, Any]:
        """RS256 signature against the JWKS, iss, aud, exp, iat, sub; the nonce when one was sent."""
        signing_key = self.jwks.get_signing_key_from_jwt(id_token)
        claims = jwt.decode(id_token, signing_key.key, algorithms=["RS256"], audience=client_id,
                            issuer=self.issuer, leeway=ID_TOKEN_LEEWAY,
                            options={"require": ["iss", "sub", "aud", "exp", "iat"]})
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise InvalidIdToken("nonce mismatch")
        return claims


# -- the shared store ---------------------------------------------------------------------------
SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    sub TEXT PRIMARY KEY,           -- the user, as the ID token names them
    iss TEXT NOT NULL,
    name TEXT NOT NULL,
    access_token TEXT NOT NULL,
    expires_at REAL NOT NULL,       -- epoch seconds by this app's clock: answer time + expires_in
    refresh_token TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS browser_sessions (
    sid_hash TEXT PRIMARY KEY,      -- SHA-256 of the cookie's random ID
    sub TEXT,                       -- NULL until a login completes
    consent_needed INTEGER NOT NULL DEFAULT 0,
    last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_logins (
    state TEXT PRIMARY KEY,
    sid_hash TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_by_session ON pending_logins (sid_hash);
"""


@dataclass(frozen=True)
class StoredTokens:
    sub: str
    iss: str
    name: str
    access_token: str
    expires_at: float
    refresh_token: str | None

    def fresh(self) -> bool:
        return self.expires_at - time.time() > REFRESH_MARGIN


class Store:
    """``<store_dir>/<client_id>.sqlite3``: one database for every instance of the app.

    Every request opens its own connection (``isolation_level=None``: transactions are explicit).
    WAL mode lets readers go on while a refresh holds the write lock. The folder and the database
    are readable by their owner only: the refresh tokens are long-lived credentials.
    """

    def __init__(self, store_dir: str, client_id: str) -> None:
        self.path = os.path.join(store_dir, f"{client_id}.sqlite3")
        os.makedirs(store_dir, mode=0o700, exist_ok=True)
        info = os.stat(store_dir)  # under the shared temp dir anyone could have created it first
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise SystemExit(f"configuration error: the token store folder {store_dir} is not private to this user")
        # Instances starting together must not race on the schema or the journal mode.
        fd = os.open(self.path + ".init-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            old_umask = os.umask(0o077)
            try:
                with contextlib.closing(self.connect()) as conn:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.executescript(SCHEMA)
            finally:
                os.umask(old_umask)
        finally:
            os.close(fd)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=DB_BUSY_TIMEOUT, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    @contextlib.contextmanager
    def transaction(self, conn: sqlite3.Connection, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` takes the database's write lock at once: one writer at a time, in any process."""
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # tokens
    @staticmethod
    def read_tokens(conn: sqlite3.Connection, sub: str) -> StoredTokens | None:
        row = conn.execute("SELECT sub, iss, name, access_token, expires_at, refresh_token FROM tokens "
                           "WHERE sub = ?", (sub,)).fetchone()
        return StoredTokens(**dict(row)) if row is not None else None

    @staticmethod
    def save_tokens(conn: sqlite3.Connection, tokens: StoredTokens) -> None:
        conn.execute("INSERT INTO tokens (sub, iss, name, access_token, expires_at, refresh_token, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sub) DO UPDATE SET iss = excluded.iss, "
                     "name = excluded.name, access_token = excluded.access_token, "
                     "expires_at = excluded.expires_at, refresh_token = excluded.refresh_token, "
                     "updated_at = excluded.updated_at",
                     (tokens.sub, tokens.iss, tokens.name, tokens.access_token, tokens.expires_at,
                      tokens.refresh_token, time.time()))

    @staticmethod
    def delete_tokens(conn: sqlite3.Connection, sub: str) -> None:
        conn.execute("DELETE FROM tokens WHERE sub = ?", (sub,))


def sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


@dataclass(frozen=True)
class BrowserSession:
    sid_hash: str
    sub: str | None
    consent_needed: bool


# -- Request Finance: tokens and API calls ------------------------------------------------------
class RequestFinance:
    def __init__(self, settings: Settings, provider: Provider, store: Store) -> None:
        self.settings = settings
        self.provider = provider
        self.store = store
        self.http = requests.Session()

    # login
    def authorization_url(self, state: str, code_verifier: str, nonce: str, prompt_consent: bool) -> str:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        params = {"response_type": "code", "client_id": self.settings.client_id,
                  "redirect_uri": self.settings.redirect_uri, "scope": SCOPES, "audience": AUDIENCE,
                  "state": state, "nonce": nonce, "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        if prompt_consent:
            params["prompt"] = "consent"
        return f"{self.provider.authorization_endpoint}?{urlencode(params)}"

    def finish_login(self, code: str, code_verifier: str, nonce: str) -> StoredTokens:
        """Exchange the code (once, with the PKCE verifier), verify the ID token, store the tokens."""
        token = self.token_request({"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": self.settings.redirect_uri,
                                    "code_verifier": code_verifier})
        if not token.get("id_token"):
            raise InvalidIdToken("no ID token")
        claims = self.provider.verify_id_token(token["id_token"], self.settings.client_id, nonce)
        tokens = StoredTokens(sub=str(claims["sub"]), iss=str(claims["iss"]),
                              name=str(claims.get("name") or claims.get("email") or claims["sub"]),
                              access_token=token["access_token"],
                              expires_at=time.time() + float(token["expires_in"]),
                              refresh_token=token.get("refresh_token"))
        with contextlib.closing(self.store.connect()) as conn, self.store.transaction(conn, immediate=True):
            self.store.save_tokens(conn, tokens)  # a new login replaces the user's tokens
        return tokens

    # tokens
    def access_token(self, sub: str) -> str:
        """The stored access token, until it nearly expires (by this process's clock)."""
        with contextlib.closing(self.store.connect()) as conn:
            tokens = self.store.read_tokens(conn, sub)
        if tokens is None:
            raise LoginRequired("no tokens stored for this user")
        if not tokens.fresh():
            return self.refresh(sub, stale=tokens.access_token)
        return tokens.access_token

    def refresh(self, sub: str, stale: str) -> str:
        """Replace ``stale``. The write lock is held from the re-read to the stored rotation, so a
        request that waited (in this process or another) finds the new token and never presents
        the rotated refresh token again."""
        with contextlib.closing(self.store.connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                tokens = self.store.read_tokens(conn, sub)
                if tokens is None:
                    raise LoginRequired("the user's tokens were removed")
                if tokens.access_token != stale and tokens.fresh():
                    conn.execute("COMMIT")
                    return tokens.access_token  # refreshed by another request meanwhile
                if not tokens.refresh_token:
                    self.end(conn, sub, "no refresh token")
                log.info("refreshing the access token of user %s", sub)
                try:
                    token = self.token_request({"grant_type": "refresh_token",
                                                "refresh_token": tokens.refresh_token})
                except TokenRefused as err:
                    # invalid_grant: revoked or expired; never retried with it (RFC 6749 §5.2).
                    self.end(conn, sub, f"refresh refused ({err.error})")
                self.check_same_user(conn, tokens, token)
                # The rotated refresh token replaces the old one in the same transaction (Auth0
                # rotation revokes the whole family when an old one is presented again).
                self.store.save_tokens(conn, StoredTokens(
                    sub=tokens.sub, iss=tokens.iss, name=tokens.name, access_token=token["access_token"],
                    expires_at=time.time() + float(token["expires_in"]),
                    refresh_token=token.get("refresh_token") or tokens.refresh_token))
                conn.execute("COMMIT")
                return token["access_token"]
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def check_same_user(self, conn: sqlite3.Connection, tokens: StoredTokens, token: Mapping[str, Any]) -> None:
        """A refreshed ID token must be valid and name the same issuer and user (OIDC Core §12.2)."""
        if not token.get("id_token"):
            return
        try:
            claims = self.provider.verify_id_token(token["id_token"], self.settings.client_id, nonce=None)
        except jwt.PyJWKClientConnectionError:
            raise ApiError("the JWKS could not be fetched", 502) from None
        except (jwt.PyJWTError, InvalidIdToken) as err:
            self.end(conn, tokens.sub, f"the refreshed ID token is invalid ({type(err).__name__})")
        if claims["iss"] != tokens.iss or claims["sub"] != tokens.sub:
            self.end(conn, tokens.sub, "the refreshed ID token names another issuer or user")

    def end(self, conn: sqlite3.Connection, sub: str, reason: str) -> NoReturn:
        """Inside the refresh transaction: the user's tokens are deleted, and they must log in again."""
        self.store.delete_tokens(conn, sub)
        conn.execute("COMMIT")
        log.info("user %s must log in again: %s", sub, reason)
        raise LoginRequired(reason)

    def token_request(self, form: dict[str, str]) -> dict[str, Any]:
        """POST the token endpoint (client_secret_basic), at most MAX_TOKEN_RETRIES retries on 429/5xx."""
        # client_secret_basic: form-urlencode ID and secret, then base64 (RFC 6749 §2.3.1)
        basic = f"{quote_plus(self.settings.client_id)}:{quote_plus(self.settings.client_secret)}"
        headers = {"Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
                   "Accept": "application/json"}
        for attempt in range(MAX_TOKEN_RETRIES + 1):
            try:
                response = self.http.post(self.provider.token_endpoint, data=form, headers=headers,
                                          timeout=HTTP_TIMEOUT)
            except requests.RequestException as err:
                raise TokenEndpointUnavailable(f"token endpoint unreachable: {type(err).__name__}") from None
            if response.status_code != 429 and response.status_code < 500:
                break
            retry_after = retry_after_seconds(response)
            wait = retry_after if retry_after is not None else 2.0 ** attempt
            if attempt == MAX_TOKEN_RETRIES or wait > MAX_RETRY_WAIT:  # not while the user waits
                raise TokenEndpointUnavailable(f"token endpoint answered HTTP {response.status_code}", retry_after)
            log.warning("token endpoint answered HTTP %s; retrying in %g s", response.status_code, wait)
            time.sleep(wait)
        body = json_body(response)
        if response.status_code != 200:
            raise TokenRefused(str(body.get("error") or "unknown_error"), response.status_code)
        if (str(body.get("token_type", "")).lower() != "bearer" or not body.get("access_token")
                or "expires_in" not in body):
            raise ApiError("unexpected token response: no Bearer access token with expires_in", 502)
        return body

    # API
    def api_get(self, sub: str, path: str, organization: str | None = None) -> Any:
        """GET ``path`` as the user; ``organization`` (a listed ID) reads that organization's data."""
        token = self.access_token(sub)
        response = self.send(token, path, organization)
        if response.status_code == 401:  # invalid_token (expired, revoked): refresh once, retry once
            log.info("GET %s: access token rejected (%s); refreshing once", path, bearer_error(response))
            token = self.refresh(sub, stale=token)
            response = self.send(token, path, organization)
            if response.status_code == 401:
                with contextlib.closing(self.store.connect()) as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    self.end(conn, sub, "a fresh access token was rejected too")
        if response.status_code == 403 and bearer_error(response) == "insufficient_scope":
            raise ConsentRequired(f"GET {path}: insufficient scope")  # no retry (SCOPE-05)
        if response.status_code != 200:
            raise ApiError(f"GET {path} answered HTTP {response.status_code}", response.status_code)
        return response.json()

    def send(self, token: str, path: str, organization: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "X-Network": self.settings.network,
                   "Accept": "application/json"}
        if organization is not None:
            headers["X-Organization"] = organization
        return self.http.get(f"{self.settings.api_url}{path}", headers=headers, timeout=HTTP_TIMEOUT)


def json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def bearer_error(response: requests.Response) -> str:
    """The ``error`` of an RFC 6750 ``WWW-Authenticate: Bearer`` challenge, or ""."""
    match = re.search(r'\berror="([^"]*)"', response.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else ""


def retry_after_seconds(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds: a number or an HTTP date (RFC 9110 §10.2.3); None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


# -- browser sessions (a random ID in the cookie; the rest in the store) -------------------------
class Sessions:
    def __init__(self, store: Store, secure_cookie: bool) -> None:
        self.store = store
        self.secure_cookie = secure_cookie

    def current(self) -> BrowserSession | None:
        """The browser's session, if its cookie names a live one."""
        sid = request.cookies.get(SESSION_COOKIE, "")
        if not sid:
            return None
        hashed = sid_hash(sid)
        now = time.time()
        with contextlib.closing(self.store.connect()) as conn:
            row = conn.execute("SELECT sub, consent_needed, last_seen FROM browser_sessions WHERE sid_hash = ?",
                               (hashed,)).fetchone()
            if row is None:
                return None
            if now - row["last_seen"] > SESSION_IDLE_TIMEOUT:
                conn.execute("DELETE FROM browser_sessions WHERE sid_hash = ?", (hashed,))
                return None
            if now - row["last_seen"] > SESSION_TOUCH_INTERVAL:  # not a write on every request
                conn.execute("UPDATE browser_sessions SET last_seen = ? WHERE sid_hash = ?", (now, hashed))
        return BrowserSession(hashed, row["sub"], bool(row["consent_needed"]))

    def create(self, sub: str | None = None, consent_needed: bool = False) -> BrowserSession:
        """A new session; its cookie is set on this request's response (``g.new_sid``)."""
        sid = secrets.token_urlsafe(32)
        hashed = sid_hash(sid)
        with contextlib.closing(self.store.connect()) as conn, self.store.transaction(conn, immediate=True):
            conn.execute("INSERT INTO browser_sessions (sid_hash, sub, consent_needed, last_seen) VALUES (?, ?, ?, ?)",
                         (hashed, sub, int(consent_needed), time.time()))
        g.new_sid = sid
        return BrowserSession(hashed, sub, consent_needed)

    def set_user(self, session: BrowserSession, sub: str | None, consent_needed: bool = False) -> None:
        with contextlib.closing(self.store.connect()) as conn, self.store.transaction(conn, immediate=True):
            conn.execute("UPDATE browser_sessions SET sub = ?, consent_needed = ? WHERE sid_hash = ?",
                         (sub, int(consent_needed), session.sid_hash))

    def delete(self, session: BrowserSession) -> None:
        with contextlib.closing(self.store.connect()) as conn, self.store.transaction(conn, immediate=True):
            conn.execute("DELETE FROM browser_sessions WHERE sid_hash = ?", (session.sid_hash,))
            conn.execute("DELETE FROM pending_logins WHERE sid_hash = ?", (session.sid_hash,))

    def add_pending(self, session: BrowserSession, state: str, code_verifier: str, nonce: str) -> None:
        now = time.time()
        with contextlib.closing(self.store.connect()) as conn, self.store.transaction(conn, immediate=True):
            conn.execute("DELETE FROM pending_logins WHERE created_at < ?", (now - PENDING_LOGIN_TTL,))
            conn.execute("DELETE FROM pending_logins WHERE sid_hash = ? AND state NOT IN (SELECT state FROM "
                         "pending_logins WHERE sid_hash = ? ORDER BY created_at DESC LIMIT ?)",
                         (session.sid_hash, session.sid_hash, MAX_PENDING_LOGINS - 1))  # forget the oldest
            conn.execute("INSERT INTO pending_logins (state, sid_hash, code_verifier, nonce, created_at) "
                         "VALUES (?, ?, ?, ?, ?)", (state, session.sid_hash, code_verifier, nonce, now))

    def pop_pending(self, session: BrowserSession, state: str) -> tuple[str, str] | None:
        """The login this browser started with ``state`` (used once), or None."""
        with contextlib.closing(self.store.connect()) as conn, self.store.transaction(conn, immediate=True):
            row = conn.execute("SELECT code_verifier, nonce, created_at FROM pending_logins "
                               "WHERE state = ? AND sid_hash = ?", (state, session.sid_hash)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM pending_logins WHERE state = ?", (state,))
        if time.time() - row["created_at"] > PENDING_LOGIN_TTL:
            return None
        return row["code_verifier"], row["nonce"]

    def set_cookie(self, response: Response) -> Response:
        sid = g.get("new_sid")
        if sid:
            response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", secure=self.secure_cookie,
                                path="/")
        return response


# -- pages --------------------------------------------------------------------------------------
def page(title: str, body: str, status: int = 200) -> Response:
    html = (f"<!doctype html><html><head><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")
    return Response(html, status=status, mimetype="text/html")


def error_page(status: int, message: str) -> Response:
    return page("Acme Invoices: error", f"<p>{escape(message)}</p><p><a href='/'>Home</a></p>", status)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    store = Store(settings.store_dir, settings.client_id)
    rf = RequestFinance(settings, Provider.discover(settings), store)
    sessions = Sessions(store, secure_cookie=settings.redirect_uri.startswith("https://"))
    app = Flask(__name__)
    app.extensions["request_finance"] = rf
    app.after_request(sessions.set_cookie)

    def user_name(sub: str) -> str | None:
        with contextlib.closing(store.connect()) as conn:
            tokens = store.read_tokens(conn, sub)
        return tokens.name if tokens is not None else None

    @app.get("/")
    def home() -> ResponseReturnValue:
        found = sessions.current()
        name = user_name(found.sub) if found is not None and found.sub else None
        if name is None:
            return page("Acme Invoices", "<p><a href='/login'>Connect your Request Finance account</a></p>")
        return page("Acme Invoices", f"<p>Connected as {escape(name)}.</p>"
                                     "<p><a href='/invoices'>Your invoices</a></p>")

    @app.get("/login")
    def login() -> ResponseReturnValue:
        found = sessions.current() or sessions.create()
        state, code_verifier, nonce = (secrets.token_urlsafe(32), secrets.token_urlsafe(64),
                                       secrets.token_urlsafe(24))
        sessions.add_pending(found, state, code_verifier, nonce)
        log.info("login started%s", " (prompt=consent)" if found.consent_needed else "")
        return redirect(rf.authorization_url(state, code_verifier, nonce, prompt_consent=found.consent_needed))

    @app.get("/callback")
    def callback() -> ResponseReturnValue:
        found = sessions.current()
        state = request.args.get("state", "")
        pending = sessions.pop_pending(found, state) if found is not None and state else None
        if pending is None:  # a login this browser did not start: login CSRF, code injection
            log.warning("login refused: no pending login for this state")
            return error_page(400, "Login failed: this sign-in was not started here. Please try again.")
        if request.args.get("error"):  # access_denied at the authorization server, ...
            log.warning("login refused by the authorization server: %s", request.args.get("error"))
            return error_page(400, "Login failed: Request Finance did not authorize it. Please try again.")
        code = request.args.get("code", "")
        if not code:
            return error_page(400, "Login failed: no authorization code. Please try again.")
        code_verifier, nonce = pending
        try:
            tokens = rf.finish_login(code, code_verifier, nonce)
        except TokenRefused as err:
            log.warning("login refused: %s", err.error)
            return error_page(400, f"Login failed ({err.error}). Please try again.")
        except jwt.PyJWKClientConnectionError:
            log.warning("login failed: the JWKS could not be fetched")
            return error_page(502, "Request Finance could not be reached. Please try again later.")
        except (jwt.PyJWTError, InvalidIdToken) as err:  # signature, alg, iss, aud, exp, iat, sub, nonce
            log.warning("login refused: invalid ID token (%s)", type(err).__name__)
            return error_page(400, "Login failed: invalid ID token. Please try again.")
        sessions.delete(found)  # a new session ID at login (session fixation)
        sessions.create(sub=tokens.sub)
        log.info("user %s logged in", tokens.sub)
        return redirect("/")

    @app.get("/invoices")
    def invoices() -> ResponseReturnValue:
        found = sessions.current()
        if found is None or not found.sub:
            return redirect("/login")
        g.browser_session = found
        organizations = rf.api_get(found.sub, "/users/organizations")  # needs user:read
        organization = str(organizations[0]["id"]) if organizations else None  # only a listed ID
        listed = rf.api_get(found.sub, "/invoices", organization=organization)
        where = f"organization {escape(organization)}" if organization else "your personal account"
        return page("Your invoices", f"<p>{len(listed)} invoice(s) in {where}.</p>")

    @app.get("/logout")
    def logout() -> ResponseReturnValue:
        found = sessions.current()
        if found is not None:
            sessions.delete(found)
        response = redirect("/")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    register_error_pages(app, sessions)
    return app


def register_error_pages(app: Flask, sessions: Sessions) -> None:
    """What the user sees when Request Finance says no: never a 500."""

    @app.errorhandler(LoginRequired)
    def login_again(err: LoginRequired) -> ResponseReturnValue:
        found = g.get("browser_session")
        if found is not None:
            sessions.set_user(found, None)  # the tokens are gone: this browser must log in again
        return redirect("/login")

    @app.errorhandler(ConsentRequired)
    def consent_again(err: ConsentRequired) -> ResponseReturnValue:
        log.info("%s: asking the user to consent again", err)
        found = g.get("browser_session")
        if found is not None:
            sessions.set_user(found, None, consent_needed=True)  # the next /login asks with prompt=consent
        return redirect("/login")

    @app.errorhandler(TokenEndpointUnavailable)
    def try_later(err: TokenEndpointUnavailable) -> ResponseReturnValue:
        log.warning("%s; the user's session is kept", err)
        response = error_page(503, "Request Finance is busy. Please try again in a minute.")
        response.headers["Retry-After"] = str(max(1, round(err.retry_after or 60)))
        return response

    @app.errorhandler(TokenRefused)
    def token_refused(err: TokenRefused) -> ResponseReturnValue:
        log.warning("%s", err)
        return error_page(502, "Request Finance refused the app's credentials. Please try again later.")

    @app.errorhandler(ApiError)
    def api_failed(err: ApiError) -> ResponseReturnValue:
        log.warning("%s", err)
        if err.status == 429 or err.status >= 500:
            return error_page(503, "Request Finance is busy. Please try again in a minute.")
        return error_page(502, "Request Finance could not answer. Please try again later.")

    @app.errorhandler(requests.RequestException)
    def unreachable(err: requests.RequestException) -> ResponseReturnValue:
        log.warning("Request Finance unreachable: %s", type(err).__name__)
        return error_page(502, "Request Finance could not be reached. Please try again later.")

    @app.errorhandler(sqlite3.OperationalError)
    def store_busy(err: sqlite3.OperationalError) -> ResponseReturnValue:
        log.warning("token store unavailable: %s", err)
        return error_page(503, "Acme Invoices is busy. Please try again in a minute.")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    app = create_app(settings)
    log.info("listening on 127.0.0.1:%d (network %s, store %s)", settings.port, settings.network,
             settings.store_dir)
    app.run(host="127.0.0.1", port=settings.port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
