"""The readiness checklist for a person or a CI summary page: ``rfcheck-report.md``.

Rendered from the report object alone (see :func:`rfcheck.report.model.build`), so a
saved JSON report can be rendered again. Text from the run is escaped, so a reason or
a path cannot inject HTML or break a table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rfcheck.catalogue import GROUP_TITLES, GROUPS
from rfcheck.report.files import write_atomically

__all__ = ["FILENAME", "ICONS", "render_markdown", "write_markdown"]

FILENAME = "rfcheck-report.md"
ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "manual": "📝", "accepted": "☑️"}
TITLES = {"ready": "✅ READY", "not-ready": "❌ NOT READY", "incomplete": "⏸️ INCOMPLETE"}
OUTCOME_ICONS = {"completed": "✅", "failed": "❌", "error": "💥", "crashed": "💥", "not-run": "⏭️"}
_OUTPUT_LINES = 20
_SPECIAL = re.compile(r"([\\`*|\[\]])")


def write_markdown(report: dict[str, Any], folder: Path, filename: str = FILENAME) -> Path:
    """Write the checklist into ``folder``; return the file's path."""
    path = Path(folder) / filename
    write_atomically(path, render_markdown(report))
    return path


def render_markdown(report: dict[str, Any]) -> str:
    """The checklist as Markdown text."""
    parts = [_header(report), _checklist(report), _problems(report), _explored(report), _manual(report),
             _scenarios(report)]
    return "\n\n".join(part for part in parts if part) + "\n"


def _md(text: object) -> str:
    """``text`` as inline Markdown: one line, HTML and Markdown syntax escaped."""
    line = " ".join(str(text).split())
    line = _SPECIAL.sub(r"\\\1", line)
    return line.replace("<", "&lt;").replace(">", "&gt;")


def _header(report: dict[str, Any]) -> str:
    target = report["target"]
    title = TITLES.get(report["verdict"], report["verdict"])
    counts = report["summary"]
    lines = [
        f"# Going Live readiness: {title}",
        "",
        f"**Verdict: {report['verdict']}** ({_verdict_reason(report)})",
        "",
        f"Target: **{_md(target.get('name', '?'))}** ({_md(target.get('kind', '?'))}, "
        f"{_md(target.get('flow', '?'))} flow, network {_md(target.get('network', '?'))}) · "
        f"rfcheck {_md(report['rfcheck'])} · generated {_md(report['generated'])}",
        "",
        "| " + " | ".join(f"{ICONS[s]} {s}" for s in counts) + " |",
        "|" + " --- |" * len(counts),
        "| " + " | ".join(str(n) for n in counts.values()) + " |",
    ]
    lines += [f"\n> Note: {_md(note)}" for note in report.get("notes", [])]
    return "\n".join(lines)


def _explored(report: dict[str, Any]) -> str:
    """--rfcheck-explore: the sequences hypothesis found, each with the scenario file that replays it."""
    explored = report.get("explored")
    if explored is None:
        return ""
    replays = f", {explored['replays']} replays while shrinking," if explored.get("replays") else ""
    lines = ["## Explored", "", f"{explored['examples']} sequences{replays} in {explored['seconds']} s (seed "
                                f"{explored['seed']}): "
             + (f"{len(explored['findings'])} requirement(s) broken." if explored["findings"] else
                "no sequence broke a requirement.")]
    for found in explored["findings"]:
        status = "fail" if found["level"] == "must" else "warn"
        lines += ["", f"### {ICONS[status]} {found['id']} ({found['level']}): {_md(found['reason'])}", "",
                  "Shortest sequence: " + " → ".join(f"`{step}`" for step in found["steps"]), ""]
        lines += ["- " + _evidence(item) for item in found["evidence"][:5]]
        lines += ["", _replay_line(found), "", "```toml", found["scenario"].rstrip(), "```"]
    return "\n".join(lines)


def _replay_line(found: dict[str, Any]) -> str:
    """Where the finding's replay file is (a path relative to this report), or how to make one."""
    path = found.get("path")
    if not path:
        return "Replay it (save under your scenarios, list it in `[target] scenarios`):"
    return (f"Replay file: [{_md(path)}](<{path}>), beside this report: list it in `[target] scenarios` to replay "
            "it, and copy it into your project to keep it (the next exploration replaces it). It holds:")


def _verdict_reason(report: dict[str, Any]) -> str:
    failures = sum(r["level"] == "must" and r["status"] == "fail" for r in report["requirements"])
    levels = {r["id"]: r["level"] for r in report["requirements"]}
    unjudged = [rid for rid in report.get("not_judged", []) if levels.get(rid) == "must"]
    if not failures and unjudged:
        return (f"none fails, but {len(unjudged)} must-level requirement{'s were' if len(unjudged) > 1 else ' was'} "
                f"not judged in this run: {', '.join(unjudged)}")
    if not failures:
        return "no must-level requirement fails"
    return f"{failures} must-level requirement{'s' if failures > 1 else ''} {'fail' if failures > 1 else 'fails'}"


def _checklist(report: dict[str, Any]) -> str:
    sections = ["## Checklist"]
    for group, entries in _grouped(report["requirements"]):
        rows = [f"### {group}: {GROUP_TITLES.get(group, group)}", "",
                "| | ID | level | requirement | reason |", "| --- | --- | --- | --- | --- |"]
        rows += [f"| {ICONS[r['status']]} {r['status']} | {r['id']} | {r['level']} | {_md(r['title'])} | "
                 f"{_md(first_line(r.get('reason', '')))} |" for r in entries]
        sections.append("\n".join(rows))
    return "\n\n".join(sections)


def _grouped(entries: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    known = [g for g in GROUPS if any(_group(e) == g for e in entries)]
    extra = sorted({_group(e) for e in entries} - set(GROUPS))
    for group in known + extra:
        yield group, [e for e in entries if _group(e) == group]


def _group(entry: dict[str, Any]) -> str:
    return str(entry["id"]).split("-")[0]


def _problems(report: dict[str, Any]) -> str:
    problems = [r for r in report["requirements"] if r["status"] in ("fail", "warn", "accepted")]
    if not problems:
        return ""
    return "## Failures and warnings\n\n" + "\n\n".join(_problem(r) for r in problems)


def _problem(entry: dict[str, Any]) -> str:
    lines = [f"### {ICONS[entry['status']]} {entry['id']} ({entry['level']}): {_md(entry['title'])}", "",
             _md(entry["reason"]), "", "Evidence:"]
    lines += [f"- {_evidence(item)}" for item in entry["evidence"]]
    lines += ["", f"Remediation: {_md(entry.get('remediation', ''))} (source: {_md(entry.get('source', ''))})"]
    return "\n".join(lines)


def _evidence(item: dict[str, Any]) -> str:
    where = _md(item["scenario"]) + (f" #{item['exchange']}" if item.get("exchange") is not None else "")
    request = f" · {_md(item['request'])}" if item.get("request") else ""
    return f"{where}{request}: {_md(first_line(item['detail']))}"


def first_line(text: str) -> str:
    """The first line of a long text (a stack trace, an output tail): the JSON and HTML reports keep it whole."""
    lines = str(text).strip().splitlines()
    return lines[0] + (" (more in the JSON and HTML reports)" if len(lines) > 1 else "") if lines else ""


def _manual(report: dict[str, Any]) -> str:
    entries = [r for r in report["requirements"] if r["status"] == "manual"]
    if not entries:
        return ""
    lines = ["## To confirm by hand", "",
             "Record each confirmation under `[target.confirm]` in the target config (e.g. `MAN-01 = \"...\"`).", ""]
    lines += [f"- [ ] **{r['id']}** {_md(r['title'])}: {_md(r.get('remediation', ''))}" for r in entries]
    return "\n".join(lines)


def _scenarios(report: dict[str, Any]) -> str:
    if not report["scenarios"]:
        return "## Scenarios\n\nNo scenario ran."
    lines = ["## Scenarios", ""]
    for scenario in report["scenarios"]:
        lines.append(_scenario_line(scenario))
        lines += [f"  - {_md(note)}" for note in scenario.get("notes", [])]
        if scenario["outcome"] in ("failed", "error", "crashed") and scenario.get("output"):
            lines.append(_output_block(scenario["output"]))
    return "\n".join(lines)


def _scenario_line(scenario: dict[str, Any]) -> str:
    icon = OUTCOME_ICONS.get(scenario["outcome"], "•")
    reason = f": {_md(scenario['reason'])}" if scenario.get("reason") else ""
    count = len(scenario["exchanges"])
    return f"- {icon} **{_md(scenario['name'])}** {_md(scenario['outcome'])} ({count} exchanges){reason}"


def _output_block(output: str) -> str:
    tail = "\n".join(output.rstrip().splitlines()[-_OUTPUT_LINES:])
    longest = max((len(run) for run in re.findall(r"`+", tail)), default=0)
    fence = "`" * max(3, longest + 1)
    body = "\n".join(f"  {line}" for line in [fence + "text", *tail.splitlines(), fence])
    return f"\n  Output (last {_OUTPUT_LINES} lines):\n\n{body}\n"
