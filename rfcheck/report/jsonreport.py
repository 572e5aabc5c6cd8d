"""The machine-readable report: ``rfcheck-report.json`` (schema ``rfcheck-report/1``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from rfcheck.report.files import write_atomically

__all__ = ["FILENAME", "write_json"]

FILENAME = "rfcheck-report.json"


def write_json(report: dict[str, Any], folder: Path, filename: str = FILENAME) -> Path:
    """Write ``report`` as indented UTF-8 JSON into ``folder``; return the file's path."""
    path = Path(folder) / filename
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    write_atomically(path, text)
    return path
