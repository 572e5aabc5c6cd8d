"""--rfcheck-explore: hypothesis searches the order of Request Finance behaviours that breaks a target.

With the catalogue deselected (-k explore), the exploration alone finds the defect of each broken
example that a sequence can show (the invariants of rfcheck.explore), shrunk to a short sequence;
the correct examples get no finding; it runs as many sequences as asked, shrinking's replays counted
apart, and says how far it is; the replay file it writes beside the reports, listed in the
integration's scenarios, fails the same requirement in a normal run; the seed makes it repeatable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BROKEN = ROOT / "examples" / "broken"
CHECK_REPORT = ROOT.parent / "shared" / "tools" / "check_report.py"


def explore(target: Path, cwd: Path, examples: int, seed: int, *extra: str) -> tuple[int, dict]:
    return explore_run(target, cwd, examples, seed, *extra)[:2]


def explore_run(target: Path, cwd: Path, examples: int, seed: int, *extra: str) -> tuple[int, dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={target}", f"--rfcheck-explore={examples}",
         # a budget no busy machine runs out of: the count of sequences, not the time, bounds these runs
         "--rfcheck-explore-time=400", f"--rfcheck-seed={seed}", "-p", "no:cacheprovider", "-q", *extra],
        cwd=cwd, capture_output=True, text=True, timeout=600)
    report = cwd / "reports" / "rfcheck-report.json"
    assert report.exists(), done.stdout[-3000:] + done.stderr[-2000:]
    return done.returncode, json.loads(report.read_text()), done.stdout


# broken example -> (the requirement a sequence breaks, examples, seed)
FOUND = {
    "api_key_auth": ("AUTH-01", 10, 7),
    "capitalized_network": ("NET-02", 10, 7),
    "hardcoded_test_network": ("NET-03", 10, 7),
    "token_to_telemetry": ("SEC-04", 10, 7),
    "logs_access_token": ("SEC-03", 10, 7),
    "refresh_every_unit": ("TOKEN-01", 10, 7),
    "retries_dead_refresh_token": ("TOKEN-04", 40, 2),  # seed 2 finds it by the 20th sequence
}


@pytest.mark.parametrize("example", list(FOUND))
def test_exploration_alone_finds_the_defect(example: str, tmp_path: Path) -> None:
    requirement_id, examples, seed = FOUND[example]
    code, report = explore(BROKEN / f"{example}.toml", tmp_path, examples, seed, "-k", "explore")
    explored = report["explored"]
    found = {f["id"]: f for f in explored["findings"]}
    assert requirement_id in found, explored
    finding = found[requirement_id]
    assert finding["level"] == "must" and report["verdict"] == "not-ready" and code == 1
    assert finding["steps"][0] == "login" and len(finding["steps"]) <= 6, finding["steps"]
    assert finding["evidence"] and finding["reason"]
    assert finding["scenario"].startswith('description = "Found by rfcheck --rfcheck-explore')
    replay = tmp_path / "reports" / finding["path"]
    assert finding["path"].startswith("rfcheck-explore/") and replay.read_text() == finding["scenario"]
    assert explored["seed"] == seed and explored["examples"] == examples and explored["seconds"] > 0
    markdown = (tmp_path / "reports" / "rfcheck-report.md").read_text()
    assert "## Explored" in markdown and f"{requirement_id} (must)" in markdown and "```toml" in markdown
    assert "<h2>Explored</h2>" in (tmp_path / "reports" / "rfcheck-report.html").read_text()
    if CHECK_REPORT.exists():
        checked = subprocess.run([sys.executable, str(CHECK_REPORT), str(tmp_path / "reports" / "rfcheck-report.json")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("example", ["httpx_code", "cc_worker"])
def test_the_correct_examples_get_no_finding(example: str, tmp_path: Path) -> None:
    code, report = explore(ROOT / "examples" / example, tmp_path, 40, 11, "-k", "explore")
    assert report["explored"]["findings"] == [] and report["explored"]["examples"] == 40
    assert code == 0 and report["verdict"] == "incomplete", "the catalogue was deselected"


def test_it_runs_as_many_sequences_as_asked_and_says_how_far_it_is(tmp_path: Path) -> None:
    replays = tmp_path / "reports" / "rfcheck-explore"
    replays.mkdir(parents=True)
    (replays / "explored_token_03.toml").write_text(  # an earlier exploration's finding, not this run's
        'description = "Found by rfcheck --rfcheck-explore: this order of events breaks TOKEN-03."\nsteps = []\n')
    (replays / "mine.toml").write_text('description = "a scenario someone keeps here"\nsteps = ["login"]\n')
    code, report, stdout = explore_run(BROKEN / "hardcoded_test_network.toml", tmp_path, 20, 7, "-k", "explore")
    explored = report["explored"]
    assert explored["examples"] == 20, "the sequences asked for, whatever shrinking replayed"
    assert explored["replays"] > 0, "NET-03 was broken and shrunk: its replays are counted apart"
    (finding,) = explored["findings"]
    assert finding["id"] == "NET-03" and finding["path"] == "rfcheck-explore/explored_net_03.toml"
    assert sorted(p.name for p in replays.iterdir()) == ["explored_net_03.toml", "mine.toml"]
    assert (replays / "explored_net_03.toml").read_text() == finding["scenario"]
    lines = stdout.splitlines()
    progress = [line for line in lines if line.startswith("rfcheck: explored ")]
    done = [int(line.split()[2]) for line in progress]  # a line after each run of at most 10 sequences
    assert done[-1] == 20 and all(0 < b - a <= 10 for a, b in zip([0, *done], done)), progress
    assert all(line.startswith(f"rfcheck: explored {n} of 20 sequences, ") for n, line in zip(done, progress))
    assert progress[-1].endswith(" s") and "1 requirement(s) broken (NET-03)" in progress[-1]
    assert f"  explored: 20 sequences, {explored['replays']} replays while shrinking, in " in stdout
    assert f"    NET-03 replays with {replays / 'explored_net_03.toml'} (list it in [target] scenarios)" in lines
    assert "removed 1 replay file(s) that an earlier exploration wrote" in stdout
    markdown = (tmp_path / "reports" / "rfcheck-report.md").read_text()
    assert "20 sequences, " in markdown and "(<rfcheck-explore/explored_net_03.toml>)" in markdown
    assert code == 1


def test_the_replay_file_it_writes_replays_the_finding(tmp_path: Path) -> None:
    # the keeps_first_refresh_token example: exploration alone finds TOKEN-03 (two expiries in a row)
    project = tmp_path / "examples" / "broken"  # acme_broken.py builds on ../httpx_code and ../cc_worker
    shutil.copytree(BROKEN, project)
    for folder in ("httpx_code", "cc_worker"):
        shutil.copytree(ROOT / "examples" / folder, tmp_path / "examples" / folder)
    config = project / "keeps_first_refresh_token.toml"
    code, report = explore(config, project, 60, 2, "-k", "explore")  # seed 2 finds it by the 50th sequence
    (finding,) = [f for f in report["explored"]["findings"] if f["id"] == "TOKEN-03"]
    assert code == 1 and report["verdict"] == "not-ready"
    steps = finding["steps"]  # shrunk: two expiries, each followed by work (e.g. login, travel, unit, travel, unit)
    assert steps[0] == "login" and len(steps) <= 6, steps
    assert sum(step.startswith("travel") and step != "travel 1h1m" and step != "travel 12h" for step in steps) >= 2
    # the file the exploration wrote, as it is, listed in the integration's own scenarios
    assert finding["path"] == "rfcheck-explore/explored_token_03.toml"
    config.write_text(config.read_text().replace(
        "[target.python]", 'scenarios = ["reports/rfcheck-explore/*.toml"]\n\n[target.python]'))
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={config}",
                           f"--rfcheck-report={tmp_path / 'replayed'}", "-p", "no:cacheprovider", "-q", "-k",
                           "TOKEN_03"], cwd=project, capture_output=True, text=True, timeout=300)
    replayed = json.loads((tmp_path / "replayed" / "rfcheck-report.json").read_text())
    token_03 = next(r for r in replayed["requirements"] if r["id"] == "TOKEN-03")
    assert token_03["status"] == "fail" and done.returncode == 1, (token_03, done.stdout[-1500:])
    assert "explored_token_03" in {e["scenario"] for e in token_03["evidence"]}


def test_the_seed_makes_it_repeatable(tmp_path: Path) -> None:
    runs = [explore(BROKEN / "hardcoded_test_network.toml", tmp_path / str(i), 5, 42, "-k", "explore")[1]
            for i in range(2) if (tmp_path / str(i)).mkdir() is None]
    assert [[(f["id"], f["steps"]) for f in r["explored"]["findings"]] for r in runs][0] == \
        [(f["id"], f["steps"]) for f in runs[1]["explored"]["findings"]]


def test_a_bad_exploration_option_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={ROOT / 'examples' / 'httpx_code'}",
                           "--rfcheck-explore=many", "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "expected a number of sequences, not 'many'" in done.stderr


def test_the_explored_faults_come_from_the_fault_registry_and_parse_as_steps() -> None:
    """The explorer draws from provider/named_faults.py: a fault added there with ``explored`` arguments is
    explored, and each drawn step is one a scenario file could hold."""
    from rfcheck.explore import FAULTS
    from rfcheck.provider.named_faults import FAULTS as REGISTRY
    from rfcheck.steps import parse_steps

    steps = parse_steps(list(FAULTS), Path("explore"))
    assert [step.args[0] for step in steps] == [name for name, fault in REGISTRY.items() for _ in fault.explored]
    assert {"revoke_refresh_tokens", "token_endpoint_fails", "withhold_scopes", "rotate_signing_key"} <= {
        step.args[0] for step in steps}
    assert not {"id_token", "refresh_id_token"} & {step.args[0] for step in steps}, "their scenarios judge them"
