"""HTTP plumbing shared by the endpoints: errors, JSON answers, parameters, client auth."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import httpx

from rfcheck.journal import Exchange, Facts
from rfcheck.provider.state import Site, State

if TYPE_CHECKING:
    from typing import Unpack

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class Call:
    """A request being served: what came in, where, and the journal entry that records it."""

    provider: State
    request: httpx.Request
    site: Site
    exchange: Exchange

    @property
    def query(self) -> dict[str, str]:
        return self.exchange.query

    @property
    def form(self) -> dict[str, str]:
        return self.exchange.form

    def note(self, text: str, **facts: Unpack[Facts]) -> None:
        self.exchange.note(text, **facts)


class ProviderError(Exception):
    """An answer other than success; raised anywhere, turned into a response in one place."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None,
                 note: str = "", **facts: Unpack[Facts]) -> None:
        super().__init__(note or str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.note = note
        self.facts: Facts = facts

    def response(self) -> httpx.Response:
        if isinstance(self.body, str):
            return httpx.Response(self.status, text=self.body, headers=self.headers)
        return json_response(self.status, self.body, self.headers)


def oauth_error(status: int, error_code: str, description: str, note: str = "",
                headers: dict[str, str] | None = None, **facts: Unpack[Facts]) -> ProviderError:
    """An RFC 6749 §5.2 error body (Auth0 shape) with error ``error_code``, never cached."""
    facts["error"] = error_code
    return ProviderError(status, {"error": error_code, "error_description": description},
                         {**NO_STORE, **(headers or {})}, note or f"{error_code}: {description}", **facts)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def parse_pairs(request: httpx.Request) -> list[tuple[str, str]]:
    """The parameters of a request body, form-encoded or JSON (Auth0 accepts both)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = request.content
    if not body:
        return []
    if content_type == "application/json":
        return _json_pairs(body)
    if content_type == "application/x-www-form-urlencoded":
        try:
            return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise oauth_error(400, "invalid_request", "The request body is not valid UTF-8")
    return []


def _json_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise oauth_error(400, "invalid_request", "The request body is not valid JSON")
    if not isinstance(data, dict):
        raise oauth_error(400, "invalid_request", "The JSON body must be an object")
    return [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()]


def single_valued(pairs: list[tuple[str, str]], where: str) -> dict[str, str]:
    """RFC 6749 §3.1/§3.2: parameters must not be included more than once."""
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name in seen:
            raise oauth_error(400, "invalid_request", f"Parameter {name} is repeated in the {where}")
        seen[name] = value
    return seen


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``client_secret_basic`` credentials, URL-decoded as RFC 6749 §2.3.1 requires."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or non-ASCII characters in the header
        raise oauth_error(401, "invalid_client", "The Basic credentials are not valid base64",
                          headers={"WWW-Authenticate": 'Basic realm="auth.request.finance"'})
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise oauth_error(401, "invalid_client", "The Basic credentials have no ':' separator",
                          headers={"WWW-Authenticate": 'Basic realm="auth.request.finance"'})
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def bearer_challenge(error: str | None = None, description: str | None = None,
                     scope: str | None = None) -> str:
    """An RFC 6750 §3 ``WWW-Authenticate`` value, quoted exactly as the RFC's grammar says."""
    params = ['realm="api.request.finance"']
    for name, value in (("error", error), ("error_description", description), ("scope", scope)):
        if value:
            params.append(f'{name}="{value}"')
    return "Bearer " + ", ".join(params)
