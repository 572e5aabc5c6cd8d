"""Readiness reports: the report object and its three renderings.

:func:`rfcheck.report.model.build` turns a run's findings and scenarios into the
``rfcheck-report/1`` object; :func:`write_all` writes it as JSON, Markdown and one
self-contained HTML page. Everything written comes from that object, which holds only
redacted values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rfcheck.report.html import write_html
from rfcheck.report.jsonreport import write_json
from rfcheck.report.markdown import write_markdown
from rfcheck.report.model import Evidence, Finding, RunResult, ScenarioRecord, build

__all__ = [
    "Evidence", "Finding", "RunResult", "ScenarioRecord", "build",
    "write_all", "write_html", "write_json", "write_markdown",
]


def write_all(report: dict[str, Any], folder: Path) -> list[Path]:
    """Create ``folder`` if needed and write the JSON, Markdown and HTML reports into it."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    return [write_json(report, target), write_markdown(report, target), write_html(report, target)]
