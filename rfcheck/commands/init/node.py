"""Node.js projects: the web frameworks, the start command, and what the OAuth client libraries accept."""

from __future__ import annotations

import json


from rfcheck.commands.init.model import Guess, NODE_NOTED, NODE_WEB
from rfcheck.commands.init.project import Project, as_dict, major_version


def node_guess(project: Project) -> tuple[Guess, int] | None:
    if project.package is None:
        return None
    deps, package = project.node_deps, project.package
    noted = [name for name in deps if name in NODE_WEB or name in NODE_NOTED or name.startswith("@auth0/")]
    listed = ", ".join(f"{name} {_installed(project, name)}".strip() for name in noted)
    found = ["package.json: " + (listed or "no web or OAuth package among its dependencies")]
    name = str(package.get("name") or "") or project.folder.name
    web = [dep for dep in NODE_WEB if dep in deps]
    scripts = as_dict(package.get("scripts"))
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
    major = major_version(_installed(project, "openid-client")) if "openid-client" in deps else None
    if "openid-client" in deps and (major is None or major >= 6):
        result.tls = True
        result.tls_why = ("openid-client v6 refuses plain-http issuers (discovery fails unless the app allows "
                          "insecure requests): the mock serves https with the run's CA, which Node trusts "
                          "through NODE_EXTRA_CA_CERTS" if major else
                          "openid-client's version is not pinned: v6 and later refuse plain-http issuers")
    auth0_next = major_version(_installed(project, "@auth0/nextjs-auth0")) if "@auth0/nextjs-auth0" in deps else None
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
