"""The target config: ``rfcheck.toml`` or ``[tool.rfcheck]`` in ``pyproject.toml``.

Loads and validates the config into frozen dataclasses. Every problem is a
:class:`ConfigError` whose message names the file and the key as the user wrote them.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rfcheck.facts import NETWORKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CommandSpec", "ConfigError", "PythonSpec", "TargetConfig", "WebSpec",
    "find_config", "load_config", "with_network",
]

KINDS = ("python", "web", "command")
FLOWS = ("authorization_code", "client_credentials")
SCOPES = ("openid", "profile", "email", "offline_access", "user:read")
RESTARTS = ("scenario", "session")
BROWSERS = ("auto", "chromium", "simulated")  # [target.web] browser: who plays the user's browser
CONFIRM_IDS = tuple(f"MAN-{n:02d}" for n in range(1, 7))
DEFAULT_REDIRECT_URI = "http://localhost/callback"

TARGET_KEYS = (
    "name", "kind", "flow", "network", "redirect_uri", "scopes", "project", "tls",
    "client_id_test", "client_id_live", "python", "web", "command", "env", "intercept", "confirm", "accept",
    "scenarios", "jobs",
)
# what {name} in [target.env], url, start, run, serve, actions and redirect_uri can be (the README's placeholder list)
PLACEHOLDERS = ("issuer", "api_url", "client_id", "client_secret", "audience", "redirect_uri", "port", "network",
                "proxy_url", "ca_file", "state_dir")
MAX_TIMEOUT = 3600.0  # seconds: ready_timeout and step_timeout are bounded (inf or 1e9 would never give up)
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")  # as the harness fills them: not {Port}, {a: 1} or a shell's ${HOME}
SPEC_KEYS = {
    "python": ("factory",),
    "web": ("start", "url", "ready", "login", "actions", "restart", "ready_timeout", "step_timeout", "browser"),
    "command": ("run", "serve", "actions", "step_timeout"),
}


class ConfigError(Exception):
    """A usage error in the target config; ``str(err)`` names the file and the key."""


@dataclass(frozen=True)
class PythonSpec:
    """``[target.python]``: the factory ``"module.sub:callable"``, or None (conftest fixture)."""

    factory: str | None


@dataclass(frozen=True)
class WebSpec:
    """``[target.web]``: a web app that rfcheck drives as a browser would."""

    start: str
    url: str
    ready: str = "/"
    login: str = "/login"
    actions: tuple[str, ...] = ("/",)
    restart: str = "scenario"
    ready_timeout: float = 30.0
    step_timeout: float = 10.0
    # auto: headless Chromium once a page runs scripts (when one is found); chromium: always; simulated: never
    browser: str = "auto"


@dataclass(frozen=True)
class CommandSpec:
    """``[target.command]``: exactly one of ``run`` / ``serve``; ``actions`` with ``serve``."""

    run: str = ""
    serve: str = ""
    actions: tuple[str, ...] = ()
    step_timeout: float = 10.0


@dataclass(frozen=True)
class TargetConfig:
    """The validated target config; paths are absolute."""

    file: Path
    root: Path
    name: str
    kind: str
    flow: str
    network: str
    redirect_uri: str
    scopes: tuple[str, ...]
    project: Path
    tls: bool = False
    client_id_test: str | None = None
    client_id_live: str | None = None
    python: PythonSpec | None = None
    web: WebSpec | None = None
    command: CommandSpec | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    proxy: bool = False
    hosts: bool = False
    scenarios: tuple[Path, ...] = ()  # [target] scenarios: the integration's own scenario files  # [target.intercept] hosts: route the real hosts to the mock by instrumenting the runtime
    confirm: Mapping[str, str] = field(default_factory=dict)
    accept: Mapping[str, str] = field(default_factory=dict)
    jobs: int | None = None  # [target] jobs: at most this many scenarios at once (what the target tolerates)


_REQUIRED: Any = object()
_WEB_DEFAULTS = WebSpec(start="", url="")
_COMMAND_DEFAULTS = CommandSpec()


def _show(value: Any) -> str:
    return "a table" if isinstance(value, dict) else repr(value)


def _hint(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]}?)" if close else f" (expected one of: {', '.join(options)})"


def _is_positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class _Table:
    """One table of the config, with what error messages need to point at it."""

    def __init__(self, data: Mapping[str, Any], path: str, file: str, why: str = "") -> None:
        self.data, self.path, self.file, self.why = data, path, file, why

    def error(self, message: str, prefix: str = "") -> ConfigError:
        where = f"[{self.path}] " if self.path else ""
        return ConfigError(f"{self.file}: {prefix}{where}{message}")

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(f"{key}{_hint(key, allowed)}", prefix="unknown key ")

    def child_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _value(self, key: str, default: Any, ok: Callable[[Any], bool], expected: str) -> Any:
        if key not in self.data:
            if default is _REQUIRED:
                raise self.error(f"{key} is required{self.why}")
            return default
        value = self.data[key]
        if not ok(value):
            raise self.error(f"{key} must be {expected}, got {_show(value)}")
        return value

    def string(self, key: str, default: Any = _REQUIRED, empty_ok: bool = True) -> Any:
        value = self._value(key, default, lambda v: isinstance(v, str), "a string")
        if isinstance(value, str) and not empty_ok and not value.strip():
            raise self.error(f"{key} must not be empty")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = _REQUIRED) -> str:
        if key not in self.data and default is _REQUIRED:
            raise self.error(f"{key} is required (one of {', '.join(options)})")
        value: str = self.string(key, default)
        if value not in options:
            raise self.error(f"{key} = {value!r} is not one of {', '.join(options)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._value(key, default, lambda v: isinstance(v, bool), "true or false"))

    def number(self, key: str, default: float, most: float = MAX_TIMEOUT) -> float:
        return float(self._value(key, default, lambda v: _is_positive(v) and v <= most,
                                 f"a positive number of seconds, at most {most:g}"))

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self._value(key, default, _is_strings, "a list of strings"))

    def table(self, key: str, keys: tuple[str, ...] | None, why: str = "") -> _Table:
        data = self._value(key, {}, lambda v: isinstance(v, dict), "a table")
        table = _Table(data, self.child_path(key), self.file, why)
        if keys is not None:
            table.check_keys(keys)
        return table


def find_config(target: str | os.PathLike[str] | None, rootdir: Path) -> Path:
    """Find the target config and return its absolute path.

    ``target`` None: ``rootdir/rfcheck.toml``, else ``rootdir/pyproject.toml`` if it
    has ``[tool.rfcheck]``. A folder: the same lookup in it. A file: that file.
    A relative ``target`` is taken relative to ``rootdir``.
    """
    if target is None:
        return _lookup(Path(rootdir))
    path = Path(rootdir) / target
    if path.is_dir():
        return _lookup(path)
    if path.is_file():
        return path.resolve()
    raise ConfigError(f"{path}: no such file or folder (rfcheck target)")


def _lookup(folder: Path) -> Path:
    own, pyproject = folder / "rfcheck.toml", folder / "pyproject.toml"
    if own.is_file():
        return own.resolve()
    if pyproject.is_file() and _tool_section(_read_toml(pyproject)) is not None:
        return pyproject.resolve()
    raise ConfigError(f"no rfcheck target config: looked for {own} and [tool.rfcheck] in {pyproject}")


MAX_CONFIG_BYTES = 1024 * 1024  # a target config is a few kilobytes; refused unread beyond this


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        size = file.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{file.name}: {file} has {size:,} bytes, more than a target config may have "
                              f"({MAX_CONFIG_BYTES:,}); it was not read")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file.name}: cannot read {file}: {err}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file.name}: invalid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{file.name}: invalid TOML: its arrays or tables are nested too deep") from None


def _tool_section(data: Mapping[str, Any]) -> dict[str, Any] | None:
    tool = data.get("tool")
    section = tool.get("rfcheck") if isinstance(tool, dict) else None
    return section if isinstance(section, dict) else None


def _target_table(file: Path, data: dict[str, Any]) -> _Table:
    if file.name != "pyproject.toml":
        top = _Table(data, "", file.name)
    elif (section := _tool_section(data)) is not None:
        top = _Table(section, "tool.rfcheck", file.name)
    else:
        raise ConfigError(f"{file.name}: [tool.rfcheck] is missing")
    top.check_keys(("target",))
    return top.table("target", TARGET_KEYS)


def load_config(path: Path) -> TargetConfig:
    """Read and validate the target config in ``path`` (rfcheck.toml or pyproject.toml)."""
    file = Path(path).resolve()
    target = _target_table(file, _read_toml(file))
    kind = target.choice("kind", KINDS)
    intercept = target.table("intercept", ("proxy", "hosts"))
    return TargetConfig(
        file=file,
        root=file.parent,
        name=target.string("name", file.parent.name, empty_ok=False),
        kind=kind,
        flow=target.choice("flow", FLOWS, "authorization_code"),
        network=target.choice("network", NETWORKS, "test"),
        redirect_uri=_check_placeholders(target, "redirect_uri", _url(target, "redirect_uri", DEFAULT_REDIRECT_URI),
                                         ("redirect_uri",)),
        scopes=_scopes(target),
        project=_project(target, file.parent),
        tls=target.flag("tls", False),
        client_id_test=_client_id(target, "client_id_test"),
        client_id_live=_client_id(target, "client_id_live"),
        env=_env(target),
        proxy=intercept.flag("proxy", False), hosts=intercept.flag("hosts", False),
        confirm=_confirm(target),
        accept=_accept(target),
        scenarios=_scenarios(target, file.parent),
        jobs=_jobs(target),
        **_spec(target, kind),
    )


MAX_JOBS = 64  # what [target] jobs and --rfcheck-jobs may ask for; the default is smaller (lanes.py)


def _jobs(target: _Table) -> int | None:
    value = target._value("jobs", None, lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_JOBS,
                          f"a whole number of scenarios from 1 to {MAX_JOBS}")
    return int(value) if value is not None else None


def with_network(cfg: TargetConfig, network: str) -> TargetConfig:
    """Return ``cfg`` with its network overridden (``--rfcheck-network``); test or live."""
    if network not in NETWORKS:
        raise ConfigError(
            f"--rfcheck-network {network!r} is not one of {', '.join(NETWORKS)}"
            f" (it overrides network = {cfg.network!r} of {cfg.file.name})"
        )
    return replace(cfg, network=network)


def _url(table: _Table, key: str, default: Any = _REQUIRED) -> str:
    value: str = table.string(key, default)
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = urlsplit("")
    if not (parts.scheme and parts.netloc):
        raise table.error(f"{key} = {value!r} must be an absolute URL, e.g. 'http://localhost:3000'")
    return value


def _scopes(target: _Table) -> tuple[str, ...]:
    scopes = target.strings("scopes", SCOPES)
    for scope in scopes:
        if scope not in SCOPES:
            raise target.error(f"scopes contains {scope!r}, which is not one of {', '.join(SCOPES)}")
    return scopes


def _project(target: _Table, root: Path) -> Path:
    value: str = target.string("project", ".", empty_ok=False)
    project = (root / value).resolve()
    if not project.is_dir():
        raise target.error(f"project = {value!r} is not an existing folder (looked for {project})")
    home = _repository(root.resolve())
    if project != home and home not in project.parents:
        raise target.error(f"project = {value!r} is outside the target's repository ({home}): SEC-01 scans the "
                           "integration's own files, never the rest of the machine")
    return project


def _repository(folder: Path) -> Path:
    """The git work tree ``folder`` is in, else ``folder`` itself: where a target's ``project`` may point."""
    try:
        done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return folder
    top = done.stdout.strip()
    return Path(top).resolve() if done.returncode == 0 and top else folder


def _client_id(target: _Table, key: str) -> str | None:
    value: str | None = target.string(key, None)
    if not value or not value.startswith("env:"):
        return value or None
    if not value[4:]:
        raise target.error(f"{key} = 'env:' needs a variable name, e.g. 'env:RF_CLIENT_ID_TEST'")
    return os.environ.get(value[4:]) or None


def _env(target: _Table) -> dict[str, str]:
    table = target.table("env", None)
    for key in table.data:
        if not key or "=" in key or "\0" in key:
            raise table.error(f"{key!r} is not an environment variable name (no '=', no NUL byte)")
        value = table.data[key]
        if isinstance(value, str) and "\0" in value:
            raise table.error(f"{key}: a NUL byte cannot be in an environment value")
    return {key: _check_placeholders(table, key, table.string(key)) for key in table.data}


def _path(table: _Table, key: str, value: str) -> str:
    """A path on the web app (``ready``, ``login``, each of ``actions``): it starts with ``/``."""
    text = table.string(key, value) if key != "actions" else value
    if not text.startswith("/"):
        raise table.error(f"{key}: {text!r} must be a path on the app's url, starting with '/' (e.g. '/{text}')")
    return text


def _accept(target: _Table) -> dict[str, str]:
    """``[target.accept]``: should-level shortfalls accepted on purpose, each with a person's reason."""
    from rfcheck.catalogue import CATALOGUE

    levels = {req.id: req.level for req in CATALOGUE}
    table = target.table("accept", None)
    for key in table.data:
        if key not in levels:
            raise table.error(f"{key} is not a requirement ID{_hint(key, tuple(levels))}")
        if levels[key] != "should":
            raise table.error(f"{key} is a {levels[key]} requirement: only should requirements can be accepted")
    return {key: table.string(key, empty_ok=False) for key in table.data}


def _check_placeholders(table: _Table, key: str, value: str, unknown_too: tuple[str, ...] = ()) -> str:
    """Every ``{name}`` in ``value`` must be a known placeholder (``unknown_too`` are refused here)."""
    for match in PLACEHOLDER.finditer(value):
        name = match.group(1)
        if name not in PLACEHOLDERS or name in unknown_too:
            known = [p for p in PLACEHOLDERS if p not in unknown_too]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            raise table.error(f"{key} = {value!r}: unknown placeholder {{{name}}}{hint}; known: "
                              + ", ".join(f"{{{p}}}" for p in known))
    return value


def _confirm(target: _Table) -> dict[str, str]:
    table = target.table("confirm", None)
    for key in table.data:
        if key not in CONFIRM_IDS:
            raise table.error(f"{key} is not a manual requirement ID (one of {', '.join(CONFIRM_IDS)})")
    return {key: table.string(key, empty_ok=False) for key in table.data}


def _spec(target: _Table, kind: str) -> dict[str, Any]:
    for other in KINDS:
        if other != kind and other in target.data:
            raise ConfigError(f"{target.file}: [{target.child_path(other)}] is given but kind = {kind!r}")
    table = target.table(kind, SPEC_KEYS[kind], why=f" when kind = {kind!r}")
    builders = {"python": _python, "web": _web, "command": _command}
    return {kind: builders[kind](table)}


def _python(table: _Table) -> PythonSpec:
    factory: str | None = table.string("factory", None)
    if factory is not None and not _is_reference(factory):
        raise table.error(f"factory = {factory!r} must look like 'module.sub:callable'")
    return PythonSpec(factory=factory)


def _is_reference(text: str) -> bool:
    module, colon, attribute = text.partition(":")
    parts = module.split(".") + attribute.split(".")
    return bool(colon) and all(part.isidentifier() for part in parts)


def _web(table: _Table) -> WebSpec:
    d = _WEB_DEFAULTS
    return WebSpec(
        start=_check_placeholders(table, "start", table.string("start", empty_ok=False)),
        url=_check_placeholders(table, "url", _url(table, "url")),
        ready=_path(table, "ready", d.ready),
        login=_path(table, "login", d.login),
        actions=tuple(_path(table, "actions", action) for action in table.strings("actions", d.actions)),
        restart=table.choice("restart", RESTARTS, d.restart),
        ready_timeout=table.number("ready_timeout", d.ready_timeout),
        step_timeout=table.number("step_timeout", d.step_timeout),
        browser=table.choice("browser", BROWSERS, d.browser),
    )


def _command(table: _Table) -> CommandSpec:
    d = _COMMAND_DEFAULTS
    run, serve = table.string("run", d.run).strip(), table.string("serve", d.serve).strip()
    if bool(run) == bool(serve):
        raise table.error(f"exactly one of run and serve is required{table.why}")
    for key, value in (("run", run), ("serve", serve)):
        _check_placeholders(table, key, value)
    actions = tuple(_check_placeholders(table, "actions", a) for a in table.strings("actions", d.actions))
    if serve and not actions:
        raise table.error("actions is required (a non-empty list) with serve")
    if run and actions:
        raise table.error("actions is only used with serve, not with run")
    return CommandSpec(run, serve, actions, table.number("step_timeout", d.step_timeout))


def _scenarios(target: _Table, root: Path) -> tuple[Path, ...]:
    """``[target] scenarios``: glob patterns of the integration's own scenario files (what they say is
    checked by :func:`rfcheck.steps.own_scenarios`, which knows the steps)."""
    files: list[Path] = []
    for pattern in target.strings("scenarios", ()):
        found = sorted(p for p in root.glob(pattern) if p.is_file()) if pattern else []
        if not found:
            raise target.error(f"scenarios: {pattern!r} matches no file in {root}")
        files += found
    return tuple(files)
