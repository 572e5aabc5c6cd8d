"""SEC checks: the project scan, the client IDs, secrets in the output, credentials sent elsewhere.

SEC-03 and SEC-04 run real scenarios on ``TinyApp`` (see ``test_checks_oidc``) with one leak
switched on; the rest build the context by hand.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from rfcheck.checks import CHECKS, Context
from rfcheck.checks.sec import cookie_readings
from rfcheck.journal import Exchange
from rfcheck.facts import AUTHORIZATION_CODE
from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.report.model import Finding
from rfcheck.observed import RunView, ScenarioResult
from tests.test_checks_oidc import Options, judge_all, target_config

SECRET = "q8ZrDZmDr1vMheumHvtlrCBRoBbdkznxhtBygQKQOdMLYSEzgng4emj63d1ZNMKl"


def registered() -> tuple[Provider, Client]:
    """A fresh provider with one registered client."""
    provider = Provider()
    return provider, provider.register_client(AUTHORIZATION_CODE, ("http://localhost:8000/callback",))


def context(project: Path, results: dict[str, ScenarioResult] | None = None, provider: Provider | None = None,
            **config: Any) -> Context:
    """A context over what ``provider`` (else a fresh one with one registered client) issued, without running
    anything: a check reads a journal and this frozen view only."""
    provider = provider or registered()[0]
    (client,) = provider.clients.values()
    view = RunView(config=target_config(project, **config), client_id=client.client_id,
                   redirect_uris=client.redirect_uris, secrets=provider.journal._secrets.values,
                   issued=provider.issued(), organizations=(), redact=provider.journal.redact)
    return Context(view, results or {})


def run(requirement_id: str, ctx: Context) -> Finding:
    return CHECKS[requirement_id].function(ctx)


def exchange(n: int, url: str, host: str, headers: dict[str, str] | None = None,
             form: dict[str, str] | None = None) -> Exchange:
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
    return Exchange(n=n, at=0.0, origin="target", host=host, method="POST", url=url, path=path, query={},
                    headers=headers or {}, form=form or {}, step="unit 1", status=200)


def no_whole_secret(finding: Finding, *values: str) -> None:
    text = finding.reason + "".join(e.detail + e.request for e in finding.evidence)
    assert not any(value in text for value in values), text


# -- SEC-01 --------------------------------------------------------------------------------
def test_sec_01_reads_no_scenario() -> None:
    assert CHECKS["SEC-01"].scenarios == ()


def test_sec_01_fails_on_a_committed_secret(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"RF_CLIENT_ID=abc\nRF_CLIENT_SECRET={SECRET}\n")
    finding = run("SEC-01", context(tmp_path))
    assert finding.status == "fail"
    assert [e.scenario for e in finding.evidence] == ["project scan"]
    assert finding.evidence[0].detail.startswith(".env:2: client secret q8ZrDZ…#")
    no_whole_secret(finding, SECRET)


def test_sec_01_passes_placeholders(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("RF_CLIENT_SECRET=YOUR_CLIENT_SECRET\n")
    (tmp_path / "app.py").write_text('import os\nSECRET = os.environ["RF_CLIENT_SECRET"]\n')
    finding = run("SEC-01", context(tmp_path))
    assert finding.status == "pass" and "scanned 2 files" in finding.reason


def test_sec_01_skips_an_unreadable_folder(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx = Context(dataclasses.replace(ctx.view, config=target_config(tmp_path / "gone")), ctx.results)
    finding = run("SEC-01", ctx)
    assert finding.status == "skip" and "could not be scanned" in finding.reason


# -- SEC-02 --------------------------------------------------------------------------------
@pytest.mark.parametrize(("test", "live", "status"), [
    ("rfc_test_1", "rfc_live_2", "pass"),
    ("rfc_same", "rfc_same", "fail"),
    ("rfc_test_1", None, "manual"),
    (None, "rfc_live_2", "manual"),
    (None, None, "manual"),
])
def test_sec_02_compares_the_client_ids(tmp_path: Path, test: str | None, live: str | None, status: str) -> None:
    finding = run("SEC-02", context(tmp_path, client_id_test=test, client_id_live=live))
    assert finding.status == status, finding
    if status == "manual":
        assert "confirm" in finding.reason
    if status == "fail":
        assert "rfc_same" in finding.evidence[0].detail


# -- SEC-03 --------------------------------------------------------------------------------
def test_sec_03_passes_a_quiet_target_and_fails_one_that_prints_tokens(tmp_path: Path) -> None:
    assert judge_all(tmp_path, ["SEC-03"])["SEC-03"].status == "pass"
    finding = judge_all(tmp_path, ["SEC-03"], Options(log_tokens=True))["SEC-03"]
    assert finding.status == "fail"
    # every scenario's output is read, not only three (the evidence shows the first ten)
    assert {"baseline", "concurrency", "expiry", "key_rotation"} <= {e.scenario for e in finding.evidence}
    assert all("the access token eyJ" in e.detail and "logged in with access token" in e.detail
               for e in finding.evidence)


def test_sec_03_names_each_kind_and_basic_credentials(tmp_path: Path) -> None:
    provider, client = registered()
    ctx = context(tmp_path, provider=provider)
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    output = f"DEBUG body client_secret={client.client_secret} headers Authorization: Basic {basic}\n"
    ctx.results["baseline"] = ScenarioResult("baseline", "completed", output=output)
    ctx.results["expiry"] = ScenarioResult("expiry", "completed", output="all good")
    ctx.results["rotation"] = ScenarioResult("rotation", "not-run", "does not apply")
    finding = run("SEC-03", ctx)
    assert finding.status == "fail"
    details = [e.detail for e in finding.evidence]
    assert any(d.startswith("the client secret ") for d in details)
    assert any(d.startswith("the client secret (as Basic credentials) ") for d in details)
    no_whole_secret(finding, client.client_secret, basic)


def test_sec_03_ignores_authorization_codes_in_access_logs(tmp_path: Path) -> None:
    provider, _ = registered()
    code = "Vq3nC0d3Xy7LmPq2Rs8Tu1Wv"
    provider.codes[code] = None  # type: ignore[assignment]  # as if /authorize had issued it
    ctx = context(tmp_path, provider=provider)
    line = f'INFO: 127.0.0.1 - "GET /callback?code={code}&state=abc HTTP/1.1" 302\n'
    ctx.results.update({name: ScenarioResult(name, "completed", output=line)
                        for name in ("baseline", "expiry", "rotation")})
    assert run("SEC-03", ctx).status == "pass"


def test_sec_03_skips_when_nothing_ran(tmp_path: Path) -> None:
    results = {name: ScenarioResult(name, "not-run", "deselected") for name in ("baseline", "expiry", "rotation")}
    assert run("SEC-03", context(tmp_path, results)).status == "skip"


# -- SEC-04 --------------------------------------------------------------------------------
def test_sec_04_fails_a_token_sent_to_telemetry(tmp_path: Path) -> None:
    finding = judge_all(tmp_path, ["SEC-04"], Options(token_to_other_host=True))["SEC-04"]
    assert finding.status == "fail"
    assert finding.evidence[0].request == "POST /events"
    assert "access token" in finding.evidence[0].detail
    assert "telemetry.example.com in the body field token" in finding.evidence[0].detail


def test_sec_04_passes_other_hosts_without_credentials(tmp_path: Path) -> None:
    findings = judge_all(tmp_path, ["SEC-04"], Options(post_to_other_host=True))
    assert findings["SEC-04"].status == "pass" and "carried no credential" in findings["SEC-04"].reason
    assert judge_all(tmp_path, ["SEC-04"])["SEC-04"].status == "pass"


def test_sec_04_finds_the_client_secret_in_a_header(tmp_path: Path) -> None:
    provider, client = registered()
    ctx = context(tmp_path, provider=provider)
    secret = client.client_secret
    leak = exchange(3, "https://errors.example.com/report", "other", headers={"x-debug": f"secret={secret}"})
    ctx.results["baseline"] = ScenarioResult("baseline", "completed", exchanges=[leak])
    ctx.results["expiry"] = ScenarioResult("expiry", "completed")
    finding = run("SEC-04", ctx)
    assert finding.status == "fail" and "client secret" in finding.evidence[0].detail
    assert "x-debug header" in finding.evidence[0].detail
    no_whole_secret(finding, secret)


def test_sec_04_skips_when_other_hosts_cannot_be_seen(tmp_path: Path) -> None:
    loopback = exchange(1, "http://127.0.0.1:4100/invoices", "api")
    results = {"baseline": ScenarioResult("baseline", "completed", exchanges=[loopback]),
               "expiry": ScenarioResult("expiry", "completed")}
    finding = run("SEC-04", context(tmp_path, results))
    assert finding.status == "skip" and "proxy = true" in finding.reason
    assert run("SEC-04", context(tmp_path, results, proxy=True)).status == "pass"


# -- SEC-05: what a web app sends its user's browser ----------------------------------------
def flask_session_cookie(payload: bytes, compressed: bool) -> str:
    """A cookie shaped like Flask's (itsdangerous): base64url payload (zlib with a leading dot), time, signature."""
    body = zlib.compress(payload) if compressed else payload
    encoded = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    return f"session={'.' if compressed else ''}{encoded}.Z2Fhcw.c2lnbmF0dXJl; HttpOnly; Path=/"


@pytest.mark.parametrize("compressed", [False, True])
def test_a_signed_but_readable_session_cookie_is_read(compressed: bool) -> None:
    token = "v1.MRdz8kX0ZtEGhn0b9Xc2w3QTlEY2bjm-refresh"
    cookie = flask_session_cookie(json.dumps({"token": {"refresh_token": token}}).encode(), compressed)
    assert any(token in reading for reading in cookie_readings(cookie))


def test_an_opaque_session_id_cookie_reads_as_nothing_secret() -> None:
    cookie = "connect.sid=s%3AaB3dE5fG7hI9jK1lM3nO5pQ7.Xy9zAbCdEfGhIjKlMnOpQrStUvWxYz012345; Path=/; HttpOnly"
    readings = list(cookie_readings(cookie))
    assert "s:aB3dE5fG7hI9jK1lM3nO5pQ7.Xy9zAbCdEfGhIjKlMnOpQrStUvWxYz012345" in readings


def page(n: int, text: str = "", cookies: tuple[str, ...] = (), location: str = "") -> Exchange:
    answer = exchange(n, "http://127.0.0.1:3000/invoices", "app")
    answer.origin, answer.status, answer.response_text = "browser", 302 if location else 200, text
    answer.response_headers = {"location": location} if location else {}
    answer.facts["set_cookies"] = list(cookies)
    return answer


def web_context(tmp_path: Path, *answers: Exchange) -> tuple[Context, str]:
    provider, client = registered()
    access = provider.tokens.mint_access(issuer="https://auth.request.finance/", client_id=client.client_id,
                                         sub="auth0|user", scope=("openid",), grant="authorization_code").token
    ctx = context(tmp_path, provider=provider, kind="web")
    ctx.results["baseline"] = ScenarioResult("baseline", "completed", exchanges=list(answers))
    return ctx, access


@pytest.mark.parametrize("where", ["page", "redirect", "cookie"])
def test_sec_05_fails_a_token_sent_to_the_browser(tmp_path: Path, where: str) -> None:
    ctx, access = web_context(tmp_path)
    answer = {"page": lambda: page(1, f"<pre>{{\"access_token\": \"{access}\"}}</pre>"),
              "redirect": lambda: page(1, location=f"/home#token={access}"),
              "cookie": lambda: page(1, cookies=(flask_session_cookie(access.encode(), True),))}[where]()
    ctx.results["baseline"].exchanges.append(answer)
    finding = run("SEC-05", ctx)
    assert finding.status == "fail", finding.reason
    assert "the access token" in finding.evidence[0].detail
    no_whole_secret(finding, access)


def test_sec_05_passes_pages_without_tokens_and_skips_non_web_targets(tmp_path: Path) -> None:
    ctx, _ = web_context(tmp_path, page(1, "<h1>3 invoices</h1>", ("sid=abc123; HttpOnly",)))
    assert run("SEC-05", ctx).status == "pass"
    assert run("SEC-05", context(tmp_path)).status == "skip"
