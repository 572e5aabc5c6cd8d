"""The mock Request Finance: one handler for both hosts, recording every exchange.

Both transports (respx in-process, the loopback server) hand it an
``httpx.Request`` and send back the ``httpx.Response`` it returns.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable
from urllib.parse import parse_qsl

import httpx

from rfcheck.journal import KEPT_CHARS, Exchange, keep, kept
from rfcheck.provider import api, oauth
from rfcheck.provider.http import Call, ProviderError, json_response, oauth_error, parse_pairs
from rfcheck.provider.state import Site
from rfcheck.provider.state import State

_AUTH_ROUTES: dict[tuple[str, str], Callable[[Call], httpx.Response]] = {
    ("GET", "/.well-known/openid-configuration"): oauth.discovery,
    ("GET", "/.well-known/jwks.json"): oauth.jwks,
    ("GET", "/authorize"): oauth.authorize,
    ("POST", "/authorize"): oauth.authorize,
    ("POST", "/oauth/token"): oauth.token,
    ("GET", "/userinfo"): oauth.userinfo,
    ("POST", "/userinfo"): oauth.userinfo,
    ("POST", "/oauth/revoke"): oauth.revoke,
}


class Provider(State):
    """The mock service: its state and the handler that serves both hosts and records every exchange."""

    # -- the handler -----------------------------------------------------------
    def handle(self, request: httpx.Request, *, origin: str = "target", site: Site | None = None) -> httpx.Response:
        """Serve one request and record it; never raises (internal errors become a 500 and are kept)."""
        site = site or self.site_for(request.url)
        exchange = self._open(request, origin, site)
        return self._answered(exchange, self._respond(request, site, exchange))

    def _answered(self, exchange: Exchange, response: httpx.Response) -> httpx.Response:
        """``response``, recorded as ``exchange``'s answer."""
        self.journal.answer(exchange, response.status_code, response.headers.items(), json=_json_or_none(response))
        return response

    def _respond(self, request: httpx.Request, site: Site | None, exchange: Exchange) -> httpx.Response:
        if site is None:
            exchange.note("request to a host that is not Request Finance: not forwarded", foreign=True)
            return json_response(502, {"message": f"rfcheck does not forward requests to {request.url.host}"})
        call = Call(self, request, site, exchange)
        try:
            return self._route(call)
        except ProviderError as err:
            if err.note:
                exchange.note(err.note, **err.facts)
            response = err.response()
            if site.kind == "api":
                response.headers.update(api.rate_limit_headers(call))
            return response
        except Exception as err:  # kept for the test thread; the client still gets an answer
            self.errors.append(err)
            exchange.note(f"rfcheck internal error: {type(err).__name__}: {err}", internal_error=True)
            return json_response(500, {"error": "server_error", "error_description": "rfcheck internal error"})

    def _route(self, call: Call) -> httpx.Response:
        method, path = call.request.method.upper(), call.request.url.path
        if call.site.kind == "auth":
            handler = _AUTH_ROUTES.get((method, path.rstrip("/") or "/"))
            if handler is None:
                raise _no_route(path, any(p == path for _, p in _AUTH_ROUTES), oauth=True)
            return handler(call)
        return self._route_api(call, method, path)

    def _route_api(self, call: Call, method: str, path: str) -> httpx.Response:
        path_known = False
        for route_method, pattern, handler in api.ROUTES:
            match = pattern.fullmatch(path)
            if match:
                path_known = True
                if route_method == method:
                    response = handler(call, *match.groups())
                    response.headers.update(api.rate_limit_headers(call))
                    return response
        raise _no_route(path, path_known)

    def refuse_malformed(self, method: str, target: str, reason: str, site: Site | None,
                         status: int = 400) -> httpx.Response:
        """A request the server would not or could not read whole (RFC 9112 §3, RFC 9110 §15.5): recorded
        as far as it came, answered ``status`` (400, 408, 413, 414, 431, 501, 505) in the shape of the
        host's errors."""
        exchange = self.journal.open(
            at=self.clock.now(), origin="target", host=site.kind if site else "other",
            method=method[:16].upper(), url=keep(target), path=keep(target.split("?", 1)[0]), query={}, headers={},
            form={})
        exchange.note(f"request refused: {reason}", malformed=True, refused_status=status)
        body = ({"error": "invalid_request", "error_description": reason} if site is None or site.kind != "api"
                else {"message": reason})
        return self._answered(exchange, json_response(status, body))

    def refuse_connect(self, url: str, status: int, reason: str) -> httpx.Response:
        """A CONNECT the proxy refused (403: a host that is not Request Finance; 400: an authority that
        names no host and port): recorded as an attempt to reach that host, SEC-04's evidence."""
        try:
            request = httpx.Request("CONNECT", url)
        except (httpx.InvalidURL, ValueError):  # a host httpx cannot hold: still a record
            request = httpx.Request("CONNECT", "https://invalid/")
        exchange = self._open(request, "target", None)
        exchange.note(f"CONNECT refused: {reason}; nothing is forwarded", foreign=True)
        return self._answered(exchange, json_response(status, {"message": f"rfcheck refused the tunnel: {reason}"}))

    def notice(self, text: str) -> None:
        """Something the report's notes should say about this mock's transport (each once)."""
        with self._lock:
            if text not in self.notices:
                self.notices.append(text)

    def _open(self, request: httpx.Request, origin: str, site: Site | None) -> Exchange:
        content_type = request.headers.get("content-type", "")
        form: dict[str, str] = {}
        if "x-www-form-urlencoded" in content_type or "json" in content_type:
            try:
                form = dict(parse_pairs(request))
            except ProviderError:
                form = {}
        exchange = self.journal.open(
            at=self.clock.now(), origin=origin, host=site.kind if site else "other",
            method=request.method.upper()[:16], url=keep(str(request.url)), path=keep(request.url.path),
            query=kept(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
            headers=kept((k.lower(), v) for k, v in request.headers.items()), form=kept(form))
        size = len(request.content)
        if size > KEPT_CHARS:  # a body too large to keep whole: what identifies it
            exchange.facts["body_bytes"] = size
            exchange.facts["body_sha256"] = hashlib.sha256(request.content).hexdigest()
        return exchange


def _no_route(path: str, path_known: bool, oauth: bool = False) -> ProviderError:
    status, text, note = (405, f"Method not allowed on {path}", "method not allowed") if path_known else (
        404, f"Not found: {path}", "unknown path")
    if oauth:  # the auth host answers in RFC 6749 §5.2 shape, like its endpoints
        return oauth_error(status, "invalid_request", text, note=note)
    return ProviderError(status, {"message": text}, note=note)




def _json_or_none(response: httpx.Response) -> Any:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None
