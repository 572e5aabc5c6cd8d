"""Reading a project: its manifests, dependencies and sources, within bounds."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from rfcheck.commands import UsageError
from rfcheck.commands.init.model import PYTHON_NOTED, SKIP_DIRS, SKIP_FILES, SOURCE_SUFFIXES, MAX_FILE, MAX_FILES


class Project:
    """What rfcheck init found in a folder: manifests, dependencies and the sources' text."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sources: list[tuple[str, str]] = _read_sources(folder)
        self.package = _read_json(folder / "package.json") if (folder / "package.json").is_file() else None
        self.node_deps = _node_deps(self.package)
        self.pyproject = _read_toml(folder / "pyproject.toml") if (folder / "pyproject.toml").is_file() else None
        self.python_files = [(path, text) for path, text in self.sources if path.endswith(".py")]
        self.python_manifests: list[str] = []
        self.python_deps = self._python_deps()
        self.jvm_build = self._jvm_build()
        self.go_mod = read_text(folder / "go.mod") if (folder / "go.mod").is_file() else None

    def source(self, *suffixes: str) -> Iterable[tuple[str, str]]:
        return ((path, text) for path, text in self.sources if path.endswith(suffixes))

    def grep(self, pattern: re.Pattern[str], *suffixes: str) -> list[str]:
        return [match for _, text in self.source(*suffixes) for match in pattern.findall(text)]

    def _python_deps(self) -> set[str]:
        deps: set[str] = set()
        if self.pyproject is not None:
            self.python_manifests.append("pyproject.toml")
            project = self.pyproject.get("project", {})
            requirements = list(_strings(project.get("dependencies")))
            for extra in as_dict(project.get("optional-dependencies")).values():
                requirements += _strings(extra)
            poetry = as_dict(as_dict(self.pyproject.get("tool")).get("poetry"))
            requirements += as_dict(poetry.get("dependencies"))
            requirements += as_dict(poetry.get("dev-dependencies"))
            for group in as_dict(poetry.get("group")).values():
                requirements += as_dict(as_dict(group).get("dependencies"))
            deps |= {_dist_name(item) for item in requirements}
        for file in sorted([*self.folder.glob("requirements*.txt"), *self.folder.glob("requirements/*.txt")]):
            self.python_manifests.append(file.relative_to(self.folder).as_posix())
            for line in read_text(file).splitlines():
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    deps.add(_dist_name(line))
        if (self.folder / "Pipfile").is_file():
            self.python_manifests.append("Pipfile")
            pipfile = _read_toml(self.folder / "Pipfile")
            deps |= {_dist_name(name) for section in ("packages", "dev-packages")
                     for name in as_dict(pipfile.get(section))}
        imported = {name.lower().replace("_", "-") for _, text in self.python_files  # requests_oauthlib
                    for name in re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", text, flags=re.M)}
        deps |= {name for name in PYTHON_NOTED if name in imported}
        deps.discard("")
        return deps

    def _jvm_build(self) -> tuple[str, str] | None:
        for name in ("pom.xml", "build.gradle.kts", "build.gradle"):
            if (self.folder / name).is_file():
                return name, read_text(self.folder / name)
        return None

    @property
    def has_python(self) -> bool:
        return bool(self.python_manifests) or any(path.count("/") <= 1 for path, _ in self.python_files)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}: invalid JSON: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path}: invalid TOML: {err}") from None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _dist_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1).lower().replace("_", "-") if match else ""


def _read_sources(folder: Path) -> list[tuple[str, str]]:
    """The project's own source and config files as (relative POSIX path, text): no dependencies, no hidden folders."""
    found: list[tuple[str, str]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(root) / name
            if name in SKIP_FILES or name.startswith(".env") or path.suffix not in SOURCE_SUFFIXES:
                continue
            try:
                if path.stat().st_size > MAX_FILE:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            found.append((path.relative_to(folder).as_posix(), text))
            if len(found) >= MAX_FILES:
                return found
    return found


def _node_deps(package: dict[str, Any] | None) -> dict[str, str]:
    if package is None:
        return {}
    deps: dict[str, str] = {}
    for section in ("devDependencies", "dependencies"):
        deps.update({name: str(spec) for name, spec in as_dict(package.get(section)).items()})
    return deps


def major_version(spec: str) -> int | None:
    match = re.search(r"(\d+)", spec)
    return int(match.group(1)) if match and not spec.startswith(("git", "http", "file:", "link:")) else None
