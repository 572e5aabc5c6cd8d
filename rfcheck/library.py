"""The built-in scenarios: each runs a fresh target once under one condition."""

from __future__ import annotations

from rfcheck.provider.accounts import AUTHORIZATION_CODE
from rfcheck.scenarios import PAST_EXPIRY, ScenarioRun, scenario

CODE_ONLY = (AUTHORIZATION_CODE,)
ID_TOKEN_FAULTS = {  # scenario name -> the fault of rfcheck.provider.faults
    "oidc_bad_signature": "bad_signature",
    "oidc_alg_none": "alg_none",
    "oidc_hs256_confusion": "hs256_public_key",
    "oidc_wrong_iss": "wrong_iss",
    "oidc_wrong_aud": "wrong_aud",
    "oidc_expired": "expired",
    "oidc_wrong_nonce": "wrong_nonce",
    "oidc_missing_sub": "missing_sub",
    "oidc_missing_iat": "missing_iat",
}
PARALLEL_UNITS = 6
SLOW_TOKEN_ENDPOINT = 0.1


@scenario("baseline")
def baseline(run: ScenarioRun) -> None:
    """Log in (authorization code) and do several units of work, all within one token lifetime."""
    if run.login():
        run.units(3)


@scenario("expiry")
def expiry(run: ScenarioRun) -> None:
    """Work, then travel past the 24 h lifetime and work again: the token must be renewed once."""
    if run.login():
        run.units(2)
        run.travel(PAST_EXPIRY)
        run.units(3)


@scenario("rotation", CODE_ONLY)
def rotation(run: ScenarioRun) -> None:
    """Two expiries in a row: the second refresh must use the refresh token the first one returned."""
    if run.login():
        run.units(1)
        run.travel(PAST_EXPIRY)
        run.units(2)
        run.travel(PAST_EXPIRY)
        run.units(2)


@scenario("revoked_refresh", CODE_ONLY)
def revoked_refresh(run: ScenarioRun) -> None:
    """The user revokes the app: the refresh fails with invalid_grant, then the user reconnects."""
    if run.login():
        run.units(1)
        run.fault("user revokes the app's refresh tokens",
                  lambda: run.provider.revoke_refresh_families(run.harness.client_id))
        run.travel(PAST_EXPIRY)
        run.units(3)
        if run.login("reconnect"):
            run.units(1)


@scenario("revoked_access")
def revoked_access(run: ScenarioRun) -> None:
    """The access token is revoked before it expires: the API answers 401 invalid_token."""
    if run.login():
        run.units(1)
        run.fault("access tokens revoked", lambda: run.provider.revoke_access_tokens(run.harness.client_id))
        run.units(3)


@scenario("concurrency")
def concurrency(run: ScenarioRun) -> None:
    """After expiry, several units of work start at once while the token endpoint answers slowly."""
    if run.login():
        run.units(1)
        run.travel(PAST_EXPIRY)
        run.fault(f"token endpoint answers in {SLOW_TOKEN_ENDPOINT * 1000:g} ms",
                  lambda: setattr(run.provider.faults, "token_delay", SLOW_TOKEN_ENDPOINT))
        run.units(PARALLEL_UNITS, parallel=True)


@scenario("forged_callback", CODE_ONLY)
def forged_callback(run: ScenarioRun) -> None:
    """Login CSRF / code injection: a callback with an attacker's code and state, while a login is pending."""
    forged = run.forge_callback()
    run.start_login_only()
    run.deliver_callback(forged.callback_url, "forged callback")


@scenario("forged_callback_no_state", CODE_ONLY)
def forged_callback_no_state(run: ScenarioRun) -> None:
    """Login CSRF without state: after a completed login, a callback with an attacker's code and no state."""
    if run.login():
        run.units(1)
        forged = run.forge_callback(with_state=False)
        run.deliver_callback(forged.callback_url, "forged callback")
        run.units(1)


def _id_token_fault(name: str, fault: str) -> None:
    @scenario(name, CODE_ONLY)
    def run_fault(run: ScenarioRun) -> None:
        run.fault(f"ID tokens carry the fault {fault}", lambda: setattr(run.provider.faults, "id_token", fault))
        if run.login():
            run.units(1)

    run_fault.__doc__ = f"The login's ID token has the defect {fault}: the target must refuse the login."


for _name, _fault in ID_TOKEN_FAULTS.items():
    _id_token_fault(_name, _fault)


@scenario("key_rotation", CODE_ONLY)
def key_rotation(run: ScenarioRun) -> None:
    """An hour after a login, the signing key rotates; a new login's ID token uses the new kid."""
    if run.login():
        run.units(1)
        run.travel(3_600 + 60)
        run.fault("signing key rotated", lambda: run.provider.keys.rotate().kid)
        if run.login("login after rotation"):
            run.units(1)


@scenario("refresh_identity", CODE_ONLY)
def refresh_identity(run: ScenarioRun) -> None:
    """After expiry, the refresh response's ID token names another subject (OIDC Core §12.2)."""
    if run.login():
        run.units(1)
        run.fault("refresh ID tokens change sub", lambda: setattr(run.provider.faults, "refresh_id_token", "changed_sub"))
        run.travel(PAST_EXPIRY)
        run.units(2)


@scenario("withheld_scope", CODE_ONLY)
def withheld_scope(run: ScenarioRun) -> None:
    """The user withholds user:read at consent; the app meets 403 insufficient_scope and should ask again."""
    run.fault("user withholds user:read", lambda: setattr(run.provider.faults, "withheld_scopes", frozenset({"user:read"})))
    if run.login():
        run.units(3)
        if run.login("re-authorization"):
            run.units(1)


@scenario("token_endpoint_unavailable")
def token_endpoint_unavailable(run: ScenarioRun) -> None:
    """After expiry the token endpoint answers 429, then 503, each with Retry-After: 1."""
    if run.login():
        run.units(1)
        run.travel(PAST_EXPIRY)
        run.fault("token endpoint answers 429 twice", lambda: run.provider.faults.fail_token_endpoint(429, 2, 1))
        run.units(2)
        run.travel(PAST_EXPIRY)
        run.fault("token endpoint answers 503 twice", lambda: run.provider.faults.fail_token_endpoint(503, 2, 1))
        run.units(2)

