"""The API for an integration's own tests: log in at the mock, as a user and as the app would.

The pytest fixtures (``rfcheck_provider``, ``rfcheck_client``, ``rfcheck_login``,
``rfcheck_consent``, ``rfcheck_journal``, ``rfcheck_clock``) wrap these functions; they are
usable without ``--rfcheck``. Everything goes through the in-process transport: httpx calls to
``https://auth.request.finance`` and ``https://api.request.finance`` reach the test's mock.

What a test can do with the provider itself (:class:`rfcheck.provider.app.Provider`):

- ``register_client(flow, redirect_uris, name)``: a :class:`~rfcheck.provider.accounts.Client`
  (``client_id``, ``client_secret``, ``redirect_uris``, ``flow``);
- ``revoke_access_tokens(client_id)`` / ``revoke_refresh_families(client_id)``: what a user's
  revocation does (the API answers 401, the refresh ``invalid_grant``);
- ``faults``: ``fail_token_endpoint(status, times, retry_after)``, ``token_delay = seconds``,
  ``id_token = "bad_signature"`` (and the other ID token defects), ``refresh_id_token =
  "changed_sub"``, ``withheld_scopes = frozenset({"user:read"})``;
- ``keys.rotate()``: a new signing key (a new ``kid`` in the JWKS);
- ``clock.travel(seconds)``: every token issued expires on time (the fixture ``rfcheck_clock``
  moves the test's own ``time.time()`` and ``datetime.now()`` with it);
- ``journal``: every exchange (``since(mark)``, ``mark()``; each :class:`~rfcheck.journal.Exchange`
  has ``host`` (auth, api), ``method``, ``path``, ``headers``, ``form``, ``status``, ``facts``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from rfcheck.targets.consent import consent
from rfcheck.facts import AUDIENCE, AUTH_HOST, AUTHORIZATION_CODE, KNOWN_SCOPES
from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.provider.clock import following
from rfcheck.targets.base import StepFailed
from rfcheck.transport.server import LoopbackMock

__all__ = ["DEFAULT_REDIRECT_URI", "LoginFailed", "MockServer", "Tokens", "authorization_url", "consent_as_user",
           "following", "login"]

DEFAULT_REDIRECT_URI = "http://localhost:8000/callback"


class MockServer:
    """What the ``rfcheck_server`` fixture gives a test: the mock's hosts on loopback ports."""

    def __init__(self, mock: LoopbackMock) -> None:
        self._mock = mock
        self.provider: Provider = mock.provider

    @property
    def issuer(self) -> str:
        """The authorization server's base URL, no trailing slash (``issuer + "/authorize"``)."""
        return self._mock.issuer

    @property
    def api_url(self) -> str:
        return self._mock.api_url

    @property
    def ca_file(self) -> str | None:
        """The CA's PEM when ``rfcheck_tls`` is on (``verify=`` for requests, ``REQUESTS_CA_BUNDLE``)."""
        return self._mock.ca_file

    @property
    def metadata_url(self) -> str:
        """OpenID discovery: ``issuer/.well-known/openid-configuration``."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def url_for(self, path: str, host: str = "api") -> str:
        """``path`` on the API (``host="api"``) or on the authorization server (``host="auth"``)."""
        if host not in ("api", "auth"):
            raise ValueError(f"url_for(host={host!r}): the mock's hosts are 'api' and 'auth'")
        base = self.api_url if host == "api" else self.issuer
        return base + (path if path.startswith("/") else "/" + path)

    def __repr__(self) -> str:
        return f"<rfcheck mock issuer={self.issuer} api_url={self.api_url}>"


class LoginFailed(AssertionError):
    """The mock refused a step of the login; the message says which and why."""


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint answered to the code exchange."""

    access_token: str
    id_token: str
    refresh_token: str | None
    scope: str
    expires_in: int
    raw: dict[str, Any] = field(repr=False)


def authorization_url(client: Client, scopes: tuple[str, ...] = KNOWN_SCOPES, *, state: str, nonce: str,
                      code_challenge: str, redirect_uri: str | None = None) -> str:
    """The ``/authorize`` URL a correct app sends its user to (PKCE S256, state, nonce, audience)."""
    params = {"response_type": "code", "client_id": client.client_id,
              "redirect_uri": redirect_uri or client.redirect_uris[0], "scope": " ".join(scopes),
              "audience": AUDIENCE, "state": state, "nonce": nonce, "code_challenge": code_challenge,
              "code_challenge_method": "S256"}
    return str(httpx.URL(f"{AUTH_HOST}/authorize", params=params))


def consent_as_user(provider: Provider, url: str) -> str:
    """The user visits ``url`` (an app's authorization URL) and consents: the callback URL it is sent to."""
    try:
        return consent(provider, url, origin="browser")
    except StepFailed as err:
        raise LoginFailed(str(err)) from err


def login(provider: Provider, client: Client, scopes: tuple[str, ...] = KNOWN_SCOPES,
          redirect_uri: str | None = None) -> Tokens:
    """The whole authorization code flow for ``client``, as a correct app runs it: the tokens."""
    if client.flow != AUTHORIZATION_CODE:
        raise LoginFailed(f"client {client.client_id} is a {client.flow} client: it cannot log a user in")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    redirect = redirect_uri or client.redirect_uris[0]
    callback = httpx.URL(consent_as_user(provider, authorization_url(
        client, scopes, state=state, nonce=nonce, code_challenge=challenge, redirect_uri=redirect)))
    if callback.params.get("state") != state or "code" not in callback.params:
        raise LoginFailed(f"the callback carries no code for this login: {callback}")
    basic = base64.b64encode(f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
                             .encode()).decode()
    response = provider.handle(httpx.Request(
        "POST", f"{AUTH_HOST}/oauth/token", headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "authorization_code", "code": callback.params["code"], "redirect_uri": redirect,
              "code_verifier": verifier}))
    body = response.json()
    if response.status_code != 200:
        raise LoginFailed(f"the code exchange was answered {response.status_code}: {body}")
    return Tokens(body["access_token"], body.get("id_token", ""), body.get("refresh_token"), body.get("scope", ""),
                  int(body.get("expires_in", 0)), body)
