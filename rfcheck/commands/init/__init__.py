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
from pathlib import Path

from rfcheck.commands import UsageError
from rfcheck.config import ConfigError, load_config
from rfcheck.commands.init.environment import fill_environment, flow_paths, host_hits
from rfcheck.commands.init.jvm import go_guess, jvm_guess
from rfcheck.commands.init.model import CONFIG_NAME, Guess
from rfcheck.commands.init.node import node_guess
from rfcheck.commands.init.project import Project, as_dict
from rfcheck.commands.init.python import python_guess, python_client_rules
from rfcheck.commands.init.render import render

__all__ = ["Guess", "add_arguments", "guess", "render", "run"]


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
    if project.pyproject is not None and "rfcheck" in as_dict(project.pyproject.get("tool")):
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


# -- guessing ------------------------------------------------------------------------------------------------
def guess(project: Project) -> Guess:
    """The config for ``project``; a UsageError when there is nothing to go on."""
    # each runtime's guess with how strongly it looks like the integration: 2 a web framework,
    # 1 an OAuth or HTTP client (or an entry point), 0 merely present; ties go to the first listed
    present: list[tuple[Guess, int]] = []
    for build in (node_guess, python_guess, jvm_guess, go_guess):
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
    result.hits = host_hits(project)
    if result.kind == "python" and result.hits and "httpx" not in project.python_deps:
        result.found.append("the sources hard-code the real hosts without httpx: make the adapter point the "
                            "client at env.issuer and env.api_url")
    flow_paths(project, result)
    if result.runtime == "python" and result.kind != "python":
        python_client_rules(project, result)
    fill_environment(project, result)
    return result


