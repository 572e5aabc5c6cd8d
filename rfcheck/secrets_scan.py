"""Find plaintext client secrets in an integration's project folder (SEC-01).

The detection is Yelp's detect-secrets: its ``KeywordDetector`` finds secret-sounding
assignments (``client_secret = "..."``) and its entropy plugins find random-looking
strings. rfcheck keeps the hits that are a *client secret*: the value is assigned to a key
that names one (``CLIENT_SECRET``, ``clientSecret``, ``AUTH0_CLIENT_SECRET``…) and is not
a placeholder (``YOUR_CLIENT_SECRET``, ``changeme``, ``<secret>``, ``${VAR}``, ``env:NAME``,
empty). Files: the git-tracked ones when the folder is in a git repository, plus every
``.env*`` and config/source file on disk (SEC-01 in rfcheck/catalogue.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from detect_secrets import SecretsCollection
from detect_secrets.plugins.keyword import CONFIG_DENYLIST_REGEX_TO_GROUP, KeywordDetector
from detect_secrets.settings import transient_settings

__all__ = ["ScanError", "ScanReport", "SecretHit", "is_placeholder", "project_files", "scan_project"]

SKIPPED_DIRS = frozenset({"node_modules", ".venv", "venv", ".git", "reports", "__pycache__", ".mypy_cache",
                          ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".hypothesis", "site-packages"})
CONFIG_SUFFIXES = frozenset({".toml", ".yaml", ".yml", ".json", ".ini", ".cfg", ".conf", ".properties",
                             ".py", ".js", ".mjs", ".cjs", ".ts", ".env"})
MAX_FILE_BYTES = 1_000_000  # a file this size or less is read whole by detect-secrets; a larger one is streamed
READ_LINE = 1024 * 1024  # a longer line is read (and searched) in pieces of this many bytes
SHORTEST_SECRET = 8  # as the journal's redaction: shorter values are no real client secret
PLUGINS = [{"name": "KeywordDetector"}, {"name": "Base64HighEntropyString", "limit": 4.5},
           {"name": "HexHighEntropyString", "limit": 3.0}]

# A key naming a client secret: client_secret, CLIENT_SECRET, clientSecret, client-secret, client.secret.
_CLIENT_SECRET_KEY = re.compile(r"client[._-]?secret", re.IGNORECASE)
_TEMPLATE = re.compile(r"^(\$\{.*\}|\$\w+|\{\{.*\}\}|\{.*\}|<.*>|%\(.*\)s|\[\[.*\]\])$", re.DOTALL)
_REFERENCE = re.compile(r"^(env:|vault:|op://|secret:|ssm:|arn:aws:secretsmanager|process\.env|os\.environ"
                        r"|os\.getenv|getenv\(|ENV\[|\$\()", re.IGNORECASE)
_ALLOWLISTED = "pragma: allowlist secret"  # detect-secrets' inline allowlist comment
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
PLACEHOLDER_WORDS = frozenset({
    "your", "my", "our", "the", "a", "an", "client", "secret", "app", "oauth", "auth0", "rf", "request",
    "finance", "here", "goes", "change", "changeme", "me", "replace", "replaceme", "placeholder", "example",
    "sample", "dummy", "fake", "test", "todo", "tbd", "fixme", "redacted", "insert", "put", "enter", "set",
    "none", "null", "nil", "undefined", "empty", "value", "string", "key", "default", "not", "real", "dev",
    "prod", "production", "staging", "live", "xxx", "env", "from", "vault", "manager", "in", "of", "to",
    "with", "for", "this", "that", "actual", "own", "new", "paste", "generated",
})


class ScanError(Exception):
    """The project folder cannot be read at all."""


@dataclass(frozen=True)
class SecretHit:
    """A plaintext client secret: where it is and its value (redact before showing it)."""

    path: str  # relative to the scanned folder, with forward slashes
    line: int
    value: str
    found_by: str  # the detect-secrets plugin's secret type


@dataclass(frozen=True)
class ScanReport:
    folder: Path
    files: int
    hits: tuple[SecretHit, ...]
    unreadable: tuple[str, ...] = ()
    ignored_hits: tuple[SecretHit, ...] = ()  # in files git ignores: not part of what ships, not judged


# -- placeholders ----------------------------------------------------------------------
def is_placeholder(value: str) -> bool:
    """True for values that stand in for a secret rather than being one."""
    value = value.strip().strip("'\"`").strip()
    if len(value) < SHORTEST_SECRET or not re.search(r"[A-Za-z0-9]", value):
        return True
    if _TEMPLATE.match(value) or _REFERENCE.match(value):
        return True
    words = [w.lower() for w in _WORD.findall(value)]
    return all(w in PLACEHOLDER_WORDS or set(w) <= {"x"} or w.isdigit() and len(w) < 4 for w in words)


# -- which files -----------------------------------------------------------------------
def _skipped(relative: Path) -> bool:
    return any(part in SKIPPED_DIRS for part in relative.parts[:-1])


def _is_config(name: str) -> bool:
    return name.startswith(".env") or Path(name).suffix.lower() in CONFIG_SUFFIXES


def _git_tracked(folder: Path) -> list[Path]:
    """Files git tracks under ``folder``; empty when it is not in a repository or git is missing."""
    try:
        done = subprocess.run(["git", "-C", str(folder), "ls-files", "-z", "--cached"], capture_output=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return [Path(p) for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def git_ignored(folder: Path, files: list[Path]) -> set[Path]:
    """Which of ``files`` (untracked) git ignores; none outside a work tree or without git."""
    if not files:
        return set()
    paths = b"\0".join(str(p).encode("utf-8", "surrogateescape") for p in files)
    try:
        done = subprocess.run(["git", "-C", str(folder), "check-ignore", "-z", "--stdin"], input=paths,
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return set()
    if done.returncode not in (0, 1):  # 1: none ignored; 128: not a work tree
        return set()
    return {Path(p) for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p}


def _config_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            if _is_config(name):
                yield (Path(root) / name).relative_to(folder)


def project_files(folder: Path) -> list[Path]:
    """Git-tracked files plus ``.env*`` and config files on disk, relative to ``folder``, sorted."""
    try:
        with os.scandir(folder) as entries:
            next(entries, None)
    except OSError as err:
        raise ScanError(f"cannot read {folder}: {err.strerror or err}") from None
    return _project_files(folder, set(_git_tracked(folder)))


def _project_files(folder: Path, tracked: set[Path]) -> list[Path]:
    found = tracked | set(_config_files(folder))
    return sorted(p for p in found if not _skipped(p) and (folder / p).is_file())


# -- scanning --------------------------------------------------------------------------
def _lines(path: Path) -> tuple[list[tuple[int, str]], bool] | None:
    """The lines of ``path`` that could hold a hit (they name a client secret), with their numbers, and
    whether the file is small enough for detect-secrets to read whole; None when it cannot be read.

    Streamed whatever its size (a secret in a file padded past a megabyte is found), a line longer than
    :data:`READ_LINE` bytes in pieces; bytes that are not UTF-8 are read as replacement characters, so a
    file with a binary part is searched too."""
    found: list[tuple[int, str]] = []
    number, at_start = 0, True
    try:
        with path.open("rb") as handle:
            whole = os.fstat(handle.fileno()).st_size <= MAX_FILE_BYTES  # and text detect-secrets can read
            for piece in iter(lambda: handle.readline(READ_LINE), b""):
                if at_start:
                    number += 1
                at_start = piece.endswith(b"\n")
                if whole:
                    try:
                        piece.decode("utf-8")
                    except UnicodeDecodeError:
                        whole = False
                if _CLIENT_SECRET_BYTES.search(piece):
                    found.append((number, piece.decode("utf-8", "replace").rstrip("\r\n")))
    except OSError:
        return None
    return found, whole


_CLIENT_SECRET_BYTES = re.compile(rb"client[._-]?secret", re.IGNORECASE)


def _detect(path: Path, lines: list[tuple[int, str]], small: bool) -> Iterator[tuple[int, str, str]]:
    """(line, value, type) of every detect-secrets hit in ``path``: read whole when small (formats that
    span lines), else in the lines that name a client secret (``lines``), written to a file of its kind."""
    if small:
        yield from _collect(path, None)
    else:
        with tempfile.TemporaryDirectory(prefix="rfcheck-scan-") as folder:
            excerpt = Path(folder) / path.name
            excerpt.write_text("\n".join(text for _, text in lines) + "\n", encoding="utf-8")
            yield from _collect(excerpt, [n for n, _ in lines])
    if path.name.startswith(".env") and path.suffix.lower() not in CONFIG_SUFFIXES - {".env"}:
        yield from _detect_dotenv(lines)


def _collect(path: Path, numbers: list[int] | None) -> Iterator[tuple[int, str, str]]:
    collection = SecretsCollection()
    collection.scan_file(str(path))
    for _, secret in collection:
        if secret.secret_value:
            line = secret.line_number
            if numbers is not None:
                line = numbers[line - 1] if 0 < line <= len(numbers) else 0
            yield line, secret.secret_value, secret.type


def _detect_dotenv(lines: list[tuple[int, str]]) -> Iterator[tuple[int, str, str]]:
    # detect-secrets reads dotenv files as unknown text, where KeywordDetector wants quoted values;
    # KEY=value is the config syntax, so use its config-file patterns on each line.
    detector = KeywordDetector()
    for number, line in lines:
        if line.lstrip().startswith("#") or _ALLOWLISTED in line:
            continue
        for value in detector.analyze_string(line, CONFIG_DENYLIST_REGEX_TO_GROUP):
            yield number, re.split(r"\s+#", value)[0].strip(), detector.secret_type


def _names_client_secret(line: str, value: str) -> bool:
    """The key the value is assigned to (the text before it on its line) names a client secret."""
    index = line.find(value)
    return bool(_CLIENT_SECRET_KEY.search(line[:index] if index >= 0 else line))


def _hits(folder: Path, relative: Path, lines: list[tuple[int, str]], small: bool) -> Iterator[SecretHit]:
    if not lines:
        return  # every hit kept names a client secret on its line: nothing for detect-secrets here
    by_number = dict(lines)
    seen: set[tuple[int, str]] = set()
    for number, value, kind in _detect(folder / relative, lines, small):
        line = by_number.get(number, "")
        if (number, value) in seen or is_placeholder(value) or not _names_client_secret(line, value):
            continue
        seen.add((number, value))
        yield SecretHit(relative.as_posix(), number, value, kind)


def scan_project(folder: Path) -> ScanReport:
    """Scan ``folder`` for plaintext client secrets; raises :class:`ScanError` when it cannot be read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScanError(f"{folder} is not a folder")
    try:
        with os.scandir(folder) as entries:
            next(entries, None)
    except OSError as err:
        raise ScanError(f"cannot read {folder}: {err.strerror or err}") from None
    tracked = set(_git_tracked(folder))  # once: git answers for the whole tree
    files = _project_files(folder, tracked)
    ignored = git_ignored(folder, [p for p in files if p not in tracked])
    hits: list[SecretHit] = []
    unreadable: list[str] = []
    with transient_settings({"plugins_used": PLUGINS}):
        for relative in files:
            read = _lines(folder / relative)
            if read is None:
                unreadable.append(relative.as_posix())
                continue
            hits.extend(_hits(folder, relative, *read))
    judged = tuple(h for h in hits if Path(h.path) not in ignored)
    return ScanReport(folder, len(files) - len(unreadable), judged, tuple(unreadable),
                      tuple(h for h in hits if Path(h.path) in ignored))
