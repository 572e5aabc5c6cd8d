"""Property tests (hypothesis) over the whole provider:

1. any single changed character in an issued token is rejected (the API answers
   401 invalid_token; a relying party's pyjwt verification against the JWKS fails);
2. any malformed request gets an RFC-shaped error, never a 500: a JSON ``error`` body
   on the auth host, a redirect with ``error=`` (or the 400 page) from /authorize, a
   JSON ``message`` body from the API; and ``provider.errors`` stays empty.
"""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from rfcheck.provider.accounts import ACME_ORG, Client
from rfcheck.facts import API_HOST, AUTH_HOST
from rfcheck.provider.app import Provider
from tests.helpers import FULL_SCOPE, ISSUER, REDIRECT_URI, Agent, Login, basic_header, pkce_pair

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BASE64URL = string.ascii_letters + string.digits + "-_"


@dataclass
class World:
    provider: Provider
    agent: Agent
    code_client: Client
    cc_client: Client
    login: Login
    cc_token: str
    jwk: jwt.PyJWK


@pytest.fixture(scope="module")
def world(make_provider: Callable[[], Provider]) -> Iterator[World]:
    provider = make_provider()
    agent = Agent(provider)
    code_client = provider.register_client(AUTHORIZATION_CODE, (REDIRECT_URI,))
    cc_client = provider.register_client(CLIENT_CREDENTIALS)
    login = agent.login(code_client, scope=FULL_SCOPE + " user:read", nonce="n-0")
    assert agent.api("GET", "/invoices", login.access_token).status_code == 200
    jwk = jwt.PyJWK(agent.jwks()["keys"][0])
    yield World(provider, agent, code_client, cc_client, login, agent.cc_token(cc_client), jwk)
    agent.http.close()


@pytest.fixture(autouse=True)
def _no_internal_errors(world: World) -> Iterator[None]:
    yield
    assert world.provider.errors == []


def changed(token: str, position: int, replacement: str) -> str:
    index = position % len(token)
    assume(replacement != token[index])
    return token[:index] + replacement + token[index + 1:]


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.status_code, response.text)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert isinstance(response.json()["message"], str)


# -- 1. tampered tokens -----------------------------------------------------------------------
PRINTABLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@SETTINGS
@given(position=st.integers(min_value=0, max_value=4096), replacement=PRINTABLE)
@example(position=-1, replacement="A").via("the last signature character")
@example(position=0, replacement="f").via("the first header character")
def test_changed_access_token_is_refused_by_the_api(world: World, position: int, replacement: str) -> None:
    tampered = changed(world.login.access_token, position, replacement)
    assert_invalid_token(world.agent.api("GET", "/invoices", tampered))


@pytest.mark.parametrize("segment", [0, 1, 2])
def test_every_other_spelling_of_a_segment_end_is_refused(world: World, segment: int) -> None:
    # The last character of a base64url segment carries unused bits: a lenient decoder
    # reads other characters there as the same bytes. The API must not.
    token = world.login.access_token
    parts = token.split(".")
    position = sum(len(p) + 1 for p in parts[:segment]) + len(parts[segment]) - 1
    for replacement in (BASE64URL + "+/=").replace(token[position], ""):
        tampered = token[:position] + replacement + token[position + 1:]
        assert_invalid_token(world.agent.api("GET", "/invoices", tampered))


def verify_id_token(world: World, token: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    if header.get("kid") != world.jwk.key_id:
        raise jwt.InvalidKeyError("kid not in the JWKS")
    return dict(jwt.decode(token, world.jwk.key, algorithms=["RS256"], audience=world.code_client.client_id,
                           issuer=ISSUER))


def decoded_segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


@SETTINGS
@given(position=st.integers(min_value=0, max_value=4096),
       replacement=st.characters(blacklist_categories=("Cs",)))
@example(position=-1, replacement="A").via("the last signature character")
def test_changed_id_token_fails_verification(world: World, position: int, replacement: str) -> None:
    original = world.login.id_token
    assert verify_id_token(world, original)["nonce"] == "n-0"
    tampered = changed(original, position, replacement)
    try:
        verify_id_token(world, tampered)
    except jwt.PyJWTError:
        return
    # Only a lenient base64 decoder (pyjwt < 2.14) gets here, and then the change must be a
    # different spelling of the very bytes that were signed, never a forgery.
    assert decoded_segments(tampered) == decoded_segments(original)


# -- 2. malformed requests ----------------------------------------------------------------------
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
HEADER_NAMES = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=16).filter(
    lambda name: name.lower() not in ("host", "content-length", "transfer-encoding"))
HEADER_VALUES = st.one_of(TEXT, st.binary(max_size=20).filter(lambda b: not set(b) & set(b"\r\n\x00")))
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
CONTENT_TYPES = st.one_of(st.none(), st.sampled_from([
    "application/x-www-form-urlencoded", "application/json", "application/json; charset=utf-8",
    "text/plain", "multipart/form-data; boundary=x", "APPLICATION/JSON"]), TEXT)
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
                           max_leaves=8)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A parameter value: a valid one, random text, or absent (None)."""
    return st.one_of(valid, ANY_TEXT, st.none())


def encode_body(fields: list[tuple[str, Any]], encoding: str, raw: bytes) -> bytes:
    if encoding == "form":
        return urlencode([(k, v) for k, v in fields if v is not None]).encode()
    if encoding == "json":
        return json.dumps({k: v for k, v in fields if v is not None}).encode()
    if encoding == "deep":
        return b"[" * 5000
    return raw


@st.composite
def bodies(draw: st.DrawFn, fields: st.SearchStrategy[list[tuple[str, Any]]]) -> tuple[bytes, str | None]:
    encoding = draw(st.sampled_from(["form", "json", "raw", "deep"]))
    body = encode_body(draw(fields), encoding, draw(st.binary(max_size=60)))
    natural = {"form": "application/x-www-form-urlencoded", "json": "application/json"}.get(encoding)
    content_type = draw(st.one_of(st.just(natural), CONTENT_TYPES))
    return body, content_type


def extra_headers() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3)


def send(world: World, method: str, url: str, headers: dict[str, Any], body: bytes = b"",
         content_type: str | None = None) -> httpx.Response:
    all_headers = {k: v for k, v in headers.items() if v is not None}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    request = httpx.Request(method, url, headers=all_headers, content=body)
    response = world.provider.handle(request)
    assert response.status_code < 500 or response.status_code in (502,), (response.status_code, response.text)
    assert world.provider.errors == []
    return response


def assert_oauth_error(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body.get("error_description", ""), str)


# /authorize -------------------------------------------------------------------------------------
@st.composite
def authorize_queries(draw: st.DrawFn, world: World) -> list[tuple[str, str]]:
    verifier, challenge = pkce_pair()
    valid = {
        "response_type": st.sampled_from(["code", "token", "id_token", "code id_token", "token id_token", "none"]),
        "client_id": st.sampled_from([world.code_client.client_id, world.cc_client.client_id]),
        "redirect_uri": st.sampled_from([REDIRECT_URI, REDIRECT_URI + "/"]),
        "audience": st.just("accounts"),
        "scope": st.sampled_from(["openid", FULL_SCOPE, "openid user:read", "profile"]),
        "state": TEXT, "nonce": TEXT,
        "code_challenge": st.sampled_from([challenge, verifier]),
        "code_challenge_method": st.sampled_from(["S256", "plain"]),
        "response_mode": st.sampled_from(["query", "fragment", "form_post"]),
        "prompt": st.sampled_from(["consent", "none login"]),
    }
    pairs = [(name, value) for name, value in draw(st.fixed_dictionaries(
        {name: maybe(strategy) for name, strategy in valid.items()})).items() if value is not None]
    pairs += draw(st.lists(st.tuples(st.sampled_from(list(valid)) | ANY_TEXT, ANY_TEXT), max_size=3))
    return draw(st.permutations(pairs))


def assert_authorize_answer(response: httpx.Response) -> None:
    granted = {"code", "access_token", "id_token"}
    if response.status_code == 302:
        location = response.headers["location"]
        assert location.startswith(REDIRECT_URI + "?") or location.startswith(REDIRECT_URI + "#"), location
        parts = urlsplit(location)
        answer = dict(parse_qsl(parts.fragment or parts.query))
        assert "error" in answer or granted & set(answer), answer
        assert "refresh_token" not in answer
    elif response.status_code == 200:  # form_post
        assert response.headers["content-type"].startswith("text/html")
        assert 'name="error"' in response.text or any(f'name="{g}"' in response.text for g in granted)
    elif response.headers.get("content-type", "").startswith("text/html"):
        assert response.status_code == 400 and "location" not in response.headers
    else:
        assert_oauth_error(response)


@SETTINGS
@given(data=st.data(), method=st.one_of(st.just("GET"), METHODS), headers=extra_headers())
def test_authorize_never_fails_internally(world: World, data: st.DataObject, method: str,
                                          headers: dict[str, Any]) -> None:
    query = urlencode(data.draw(authorize_queries(world)))
    response = send(world, method, f"{AUTH_HOST}/authorize?{query}", headers)
    if method in ("GET", "POST"):  # OIDC Core §3.1.2.1; a POST without a form is shown to the user
        assert_authorize_answer(response)
    else:
        assert_oauth_error(response)


# /oauth/token and /oauth/revoke -------------------------------------------------------------------------
@st.composite
def token_fields(draw: st.DrawFn, world: World) -> list[tuple[str, Any]]:
    code_client, cc_client = world.code_client, world.cc_client
    valid = {
        "grant_type": st.sampled_from([AUTHORIZATION_CODE, "refresh_token", CLIENT_CREDENTIALS, "password"]),
        "client_id": st.sampled_from([code_client.client_id, cc_client.client_id]),
        "client_secret": st.sampled_from([code_client.client_secret, cc_client.client_secret]),
        "code": st.just("not-a-real-code"), "redirect_uri": st.just(REDIRECT_URI),
        "code_verifier": st.just(pkce_pair()[0]), "refresh_token": st.just(world.login.refresh_token),
        "audience": st.just("accounts"), "scope": st.sampled_from(["openid", "user:read", "admin"]),
        "token": st.just(world.login.refresh_token),
    }
    fields = [(k, v) for k, v in draw(st.fixed_dictionaries({k: maybe(s) for k, s in valid.items()})).items()]
    fields += draw(st.lists(st.tuples(ANY_TEXT, st.one_of(ANY_TEXT, JSON_VALUES)), max_size=3))
    return fields


def authorization_headers(world: World) -> st.SearchStrategy[dict[str, Any]]:
    code_client, cc_client = world.code_client, world.cc_client
    values = st.one_of(
        st.none(), TEXT, st.binary(max_size=20).filter(lambda b: not set(b) & set(b"\r\n\x00")),
        st.sampled_from([basic_header(code_client.client_id, code_client.client_secret),
                         basic_header(cc_client.client_id, cc_client.client_secret),
                         basic_header(cc_client.client_id, "wrong"), "Basic !!!", "Basic ", "Bearer x",
                         f"Bearer {world.login.access_token}", f"Bearer {world.cc_token}",
                         world.provider.api_key_for(world.provider.user)]),
        TEXT.map(lambda t: "Basic " + base64.b64encode(t.encode()).decode()),
    )
    return st.builds(lambda auth, extra: {**extra, "Authorization": auth}, values, extra_headers())


@SETTINGS
@given(data=st.data(), method=st.one_of(st.just("POST"), METHODS))
def test_token_endpoint_never_fails_internally(world: World, data: st.DataObject, method: str) -> None:
    body, content_type = data.draw(bodies(token_fields(world)))
    headers = data.draw(authorization_headers(world))
    response = send(world, method, f"{AUTH_HOST}/oauth/token", headers, body, content_type)
    if response.status_code == 200:
        tokens = response.json()
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 86400 and "expires_at" not in tokens
    else:
        assert_oauth_error(response)
        assert response.headers["cache-control"] == "no-store"


@SETTINGS
@given(data=st.data(), method=st.one_of(st.just("POST"), METHODS))
def test_revoke_never_fails_internally(world: World, data: st.DataObject, method: str) -> None:
    body, content_type = data.draw(bodies(token_fields(world)))
    headers = data.draw(authorization_headers(world))
    response = send(world, method, f"{AUTH_HOST}/oauth/revoke", headers, body, content_type)
    if response.status_code != 200:
        assert_oauth_error(response)


@SETTINGS
@given(data=st.data(), method=st.one_of(st.sampled_from(["GET", "POST"]), METHODS))
def test_userinfo_never_fails_internally(world: World, data: st.DataObject, method: str) -> None:
    body, content_type = data.draw(bodies(st.lists(st.tuples(ANY_TEXT, ANY_TEXT), max_size=3)))
    headers = data.draw(authorization_headers(world))
    response = send(world, method, f"{AUTH_HOST}/userinfo", headers, body, content_type)
    if response.status_code == 200:
        assert response.json()["sub"]
    else:
        assert_oauth_error(response)


# the API ------------------------------------------------------------------------------------------------
API_PATHS = ["/invoices", "/invoices/{id}", "/invoices/{id}/changes", "/clients", "/users", "/users/organizations",
             "/currency", "/{id}", "/invoices/{id}/{id}"]


@st.composite
def api_requests(draw: st.DrawFn, world: World) -> tuple[str, dict[str, Any]]:
    seeded = world.provider.data.invoices(world.provider.user.sub, "test")[0]["id"]
    identifier = draw(st.one_of(st.just(seeded), ANY_TEXT.filter(bool)))
    path = draw(st.sampled_from(API_PATHS)).replace("{id}", quote(identifier, safe=""))
    headers = draw(authorization_headers(world))
    headers["X-Network"] = draw(st.one_of(st.none(), st.sampled_from(["test", "live", "Live", "prod", ""]), TEXT))
    headers["X-Organization"] = draw(st.one_of(st.none(), st.just(ACME_ORG.id), TEXT))
    return path, headers


@st.composite
def api_fields(draw: st.DrawFn) -> list[tuple[str, Any]]:
    valid = {"invoiceItems": st.lists(st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=2), max_size=2),
             "type": st.sampled_from(["declarePayment", "addComment", "delete"]), "invoiceNumber": JSON_VALUES}
    fields = list(draw(st.fixed_dictionaries({k: maybe(s) for k, s in valid.items()})).items())
    return fields + draw(st.lists(st.tuples(ANY_TEXT, JSON_VALUES), max_size=3))


@SETTINGS
@given(data=st.data(), method=st.one_of(st.sampled_from(["GET", "POST"]), METHODS))
def test_api_never_fails_internally(world: World, data: st.DataObject, method: str) -> None:
    path, headers = data.draw(api_requests(world))
    body, content_type = data.draw(bodies(api_fields()))
    response = send(world, method, f"{API_HOST}{path}", headers, body, content_type)
    assert response.headers["x-rate-limit-limit"] == "15000"
    payload = response.json()
    if response.status_code < 300:
        assert isinstance(payload, (list, dict))
    else:
        assert 400 <= response.status_code < 500
        assert isinstance(payload["message"], str) and payload["message"], payload
