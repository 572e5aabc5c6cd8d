"""Reports do not change when rfcheck's code is reshaped: the statuses, reasons and evidence of a few
in-process examples (correct and broken), with what differs between any two runs taken out (times, the
checkout's path, the random tokens' redaction tags), are those recorded in tests/golden/.

A deliberate change of a verdict's words is recorded again with ``RFCHECK_RECORD_GOLDEN=1``, and the
diff of tests/golden/ is then part of the change for review."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
TARGETS = ("examples/httpx_code", "examples/cc_worker", "examples/broken/logs_access_token.toml",
           "examples/broken/keeps_first_refresh_token.toml", "examples/broken/retries_401.toml")


def normalized(report: dict[str, Any]) -> dict[str, Any]:
    def clean(text: str) -> str:
        text = text.replace(str(ROOT), "<checkout>")
        text = re.sub(r"…#[0-9a-f]{4}", "…#<tag>", text)  # the redaction tag of a token minted at random
        return re.sub(r"\b\d+(?:\.\d+)? ?(?:s|ms)\b", "<time>", text)

    return {"verdict": report["verdict"], "not_judged": report.get("not_judged", []),
            "requirements": [{"id": r["id"], "status": r["status"], "reason": clean(r.get("reason", "")),
                              "evidence": json.loads(clean(json.dumps(r.get("evidence", []), ensure_ascii=False)))}
                             for r in report["requirements"]]}


@pytest.mark.parametrize("target", TARGETS)
def test_the_report_is_the_recorded_one(target: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={target}",
                           f"--rfcheck-report={tmp_path}", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"})
    report = json.loads((tmp_path / "rfcheck-report.json").read_text(encoding="utf-8"))
    seen = normalized(report)
    golden = GOLDEN / (target.replace("/", "_").removesuffix(".toml") + ".json")
    if os.environ.get("RFCHECK_RECORD_GOLDEN"):
        golden.write_text(json.dumps(seen, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    recorded = json.loads(golden.read_text(encoding="utf-8"))
    differing = [(old, new) for old, new in zip(recorded["requirements"], seen["requirements"]) if old != new]
    assert (recorded["verdict"], recorded["not_judged"]) == (seen["verdict"], seen["not_judged"]), done.stdout[-2000:]
    assert not differing, json.dumps(differing[:3], indent=1, ensure_ascii=False)
    assert len(recorded["requirements"]) == len(seen["requirements"])
