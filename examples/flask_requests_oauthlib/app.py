"""Flask + requests-oauthlib + PyJWT: a Request Finance integration in the libraries' documented style.

- ``OAuth2Session(..., pkce="S256")`` and ``authorization_url()`` (``state`` and the PKCE challenge),
  ``fetch_token(token_url, authorization_response=request.url, client_secret=...)``;
- automatic refresh: ``auto_refresh_url``, ``auto_refresh_kwargs`` and ``token_updater``;
- the ID token verified with ``jwt.PyJWKClient`` and ``jwt.decode(..., algorithms=["RS256"])``.

The tokens stay on the server (the cookie session holds a random grant ID). oauthlib refuses
``http://`` URLs, the callback URL that ``fetch_token()`` parses included: in production every URL
is https; a run on http://localhost sets ``OAUTHLIB_INSECURE_TRANSPORT=1`` in its environment.

Settings, from the environment only: RF_ISSUER (https://auth.request.finance), RF_API_URL
(https://api.request.finance), RF_CLIENT_ID, RF_CLIENT_SECRET, RF_REDIRECT_URI, RF_NETWORK (test or
live), FLASK_SECRET_KEY (signs the session cookie), PORT.
"""

from __future__ import annotations

import functools
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests
from flask import Flask, redirect, request, session
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error
from requests_oauthlib import OAuth2Session

ISSUER = os.environ["RF_ISSUER"].rstrip("/")
API_URL = os.environ["RF_API_URL"].rstrip("/")
CLIENT_ID = os.environ["RF_CLIENT_ID"]
CLIENT_SECRET = os.environ["RF_CLIENT_SECRET"]
REDIRECT_URI = os.environ["RF_REDIRECT_URI"]
NETWORK = os.environ["RF_NETWORK"]
SCOPE = ["openid", "profile", "email", "offline_access", "user:read"]
TOKEN_RETRIES = 2  # after a 429/5xx from the token endpoint, honouring Retry-After
# a user may grant fewer scopes than asked: oauthlib would raise at the code exchange, the app handles
# the API's 403 insufficient_scope instead (oauthlib's documented switch)
os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


class LoginRequired(Exception):
    """The grant is gone (refresh token revoked, a refreshed token refused): the user logs in again."""


class InsufficientScope(Exception):
    """The API answered 403 insufficient_scope: retrying cannot help, the user must consent again."""


class Busy(Exception):
    """The token endpoint answered 429/5xx."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"token endpoint busy (Retry-After {retry_after:g} s)")
        self.retry_after = retry_after


@functools.cache
def provider() -> dict[str, Any]:
    answer = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10)
    answer.raise_for_status()
    return answer.json()


@functools.cache
def jwks() -> jwt.PyJWKClient:
    return jwt.PyJWKClient(provider()["jwks_uri"])


def verify_id_token(id_token: str, nonce: str | None = None) -> dict[str, Any]:
    key = jwks().get_signing_key_from_jwt(id_token)  # an unknown kid fetches the JWKS again
    claims = jwt.decode(id_token, key.key, algorithms=["RS256"], audience=CLIENT_ID, issuer=provider()["issuer"],
                        leeway=30, options={"require": ["exp", "iat", "sub"]})
    if nonce is not None and claims.get("nonce") != nonce:
        raise jwt.InvalidTokenError("nonce mismatch")
    return claims


def raise_when_busy(response: requests.Response) -> requests.Response:
    """Compliance hook: a 429/5xx token response is an outage to wait out, not an OAuth error."""
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After", "1")
        raise Busy(min(float(retry_after) if retry_after.isdigit() else 1.0, 2.0))
    return response


def with_retries(send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    for attempt in range(TOKEN_RETRIES + 1):
        try:
            return send()
        except Busy as busy:
            if attempt == TOKEN_RETRIES:
                raise
            time.sleep(busy.retry_after)
    raise AssertionError("unreachable")


class Grant:
    """One login's tokens, shared by the user's parallel requests; the lock makes them share one refresh."""

    def __init__(self, token: dict[str, Any], sub: str) -> None:
        self.token, self.sub, self.lock = token, sub, threading.Lock()

    def update(self, token: dict[str, Any]) -> None:  # the token_updater
        self.token = token  # with the rotated refresh token (RFC 6749 §6)


class UserSession(OAuth2Session):
    """The user's OAuth2Session: requests-oauthlib refreshes an expired token itself (auto_refresh_url)."""

    def __init__(self, grant: Grant) -> None:
        super().__init__(CLIENT_ID, token=dict(grant.token), auto_refresh_url=provider()["token_endpoint"],
                         auto_refresh_kwargs={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                         token_updater=grant.update)
        self.grant = grant
        self.register_compliance_hook("refresh_token_response", raise_when_busy)

    def refresh_token(self, token_url: str, refresh_token: str | None = None, **kwargs: Any) -> dict[str, Any]:
        with self.grant.lock:
            if self.grant.token["access_token"] != self.access_token:  # a parallel request refreshed meanwhile
                self.token = dict(self.grant.token)
                return self.token
            refresh = super().refresh_token
            kwargs.setdefault("timeout", 10)
            try:
                token = with_retries(lambda: refresh(token_url, refresh_token=self.grant.token["refresh_token"],
                                                     **kwargs))
            except InvalidGrantError as err:
                raise LoginRequired("refresh token refused") from err
            if token.get("id_token"):  # OIDC Core §12.2: the same user
                try:
                    if verify_id_token(token["id_token"])["sub"] != self.grant.sub:
                        raise LoginRequired("the refreshed ID token names another user")
                except jwt.PyJWTError as err:
                    raise LoginRequired("refreshed ID token refused") from err
            self.grant.update(token)  # under the lock: the next request presents the rotated refresh token
            return token

    def api_get(self, path: str, organization: str | None = None) -> Any:
        headers = {"X-Network": NETWORK, **({"X-Organization": organization} if organization else {})}
        answer = self.get(API_URL + path, headers=headers, timeout=10)
        if answer.status_code == 401:  # revoked before its expiry: one refresh, one retry
            self.refresh_token(str(self.auto_refresh_url))
            answer = self.get(API_URL + path, headers=headers, timeout=10)
            if answer.status_code == 401:
                raise LoginRequired("the API refused a fresh access token")
        if answer.status_code == 403 and "insufficient_scope" in answer.headers.get("WWW-Authenticate", ""):
            raise InsufficientScope()
        answer.raise_for_status()
        return answer.json()


app = Flask(__name__)
app.secret_key = os.environ["FLASK_SECRET_KEY"]
GRANTS: dict[str, Grant] = {}
PENDING: dict[str, tuple[OAuth2Session, str]] = {}  # state -> the login's OAuth2Session (PKCE verifier), nonce


@app.get("/")
def home() -> str:
    return "ok"


@app.get("/login")
def login() -> Any:
    oauth = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI, scope=SCOPE, pkce="S256")
    oauth.register_compliance_hook("access_token_response", raise_when_busy)
    nonce = secrets.token_urlsafe(16)
    extra = {"prompt": "consent"} if session.get("consent") else {}
    url, state = oauth.authorization_url(provider()["authorization_endpoint"], audience="accounts", nonce=nonce,
                                         **extra)
    PENDING[state] = (oauth, nonce)
    session["state"] = state
    return redirect(url)


@app.get("/callback")
def callback() -> Any:
    pending = PENDING.pop(session.pop("state", ""), None)  # only the login this browser started
    if pending is None:
        return "login failed: no login in progress", 400
    oauth, nonce = pending
    try:  # requests-oauthlib checks state against the one it made, and sends the PKCE verifier
        token = with_retries(lambda: oauth.fetch_token(provider()["token_endpoint"], authorization_response=request.url,
                                                       client_secret=CLIENT_SECRET, timeout=10))
        claims = verify_id_token(token["id_token"], nonce)
    except (OAuth2Error, jwt.PyJWTError, KeyError) as err:
        app.logger.warning("login refused: %s", type(err).__name__)
        return "login failed", 400
    grant_id = secrets.token_urlsafe(24)
    GRANTS[grant_id] = Grant(token, claims["sub"])
    session.clear()
    session["grant"] = grant_id
    return redirect("/")


@app.get("/invoices")
def invoices() -> Any:
    grant = GRANTS.get(session.get("grant", ""))
    if grant is None:
        return redirect("/login")
    user = UserSession(grant)
    try:
        organizations = user.api_get("/users/organizations")
        organization = str(organizations[0]["id"]) if organizations else None
        return {"organization": organization, "invoices": len(user.api_get("/invoices", organization))}
    except (LoginRequired, InsufficientScope) as err:
        GRANTS.pop(session.pop("grant", ""), None)
        session["consent"] = isinstance(err, InsufficientScope)  # the next login asks with prompt=consent
        return redirect("/login")
    except Busy:
        return "Request Finance is busy, try again", 503


@app.errorhandler(requests.RequestException)
def unreachable(err: requests.RequestException) -> tuple[str, int]:
    app.logger.warning("Request Finance error: %s", type(err).__name__)
    return "Request Finance error", 502


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), threaded=True)
