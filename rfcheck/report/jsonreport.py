"""The machine-readable report: ``rfcheck-report.json`` (schema ``rfcheck-report/1``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["FILENAME", "write_json"]

FILENAME = "rfcheck-report.json"


def write_json(report: dict[str, Any], folder: Path) -> Path:
    """Write ``report`` as indented UTF-8 JSON into ``folder``; return the file's path."""
    path = Path(folder) / FILENAME
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
