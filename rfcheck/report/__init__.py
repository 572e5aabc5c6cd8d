"""Readiness reports: the report object and its three renderings.

:func:`rfcheck.report.model.build` turns a run's findings and scenarios into the
``rfcheck-report/1`` object; :func:`write_all` writes it as JSON, Markdown and one
self-contained HTML page. Everything written comes from that object, which holds only
redacted values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rfcheck.report.html import write_html
from rfcheck.report.jsonreport import write_json
from rfcheck.report.markdown import write_markdown
from rfcheck.report.model import NOT_RUN, Evidence, Finding, RunResult, ScenarioRecord, build

__all__ = [
    "Evidence", "Finding", "RunResult", "ScenarioRecord", "build",
    "full_report_kept", "is_partial", "write_all", "write_html", "write_json", "write_markdown",
]


PARTIAL = "rfcheck-report-partial"  # the name of a partial run's reports beside a full run's


def write_all(report: dict[str, Any], folder: Path, stem: str = "rfcheck-report") -> list[Path]:
    """Create ``folder`` if needed and write the JSON, Markdown and HTML reports into it, named ``stem``."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    return [write_json(report, target, f"{stem}.json"), write_markdown(report, target, f"{stem}.md"),
            write_html(report, target, f"{stem}.html")]


def is_partial(report: dict[str, Any]) -> bool:
    """A report of a run that judged only some requirements (``-k``, an exploration alone)."""
    return any(r.get("reason") == NOT_RUN for r in report.get("requirements", []))


def full_report_kept(folder: Path) -> str:
    """The ``generated`` time of the full report in ``folder``, or "" when there is none to keep."""
    try:
        existing = json.loads((Path(folder) / "rfcheck-report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(existing, dict) or is_partial(existing):
        return ""
    return str(existing.get("generated") or "an earlier run")
