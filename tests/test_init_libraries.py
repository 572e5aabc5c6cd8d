"""``rfcheck init`` knows what each OAuth client library needs, tested on a real minimal app of each.

Every test copies an app (without its rfcheck configs), runs ``python3 -m rfcheck init`` on the copy,
checks the lines the library's rule wrote (tls, the environment, the comment that names the rule), then
runs rfcheck on the written config with a few requirements selected and checks in the JSON report
that the app was driven: the baseline login completed (AUTH-04), the app listed the user's
organizations and read invoices in one (ORG-02), and the written file holds no client secret (SEC-01).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rfcheck.config import TargetConfig, load_config
from rfcheck.secrets_scan import scan_project

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SELECTED = ("AUTH-04", "ORG-02", "SEC-01")
SESSION_KEY_NOTE = ("the app's session cookie key: a random value rfcheck init made for runs under rfcheck, "
                    "not a Request Finance credential")


def copy_app(example: str, into: Path) -> Path:
    """A copy of ``examples/<example>`` without its rfcheck configs; a Node app gets its installed packages."""
    source = EXAMPLES / example
    target = into / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules", "*.toml"))
    if (source / "package.json").is_file():
        link_packages(source, target)
    return target


def link_packages(installed: Path, app: Path) -> None:
    modules = installed / "node_modules"
    if not modules.is_dir() or shutil.which("node") is None:
        message = f"run `npm ci` in {installed.relative_to(ROOT)} (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run rfcheck init's Node apps: {message}")
        pytest.skip(message)
    (app / "node_modules").symlink_to(modules, target_is_directory=True)


def init(folder: Path) -> tuple[TargetConfig, str]:
    done = subprocess.run([sys.executable, "-m", "rfcheck", "init", str(folder)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    written = folder / "rfcheck.toml"
    return load_config(written), written.read_text(encoding="utf-8")


def line(text: str, key: str) -> str:
    """The active line of ``key`` in the written config (exactly one)."""
    found = [row for row in text.splitlines() if re.match(rf"{re.escape(key)} *=", row)]
    assert len(found) == 1, (key, found)
    return found[0]


def judge(folder: Path, reports: Path) -> dict[str, Any]:
    """rfcheck on ``folder``'s written config, only the requirements of SELECTED."""
    selection = " or ".join(name.replace("-", "_") for name in SELECTED)
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={folder}",
                           f"--rfcheck-report={reports}", "-p", "no:cacheprovider", "-q", "-k", selection],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    report_file = reports / "rfcheck-report.json"
    assert report_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(report_file.read_text())
    assert done.returncode == 0, done.stdout[-3000:]
    return report


def assert_driven(report: dict[str, Any]) -> None:
    statuses = {r["id"]: (r["status"], r["reason"]) for r in report["requirements"] if r["id"] in SELECTED}
    assert {name: status for name, (status, _) in statuses.items()} == dict.fromkeys(SELECTED, "pass"), statuses
    baseline = next(s for s in report["scenarios"] if s["name"] == "baseline")
    assert baseline["outcome"] == "completed", baseline
    api_calls = [e for e in baseline["exchanges"] if e["to"] == "api" and e["status"] == 200]
    assert api_calls, "the app made no successful API call in the baseline"
    assert report["verdict"] == "incomplete"  # only SELECTED were judged


def assert_session_key(text: str, name: str) -> None:
    """``name`` holds a fresh 32-byte random key, and its comment says whose key it is."""
    assert re.fullmatch(rf'{name} *= "[0-9a-f]{{64}}" +# .*{re.escape(SESSION_KEY_NOTE)}.*', line(text, name))


# -- Python ----------------------------------------------------------------------------------------------------
def test_requests_oauthlib_gets_https_and_the_switch_for_its_own_http_callback(tmp_path: Path) -> None:
    folder = copy_app("flask_requests_oauthlib", tmp_path)
    cfg, text = init(folder)
    assert cfg.tls is True
    assert line(text, "tls") == (
        "tls = true   # oauthlib refuses http:// URLs (InsecureTransportError): the mock serves https, and "
        "OAUTHLIB_INSECURE_TRANSPORT (below) lets the app's own http://localhost callback through")
    assert cfg.env["OAUTHLIB_INSECURE_TRANSPORT"] == "1"
    assert "the app's own callback on http://localhost (which fetch_token() parses) included; for runs under " \
           "rfcheck only: production is https end to end" in line(text, "OAUTHLIB_INSECURE_TRANSPORT")
    assert {name: cfg.env[name] for name in ("RF_ISSUER", "RF_API_URL", "RF_CLIENT_SECRET", "RF_REDIRECT_URI")} == {
        "RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_SECRET": "{client_secret}",
        "RF_REDIRECT_URI": "{redirect_uri}"}
    assert_session_key(text, "FLASK_SECRET_KEY")
    assert not scan_project(folder).hits
    assert_driven(judge(folder, tmp_path / "reports"))


def test_an_oauthlib_app_that_sets_the_switch_itself_gets_https_only(tmp_path: Path) -> None:
    folder = copy_app("flask_pyjwt", tmp_path)
    cfg, text = init(folder)
    assert cfg.tls is True and "OAUTHLIB_INSECURE_TRANSPORT" not in cfg.env
    match = re.fullmatch(r"tls = true   # oauthlib refuses http:// URLs \(InsecureTransportError\): the mock serves "
                         r"https, and app\.py:(\d+) sets OAUTHLIB_INSECURE_TRANSPORT itself for the app's own "
                         r"callback", line(text, "tls"))
    assert match, line(text, "tls")
    named = (folder / "app.py").read_text().splitlines()[int(match.group(1)) - 1]
    assert re.search(r"os\.environ\[\"OAUTHLIB_INSECURE_TRANSPORT\"\] = \"1\"", named), named
    # the app refuses any Request Finance URL that is not https: plain http would not even start it
    assert_driven(judge(folder, tmp_path / "reports"))


def test_authlib_keeps_plain_http_and_says_why(tmp_path: Path) -> None:
    folder = copy_app("flask_app", tmp_path)
    cfg, text = init(folder)
    assert cfg.tls is False and "OAUTHLIB_INSECURE_TRANSPORT" not in text
    assert line(text, "tls") == (
        "tls = false   # Authlib's OAuth client checks no URL scheme (is_secure_transport and "
        "AUTHLIB_INSECURE_TRANSPORT guard Authlib's server side only): the mock's plain http works")
    assert_driven(judge(folder, tmp_path / "reports"))


def test_a_setter_in_a_comment_is_not_one(tmp_path: Path) -> None:
    folder = copy_app("flask_requests_oauthlib", tmp_path)
    app = folder / "app.py"
    app.write_text(app.read_text() + '\n# os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # never in production\n')
    cfg, _ = init(folder)
    assert cfg.env["OAUTHLIB_INSECURE_TRANSPORT"] == "1"


# -- Node ------------------------------------------------------------------------------------------------------
def test_openid_client_v6_gets_https(tmp_path: Path) -> None:
    folder = copy_app("node/express-app", tmp_path)
    cfg, text = init(folder)
    assert cfg.tls is True
    assert line(text, "tls") == (
        "tls = true   # openid-client v6 refuses plain-http issuers (discovery fails unless the app allows insecure "
        "requests): the mock serves https with the run's CA, which Node trusts through NODE_EXTRA_CA_CERTS")
    assert_driven(judge(folder, tmp_path / "reports"))


def test_express_openid_connect_gets_the_sdk_variables_and_a_fresh_secret(tmp_path: Path) -> None:
    folder = copy_app("node/express-openid-connect", tmp_path)
    cfg, text = init(folder)
    assert cfg.tls is False and "accepts a plain-http issuer" in line(text, "tls")
    assert {name: cfg.env[name] for name in ("ISSUER_BASE_URL", "BASE_URL", "CLIENT_ID", "CLIENT_SECRET")} == {
        "ISSUER_BASE_URL": "{issuer}", "BASE_URL": "http://localhost:{port}", "CLIENT_ID": "{client_id}",
        "CLIENT_SECRET": "{client_secret}"}
    assert "read by express-openid-connect itself" in line(text, "ISSUER_BASE_URL")
    assert_session_key(text, "SECRET")
    assert (cfg.env["RF_API_URL"], cfg.env["RF_NETWORK"]) == ("{api_url}", "{network}")  # the app's own
    assert "RF_REDIRECT_URI" not in text  # the SDK builds it from BASE_URL
    assert not scan_project(folder).hits
    assert_driven(judge(folder, tmp_path / "reports"))


# An app that leaves its whole OAuth configuration to express-openid-connect's environment defaults:
# its sources name none of the SDK's variables.
SDK_ONLY_APP = """\
const express = require('express')
const { auth, requiresAuth } = require('express-openid-connect')

const app = express()
app.use(auth({
  authRequired: false,
  authorizationParams: { response_type: 'code', audience: 'accounts', scope: 'openid profile email offline_access user:read' },
}))
app.get('/', (req, res) => res.send('ok'))
app.get('/invoices', requiresAuth(), async (req, res) => {
  const headers = { authorization: `Bearer ${req.oidc.accessToken.access_token}`, 'x-network': process.env.RF_NETWORK }
  try {
    const organizations = await (await fetch(`${process.env.RF_API_URL}/users/organizations`, { headers })).json()
    if (organizations.length) headers['x-organization'] = String(organizations[0].id)
    const invoices = await (await fetch(`${process.env.RF_API_URL}/invoices`, { headers })).json()
    res.json({ invoices: invoices.length })
  } catch (err) {
    res.status(502).send('Request Finance error')
  }
})
app.listen(Number(process.env.PORT), '127.0.0.1')
"""


def test_express_openid_connect_variables_are_filled_when_only_the_sdk_reads_them(tmp_path: Path) -> None:
    installed = EXAMPLES / "node" / "express-openid-connect"
    folder = tmp_path / "sdk-only"
    folder.mkdir()
    dependencies = json.loads((installed / "package.json").read_text())["dependencies"]
    (folder / "package.json").write_text(json.dumps({"name": "sdk-only", "main": "server.js",
                                                     "dependencies": dependencies}))
    (folder / "server.js").write_text(SDK_ONLY_APP)
    link_packages(installed, folder)
    cfg, text = init(folder)
    assert not re.search(r"ISSUER_BASE_URL|BASE_URL|CLIENT_ID|CLIENT_SECRET|\bSECRET\b", SDK_ONLY_APP)
    assert {name: cfg.env[name] for name in ("ISSUER_BASE_URL", "BASE_URL", "CLIENT_ID", "CLIENT_SECRET")} == {
        "ISSUER_BASE_URL": "{issuer}", "BASE_URL": "http://localhost:{port}", "CLIENT_ID": "{client_id}",
        "CLIENT_SECRET": "{client_secret}"}
    assert_session_key(text, "SECRET")
    assert cfg.web is not None and (cfg.web.start, cfg.web.login) == ("node server.js", "/login")
    assert cfg.redirect_uri == "http://localhost:{port}/callback"  # the SDK's default routes
    assert_driven(judge(folder, tmp_path / "reports"))


def test_passport_openidconnect_keeps_plain_http_and_reads_the_apps_names(tmp_path: Path) -> None:
    folder = copy_app("node/express-passport", tmp_path)
    cfg, text = init(folder)
    assert cfg.tls is False
    assert line(text, "tls") == ("tls = false   # passport-openidconnect (the oauth package under it) accepts the "
                                 "mock's plain-http URLs")
    # Passport's tutorial callback (a relative callbackURL the strategy resolves against the request)
    assert cfg.redirect_uri == "http://localhost:{port}/oauth2/redirect"
    assert {name: cfg.env[name] for name in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET", "RF_API_URL", "RF_NETWORK")} == {
        "ISSUER": "{issuer}", "CLIENT_ID": "{client_id}", "CLIENT_SECRET": "{client_secret}",
        "RF_API_URL": "{api_url}", "RF_NETWORK": "{network}"}
    assert_session_key(text, "SESSION_SECRET")
    assert not scan_project(folder).hits
    assert_driven(judge(folder, tmp_path / "reports"))


def test_two_inits_write_two_different_session_keys(tmp_path: Path) -> None:
    first, second = (copy_app("node/express-passport", tmp_path / name) for name in ("a", "b"))
    keys = {init(folder)[0].env["SESSION_SECRET"] for folder in (first, second)}
    assert len(keys) == 2
