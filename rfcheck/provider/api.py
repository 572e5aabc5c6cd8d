"""The subset of api.request.finance that integrations use, with its rules enforced.

Order of checks, as the real API: authentication (RFC 6750 bearer errors, or a
legacy API key), ``X-Network``, scope, then ``X-Organization``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import httpx

from rfcheck.facts import NETWORKS
from rfcheck.provider.accounts import User
from rfcheck.provider.http import Call, ProviderError, bearer_challenge, json_response
from rfcheck.provider.tokens import AccessRecord

RATE_LIMIT = 15_000  # calls per hour for OAuth apps


@dataclass(frozen=True)
class Caller:
    """Who an API call acts for: the account whose data it reads, on which network."""

    account: str
    network: str
    user: User | None
    record: AccessRecord | None


def authenticate(call: Call) -> AccessRecord | User:
    """RFC 6750 §2.1 and §3.1: a valid access token for audience ``accounts``, or a 401.

    A bare ``Authorization`` value is a legacy API key: recorded as such and, when
    it is a key the mock knows, answered for its owner like the real API does.
    """
    header = call.request.headers.get("authorization")
    if header is None:
        call.note("no Authorization header", auth_kind="none")
        raise ProviderError(401, {"message": "Missing authorization header"},
                            {"WWW-Authenticate": bearer_challenge()}, note="no credentials")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return _api_key(call, header)
    verdict = call.provider.tokens.verify_access(token.strip(), call.provider.issuers)
    record = verdict.record
    call.note(f"bearer token {verdict.status}", auth_kind="bearer", token_status=verdict.status,
              token_jti=record.jti if record else None, token_client=record.client_id if record else None,
              token_grant=record.grant if record else None)
    if not verdict.valid or record is None:
        raise ProviderError(401, {"message": verdict.description},
                            {"WWW-Authenticate": bearer_challenge("invalid_token", verdict.description)},
                            note=verdict.description)
    return record


def authenticate_bearer(call: Call) -> AccessRecord:
    """:func:`authenticate`, refusing API keys (OAuth-only endpoints)."""
    found = authenticate(call)
    if isinstance(found, User):
        raise ProviderError(403, {"message": "This endpoint requires an OAuth access token"},
                            note="API key refused: OAuth only")
    return found


def _api_key(call: Call, header: str) -> User:
    user = call.provider.api_keys.get(header.strip())
    call.note("API key used instead of OAuth", auth_kind="api_key", api_key_known=user is not None)
    if user is None:
        raise ProviderError(401, {"message": "Invalid API key"}, note="unknown API key")
    return user


def _network(call: Call) -> str:
    value = call.request.headers.get("x-network")
    call.note(f"X-Network={value!r}", network=value)
    if value is None:
        raise ProviderError(400, {"message": "The X-Network header is required: test or live"},
                            note="X-Network missing")
    if value not in NETWORKS:
        raise ProviderError(400, {"message": f"X-Network must be exactly test or live, got {value!r}"},
                            note=f"X-Network {value!r} is not test or live")
    return value


def _caller(call: Call, scope: str | None = None, oauth_only: bool = False) -> Caller:
    found = authenticate_bearer(call) if oauth_only else authenticate(call)
    record = found if isinstance(found, AccessRecord) else None
    user = found if isinstance(found, User) else (
        call.provider.user_by_sub(found.sub) if found.grant != "client_credentials" else None)
    network = _network(call)
    if scope and record is not None and scope not in record.scope:
        raise ProviderError(403, {"message": f"Insufficient scope, {scope} is required"},
                            {"WWW-Authenticate": bearer_challenge("insufficient_scope",
                                                                  f"{scope} is required", scope)},
                            note=f"insufficient_scope: {scope} not granted", insufficient_scope=scope)
    account = record.sub if record is not None else (user.sub if user else "")
    return Caller(_organization(call, user, account), network, user, record)


def _organization(call: Call, user: User | None, account: str) -> str:
    org_id = call.request.headers.get("x-organization")
    if org_id is None:
        return account
    call.note(f"X-Organization={org_id}", organization=org_id)
    if user is None or not user.belongs_to(org_id):
        raise ProviderError(403, {"message": f"You are not a member of organization {org_id}"},
                            note="X-Organization of an organization the user does not belong to",
                            org_denied=org_id)
    return org_id


def _body(call: Call) -> dict[str, Any]:
    try:
        body = json.loads(call.request.content or b"{}")
    except (ValueError, RecursionError):
        raise ProviderError(400, {"message": "The request body must be JSON"}, note="body is not JSON")
    if not isinstance(body, dict):
        raise ProviderError(400, {"message": "The request body must be a JSON object"}, note="body is not an object")
    return body


def _not_found(what: str) -> ProviderError:
    return ProviderError(404, {"message": f"{what} not found"}, note=f"{what} not found")


# -- endpoints -----------------------------------------------------------------
def list_invoices(call: Call) -> httpx.Response:
    caller = _caller(call)
    return json_response(200, call.provider.data.invoices(caller.account, caller.network))


def create_invoice(call: Call) -> httpx.Response:
    caller = _caller(call)
    body = _body(call)
    if not isinstance(body.get("invoiceItems"), list) or not body["invoiceItems"]:
        raise ProviderError(400, {"message": "invoiceItems is required"}, note="invoice without invoiceItems")
    call.note("invoice created", invoice_created=True)
    return json_response(201, call.provider.data.add_invoice(caller.account, caller.network, body))


def get_invoice(call: Call, invoice_id: str) -> httpx.Response:
    caller = _caller(call)
    invoice = call.provider.data.find_invoice(caller.account, caller.network, invoice_id)
    if invoice is None:
        raise _not_found("Invoice")
    return json_response(200, invoice)


def convert_invoice(call: Call, invoice_id: str) -> httpx.Response:
    """``POST /invoices/{id}``: turn an off-chain invoice into an on-chain request."""
    caller = _caller(call)
    request_id = "01" + invoice_id.rjust(62, "0")
    invoice = call.provider.data.update_invoice(caller.account, caller.network, invoice_id, requestId=request_id)
    if invoice is None:
        raise _not_found("Invoice")
    return json_response(201, invoice)


def change_invoice(call: Call, invoice_id: str) -> httpx.Response:
    caller = _caller(call)
    body = _body(call)
    if body.get("type") not in ("declarePayment", "acceptInvoice", "cancelInvoice", "addComment"):
        raise ProviderError(400, {"message": "type must be declarePayment, acceptInvoice, cancelInvoice or addComment"},
                            note="unknown change type")
    if call.provider.data.find_invoice(caller.account, caller.network, invoice_id) is None:
        raise _not_found("Invoice")
    return json_response(201, {"invoiceId": invoice_id, **body})


def list_clients(call: Call) -> httpx.Response:
    caller = _caller(call)
    return json_response(200, call.provider.data.clients(caller.account, caller.network))


def create_client(call: Call) -> httpx.Response:
    caller = _caller(call)
    return json_response(201, call.provider.data.add_client(caller.account, caller.network, _body(call)))


def get_user(call: Call) -> httpx.Response:
    caller = _caller(call)
    user = caller.user
    if user is None:
        return json_response(200, {"id": caller.account, "organization": None})
    org = user.organizations[0] if user.organizations else None
    return json_response(200, {"id": user.sub, "email": user.email, "name": user.name,
                               "organization": {"id": org.id, "name": org.name} if org else None})


def list_organizations(call: Call) -> httpx.Response:
    """OAuth with ``user:read`` only; a plain JSON array of the user's organizations."""
    caller = _caller(call, scope="user:read", oauth_only=True)
    orgs = caller.user.organizations if caller.user else ()
    call.note(f"{len(orgs)} organization(s) listed", organizations_listed=True)
    return json_response(200, [{"id": o.id, "name": o.name} for o in orgs])


def currencies(call: Call) -> httpx.Response:
    _caller(call)
    from rfcheck.provider.data import CURRENCIES

    return json_response(200, CURRENCIES)


Handler = Callable[..., httpx.Response]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(r"/invoices/?"), list_invoices),
    ("POST", re.compile(r"/invoices/?"), create_invoice),
    ("GET", re.compile(r"/invoices/([^/]+)"), get_invoice),
    ("POST", re.compile(r"/invoices/([^/]+)/changes"), change_invoice),
    ("POST", re.compile(r"/invoices/([^/]+)"), convert_invoice),
    ("GET", re.compile(r"/clients/?"), list_clients),
    ("POST", re.compile(r"/clients/?"), create_client),
    ("GET", re.compile(r"/users/organizations/?"), list_organizations),
    ("GET", re.compile(r"/users/?"), get_user),
    ("GET", re.compile(r"/currency/?"), currencies),
]


def rate_limit_headers(call: Call) -> dict[str, str]:
    """``X-Rate-Limit-*`` on every API answer: a fixed hourly window per caller."""
    now = call.provider.clock.now()
    window_end = math.floor(now / 3600) * 3600 + 3600
    used = call.provider.count_api_call(call.request.headers.get("authorization", ""), window_end)
    return {"X-Rate-Limit-Limit": str(RATE_LIMIT), "X-Rate-Limit-Remaining": str(max(RATE_LIMIT - used, 0)),
            "X-Rate-Limit-Reset": str(window_end)}
