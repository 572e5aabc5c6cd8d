"""Acme Invoices as a single-page view: the backend of examples/flask_app, and an invoices page whose
script asks the app's own ``/api/invoices`` for the invoices.

The backend is ``examples/flask_app/app.py``, imported unchanged: Authlib login with state, nonce and PKCE,
tokens kept on the server (the browser's cookie session holds an opaque ID), one refresh lock per user,
bounded retries, every Request Finance error handled. What this file adds is what a single-page app
serves: ``GET /signin``, a page whose script sends the browser to ``/login`` (a login started by a
script); ``GET /invoices``, an HTML shell; its script fetches ``GET /api/invoices``, which calls Request
Finance on the server and answers JSON with the counts, never a token. An error is JSON too: ``401
{"login": "/login"}`` when the user must log in (or consent) again, and the script sends the user there;
``503`` while the token endpoint is busy (the session is kept); ``502`` when Request Finance could not
answer.

``SPA_MISTAKE`` makes the page wrong on purpose, for the broken configs:

- ``token_to_script`` (broken_token_to_script.toml): ``/api/session`` hands the page's script the access
  token, which it uses to call the API from the browser. SEC-05 fails: whatever runs in the page (an
  injected script, an extension) can read that token.
- ``refresh_in_localstorage`` (broken_refresh_in_localstorage.toml): ``/api/session`` hands the script a
  "remember me" blob (base64url JSON holding the refresh token), which it keeps in localStorage to restore
  the session later. SEC-05 fails: localStorage is readable by every script of the origin, for as long as
  the refresh token lives.

Run it with ``python3 spa.py`` and the environment of examples/flask_app (see README.md).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import requests
from flask import Flask, Response, jsonify, redirect, session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "flask_app"))
import app as acme  # noqa: E402  (examples/flask_app/app.py: the backend, unchanged)

MISTAKES = ("", "token_to_script", "refresh_in_localstorage")

SHELL = """<!doctype html><html><head><title>Your invoices</title></head>
<body><h1>Your invoices</h1><p id="invoices">Loading…</p>
<script>
async function show() {
  const answer = await fetch("/api/invoices", {headers: {Accept: "application/json"}});
  const body = await answer.json();
  if (answer.status === 401) { location.assign(body.login); return; }
  const text = answer.ok ? body.personal + " invoice(s) in your personal account"
    + (body.organization ? ", " + body.shared + " in organization " + body.organization : "") + "."
    : body.error;
  document.getElementById("invoices").textContent = text;
  return answer.ok;
}
%(mistake)s
show().then(function (ok) { if (ok) { return mistake(); } });
</script></body></html>"""

# the sign-in button of a single-page app: its script sends the browser to the backend's /login
SIGN_IN = """<!doctype html><html><head><title>Sign in</title></head>
<body><p>Taking you to Request Finance…</p><script>location.replace("/login");</script></body></html>"""

NO_MISTAKE = "function mistake() {}"
# the page asks its backend for the access token and calls Request Finance from the browser with it
TOKEN_TO_SCRIPT = """async function mistake() {
  const own = await (await fetch("/api/session")).json();
  await fetch(own.api_url + "/invoices", {headers: {Authorization: "Bearer " + own.access_token,
                                                   "X-Network": own.network}});
}"""
# the page keeps the refresh token of a "remember me" blob in localStorage
REFRESH_IN_LOCALSTORAGE = """async function mistake() {
  const own = await (await fetch("/api/session")).json();
  const remembered = JSON.parse(atob(own.remember.replace(/-/g, "+").replace(/_/g, "/")));
  localStorage.setItem("acme.refresh_token", remembered.refresh_token);
}"""


def create_app(mistake: str = "") -> Flask:
    if mistake not in MISTAKES:
        raise SystemExit(f"configuration error: SPA_MISTAKE must be one of {', '.join(repr(m) for m in MISTAKES)}")
    settings = acme.Settings.from_env()
    flask_app = acme.create_app(settings)
    rf: acme.RequestFinance = flask_app.extensions["request_finance"]
    script = {"": NO_MISTAKE, "token_to_script": TOKEN_TO_SCRIPT, "refresh_in_localstorage": REFRESH_IN_LOCALSTORAGE}

    def invoices_page() -> Response:
        if acme.current_grant() is None:
            return redirect("/login")
        return Response(SHELL % {"mistake": script[mistake]}, mimetype="text/html")

    flask_app.view_functions["invoices"] = invoices_page

    @flask_app.get("/signin")
    def sign_in() -> Response:
        return Response(SIGN_IN, mimetype="text/html")

    @flask_app.get("/api/invoices")
    def api_invoices() -> tuple[Response, int] | Response:
        grant = acme.current_grant()
        if grant is None:
            return jsonify(login="/login"), 401
        try:
            organizations = rf.organizations(grant)
            personal = rf.api_get(grant, "invoices")
            shared = rf.api_get(grant, "invoices", organization=organizations[0]) if organizations else []
        except acme.LoginRequired:
            acme.end_session()
            return jsonify(login="/login"), 401
        except acme.ConsentRequired as err:
            acme.log.info("%s: asking the user to consent again", err)
            acme.end_session()
            session["consent_needed"] = True  # the next /login asks with prompt=consent
            return jsonify(login="/login"), 401
        except acme.TokenEndpointUnavailable as err:
            acme.log.warning("%s; the user's session is kept", err)
            answer = jsonify(error="Request Finance is busy. Please try again in a minute.")
            answer.headers["Retry-After"] = str(max(1, round(err.retry_after or 60)))
            return answer, 503
        except (acme.ApiError, requests.RequestException) as err:
            acme.log.warning("Request Finance could not answer: %s", type(err).__name__)
            return jsonify(error="Request Finance could not answer. Please try again later."), 502
        return jsonify(personal=len(personal), organization=organizations[0] if organizations else None,
                       shared=len(shared))

    if mistake:
        @flask_app.get("/api/session")
        def api_session() -> tuple[Response, int] | Response:
            grant = acme.current_grant()
            if grant is None:
                return jsonify(login="/login"), 401
            if mistake == "token_to_script":
                return jsonify(access_token=grant.access_token, api_url=settings.api_url, network=settings.network)
            blob = json.dumps({"refresh_token": grant.refresh_token, "user": grant.sub}).encode()
            return jsonify(remember=base64.urlsafe_b64encode(blob).rstrip(b"=").decode())

    return flask_app


if __name__ == "__main__":
    acme.main(create_app(os.environ.get("SPA_MISTAKE", "")))
