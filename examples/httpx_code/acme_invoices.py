"""Acme Invoices: a Request Finance integration (authorization code flow) built on httpx.

A reference to copy. It shows: the authorization request with ``state``, ``nonce`` and PKCE
``S256`` (RFC 9700 §2.1.1); the code exchange with ``client_secret_post`` and full ID token
verification against the JWKS (OIDC Core 3.1.3.7), re-fetching it when keys rotate; reusing the
access token until it nearly expires, refresh token rotation (RFC 6749 §6), one shared refresh
for concurrent callers and clean stops when the user must log in again; ``X-Network`` on every
API call and organization reads (``X-Organization``). The real hosts are hard-coded: under
rfcheck, httpx calls to them are served by the mock.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt

if TYPE_CHECKING:  # only the rfcheck adapter (make_target) needs it, and only for typing
    import rfcheck

log = logging.getLogger(__name__)

AUTH_URL = "https://auth.request.finance"
API_URL = "https://api.request.finance"
DEFAULT_SCOPES = ("openid", "profile", "email", "offline_access", "user:read")
REFRESH_MARGIN = 60.0  # refresh when less than this many seconds of validity remain
CLOCK_LEEWAY = 30  # seconds of clock skew tolerated on ID token exp/iat
JWKS_COOLDOWN = 60.0  # fetch the JWKS again for an unknown kid at most this often
MAX_RETRIES = 2  # token endpoint retries after 429/5xx
MAX_RETRY_SLEEP = 2.0


class AcmeError(Exception):
    """Base class of this integration's errors (also: an API call failed)."""


class LoginError(AcmeError):
    """The login was refused: bad callback, failed code exchange or invalid ID token."""


class ReauthorizationRequired(AcmeError):
    """The session is gone; send the user through start_login()/finish_login() again."""


class TokenEndpointError(AcmeError):
    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"token endpoint error: {error} {description}".strip())
        self.error = error


@dataclass(frozen=True)
class _PendingLogin:
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class _Session:  # replaced as a whole, so readers in other threads always see a consistent one
    access_token: str
    expires_at: float  # by time.time(); computed from expires_in
    refresh_token: str | None
    sub: str
    iss: str


class AcmeInvoices:
    def __init__(self, client_id: str, client_secret: str, redirect_uri: str, network: str,
                 scopes: tuple[str, ...] = DEFAULT_SCOPES, auth_url: str = AUTH_URL,
                 api_url: str = API_URL) -> None:
        if network not in ("test", "live"):
            raise ValueError("network must be exactly 'test' or 'live'")
        self._client_id, self._client_secret = client_id, client_secret
        self._redirect_uri, self._network, self._scopes = redirect_uri, network, scopes
        self._auth, self._api = auth_url.rstrip("/"), api_url.rstrip("/")
        self._http = httpx.Client(timeout=10.0)
        self._pending: _PendingLogin | None = None
        self._consent_needed = False
        self._session: _Session | None = None
        self._orgs: list[str] | None = None  # listed once per login
        self._refresh_lock, self._orgs_lock = threading.Lock(), threading.Lock()
        self._discovery: dict[str, Any] | None = None
        self._jwks: dict[str, dict[str, Any]] = {}
        self._jwks_fetched_at: float | None = None

    # --- login ------------------------------------------------------------------------

    def start_login(self) -> str:
        verifier = secrets.token_urlsafe(48)  # PKCE (RFC 7636), S256 only (RFC 9700 §2.1.1)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        self._pending = _PendingLogin(secrets.token_urlsafe(24), secrets.token_urlsafe(24), verifier)
        params = {
            "response_type": "code", "client_id": self._client_id,
            "redirect_uri": self._redirect_uri, "audience": "accounts",
            "scope": " ".join(self._scopes),
            "state": self._pending.state,  # login CSRF protection (RFC 6749 §10.12)
            "nonce": self._pending.nonce,  # binds the ID token to this login (OIDC Core 3.1.2.1)
            "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256",
        }
        if self._consent_needed:  # the API said insufficient_scope: ask the user again
            params["prompt"] = "consent"
        log.info("Starting login (prompt=consent: %s)", self._consent_needed)
        return f"{self._auth}/authorize?{urlencode(params)}"

    def finish_login(self, callback_url: str) -> None:
        params = {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}
        pending = self._pending
        if pending is None:
            raise LoginError("no login in progress")
        if not secrets.compare_digest(params.get("state", "").encode(), pending.state.encode()):
            raise LoginError("state mismatch: callback not started by this app (RFC 6749 §10.12)")
        self._pending = None  # each state is used once
        if "error" in params:
            raise LoginError(f"authorization failed: {params['error']}")
        if "code" not in params:
            raise LoginError("callback without code")
        try:  # same redirect_uri as in the request; the verifier proves it is our code
            tokens = self._token_request({
                "grant_type": "authorization_code", "code": params["code"],
                "redirect_uri": self._redirect_uri, "code_verifier": pending.verifier})
            access_token, expires_at = self._access_fields(tokens)
        except TokenEndpointError as exc:
            raise LoginError(str(exc)) from exc
        if "id_token" not in tokens:
            raise LoginError("no ID token in the token response")
        claims = self._verify_id_token(tokens["id_token"], nonce=pending.nonce)
        # Only now, with the ID token verified, are the tokens trusted and stored.
        self._session = _Session(access_token, expires_at, tokens.get("refresh_token"),
                                 claims["sub"], claims["iss"])
        self._orgs, self._consent_needed = None, False
        log.info("Login completed")

    # --- API work ---------------------------------------------------------------------

    def exercise(self) -> None:
        orgs = self._organizations()
        self._api_get("/invoices")
        if orgs:
            self._api_get("/invoices", org_id=orgs[0])

    def close(self) -> None:
        self._http.close()

    def _organizations(self) -> list[str]:
        with self._orgs_lock:
            if self._orgs is None:
                orgs = self._api_get("/users/organizations")  # needs user:read; a JSON array
                self._orgs = [str(org["id"]) for org in orgs]
                log.info("Member of %d organization(s)", len(self._orgs))
            return self._orgs

    def _api_get(self, path: str, org_id: str | None = None) -> Any:
        session = self._current_session()
        resp = self._send(session, path, org_id)
        if resp.status_code == 401 and _bearer_error(resp) == "invalid_token":
            log.info("Access token rejected (invalid_token); refreshing once")
            resp = self._send(self._refresh(stale=session), path, org_id)
            if resp.status_code == 401:  # a fresh token rejected too: stop, never loop
                self._drop_session()
                raise ReauthorizationRequired("access token rejected after refresh")
        if resp.status_code == 403 and _bearer_error(resp) == "insufficient_scope":
            # Retrying cannot help; the user must grant the scope again (prompt=consent).
            self._consent_needed = True
            self._drop_session()
            raise ReauthorizationRequired(f"insufficient scope for {path}")
        if resp.status_code != 200:
            raise AcmeError(f"GET {path} failed with HTTP {resp.status_code}")
        return resp.json()

    def _send(self, session: _Session, path: str, org_id: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session.access_token}",
                   "X-Network": self._network, "Accept": "application/json"}
        if org_id is not None:  # only IDs listed by GET /users/organizations
            headers["X-Organization"] = org_id
        return self._http.get(f"{self._api}{path}", headers=headers)

    # --- tokens -----------------------------------------------------------------------

    def _current_session(self) -> _Session:
        session = self._session
        if session is None:
            raise ReauthorizationRequired("not logged in")
        if session.expires_at - time.time() < REFRESH_MARGIN:  # reuse until nearly expired
            return self._refresh(stale=session)
        return session

    def _refresh(self, stale: _Session) -> _Session:
        with self._refresh_lock:  # concurrent callers share one refresh
            current = self._session
            if current is None:
                raise ReauthorizationRequired("session ended")
            if current is not stale:  # another thread refreshed (or logged in) meanwhile
                return current
            if current.refresh_token is None:
                self._drop_session()
                raise ReauthorizationRequired("no refresh token")
            log.info("Refreshing the access token")
            try:
                tokens = self._token_request(
                    {"grant_type": "refresh_token", "refresh_token": current.refresh_token})
            except TokenEndpointError as exc:
                if exc.error != "invalid_grant":
                    raise
                self._drop_session()  # revoked or expired: never retry with it (RFC 6749 §5.2)
                log.info("Refresh token rejected; the user must log in again")
                raise ReauthorizationRequired("refresh token rejected") from exc
            access_token, expires_at = self._access_fields(tokens)
            if "id_token" in tokens:
                self._check_refreshed_id_token(tokens["id_token"], current)
            # Rotation: always keep the newest refresh token (RFC 6749 §6, RFC 9700 §4.14.2).
            self._session = replace(
                current, access_token=access_token, expires_at=expires_at,
                refresh_token=tokens.get("refresh_token", current.refresh_token))
            return self._session

    def _check_refreshed_id_token(self, id_token: str, current: _Session) -> None:
        try:
            claims = self._verify_id_token(id_token, nonce=None)
            if claims["iss"] != current.iss or claims["sub"] != current.sub:  # OIDC Core 12.2
                raise LoginError("refreshed ID token is for another issuer or user")
        except LoginError as exc:
            self._drop_session()
            raise ReauthorizationRequired("refresh returned an invalid ID token") from exc

    @staticmethod
    def _access_fields(tokens: dict[str, Any]) -> tuple[str, float]:
        if (str(tokens.get("token_type", "")).lower() != "bearer"
                or "access_token" not in tokens or "expires_in" not in tokens):
            raise TokenEndpointError("unexpected_response", "no Bearer access token")
        return tokens["access_token"], time.time() + float(tokens["expires_in"])

    def _drop_session(self) -> None:
        self._session, self._orgs = None, None

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        for attempt in range(MAX_RETRIES + 1):  # client_secret_post (RFC 6749 §2.3.1)
            resp = self._http.post(f"{self._auth}/oauth/token", data=form)
            if resp.status_code != 429 and resp.status_code < 500:
                break
            if attempt == MAX_RETRIES:
                raise TokenEndpointError("temporarily_unavailable", f"HTTP {resp.status_code}")
            delay = min(_retry_after(resp, default=0.5 * 2**attempt), MAX_RETRY_SLEEP)
            log.info("Token endpoint answered %d; retrying in %.1f s", resp.status_code, delay)
            time.sleep(delay)
        try:
            body: dict[str, Any] = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200:
            raise TokenEndpointError(str(body.get("error", resp.status_code)),
                                     str(body.get("error_description", "")))
        return body

    # --- ID token verification (OIDC Core 3.1.3.7) ------------------------------------

    def _verify_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        try:
            key = self._signing_key(jwt.get_unverified_header(id_token).get("kid"))
            claims: dict[str, Any] = jwt.decode(
                id_token, key, algorithms=["RS256"],  # never "none" or HS256 (alg confusion)
                audience=self._client_id, issuer=self._oidc_config()["issuer"],
                leeway=CLOCK_LEEWAY, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        except (jwt.PyJWTError, httpx.HTTPError, KeyError) as exc:
            raise LoginError(f"ID token rejected: {exc}") from exc
        if nonce is not None and not secrets.compare_digest(
                str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise LoginError("ID token rejected: nonce mismatch")
        return claims

    def _oidc_config(self) -> dict[str, Any]:
        if self._discovery is None:
            resp = self._http.get(f"{self._auth}/.well-known/openid-configuration")
            resp.raise_for_status()
            config = resp.json()
            # OIDC Discovery 4.3: the issuer is the URL we asked (Auth0 adds a trailing slash);
            # the ID tokens' iss must equal the discovery value exactly.
            if config.get("issuer", "").rstrip("/") != self._auth:
                raise LoginError("discovery document names another issuer")
            self._discovery = config
        return self._discovery

    def _signing_key(self, kid: str | None) -> Any:
        if kid not in self._jwks and (self._jwks_fetched_at is None
                                      or time.time() - self._jwks_fetched_at >= JWKS_COOLDOWN):
            # With our own client, not PyJWKClient (urllib); keys rotate, so fetch again.
            resp = self._http.get(self._oidc_config()["jwks_uri"])
            resp.raise_for_status()
            self._jwks = {k.get("kid"): k for k in resp.json()["keys"] if k.get("kty") == "RSA"}
            self._jwks_fetched_at = time.time()
        if kid not in self._jwks:
            raise LoginError("ID token signed with an unknown key")
        return jwt.PyJWK(self._jwks[kid], algorithm="RS256").key


def _bearer_error(resp: httpx.Response) -> str | None:
    match = re.search(r'\berror="([^"]*)"', resp.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else None  # RFC 6750 §3


def _retry_after(resp: httpx.Response, default: float) -> float:
    try:  # Retry-After in seconds; an HTTP date falls back to our own backoff
        return max(0.0, float(resp.headers["Retry-After"]))
    except (KeyError, ValueError):
        return default


def make_target(env: rfcheck.Environment) -> AcmeInvoices:
    """rfcheck adapter. env.issuer/env.api_url are ignored: this app uses the real hosts."""
    return AcmeInvoices(client_id=env.client_id, client_secret=env.client_secret,
                        redirect_uri=env.redirect_uri, network=env.network,
                        scopes=tuple(env.scopes) or DEFAULT_SCOPES)
