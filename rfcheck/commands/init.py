"""``rfcheck init [FOLDER]``: a commented ``rfcheck.toml`` guessed from the project in FOLDER.

It reads the project's manifests (``package.json``; ``pyproject.toml``, ``requirements*.txt``,
``Pipfile``; ``pom.xml``, ``build.gradle``; ``go.mod``) and sources, then writes a config whose
every key is explained in a comment: the kind of target, the command that starts it, the
environment that points it at the mock (names taken from ``.env.example``, the variables an SDK
reads itself, or the sources, else ``RF_*``) and, when the sources hard-code Request Finance's real
hosts, ``[target.intercept] hosts = true``. It never overwrites a config: an existing
``rfcheck.toml`` (or ``[tool.rfcheck]`` in ``pyproject.toml``) is an input error naming it.

What the app's OAuth client library needs decides ``tls`` and adds to the environment (the comment
names the rule applied):

- oauthlib / requests-oauthlib refuse every ``http://`` URL: ``tls = true``, and for a web app
  ``OAUTHLIB_INSECURE_TRANSPORT = "1"`` for its own ``http://localhost`` callback, unless its
  sources set that variable themselves. Authlib's client checks no scheme: plain http.
- openid-client v6 and @auth0/nextjs-auth0 v4 refuse plain-http issuers: ``tls = true``;
  express-openid-connect (openid-client v4), passport-openidconnect and passport-oauth2 accept it.
- express-openid-connect and @auth0/nextjs-auth0 (v3, v4) read their settings from the environment
  themselves: those names are written even when the sources never mention them.
- a session cookie key the app reads (``SECRET``, ``AUTH0_SECRET``, ``SESSION_SECRET``,
  ``FLASK_SECRET_KEY``...) is the app's own, not a placeholder: a fresh random value (32 bytes, hex).

How the kind is chosen (the written file says why):

- ``web``: a web framework is a dependency (Express, Next.js, Fastify, Koa, NestJS, the Auth0 SDKs;
  Flask, Django, FastAPI, ``aiohttp.web``; Spring Boot web, Javalin, Micronaut, Quarkus; gin, echo,
  chi, gorilla/mux, fiber or ``http.ListenAndServe`` in Go). rfcheck starts it and logs in as a user.
- ``python``: a Python project with no web framework that defines ``make_target`` (the factory is
  that), a ``rfcheck_target`` fixture, or no entry point at all (a library: an adapter is to be
  written). In process, httpx calls to the real hosts reach the mock and the clock is frozen.
- ``command``: everything else with an entry point (a Node script, ``python3 -m pkg``, a script
  with ``if __name__ == "__main__"``, ``mvn exec:java``, ``go run .``, ``java Worker.java``): a
  worker or CLI run once per unit of work, hence the client credentials flow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rfcheck.commands import UsageError
from rfcheck.config import SCOPES, ConfigError, load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Guess", "add_arguments", "guess", "render", "run"]

CONFIG_NAME = "rfcheck.toml"
HOSTS = ("https://auth.request.finance", "https://api.request.finance")
# folders never searched: dependencies, virtual environments, build output (and every hidden folder)
SKIP_DIRS = {"node_modules", "venv", "env", "__pycache__", "site-packages", "dist", "build", "target", "out",
             "vendor", "coverage", "reports", "bower_components"}
SOURCE_SUFFIXES = {".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".vue", ".svelte", ".py",
                   ".java", ".kt", ".kts", ".scala", ".groovy", ".go", ".rb", ".php", ".cs", ".rs",
                   ".json", ".yaml", ".yml", ".properties", ".ini", ".cfg", ".conf"}
CODE_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".vue", ".svelte", ".py", ".java",
                 ".kt", ".scala", ".groovy", ".go", ".rb", ".php", ".cs", ".rs")
SKIP_FILES = {"package-lock.json", "npm-shrinkwrap.json", "composer.lock", CONFIG_NAME}
ENV_EXAMPLES = (".env.example", ".env.sample", ".env.template", ".env.dist", ".env.local.example", "example.env",
                "sample.env", ".env.defaults")
_MAX_FILE = 512 * 1024
_MAX_FILES = 5000

NODE_WEB = ("express", "next", "fastify", "koa", "@nestjs/core", "@hapi/hapi", "hono", "express-openid-connect",
            "@auth0/nextjs-auth0")
NODE_NOTED = ("openid-client", "express-openid-connect", "axios", "node-fetch", "got", "undici", "passport",
              "passport-openidconnect", "passport-oauth2")
PYTHON_NOTED = ("authlib", "httpx", "requests", "django", "flask", "fastapi", "aiohttp", "requests-oauthlib",
                "uvicorn", "gunicorn", "oauthlib")
PYTHON_CLIENTS = ("authlib", "httpx", "requests", "aiohttp", "requests-oauthlib", "oauthlib")
JVM_WEB = ("spring-boot-starter-web", "spring-boot-starter-webflux", "spring-boot-starter-oauth2-client",
           "javalin", "micronaut-http-server", "quarkus-resteasy", "quarkus-rest", "sparkjava", "ktor-server")
GO_WEB = ("github.com/gin-gonic/gin", "github.com/labstack/echo", "github.com/go-chi/chi", "github.com/gorilla/mux",
          "github.com/gofiber/fiber")

# what an environment variable of the app is for, from its name (the first rule that matches wins)
APP_URL = "http://localhost:{port}"
AUTH_DOMAIN = "auth.request.finance"
# not a value written as such: a session cookie key gets a fresh random value (see _environment)
SESSION_KEY = "<session key>"
_ENV_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"CLIENT_?SECRET"), "{client_secret}"),
    # the key that signs or encrypts the app's session cookie (express-session, express-openid-connect,
    # nextjs-auth0, Auth.js, Flask, Django): the app's own, never one rfcheck issues
    (re.compile(r"^(?:[A-Z0-9]+_)?(?:SESSION|COOKIE)_(?:SECRET|KEY|SECRET_KEY)$|^(?:AUTH0_|NEXTAUTH_|AUTH_)?SECRET$"
                r"|^(?:FLASK_|DJANGO_)?SECRET_KEY$"), SESSION_KEY),
    (re.compile(r"CLIENT_?ID$|CLIENT_?ID_"), "{client_id}"),
    (re.compile(r"^(?:AUTH0|APP)_BASE_URL$"), APP_URL),  # @auth0/nextjs-auth0 v3: the app's own URL
    (re.compile(r"ISSUER|^(?:RF_|REQUEST_?FINANCE_)?(?:O?AUTH0?|OIDC)_(?:BASE_)?(?:URL|URI|SERVER(?:_URL)?)$"),
     "{issuer}"),
    (re.compile(r"AUTH0?_DOMAIN$|^(?:RF|REQUEST_?FINANCE)_DOMAIN$"), AUTH_DOMAIN),
    (re.compile(r"REDIRECT|CALLBACK"), "{redirect_uri}"),
    (re.compile(r"AUDIENCE"), "{audience}"),
    (re.compile(r"NETWORK"), "{network}"),
    (re.compile(r"API_?(?:BASE_?)?(?:URL|URI|HOST|ENDPOINT|BASE)$"), "{api_url}"),
    (re.compile(r"^(?:APP_|SERVER_|HTTP_|WEB_)?PORT$"), "{port}"),
    (re.compile(r"^(?:APP_|PUBLIC_|NEXTAUTH_|SITE_)?(?:BASE_)?URL$"), APP_URL),
)
# the placeholders a kind of target needs in its environment, with the RF_* name used when the project names none
_DEFAULT_NAMES = {"{issuer}": "RF_ISSUER", "{api_url}": "RF_API_URL", "{client_id}": "RF_CLIENT_ID",
                  "{client_secret}": "RF_CLIENT_SECRET", "{redirect_uri}": "RF_REDIRECT_URI",
                  "{network}": "RF_NETWORK", "{port}": "PORT"}
_NEEDED = {"web": ("{issuer}", "{api_url}", "{client_id}", "{client_secret}", "{redirect_uri}", "{network}", "{port}"),
           "command": ("{issuer}", "{api_url}", "{client_id}", "{client_secret}", "{network}")}
_MEANING = {"{issuer}": "the mock authorization server's base URL (no trailing slash)",
            "{api_url}": "the mock API's base URL", "{client_id}": "a client ID rfcheck issues for this run",
            "{client_secret}": "its client secret, fresh for every run", "{redirect_uri}": "redirect_uri above",
            "{network}": "the run's network (test or live, after --rfcheck-network)",
            "{port}": "the free port rfcheck picked for the app", "{audience}": "the API audience (accounts)",
            APP_URL: "where the app itself listens",
            AUTH_DOMAIN: "the real host name, which [target.intercept] hosts = true sends to the mock",
            SESSION_KEY: "the app's session cookie key: a random value rfcheck init made for runs under rfcheck, "
                         "not a Request Finance credential (production keeps its own in a secret manager)"}
# the environment variables an SDK reads itself (its configuration defaults): needed even when the app's
# sources never name them. The SDKs derive the redirect URI from their base URL.
_SDK_ENV: dict[str, tuple[tuple[str, str], ...]] = {
    "express-openid-connect": (("ISSUER_BASE_URL", "{issuer}"), ("BASE_URL", APP_URL), ("CLIENT_ID", "{client_id}"),
                               ("CLIENT_SECRET", "{client_secret}"), ("SECRET", SESSION_KEY)),
    "@auth0/nextjs-auth0 v3": (("AUTH0_ISSUER_BASE_URL", "{issuer}"), ("AUTH0_BASE_URL", APP_URL),
                               ("AUTH0_CLIENT_ID", "{client_id}"), ("AUTH0_CLIENT_SECRET", "{client_secret}"),
                               ("AUTH0_SECRET", SESSION_KEY)),
    "@auth0/nextjs-auth0 v4": (("AUTH0_DOMAIN", AUTH_DOMAIN), ("AUTH0_CLIENT_ID", "{client_id}"),
                               ("AUTH0_CLIENT_SECRET", "{client_secret}"), ("AUTH0_SECRET", SESSION_KEY),
                               ("APP_BASE_URL", APP_URL)),
}
# a name read through an environment accessor may be one word (ISSUER, SECRET); a bare string needs an underscore
_ENV_NAME = re.compile(r"(?:process\.env\.|import\.meta\.env\.|\benv\.|environ\.get\(\s*['\"]|environ\[\s*['\"]|"
                       r"getenv\(\s*['\"]|Getenv\(\s*\"|env\[\s*['\"])([A-Z][A-Z0-9_]{2,})\b"
                       r"|['\"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")
# a hard-coded host: a string literal in code that starts with the URL, or a config file's value
# (a mention in a comment or a docstring, e.g. "RF_ISSUER (https://auth.request.finance)", is not one)
_HOST_IN_CODE = re.compile(r"[\"'`](https://(?:auth|api)\.request\.finance)\b")
_HOST_IN_CONFIG = re.compile(r"[=:]\s*[\"']?(https://(?:auth|api)\.request\.finance)\b")


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
        self.go_mod = _read_text(folder / "go.mod") if (folder / "go.mod").is_file() else None

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
            for extra in _dict(project.get("optional-dependencies")).values():
                requirements += _strings(extra)
            poetry = _dict(_dict(self.pyproject.get("tool")).get("poetry"))
            requirements += _dict(poetry.get("dependencies"))
            requirements += _dict(poetry.get("dev-dependencies"))
            for group in _dict(poetry.get("group")).values():
                requirements += _dict(_dict(group).get("dependencies"))
            deps |= {_dist_name(item) for item in requirements}
        for file in sorted([*self.folder.glob("requirements*.txt"), *self.folder.glob("requirements/*.txt")]):
            self.python_manifests.append(file.relative_to(self.folder).as_posix())
            for line in _read_text(file).splitlines():
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    deps.add(_dist_name(line))
        if (self.folder / "Pipfile").is_file():
            self.python_manifests.append("Pipfile")
            pipfile = _read_toml(self.folder / "Pipfile")
            deps |= {_dist_name(name) for section in ("packages", "dev-packages")
                     for name in _dict(pipfile.get(section))}
        imported = {name.lower().replace("_", "-") for _, text in self.python_files  # requests_oauthlib
                    for name in re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", text, flags=re.M)}
        deps |= {name for name in PYTHON_NOTED if name in imported}
        deps.discard("")
        return deps

    def _jvm_build(self) -> tuple[str, str] | None:
        for name in ("pom.xml", "build.gradle.kts", "build.gradle"):
            if (self.folder / name).is_file():
                return name, _read_text(self.folder / name)
        return None

    @property
    def has_python(self) -> bool:
        return bool(self.python_manifests) or any(path.count("/") <= 1 for path, _ in self.python_files)


@dataclass
class EnvLine:
    name: str
    value: str
    note: str
    active: bool = True


@dataclass
class Guess:
    """The config rfcheck init writes, with the reasons it gives in the comments."""

    name: str
    runtime: str  # node | python | jvm | go
    kind: str
    kind_why: str
    flow: str
    found: list[str] = field(default_factory=list)
    tls: bool = False
    tls_why: str = "the mock serves plain http on loopback, which this app's client accepts"
    start: str = ""  # web: start; command: run
    start_why: str = ""
    factory: str | None = None
    factory_why: str = ""
    redirect_path: str = "/callback"
    login_path: str = "/login"
    actions: list[str] = field(default_factory=lambda: ["/"])
    ready_timeout: int = 30
    step_timeout: int = 10
    env: list[EnvLine] = field(default_factory=list)
    env_source: str = ""
    hits: list[str] = field(default_factory=list)  # "file:line https://auth.request.finance"
    domain_env: bool = False  # an *_DOMAIN variable is set to the real host name: needs hosts = true
    client_ids: dict[str, str] = field(default_factory=dict)  # client_id_test/live -> the variable naming it
    sdk: str = ""  # an SDK that reads its own environment variables (a key of _SDK_ENV)
    rule_env: list[EnvLine] = field(default_factory=list)  # what the app's OAuth client library needs to run

    @property
    def hosts(self) -> bool:
        return bool(self.hits) or self.domain_env


# -- the command ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write FOLDER/rfcheck.toml, a commented target config guessed from the project in FOLDER: its kind "
        "(web, command or python), the command that starts it, the environment that points it at the mock, "
        "and [target.intercept] when its sources hard-code Request Finance's hosts. An existing config is "
        "never overwritten (exit 3).")
    parser.add_argument("folder", nargs="?", default=".", metavar="FOLDER",
                        help="the project's folder (default: the current folder)")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.exists():
        raise UsageError(f"{args.folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{args.folder}: not a folder")
    folder = folder.resolve()
    target = folder / CONFIG_NAME
    if target.exists():
        raise UsageError(f"{target} already exists: rfcheck init never overwrites it (edit it, or remove it first)")
    project = Project(folder)
    if project.pyproject is not None and "rfcheck" in _dict(project.pyproject.get("tool")):
        raise UsageError(f"{folder / 'pyproject.toml'} already has [tool.rfcheck]: that is this project's config "
                         f"(a {CONFIG_NAME} beside it would take its place)")
    result = guess(project)
    text = render(result)
    try:
        with open(target, "x", encoding="utf-8") as out:  # "x": never overwrite, even if one appeared meanwhile
            out.write(text)
    except FileExistsError:
        raise UsageError(f"{target} already exists: rfcheck init never overwrites it") from None
    except OSError as err:
        raise UsageError(f"cannot write {target}: {err.strerror or err}") from None
    try:
        load_config(target)
    except ConfigError as err:  # a bug in rfcheck init, not in the project: leave nothing half-right behind
        target.unlink()
        raise RuntimeError(f"rfcheck init wrote a config that does not load ({err}); nothing was written") from err
    print(f"rfcheck init: looked at {folder}")
    for line in result.found:
        print(f"  found: {line}")
    if result.hits:
        print(f"  Request Finance's real hosts hard-coded in: {', '.join(result.hits[:5])}"
              + (f" and {len(result.hits) - 5} more" if len(result.hits) > 5 else ""))
    if result.env_source:
        print(f"  environment names from: {result.env_source}")
    what = {"web": f"start = {result.start!r}", "command": f"run = {result.start!r}",
            "python": f"factory = {result.factory!r}"}[result.kind]
    print(f"  guessed: kind = {result.kind!r} ({result.kind_why}), flow = {result.flow!r}, {what}, "
          f"tls = {str(result.tls).lower()}" + (", hosts = true" if result.hosts and result.kind != "python" else ""))
    print(f"wrote {target}")
    print(f"Review it (every value is a guess), then run: rfcheck check {folder}")
    return 0


# -- reading the project -------------------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}: invalid JSON: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path}: invalid TOML: {err}") from None


def _dict(value: Any) -> dict[str, Any]:
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
                if path.stat().st_size > _MAX_FILE:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            found.append((path.relative_to(folder).as_posix(), text))
            if len(found) >= _MAX_FILES:
                return found
    return found


def _node_deps(package: dict[str, Any] | None) -> dict[str, str]:
    if package is None:
        return {}
    deps: dict[str, str] = {}
    for section in ("devDependencies", "dependencies"):
        deps.update({name: str(spec) for name, spec in _dict(package.get(section)).items()})
    return deps


def _major(spec: str) -> int | None:
    match = re.search(r"(\d+)", spec)
    return int(match.group(1)) if match and not spec.startswith(("git", "http", "file:", "link:")) else None


# -- guessing ------------------------------------------------------------------------------------------------
def guess(project: Project) -> Guess:
    """The config for ``project``; a UsageError when there is nothing to go on."""
    # each runtime's guess with how strongly it looks like the integration: 2 a web framework,
    # 1 an OAuth or HTTP client (or an entry point), 0 merely present; ties go to the first listed
    present: list[tuple[Guess, int]] = []
    for build in (_node, _python, _jvm, _go):
        if (candidate := build(project)) is not None:
            present.append(candidate)
    if not present:
        raise UsageError(f"{project.folder}: found no project to look at (no package.json, pyproject.toml, "
                         "requirements*.txt, Pipfile, pom.xml, build.gradle or go.mod, nor Python or Java sources)")
    result = max(present, key=lambda item: (item[1], -present.index(item)))[0]
    others = [other.runtime for other, _ in present if other is not result]
    result.found = [line for other, _ in present for line in other.found]
    if others:
        result.found.append(f"configured for the {result.runtime} part; also found: {', '.join(others)}")
    result.hits = _host_hits(project)
    if result.kind == "python" and result.hits and "httpx" not in project.python_deps:
        result.found.append("the sources hard-code the real hosts without httpx: make the adapter point the "
                            "client at env.issuer and env.api_url")
    _flow_paths(project, result)
    if result.runtime == "python" and result.kind != "python":
        _python_client_rules(project, result)
    _environment(project, result)
    return result


def _host_hits(project: Project) -> list[str]:
    hits = []
    for path, text in project.sources:
        pattern = _HOST_IN_CODE if path.endswith(CODE_SUFFIXES) else _HOST_IN_CONFIG
        for number, line in enumerate(text.splitlines(), 1):
            if (match := pattern.search(line)) and not _in_comment(line[:match.start()], path):
                hits.append(f"{path}:{number} {match.group(1)}")
    return hits


def _in_comment(before: str, path: str) -> bool:
    """Whether a match preceded by ``before`` on its line is in a comment (roughly: no parsing of strings)."""
    stripped = before.lstrip()
    if stripped.startswith(("*", "/*", "<!--")):
        return True
    if path.endswith((".py", ".rb", ".yaml", ".yml", ".properties", ".ini", ".cfg", ".conf")):
        marker = before.find("#")
    else:
        slashes = re.search(r"(?<!:)//", before)
        marker = slashes.start() if slashes else -1
    return marker >= 0 and before[:marker].count('"') % 2 == 0 and before[:marker].count("'") % 2 == 0


def _node(project: Project) -> tuple[Guess, int] | None:
    if project.package is None:
        return None
    deps, package = project.node_deps, project.package
    noted = [name for name in deps if name in NODE_WEB or name in NODE_NOTED or name.startswith("@auth0/")]
    listed = ", ".join(f"{name} {_installed(project, name)}".strip() for name in noted)
    found = ["package.json: " + (listed or "no web or OAuth package among its dependencies")]
    name = str(package.get("name") or "") or project.folder.name
    web = [dep for dep in NODE_WEB if dep in deps]
    scripts = _dict(package.get("scripts"))
    main = next((m for m in (str(package.get("main") or ""), "server.js", "app.js", "index.js", "main.js",
                             "src/server.js", "src/app.js", "src/index.js") if m and (project.folder / m).is_file()),
                "index.js")
    if "start" in scripts:
        start, start_why = "npm start", f"package.json's start script: {scripts['start']}"
    else:
        start, start_why = f"node {main}", "package.json has no start script: its main file"
    result = Guess(name=name, runtime="node", kind="web" if web else "command",
                   kind_why=", ".join(web) if web else "a Node program without a web framework: a worker or CLI",
                   flow="authorization_code" if web else "client_credentials", found=found,
                   start=start, start_why=start_why)
    if "next" in deps:
        result.start, result.start_why = "npx next start --port {port}", "Next.js: run `npm run build` once first"
        result.ready_timeout = 60
    _node_client_rules(project, result)
    sign = 2 if web else 1 if noted else 0
    return result, sign


def _node_client_rules(project: Project, result: Guess) -> None:
    """tls, the SDK's own environment variables and its routes, by what the OAuth client library does."""
    deps = project.node_deps
    passport = [name for name in ("passport-openidconnect", "passport-oauth2") if name in deps]
    if passport:
        # both strategies send their requests with the oauth package, over http or https as the URL says
        result.tls_why = f"{passport[0]} (the oauth package under it) accepts the mock's plain-http URLs"
    if "express-openid-connect" in deps:
        result.sdk = "express-openid-connect"
        result.tls_why = "express-openid-connect (openid-client v4 under it) accepts a plain-http issuer"
    major = _major(_installed(project, "openid-client")) if "openid-client" in deps else None
    if "openid-client" in deps and (major is None or major >= 6):
        result.tls = True
        result.tls_why = ("openid-client v6 refuses plain-http issuers (discovery fails unless the app allows "
                          "insecure requests): the mock serves https with the run's CA, which Node trusts "
                          "through NODE_EXTRA_CA_CERTS" if major else
                          "openid-client's version is not pinned: v6 and later refuse plain-http issuers")
    auth0_next = _major(_installed(project, "@auth0/nextjs-auth0")) if "@auth0/nextjs-auth0" in deps else None
    if auth0_next is not None:
        v4 = auth0_next >= 4
        result.sdk = f"@auth0/nextjs-auth0 v{4 if v4 else 3}"
        result.redirect_path, result.login_path = ("/auth/callback", "/auth/login") if v4 else \
            ("/api/auth/callback", "/api/auth/login")
        if v4:
            result.tls, result.tls_why = True, "@auth0/nextjs-auth0 v4 (oauth4webapi) refuses plain-http issuers"


def _installed(project: Project, package: str) -> str:
    """The installed version of a Node package when node_modules has it, else the spec in package.json."""
    installed = project.folder / "node_modules" / package / "package.json"
    if installed.is_file():
        try:
            version = json.loads(installed.read_text(encoding="utf-8")).get("version")
        except (OSError, ValueError, AttributeError):
            version = None
        if isinstance(version, str):
            return version
    return project.node_deps.get(package, "")


def _python(project: Project) -> tuple[Guess, int] | None:
    if not project.has_python:
        return None
    deps = project.python_deps
    noted = [name for name in PYTHON_NOTED if name in deps]
    where = ", ".join(project.python_manifests) or "Python sources"
    found = [f"{where}: {', '.join(noted) or 'none of ' + ', '.join(PYTHON_CLIENTS)}"]
    name = str(_dict((project.pyproject or {}).get("project")).get("name") or
               _dict(_dict(_dict((project.pyproject or {}).get("tool")).get("poetry"))).get("name") or
               project.folder.name)
    result = Guess(name=name, runtime="python", kind="web", kind_why="", flow="authorization_code", found=found)
    aiohttp_web = "aiohttp" in deps and any(re.search(r"from aiohttp import .*\bweb\b|aiohttp\.web", text)
                                            for _, text in project.python_files)
    if "django" in deps:
        manage = next((p for p in ("manage.py", *sorted(str(q.relative_to(project.folder).as_posix())
                                                          for q in project.folder.glob("*/manage.py")))
                       if (project.folder / p).is_file()), "manage.py")
        result.kind_why, result.start = "Django", f"python3 {manage} runserver 127.0.0.1:{{port}}"
        result.start_why = "Django's development server (its autoreloader's child is followed too)"
    elif "fastapi" in deps:
        module, variable = _app_object(project, r"(\w+)\s*(?::\s*\w+\s*)?=\s*FastAPI\(", "main", "app")
        result.kind_why, result.start = "FastAPI", f"uvicorn {module}:{variable} --port {{port}}"
        result.start_why = "uvicorn serving the FastAPI object (pip install uvicorn if the app lacks it)"
    elif "flask" in deps:
        module, variable = _app_object(project, r"(\w+)\s*(?::\s*\w+\s*)?=\s*Flask\(", "app", "app")
        script = module.replace(".", "/") + ".py"
        text = dict(project.python_files).get(script, "")
        result.kind_why = "Flask"
        if re.search(r"if __name__ == ['\"]__main__['\"]", text):
            result.start = f"python3 {script}"
            result.start_why = f"{script} runs the app itself: it must listen on $PORT"
        else:
            result.start = f"flask --app {module} run --port {{port}}"
            result.start_why = "Flask's development server"
    elif aiohttp_web:
        script = next((p for p, t in project.python_files if "run_app(" in t), "app.py")
        result.kind_why, result.start = "aiohttp.web", f"python3 {script}"
        result.start_why = f"{script} runs the app: it must listen on $PORT"
    else:
        _python_without_web(project, result)
    clients = [name for name in PYTHON_CLIENTS if name in deps]
    sign = 2 if result.kind == "web" else 1 if clients or result.factory else 0
    return result, sign


def _python_client_rules(project: Project, result: Guess) -> None:
    """tls, and the switch oauthlib needs, by what the app's OAuth client library accepts over plain http."""
    deps = project.python_deps
    if deps & {"requests-oauthlib", "oauthlib"}:
        # oauthlib raises InsecureTransportError for every http:// URL (token endpoint, API, the callback
        # URL fetch_token() parses) unless OAUTHLIB_INSECURE_TRANSPORT is set: https on the mock covers
        # Request Finance's URLs, and an app that insists on https for them itself still runs
        result.tls = True
        setter = _sets_variable(project, "OAUTHLIB_INSECURE_TRANSPORT")
        if setter or result.kind != "web":
            result.tls_why = "oauthlib refuses http:// URLs (InsecureTransportError): the mock serves https, " + (
                f"and {setter} sets OAUTHLIB_INSECURE_TRANSPORT itself for the app's own callback" if setter
                else "as Request Finance does")
            return
        result.tls_why = ("oauthlib refuses http:// URLs (InsecureTransportError): the mock serves https, and "
                          "OAUTHLIB_INSECURE_TRANSPORT (below) lets the app's own http://localhost callback through")
        result.rule_env.append(EnvLine("OAUTHLIB_INSECURE_TRANSPORT", "1", (
            "oauthlib refuses every http:// URL, the app's own callback on http://localhost (which fetch_token() "
            "parses) included; for runs under rfcheck only: production is https end to end and leaves it unset")))
    elif "authlib" in deps:
        result.tls_why = ("Authlib's OAuth client checks no URL scheme (is_secure_transport and "
                          "AUTHLIB_INSECURE_TRANSPORT guard Authlib's server side only): the mock's plain http works")


def _sets_variable(project: Project, name: str) -> str | None:
    """``file:line`` of the Python source that sets environment variable ``name`` itself, if one does."""
    quoted = rf"['\"]{name}['\"]"
    setter = re.compile(rf"environ\[\s*{quoted}\s*\]\s*=(?!=)|environ\.setdefault\(\s*{quoted}|putenv\(\s*{quoted}"
                        rf"|environ\.update\(.*\b{name}\b")
    for path, text in project.python_files:
        for number, line in enumerate(text.splitlines(), 1):
            if (match := setter.search(line)) and not _in_comment(line[:match.start()], path):
                return f"{path}:{number}"
    return None


def _python_without_web(project: Project, result: Guess) -> None:
    """A library (python kind, in process) or a worker/CLI (command kind)."""
    factories = [path for path, text in project.python_files if re.search(r"^def make_target\(", text, flags=re.M)
                 and "/tests/" not in f"/{path}" and not path.startswith("test")]
    fixture = any(path.endswith("conftest.py") and "def rfcheck_target(" in text for path, text in project.python_files)
    entry = _python_entry(project)
    if factories and _module_name(factories[0]):
        result.kind, result.factory = "python", f"{_module_name(factories[0])}:make_target"
        result.kind_why = "a Python library whose make_target() rfcheck calls in process"
        result.factory_why = f"make_target in {factories[0]}"
    elif fixture:
        result.kind, result.kind_why = "python", "a Python library with a rfcheck_target fixture in its conftest"
        result.factory_why = "none: the rfcheck_target fixture in conftest.py makes the target"
    elif entry:
        result.kind, result.flow, (result.start, result.start_why) = "command", "client_credentials", entry
        result.kind_why = "a Python program without a web framework: a worker or CLI"
    else:
        result.kind, result.factory = "python", "rfcheck_adapter:make_target"
        result.kind_why = "a Python library without a web framework or an entry point: rfcheck calls it in process"
        result.factory_why = ("rfcheck_adapter.py is yours to write beside this file: make_target(env) returns an "
                              "object with start_login(), finish_login(url) and exercise() built on your library")
    if result.kind == "python" and _only_client_credentials(project):
        result.flow = "client_credentials"


def _python_entry(project: Project) -> tuple[str, str] | None:
    for path, _ in project.python_files:
        parts = path.split("/")
        if parts[-1] == "__main__.py" and (len(parts) == 2 or (len(parts) == 3 and parts[0] == "src")):
            package = parts[-2]
            return f"python3 -m {package}", f"{path}: the package runs as a program"
    scripts = [(p, t) for p, t in project.python_files
               if "/" not in p and not p.startswith(("test", "conftest", "setup"))
               and re.search(r"^if __name__ == ['\"]__main__['\"]", t, flags=re.M)]
    preferred = ("main.py", "worker.py", "cli.py", "run.py", "sync.py", "app.py")
    scripts.sort(key=lambda item: (preferred.index(item[0]) if item[0] in preferred else len(preferred), item[0]))
    if scripts:
        return f"python3 {scripts[0][0]}", f"{scripts[0][0]} runs as a script"
    console = _dict(_dict((project.pyproject or {}).get("project")).get("scripts"))
    if console:
        script = next(iter(console))
        return script, f"the console script {script} of pyproject.toml (installed with pip install -e .)"
    return None


def _only_client_credentials(project: Project) -> bool:
    text = "\n".join(t for _, t in project.sources)
    return "client_credentials" in text and not re.search(r"authorization_code|code_challenge|redirect_uri", text)


def _module_name(path: str) -> str | None:
    parts = path[:-3].split("/")
    return ".".join(parts) if all(part.isidentifier() for part in parts) else None


def _app_object(project: Project, pattern: str, module: str, variable: str) -> tuple[str, str]:
    """``(module, variable)`` of the file that creates the app object (Flask, FastAPI), or the defaults."""
    for path, text in project.python_files:
        match = re.search(pattern, text)
        name = _module_name(path)
        if match and name and not path.startswith(("test", "tests/")):
            return name, match.group(1)
    return module, variable


def _jvm(project: Project) -> tuple[Guess, int] | None:
    build = project.jvm_build
    if build is None:
        return _java_single_file(project)
    file, text = build
    web = [dep for dep in JVM_WEB if dep in text]
    spring = "spring-boot" in text
    if file == "pom.xml":
        stripped = re.sub(r"<parent>.*?</parent>|<dependencies>.*</dependencies>", "", text, flags=re.S)
        match = re.search(r"<artifactId>\s*([^<\s]+)\s*</artifactId>", stripped)
        name = match.group(1) if match else project.folder.name
        start = "mvn -q spring-boot:run -Dspring-boot.run.arguments=--server.port={port}" if spring and web \
            else "mvn -q exec:java"
    else:
        settings = next((_read_text(project.folder / f) for f in ("settings.gradle.kts", "settings.gradle")
                         if (project.folder / f).is_file()), "")
        match = re.search(r"rootProject\.name\s*=\s*['\"]([^'\"]+)['\"]", settings)
        name = match.group(1) if match else project.folder.name
        gradle = "./gradlew" if (project.folder / "gradlew").is_file() else "gradle"
        start = f"{gradle} -q bootRun --args=--server.port={{port}}" if spring and web else f"{gradle} -q run"
    result = Guess(name=name, runtime="jvm", kind="web" if web else "command",
                   kind_why=", ".join(web) if web else "a JVM program without a web framework: a worker or CLI",
                   flow="authorization_code" if web else "client_credentials",
                   found=[f"{file}: " + (", ".join(web) if web else "a JVM build without a web framework")],
                   start=start, start_why=f"the {file} build runs the app", ready_timeout=120, step_timeout=60)
    return result, 2 if web else 1


def _java_single_file(project: Project) -> tuple[Guess, int] | None:
    mains = [path for path, text in project.source(".java") if "/" not in path and "static void main(" in text]
    if not mains:
        return None
    preferred = ("Main.java", "App.java", "Worker.java", "Application.java")
    mains.sort(key=lambda p: (preferred.index(p) if p in preferred else len(preferred), p))
    return Guess(name=project.folder.name, runtime="jvm", kind="command",
                 kind_why="a single-file Java program: a worker or CLI", flow="client_credentials",
                 found=[f"Java sources with a main method: {', '.join(mains)}"], start=f"java {mains[0]}",
                 start_why="Java's source launcher, which compiles on every run", step_timeout=60), 1


def _go(project: Project) -> tuple[Guess, int] | None:
    if project.go_mod is None:
        return None
    match = re.search(r"^module\s+(\S+)", project.go_mod, flags=re.M)
    name = match.group(1).rstrip("/").split("/")[-1] if match else project.folder.name
    web = [dep.split("/", 1)[1] for dep in GO_WEB if dep in project.go_mod]
    if not web and project.grep(re.compile(r"http\.ListenAndServe"), ".go"):
        web = ["net/http server"]
    result = Guess(name=name, runtime="go", kind="web" if web else "command",
                   kind_why=", ".join(web) if web else "a Go program without an HTTP server: a worker or CLI",
                   flow="authorization_code" if web else "client_credentials",
                   found=[f"go.mod: {', '.join(web) or 'no web framework'}"], start="go run .",
                   start_why="compiles and runs the main package, which must listen on $PORT" if web else
                   "compiles and runs the main package", ready_timeout=120 if web else 30, step_timeout=60)
    return result, 2 if web else 1


def _flow_paths(project: Project, result: Guess) -> None:
    """The login and callback paths and the pages that make the app call the API, from quoted routes."""
    if result.kind != "web":
        return
    code = "\n".join(text for _, text in project.source(*CODE_SUFFIXES))
    routes = Counter(re.findall(r"['\"`](/[\w./:-]*|[\w-]+(?:/[\w-]+)*/)['\"`]", code))
    ordered = [route for route, _ in routes.most_common() if ":" not in route]
    # a callback route; else one ending in /redirect (Passport's tutorials: /oauth2/redirect)
    callbacks = [route for route in ordered if "callback" in route.lower()] or \
        [route for route in ordered if route.lower().rstrip("/").endswith("/redirect")]
    logins = [route for route in ordered if "login" in route.lower()]
    for attribute, found in (("redirect_path", callbacks), ("login_path", logins)):
        if found:
            setattr(result, attribute, found[0] if found[0].startswith("/") else "/" + found[0])
    invoices = [route for route, _ in routes.most_common() if "invoice" in route.lower() and ":" not in route
                and route.startswith("/") and "{" not in route]
    if invoices:
        result.actions = [sorted(invoices, key=len)[0]]


def _environment(project: Project, result: Guess) -> None:
    """``[target.env]``: the names the project reads (from .env.example, the SDK's own, the sources, else RF_*)."""
    example = next((name for name in ENV_EXAMPLES if (project.folder / name).is_file()), None)
    listed = _listed_names(project.folder / example) if example else []
    referenced = _env_names(project)
    for name in listed + referenced:  # real client IDs, for SEC-02 only
        for suffix in ("test", "live"):
            if name.upper().endswith(f"CLIENT_ID_{suffix.upper()}"):
                result.client_ids.setdefault(f"client_id_{suffix}", name)
    if result.kind == "python":
        return
    # the SDKs build the redirect URI from their base URL: no variable of its own
    derived = {"{redirect_uri}"} if result.flow == "client_credentials" or result.sdk else set()
    needed = [p for p in _NEEDED[result.kind] if p not in derived]
    for name in listed:
        value = _classify(name, result)
        if name in result.client_ids.values():
            continue
        if value is None:
            result.env.append(EnvLine(name, "", f"in {example}, not a setting rfcheck fills in: set it here if the "
                                                 "app needs it (with a value of its own, never a real secret)", False))
        else:
            result.env.append(EnvLine(name, value, f"in {example}; {_MEANING[value]}"))
    for name, value in _SDK_ENV.get(result.sdk, ()):
        _put(result, EnvLine(name, value, f"read by {result.sdk} itself; {_MEANING[value]}"), keep_active=True)
    covered = {line.value for line in result.env if line.active}
    from_sources = []
    wanted = (*needed, "{audience}", APP_URL, AUTH_DOMAIN, SESSION_KEY)
    for name in referenced:
        value = _classify(name, result)
        if value in wanted and value not in covered and all(line.name != name for line in result.env):
            result.env.append(EnvLine(name, value, f"read by the sources; {_MEANING[value]}"))
            from_sources.append(name)
    _defaults(result, needed, {line.value for line in result.env}, bool(listed or from_sources or result.sdk))
    for line in result.rule_env:
        _put(result, line)
    for line in result.env:
        if line.value == SESSION_KEY:
            line.value = secrets.token_hex(32)  # 32 random bytes, as the SDKs document (openssl rand -hex 32)
    result.domain_env = any(line.active and line.value == AUTH_DOMAIN for line in result.env)
    result.env_source = " and ".join(([example] if example else []) + ([f"{result.sdk}'s own"] if result.sdk else [])
                                     + (["the sources"] if from_sources else []))


def _listed_names(example: Path) -> list[str]:
    listed: list[str] = []
    for line in _read_text(example).splitlines():
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match and match.group(1) not in listed:
            listed.append(match.group(1))
    return listed


def _env_names(project: Project) -> list[str]:
    """The environment variable names the sources read, in order of first appearance."""
    found = (match.group(1) or match.group(2) for _, text in project.source(*SOURCE_SUFFIXES)
             for match in _ENV_NAME.finditer(text))
    return list(dict.fromkeys(found))


def _put(result: Guess, env: EnvLine, keep_active: bool = False) -> None:
    """Add ``env``, or let it take the place of the line of the same name (``keep_active``: an inactive one only)."""
    for index, line in enumerate(result.env):
        if line.name == env.name:
            if not (keep_active and line.active):
                result.env[index] = env
            return
    result.env.append(env)


def _defaults(result: Guess, needed: list[str], covered: set[str], named: bool) -> None:
    """The RF_* lines for what the project names no variable for (``named``: it names some others)."""
    for placeholder in needed:
        name = _DEFAULT_NAMES[placeholder]
        if placeholder == "{port}" and not any(line.name == name for line in result.env):
            # the port rfcheck picks has to reach the app; PORT is what most apps and frameworks read
            result.env.append(EnvLine(name, placeholder, _MEANING[placeholder]))
        elif placeholder in covered:
            continue
        elif result.hits and placeholder in ("{issuer}", "{api_url}"):
            result.env.append(EnvLine(name, placeholder, "no such name found: the app hard-codes the real hosts "
                                                         "(see [target.intercept])", False))
        elif named:
            result.env.append(EnvLine(name, placeholder, f"no such name found in the project: rename it to the one "
                                                         f"your app reads; {_MEANING[placeholder]}", False))
        else:
            result.env.append(EnvLine(name, placeholder, f"{_MEANING[placeholder]} (rename to what your app reads)"))


def _classify(name: str, result: Guess) -> str | None:
    upper = name.upper()
    if upper.endswith(("_TEST", "_LIVE")) and "CLIENT" in upper:
        return None  # real client IDs, for SEC-02 (client_id_test / client_id_live): never rfcheck's
    for pattern, value in _ENV_RULES:
        if pattern.search(upper):
            if value in (APP_URL, "{port}", SESSION_KEY) and result.kind != "web":
                return None
            return value
    return None


# -- writing -------------------------------------------------------------------------------------------------
def _q(value: str) -> str:
    """``value`` as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value)


def render(result: Guess) -> str:
    """The commented rfcheck.toml for ``result``."""
    lines = [
        f"# {CONFIG_NAME}: how rfcheck runs this integration (`pytest --rfcheck`, or `rfcheck check`).",
        "# Written by `rfcheck init` from what it found here; every value is a guess: review each one.",
        *[f"#   found: {line}" for line in result.found],
        "# No secrets belong in this file: rfcheck issues a fresh client ID and secret for every run and",
        "# hands them to the app through the {placeholders}. A mistake here is a usage error naming the key.",
        "",
        "[target]",
        "# shown in the reports",
        f"name = {_q(result.name)}",
        "# python (an adapter rfcheck calls inside pytest) | web (an app rfcheck starts and drives as a browser",
        "# would) | command (a worker or CLI rfcheck runs once per unit of work)",
        f"kind = {_q(result.kind)}   # {result.kind_why}",
        "# authorization_code (a user logs in) | client_credentials (a machine-to-machine worker)",
        f"flow = {_q(result.flow)}" + ("   # command targets have no login" if result.kind == "command" else ""),
        "# the X-Network value this deployment must send: test | live (--rfcheck-network overrides it)",
        'network = "test"',
    ]
    if result.flow == "authorization_code":
        uri = f"http://localhost:{{port}}{result.redirect_path}" if result.kind == "web" \
            else f"http://localhost:8000{result.redirect_path}"
        lines += ["# the redirect URI rfcheck registers for the app; it must be the one the app sends"
                  + (" ({port}: the free port rfcheck picks)" if result.kind == "web" else ""),
                  f"redirect_uri = {_q(uri)}"]
    else:
        lines += ["# redirect_uri: not used by the client credentials flow"]
    lines += [
        "# the scopes the app may be granted (these five are the default)",
        f"scopes = [{', '.join(_q(scope) for scope in SCOPES)}]",
        "# the folder scanned for plaintext secrets (SEC-01), relative to this file",
        'project = "."',
        "# true: the mock serves https ({issuer}, {api_url}) with a CA made for this run, which the app's",
        "# environment trusts (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS)",
        f"tls = {str(result.tls).lower()}   # {result.tls_why}",
        "# optional, for SEC-02: the real test and live client IDs, read from environment variables",
        *[f"client_id_{network} = {_q('env:' + result.client_ids[key])}" if key in result.client_ids else
          f'# client_id_{network} = "env:RF_CLIENT_ID_{network.upper()}"'
          for network in ("test", "live") for key in [f"client_id_{network}"]],
        "",
    ]
    lines += {"web": _web_lines, "command": _command_lines, "python": _python_lines}[result.kind](result)
    if result.kind != "python":
        lines += ["", "[target.env]",
                  "# added to the app's environment; {placeholders} are filled in for every run"]
        width = max((len(line.name) for line in result.env), default=0)
        for env in result.env:
            text = f"{env.name.ljust(width)} = {_q(env.value)}"
            lines.append(f"{text}   # {env.note}" if env.active else f"# {text}   # {env.note}")
        lines += [""] + _intercept_lines(result)
    lines += [
        "",
        "# manual requirements (MAN-01 ... MAN-06) a person has confirmed, each with a note; uncomment to record:",
        "# [target.confirm]",
        '# MAN-01 = "integration@acme.com, created 2026-11-02, password in the vault"',
        "",
        "# should-level shortfalls accepted on purpose, each with its reason (a must requirement cannot be):",
        "# [target.accept]",
        '# ORG-02 = "acts on personal invoices only; decided with finance on 2026-11-20"',
    ]
    return "\n".join(lines) + "\n"


def _web_lines(result: Guess) -> list[str]:
    return [
        "[target.web]",
        f"# shell command run in this folder; rfcheck stops its whole process group ({result.start_why})",
        f"start = {_q(result.start)}",
        "# where the app listens ({port}: a free port rfcheck picks, also given to the app as PORT below)",
        f"url = {_q(APP_URL)}",
        "# polled with GET until it answers",
        'ready = "/"',
        "# GET starts the authorization code flow (the app answers with a redirect to /authorize)",
        f"login = {_q(result.login_path)}",
        "# GETs, as the logged-in user, that make the app call the API (list invoices, ...)",
        f"actions = [{', '.join(_q(action) for action in result.actions)}]",
        "# scenario: a fresh process per scenario | session: one for the whole run",
        'restart = "scenario"',
        "# seconds to wait: for `ready` to answer, and for every other step",
        f"ready_timeout = {result.ready_timeout}",
        f"step_timeout = {result.step_timeout}   # a step that takes longer fails its scenario",
    ]


def _command_lines(result: Guess) -> list[str]:
    return [
        "[target.command]",
        f"# one unit of API work per run, in this folder; exit status 0 = success ({result.start_why})",
        f"run = {_q(result.start)}",
        "# serve: a long-running worker instead of run, with actions (HTTP GETs on it) that trigger a unit of work",
        '# serve = ""',
        "# actions = []",
        "# seconds every run may take",
        f"step_timeout = {result.step_timeout}",
    ]


def _python_lines(result: Guess) -> list[str]:
    lines = [
        "[target.python]",
        "# module:callable, imported with this folder on sys.path and called once per scenario with an",
        "# rfcheck.Environment (issuer, api_url, client_id, client_secret, redirect_uri, network).",
        "# In process, httpx calls to https://auth.request.finance and https://api.request.finance reach the",
        "# mock with no configuration; other HTTP clients must use env.issuer and env.api_url.",
        "# [target.env] and [target.intercept] are for web and command targets: not needed here.",
    ]
    if result.factory:
        lines += [f"factory = {_q(result.factory)}   # {result.factory_why}"]
    else:
        lines += [f'# factory = "module:make_target"   # {result.factory_why}']
    return lines


def _intercept_lines(result: Guess) -> list[str]:
    if result.hits:
        why = f"the sources hard-code the real hosts ({', '.join(result.hits[:3])}" + \
              (", ..." if len(result.hits) > 3 else "") + ")"
    elif result.domain_env:
        why = f"a *_DOMAIN variable is set to {AUTH_DOMAIN}, the real host"
    else:
        why = "no hard-coded https://auth.request.finance or https://api.request.finance found"
    runtime = {"node": "Node's http/https and fetch ignore HTTPS_PROXY",
               "python": "aiohttp and clients that pin their own resolution ignore HTTPS_PROXY",
               "jvm": "the JVM ignores HTTPS_PROXY",
               "go": "Go honours HTTPS_PROXY, which is what hosts = true uses for it"}[result.runtime]
    return [
        "[target.intercept]",
        "# hosts = true: every connection the app opens to auth.request.finance or api.request.finance reaches",
        "# the mock, whatever its HTTP client, by instrumenting its runtime as it starts (no change to the app)",
        f"hosts = {str(result.hosts).lower()}   # {why}",
        "# proxy = true: the same through HTTP(S)_PROXY, for an app whose HTTP client honours it",
        f"proxy = false   # the alternative to hosts = true ({runtime})",
    ]

