"""rfcheck.secrets_scan: plaintext client secrets found, placeholders and other secrets left alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rfcheck.secrets_scan import ScanError, is_placeholder, project_files, scan_project

REAL = "q8ZrDZmDr1vMheumHvtlrCBRoBbdkznxhtBygQKQOdMLYSEzgng4emj63d1ZNMKl"  # shaped like an Auth0 secret
WORDY = "s3cr3t-value-123"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def found(folder: Path) -> set[tuple[str, int, str]]:
    return {(hit.path, hit.line, hit.value) for hit in scan_project(folder).hits}


@pytest.mark.parametrize("value", [
    "", "YOUR_CLIENT_SECRET", "changeme", "<secret>", "<your client secret>", "${RF_CLIENT_SECRET}",
    "{client_secret}", "{{ client_secret }}", "env:RF_CLIENT_SECRET", "$RF_SECRET", "xxxxxxxxxxxx",
    "********", "your-client-secret-here", "replace_me_with_the_secret", "short", "%(secret)s",
    "process.env.CLIENT_SECRET", "os.environ['CLIENT_SECRET']",
])
def test_placeholders_are_not_secrets(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("value", [REAL, WORDY, "hunter2hunter2", "Zx81kq0Pd9aL3mNv"])
def test_real_looking_values_are_secrets(value: str) -> None:
    assert not is_placeholder(value)


@pytest.mark.parametrize(("name", "text", "line"), [
    (".env", f"RF_CLIENT_ID=abc\nCLIENT_SECRET={REAL}\n", 2),  # unquoted: detect-secrets alone misses it
    (".env.production", f'# prod\nAUTH0_CLIENT_SECRET="{WORDY}"\n', 2),
    ("settings.py", f'CLIENT_ID = "abc"\nclient_secret = "{WORDY}"\n', 2),
    ("config/app.yaml", f"oauth:\n  client_secret: {WORDY}\n", 2),
    ("app.toml", f'[rf]\nclient_secret = "{WORDY}"\n', 2),
    ("src/auth.ts", f'const clientSecret = "{WORDY}";\n', 1),
    ("src/auth.js", f'module.exports = {{ clientSecret: "{REAL}" }};\n', 1),
    ("app.ini", f"[oauth]\nclient-secret = {REAL}\n", 2),
])
def test_plaintext_client_secrets_are_found(tmp_path: Path, name: str, text: str, line: int) -> None:
    write(tmp_path, name, text)
    hits = found(tmp_path)
    assert {(path, number) for path, number, _ in hits} == {(name, line)}
    assert {value for _, _, value in hits} <= {REAL, WORDY}


def test_placeholders_and_references_pass(tmp_path: Path) -> None:
    write(tmp_path, ".env.example", "CLIENT_SECRET=\nCLIENT_SECRET=YOUR_CLIENT_SECRET\nCLIENT_SECRET=changeme\n"
                                    "CLIENT_SECRET=<secret>\nCLIENT_SECRET=${VAR}\n")
    write(tmp_path, "settings.py", 'import os\nCLIENT_SECRET = os.environ["CLIENT_SECRET"]\n'
                                   'cfg = {"client_secret": "{client_secret}"}\n')
    write(tmp_path, "rfcheck.toml", '[target.env]\nAUTH0_CLIENT_SECRET = "{client_secret}"\n'
                                    'client_id_test = "env:RF_CLIENT_ID_TEST"\n')
    write(tmp_path, "config.yaml", "client_secret: env:RF_SECRET\n")
    assert found(tmp_path) == set()
    assert scan_project(tmp_path).files == 4


def test_other_secrets_are_not_client_secrets(tmp_path: Path) -> None:
    # Not this requirement's business: a database password, a session key, a random hash.
    write(tmp_path, "settings.py", f'DB_PASSWORD = "{WORDY}"\nAUTH0_SECRET = "{REAL}"\nDIGEST = "{REAL}"\n')
    assert found(tmp_path) == set()


def test_allowlist_pragma_is_honoured(tmp_path: Path) -> None:
    write(tmp_path, "settings.py", f'client_secret = "{WORDY}"  # pragma: allowlist secret\n')
    assert found(tmp_path) == set()


def test_vendored_and_cache_folders_are_skipped(tmp_path: Path) -> None:
    for folder in ("node_modules/lib", ".venv/lib", "reports", "__pycache__"):
        write(tmp_path, f"{folder}/config.js", f'const clientSecret = "{WORDY}";\n')
    assert found(tmp_path) == set()
    assert project_files(tmp_path) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_tracked_files_of_any_type_are_scanned(tmp_path: Path) -> None:
    write(tmp_path, "NOTES.md", f'client_secret: "{WORDY}"\n')
    write(tmp_path, "untracked.md", f'client_secret: "{WORDY}"\n')
    assert found(tmp_path) == set()  # no repository: markdown is not a config file
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "NOTES.md"], check=True)
    assert found(tmp_path) == {("NOTES.md", 1, WORDY)}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_folder_raises(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    try:
        with pytest.raises(ScanError, match="cannot read"):
            scan_project(locked)
    finally:
        locked.chmod(0o755)


def test_a_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="not a folder"):
        scan_project(tmp_path / "nowhere")


def test_the_correct_examples_hold_no_secret() -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    for name in ("httpx_code", "requests_code"):
        report = scan_project(examples / name)
        assert report.hits == () and report.files >= 2, report


def test_allowlist_pragma_is_honoured_in_dotenv_files(tmp_path: Path) -> None:
    write(tmp_path, ".env", f"CLIENT_SECRET={REAL}  # pragma: allowlist secret\n")
    assert found(tmp_path) == set()


def test_a_gitignored_untracked_env_file_is_not_judged_but_named(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(tmp_path, ".gitignore", ".env\n")
    write(tmp_path, ".env", f"RF_CLIENT_SECRET={REAL}\n")
    write(tmp_path, ".env.example", f"RF_CLIENT_SECRET={WORDY}\n")  # not ignored: it ships
    report = scan_project(tmp_path)
    assert {(h.path, h.value) for h in report.hits} == {(".env.example", WORDY)}
    assert {(h.path, h.value) for h in report.ignored_hits} == {(".env", REAL)}


def test_outside_a_git_work_tree_every_env_file_is_judged(tmp_path: Path) -> None:
    write(tmp_path, ".env", f"RF_CLIENT_SECRET={REAL}\n")
    report = scan_project(tmp_path)
    assert [h.path for h in report.hits] == [".env"] and not report.ignored_hits


@pytest.mark.parametrize("padding", [2_000_000, 30_000_000])
def test_a_secret_in_a_file_padded_past_a_megabyte_is_found(tmp_path: Path, padding: int) -> None:
    path = tmp_path / "settings.py"
    with path.open("w", encoding="utf-8") as out:
        out.write("# " + "padding " * (padding // 8) + "\n")  # one enormous comment line first
        out.write(f'CLIENT_SECRET = "{REAL}"\n')
    assert found(tmp_path) == {("settings.py", 2, REAL)}


def test_a_secret_after_binary_bytes_is_found(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b"\xff\xfe\x00garbage\n" + f'{{"client_secret": "{REAL}"}}\n'.encode())
    assert found(tmp_path) == {("config.json", 2, REAL)}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_is_asked_once_for_the_whole_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(50):
        write(tmp_path, f"pkg/module_{n}.py", "x = 1\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting(args: list[str], *rest: object, **options: object) -> object:
        calls.append(list(args))
        return real_run(args, *rest, **options)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", counting)
    assert scan_project(tmp_path).files == 50
    assert [c for c in calls if "ls-files" in c] and len([c for c in calls if "ls-files" in c]) == 1, calls
