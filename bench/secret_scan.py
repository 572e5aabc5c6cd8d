"""SEC-01's project scan on repositories of ordinary size: N git-tracked files (source files, a
config file holding a placeholder in every tenth), and one 30 MB file padded before its secret.

Prints one ``name value`` line per number: the scan's wall time per size, files per second, and
whether the padded secret was found.

    python3 bench/secret_scan.py              # 2,000 / 4,000 / 8,000 tracked files
    python3 bench/secret_scan.py --quick      # 500 files (what the suite runs)
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from rfcheck.secrets_scan import scan_project

SECRET = "q8ZrDZmDr1vMheumHvtlrCBRoBbdkznxhtBygQKQOdMLYSEzgng4emj63d1ZNMKl"


def repository(folder: Path, files: int) -> None:
    for n in range(files):
        path = folder / f"pkg{n % 40}" / (f"settings_{n}.py" if n % 10 == 0 else f"module_{n}.py")
        path.parent.mkdir(exist_ok=True)
        body = 'CLIENT_SECRET = os.environ["RF_CLIENT_SECRET"]\n' if n % 10 == 0 else ""
        path.write_text("import os\n" + body + "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(30)))
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "add", "."], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    sizes = (500,) if parser.parse_args().quick else (2000, 4000, 8000)
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="rfcheck-bench-") as name:
            folder = Path(name)
            repository(folder, size)
            began = time.perf_counter()
            report = scan_project(folder)
            took = time.perf_counter() - began
            assert report.files == size and not report.hits, report
            print(f"scan_{size}_tracked_files_s {took:.2f}")
            print(f"scan_{size}_files_per_s {size / took:.0f}")
    with tempfile.TemporaryDirectory(prefix="rfcheck-bench-") as name:
        padded = Path(name) / "settings.py"
        with padded.open("w") as out:
            out.write("# " + "padding " * 3_750_000 + "\n" + f'CLIENT_SECRET = "{SECRET}"\n')
        began = time.perf_counter()
        report = scan_project(Path(name))
        print(f"scan_30mb_padded_file_s {time.perf_counter() - began:.2f}")
        print(f"scan_30mb_padded_secret_found {int(len(report.hits) == 1)}")


if __name__ == "__main__":
    main()
