"""The environment that points the app at the mock, the login and callback paths, and hard-coded hosts."""

from __future__ import annotations

import re
import secrets
from collections import Counter
from pathlib import Path

from rfcheck.commands.init.model import (APP_URL, AUTH_DOMAIN, CODE_SUFFIXES, DEFAULT_NAMES, ENV_EXAMPLES, ENV_NAME,
                                         ENV_RULES, EnvLine, Guess, HOST_IN_CODE, HOST_IN_CONFIG, MEANING, NEEDED,
                                         SDK_ENV, SESSION_KEY, SOURCE_SUFFIXES)
from rfcheck.commands.init.project import Project, read_text


def host_hits(project: Project) -> list[str]:
    hits = []
    for path, text in project.sources:
        pattern = HOST_IN_CODE if path.endswith(CODE_SUFFIXES) else HOST_IN_CONFIG
        for number, line in enumerate(text.splitlines(), 1):
            if (match := pattern.search(line)) and not in_comment(line[:match.start()], path):
                hits.append(f"{path}:{number} {match.group(1)}")
    return hits


def in_comment(before: str, path: str) -> bool:
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


def flow_paths(project: Project, result: Guess) -> None:
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


def fill_environment(project: Project, result: Guess) -> None:
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
    needed = [p for p in NEEDED[result.kind] if p not in derived]
    for name in listed:
        value = _classify(name, result)
        if name in result.client_ids.values():
            continue
        if value is None:
            result.env.append(EnvLine(name, "", f"in {example}, not a setting rfcheck fills in: set it here if the "
                                                 "app needs it (with a value of its own, never a real secret)", False))
        else:
            result.env.append(EnvLine(name, value, f"in {example}; {MEANING[value]}"))
    for name, value in SDK_ENV.get(result.sdk, ()):
        _put(result, EnvLine(name, value, f"read by {result.sdk} itself; {MEANING[value]}"), keep_active=True)
    covered = {line.value for line in result.env if line.active}
    from_sources = []
    wanted = (*needed, "{audience}", APP_URL, AUTH_DOMAIN, SESSION_KEY)
    for name in referenced:
        value = _classify(name, result)
        if value in wanted and value not in covered and all(line.name != name for line in result.env):
            result.env.append(EnvLine(name, value, f"read by the sources; {MEANING[value]}"))
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
    for line in read_text(example).splitlines():
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match and match.group(1) not in listed:
            listed.append(match.group(1))
    return listed


def _env_names(project: Project) -> list[str]:
    """The environment variable names the sources read, in order of first appearance."""
    found = (match.group(1) or match.group(2) for _, text in project.source(*SOURCE_SUFFIXES)
             for match in ENV_NAME.finditer(text))
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
        name = DEFAULT_NAMES[placeholder]
        if placeholder == "{port}" and not any(line.name == name for line in result.env):
            # the port rfcheck picks has to reach the app; PORT is what most apps and frameworks read
            result.env.append(EnvLine(name, placeholder, MEANING[placeholder]))
        elif placeholder in covered:
            continue
        elif result.hits and placeholder in ("{issuer}", "{api_url}"):
            result.env.append(EnvLine(name, placeholder, "no such name found: the app hard-codes the real hosts "
                                                         "(see [target.intercept])", False))
        elif named:
            result.env.append(EnvLine(name, placeholder, f"no such name found in the project: rename it to the one "
                                                         f"your app reads; {MEANING[placeholder]}", False))
        else:
            result.env.append(EnvLine(name, placeholder, f"{MEANING[placeholder]} (rename to what your app reads)"))


def _classify(name: str, result: Guess) -> str | None:
    upper = name.upper()
    if upper.endswith(("_TEST", "_LIVE")) and "CLIENT" in upper:
        return None  # real client IDs, for SEC-02 (client_id_test / client_id_live): never rfcheck's
    for pattern, value in ENV_RULES:
        if pattern.search(upper):
            if value in (APP_URL, "{port}", SESSION_KEY) and result.kind != "web":
                return None
            return value
    return None
