"""Python projects: the web frameworks, libraries and programs, and what oauthlib and Authlib accept."""

from __future__ import annotations

import re


from rfcheck.commands.init.environment import in_comment
from rfcheck.commands.init.model import EnvLine, Guess, PYTHON_CLIENTS, PYTHON_NOTED
from rfcheck.commands.init.project import Project, as_dict


def python_guess(project: Project) -> tuple[Guess, int] | None:
    if not project.has_python:
        return None
    deps = project.python_deps
    noted = [name for name in PYTHON_NOTED if name in deps]
    where = ", ".join(project.python_manifests) or "Python sources"
    found = [f"{where}: {', '.join(noted) or 'none of ' + ', '.join(PYTHON_CLIENTS)}"]
    name = str(as_dict((project.pyproject or {}).get("project")).get("name") or
               as_dict(as_dict(as_dict((project.pyproject or {}).get("tool")).get("poetry"))).get("name") or
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


def python_client_rules(project: Project, result: Guess) -> None:
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
            if (match := setter.search(line)) and not in_comment(line[:match.start()], path):
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
    console = as_dict(as_dict((project.pyproject or {}).get("project")).get("scripts"))
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
