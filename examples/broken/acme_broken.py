"""Deliberately broken Request Finance integrations, for rfcheck's end-to-end tests.

Each class below is the correct example (``examples/httpx_code/acme_invoices.py``, or the
client credentials worker in ``examples/cc_worker/acme_worker.py``) with one real-world mistake
added, overriding as little as possible, so that exactly ONE catalogue requirement is violated
(its docstring names the ID). Each has a factory ``make_<variant>`` and a config
``<variant>.toml`` next to this file:

    pytest --rfcheck --rfcheck-target examples/broken/<variant>.toml

The SEC-01 variant (a ``.env`` holding a client secret) has its own project folder,
``examples/broken_secret_in_env/``: SEC-01 scans a project folder recursively, so this one
must stay free of secrets. tests/test_examples_e2e.py lists the expected report of each.

Never copy any of this into an application.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt

_EXAMPLES = Path(__file__).resolve().parents[1]
for _folder in ("httpx_code", "cc_worker"):
    if str(_EXAMPLES / _folder) not in sys.path:
        sys.path.insert(0, str(_EXAMPLES / _folder))

import acme_invoices  # noqa: E402  (the correct authorization code example)
from acme_invoices import AcmeError, AcmeInvoices, TokenEndpointError, _Session, log  # noqa: E402
from acme_worker import AccessRefused, AcmeWorker, _Token  # noqa: E402  (the correct client credentials one)

if TYPE_CHECKING:
    import rfcheck

FOREIGN_ORG_ID = "64f1d2e3a4b5c6d7e8f90123"  # an organization the scenario's user never joined
TELEMETRY_URL = "https://telemetry.example.com/v1/events"


def _factory(cls: type[AcmeInvoices]) -> Callable[[rfcheck.Environment], AcmeInvoices]:
    """``make_target`` of the correct example, building ``cls`` instead."""

    def make(env: rfcheck.Environment) -> AcmeInvoices:
        return cls(client_id=env.client_id, client_secret=env.client_secret,
                   redirect_uri=env.redirect_uri, network=env.network,
                   scopes=tuple(env.scopes) or acme_invoices.DEFAULT_SCOPES)

    return make


def _cc_factory(cls: type[AcmeWorker]) -> Callable[[rfcheck.Environment], AcmeWorker]:
    """``make_target`` of the correct client credentials example, building ``cls`` instead."""

    def make(env: rfcheck.Environment) -> AcmeWorker:
        return cls(client_id=env.client_id, client_secret=env.client_secret, network=env.network)

    return make


class _WithCurrencies(AcmeInvoices):
    """Not a variant: the correct app plus a best-effort currency lookup after each unit of work.

    The AUTH-01 and NET-02 variants break only this extra call, whose failure the app tolerates,
    so the rest of their behaviour (and of their report) stays that of the correct app.
    """

    def exercise(self) -> None:
        super().exercise()
        session = self._current_session()
        resp = self._http.get(f"{self._api}/currency", headers=self._currency_headers(session))
        if resp.status_code != 200:
            log.warning("Currency list unavailable (HTTP %d); keeping the cached one", resp.status_code)

    def _currency_headers(self, session: _Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {session.access_token}", "X-Network": self._network}


# --- AUTH ----------------------------------------------------------------------------------


class ApiKeyStyleAuth(_WithCurrencies):
    """AUTH-01 (must): a legacy helper from the API-key days sends ``Authorization: <token>``.

    The currency lookup was written when the app used an API key, which Request Finance takes
    bare; it now passes the access token the same way, without the ``Bearer`` scheme.
    """

    def _currency_headers(self, session: _Session) -> dict[str, str]:
        return {**super()._currency_headers(session), "Authorization": session.access_token}


# --- FLOW ----------------------------------------------------------------------------------


class NoPkce(AcmeInvoices):
    """FLOW-03 (should): no PKCE, as in tutorials older than RFC 9700; the state is still checked."""

    def start_login(self) -> str:
        url = httpx.URL(super().start_login())
        return str(url.copy_remove_param("code_challenge").copy_remove_param("code_challenge_method"))

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        return super()._token_request({k: v for k, v in form.items() if k != "code_verifier"})


class StateNotChecked(NoPkce):
    """FLOW-02 (must): sends a ``state`` but never compares the callback's with it, and has no PKCE.

    Either defence alone would stop an injected code, so FLOW-02 needs both missing: this
    variant also warns on FLOW-03, inherited from :class:`NoPkce`.
    """

    def finish_login(self, callback_url: str) -> None:
        if self._pending is not None:  # whatever state comes back is taken as ours
            callback_url = str(httpx.URL(callback_url).copy_set_param("state", self._pending.state))
        super().finish_login(callback_url)


class PkcePlain(AcmeInvoices):
    """FLOW-07 (must): PKCE with ``code_challenge_method=plain``; the real service refuses it.

    So the login never works and nearly everything else cannot be observed (skip).
    """

    def start_login(self) -> str:
        url = httpx.URL(super().start_login())
        assert self._pending is not None
        return str(url.copy_set_param("code_challenge", self._pending.verifier)
                   .copy_set_param("code_challenge_method", "plain"))


# --- CC (variants of the client credentials worker) ----------------------------------------


class CcAsksOfflineAccess(AcmeWorker):
    """CC-02 (should): asks for ``offline_access``, a scope list copied from the authorization code app."""

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        return super()._token_request({**form, "scope": "offline_access"})


class CcTokenAtStartupOnly(AcmeWorker):
    """CC-03 (must): gets its token once, at start-up; when the API refuses it, halts until restarted.

    Fine for a day, then every run fails at the 24 h expiry. Halting (rather than retrying) keeps
    it clear of TOKEN-05; it never meets the token endpoint's 429/503, so TOKEN-07 is skipped.
    """

    _halted = False

    def _current_token(self) -> _Token:
        if self._halted:
            raise AccessRefused("halted after the access token was refused: restart the worker")
        return self._token or self._new_token(stale=None)

    def _new_token(self, stale: _Token | None) -> _Token:
        if stale is not None:
            self._halted = True
            raise AccessRefused("the access token was refused: restart the worker")
        return super()._new_token(stale)


# --- SCOPE ---------------------------------------------------------------------------------


class NoOfflineAccess(AcmeInvoices):
    """SCOPE-01 (must): forgets ``offline_access``, so there is no refresh token after 24 h.

    The app stops cleanly when the access token expires, but the user must log in again daily.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scopes = tuple(s for s in self._scopes if s != "offline_access")


# --- TOKEN ---------------------------------------------------------------------------------


class RefreshEveryUnit(AcmeInvoices):
    """TOKEN-01 (must): refreshes the access token at the start of every unit of work "to be safe".

    It shares that refresh between concurrent units (the lock), so only TOKEN-01 is hit.
    """

    def exercise(self) -> None:
        if self._session is not None:
            self._refresh(stale=self._session)
        super().exercise()


class KeepsFirstRefreshToken(AcmeInvoices):
    """TOKEN-03 (must): stores the refresh token at login only and ignores rotated ones.

    With Auth0 rotation the second refresh reuses a rotated token and the family is revoked.
    """

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        tokens = super()._token_request(form)
        if form.get("grant_type") == "refresh_token":
            tokens.pop("refresh_token", None)
        return tokens


class RetriesDeadRefreshToken(AcmeInvoices):
    """TOKEN-04 (must): takes ``invalid_grant`` on refresh for a glitch and retries it 5 times."""

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        for _ in range(4):
            try:
                return super()._token_request(form)
            except TokenEndpointError as exc:
                if exc.error != "invalid_grant" or form.get("grant_type") != "refresh_token":
                    raise
        return super()._token_request(form)


class Retries401(AcmeInvoices):
    """TOKEN-05 (must): a generic HTTP retry wrapper that retries a 401 with the same token 3 times."""

    def _send(self, session: _Session, path: str, org_id: str | None) -> httpx.Response:
        for _ in range(4):
            resp = super()._send(session, path, org_id)
            if resp.status_code != 401:
                break
        return resp


class NoRefreshLock(AcmeInvoices):
    """TOKEN-06 (should): no lock around the refresh, so concurrent requests all refresh at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refresh_lock = contextlib.nullcontext()  # type: ignore[assignment]


class NoBackoff(AcmeInvoices):
    """TOKEN-07 (should): retries a 429/5xx from the token endpoint at once, ignoring Retry-After."""

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        for _ in range(10):
            resp = self._http.post(f"{self._auth}/oauth/token", data=form)
            if resp.status_code != 429 and resp.status_code < 500:
                break
        body: dict[str, Any] = resp.json()
        if resp.status_code != 200:
            raise TokenEndpointError(str(body.get("error", resp.status_code)))
        return body


# --- NET -----------------------------------------------------------------------------------


class CapitalizedNetwork(_WithCurrencies):
    """NET-02 (must): the currency lookup sends the network's display label (``Live``).

    Its config sets network = "live", which every other call sends correctly.
    """

    def _currency_headers(self, session: _Session) -> dict[str, str]:
        return {**super()._currency_headers(session), "X-Network": self._network.capitalize()}


class HardcodedTestNetwork(AcmeInvoices):
    """NET-03 (must): ``X-Network: test`` hard-coded during development, shipped to a live deployment.

    Its config sets network = "live".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "network": "test"})


# --- ORG -----------------------------------------------------------------------------------


class ForeignOrganization(AcmeInvoices):
    """ORG-01 (must): also reads an organization ID left in from the developer's own account.

    The API answers 403 and the app shrugs it off; everything else is the correct app.
    """

    def exercise(self) -> None:
        super().exercise()
        try:
            self._api_get("/invoices", org_id=FOREIGN_ORG_ID)
        except AcmeError as exc:
            log.warning("Shared organization unavailable: %s", exc)


class PersonalAccountOnly(AcmeInvoices):
    """ORG-02 (should): written before organizations existed: never lists them, reads only personal data.

    It does not ask for ``user:read`` either, which it would not use (else SCOPE-04 would warn too).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scopes = tuple(s for s in self._scopes if s != "user:read")

    def exercise(self) -> None:
        self._api_get("/invoices")


# --- OIDC ----------------------------------------------------------------------------------


class UnverifiedIdToken(AcmeInvoices):
    """OIDC-01..08 (should, ID tokens from the token endpoint): reads the ID token without verifying it.

    ``jwt.decode(..., options={"verify_signature": False})``: no signature, alg, iss, aud, exp or
    nonce check. A missing ``sub`` still breaks the login by accident (KeyError), a missing ``iat``
    does not, so OIDC-08 warns too.
    """

    def _verify_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(id_token, options={"verify_signature": False})
        return claims


# --- SEC -----------------------------------------------------------------------------------


class LogsAccessToken(AcmeInvoices):
    """SEC-03 (must): a debug print left in the login callback writes the access token to stdout."""

    def finish_login(self, callback_url: str) -> None:
        super().finish_login(callback_url)
        assert self._session is not None
        print(f"login ok; access token: {self._session.access_token}")


class TokenToTelemetry(AcmeInvoices):
    """SEC-04 (must): ships the login event, access token included, to a third-party analytics host."""

    def finish_login(self, callback_url: str) -> None:
        super().finish_login(callback_url)
        assert self._session is not None
        with contextlib.suppress(httpx.HTTPError):  # analytics are best effort
            self._http.post(TELEMETRY_URL, json={"event": "login", "sub": self._session.sub,
                                                 "access_token": self._session.access_token})


make_api_key_auth = _factory(ApiKeyStyleAuth)
make_no_pkce = _factory(NoPkce)
make_state_not_checked = _factory(StateNotChecked)
make_pkce_plain = _factory(PkcePlain)
make_no_offline_access = _factory(NoOfflineAccess)
make_refresh_every_unit = _factory(RefreshEveryUnit)
make_keeps_first_refresh_token = _factory(KeepsFirstRefreshToken)
make_retries_dead_refresh_token = _factory(RetriesDeadRefreshToken)
make_retries_401 = _factory(Retries401)
make_no_refresh_lock = _factory(NoRefreshLock)
make_no_backoff = _factory(NoBackoff)
make_capitalized_network = _factory(CapitalizedNetwork)
make_hardcoded_test_network = _factory(HardcodedTestNetwork)
make_foreign_organization = _factory(ForeignOrganization)
make_personal_account_only = _factory(PersonalAccountOnly)
make_unverified_id_token = _factory(UnverifiedIdToken)
make_logs_access_token = _factory(LogsAccessToken)
make_token_to_telemetry = _factory(TokenToTelemetry)
make_cc_asks_offline_access = _cc_factory(CcAsksOfflineAccess)
make_cc_token_at_startup_only = _cc_factory(CcTokenAtStartupOnly)
# Config-only variants: the correct app; the difference is in their .toml (or project folder).
make_secret_in_env = _factory(AcmeInvoices)  # SEC-01: ../broken_secret_in_env/.env
make_man_confirmed = _factory(AcmeInvoices)  # MAN-*: confirmations recorded, so pass not manual
