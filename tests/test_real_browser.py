"""Tests for rfcheck.targets.chromium and rfcheck.targets.pageproxy: web targets whose pages run scripts,
driven in headless Chromium, and judged end to end (examples/flask_spa).

The correct single-page app (its login started by a script, its invoices fetched by a script from the app's
own JSON) must be ``ready`` with the statuses of examples/flask_app; the app handing its access token to the
page's script, and the one keeping the refresh token in localStorage, must fail SEC-05 and nothing else.
Without a Chromium, what the scripts would have done is not judged: a single-page app is not driven at all,
and an app whose pages only decorate with scripts has SEC-05 alone not judged. Every run is checked for
browser processes left behind (Chromium calls setsid: they carry rfcheck's environment mark).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rfcheck.config import ConfigError, WebSpec, load_config
from rfcheck.harness import Harness
from rfcheck.provider.app import Provider
from rfcheck.scenarios import ScenarioResult
from rfcheck.targets import chromium
from rfcheck.targets.chromium import ENV_CHROMIUM, MARK, NoBrowser, find_chromium, runs_scripts
from rfcheck.targets.pageproxy import PageProxy
from rfcheck.targets.deadline import Deadlines
from rfcheck.targets.realbrowser import RealBrowser
from rfcheck.tls import RunCA
from rfcheck.transport.http11 import Response
from tests.test_flask_examples import READY, assert_statuses

ROOT = Path(__file__).resolve().parents[1]
SPA = ROOT / "examples" / "flask_spa"
FLASK_APP = ROOT / "examples" / "flask_app"
FLASK = all(importlib.util.find_spec(name) for name in ("flask", "authlib", "requests"))
MISSING = "/nonexistent/chromium"  # RFCHECK_CHROMIUM naming nothing: no Chromium can be had


def _browser_missing() -> str:
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is not installed: python3 -m pip install playwright"
    try:
        found = find_chromium()
    except NoBrowser as err:
        return str(err)
    return "" if found.executable else f"no Chromium: {chromium.HOW_TO_GET_ONE}"


@pytest.fixture
def real_browser() -> None:
    """Skip (fail on CI) without Playwright and a Chromium to drive."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must drive a real browser: {missing}")
        pytest.skip(missing)


@pytest.fixture
def flask_installed() -> None:
    if not FLASK:
        message = "install the dev extras (pip install -e '.[dev]'): the Flask examples need flask and authlib"
        if os.environ.get("CI"):
            pytest.fail(f"CI must judge the Flask examples: {message}")
        pytest.skip(message)


def left_by(pid: int) -> list[int]:
    """Live processes of the real browser that the rfcheck process ``pid`` started (their environment mark)."""
    needle = f"{MARK}={pid}-".encode()
    found = []
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (folder / "environ").read_bytes() and \
                    (folder / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(folder.name))
        except (OSError, IndexError):
            continue
    return found


# -- which pages run scripts ------------------------------------------------------------------------
@pytest.mark.parametrize(("page", "content_type", "runs"), [
    ("<html><script>fetch('/api')</script></html>", "text/html; charset=utf-8", True),
    ('<script type="module" src="/app.js"></script>', "text/html", True),
    ('<script type="text/javascript">go()</script>', "", True),
    ('<body onload="start()"><p>hi</p></body>', "text/html", True),
    ('<a href="javascript:void(0)">x</a>', "text/html", True),
    ('<script type="application/json">{"a": 1}</script><script type="application/ld+json">{}</script>',
     "text/html", False),
    ('<script type="importmap">{"imports": {}}</script><p>on the onward page</p>', "text/html", False),
    ("<h1>3 invoices</h1><p>no script here</p>", "text/html", False),
    ("<script>not a page</script>", "application/json", False),
    ("var x = '<script>';", "application/javascript", False),
])
def test_a_page_runs_scripts_when_a_browser_would_run_them(page: str, content_type: str, runs: bool) -> None:
    assert runs_scripts(page, content_type) is runs


# -- [target.web] browser -----------------------------------------------------------------------------
def web_toml(folder: Path, **web: Any) -> Path:
    config = folder / "rfcheck.toml"
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in web.items())
    config.write_text('[target]\nkind = "web"\n[target.web]\nstart = "python3 app.py"\n'
                      f'url = "http://localhost:{{port}}"\n{extra}')
    return config


def test_the_browser_is_auto_unless_the_config_says_otherwise(tmp_path: Path) -> None:
    assert load_config(web_toml(tmp_path)).web == WebSpec(start="python3 app.py", url="http://localhost:{port}")
    for choice in ("auto", "chromium", "simulated"):
        web = load_config(web_toml(tmp_path, browser=choice)).web
        assert web is not None and web.browser == choice
    with pytest.raises(ConfigError) as refused:
        load_config(web_toml(tmp_path, browser="firefox"))
    assert str(refused.value) == ("rfcheck.toml: [target.web] browser = 'firefox' is not one of auto, chromium, "
                                  "simulated")


def test_rfcheck_chromium_names_the_browser_or_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(NoBrowser) as refused:
        find_chromium({ENV_CHROMIUM: str(tmp_path / "chrome"), "PATH": ""})
    assert f"{ENV_CHROMIUM}={tmp_path / 'chrome'} names no executable file" in str(refused.value)
    assert "apt-get install chromium" in str(refused.value) and "playwright install chromium" in str(refused.value)
    if importlib.util.find_spec("playwright") is None:
        return
    own = tmp_path / "my-chromium"
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    assert find_chromium({ENV_CHROMIUM: str(own), "PATH": ""}) == chromium.Found(str(own), f"{own} ({ENV_CHROMIUM})")


# -- what the real browser's requests get, and where they are recorded --------------------------------
def driver_for(provider: Provider, app: str = "http://127.0.0.1:5000") -> RealBrowser:
    """The router of a real browser for an app at ``app`` (never started: no Chromium needed)."""
    def fetch(*request: Any) -> httpx.Response:
        raise AssertionError(f"nothing goes to the app here: {request}")

    return RealBrowser(provider, lambda url: (url.host, url.port) == (httpx.URL(app).host, httpx.URL(app).port),
                       fetch, Deadlines(), 10.0)


def test_a_request_elsewhere_is_refused_and_recorded_as_the_browsers() -> None:
    provider = Provider()
    driver = driver_for(provider)
    answer = driver.serve("GET", "http://collect.example/pixel?u=1", [("Accept", "*/*")], b"")
    assert not driver.tunnel_to("cdn.example", 443)
    assert driver.tunnel_to("127.0.0.1", 5000), "the app itself"
    assert driver.tunnel_to("api.request.finance", 443), "the mock's hosts"
    assert answer.status == 502
    recorded = [(e.origin, e.host, e.method, e.url, e.status) for e in provider.journal]
    assert recorded == [("browser", "other", "GET", "http://collect.example/pixel?u=1", 502),
                        ("browser", "other", "CONNECT", "https://cdn.example:443/", 403)]


def test_the_pages_scripts_reach_the_mock_in_process_and_their_calls_say_so() -> None:
    provider = Provider()
    driver = driver_for(provider)
    origin = [("Origin", "http://127.0.0.1:5000")]
    preflight = driver.serve("OPTIONS", "https://api.request.finance/invoices",
                             origin + [("Access-Control-Request-Method", "GET"),
                                       ("Access-Control-Request-Headers", "authorization,x-network")], b"")
    call = driver.serve("GET", "https://api.request.finance/invoices",
                        origin + [("Authorization", "Bearer not-a-token"), ("X-Network", "test")], b"")
    login = driver.serve("GET", "https://auth.request.finance/authorize?client_id=x", [], b"")
    assert (preflight.status, dict(preflight.headers)["Access-Control-Allow-Headers"]) == (204, "authorization,x-network")
    assert call.status == 401 and ("Access-Control-Allow-Origin", "http://127.0.0.1:5000") in call.headers
    assert login.status == 204, "a login the app sends the user to is the scenario's to make"
    options, get = list(provider.journal)
    assert (options.origin, options.host, options.method, options.facts.get("preflight")) == (
        "browser", "api", "OPTIONS", True)
    assert (get.origin, get.host, get.status, get.facts.get("from_page"), get.header("x-network")) == (
        "browser", "api", 401, True, "test")
    assert "sent from the user's browser by a script of the app's page" in get.notes


def test_an_api_call_a_script_makes_is_judged_as_the_apps_and_named_as_the_browsers(tmp_path: Path) -> None:
    """NET-01 reads a page's script's API call like one the backend made (its preflight is the browser's own
    and carries no X-Network by design), and its evidence says where the call came from."""
    from tests.test_checks_sec import context, run

    provider = Provider()
    driver = driver_for(provider)
    origin = [("Origin", "http://127.0.0.1:5000")]
    driver.serve("OPTIONS", "https://api.request.finance/invoices",
                 origin + [("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "authorization")],
                 b"")
    driver.serve("GET", "https://api.request.finance/invoices", origin + [("Authorization", "Bearer x")], b"")
    provider.register_client("authorization_code", ("http://localhost:8000/callback",))
    result = ScenarioResult("baseline", "completed", exchanges=provider.journal.since(0))
    finding = run("NET-01", context(tmp_path, {"baseline": result}, provider))
    assert (finding.status, finding.reason) == ("fail", "1 of 1 API calls had no X-Network header")
    (evidence,) = finding.evidence
    assert evidence.request == "GET /invoices"
    assert evidence.detail == "no X-Network header (sent from the user's browser, by a script of the app's page)"


# -- Chromium itself --------------------------------------------------------------------------------
class _Router:
    """Serves ``page`` for any URL of app.example; refuses tunnels to any other host."""

    def __init__(self, page: bytes = b"<p>served</p>") -> None:
        self.served: list[str] = []
        self.page = page

    def serve(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        self.served.append(url)
        return Response(200, [("Content-Type", "text/html")], self.page)

    def tunnel_to(self, host: str, port: int) -> bool:
        return host == "app.example"

    def proxy_failed(self, error: BaseException) -> None:
        pass


@pytest.fixture
def engine(real_browser: None) -> Iterator[chromium.Engine]:
    engine = chromium.acquire(find_chromium())
    try:
        yield engine
    finally:
        chromium.release()


def visit_through(engine: chromium.Engine, tls_for: Any, url: str,
                  page: bytes = b"<p>served</p>") -> tuple[chromium.Visit, list[str]]:
    router = _Router(page)
    proxy = PageProxy(router, tls_for)
    proxy.start()
    session = engine.session(proxy.url, lambda url: chromium.APP if "app.example" in url else chromium.OTHER)
    try:
        return session.visit(url, 10), router.served
    finally:
        session.close()
        proxy.stop()


def test_the_browser_trusts_the_certificates_of_its_own_ca_and_no_other(engine: chromium.Engine) -> None:
    visit, served = visit_through(engine, engine.tls_for, "https://app.example:8443/page")
    assert (visit.status, served[0]) == (200, "https://app.example:8443/page")
    stranger = RunCA()
    try:
        paths = stranger.issue(("app.example",), "app")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(paths.cert_file, paths.key_file)
        visit, served = visit_through(engine, lambda host: context, "https://app.example:8443/page")
    finally:
        shutil.rmtree(stranger.folder, ignore_errors=True)
    # refused before any request went through (Chromium's own check for a captive portal may follow)
    assert visit.status is None and not [url for url in served if "app.example" in url], served
    assert visit.failed and "CERT" in visit.failed[0][1], visit.failed


def test_a_script_on_a_host_the_browser_may_not_reach_is_named(engine: chromium.Engine) -> None:
    page = b'<script src="https://cdn.example/lib.js"></script><script src="/own.js"></script><p>shell</p>'
    visit, served = visit_through(engine, engine.tls_for, "https://app.example/", page)
    assert visit.status == 200 and visit.refused_scripts == ["https://cdn.example/lib.js"], visit
    assert "https://app.example/own.js" in served and not [url for url in served if "cdn.example" in url]


def test_no_process_of_the_browser_outlives_its_end(real_browser: None) -> None:
    chromium.acquire(find_chromium())
    chromium.release()
    assert left_by(os.getpid()), "the browser runs while it lingers"
    chromium.shutdown()
    assert left_by(os.getpid()) == []


# -- the single-page example, one scenario at a time ----------------------------------------------------
@pytest.fixture
def spa(real_browser: None, flask_installed: None) -> Iterator[Any]:
    harnesses: list[Harness] = []

    def baseline(config: str) -> ScenarioResult:
        harness = Harness(load_config(SPA / config))
        harnesses.append(harness)
        harness.start()
        return harness.scenario("baseline")

    yield baseline
    for harness in harnesses:
        harness.stop()


def test_the_spa_logs_in_by_script_and_its_scripts_requests_are_the_browsers(spa: Any) -> None:
    result = spa("rfcheck.toml")
    assert [(e.kind, e.ok) for e in result.events] == [("login", True), ("unit", True), ("unit", True),
                                                       ("unit", True)], result.events
    browser = [(e.method, e.path, e.status, e.step) for e in result.exchanges
               if e.origin == "browser" and e.path != "/favicon.ico"]
    assert browser == [
        ("GET", "/signin", 200, "login 1"),  # read by the script-less browser: it runs scripts, so it is handed over
        ("GET", "/login", 302, "login 1"),  # where the page's script sent Chromium
        ("GET", "/authorize", 302, "login 1"),  # rfcheck consenting as the user
        ("GET", "/callback", 302, "login 1"),
        ("GET", "/", 200, "login 1"),
        *[exchange for n in (1, 2, 3) for exchange in (
            ("GET", "/invoices", 200, f"unit {n}"), ("GET", "/api/invoices", 200, f"unit {n}"))],
    ]
    assert result.exchanges[0].facts["runs_scripts"]
    for fetched in (e for e in result.exchanges if e.path == "/api/invoices"):
        calls = [e for e in result.exchanges if e.origin == "target" and e.host == "api" and e.step == fetched.step]
        assert calls and all(fetched.n < call.n <= fetched.done for call in calls), "served while the script waited"
        assert json.loads(fetched.response_text)["personal"] >= 0
    held = [item for e in result.exchanges for item in e.facts.get("browser_held", ())]
    assert held and all(item["where"].startswith("cookie session of localhost (HttpOnly)") for item in held), held
    (note,) = result.notes
    assert note.endswith(", as the app's pages run scripts") and "the user's browser: headless Chromium " in note


def test_api_calls_made_from_the_browser_are_recorded_as_the_browsers(spa: Any) -> None:
    result = spa("broken_token_to_script.toml")
    from_page = [e for e in result.exchanges if e.facts.get("from_page")]
    assert [(e.origin, e.host, e.method, e.path, e.status, e.step) for e in from_page] == [
        ("browser", "api", "GET", "/invoices", 200, f"unit {n}") for n in (1, 2, 3)]
    assert all(e.header("x-network") == "test" and e.facts["token_status"] == "valid" for e in from_page)
    preflights = [e for e in result.exchanges if e.facts.get("preflight")]
    assert [(e.origin, e.host, e.method, e.status) for e in preflights] == [("browser", "api", "OPTIONS", 204)]
    assert not [e for e in result.exchanges if e.origin == "target" and e.header("origin")], \
        "the app's own calls stay the target's"


# -- end to end ---------------------------------------------------------------------------------------
def judge(config: Path, report_dir: Path, env: dict[str, str] | None = None) -> tuple[int, str, dict[str, Any]]:
    """Run rfcheck on ``config``; its exit status, output and JSON report. No process of its browser may
    outlive it."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"} | (env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={config}", f"--rfcheck-report={report_dir}",
         "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        process.kill()
    deadline = time.monotonic() + 5
    while left_by(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left_by(process.pid) == [], "browser processes outlived the run"
    report_file = report_dir / "rfcheck-report.json"
    assert report_file.exists(), output[-3000:]
    return process.returncode, output, json.loads(report_file.read_text())


def requirement(report: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(r for r in report["requirements"] if r["id"] == rid)


CASES = {
    "rfcheck.toml": ("ready", READY),
    "broken_token_to_script.toml": ("not-ready", {**READY, "SEC-05": "fail"}),
    "broken_refresh_in_localstorage.toml": ("not-ready", {**READY, "SEC-05": "fail"}),
}
EVIDENCE = {
    "broken_token_to_script.toml": ("GET /api/session", "the access token ", " in the page of the answer to GET "
                                    "/api/session"),
    "broken_refresh_in_localstorage.toml": ("GET /api/session", "the refresh token ", " in the localStorage item "
                                            "acme.refresh_token of http://localhost:"),
}


@pytest.mark.parametrize("config", list(CASES))
def test_the_spa_example_gets_exactly_its_expected_statuses(config: str, tmp_path: Path, real_browser: None,
                                                           flask_installed: None) -> None:
    verdict, expected = CASES[config]
    status, output, report = judge(SPA / config, tmp_path)
    assert_statuses(report, expected)
    assert (report["verdict"], report["not_judged"], status) == (verdict, [], 0 if verdict == "ready" else 1), \
        output[-3000:]
    assert all(s["outcome"] == "completed" for s in report["scenarios"]), report["scenarios"]
    assert all(any("the user's browser: headless Chromium" in note for note in s["notes"])
               for s in report["scenarios"])
    sec = requirement(report, "SEC-05")
    if config == "rfcheck.toml":
        assert "and what the browser held once the pages' scripts had run" in sec["reason"], sec
        assert "RfcheckWarning" not in output
        return
    request, kind, where = EVIDENCE[config]
    first = sec["evidence"][0]
    assert first["request"] == request and first["detail"].startswith(kind) and where in first["detail"], sec
    assert len(sec["evidence"]) >= 3, "every unit of the baseline shows it"


def test_without_chromium_a_spa_is_not_driven_and_the_report_says_how_to_get_one(
        tmp_path: Path, flask_installed: None) -> None:
    status, output, report = judge(SPA / "rfcheck.toml", tmp_path, {ENV_CHROMIUM: MISSING})
    assert (report["verdict"], status) == ("incomplete", 1)
    judged = {r["id"]: r["status"] for r in report["requirements"] if r["id"] not in report["not_judged"]}
    assert judged == {"SEC-01": "pass", "SEC-02": "manual", "CC-01": "skip", "CC-02": "skip", "CC-03": "skip",
                      "MAN-01": "manual", "MAN-02": "manual", "MAN-03": "skip", "MAN-05": "manual",
                      "MAN-06": "manual"}, judged
    assert all(requirement(report, rid)["status"] == "skip" for rid in report["not_judged"])
    assert "rfcheck could not drive the target" in output
    why = requirement(report, "SEC-05")["reason"]
    assert "GET /signin answered 200 with a page that runs scripts instead of a redirect" in why, why
    assert f"{ENV_CHROMIUM}={MISSING} names no executable file" in why and "apt-get install chromium" in why


DECORATED = """\
import sys
sys.path.insert(0, {backend!r})
import app as acme

flask_app = acme.create_app()


@flask_app.after_request
def greet(response):
    # a script that only decorates the page: the app's work is done on the server, as before
    if response.mimetype == "text/html":
        page = response.get_data(as_text=True)
        response.set_data(page.replace("</body>", "<script>document.title += ' (Acme)';</script></body>"))
    return response


if __name__ == "__main__":
    acme.main(flask_app)
"""


@pytest.mark.parametrize("browser", ["chromium", "none"])
def test_pages_that_only_decorate_with_scripts_are_judged_with_sec_05_not_judged_only_without_chromium(
        browser: str, tmp_path: Path, flask_installed: None, request: pytest.FixtureRequest) -> None:
    if browser == "chromium":
        request.getfixturevalue("real_browser")
    (tmp_path / "decorated.py").write_text(DECORATED.format(backend=str(FLASK_APP)))
    config = tmp_path / "rfcheck.toml"
    config.write_text((FLASK_APP / "rfcheck.toml").read_text().replace('start = "python3 app.py"',
                                                                       'start = "python3 decorated.py"'))
    status, output, report = judge(config, tmp_path / "reports", {ENV_CHROMIUM: MISSING} if browser == "none" else {})
    if browser == "chromium":  # the pages are handed over to Chromium where the login lands
        assert_statuses(report, READY)
        assert (report["verdict"], report["not_judged"], status) == ("ready", [], 0), output[-3000:]
        return
    assert_statuses(report, {**READY, "SEC-05": "skip"})
    # the target was driven: no must failed, and the one not judged shows in the verdict (pytest's exit stays 0)
    assert (report["verdict"], report["not_judged"], status) == ("incomplete", ["SEC-05"], 0), output[-3000:]
    why = requirement(report, "SEC-05")["reason"]
    assert "page(s) of the app run scripts, which were not run" in why, why
    assert f"{ENV_CHROMIUM}={MISSING} names no executable file" in why and "playwright install chromium" in why


def test_a_forced_browser_that_cannot_be_had_is_a_driver_error_naming_what_is_missing(
        tmp_path: Path, flask_installed: None) -> None:
    config = tmp_path / "rfcheck.toml"
    config.write_text((FLASK_APP / "rfcheck.toml").read_text().replace(
        'actions = ["/invoices"]', 'actions = ["/invoices"]\nbrowser = "chromium"').replace(
        'start = "python3 app.py"', f'start = "python3 {FLASK_APP / "app.py"}"'))
    status, output, report = judge(config, tmp_path / "reports", {ENV_CHROMIUM: MISSING})
    assert (report["verdict"], status) == ("incomplete", 1)
    assert ('[target.web] browser = "chromium", but no Chromium can be had: '
            f"{ENV_CHROMIUM}={MISSING} names no executable file") in output
    assert {s["outcome"] for s in report["scenarios"]} == {"error"}



def test_the_benchmark_prints_every_number(real_browser: None, flask_installed: None) -> None:
    """bench/real_browser.py keeps working (its --quick mode); nothing here is timed."""
    bench = subprocess.Popen([sys.executable, str(ROOT / "bench" / "real_browser.py"), "--quick"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = bench.communicate(timeout=600)
    finally:
        bench.kill()
    assert bench.returncode == 0, output[-3000:]
    numbers = dict(line.split(" ", 1) for line in output.splitlines() if line and not line.startswith("#"))
    for mode in ("simulated", "chromium", "spa"):
        for run in ("serial", "at_once"):
            assert float(numbers[f"{mode}_{run}_s_per_scenario"]) > 0, output
    assert float(numbers["ratio_chromium_over_simulated_serial"]) > 0 and float(numbers["chromium_launch_and_close_s"]) > 0
    assert left_by(bench.pid) == [], "browser processes outlived the benchmark"
