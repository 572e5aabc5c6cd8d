"""What an explored sequence costs: seconds per example for an in-process and a web target.

Runs `pytest --rfcheck --rfcheck-explore=N -k explore` (the exploration alone, a fixed seed) on
the correct httpx example (in-process: respx and freezegun) and on the Flask + Authlib example (a
web process per sequence, driven as a browser, its clock moved by rfcheck's sitecustomize), and
prints one `name value` line per number: `<target>_examples`, `<target>_seconds`,
`<target>_seconds_per_example` and `ratio_web_over_inprocess`. A finding on a correct example
fails the run (exit 1): that would be a false alarm. `--quick` explores 3 sequences each, for the
test suite; nothing is asserted on the numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"inprocess": ROOT / "examples" / "httpx_code", "web": ROOT / "examples" / "flask_app"}


def explore(target: Path, examples: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="rfcheck-bench-") as folder:
        subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={target}",
                        f"--rfcheck-explore={examples}", f"--rfcheck-seed={seed}", "--rfcheck-explore-time=600",
                        "-k", "explore", "-q", "-p", "no:cacheprovider"], cwd=folder, capture_output=True,
                       text=True, timeout=1200)
        report = json.loads((Path(folder) / "reports" / "rfcheck-report.json").read_text())
    return report["explored"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--examples", type=int, default=30, help="sequences per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3 sequences per target (for the test suite)")
    args = parser.parse_args(argv)
    examples = 3 if args.quick else args.examples
    per_example = {}
    false_alarm = False
    for name, target in TARGETS.items():
        explored = explore(target, examples, args.seed)
        per_example[name] = explored["seconds"] / max(explored["examples"], 1)
        print(f"{name}_examples {explored['examples']}")
        print(f"{name}_seconds {explored['seconds']:.1f}")
        print(f"{name}_seconds_per_example {per_example[name]:.3f}")
        if explored["findings"]:
            false_alarm = True
            print(f"# false alarm on {target.name}: {[f['id'] for f in explored['findings']]}", file=sys.stderr)
    print(f"ratio_web_over_inprocess {per_example['web'] / max(per_example['inprocess'], 1e-9):.1f}")
    return 1 if false_alarm else 0


if __name__ == "__main__":
    raise SystemExit(main())
