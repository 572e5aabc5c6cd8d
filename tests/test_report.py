"""Tests for rfcheck.report: the report object, its validation and the three writers."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import rfcheck
from rfcheck.catalogue import CATALOGUE
from rfcheck.journal import redact_value
from rfcheck.report import Evidence, Finding, RunResult, ScenarioRecord, build, write_all
from rfcheck.report.html import render_html, sequence_svg
from rfcheck.report.markdown import render_markdown
from rfcheck.report.model import NOT_RUN, duration

CHECK_REPORT = Path(__file__).resolve().parents[2] / "shared/tools/check_report.py"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHx1c2VyLTEiLCJhdWQiOiJhY2NvdW50cyJ9.c2lnbmF0dXJlLXBhcnQ"
HOSTILE = '<script>alert("x")</script> | [link](javascript:x)'
CODE_TARGET = {"name": "acme-invoices", "kind": "web", "flow": "authorization_code", "network": "test"}


def evidence(detail: str = "no X-Network header", exchange: int | None = 4) -> tuple[Evidence, ...]:
    return (Evidence("baseline", exchange, "GET /invoices", detail),)


def exchange(n: int, origin: str, host: str, method: str, path: str, status: int, note: str = "") -> dict:
    return {"n": n, "at": "2026-11-28T12:00:00.120Z", "from": origin, "to": host, "method": method,
            "path": path, "status": status, "step": "baseline", "note": note}


BASELINE = [
    exchange(1, "browser", "auth", "GET", "/authorize", 302, "response_type=code scope=openid offline_access"),
    exchange(2, "target", "auth", "POST", "/oauth/token", 200, f"issued access {redact_value(TOKEN)}"),
    exchange(3, "target", "api", "GET", "/invoices", 200, "X-Network: test"),
    exchange(4, "target", "api", "GET", "/invoices", 400, "no X-Network header"),
]


def run(findings: list[Finding], target: dict | None = None, scenarios: list | None = None) -> RunResult:
    return RunResult(
        target=target or CODE_TARGET,
        findings={f.id: f for f in findings},
        scenarios=scenarios if scenarios is not None else [ScenarioRecord("baseline", "completed", "", BASELINE)],
        generated=datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc),
    )


def judged(*findings: Finding) -> list[Finding]:
    """A pass for every requirement of the authorization code flow, with ``findings`` instead of some."""
    given = {f.id: f for f in findings}
    return [given.get(req.id, Finding(req.id, "pass", "observed")) for req in CATALOGUE
            if "authorization_code" in req.applies_to]


def statuses(report: dict) -> dict[str, str]:
    return {r["id"]: r["status"] for r in report["requirements"]}


def entry(report: dict, rid: str) -> dict:
    return next(r for r in report["requirements"] if r["id"] == rid)


# build


def test_build_fills_every_id_in_catalogue_order() -> None:
    report = build(run([Finding("NET-01", "pass", "all 3 API calls carried X-Network")]))
    assert [r["id"] for r in report["requirements"]] == [req.id for req in CATALOGUE]
    assert entry(report, "NET-01")["status"] == "pass"
    assert {"status": "skip", "reason": NOT_RUN, "level": "must"}.items() <= entry(report, "AUTH-01").items()
    assert entry(report, "CC-01")["reason"] == "does not apply to the authorization_code flow"
    assert report["summary"] == {"pass": 1, "fail": 0, "warn": 0, "skip": len(CATALOGUE) - 1, "manual": 0,
                                 "accepted": 0}
    # every requirement without a finding that applies to the flow was not judged: never "ready"
    assert "AUTH-01" in report["not_judged"] and "CC-01" not in report["not_judged"]
    assert "NET-01" not in report["not_judged"]
    assert report["verdict"] == "incomplete"


def test_a_run_that_judged_every_must_requirement_is_ready() -> None:
    report = build(run(judged()))
    assert (report["verdict"], report["not_judged"]) == ("ready", [])


def test_a_requirement_not_judged_makes_the_verdict_incomplete_never_ready() -> None:
    unjudged = Finding("TOKEN-02", "skip", "not judged: the target could not be started", judged=False)
    report = build(run(judged(unjudged)))
    assert (report["verdict"], report["not_judged"]) == ("incomplete", ["TOKEN-02"])
    assert entry(report, "TOKEN-02")["status"] == "skip"
    assert "INCOMPLETE" in render_markdown(report) and "READY" not in render_markdown(report).split("INCOMPLETE")[0]
    assert 'class="verdict incomplete"' in render_html(report)


def test_a_should_requirement_not_judged_leaves_the_verdict_ready() -> None:
    report = build(run(judged(Finding("TOKEN-06", "skip", "deselected", judged=False))))
    assert (report["verdict"], report["not_judged"]) == ("ready", ["TOKEN-06"])


def test_a_fail_makes_the_verdict_not_ready_even_when_some_were_not_judged() -> None:
    report = build(run([Finding("NET-01", "fail", "no X-Network", evidence())]))
    assert report["verdict"] == "not-ready"


def test_an_accepted_shortfall_is_counted_and_keeps_its_evidence() -> None:
    accepted = Finding("ORG-02", "accepted", "accepted in [target.accept]: personal invoices only", evidence())
    report = build(run(judged(accepted)))
    assert report["verdict"] == "ready" and report["summary"]["accepted"] == 1
    assert entry(report, "ORG-02")["evidence"][0]["detail"] == "no X-Network header"
    assert "☑️ accepted" in render_markdown(report)


def test_markdown_cells_hold_the_first_line_of_a_stack_trace_and_the_html_all_of_it() -> None:
    trace = "TypeError: x is undefined\n    at handler (app.js:12:3)\n    at next (router.js:9)"
    report = build(run(judged(Finding("REL-01", "fail", "the process went down", evidence(trace)))))
    markdown = render_markdown(report)
    assert "TypeError: x is undefined (more in the JSON and HTML reports)" in markdown
    assert "router.js" not in markdown
    assert "at next (router.js:9)" in render_html(report)


def test_build_top_level_keys() -> None:
    report = build(run([]))
    assert report["schema"] == "rfcheck-report/1"
    assert report["rfcheck"] == rfcheck.__version__
    assert report["generated"] == "2026-11-28T12:00:00Z"
    assert report["target"] == CODE_TARGET
    assert report["scenarios"] == [{"name": "baseline", "outcome": "completed", "reason": "",
                                    "exchanges": BASELINE, "output": "", "notes": []}]
    assert set(entry(report, "NET-01")) == {"id", "title", "level", "status", "reason", "evidence",
                                            "remediation", "source"}


def test_generated_is_utc_with_z() -> None:
    result = run([])
    result.generated = datetime(2026, 11, 28, 13, 30, tzinfo=timezone(timedelta(hours=1, minutes=30)))
    assert build(result)["generated"] == "2026-11-28T12:00:00Z"
    result.generated = datetime(2026, 11, 28, 12, 0, 5)
    assert build(result)["generated"] == "2026-11-28T12:00:05Z"


def test_client_credentials_target_skips_code_only_requirements() -> None:
    target = {**CODE_TARGET, "flow": "client_credentials"}
    report = build(run([Finding("FLOW-03", "pass", "PKCE S256 seen")], target=target))
    found = statuses(report)
    assert found["FLOW-03"] == "pass"  # a finding given wins over "does not apply"
    assert entry(report, "TOKEN-02")["reason"] == "does not apply to the client_credentials flow"
    assert entry(report, "MAN-01")["reason"] == "does not apply to the client_credentials flow"
    assert entry(report, "CC-01")["reason"] == NOT_RUN


def test_must_fail_makes_not_ready() -> None:
    report = build(run([Finding("NET-01", "fail", "1 of 2 API calls had no X-Network", evidence())]))
    assert report["verdict"] == "not-ready"
    assert entry(report, "NET-01")["evidence"] == [
        {"scenario": "baseline", "exchange": 4, "request": "GET /invoices", "detail": "no X-Network header"}]


def test_should_warn_stays_ready() -> None:
    report = build(run(judged(Finding("FLOW-03", "warn", "no code_challenge", evidence("no PKCE", 1)))))
    assert report["verdict"] == "ready"
    assert report["summary"]["warn"] == 1


def test_finding_level_overrides_catalogue_level() -> None:
    token_endpoint = Finding("OIDC-01", "fail", "accepted a bad signature", evidence())
    assert build(run(judged(token_endpoint)))["verdict"] == "ready"  # should-level from the token endpoint
    front_channel = Finding("OIDC-01", "fail", "accepted a bad signature", evidence(), level="must")
    report = build(run(judged(front_channel)))
    assert (entry(report, "OIDC-01")["level"], report["verdict"]) == ("must", "not-ready")


# validation


@pytest.mark.parametrize("kwargs, message", [
    ({"status": "ok", "reason": "x"}, "NET-02: status 'ok'"),
    ({"status": "fail", "reason": "x"}, "NET-02: fail without evidence"),
    ({"status": "warn", "reason": "x"}, "NET-02: warn without evidence"),
    ({"status": "fail", "reason": " ", "evidence": evidence()}, "NET-02: fail without a reason"),
    ({"status": "skip", "reason": ""}, "NET-02: skip without a reason"),
    ({"status": "pass", "reason": "x", "level": "may"}, "NET-02: level 'may'"),
])
def test_invalid_finding_names_the_id(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Finding("NET-02", **kwargs)


def test_pass_and_manual_need_no_reason_or_evidence() -> None:
    assert Finding("NET-02", "pass", "").status == "pass"
    assert Finding("MAN-01", "manual", "").status == "manual"


def test_build_rejects_unknown_or_misfiled_findings() -> None:
    with pytest.raises(KeyError, match="NET-01"):
        build(run([Finding("NET-1", "pass", "")]))
    result = run([])
    result.findings = {"NET-01": Finding("NET-02", "pass", "")}
    with pytest.raises(ValueError, match="NET-02: filed under 'NET-01'"):
        build(result)


# writers


@pytest.fixture()
def report() -> dict:
    findings = [
        Finding("AUTH-01", "pass", "all API calls used Bearer tokens"),
        Finding("NET-01", "fail", f"1 of 2 API calls had no X-Network {HOSTILE}", evidence(f"detail {HOSTILE}")),
        Finding("TOKEN-08", "fail", "refresh token sent to the API",
                evidence(f"Authorization: Bearer {redact_value(TOKEN)}", 3)),
        Finding("SCOPE-02", "warn", "email not requested", evidence("scope=openid", 1)),
        Finding("MAN-02", "manual", "not confirmed in [target.confirm]"),
    ]
    scenarios = [
        ScenarioRecord("baseline", "completed", "", BASELINE),
        ScenarioRecord("expiry", "failed", f"target crashed {HOSTILE}",
                       [exchange(1, "target", "other", "POST", "/collect?q=<b>", 0, HOSTILE)],
                       output=f"Traceback\n```\nValueError: {HOSTILE}"),
    ]
    result = run(findings, scenarios=scenarios)
    result.notes.append("the target's clock could not be moved")
    return build(result)


def test_write_all_creates_the_folder_and_three_files(report: dict, tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "reports"
    paths = write_all(report, folder)
    assert [p.name for p in paths] == ["rfcheck-report.json", "rfcheck-report.md", "rfcheck-report.html"]
    assert json.loads(paths[0].read_text(encoding="utf-8")) == report
    assert paths[0].read_text(encoding="utf-8").startswith('{\n  "schema"')


def test_json_keeps_the_contract(report: dict, tmp_path: Path) -> None:
    if not CHECK_REPORT.is_file():
        pytest.skip(f"{CHECK_REPORT} is not here (shared/ sits beside the repository)")
    path = write_all(report, tmp_path)[0]
    done = subprocess.run([sys.executable, str(CHECK_REPORT), str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "keeps the contract; verdict not-ready" in done.stdout


def test_markdown_checklist(report: dict) -> None:
    text = render_markdown(report)
    assert text.startswith("# Going Live readiness: ❌ NOT READY")
    assert "**Verdict: not-ready** (2 must-level requirements fail)" in text
    assert "| ✅ pass | ❌ fail | ⚠️ warn | ⏭️ skip | 📝 manual |" in text
    assert "| ✅ pass | AUTH-01 | must | Every API call uses OAuth: Authorization: Bearer &lt;token&gt; |" in text
    assert "### NET: The X-Network header" in text
    assert "### ❌ NET-01 (must): Every API call carries X-Network" in text
    assert "Remediation: Send X-Network: test or live on every API call" in text
    assert "- [ ] **MAN-02** Apps section access requested from support: Confirm" in text
    assert "- ❌ **expiry** failed (1 exchanges): target crashed" in text
    assert "> Note: the target's clock could not be moved" in text


def test_markdown_escapes_hostile_text(report: dict) -> None:
    text = render_markdown(report)
    outside_code = re.sub(r"(`{3,})text\n.*?\n *\1", "", text, flags=re.S)
    assert "<script>" not in outside_code
    assert "&lt;script&gt;" in text and r"\| \[link\]" in text
    assert "````text" in text  # the output's own ``` cannot close the fence


def test_html_is_self_contained(report: dict) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert "@import" not in page and "url(" not in page and " src=" not in page
    assert "<link" not in page
    assert "http://" not in page and "https://" not in page
    # one inline script, the only one the page's Content-Security-Policy lets run: by its hash
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 1 and page.count("<script") == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode("ascii")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert policy == f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"


def test_html_shows_verdict_summary_and_grouped_checklist(report: dict) -> None:
    page = render_html(report)
    assert '<header class="verdict not-ready">' in page and "NOT READY" in page
    assert '<span class="chip fail">2 fail</span>' in page
    assert page.index("<h3>AUTH: ") < page.index("<h3>FLOW: ") < page.index("<h3>MAN: ")
    net = page[page.index('id="NET-01"'):page.index('id="NET-02"')]
    assert "<details open>" in net and "Remediation" in net and "baseline #4" in net
    assert "the target&#39;s clock could not be moved" in page


def test_html_sequence_diagram_per_scenario(report: dict) -> None:
    page = render_html(report)
    assert page.count("<svg") == 2
    assert "1. GET /authorize → 302" in page
    assert "2. POST /oauth/token → 200" in page
    assert "4. GET /invoices → 400" in page
    assert 'class="ex st-4xx"' in page and 'class="ex st-none"' in page
    assert "1. POST /collect?q=&lt;b&gt; → —" in page


def test_html_escapes_hostile_text(report: dict) -> None:
    page = render_html(report)
    assert page.count("<script>") == 1 and 'alert("x")' not in page and "<b>" not in page  # the one is the page's
    assert page.count("&lt;script&gt;") >= 6  # reason, evidence, scenario reason, output, svg, table


def test_sequence_svg_grows_for_500_exchanges() -> None:
    rows = [exchange(n, "target", "api", "GET", f"/invoices/{n}", 200) for n in range(1, 501)]
    svg = sequence_svg(rows)
    height = int(re.search(r'height="(\d+)"', svg).group(1))
    assert height > 500 * 30
    assert svg.count("<g class=\"ex") == 500 and "500. GET /invoices/500 → 200" in svg
    assert "no exchanges recorded" in sequence_svg([])


def test_no_whole_token_in_any_written_file(report: dict, tmp_path: Path) -> None:
    paths = write_all(report, tmp_path)
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert TOKEN not in text and TOKEN[:40] not in text, path.name
        assert redact_value(TOKEN) in text, path.name


def test_build_redacts_a_token_a_check_forgot() -> None:
    finding = Finding("SEC-03", "fail", f"logged {TOKEN}", evidence(f"stdout: {TOKEN}", None))
    scenario = ScenarioRecord("baseline", "completed", "", [exchange(1, "target", "api", "GET", "/x", 200, TOKEN)],
                              output=f"DEBUG token={TOKEN}")
    text = json.dumps(build(run([finding], scenarios=[scenario])), ensure_ascii=False)
    assert TOKEN not in text
    assert text.count(redact_value(TOKEN)) == 4


def test_template_ships_inside_the_package() -> None:
    from importlib.resources import files

    assert (files("rfcheck.report") / "templates" / "report.html.j2").is_file()


# html: what a reviewer reads first


def ids_and_fragments(page: str) -> tuple[set[str], list[str]]:
    return set(re.findall(r'\bid="([^"]+)"', page)), re.findall(r'href="#([^"]*)"', page)


def svg_rows(svg: str) -> list[str]:
    """The diagram's arrows and bands in drawing order, each as its first text."""
    return re.findall(r'<g class="(?:ex|mark)[^"]*"[^>]*><title>([^<\n]*)', svg)


def test_html_lists_must_failures_then_should_shortfalls_before_the_checklist(report: dict) -> None:
    page = render_html(report)
    fix, checklist = page.index('<section class="fix" id="fix">'), page.index("<h2>Checklist</h2>")
    assert page.index('<header class="verdict') < fix < checklist
    summary = page[fix:checklist]
    must, should = summary.index("Must: 2 failing"), summary.index("Should: 1 falling short")
    assert must < summary.index('href="#TOKEN-08">TOKEN-08') < summary.index('href="#NET-01">NET-01</a>') < should
    assert should < summary.index('href="#SCOPE-02">SCOPE-02</a>')  # a warning after every must failure
    assert "Remediation:</strong> Send X-Network: test or live on every API call" in summary
    assert 'href="#MAN-02">MAN-02</a>' in summary  # to confirm by hand, linked to its row


def test_html_evidence_links_to_the_exchange_or_its_scenario_and_every_link_has_a_target() -> None:
    findings = judged(
        Finding("NET-01", "fail", "no X-Network", evidence()),  # baseline #4: listed
        Finding("TOKEN-08", "fail", "refresh token on the API", (Evidence("baseline", 99, "GET /x", "not listed"),)),
        Finding("SEC-03", "fail", "logged a token", (Evidence("baseline", None, "stdout", "token in the log"),
                                                     Evidence("explore_3", 2, "GET /y", "an explored run"))))
    page = render_html(build(run(findings)))
    ids, fragments = ids_and_fragments(page)
    assert '<a class="mono" href="#s-baseline-x4">baseline #4</a>' in page
    assert '<a class="mono" href="#s-baseline">baseline #99</a>' in page  # cut from the report: its scenario
    assert '<a class="mono" href="#s-baseline">baseline</a>' in page
    assert '<span class="mono">explore_3 #2</span>' in page  # no such scenario in the report: no link
    assert fragments and not [f for f in fragments if f not in ids]
    assert len(ids) == len(re.findall(r'\bid="', page)), "every id once"


def test_html_scenarios_are_collapsed_behind_an_index_and_each_arrow_has_an_id(report: dict) -> None:
    page = render_html(report)
    assert '<details class="scenario" id="s-baseline">' in page and '<details class="scenario" id="s-expiry">' in page
    assert not re.search(r'<details class="scenario"[^>]* open', page)
    index = page[page.index('<nav class="index"'):page.index("</nav>")]
    assert '<a class="completed" href="#s-baseline">baseline</a>' in index
    assert '<a class="failed" href="#s-expiry">expiry</a>' in index
    assert [f'id="s-baseline-x{n}"' in page for n in (1, 2, 3, 4)] == [True] * 4
    assert 'id="s-expiry-output"' in page  # the target's output: linked from the not-driven block


def test_html_scenario_anchors_are_safe_and_distinct() -> None:
    scenarios = [ScenarioRecord(name, "completed", "", BASELINE[:1]) for name in ("my scenario", "my-scenario", "x<y")]
    page = render_html(build(run([], scenarios=scenarios)))
    assert 'id="s-my-scenario"' in page and 'id="s-my-scenario-1"' in page and 'id="s-x-y"' in page
    assert 'id="s-my-scenario-1-x1"' in page


def test_html_shows_a_note_that_several_scenarios_share_once() -> None:
    shared, pair, own = "instrumentation: in-process", "the clock could not move", "stopped a daemon"
    scenarios = [ScenarioRecord("baseline", "completed", "", BASELINE, notes=[shared, pair]),
                 ScenarioRecord("expiry", "completed", "", BASELINE, notes=[shared, pair, own]),
                 ScenarioRecord("rotation", "completed", "", BASELINE, notes=[shared])]
    page = render_html(build(run([], scenarios=scenarios)))
    assert page.count(shared) == 1 and f'{shared} <span class="meta">(all 3 scenarios)</span>' in page
    assert page.count(pair) == 1 and f'{pair} <span class="meta">(baseline, expiry)</span>' in page
    expiry = page[page.index('id="s-expiry"'):page.index('id="s-rotation"')]
    assert own in expiry and page.count(own) == 1


def test_html_marks_a_clock_travel_read_from_the_exchanges_times() -> None:
    later = [dict(row, n=row["n"] + 2, at="2026-11-29T12:02:00.120Z") for row in BASELINE[2:]]
    scenario = ScenarioRecord("expiry", "completed", "", BASELINE + later)
    rows = svg_rows(render_html(build(run([], scenarios=[scenario]))))
    travel = rows.index("clock +24 h 2 min")
    assert rows[travel - 1].startswith("4. GET /invoices") and rows[travel + 1].startswith("5. GET /invoices")
    assert len([r for r in rows if r.startswith("clock")]) == 1


def test_html_marks_faults_and_travels_that_the_scenario_recorded() -> None:
    steps = [{"kind": "travel", "label": "travel +1.01667 h", "after": 2, "offset": 3660.0,
              "detail": "only the mock's clock moved: the target's clock cannot be moved"},
             {"kind": "fault", "label": "signing key rotated", "after": 2, "offset": 3660.0, "detail": "kid-2"}]
    report = build(run([], scenarios=[ScenarioRecord("key_rotation", "completed", "", BASELINE, steps=steps)]))
    assert report["scenarios"][0]["steps"] == steps
    page = render_html(report)
    rows = svg_rows(page)
    assert rows[1:5] == [rows[1], "clock +1 h 1 min", "fault: signing key rotated", rows[4]]
    assert rows[1].startswith("2. POST") and rows[4].startswith("3. GET")
    assert "clock +1 h 1 min\nonly the mock&#39;s clock moved" in page  # its tooltip says whose clock moved
    assert "1 exchanges" not in page and "clock +1 h 1 min · fault: signing key rotated" in page
    assert "steps" not in build(run([]))["scenarios"][0]  # absent when the scenario recorded none


def test_html_marks_exchanges_the_report_left_out() -> None:
    rows = [exchange(n, "target", "api", "GET", f"/invoices/{n}", 200) for n in (1, 2, 1499, 1500)]
    page = render_html(build(run([], scenarios=[ScenarioRecord("long", "completed", "", rows)])))
    assert svg_rows(page)[2] == "exchanges #3–#1498 not listed"


def test_html_labels_are_cut_at_their_end_and_stay_inside_the_diagram() -> None:
    path = "/authorize?response_type=code&" + "&".join(f"p{i}=value{i}" for i in range(30))
    note = "response_type=code " + " ".join(f"scope{i}" for i in range(60))
    rows = [exchange(1, "browser", "auth", "GET", path, 302, note),
            exchange(2, "other", "other", "POST", "/collect/" + "x" * 120, 200, "a call within the last lane")]
    svg = sequence_svg(rows)
    width = int(re.search(r'width="(\d+)"', svg).group(1))
    texts = re.findall(r'<text class="(label|note)" x="(\d+)" y="\d+">([^<]*)</text>', svg)
    label, shown_note = texts[0][2], texts[1][2]
    assert label.startswith("1. GET /authorize?response_type=code&amp;p0=value0") and label.endswith("…")
    assert shown_note.startswith("response_type=code scope0") and shown_note.endswith("…")
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    assert f"1. GET {path} → 302".replace("&", "&amp;") in titles[0] and note in titles[0]
    for cls, x, text in texts:  # from where it starts, a text's whole width stays inside the diagram
        columns = len(text.replace("&amp;", "&").replace("&#39;", "'"))
        assert 0 < int(x) and int(x) + columns * {"label": 11.5, "note": 10.5}[cls] * 0.6 < width, (cls, x, text)
    assert int(texts[2][1]) < width // 2  # a loop on the last lane is labelled on its left


def test_html_puts_the_undriven_block_first_with_the_apps_own_error() -> None:
    why = ("in the baseline scenario the target sent no request to Request Finance; 1 of its 1 steps failed "
           "(login 1: GET /login led to 500 instead of a redirect to the authorization server)")
    output = ('pid=1 listening\nTraceback (most recent call last):\n  File "app.py", line 48, in refuse_http\n'
              "    raise InsecureTransportError()\nInsecureTransportError: OAuth 2 MUST utilize https.\n")
    blocked = [Finding(rid, "skip", f"not judged: the target could not be started or driven ({why})", judged=False)
               for rid in ("AUTH-01", "NET-01")]
    browser = exchange(1, "browser", "app", "GET", "/login", 500, "the app answered its user with 500")
    scenarios = [ScenarioRecord("baseline", "error", why, [browser], output=output),
                 ScenarioRecord("expiry", "error", why)]
    page = render_html(build(run(judged(*blocked), scenarios=scenarios)))
    block = page.index('<section class="undriven" id="not-driven">')
    assert page.index('<header class="verdict incomplete">') < block < page.index("<h1>") < page.index("Traceback")
    shown = page[block:page.index("</section>", block)]
    assert '<a class="mono" href="#s-baseline-x1">baseline #1</a>' in shown and "GET /login → 500" in shown
    assert why in shown
    assert '<pre>File &#34;app.py&#34;, line 48, in refuse_http\nInsecureTransportError: OAuth 2 MUST utilize' in shown
    assert 'href="#s-baseline-output"' in shown
    net = page[page.index('id="NET-01"'):page.index('id="NET-02"')]  # the why once, at the top, not in every row
    assert why not in net and 'started or driven (<a href="#not-driven">see the top of the page</a>)' in net
    ids, fragments = ids_and_fragments(page)
    assert not [f for f in fragments if f not in ids]


def test_html_undriven_block_of_a_target_whose_work_never_succeeded() -> None:
    why = "in the baseline scenario its login failed (login 1: the callback led to GET /, which answered with 500)"
    result = run(judged(), scenarios=[ScenarioRecord("baseline", "completed", "", BASELINE)])
    result.notes = [f"the target was not driven: {why}; what it was never seen doing is not judged, and the run fails",
                    "another note"]
    page = render_html(build(result))
    shown = page[page.index('id="not-driven"'):page.index("<h1>")]
    assert f"<dd>{why}</dd>" in shown and "none found in its output" in shown
    assert "the target was not driven" not in page[page.index("<h1>"):]  # the block says it, once
    assert "another note" in page
    assert 'id="not-driven"' not in render_html(build(run(judged())))


@pytest.mark.parametrize("seconds, said", [(45, "45 s"), (120, "2 min"), (3660, "1 h 1 min"), (86_520, "24 h 2 min"),
                                           (172_860, "48 h 1 min"), (259_200, "3 d"), (266_400, "3 d 2 h")])
def test_a_travel_reads_as_a_person_says_it(seconds: float, said: str) -> None:
    assert duration(seconds) == said


def test_html_explored_findings_link_their_replay_file_beside_the_report() -> None:
    found = {"id": "NET-03", "level": "must", "steps": ["login", "units 1"], "scenario": 'steps = ["login"]\n',
             "reason": "another network", "evidence": [], "path": "rfcheck-explore/explored_net_03.toml"}
    result = run(judged())
    result.explored = {"examples": 20, "replays": 7, "seconds": 3.5, "seed": 1, "findings": [found]}
    page = render_html(build(result))
    assert "20 sequences,\n  7 replays while shrinking, in 3.5 s" in page
    assert '<a href="rfcheck-explore/explored_net_03.toml"><code>rfcheck-explore/explored_net_03.toml</code></a>' in page
    result.explored["findings"] = [dict(found, path="javascript:alert(1)"), dict(found, path="../../etc/passwd")]
    page = render_html(build(result))
    assert "<code>javascript:alert(1)</code>" in page and 'href="javascript' not in page
    assert "<code>../../etc/passwd</code>" in page and 'href="../' not in page
