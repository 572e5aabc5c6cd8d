"""Acme Invoices: a Request Finance integration as a Flask web app, with Authlib.

Written the way Authlib's Flask documentation shows (``OAuth``, ``oauth.register()`` with
``server_metadata_url``, ``authorize_redirect()``, ``authorize_access_token()``), plus what a
production app needs on top of the tutorial:

- authorization code flow with ``state``, ``nonce`` and PKCE ``S256``; ``audience=accounts``;
  the ID token is verified (RS256 against the JWKS, iss, aud, exp, iat, sub, nonce);
- tokens stay on the server (backend for frontend): the browser's cookie session holds only an
  opaque random ID, never a token, and no page or redirect ever shows one. Authlib's pending
  login data (PKCE verifier, nonce) is kept server-side too (``cache=``);
- the access token is reused until it nearly expires, then refreshed (proactively by the clock,
  or reactively, once, after ``401 invalid_token``); one lock per user, so concurrent requests
  share one refresh; the rotated refresh token replaces the old one at once;
- ``invalid_grant`` on refresh ends the session and sends the user to log in again;
  ``429``/``5xx`` from the token endpoint: ``Retry-After`` honoured, at most 2 retries, then a
  ``503`` page while the session is kept, so the next request can refresh;
- ``403 insufficient_scope``: no retry; the next login asks with ``prompt=consent``;
- ``X-Network`` on every API call; organizations listed once per login (``user:read``) and
  read with ``X-Organization``;
- every Request Finance error becomes a page the app chose (400, 502, 503) or a redirect to
  log in again, never a 500; nothing it logs holds a token or the client secret.

Configuration comes from the environment only (see ``Settings``). Run it with
``python app.py``; see README.md.
"""

from __future__ import annotations

import email.utils
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NoReturn

import requests
from authlib.integrations.base_client.errors import MismatchingStateError
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, Response, redirect, session, url_for
from flask.typing import ResponseReturnValue
from joserfc.errors import JoseError
from markupsafe import escape

SCOPES = "openid profile email offline_access user:read"
AUDIENCE = "accounts"
REFRESH_MARGIN = 60  # seconds: refresh when less validity than this remains
MAX_TOKEN_RETRIES = 2  # token endpoint retries after 429/5xx (so at most 3 attempts)
MAX_RETRY_WAIT = 5.0  # seconds: a longer Retry-After is not waited for during a page request
HTTP_TIMEOUT = 5  # seconds, for every request to Request Finance
ID_TOKEN_LEEWAY = 30  # seconds of clock skew tolerated on exp/iat

log = logging.getLogger("acme")


# -- configuration -------------------------------------------------------------------------
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
        values["issuer"] = values["issuer"].rstrip("/")
        values["api_url"] = values["api_url"].rstrip("/")
        return cls(port=int(env.get("PORT", "5000")), **values)


# -- errors: every one of them ends as a page or a redirect (see register_error_pages) -------
class RequestFinanceError(Exception):
    """Base class: Request Finance said no, or could not be reached."""


class LoginRequired(RequestFinanceError):
    """The user's grant is gone (refresh token revoked or expired): they must log in again."""


class ConsentRequired(RequestFinanceError):
    """The API answered 403 insufficient_scope: retrying cannot help, the user must consent again."""


class TokenEndpointUnavailable(RequestFinanceError):
    """The token endpoint kept answering 429/5xx after the bounded retries; the grant is kept."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiError(RequestFinanceError):
    """An API call failed for another reason."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


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
    """Authlib compliance hook: a 429/5xx token response is an outage, not an OAuth error."""
    if response.status_code == 429 or response.status_code >= 500:
        raise TokenEndpointBusy(response.status_code, retry_after_seconds(response))
    return response


def request_finance_compliance_fix(oauth_session: Any) -> None:
    """Passed to ``oauth.register(compliance_fix=...)``: applied to every Authlib session."""
    oauth_session.register_compliance_hook("access_token_response", raise_when_busy)
    oauth_session.register_compliance_hook("refresh_token_response", raise_when_busy)


# -- server-side storage ---------------------------------------------------------------------
class MemoryCache:
    """The ``cache`` Authlib keeps pending logins in (PKCE verifier, nonce), instead of the cookie.

    Authlib's interface: get/set/delete. A real deployment with several processes would use
    Redis or a database here, and for the grants below.
    """

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            expires, value = self._items.get(key, (0.0, None))
            if expires < time.monotonic():
                self._items.pop(key, None)
                return None
            return value

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + (timeout or 3600), value)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class Grant:
    """One logged-in user's tokens. Only in this process: the browser holds an opaque ID."""

    def __init__(self, token: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        self.lock = threading.Lock()  # one refresh at a time for this user
        self.iss, self.sub = claims["iss"], claims["sub"]
        self.name = claims.get("name") or claims.get("email") or claims["sub"]
        self.access_token = ""
        self.expires_at = 0.0
        self.refresh_token: str | None = token.get("refresh_token")
        self.organizations: list[str] | None = None  # listed once per login
        self.ended = False
        self.update(token)

    def update(self, token: Mapping[str, Any]) -> None:
        """Take a token response: the new access token and, when rotated, the new refresh token."""
        if str(token.get("token_type", "")).lower() != "bearer" or "expires_in" not in token:
            raise ApiError("unexpected token response: no Bearer access token with expires_in", 502)
        self.access_token = token["access_token"]
        self.expires_at = time.time() + int(token["expires_in"])
        if token.get("refresh_token"):  # rotation: the newest one replaces the old one at once
            self.refresh_token = token["refresh_token"]


GRANTS: dict[str, Grant] = {}  # opaque grant ID (in the user's cookie session) -> tokens
GRANTS_LOCK = threading.Lock()


def current_grant() -> Grant | None:
    with GRANTS_LOCK:
        grant = GRANTS.get(session.get("grant_id", ""))
    return grant if grant is not None and not grant.ended else None


def start_session(token: Mapping[str, Any]) -> Grant:
    """A completed login: keep the tokens server-side, give the browser a new opaque ID."""
    grant = Grant(token, token["userinfo"])
    end_session()
    session.clear()  # a new session at login (session fixation); pending logins are answered
    grant_id = secrets.token_urlsafe(32)
    with GRANTS_LOCK:
        GRANTS[grant_id] = grant
    session["grant_id"] = grant_id
    return grant


def end_session() -> None:
    with GRANTS_LOCK:
        grant = GRANTS.pop(session.pop("grant_id", ""), None)
    if grant is not None:
        grant.ended = True


# -- Request Finance: tokens and API calls ---------------------------------------------------
class RequestFinance:
    """The app's Request Finance client, on top of the Authlib client registered as ``oauth.requestfinance``."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    # tokens
    def access_token(self, grant: Grant) -> str:
        """The stored access token, until it nearly expires (by this process's clock)."""
        if grant.ended:
            raise LoginRequired("session ended")
        if time.time() >= grant.expires_at - REFRESH_MARGIN:
            return self.refresh(grant, grant.access_token)
        return grant.access_token

    def refresh(self, grant: Grant, stale: str) -> str:
        """Replace ``stale``; requests that come while another refreshes wait and share its result."""
        with grant.lock:
            if grant.ended:
                raise LoginRequired("session ended")
            if grant.access_token != stale:
                return grant.access_token  # refreshed by a concurrent request meanwhile
            if not grant.refresh_token:
                self.end(grant, "no refresh token")
            log.info("refreshing the access token of user %s", grant.sub)
            try:
                token = self.token_request(lambda: self.client.fetch_access_token(
                    grant_type="refresh_token", refresh_token=grant.refresh_token))
            except OAuthError as err:
                # invalid_grant: revoked or expired; never retry with it (RFC 6749 §5.2). Any other
                # OAuth error leaves no usable refresh token either.
                self.end(grant, f"refresh refused ({err.error})")
            self.check_same_user(grant, token)
            grant.update(token)
            return grant.access_token

    def check_same_user(self, grant: Grant, token: Mapping[str, Any]) -> None:
        """A refreshed ID token must be valid and name the same issuer and user (OIDC Core §12.2)."""
        if not token.get("id_token"):
            return
        try:
            claims = self.client.parse_id_token(token, nonce=None, leeway=ID_TOKEN_LEEWAY,
                                                claims_options=self.id_token_claims_options())
        except JoseError as err:
            self.end(grant, f"the refreshed ID token is invalid ({type(err).__name__})")
        if claims["iss"] != grant.iss or claims["sub"] != grant.sub:
            self.end(grant, "the refreshed ID token names another issuer or user")

    def end(self, grant: Grant, reason: str) -> NoReturn:
        grant.ended = True
        grant.access_token, grant.refresh_token = "", None
        log.info("user %s must log in again: %s", grant.sub, reason)
        raise LoginRequired(reason)

    def token_request(self, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
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

    def id_token_claims_options(self) -> dict[str, Any]:
        issuer = self.client.load_server_metadata()["issuer"]  # "https://auth.request.finance/"
        return {"iss": {"essential": True, "values": [issuer]},
                "aud": {"essential": True, "values": [self.settings.client_id]}}

    # API
    def organizations(self, grant: Grant) -> list[str]:
        """The IDs of the user's organizations, listed once per login (needs user:read)."""
        if grant.organizations is None:
            grant.organizations = [str(org["id"]) for org in self.api_get(grant, "users/organizations")]
        return grant.organizations

    def api_get(self, grant: Grant, path: str, organization: str | None = None) -> Any:
        """GET ``path`` as the user; ``organization`` (a listed ID) reads that organization's data."""
        token = self.access_token(grant)
        response = self.send(token, path, organization)
        if response.status_code == 401:  # invalid_token (expired, revoked): refresh once, retry once
            log.info("GET /%s: access token rejected (%s); refreshing once", path, bearer_error(response))
            token = self.refresh(grant, token)
            response = self.send(token, path, organization)
            if response.status_code == 401:
                self.end(grant, "a fresh access token was rejected too")
        if response.status_code == 403 and bearer_error(response) == "insufficient_scope":
            raise ConsentRequired(f"GET /{path}: insufficient scope")  # no retry (SCOPE-05)
        if not response.ok:
            raise ApiError(f"GET /{path} answered HTTP {response.status_code}", response.status_code)
        return response.json()

    def send(self, token: str, path: str, organization: str | None) -> requests.Response:
        headers = {"Accept": "application/json", "X-Network": self.settings.network}
        if organization is not None:
            headers["X-Organization"] = organization
        # Authlib signs the request with "Authorization: Bearer <token>". Only the access token is
        # given: Authlib then never refreshes on its own, behind this class's lock.
        return self.client.get(path, token={"access_token": token, "token_type": "Bearer"},
                               headers=headers, timeout=HTTP_TIMEOUT)


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
    app = Flask(__name__)
    # Signs the cookie session (which holds no token). Set FLASK_SECRET_KEY to keep sessions across
    # restarts and processes; without it, a random key per process.
    app.config.update(SECRET_KEY=os.environ.get("FLASK_SECRET_KEY") or os.urandom(32),
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.redirect_uri.startswith("https://"))

    oauth = OAuth(app, cache=MemoryCache())
    oauth.register(
        "requestfinance",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        api_base_url=f"{settings.api_url}/",
        authorize_params={"audience": AUDIENCE},
        client_kwargs={"scope": SCOPES, "code_challenge_method": "S256", "timeout": HTTP_TIMEOUT},
        compliance_fix=request_finance_compliance_fix,
    )
    rf = RequestFinance(oauth.requestfinance, settings)
    app.extensions["request_finance"] = rf

    @app.get("/")
    def home() -> ResponseReturnValue:
        grant = current_grant()
        if grant is None:
            return page("Acme Invoices", "<p><a href='/login'>Connect your Request Finance account</a></p>")
        return page("Acme Invoices", f"<p>Connected as {escape(grant.name)}.</p>"
                                     "<p><a href='/invoices'>Your invoices</a></p>")

    @app.get("/login")
    def login() -> ResponseReturnValue:
        extra = {"prompt": "consent"} if session.get("consent_needed") else {}
        log.info("login started%s", " (prompt=consent)" if extra else "")
        # state, nonce and the PKCE verifier are made by Authlib and kept in the cache
        return rf.client.authorize_redirect(settings.redirect_uri, **extra)

    @app.get("/callback")
    def callback() -> ResponseReturnValue:
        try:
            # checks state, sends the PKCE verifier, verifies the ID token (signature, claims, nonce)
            token = rf.client.authorize_access_token(leeway=ID_TOKEN_LEEWAY,
                                                     claims_options=rf.id_token_claims_options())
        except MismatchingStateError:  # a login this browser did not start: login CSRF, code injection
            log.warning("login refused: state mismatch")
            return error_page(400, "Login failed: this sign-in was not started here. Please try again.")
        except OAuthError as err:  # access_denied at the authorization server, invalid_grant, ...
            log.warning("login refused: %s", err.error)
            return error_page(400, f"Login failed ({err.error}). Please try again.")
        except JoseError as err:  # the ID token failed verification (signature, iss, aud, exp, ...)
            log.warning("login refused: invalid ID token (%s)", type(err).__name__)
            return error_page(400, "Login failed: invalid ID token. Please try again.")
        except TokenEndpointBusy as busy:  # the pending login was used up: the user starts again later
            log.warning("login failed: %s", busy)
            return error_page(503, "Request Finance is busy. Please log in again in a minute.")
        if "userinfo" not in token:
            log.warning("login refused: no ID token")
            return error_page(400, "Login failed: no ID token. Please try again.")
        grant = start_session(token)
        log.info("user %s logged in", grant.sub)
        return redirect(url_for("home"))

    @app.get("/invoices")
    def invoices() -> ResponseReturnValue:
        grant = current_grant()
        if grant is None:
            return redirect(url_for("login"))
        organizations = rf.organizations(grant)
        personal = rf.api_get(grant, "invoices")
        body = f"<p>{len(personal)} invoice(s) in your personal account.</p>"
        if organizations:  # X-Organization only with an ID the API listed
            shared = rf.api_get(grant, "invoices", organization=organizations[0])
            body += f"<p>{len(shared)} invoice(s) in organization {escape(organizations[0])}.</p>"
        return page("Your invoices", body)

    @app.get("/logout")
    def logout() -> ResponseReturnValue:
        end_session()
        session.clear()
        return redirect(url_for("home"))

    register_error_pages(app)
    return app


def register_error_pages(app: Flask) -> None:
    """What the user sees when Request Finance says no: never a 500."""

    @app.errorhandler(LoginRequired)
    def login_again(err: LoginRequired) -> ResponseReturnValue:
        end_session()
        return redirect(url_for("login"))

    @app.errorhandler(ConsentRequired)
    def consent_again(err: ConsentRequired) -> ResponseReturnValue:
        log.info("%s: asking the user to consent again", err)
        end_session()
        session["consent_needed"] = True  # the next /login asks with prompt=consent
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


def main(app: Flask | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    app = app or create_app(settings)
    log.info("listening on 127.0.0.1:%d (network %s)", settings.port, settings.network)
    app.run(host="127.0.0.1", port=settings.port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
