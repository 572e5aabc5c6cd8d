"""Acme Worker: a Request Finance integration (client credentials flow) built on httpx.

A reference to copy for machine-to-machine work (MAN-03: Request Finance activates the
client credentials flow for the app first). It shows: the token request with
``grant_type=client_credentials`` and ``audience=accounts``, the client authenticated with
``client_secret_basic`` (RFC 6749 §2.3.1: ID and secret form-urlencoded before base64), no
``offline_access`` (the flow never returns a refresh token, RFC 6749 §4.4.3); reusing the
access token until it nearly expires, one token request shared by concurrent callers, one new
token after a ``401 invalid_token`` and then a clean stop; back-off on token endpoint
``429``/``5xx`` honouring ``Retry-After``; ``X-Network`` on every API call. The real hosts are
hard-coded: under rfcheck, httpx calls to them are served by the mock.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import httpx

if TYPE_CHECKING:  # only the rfcheck adapter (make_target) needs it, and only for typing
    import rfcheck

log = logging.getLogger(__name__)

AUTH_URL = "https://auth.request.finance"
API_URL = "https://api.request.finance"
AUDIENCE = "accounts"
REFRESH_MARGIN = 60.0  # get a new token when less than this many seconds of validity remain
MAX_RETRIES = 2  # token endpoint retries after 429/5xx
MAX_RETRY_SLEEP = 2.0


class WorkerError(Exception):
    """Base class of this worker's errors (also: an API call failed)."""


class TokenEndpointError(WorkerError):
    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"token endpoint error: {error} {description}".strip())
        self.error = error


class AccessRefused(WorkerError):
    """A brand-new access token was refused too: stop and let an operator look (never loop)."""


@dataclass(frozen=True)
class _Token:  # replaced as a whole, so readers in other threads always see a consistent one
    access_token: str
    expires_at: float  # by time.time(); computed from expires_in


class AcmeWorker:
    def __init__(self, client_id: str, client_secret: str, network: str,
                 auth_url: str = AUTH_URL, api_url: str = API_URL) -> None:
        if network not in ("test", "live"):
            raise ValueError("network must be exactly 'test' or 'live'")
        self._client_id, self._client_secret, self._network = client_id, client_secret, network
        self._auth, self._api = auth_url.rstrip("/"), api_url.rstrip("/")
        self._http = httpx.Client(timeout=10.0)
        self._token: _Token | None = None
        self._token_lock = threading.Lock()

    # --- API work ---------------------------------------------------------------------

    def exercise(self) -> None:
        """One unit of work: read the invoices and the currency list."""
        invoices = self._api_get("/invoices")
        currencies = self._api_get("/currency")
        log.info("Read %d invoice(s) and %d currencies", len(invoices), len(currencies))

    def close(self) -> None:
        self._http.close()

    def _api_get(self, path: str) -> Any:
        token = self._current_token()
        resp = self._send(token, path)
        if resp.status_code == 401 and _bearer_error(resp) == "invalid_token":
            log.info("Access token rejected (invalid_token); getting a new one once")
            resp = self._send(self._new_token(stale=token), path)
            if resp.status_code == 401:  # a brand-new token refused too: stop, never loop
                raise AccessRefused(f"GET {path}: a new access token was refused as well")
        if resp.status_code != 200:
            raise WorkerError(f"GET {path} failed with HTTP {resp.status_code}")
        return resp.json()

    def _send(self, token: _Token, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token.access_token}",
                   "X-Network": self._network, "Accept": "application/json"}
        return self._http.get(f"{self._api}{path}", headers=headers)

    # --- tokens -----------------------------------------------------------------------

    def _current_token(self) -> _Token:
        token = self._token
        if token is None or token.expires_at - time.time() < REFRESH_MARGIN:  # reuse until nearly expired
            return self._new_token(stale=token)
        return token

    def _new_token(self, stale: _Token | None) -> _Token:
        with self._token_lock:  # concurrent callers share one token request
            current = self._token
            if current is not stale and current is not None:  # another thread got one meanwhile
                return current
            log.info("Requesting an access token (client credentials)")
            tokens = self._token_request({"grant_type": "client_credentials", "audience": AUDIENCE})
            if (str(tokens.get("token_type", "")).lower() != "bearer"
                    or "access_token" not in tokens or "expires_in" not in tokens):
                raise TokenEndpointError("unexpected_response", "no Bearer access token")
            self._token = _Token(tokens["access_token"], time.time() + float(tokens["expires_in"]))
            return self._token

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        # client_secret_basic: form-urlencode id and secret, then base64 (RFC 6749 §2.3.1).
        basic = f"{quote_plus(self._client_id)}:{quote_plus(self._client_secret)}"
        headers = {"Authorization": "Basic " + base64.b64encode(basic.encode()).decode()}
        for attempt in range(MAX_RETRIES + 1):
            resp = self._http.post(f"{self._auth}/oauth/token", data=form, headers=headers)
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


def _bearer_error(resp: httpx.Response) -> str | None:
    match = re.search(r'\berror="([^"]*)"', resp.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else None  # RFC 6750 §3


def _retry_after(resp: httpx.Response, default: float) -> float:
    try:  # Retry-After in seconds; an HTTP date falls back to our own backoff
        return max(0.0, float(resp.headers["Retry-After"]))
    except (KeyError, ValueError):
        return default


def make_target(env: rfcheck.Environment) -> AcmeWorker:
    """rfcheck adapter. env.issuer/env.api_url are ignored: this worker uses the real hosts."""
    return AcmeWorker(client_id=env.client_id, client_secret=env.client_secret, network=env.network)
