"""``rfcheck report REPORT.json``: render a saved report again, or compare two runs.

``rfcheck report REPORT.json [--out DIR]`` writes ``rfcheck-report.md`` and ``rfcheck-report.html``
from the JSON report with the same renderers as the run (:mod:`rfcheck.report`), next to it or in
DIR. ``rfcheck report NEW.json --compare OLD.json`` prints what changed between two runs: the newly
failing must requirements first, then the should ones newly short, the fixed ones, the other status
changes, the verdict, and the requirements newly not judged. It exits 1 on a regression (a must
requirement newly failing, or a worse verdict: ready, then incomplete, then not-ready, then a run
whose target could not be driven), else 0. A file that is missing, not JSON or
not an ``rfcheck-report/1`` report is an input error naming it (exit 3).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from rfcheck.commands import EXIT_FAILED, EXIT_OK, UsageError
from rfcheck.report import write_html, write_markdown
from rfcheck.report.model import SCHEMA, STATUSES

__all__ = ["Changes", "add_arguments", "compare", "load_report", "run"]

# best first: a verdict further down this list is worse
VERDICTS = ("ready", "incomplete", "not-ready")
FAILING = ("fail", "warn")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write rfcheck-report.md and rfcheck-report.html again from a saved rfcheck-report.json, or, with "
        "--compare, print what changed since an older run (exit 1 on a regression: a must requirement newly "
        "failing or a worse verdict).")
    parser.add_argument("report", metavar="REPORT.json", help="an rfcheck-report.json (schema rfcheck-report/1)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--out", metavar="DIR",
                        help="where the Markdown and HTML reports go (default: the JSON report's folder)")
    action.add_argument("--compare", metavar="OLD.json",
                        help="an older run's report: print what changed from it to REPORT.json instead of rendering")


def run(args: argparse.Namespace) -> int:
    new = load_report(Path(args.report))
    if args.compare is not None:
        changes = compare(load_report(Path(args.compare)), new)
        print(changes.text(args.compare, args.report))
        return EXIT_FAILED if changes.regressions else EXIT_OK
    folder = Path(args.out) if args.out is not None else Path(args.report).parent
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {args.out}: not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {folder}: cannot create it: {err.strerror or err}") from None
    written = []
    for write in (write_markdown, write_html):
        try:
            written.append(write(new, folder))
        except (KeyError, TypeError, ValueError, AttributeError, TemplateError) as err:
            # load_report checked what every report has; this is a deeper part the renderers need
            raise UsageError(f"{args.report}: cannot render it ({type(err).__name__}: {err}): "
                             "not a complete rfcheck-report/1 report") from None
        except OSError as err:
            raise UsageError(f"cannot write into {folder}: {err.strerror or err}") from None
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


def load_report(path: Path) -> dict[str, Any]:
    """The report in ``path``, checked to be an ``rfcheck-report/1`` report; a UsageError naming the file else."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, not a JSON report") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: cannot read it: {getattr(err, 'strerror', None) or err}") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}: invalid JSON: {err}") from None
    if not isinstance(report, dict):
        raise UsageError(f"{path}: not an {SCHEMA} report: the JSON is a {type(report).__name__}, not an object")
    if "schema" not in report:
        raise UsageError(f"{path}: not an {SCHEMA} report: it has no \"schema\"")
    if report["schema"] != SCHEMA:
        raise UsageError(f"{path}: not an {SCHEMA} report: its schema is {report['schema']!r}")
    problem = _problem(report)
    if problem:
        raise UsageError(f"{path}: not a valid {SCHEMA} report: {problem}")
    return report


def _problem(report: dict[str, Any]) -> str:
    """What makes ``report`` unusable, or ""."""
    for key, kind in (("rfcheck", str), ("generated", str), ("target", dict), ("verdict", str), ("summary", dict),
                      ("requirements", list), ("scenarios", list)):
        if not isinstance(report.get(key), kind):
            return f"{key!r} is missing or not a {'string' if kind is str else 'list' if kind is list else 'object'}"
    if report["verdict"] not in VERDICTS:
        return f"verdict {report['verdict']!r} is not one of {', '.join(VERDICTS)}"
    not_judged = report.get("not_judged", [])
    if not isinstance(not_judged, list) or not all(isinstance(rid, str) for rid in not_judged):
        return "'not_judged' is not a list of requirement IDs"
    seen: set[str] = set()
    for number, entry in enumerate(report["requirements"]):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) for key in ("id", "level", "status")):
            return f"requirements[{number}] lacks a string id, level or status"
        if entry["status"] not in STATUSES:
            return (f"requirements[{number}] ({entry['id']}) has status {entry['status']!r}, "
                    f"not one of {', '.join(STATUSES)}")
        if entry["id"] in seen:
            return f"{entry['id']} is listed twice in requirements"
        seen.add(entry["id"])
    return ""


class Changes:
    """What changed from the ``old`` run to the ``new`` one, by requirement ID."""

    def __init__(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.old, self.new = old, new
        before = {entry["id"]: entry for entry in old["requirements"]}
        after = {entry["id"]: entry for entry in new["requirements"]}
        # (entry now, status before or None when the ID is new), in the new report's (catalogue) order
        self.newly_failing: list[tuple[dict[str, Any], str | None]] = []
        self.fixed: list[tuple[dict[str, Any], str | None]] = []
        self.other: list[tuple[dict[str, Any], str | None]] = []
        for rid, entry in after.items():
            was = before[rid]["status"] if rid in before else None
            now = entry["status"]
            if was == now:
                continue
            if now in FAILING and (was not in FAILING or (was, now) == ("warn", "fail")):
                self.newly_failing.append((entry, was))
            elif was in FAILING and now == "pass":
                self.fixed.append((entry, was))
            else:
                self.other.append((entry, was))
        self.removed = [entry for rid, entry in before.items() if rid not in after]
        old_unjudged = set(old.get("not_judged", []))
        self.newly_not_judged = [after.get(rid, {"id": rid, "level": "?"}) for rid in new.get("not_judged", [])
                                 if rid not in old_unjudged]
        self.verdict_before, self.verdict_now = old["verdict"], new["verdict"]
        self.regressions = [f"{entry['id']} (must) newly fails" for entry, was in self.newly_failing
                            if entry["level"] == "must" and entry["status"] == "fail"]
        self.verdict_before, self.verdict_now = _verdict(old), _verdict(new)
        if rank(new) > rank(old):
            self.regressions.append(f"the verdict got worse ({self.verdict_before} -> {self.verdict_now})")
        self.must_failing = [(e, was) for e, was in self.newly_failing if e["level"] == "must"]
        self.should_failing = [(e, was) for e, was in self.newly_failing if e["level"] != "must"]

    def text(self, old_name: str, new_name: str) -> str:
        lines = [f"Comparing {new_name} (generated {self.new['generated']}) with {old_name} "
                 f"(generated {self.old['generated']})"]
        old_target, new_target = self.old["target"].get("name"), self.new["target"].get("name")
        if old_target != new_target:
            lines.append(f"Note: the runs are of different targets ({old_target} before, {new_target} now)")
        lines += _section("Newly failing (must)", self.must_failing, reasons=True)
        lines += _section("Newly short of a should", self.should_failing, reasons=True)
        lines += _section("Fixed", self.fixed)
        lines += _section("Other status changes", self.other, reasons=True)
        if self.removed:
            lines.append(f"No longer in the report ({len(self.removed)}): "
                         + ", ".join(f"{entry['id']} (was {entry['status']})" for entry in self.removed))
        if not (self.newly_failing or self.fixed or self.other or self.removed):
            lines.append("No requirement changed status.")
        if self.verdict_now == self.verdict_before:
            lines.append(f"Verdict: {self.verdict_now} (unchanged)")
        else:
            better = rank(self.new) < rank(self.old)
            lines.append(f"Verdict: {self.verdict_before} -> {self.verdict_now} ({'better' if better else 'worse'})")
        if self.newly_not_judged:
            lines.append(f"Newly not judged ({len(self.newly_not_judged)}): "
                         + ", ".join(f"{entry['id']} ({entry['level']})" for entry in self.newly_not_judged))
        if self.regressions:
            lines.append("Regression: " + "; ".join(self.regressions) + ".")
        else:
            lines.append("No regression.")
        return "\n".join(lines)


def _section(title: str, changes: list[tuple[dict[str, Any], str | None]], reasons: bool = False) -> list[str]:
    if not changes:
        return []
    lines = [f"{title} ({len(changes)}):"]
    for entry, was in changes:
        reason = " ".join(str(entry.get("reason") or "").split())
        line = f"  {entry['id']} ({entry['level']}): {was or 'new'} -> {entry['status']}"
        lines.append(f"{line}: {reason}" if reasons and reason else line)
    return lines


NOT_DRIVEN = "not driven"  # worse than every judged verdict: nothing of the target was seen working


def driven(report: dict[str, Any]) -> bool:
    """False for a run whose target could not be started or driven (its notes or reasons say so)."""
    if any(str(note).startswith("the target was not driven") for note in report.get("notes", [])):
        return False
    return not any("could not be started or driven" in str(r.get("reason", "")) for r in report["requirements"])


def _verdict(report: dict[str, Any]) -> str:
    verdict = str(report["verdict"])
    return f"{verdict}, {NOT_DRIVEN}" if verdict != "not-ready" and not driven(report) else verdict


def rank(report: dict[str, Any]) -> int:
    """0 best: ready, incomplete, not-ready, then a target that could not be driven."""
    return len(VERDICTS) if not driven(report) and report["verdict"] != "not-ready" else \
        VERDICTS.index(report["verdict"])


def compare(old: dict[str, Any], new: dict[str, Any]) -> Changes:
    """What changed from ``old`` to ``new`` (two checked reports)."""
    return Changes(old, new)
