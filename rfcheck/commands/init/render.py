"""Writing the guess as a commented rfcheck.toml, every key explained."""

from __future__ import annotations

import json


from rfcheck.config import SCOPES
from rfcheck.commands.init.model import APP_URL, AUTH_DOMAIN, CONFIG_NAME, Guess


def _q(value: str) -> str:
    """``value`` as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value)


def render(result: Guess) -> str:
    """The commented rfcheck.toml for ``result``."""
    lines = [
        f"# {CONFIG_NAME}: how rfcheck runs this integration (`pytest --rfcheck`, or `rfcheck check`).",
        "# Written by `rfcheck init` from what it found here; every value is a guess: review each one.",
        *[f"#   found: {line}" for line in result.found],
        "# No secrets belong in this file: rfcheck issues a fresh client ID and secret for every run and",
        "# hands them to the app through the {placeholders}. A mistake here is a usage error naming the key.",
        "",
        "[target]",
        "# shown in the reports",
        f"name = {_q(result.name)}",
        "# python (an adapter rfcheck calls inside pytest) | web (an app rfcheck starts and drives as a browser",
        "# would) | command (a worker or CLI rfcheck runs once per unit of work)",
        f"kind = {_q(result.kind)}   # {result.kind_why}",
        "# authorization_code (a user logs in) | client_credentials (a machine-to-machine worker)",
        f"flow = {_q(result.flow)}" + ("   # command targets have no login" if result.kind == "command" else ""),
        "# the X-Network value this deployment must send: test | live (--rfcheck-network overrides it)",
        'network = "test"',
    ]
    if result.flow == "authorization_code":
        uri = f"http://localhost:{{port}}{result.redirect_path}" if result.kind == "web" \
            else f"http://localhost:8000{result.redirect_path}"
        lines += ["# the redirect URI rfcheck registers for the app; it must be the one the app sends"
                  + (" ({port}: the free port rfcheck picks)" if result.kind == "web" else ""),
                  f"redirect_uri = {_q(uri)}"]
    else:
        lines += ["# redirect_uri: not used by the client credentials flow"]
    lines += [
        "# the scopes the app may be granted (these five are the default)",
        f"scopes = [{', '.join(_q(scope) for scope in SCOPES)}]",
        "# the folder scanned for plaintext secrets (SEC-01), relative to this file",
        'project = "."',
        "# true: the mock serves https ({issuer}, {api_url}) with a CA made for this run, which the app's",
        "# environment trusts (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS)",
        f"tls = {str(result.tls).lower()}   # {result.tls_why}",
        "# optional, for SEC-02: the real test and live client IDs, read from environment variables",
        *[f"client_id_{network} = {_q('env:' + result.client_ids[key])}" if key in result.client_ids else
          f'# client_id_{network} = "env:RF_CLIENT_ID_{network.upper()}"'
          for network in ("test", "live") for key in [f"client_id_{network}"]],
        "",
    ]
    lines += {"web": _web_lines, "command": _command_lines, "python": _python_lines}[result.kind](result)
    if result.kind != "python":
        lines += ["", "[target.env]",
                  "# added to the app's environment; {placeholders} are filled in for every run"]
        width = max((len(line.name) for line in result.env), default=0)
        for env in result.env:
            text = f"{env.name.ljust(width)} = {_q(env.value)}"
            lines.append(f"{text}   # {env.note}" if env.active else f"# {text}   # {env.note}")
        lines += [""] + _intercept_lines(result)
    lines += [
        "",
        "# manual requirements (MAN-01 ... MAN-06) a person has confirmed, each with a note; uncomment to record:",
        "# [target.confirm]",
        '# MAN-01 = "integration@acme.com, created 2026-11-02, password in the vault"',
        "",
        "# should-level shortfalls accepted on purpose, each with its reason (a must requirement cannot be):",
        "# [target.accept]",
        '# ORG-02 = "acts on personal invoices only; decided with finance on 2026-11-20"',
    ]
    return "\n".join(lines) + "\n"


def _web_lines(result: Guess) -> list[str]:
    return [
        "[target.web]",
        f"# shell command run in this folder; rfcheck stops its whole process group ({result.start_why})",
        f"start = {_q(result.start)}",
        "# where the app listens ({port}: a free port rfcheck picks, also given to the app as PORT below)",
        f"url = {_q(APP_URL)}",
        "# polled with GET until it answers",
        'ready = "/"',
        "# GET starts the authorization code flow (the app answers with a redirect to /authorize)",
        f"login = {_q(result.login_path)}",
        "# GETs, as the logged-in user, that make the app call the API (list invoices, ...)",
        f"actions = [{', '.join(_q(action) for action in result.actions)}]",
        "# scenario: a fresh process per scenario | session: one for the whole run",
        'restart = "scenario"',
        "# seconds to wait: for `ready` to answer, and for every other step",
        f"ready_timeout = {result.ready_timeout}",
        f"step_timeout = {result.step_timeout}   # a step that takes longer fails its scenario",
    ]


def _command_lines(result: Guess) -> list[str]:
    return [
        "[target.command]",
        f"# one unit of API work per run, in this folder; exit status 0 = success ({result.start_why})",
        f"run = {_q(result.start)}",
        "# serve: a long-running worker instead of run, with actions (HTTP GETs on it) that trigger a unit of work",
        '# serve = ""',
        "# actions = []",
        "# seconds every run may take",
        f"step_timeout = {result.step_timeout}",
    ]


def _python_lines(result: Guess) -> list[str]:
    lines = [
        "[target.python]",
        "# module:callable, imported with this folder on sys.path and called once per scenario with an",
        "# rfcheck.Environment (issuer, api_url, client_id, client_secret, redirect_uri, network).",
        "# In process, httpx calls to https://auth.request.finance and https://api.request.finance reach the",
        "# mock with no configuration; other HTTP clients must use env.issuer and env.api_url.",
        "# [target.env] and [target.intercept] are for web and command targets: not needed here.",
    ]
    if result.factory:
        lines += [f"factory = {_q(result.factory)}   # {result.factory_why}"]
    else:
        lines += [f'# factory = "module:make_target"   # {result.factory_why}']
    return lines


def _intercept_lines(result: Guess) -> list[str]:
    if result.hits:
        why = f"the sources hard-code the real hosts ({', '.join(result.hits[:3])}" + \
              (", ..." if len(result.hits) > 3 else "") + ")"
    elif result.domain_env:
        why = f"a *_DOMAIN variable is set to {AUTH_DOMAIN}, the real host"
    else:
        why = "no hard-coded https://auth.request.finance or https://api.request.finance found"
    runtime = {"node": "Node's http/https and fetch ignore HTTPS_PROXY",
               "python": "aiohttp and clients that pin their own resolution ignore HTTPS_PROXY",
               "jvm": "the JVM ignores HTTPS_PROXY",
               "go": "Go honours HTTPS_PROXY, which is what hosts = true uses for it"}[result.runtime]
    return [
        "[target.intercept]",
        "# hosts = true: every connection the app opens to auth.request.finance or api.request.finance reaches",
        "# the mock, whatever its HTTP client, by instrumenting its runtime as it starts (no change to the app)",
        f"hosts = {str(result.hosts).lower()}   # {why}",
        "# proxy = true: the same through HTTP(S)_PROXY, for an app whose HTTP client honours it",
        f"proxy = false   # the alternative to hosts = true ({runtime})",
    ]
