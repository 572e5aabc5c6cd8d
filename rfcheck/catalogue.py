"""The Going Live requirement catalogue as data, in catalogue order.

Request Finance's Going Live requirements: every ID exactly once, with its level, how rfcheck
observes it, and rfcheck's own remediation citing the source. IDs are public
interface (the JSON report lists them); new ones go at the end of their group.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

__all__ = ["CATALOGUE", "GROUPS", "GROUP_TITLES", "Requirement", "requirement"]

CODE = "authorization_code"
CC = "client_credentials"
BOTH = frozenset({CODE, CC})


@dataclass(frozen=True)
class Requirement:
    """One catalogue row: a stable ID, its level and what to do when it is not met.

    ``level`` is ``must``, ``should`` or ``manual``; for OIDC-01..08 it is the level for
    ID tokens from the token endpoint, and ``front_channel_level`` the one for ID tokens
    from the implicit or hybrid flow. ``harm_level`` is the level of a shortfall that cost
    users their session (TOKEN-06: a refresh storm that made the provider revoke the family).
    ``applies_to`` names the flows it judges.
    """

    id: str
    group: str
    level: str
    title: str
    observed: str
    remediation: str
    source: str
    front_channel_level: str | None = None
    applies_to: frozenset[str] = BOTH
    harm_level: str | None = None


def _req(rid: str, level: str, title: str, observed: str, remediation: str, source: str,
         flows: frozenset[str] = BOTH, front: str | None = None) -> Requirement:
    return Requirement(rid, rid.split("-")[0], level, title, observed, remediation, source, front, flows)


def _code(rid: str, level: str, title: str, observed: str, remediation: str, source: str) -> Requirement:
    return _req(rid, level, title, observed, remediation, source, frozenset({CODE}))


def _cc(rid: str, level: str, title: str, observed: str, remediation: str, source: str) -> Requirement:
    return _req(rid, level, title, observed, remediation, source, frozenset({CC}))


def _oidc(rid: str, title: str, observed: str, remediation: str, source: str) -> Requirement:
    # OpenID conformance: front-channel ID tokens must be validated; token-endpoint ones should.
    return _req(rid, "should", title, observed, remediation, source, frozenset({CODE}), "must")


def _manual(rid: str, title: str, confirm: str, source: str, flows: frozenset[str] = BOTH) -> Requirement:
    observed = f"cannot be observed; record a confirmation as {rid} under [target.confirm]"
    return _req(rid, "manual", title, observed, confirm, source, flows)


_REJECT = ("a fault scenario hands over this ID token at login; the login must not complete and its tokens "
           "stay unused")

CATALOGUE: tuple[Requirement, ...] = (
    _req("AUTH-01", "must", "Every API call uses OAuth: Authorization: Bearer <token>",
         "any API call with a non-Bearer Authorization fails",
         "Replace API keys with OAuth access tokens and send 'Authorization: Bearer <access token>' on every "
         "call (Going Live; RFC 6750 §2.1).", "Going Live"),
    _req("AUTH-02", "must", "API calls use only access tokens issued to this client for audience accounts",
         "tokens that are unknown, for another client, or for another audience fail",
         "Request tokens with audience=accounts using this app's own client ID, and call the API only with "
         "the access_token from that response, never an ID token or another app's token (Going Live).",
         "Going Live"),
    _req("AUTH-03", "must", "One OAuth flow type per app",
         "token requests of both kinds from one client fail",
         "Register a separate app for each flow: one client uses authorization_code/refresh_token or "
         "client_credentials, never both (Going Live).", "Going Live"),
    _req("AUTH-04", "must", "Accepts valid RS256 ID tokens verified against the JWKS",
         "the baseline login with a correct RS256 ID token must complete: the code is exchanged and the app's "
         "answer to its callback is not an error (judged at the callback itself)",
         "Verify ID tokens with RS256 and the keys from /.well-known/jwks.json; do not configure HS256 with "
         "the client secret (OIDC Core §3.1.3.7, Going Live).", "OIDC Core §3.1.3.7"),
    _code("FLOW-01", "must", "Authorization request is well formed",
          "the mock rejects malformed requests like the real service; the check reports why",
          "Send response_type=code, client_id, the exact registered redirect_uri, audience=accounts and a "
          "scope containing openid to /authorize (RFC 6749 §4.1.1, Going Live).", "RFC 6749 §4.1.1"),
    _code("FLOW-02", "must", "Refuses forged callbacks (login CSRF, code injection)",
          "rfcheck delivers two forged callbacks with an attacker's code issued without PKCE (a foreign state "
          "while a login is pending; no state after a completed login); a successful exchange of the injected "
          "code, or API use with its tokens, fails",
          "Bind each login to the user's session with a one-time state value and reject callbacks whose state "
          "you did not issue; use PKCE so an injected code cannot be redeemed (RFC 9700 §4.5, §4.7).",
          "RFC 9700 §4.5, §4.7"),
    _code("FLOW-03", "should", "Uses PKCE", "no code_challenge warns",
          "Send code_challenge (S256) on /authorize and the matching code_verifier on the code exchange "
          "(RFC 9700 §2.1.1, RFC 7636).", "RFC 9700 §2.1.1"),
    _code("FLOW-04", "must", "Exchanges each code once, authenticated, with the same redirect_uri",
          "reuse of a redeemed code, missing client authentication or a redirect mismatch fails",
          "Redeem each code exactly once at /oauth/token with client_secret_post or client_secret_basic and "
          "the redirect_uri used on /authorize; never retry a code that was redeemed (RFC 6749 §4.1.3).",
          "RFC 6749 §4.1.3"),
    _code("FLOW-05", "must", "No client secret or token in the front channel or in any URL",
          "found in any URL fails (what the app sends back to the browser is SEC-05)",
          "Keep the client secret server-side, send it only in the token request body or Basic header, and "
          "send access tokens only in the Authorization header, never in a URL (RFC 9700 §4.3.2, "
          "RFC 6750 §2.3).", "RFC 9700 §4.3.2"),
    _code("FLOW-06", "must", "Implicit/hybrid flow: nonce sent, right response_type, no refresh token expected",
          "the mock applies the OIDC-conformant rules; a login that breaks on them fails; use of implicit "
          "warns",
          "Prefer the authorization code flow with PKCE; if you keep implicit or hybrid, send a nonce, ask for "
          "id_token or 'token id_token' when you need an ID token, and do not wait for a refresh token "
          "(OIDC Core §3.2.2.1, RFC 9700 §2.1.2).", "OIDC Core §3.2.2.1"),
    _code("FLOW-07", "must", "PKCE method is S256",
          "plain fails, with the refused authorization request as evidence",
          "Send code_challenge_method=S256 with code_challenge = BASE64URL(SHA-256(code_verifier)); the real "
          "service refuses plain (RFC 9700 §2.1.1, RFC 7636 §4.2).", "RFC 9700 §2.1.1"),
    _cc("CC-01", "must", "Client credentials token request is well formed",
        "malformed requests fail",
        "POST grant_type=client_credentials, audience=accounts and the client ID and secret (body or Basic) "
        "to /oauth/token (RFC 6749 §4.4.2, Going Live).", "RFC 6749 §4.4.2"),
    _cc("CC-02", "should", "Does not ask for offline_access",
        "asked: warn",
        "Drop offline_access from the client credentials request: the flow never returns a refresh token "
        "(RFC 6749 §4.4.3).", "RFC 6749 §4.4.3"),
    _cc("CC-03", "must", "Gets a new token with its secret after expiry and carries on",
        "after time travel past 24 h, work that fails or uses the expired token repeatedly fails",
        "Track expires_in (86400 s) and request a new token with the client secret before expiry or once "
        "after a 401 invalid_token, then retry the call (RFC 6749 §4.4, RFC 6750 §3.1).", "RFC 6749 §4.4"),
    _code("SCOPE-01", "must", "Asks for offline_access to get a refresh token",
          "no offline_access and no working session after expiry fails",
          "Add offline_access to the authorization request scope so the token response carries a refresh "
          "token, or send the user through login again every 24 h (Going Live, OIDC Core §11).",
          "Going Live"),
    _req("SCOPE-02", "should", "Asks for openid profile email",
         "missing ones warn",
         "Request scope 'openid profile email' (plus offline_access) as the Going Live page documents "
         "(Going Live).", "Going Live"),
    _req("SCOPE-03", "must", "Asks for user:read before listing organizations",
         "a 403 insufficient_scope on GET /users/organizations fails",
         "Add user:read to the requested scopes before calling GET /users/organizations (Organizations).",
         "Organizations"),
    _req("SCOPE-04", "should", "Least privilege: no unused scopes",
         "user:read without listing organizations warns",
         "Request user:read only if the integration lists organizations (RFC 9700 §2.3).", "RFC 9700 §2.3"),
    _code("SCOPE-05", "must", "Re-authorizes with prompt=consent on 403 insufficient_scope",
          "repeated identical retries fail; a new authorization request with prompt=consent passes",
          "On 403 with WWW-Authenticate error=\"insufficient_scope\", stop retrying and send the user to "
          "/authorize with the missing scope and prompt=consent (RFC 6750 §3.1, OIDC Core §3.1.2.1).",
          "RFC 6750 §3.1"),
    _req("TOKEN-01", "must", "Reuses the access token until it expires",
         "more than one token request per expiry window per user/client fails",
         "Store the access token with its expiry (expires_in 86400 s) and reuse it for every call until it "
         "expires; do not fetch or refresh a token per call (Going Live).", "Going Live"),
    _code("TOKEN-02", "must", "Refreshes the access token after expiry and carries on",
          "after time travel past 24 h, work must continue with a refreshed token; repeated use of the "
          "expired token fails",
          "Refresh with grant_type=refresh_token before expires_in runs out, or once after a 401 "
          "invalid_token, then retry with the new access token (RFC 6749 §6).", "RFC 6749 §6"),
    _code("TOKEN-03", "must", "Uses the newest refresh token (rotation)",
          "the mock rotates refresh tokens and revokes the family on reuse; a rotated token presented again in "
          "any scenario fails",
          "Persist the refresh_token from every refresh response, replacing the old one at once; reusing a "
          "rotated token revokes the whole family (RFC 6749 §6, RFC 9700 §4.14.2).", "RFC 6749 §6"),
    _code("TOKEN-04", "must", "Stops and asks for a new login when refresh fails with invalid_grant",
          "more than 2 refresh attempts with the dead token fails, in any scenario; so does a process that "
          "died on it or a user who cannot connect again",
          "Treat invalid_grant from the token endpoint as final: discard the stored tokens and ask the user "
          "to connect again, without retrying (RFC 6749 §5.2).", "RFC 6749 §5.2"),
    _code("TOKEN-05", "must", "Handles 401 invalid_token before expiry without looping",
          "more than 2 calls with the revoked token fails; so does a process that died on the 401",
          "On 401 invalid_token, refresh once and retry once; if that fails too, stop and surface the error "
          "(RFC 6750 §3.1).", "RFC 6750 §3.1"),
    replace(_code("TOKEN-06", "should", "Concurrent calls after expiry share one refresh",
                  "N parallel units of work after expiry with a slow token endpoint; more than one refresh warns; "
                  "a storm that made the provider revoke the family and cost users their session fails (must)",
                  "Guard the refresh with a lock (per user, shared by every instance) so concurrent callers wait "
                  "for one refresh and share its result; with rotation, parallel refreshes revoke each other and "
                  "log the users out (RFC 9700 §4.14.2).", "RFC 9700 §4.14.2"), harm_level="must"),
    _req("TOKEN-07", "should", "Backs off on token endpoint 429/5xx and honours Retry-After",
         "more than 3 immediate retries warns; so does throwing the session away on a transient error, or a "
         "process that died on it",
         "Retry token requests a bounded number of times with exponential backoff and wait at least "
         "Retry-After on 429 (RFC 6585 §4, RFC 9110 §10.2.3).", "RFC 9110 §10.2.3"),
    _req("TOKEN-08", "must", "Refresh tokens go only to the token endpoint",
         "a refresh token seen on the API or in a URL fails",
         "Send the refresh token only in the body of POST /oauth/token; never as a bearer token or in a "
         "URL (RFC 6749 §10.4, RFC 9700 §4.14).", "RFC 6749 §10.4"),
    _req("NET-01", "must", "Every API call carries X-Network",
         "any call without it fails",
         "Send X-Network: test or live on every API call, retries included (Going Live, step 6).",
         "Going Live"),
    _req("NET-02", "must", "X-Network is exactly test or live",
         "anything else (Live, prod, empty) fails",
         "Send the lowercase value test or live, nothing else (Going Live, step 6).", "Going Live"),
    _req("NET-03", "must", "X-Network matches the deployment's network on every call",
         "a test deployment sending live (or the reverse), or a mix, fails",
         "Take X-Network from one deployment setting (test for TEST/DEV, live for PRODUCTION) and use it on "
         "every call (Going Live, step 6).", "Going Live"),
    _req("ORG-01", "must", "X-Organization carries only the user's organization IDs",
         "the mock answers 403 for others; any such call fails",
         "Send X-Organization only with an ID returned by GET /users/organizations for this user "
         "(Organizations).", "Organizations"),
    _req("ORG-02", "should", "Lists the user's organizations and can act in one",
         "never listing organizations for a user invited to one warns",
         "Call GET /users/organizations after login and let the user choose between personal and "
         "organization data, sending X-Organization for the latter (Organizations).", "Organizations"),
    _req("ORG-03", "must", "Lists organizations only with OAuth",
         "listing with an API key fails",
         "Call GET /users/organizations with a Bearer access token carrying user:read; API keys cannot list "
         "organizations (Organizations).", "Organizations"),
    _oidc("OIDC-01", "Rejects an ID token with an invalid RS256 signature", _REJECT,
          "Verify the ID token signature with the JWKS key named by kid and refuse the login when it does not "
          "verify (OIDC Core §3.1.3.7 step 6).", "OIDC Core §3.1.3.7"),
    _oidc("OIDC-02", "Rejects an ID token with alg none", _REJECT,
          "Pin the accepted algorithms to RS256 in the JWT library call so 'none' is refused "
          "(OIDC Core §3.1.3.7 step 7, RFC 8725 §3.1).", "OIDC Core §3.1.3.7"),
    _oidc("OIDC-03", "Rejects HS256 signed with the RSA public key (algorithm confusion)", _REJECT,
          "Pin the accepted algorithms to RS256 and pass an RSA key object, never the key's PEM as an HMAC "
          "secret (RFC 8725 §3.1, OIDC Core §3.1.3.7).", "RFC 8725 §3.1"),
    _oidc("OIDC-04", "Rejects a wrong iss", _REJECT,
          "Compare iss exactly with the discovery issuer https://auth.request.finance/ (trailing slash "
          "included) (OIDC Core §3.1.3.7 step 2).", "OIDC Core §3.1.3.7"),
    _oidc("OIDC-05", "Rejects a wrong aud", _REJECT,
          "Require your client ID in aud and refuse tokens meant for other clients "
          "(OIDC Core §3.1.3.7 step 3).", "OIDC Core §3.1.3.7"),
    _oidc("OIDC-06", "Rejects an expired ID token", _REJECT,
          "Check exp against the current time with at most a small leeway (about 30 s) "
          "(OIDC Core §3.1.3.7 step 9).", "OIDC Core §3.1.3.7"),
    _oidc("OIDC-07", "Rejects a nonce different from the one sent", _REJECT,
          "Store the nonce with the login session and require the ID token's nonce to equal it "
          "(OIDC Core §3.1.3.7 step 11).", "OIDC Core §3.1.3.7"),
    _oidc("OIDC-08", "Rejects an ID token without sub or iat", _REJECT,
          "Require the sub and iat claims and refuse ID tokens without them (OIDC Core §2).", "OIDC Core §2"),
    _code("OIDC-09", "must", "Accepts a token signed by a new key after rotation",
          "after the clock moves an hour and the keys rotate, the login with an unknown kid must complete; "
          "skip where the target's clock cannot be moved",
          "On an unknown kid, fetch /.well-known/jwks.json again (rate-limited, not per token) and retry "
          "verification; do not pin a single key (OIDC Core §10.1.1).", "OIDC Core §10.1.1"),
    _code("OIDC-10", "should", "Rejects a refreshed ID token whose iss/sub differ from the original",
          "a refresh response carries an ID token for another iss or sub; using it warns",
          "When a refresh response carries an ID token, require the same iss and sub as the original and "
          "refuse it otherwise (OIDC Core §12.2).", "OIDC Core §12.2"),
    _req("SEC-01", "must", "No plaintext client secret in the project's files",
         "scan of the project folder (git-tracked files, .env*, config); placeholders and empty values pass; "
         "files git ignores are not judged",
         "Remove the secret from the files (and from git history), rotate it, and load it at runtime from the "
         "environment or a secret manager (Going Live).", "Going Live"),
    _req("SEC-02", "must", "Separate OAuth apps for TEST/DEV and PRODUCTION",
         "compares client_id_test and client_id_live from the target config; manual when only one is given",
         "Create the production app from a separate Request Finance account so TEST/DEV and PRODUCTION have "
         "different client IDs (Going Live).", "Going Live"),
    _req("SEC-03", "must", "Never logs the client secret or tokens",
         "rfcheck searches the target's captured output of every scenario for every secret and token it issued",
         "Stop logging request bodies, token responses and Authorization headers, and keep HTTP client "
         "debug logging off in production; log a fingerprint if you need one (Going Live, RFC 6819 §5.1.6).",
         "Going Live"),
    _req("SEC-04", "must", "Sends credentials and tokens only to Request Finance hosts",
         "any request carrying them elsewhere (seen through interception) fails",
         "Send the client secret only to auth.request.finance and access tokens only to api.request.finance; "
         "do not attach the Authorization header in a shared HTTP client used for other hosts "
         "(RFC 6750 §5.3).", "RFC 6750 §5.3"),
    _req("SEC-05", "must", "Tokens and the client secret never reach the user's browser",
         "web targets: every page, header, redirect and cookie the app sends its browser (signed session "
         "cookies decoded) is searched for every access token, refresh token and client secret rfcheck issued",
         "Keep tokens on the server (the backend-for-frontend pattern): store them in a server-side session "
         "keyed by an opaque cookie, never in a page, a redirect or a readable cookie such as Flask's default "
         "session (OAuth 2.0 for Browser-Based Applications §6.1, an IETF draft).",
         "OAuth 2.0 for Browser-Based Applications §6.1"),
    _req("REL-01", "must", "No answer from Request Finance takes the integration down",
         "after each step that meets an error answer, and at the end of each scenario, the process must be "
         "alive and answer its ready URL",
         "Handle every error Request Finance can send (401, 403, invalid_grant, 429/5xx, a defective ID token, "
         "a forged callback) where the call is made: catch rejected promises and exceptions in each route or "
         "with the framework's error handler, so that one bad answer never ends the process (Going Live).",
         "Going Live"),
    _req("REL-02", "should", "Request Finance errors become handled answers, never a 500",
         "a 500 to the browser right after the mock sent an error answer warns",
         "Turn Request Finance errors into a page, an error status chosen by the app (4xx, 502, 503) or a "
         "redirect to log in again; keep 500 for the app's own bugs (RFC 9110 §15.6).", "RFC 9110 §15.6"),
    _manual("MAN-01", "Dedicated integration account with a strong, archived password",
            "Confirm a dedicated Request Finance account exists for the integration, sends and receives no "
            "invoices, and its strong password is archived safely (Going Live).", "Going Live", frozenset({CODE})),
    _manual("MAN-02", "Apps section access requested from support",
            "Confirm access to the Apps section was requested from Request Finance support with the "
            "integration account's email (Going Live).", "Going Live"),
    _manual("MAN-03", "Client credentials flow activated by Request Finance",
            "Confirm Request Finance activated the client credentials flow for this app before use "
            "(Going Live).", "Going Live", frozenset({CC})),
    _manual("MAN-04", "Client ID shared for transactional emails",
            "If users create invoices through the integration (POST /invoices), confirm the Client ID was "
            "shared with Request Finance to enable transactional emails (Going Live).", "Going Live"),
    _manual("MAN-05", "Client secrets in a secret manager with restricted access",
            "Confirm client secrets live in a secret manager, access is restricted to authorized personnel, "
            "and DEV/TEST secrets are protected like production when hosted under one account (Going Live).",
            "Going Live"),
    _manual("MAN-06", "Organization vs personal data handling decided",
            "Confirm the Organizations page was read and the integration's handling of organization versus "
            "personal data was decided (Organizations).", "Organizations"),
)

GROUPS: tuple[str, ...] = ("AUTH", "FLOW", "CC", "SCOPE", "TOKEN", "NET", "ORG", "OIDC", "SEC", "REL", "MAN")

GROUP_TITLES: dict[str, str] = {
    "AUTH": "How the integration authenticates",
    "FLOW": "The authorization request and code exchange",
    "CC": "Client credentials flow",
    "SCOPE": "Scopes",
    "TOKEN": "Reuse, expiry and refresh",
    "NET": "The X-Network header",
    "ORG": "Organizations",
    "OIDC": "ID token validation",
    "SEC": "Secrets and environments",
    "REL": "Resilience to Request Finance's errors",
    "MAN": "Things a person must confirm",
}

_BY_ID = {req.id: req for req in CATALOGUE}


def requirement(rid: str) -> Requirement:
    """The catalogue entry for ``rid``; a KeyError names close IDs when there is none."""
    try:
        return _BY_ID[rid]
    except KeyError:
        close = difflib.get_close_matches(rid.upper(), _BY_ID, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no requirement {rid!r} in the catalogue{hint}") from None
