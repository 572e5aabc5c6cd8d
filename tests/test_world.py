"""Tests for rfcheck.world: an integration that keeps its token in one store shared by every instance
(tests/apps/shared_cache_worker.py, a cache file at a fixed path) presents tokens across scenarios; rfcheck
finds the crossing, judges the scenario again on one shared world, names the sharing and the way to
isolate it, and never fails AUTH-02 or TOKEN-01 for it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import toml

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).parent / "apps" / "shared_cache_worker.py"


def _run(tmp_path: Path, cache: str) -> tuple[int, dict, str]:
    config = tmp_path / "rfcheck.toml"
    config.write_text(toml({
        "target": {"name": "shared-cache-worker", "kind": "command", "flow": "client_credentials", "project": "."},
        "target.command": {"run": f'"{sys.executable}" "{WORKER}"'},
        "target.env": {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
                       "RF_CLIENT_SECRET": "{client_secret}", "RF_NETWORK": "test", "CACHE_FILE": cache}}))
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={config}",
                           f"--rfcheck-report={tmp_path / 'reports'}", "-p", "no:cacheprovider",
                           "-p", "no:hypothesispytest", "-q", "-k", "AUTH or TOKEN or CC"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    return done.returncode, json.loads((tmp_path / "reports" / "rfcheck-report.json").read_text()), done.stdout


def test_a_token_store_shared_by_every_instance_is_judged_on_one_shared_world(tmp_path: Path) -> None:
    code, report, stdout = _run(tmp_path, str(tmp_path / "one-cache-for-all.json"))
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert {i: statuses[i] for i in ("AUTH-01", "AUTH-02", "AUTH-03", "CC-01", "CC-03", "TOKEN-01")} == dict.fromkeys(
        ("AUTH-01", "AUTH-02", "AUTH-03", "CC-01", "CC-03", "TOKEN-01"), "pass"), json.dumps(
        [r for r in report["requirements"] if r["status"] == "fail"], indent=1)[:3000]
    assert code == 0, stdout[-2000:]
    shared = [n for n in report["notes"] if "judged again on one shared world" in n]
    assert shared, report["notes"]
    assert "keeps its tokens outside its process" in shared[0] and "{state_dir}" in shared[0]
    assert "presented tokens of" in shared[0], "it names which scenarios shared"
    assert "judged again on one shared world" in stdout, "named in the terminal too"


def test_a_store_of_its_own_per_scenario_crosses_nothing(tmp_path: Path) -> None:
    code, report, _ = _run(tmp_path, "{state_dir}/cache.json")
    assert code == 0 and not [n for n in report["notes"] if "shared world" in n], report["notes"]
    assert {r["id"]: r["status"] for r in report["requirements"]}["AUTH-02"] == "pass"


SHARED = {
    "cc_worker_shared_cache": ROOT / "examples" / "cc_worker_shared_cache",
    "web_shared_store": ROOT / "examples" / "web_shared_store",
}


def _judge(config: Path, report_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={config}",
                           f"--rfcheck-report={report_dir}", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads((report_dir / "rfcheck-report.json").read_text())
    assert done.returncode == (1 if report["verdict"] == "not-ready" else 0), done.stdout[-2000:]
    return report


@pytest.mark.parametrize("example", list(SHARED))
def test_an_example_with_a_shared_store_is_judged_as_with_a_store_per_scenario(example: str, tmp_path: Path) -> None:
    # the same correct app, its store shared by every instance (rfcheck.toml) or one per scenario (isolated.toml)
    shared = _judge(SHARED[example] / "rfcheck.toml", tmp_path / "shared")
    isolated = _judge(SHARED[example] / "isolated.toml", tmp_path / "isolated")
    statuses = {r["id"]: r["status"] for r in shared["requirements"]}
    assert statuses == {r["id"]: r["status"] for r in isolated["requirements"]}, json.dumps(
        [r for r in shared["requirements"] if r["status"] in ("fail", "warn", "skip")], indent=1)[:4000]
    assert (shared["verdict"], shared["not_judged"]) == ("ready", []) == (isolated["verdict"], isolated["not_judged"])
    assert any("Every scenario was judged again on one shared world" in n for n in shared["notes"]), shared["notes"]
    assert not any("shared world" in n for n in isolated["notes"]), isolated["notes"]
