"""The HTML report as a reviewer sees it: reports of real rfcheck runs opened in a headless Chromium.

Each check opens a copy of a generated page with a small probe script added (allowed by its hash
beside the page's own in the Content-Security-Policy). The probe runs after the page's script, reads
the laid-out page (positions, computed styles, SVG text boxes, heights) and writes what it found
into ``<body data-probe>``, which ``--dump-dom`` returns. Chromium runs in its own session with a
fresh profile and a deadline; no process of it outlives a check.

Two runs feed them, once per module: a broken example that reuses a rotated refresh token (not
ready, 22 scenarios, clock travels) and a web app whose login answers 500 (not driven).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import toml

ROOT = Path(__file__).resolve().parents[1]
APPS = Path(__file__).parent / "apps"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as root, offline: no sandbox, no GPU, nothing fetched in the background (it stalls on a closed network)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0")
MARKER = "RFCHECK_CHROMIUM_PROFILE"
WINDOW = (1280, 900)
DEADLINE = 60.0


@pytest.fixture(scope="module", autouse=True)
def _chromium_installed() -> None:
    if CHROMIUM is None:
        message = ("no chromium on PATH: apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                   "apt-get install -y -qq chromium")
        if os.environ.get("CI"):
            pytest.fail(f"CI must open the HTML report in a browser: {message}")
        pytest.skip(message)


# -- the reports ------------------------------------------------------------------------------------
def rfcheck_run(config: Path, reports: Path) -> dict[str, Any]:
    """Run rfcheck on ``config`` into ``reports``; its JSON report (the run fails: both targets do)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", "--rfcheck-target", str(config),
                           "--rfcheck-report", str(reports), "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           "-q"], cwd=reports.parent, env=env, capture_output=True, text=True, timeout=300)
    report = reports / "rfcheck-report.json"
    assert report.is_file(), f"no report (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(report.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def not_ready(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("not-ready")
    report = rfcheck_run(ROOT / "examples" / "broken" / "keeps_first_refresh_token.toml", folder / "reports")
    assert report["verdict"] == "not-ready" and len(report["scenarios"]) > 15, report["verdict"]
    return folder / "reports" / "rfcheck-report.html", report


@pytest.fixture(scope="module")
def undriven(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("undriven")
    config = folder / "rfcheck.toml"
    config.write_text(toml({
        "target": {"name": "web-login-500", "kind": "web", "redirect_uri": "http://127.0.0.1:{port}/callback"},
        "target.web": {"start": f'"{sys.executable}" "{APPS / "web_app.py"}"', "url": "http://127.0.0.1:{port}",
                       "actions": ["/invoices"]},
        "target.env": {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
                       "RF_CLIENT_SECRET": "{client_secret}", "RF_REDIRECT_URI": "{redirect_uri}",
                       "PORT": "{port}", "APP_MODE": "login_500"}}))
    report = rfcheck_run(config, folder / "reports")
    assert report["verdict"] == "incomplete", report["verdict"]
    return folder / "reports" / "rfcheck-report.html", report


# -- chromium ---------------------------------------------------------------------------------------
def chromium(url: str, *args: str) -> tuple[str, str]:
    """Chromium's stdout and stderr for ``url``; none of its processes is left when it returns."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="rfcheck-chromium-") as profile:
        # its home is the profile (nothing written to the real one); the marker finds the processes
        # that leave its session (the browser calls setsid), the profile those that drop the environment
        env = {**os.environ, "HOME": profile, MARKER: profile}
        process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            stop_all(profile)
            process.communicate()
            pytest.fail(f"chromium did not finish with {url} within {DEADLINE:.0f} s")
        finally:
            stop_all(profile)
    return out, err


def stop_all(profile: str) -> None:
    """Kill what is left of the run that uses ``profile`` and wait until none of it runs."""
    deadline = time.monotonic() + 5
    while left := processes_of(profile):
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            pytest.fail(f"chromium processes {left} outlived their run")
        time.sleep(0.05)


def processes_of(profile: str) -> list[int]:
    """The live (not zombie) processes that carry ``profile`` in their environment or command line."""
    marker, flag = f"{MARKER}={profile}".encode(), f"--user-data-dir={profile}".encode()
    found = []
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            state = (folder / "stat").read_text().rsplit(")", 1)[1].split()[0]
            mine = marker in (folder / "environ").read_bytes() or flag in (folder / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # it ended while we looked
        if mine and state != "Z":
            found.append(int(folder.name))
    return found


def probe(page: Path, script: str, fragment: str = "") -> dict[str, Any]:
    """Open a copy of ``page`` at ``fragment`` with ``script`` run on load after the page's own script;
    what the script stored with ``report(value)``. The browser must not have refused anything."""
    body = page.read_text(encoding="utf-8")
    code = f'window.addEventListener("load", function () {{ {script} }});\n' \
           "function report(value) { document.body.setAttribute('data-probe', JSON.stringify(value)); }\n"
    digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")
    probed = body.replace("script-src '", f"script-src 'sha256-{digest}' '", 1) \
        .replace("</body>", f"<script>{code}</script>\n</body>")
    assert probed.count("<script>") == 2, "the page has its one script and a policy that names it"
    with tempfile.TemporaryDirectory(prefix="rfcheck-probe-") as folder:
        copy = Path(folder) / page.name
        copy.write_text(probed, encoding="utf-8")
        # virtual time: the DOM is dumped once the page's timers (a probe's own) have run
        out, err = chromium(copy.as_uri() + fragment, "--dump-dom", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                            "--virtual-time-budget=5000")
    refused = [line for line in err.splitlines() if "CONSOLE" in line and ("Content Security Policy" in line
                                                                           or "Refused" in line)]
    assert not refused, refused  # a blocked script (a wrong hash) or a blocked fetch
    start = out.find(' data-probe="')
    assert start >= 0, f"the probe wrote nothing:\n{err[-3000:]}"
    return json.loads(html.unescape(out[start + 13:out.index('"', start + 13)]))


def exchange_id(evidence: dict[str, Any]) -> str:
    return f"s-{evidence['scenario']}-x{evidence['exchange']}"  # the built-in scenarios' names are id-safe


# -- what the page shows ------------------------------------------------------------------------------
def test_the_must_failure_comes_first_with_its_remediation(not_ready: tuple[Path, dict[str, Any]]) -> None:
    page, _ = not_ready
    seen = probe(page, """
        var fix = document.querySelector("#fix article.must"), checklist = document.getElementById("AUTH-01");
        report({fix: fix && fix.getBoundingClientRect().top, checklist: checklist.getBoundingClientRect().top,
                screen: innerHeight, first: document.body.firstElementChild.className,
                text: fix && fix.innerText});""")
    assert seen["first"] == "verdict not-ready"
    assert seen["fix"] is not None and seen["fix"] < seen["checklist"]
    assert seen["fix"] < seen["screen"], "the failure is on the first screen"
    assert "TOKEN-03 (must): Uses the newest refresh token" in seen["text"]
    assert "Remediation: Persist the refresh_token from every refresh response" in seen["text"]


def test_every_link_on_the_page_reaches_an_element(not_ready: tuple[Path, dict[str, Any]],
                                                  undriven: tuple[Path, dict[str, Any]]) -> None:
    script = """
        var links = Array.from(document.querySelectorAll("a[href^='#']"));
        report({links: links.length, evidence: links.filter(function (a) { return /-x\\d+$/.test(a.hash); }).length,
                missing: links.map(function (a) { return decodeURIComponent(a.hash.slice(1)); })
                              .filter(function (id) { return !document.getElementById(id); })});"""
    for page, _ in (not_ready, undriven):
        seen = probe(page, script)
        assert seen["missing"] == [] and seen["evidence"] >= 1, (page, seen)


def test_scenarios_are_collapsed_behind_an_index(not_ready: tuple[Path, dict[str, Any]]) -> None:
    page, report = not_ready
    seen = probe(page, """
        var scenarios = Array.from(document.querySelectorAll("details.scenario"));
        var index = Array.from(document.querySelectorAll("nav.index a"));
        var heading = document.getElementById("scenarios");
        function below() { return document.documentElement.scrollHeight - heading.offsetTop; }
        var out = {scenarios: scenarios.length, open: scenarios.filter(function (d) { return d.open; }).length,
                   indexed: index.filter(function (a) {
                     var target = document.getElementById(a.hash.slice(1));
                     return target && target.matches("details.scenario"); }).length,
                   page: document.documentElement.scrollHeight, collapsed: below()};
        scenarios.forEach(function (d) { d.open = true; });
        out.expanded = below();
        report(out);""")
    assert seen["scenarios"] == seen["indexed"] == len(report["scenarios"])
    assert seen["open"] == 0
    # collapsed, 22 scenarios take a line each under their index; open, their diagrams are 20 screens long
    assert seen["collapsed"] < 2 * WINDOW[1] and seen["collapsed"] * 8 < seen["expanded"], seen
    assert seen["page"] < 9000, seen


def test_an_evidence_link_opens_its_scenario_and_highlights_the_exchange(
        not_ready: tuple[Path, dict[str, Any]]) -> None:
    page, report = not_ready
    evidence = next(r for r in report["requirements"] if r["id"] == "TOKEN-03")["evidence"][0]
    target = exchange_id(evidence)
    seen = probe(page, f"""
        var arrow = document.getElementById("{target}"), box = arrow.getBoundingClientRect();
        var scenario = arrow.closest("details.scenario");
        var others = Array.from(document.querySelectorAll("details.scenario")).filter(function (d) {{
          return d.open && d !== scenario; }});
        var out = {{open: scenario.open, others: others.length, target: arrow.matches(":target"),
                    top: box.top, bottom: box.bottom, screen: innerHeight,
                    stroke: getComputedStyle(arrow.querySelector("line, polyline")).strokeWidth,
                    band: getComputedStyle(arrow.querySelector("rect.hl")).fill,
                    label: arrow.querySelector("text.label").textContent}};
        scenario.open = false;  // the page's own script opens it again on a hashchange
        window.dispatchEvent(new HashChangeEvent("hashchange"));
        out.reopened = scenario.open;
        report(out);""", fragment=f"#{target}")
    assert seen["open"] and seen["others"] == 0 and seen["target"]
    assert 0 <= seen["top"] and seen["bottom"] <= seen["screen"], "scrolled into view"
    assert seen["stroke"] == "3.5px" and seen["band"] == "rgb(255, 248, 197)"
    assert seen["label"].startswith(f"{evidence['exchange']}. {evidence['request']}")
    assert seen["reopened"], "the page's script ran under its Content-Security-Policy"


def test_labels_stay_inside_their_diagram_and_tooltips_hold_the_whole_text(
        not_ready: tuple[Path, dict[str, Any]]) -> None:
    page, report = not_ready
    seen = probe(page, """
        document.querySelectorAll("details").forEach(function (d) { d.open = true; });
        var outside = [], cut = [], texts = 0;
        document.querySelectorAll("svg.seq").forEach(function (svg) {
          var width = svg.viewBox.baseVal.width;
          svg.querySelectorAll("text").forEach(function (text) {
            var box = text.getBBox();
            texts += 1;
            if (box.x < 0 || box.x + box.width > width) outside.push([text.textContent, box.x, box.width]);
            var shown = text.textContent, title = text.parentNode.querySelector("title");
            if (shown.endsWith("\u2026")) cut.push([shown.slice(0, -1), title ? title.textContent : ""]);
          });
        });
        report({texts: texts, outside: outside, cut: cut});""")
    assert seen["texts"] > 500 and seen["outside"] == [], seen["outside"][:5]
    assert seen["cut"], "some notes are longer than the diagram is wide"
    for shown, title in seen["cut"]:
        assert shown in title, (shown, title)  # the tooltip holds what the cut hides
    login = report["scenarios"][0]["exchanges"][0]
    assert any(login["note"] in title for _, title in seen["cut"]), login["note"]


def test_clock_travels_are_bands_in_the_diagram(not_ready: tuple[Path, dict[str, Any]]) -> None:
    page, _ = not_ready
    seen = probe(page, """
        var rows = Array.from(document.querySelectorAll("#s-expiry svg g.ex, #s-expiry svg g.mark"));
        report(rows.map(function (g) { return g.querySelector("text").textContent; }));""")
    travels = [i for i, row in enumerate(seen) if row.startswith("clock +")]
    assert [seen[i] for i in travels] == ["clock +2 min"] + ["clock +4 h"] * 6, seen
    refresh = next(i for i, row in enumerate(seen) if "POST /oauth/token" in row and i > travels[0])
    assert travels[-1] < refresh, "the refresh comes after the last travel"


def test_a_note_every_scenario_carries_is_shown_once(not_ready: tuple[Path, dict[str, Any]]) -> None:
    page, report = not_ready
    note = report["scenarios"][0]["notes"][0]
    assert all(note in s["notes"] for s in report["scenarios"])
    seen = probe(page, f"""
        document.querySelectorAll("details").forEach(function (d) {{ d.open = true; }});
        report(document.body.innerText.split({json.dumps(note)}).length - 1);""")
    assert seen == 1


def test_an_undriven_target_is_explained_first_in_its_own_words(undriven: tuple[Path, dict[str, Any]]) -> None:
    page, _ = undriven
    seen = probe(page, """
        var block = document.getElementById("not-driven"), output = document.getElementById("s-baseline-output");
        var out = {after: block.previousElementSibling.className, top: block.getBoundingClientRect().bottom,
                   screen: innerHeight, text: block.innerText,
                   traceback: document.body.innerText.indexOf("Traceback (most recent call last)"),
                   link: block.querySelector("a[href='#s-baseline-output']") !== null};
        block.querySelector("a[href='#s-baseline-output']").click();  // the whole output opens
        setTimeout(function () {
          out.output = output.open && output.closest("details.scenario").open;
          report(out);
        }, 100);""")
    assert seen["after"] == "verdict incomplete" and seen["top"] < seen["screen"]
    assert "GET /login led to 500 instead of a redirect to the authorization server" in seen["text"]
    assert "InsecureTransportError: (insecure_transport) OAuth 2 MUST utilize https." in seen["text"]
    assert 'File "' in seen["text"] and "in refuse_http" in seen["text"]
    assert seen["traceback"] == -1, "the app's whole output stays folded until asked for"
    assert seen["link"] and seen["output"]
