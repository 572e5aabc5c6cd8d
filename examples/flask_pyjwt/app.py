"""Acme Invoices: a Request Finance integration as a Flask web app, with requests-oauthlib and PyJWT.

Written the way the libraries' own documentation shows it:

- requests-oauthlib's ``OAuth2Session`` ("Web Application Flow", "Refreshing tokens"):
  ``authorization_url()`` with PKCE (``pkce="S256"``) and ``state``, ``fetch_token()`` with the
  callback URL (requests-oauthlib checks ``state`` there), API calls through the session
  (``Authorization: Bearer …``), and automatic refresh with ``auto_refresh_url`` +
  ``auto_refresh_kwargs`` + ``token_updater``;
- PyJWT's ``jwt.PyJWKClient`` ("Retrieve RSA signing keys from a JWKS endpoint"): one client,
  created at startup with its default settings, ``get_signing_key_from_jwt()`` then
  ``jwt.decode(..., algorithms=["RS256"], audience=client_id, issuer=issuer)``.

On top of the tutorials, what a production app needs:

- tokens stay on the server (backend for frontend): Flask's cookie session holds only a random
  session ID; the tokens, the pending logins (the ``OAuth2Session`` that holds the PKCE verifier
  and ``state``) and the nonce live in ``SESSIONS``, in this process;
- the ID token's nonce is checked; a refresh response's ID token must name the same ``iss`` and
  ``sub`` as the login's (OIDC Core 12.2);
- one lock per user around the refresh, with a re-check, so that parallel requests share one
  refresh; the rotated refresh token replaces the old one at once (Auth0 rotation revokes the
  whole family when an old one is presented again);
- ``401`` from the API: one refresh and one retry; ``invalid_grant`` on refresh: the session is
  cleared and the user is sent to ``/login``; ``403 insufficient_scope``: a new authorization with
  ``prompt=consent``; ``429``/``5xx`` from the token endpoint: ``Retry-After`` honoured, at most 2
  retries, then a ``503`` page while the session is kept;
- ``X-Network`` (``RF_NETWORK``) on every API call; organizations listed with ``user:read``, the
  first one read with ``X-Organization``;
- every Request Finance error becomes a page the app chose (400, 502, 503) or a redirect to log
  in again, never a 500; nothing it logs holds a token or the client secret.

Configuration comes from the environment only (see ``Settings``). Run it with ``python3 app.py``;
see README.md.

For rfcheck's own tests, ``ACME_BROKEN`` selects one of two deliberately broken variants, each a
mistake real teams make (unset or empty: the correct app above):

- ``token_updater_noop``: requests-oauthlib's ``token_updater`` does nothing
  (``token_updater=lambda token: None``), so the rotated refresh token is never stored and the old
  one is presented again at the next refresh (TOKEN-03);
- ``no_refresh_lock``: the per-user lock around the refresh is missing, so parallel requests that
  find the token expired each refresh on their own with the same refresh token (TOKEN-06).
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NoReturn
from urllib.parse import urlsplit

import jwt
import requests
from flask import Flask, Response, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import escape
from oauthlib.oauth2 import OAuth2Error
from oauthlib.oauth2.rfc6749.errors import MismatchingStateError
from requests_oauthlib import OAuth2Session

SCOPES = ["openid", "profile", "email", "offline_access", "user:read"]
AUDIENCE = "accounts"
MAX_TOKEN_RETRIES = 2  # token endpoint retries after 429/5xx (so at most 3 attempts)
MAX_RETRY_WAIT = 5.0  # seconds: a longer Retry-After is not waited for while the user waits
HTTP_TIMEOUT = 5  # seconds, for every request to Request Finance
ID_TOKEN_LEEWAY = 30  # seconds of clock skew tolerated on exp/iat
MAX_PENDING_LOGINS = 5  # per browser session (several tabs may start a login)
BROKEN_VARIANTS = ("token_updater_noop", "no_refresh_lock")  # ACME_BROKEN, see the module docstring

log = logging.getLogger("acme")

# The token response's scope may be narrower than the one asked for (a user may withhold
# user:read at consent). oauthlib raises a Warning for that unless this is set (its documented
# switch); the app handles the narrower grant itself (403 insufficient_scope -> consent again).
os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


# -- configuration ---------------------------------------------------------------------------
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
    broken: str = ""  # ACME_BROKEN: "" (the correct app) or one of BROKEN_VARIANTS, for rfcheck's tests

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
        for key in ("issuer", "api_url"):
            values[key] = values[key].rstrip("/")
            if not values[key].startswith("https://"):
                raise SystemExit(f"configuration error: {names[key]} must be an https:// URL")
        broken = env.get("ACME_BROKEN", "")
        if broken and broken not in BROKEN_VARIANTS:
            raise SystemExit(f"configuration error: ACME_BROKEN must be one of {', '.join(BROKEN_VARIANTS)}")
        return cls(port=int(env.get("PORT", "5000")), broken=broken, **values)


def allow_loopback_redirect_uri(settings: Settings) -> None:
    """oauthlib refuses every ``http://`` URL, including the callback URL that ``fetch_token()`` parses.

    Its only switch is ``OAUTHLIB_INSECURE_TRANSPORT``, process-wide. It is set only when the
    registered redirect URI is a loopback ``http://`` URL (local development, RFC 8252 §7.3);
    ``Settings`` requires https for every Request Finance URL, so the switch can never let a token or
    the client secret travel in clear text. In production the redirect URI is https and it stays off.
    """
    parts = urlsplit(settings.redirect_uri)
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


# -- errors: every one of them ends as a page or a redirect (see register_error_pages) ---------
class RequestFinanceError(Exception):
    """Base class: Request Finance said no, or could not be reached."""


class LoginRequired(RequestFinanceError):
    """The user's grant is gone (refresh token revoked or expired): they must log in again."""


class ConsentRequired(RequestFinanceError):
    """The API answered 403 insufficient_scope: retrying cannot help, the user must consent again."""


class TokenEndpointUnavailable(RequestFinanceError):
    """The token endpoint kept answering 429/5xx after the bounded retries; the session is kept."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiError(RequestFinanceError):
    """An API call failed for another reason."""


class InvalidIdToken(Exception):
    """The ID token failed a check PyJWT does not do (nonce, identity on refresh)."""


class TokenEndpointBusy(Exception):
    """One 429/5xx answer from the token endpoint (raised by the compliance hook below)."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"token endpoint answered HTTP {status}")
        self.status = status
        self.retry_after = retry_after


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


def raise_when_busy(response: requests.Response) -> requests.Response:
    """requests-oauthlib compliance hook: a 429/5xx token response is an outage, not an OAuth error."""
    if response.status_code == 429 or response.status_code >= 500:
        raise TokenEndpointBusy(response.status_code, retry_after_seconds(response))
    return response


def with_token_retries(send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``send()`` with at most MAX_TOKEN_RETRIES retries on 429/5xx, honouring Retry-After."""
    for attempt in range(MAX_TOKEN_RETRIES + 1):
        try:
            return send()
        except TokenEndpointBusy as busy:
            wait = busy.retry_after if busy.retry_after is not None else 2.0 ** attempt
            if attempt == MAX_TOKEN_RETRIES or wait > MAX_RETRY_WAIT:  # not while the user waits
                raise TokenEndpointUnavailable(str(busy), busy.retry_after) from None
            log.warning("token endpoint answered HTTP %s; retrying in %g s", busy.status, wait)
            time.sleep(wait)
        except requests.RequestException as err:
            raise TokenEndpointUnavailable(f"token endpoint unreachable: {type(err).__name__}") from None
    raise AssertionError("unreachable")


# -- the authorization server, from discovery --------------------------------------------------
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
        # PyJWKClient with its default settings: the JWKS is cached (5 min); an unknown kid fetches
        # it again (at most once per 30 s cool-down).
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


# -- server-side storage -----------------------------------------------------------------------
@dataclass
class PendingLogin:
    """A login this browser started: the OAuth2Session holds ``state`` and the PKCE verifier."""

    oauth: OAuth2Session
    nonce: str


class User:
    """One logged-in user's tokens. Only in this process: the browser holds an opaque session ID."""

    def __init__(self, token: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        self.lock = threading.Lock()  # one refresh at a time for this user
        self.iss, self.sub = claims["iss"], claims["sub"]
        self.name = claims.get("name") or claims.get("email") or claims["sub"]
        self.token: dict[str, Any] = dict(token)
        self.ended = False

    def store(self, token: Mapping[str, Any]) -> None:
        """The ``token_updater``: keep the refreshed token; the rotated refresh token replaces the old one."""
        if self.ended:
            return
        token = dict(token)
        if not token.get("refresh_token"):  # no rotation this time: keep the one we have
            token["refresh_token"] = self.token.get("refresh_token")
        self.token = token

    def end(self) -> None:
        self.ended = True
        self.token = {}


@dataclass
class BrowserSession:
    """What the app knows about one browser; Flask's cookie session holds only its random ID."""

    pending: dict[str, PendingLogin] = field(default_factory=dict)  # state -> pending login
    user: User | None = None
    consent_needed: bool = False  # the API said insufficient_scope: the next login asks again


SESSIONS: dict[str, BrowserSession] = {}
SESSIONS_LOCK = threading.Lock()


def browser_session(create: bool = False) -> BrowserSession | None:
    with SESSIONS_LOCK:
        found = SESSIONS.get(session.get("sid", ""))
        if found is None and create:
            sid = secrets.token_urlsafe(32)
            found = SESSIONS[sid] = BrowserSession()
            session["sid"] = sid
        return found


def current_user() -> User | None:
    found = browser_session()
    user = found.user if found is not None else None
    return user if user is not None and not user.ended else None


def start_user_session(user: User) -> None:
    """A completed login: a new session ID (session fixation), the old session forgotten."""
    end_browser_session()
    sid = secrets.token_urlsafe(32)
    with SESSIONS_LOCK:
        SESSIONS[sid] = BrowserSession(user=user)
    session["sid"] = sid


def end_browser_session() -> None:
    with SESSIONS_LOCK:
        found = SESSIONS.pop(session.pop("sid", ""), None)
    if found is not None and found.user is not None:
        found.user.end()
    session.clear()


# -- Request Finance: tokens and API calls -----------------------------------------------------
class UserOAuth2Session(OAuth2Session):
    """requests-oauthlib's session for one request of one user, with the refresh made safe.

    ``OAuth2Session.request()`` refreshes on its own when the token has expired (by this process's
    clock), through ``refresh_token()``; ``api_get()`` calls it too after a ``401``. Overriding it
    adds what the library leaves to the app: the user's lock with a re-check (a request that waited
    uses the token the first one obtained, so the rotated refresh token is never presented twice),
    the token stored under that lock, bounded retries on 429/5xx, ``invalid_grant`` ending the
    session, and the check of a refreshed ID token.
    """

    def __init__(self, rf: "RequestFinance", user: User) -> None:
        settings = rf.settings
        token = dict(user.token)  # one snapshot: a parallel request may end the session meanwhile
        if not token.get("access_token"):  # ended by then: never call the API without a token
            raise LoginRequired("session ended")
        token_updater: Callable[[dict[str, Any]], None] = user.store
        if settings.broken == "token_updater_noop":
            # BROKEN on purpose: "the session keeps the token itself" -- but this session lives for one
            # request, so the rotated refresh token is lost and the next refresh presents the old one.
            token_updater = lambda token: None  # noqa: E731
        super().__init__(
            settings.client_id, token=token, scope=SCOPES, redirect_uri=settings.redirect_uri,
            auto_refresh_url=rf.provider.token_endpoint,
            # the client authenticates in the refresh request's body (client_secret_post)
            auto_refresh_kwargs={"client_id": settings.client_id, "client_secret": settings.client_secret},
            token_updater=token_updater)
        self.register_compliance_hook("refresh_token_response", raise_when_busy)
        self.rf = rf
        self.user = user

    def refresh_token(self, token_url: str, refresh_token: str | None = None, **kwargs: Any) -> dict[str, Any]:
        user = self.user
        stale = self.access_token  # the token this request holds
        lock: contextlib.AbstractContextManager[Any] = user.lock
        if self.rf.settings.broken == "no_refresh_lock":
            # BROKEN on purpose: no lock, so requests that find the token expired at the same time all
            # pass the re-check below and each refresh with the same refresh token (Auth0 rotation then
            # revokes the family and those users must log in again).
            lock = contextlib.nullcontext()
        with lock:
            current = dict(user.token)  # one snapshot (a logout in another tab may end the session)
            if user.ended or not current.get("access_token"):
                raise LoginRequired("session ended")
            if current["access_token"] != stale:  # refreshed by a concurrent request meanwhile
                self.token = current
                return dict(current)
            if not current.get("refresh_token"):
                self.rf.end(user, "no refresh token")
            log.info("refreshing the access token of user %s", user.sub)
            newest = current["refresh_token"]
            kwargs["timeout"] = kwargs.get("timeout") or HTTP_TIMEOUT  # the API call's, on the automatic path
            try:
                fresh = with_token_retries(lambda: super(UserOAuth2Session, self).refresh_token(
                    token_url, refresh_token=newest, **kwargs))
            except OAuth2Error as err:
                # invalid_grant: revoked or expired; never retried with it (RFC 6749 §5.2). Any other
                # OAuth error leaves no usable refresh token either.
                self.rf.end(user, f"refresh refused ({err.error})")
            self.rf.check_same_user(user, fresh)
            # Stored here, through the token_updater (user.store), under the lock, so that a request
            # waiting on it sees the rotated refresh token at once. On the automatic path
            # requests-oauthlib then calls token_updater with the same token again, which changes nothing.
            self.token_updater(fresh)
            return fresh


class RequestFinance:
    def __init__(self, settings: Settings, provider: Provider) -> None:
        self.settings = settings
        self.provider = provider

    # login
    def authorization_url(self, prompt_consent: bool) -> tuple[str, str, PendingLogin]:
        oauth = OAuth2Session(self.settings.client_id, scope=SCOPES, redirect_uri=self.settings.redirect_uri,
                              pkce="S256")
        nonce = secrets.token_urlsafe(24)
        extra = {"audience": AUDIENCE, "nonce": nonce}
        if prompt_consent:
            extra["prompt"] = "consent"
        url, state = oauth.authorization_url(self.provider.authorization_endpoint, **extra)
        return url, state, PendingLogin(oauth, nonce)

    def finish_login(self, pending: PendingLogin, callback_url: str) -> User:
        """Exchange the code (requests-oauthlib checks ``state`` and sends the PKCE verifier), verify the ID token."""
        oauth = pending.oauth
        oauth.register_compliance_hook("access_token_response", raise_when_busy)
        # client_secret_basic (requests-oauthlib's default when a client_secret is given)
        token = with_token_retries(lambda: oauth.fetch_token(
            self.provider.token_endpoint, authorization_response=callback_url,
            client_secret=self.settings.client_secret, timeout=HTTP_TIMEOUT))
        if not token.get("id_token"):
            raise InvalidIdToken("no ID token")
        claims = self.provider.verify_id_token(token["id_token"], self.settings.client_id, pending.nonce)
        return User(token, claims)

    def check_same_user(self, user: User, token: Mapping[str, Any]) -> None:
        """A refreshed ID token must be valid and name the same issuer and user (OIDC Core §12.2)."""
        if not token.get("id_token"):
            return
        try:
            claims = self.provider.verify_id_token(token["id_token"], self.settings.client_id, nonce=None)
        except jwt.PyJWKClientConnectionError:
            raise ApiError("the JWKS could not be fetched") from None
        except (jwt.PyJWTError, InvalidIdToken) as err:
            self.end(user, f"the refreshed ID token is invalid ({type(err).__name__})")
        if claims["iss"] != user.iss or claims["sub"] != user.sub:
            self.end(user, "the refreshed ID token names another issuer or user")

    def end(self, user: User, reason: str) -> NoReturn:
        user.end()
        log.info("user %s must log in again: %s", user.sub, reason)
        raise LoginRequired(reason)

    # API
    def api_get(self, user: User, path: str, organization: str | None = None) -> Any:
        """GET ``path`` as the user; ``organization`` (a listed ID) reads that organization's data."""
        oauth = UserOAuth2Session(self, user)
        headers = {"Accept": "application/json", "X-Network": self.settings.network}
        if organization is not None:
            headers["X-Organization"] = organization
        url = f"{self.settings.api_url}/{path}"
        response = oauth.get(url, headers=headers, timeout=HTTP_TIMEOUT)  # refreshes first if expired
        if response.status_code == 401:  # invalid_token (expired, revoked): refresh once, retry once
            log.info("GET /%s: access token rejected (%s); refreshing once", path, bearer_error(response))
            oauth.refresh_token(self.provider.token_endpoint)
            response = oauth.get(url, headers=headers, timeout=HTTP_TIMEOUT)
            if response.status_code == 401:
                self.end(user, "a fresh access token was rejected too")
        if response.status_code == 403 and bearer_error(response) == "insufficient_scope":
            raise ConsentRequired(f"GET /{path}: insufficient scope")  # no retry (SCOPE-05)
        if not response.ok:
            raise ApiError(f"GET /{path} answered HTTP {response.status_code}")
        return response.json()


def bearer_error(response: requests.Response) -> str:
    """The ``error`` of an RFC 6750 ``WWW-Authenticate: Bearer`` challenge, or ""."""
    challenge = response.headers.get("WWW-Authenticate", "")
    for part in challenge.replace("Bearer ", "", 1).split(","):
        name, _, value = part.strip().partition("=")
        if name == "error":
            return value.strip('"')
    return ""


# -- pages -------------------------------------------------------------------------------------
def page(title: str, body: str, status: int = 200) -> Response:
    html = (f"<!doctype html><html><head><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")
    return Response(html, status=status, mimetype="text/html")


def error_page(status: int, message: str) -> Response:
    return page("Acme Invoices: error", f"<p>{escape(message)}</p><p><a href='/'>Home</a></p>", status)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    allow_loopback_redirect_uri(settings)
    rf = RequestFinance(settings, Provider.discover(settings))
    app = Flask(__name__)
    # Signs the cookie session (which holds only the random session ID). Set FLASK_SECRET_KEY to keep
    # sessions across restarts; without it, a random key per process.
    app.config.update(SECRET_KEY=os.environ.get("FLASK_SECRET_KEY") or os.urandom(32),
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.redirect_uri.startswith("https://"))
    app.extensions["request_finance"] = rf

    @app.get("/")
    def home() -> ResponseReturnValue:
        user = current_user()
        if user is None:
            return page("Acme Invoices", "<p><a href='/login'>Connect your Request Finance account</a></p>")
        return page("Acme Invoices", f"<p>Connected as {escape(user.name)}.</p>"
                                     "<p><a href='/invoices'>Your invoices</a></p>")

    @app.get("/login")
    def login() -> ResponseReturnValue:
        found = browser_session(create=True)
        assert found is not None
        url, state, pending = rf.authorization_url(prompt_consent=found.consent_needed)
        with SESSIONS_LOCK:
            while len(found.pending) >= MAX_PENDING_LOGINS:  # forget the oldest
                found.pending.pop(next(iter(found.pending)))
            found.pending[state] = pending
        log.info("login started%s", " (prompt=consent)" if found.consent_needed else "")
        return redirect(url)

    @app.get("/callback")
    def callback() -> ResponseReturnValue:
        found = browser_session()
        state = request.args.get("state", "")
        with SESSIONS_LOCK:
            pending = found.pending.pop(state, None) if found is not None and state else None
        if pending is None:  # a login this browser did not start: login CSRF, code injection
            log.warning("login refused: no pending login for this state")
            return error_page(400, "Login failed: this sign-in was not started here. Please try again.")
        try:
            user = rf.finish_login(pending, request.url)
        except MismatchingStateError:
            log.warning("login refused: state mismatch")
            return error_page(400, "Login failed: this sign-in was not started here. Please try again.")
        except OAuth2Error as err:  # access_denied at the authorization server, invalid_grant, ...
            log.warning("login refused: %s", err.error)
            return error_page(400, f"Login failed ({err.error}). Please try again.")
        except jwt.PyJWKClientConnectionError:
            log.warning("login failed: the JWKS could not be fetched")
            return error_page(502, "Request Finance could not be reached. Please try again later.")
        except (jwt.PyJWTError, InvalidIdToken) as err:  # signature, alg, iss, aud, exp, iat, sub, nonce
            log.warning("login refused: invalid ID token (%s)", type(err).__name__)
            return error_page(400, "Login failed: invalid ID token. Please try again.")
        start_user_session(user)
        log.info("user %s logged in", user.sub)
        return redirect(url_for("home"))

    @app.get("/invoices")
    def invoices() -> ResponseReturnValue:
        user = current_user()
        if user is None:
            return redirect(url_for("login"))
        organizations = rf.api_get(user, "users/organizations")  # needs user:read
        organization = str(organizations[0]["id"]) if organizations else None  # only a listed ID
        listed = rf.api_get(user, "invoices", organization=organization)
        where = f"organization {escape(organization)}" if organization else "your personal account"
        return page("Your invoices", f"<p>{len(listed)} invoice(s) in {where}.</p>")

    @app.get("/logout")
    def logout() -> ResponseReturnValue:
        end_browser_session()
        return redirect(url_for("home"))

    register_error_pages(app)
    return app


def register_error_pages(app: Flask) -> None:
    """What the user sees when Request Finance says no: never a 500."""

    @app.errorhandler(LoginRequired)
    def login_again(err: LoginRequired) -> ResponseReturnValue:
        end_browser_session()
        return redirect(url_for("login"))

    @app.errorhandler(ConsentRequired)
    def consent_again(err: ConsentRequired) -> ResponseReturnValue:
        log.info("%s: asking the user to consent again", err)
        found = browser_session()
        if found is not None:
            if found.user is not None:
                found.user.end()
            found.user = None
            found.consent_needed = True  # the next /login asks with prompt=consent
        return redirect(url_for("login"))

    @app.errorhandler(TokenEndpointUnavailable)
    def try_later(err: TokenEndpointUnavailable) -> ResponseReturnValue:
        log.warning("%s; the user's session is kept", err)
        response = error_page(503, "Request Finance is busy. Please try again in a minute.")
        response.headers["Retry-After"] = str(max(1, round(err.retry_after or 60)))
        return response

    @app.errorhandler(ApiError)
    def api_failed(err: ApiError) -> ResponseReturnValue:
        log.warning("%s", err)
        return error_page(502, "Request Finance could not answer. Please try again later.")

    @app.errorhandler(requests.RequestException)
    def unreachable(err: requests.RequestException) -> ResponseReturnValue:
        log.warning("Request Finance unreachable: %s", type(err).__name__)
        return error_page(502, "Request Finance could not be reached. Please try again later.")

    @app.errorhandler(OAuth2Error)
    def oauth_failed(err: OAuth2Error) -> ResponseReturnValue:
        log.warning("Request Finance refused a token request (%s)", err.error)
        end_browser_session()
        return redirect(url_for("login"))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    app = create_app(settings)
    log.info("listening on 127.0.0.1:%d (network %s)", settings.port, settings.network)
    app.run(host="127.0.0.1", port=settings.port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
