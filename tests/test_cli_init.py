"""``rfcheck init``: through the real entry point, on small fake projects of every kind and on copies
of the examples. Every config it writes must load, and one must also run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rfcheck.config import PLACEHOLDERS, TargetConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def rfcheck(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rfcheck", *args], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout)


def project(folder: Path, files: dict[str, str | dict[str, Any]]) -> Path:
    """Write ``files`` (a dict value is written as JSON) under ``folder``."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) if isinstance(content, dict) else content, encoding="utf-8")
    return folder


def init(folder: Path) -> tuple[TargetConfig, str, str]:
    """Run ``rfcheck init folder``; return the config it wrote (loaded), the file's text and stdout."""
    done = rfcheck("init", str(folder))
    assert done.returncode == 0, done.stderr
    written = folder / "rfcheck.toml"
    assert f"wrote {written.resolve()}" in done.stdout
    return load_config(written), written.read_text(encoding="utf-8"), done.stdout


def copy_example(name: str, into: Path) -> Path:
    """A copy of an example without its rfcheck configs (and without node_modules)."""
    target = into / Path(name).name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("node_modules", "*.toml"))
    return target


def active_env(cfg: TargetConfig) -> dict[str, str]:
    return dict(cfg.env)


# -- help and bad input ------------------------------------------------------------------------------------
def test_help_describes_the_command_and_offers_no_force() -> None:
    done = rfcheck("init", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: rfcheck init [-h] [FOLDER]" in done.stdout
    assert "never overwritten" in " ".join(done.stdout.split())
    assert "--force" not in done.stdout


def test_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    done = rfcheck("init", str(missing))
    assert done.returncode == 3
    assert done.stderr.strip() == f"rfcheck init: {missing}: no such folder"
    assert not missing.exists()


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    file = project(tmp_path, {"app.py": "print('hi')\n"}) / "app.py"
    done = rfcheck("init", str(file))
    assert done.returncode == 3
    assert f"{file}: not a folder" in done.stderr
    assert not (tmp_path / "rfcheck.toml").exists()


def test_a_folder_with_nothing_to_go_on_is_refused(tmp_path: Path) -> None:
    project(tmp_path, {"README.md": "# notes\nhttps://auth.request.finance\n"})
    done = rfcheck("init", str(tmp_path))
    assert done.returncode == 3
    assert "found no project to look at" in done.stderr and str(tmp_path) in done.stderr
    assert not (tmp_path / "rfcheck.toml").exists()


def test_an_invalid_package_json_is_named(tmp_path: Path) -> None:
    project(tmp_path, {"package.json": "{ not json"})
    done = rfcheck("init", str(tmp_path))
    assert done.returncode == 3
    assert f"{tmp_path / 'package.json'}: invalid JSON" in done.stderr
    assert not (tmp_path / "rfcheck.toml").exists()


def test_an_existing_config_is_never_overwritten(tmp_path: Path) -> None:
    project(tmp_path, {"package.json": {"name": "a", "dependencies": {"express": "^4.19.0"}},
                       "rfcheck.toml": "# mine, by hand\n"})
    done = rfcheck("init", str(tmp_path))
    assert done.returncode == 3
    assert done.stderr.startswith(f"rfcheck init: {tmp_path / 'rfcheck.toml'} already exists")
    assert (tmp_path / "rfcheck.toml").read_text() == "# mine, by hand\n"
    assert "wrote" not in done.stdout


def test_a_second_run_refuses_and_keeps_the_first_config(tmp_path: Path) -> None:
    project(tmp_path, {"package.json": {"name": "a", "dependencies": {"express": "^4.19.0"}}})
    _, first, _ = init(tmp_path)
    (tmp_path / "package.json").write_text(json.dumps({"name": "b", "dependencies": {"axios": "1"}}))
    done = rfcheck("init", str(tmp_path))
    assert done.returncode == 3 and "already exists" in done.stderr
    assert (tmp_path / "rfcheck.toml").read_text(encoding="utf-8") == first


def test_a_pyproject_with_tool_rfcheck_is_left_alone(tmp_path: Path) -> None:
    project(tmp_path, {"pyproject.toml": '[project]\nname = "acme"\ndependencies = ["httpx"]\n\n'
                                         '[tool.rfcheck.target]\nkind = "python"\n'})
    done = rfcheck("init", str(tmp_path))
    assert done.returncode == 3
    assert "pyproject.toml already has [tool.rfcheck]" in done.stderr
    assert not (tmp_path / "rfcheck.toml").exists()


def test_the_default_folder_is_the_current_one(tmp_path: Path) -> None:
    project(tmp_path, {"go.mod": "module example.com/acme/sync\n\ngo 1.22\n", "main.go": "package main\n"})
    done = rfcheck("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cfg = load_config(tmp_path / "rfcheck.toml")
    assert (cfg.name, cfg.kind) == ("sync", "command")


# -- detection, one project of each kind --------------------------------------------------------------------
def test_express_with_openid_client_v6_and_an_env_example(tmp_path: Path) -> None:
    project(tmp_path, {
        "package.json": {"name": "acme-portal", "scripts": {"start": "node server.js"},
                         "dependencies": {"express": "^4.19.0", "openid-client": "^6.1.3", "axios": "^1.7.0"}},
        ".env.example": "AUTH0_ISSUER_BASE_URL=https://auth.request.finance\nAUTH0_CLIENT_ID=\n"
                        "AUTH0_CLIENT_SECRET=\nAUTH0_CALLBACK_URL=http://localhost:3000/auth/callback\n"
                        "REQUEST_FINANCE_API_URL=https://api.request.finance\nSESSION_SECRET=change-me\nPORT=3000\n",
        "server.js": "// calls https://api.request.finance through REQUEST_FINANCE_API_URL\n"
                     "const express = require('express')\nconst app = express()\n"
                     "app.get('/auth/login', login)\napp.get('/auth/callback', callback)\n"
                     "app.get('/invoices', invoices)\n",
        # dependencies and hidden folders are not the project's sources
        "node_modules/some-sdk/index.js": "const AUTH = 'https://auth.request.finance'\n",
        ".cache/x.js": "fetch('https://api.request.finance/invoices')\n",
    })
    cfg, text, out = init(tmp_path)
    assert (cfg.name, cfg.kind, cfg.flow, cfg.network) == ("acme-portal", "web", "authorization_code", "test")
    assert cfg.tls is True and "openid-client v6 refuses plain-http issuers" in text
    assert (cfg.hosts, cfg.proxy) == (False, False)
    assert cfg.web is not None
    assert (cfg.web.start, cfg.web.url, cfg.web.login, cfg.web.actions) == (
        "npm start", "http://localhost:{port}", "/auth/login", ("/invoices",))
    assert cfg.redirect_uri == "http://localhost:{port}/auth/callback"
    env = active_env(cfg)
    session_secret = env.pop("SESSION_SECRET")
    assert env == {"AUTH0_ISSUER_BASE_URL": "{issuer}", "AUTH0_CLIENT_ID": "{client_id}",
                   "AUTH0_CLIENT_SECRET": "{client_secret}", "AUTH0_CALLBACK_URL": "{redirect_uri}",
                   "REQUEST_FINANCE_API_URL": "{api_url}", "PORT": "{port}"}
    # the session cookie key is the app's own: a fresh random value, not .env.example's "change-me"
    assert re.fullmatch(r"[0-9a-f]{64}", session_secret)
    assert re.search(r"^SESSION_SECRET += \"[0-9a-f]{64}\" +# in \.env\.example; the app's session cookie key: "
                     r"a random value rfcheck init made for runs under rfcheck, not a Request Finance credential",
                     text, flags=re.M)
    assert re.search(r'^# RF_NETWORK += "\{network\}" +# no such name found', text, flags=re.M)
    assert "express ^4.19.0, openid-client ^6.1.3, axios ^1.7.0" in out
    assert "environment names from: .env.example" in out


def test_express_with_openid_client_v5_hard_coding_the_hosts(tmp_path: Path) -> None:
    cfg, text, out = init(copy_example("node/express-openid-client-v5", tmp_path))
    assert (cfg.kind, cfg.flow, cfg.tls, cfg.hosts, cfg.proxy) == ("web", "authorization_code", False, True, False)
    assert cfg.web is not None and cfg.web.start == "npm start"
    env = active_env(cfg)
    assert re.fullmatch(r"[0-9a-f]{64}", env.pop("SESSION_SECRET"))  # app.js reads it (with a fallback)
    assert env == {"RF_CLIENT_ID": "{client_id}", "RF_CLIENT_SECRET": "{client_secret}",
                   "RF_REDIRECT_URI": "{redirect_uri}", "RF_NETWORK": "{network}", "PORT": "{port}"}
    assert "request-finance.js:19 https://auth.request.finance" in out
    # the mention in a comment (request-finance.js:79, "// GET https://auth.request.finance/...") is no hit
    assert "request-finance.js:79" not in out
    assert re.search(r"^hosts = true +# the sources hard-code the real hosts \(request-finance\.js:19", text, re.M)
    assert re.search(r"^proxy = false +# the alternative", text, re.M)


def test_the_express_example_needs_tls_and_reads_rf_names(tmp_path: Path) -> None:
    cfg, _, _ = init(copy_example("node/express-app", tmp_path))
    assert (cfg.kind, cfg.tls) == ("web", True)
    assert {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
            "RF_CLIENT_SECRET": "{client_secret}", "RF_NETWORK": "{network}"}.items() <= active_env(cfg).items()


def test_next_with_nextjs_auth0_v3(tmp_path: Path) -> None:
    project(tmp_path, {
        "package.json": {"name": "acme-next", "scripts": {"dev": "next dev", "start": "next start"},
                         "dependencies": {"next": "14.2.3", "@auth0/nextjs-auth0": "^3.5.0", "react": "18"}},
        ".env.local.example": "AUTH0_SECRET=\nAUTH0_BASE_URL=http://localhost:3000\n"
                              "AUTH0_ISSUER_BASE_URL=\nAUTH0_CLIENT_ID=\nAUTH0_CLIENT_SECRET=\n",
    })
    cfg, text, _ = init(tmp_path)
    assert (cfg.kind, cfg.tls) == ("web", False)
    assert cfg.web is not None and cfg.web.start == "npx next start --port {port}"
    assert cfg.web.login == "/api/auth/login" and cfg.redirect_uri.endswith("/api/auth/callback")
    assert active_env(cfg)["AUTH0_BASE_URL"] == "http://localhost:{port}"
    assert active_env(cfg)["AUTH0_ISSUER_BASE_URL"] == "{issuer}"
    assert re.fullmatch(r"[0-9a-f]{64}", active_env(cfg)["AUTH0_SECRET"])
    # the SDK builds its redirect URI from AUTH0_BASE_URL: no RF_REDIRECT_URI line
    assert "RF_REDIRECT_URI" not in text


def test_nextjs_auth0_v4_gets_tls_and_its_domain_through_hosts(tmp_path: Path) -> None:
    project(tmp_path, {
        "package.json": {"name": "acme-next4", "dependencies": {"next": "15.0.0", "@auth0/nextjs-auth0": "4.0.1"}},
        ".env.example": "AUTH0_DOMAIN=\nAUTH0_CLIENT_ID=\nAUTH0_CLIENT_SECRET=\nAPP_BASE_URL=\n",
    })
    cfg, text, _ = init(tmp_path)
    assert cfg.tls is True and cfg.web is not None and cfg.web.login == "/auth/login"
    # the domain is a host name, not a URL: the real one, which hosts = true sends to the mock
    assert active_env(cfg)["AUTH0_DOMAIN"] == "auth.request.finance" and cfg.hosts is True
    assert active_env(cfg)["APP_BASE_URL"] == "http://localhost:{port}"
    # not in .env.example, read by the SDK itself: a fresh session key
    assert re.search(r'^AUTH0_SECRET += "[0-9a-f]{64}" +# read by @auth0/nextjs-auth0 v4 itself; the app\'s '
                     r"session cookie key", text, re.M)


def test_a_node_worker_is_a_client_credentials_command(tmp_path: Path) -> None:
    project(tmp_path, {
        "package.json": {"name": "invoice-sync", "main": "worker.js", "dependencies": {"axios": "^1.7.0"}},
        "worker.js": "const axios = require('axios')\nconst api = process.env.RF_API_URL\n"
                     "const id = process.env.RF_CLIENT_ID, secret = process.env.RF_CLIENT_SECRET\n"
                     "const token = await axios.post(process.env.RF_ISSUER + '/oauth/token', "
                     "{grant_type: 'client_credentials'})\n",
    })
    cfg, text, _ = init(tmp_path)
    assert (cfg.kind, cfg.flow, cfg.hosts) == ("command", "client_credentials", False)
    assert cfg.command is not None and (cfg.command.run, cfg.command.serve) == ("node worker.js", "")
    assert active_env(cfg) == {"RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
                               "RF_CLIENT_SECRET": "{client_secret}", "RF_ISSUER": "{issuer}"}
    assert "# redirect_uri: not used by the client credentials flow" in text


def test_flask_app_that_runs_itself(tmp_path: Path) -> None:
    cfg, _, out = init(copy_example("flask_app", tmp_path))
    assert (cfg.kind, cfg.flow, cfg.tls, cfg.hosts) == ("web", "authorization_code", False, False)
    assert cfg.web is not None and (cfg.web.start, cfg.web.login, cfg.web.actions) == (
        "python3 app.py", "/login", ("/invoices",))
    assert cfg.redirect_uri == "http://localhost:{port}/callback"
    env = active_env(cfg)
    assert re.fullmatch(r"[0-9a-f]{64}", env.pop("FLASK_SECRET_KEY"))  # app.py reads it (with a fallback)
    assert env == {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
                   "RF_CLIENT_SECRET": "{client_secret}", "RF_REDIRECT_URI": "{redirect_uri}",
                   "RF_NETWORK": "{network}", "PORT": "{port}"}
    assert "requirements.txt: authlib, requests, flask" in out
    # app.py names the real hosts only in comments: not hard-coded
    assert "hard-coded" not in out


def test_flask_app_without_a_main_block_runs_with_flask_run(tmp_path: Path) -> None:
    project(tmp_path, {"requirements.txt": "Flask>=3.0\nAuthlib==1.3.0  # oauth\n-r more.txt\n",
                       "wsgi.py": "from flask import Flask\nserver = Flask(__name__)\n"})
    cfg, _, _ = init(tmp_path)
    assert cfg.web is not None and cfg.web.start == "flask --app wsgi run --port {port}"


def test_django_project(tmp_path: Path) -> None:
    project(tmp_path, {
        "pyproject.toml": '[project]\nname = "acme-django"\ndependencies = ["Django>=5", "requests"]\n',
        "manage.py": "import django\n",
        "acme/urls.py": "urlpatterns = [path('oidc/callback/', callback), path('oidc/login/', login)]\n",
    })
    cfg, _, _ = init(tmp_path)
    assert (cfg.name, cfg.kind) == ("acme-django", "web")
    assert cfg.web is not None and cfg.web.start == "python3 manage.py runserver 127.0.0.1:{port}"
    assert cfg.web.login == "/oidc/login/" and cfg.redirect_uri == "http://localhost:{port}/oidc/callback/"


def test_fastapi_project_from_a_pipfile(tmp_path: Path) -> None:
    project(tmp_path, {"Pipfile": '[packages]\nfastapi = "*"\nhttpx = "*"\n\n[dev-packages]\npytest = "*"\n',
                       "service/api.py": "from fastapi import FastAPI\napi: FastAPI = FastAPI()\n"})
    cfg, _, out = init(tmp_path)
    assert cfg.kind == "web" and cfg.web is not None
    assert cfg.web.start == "uvicorn service.api:api --port {port}"
    assert "Pipfile: httpx, fastapi" in out


def test_python_library_without_an_entry_point_gets_an_adapter(tmp_path: Path) -> None:
    project(tmp_path, {"pyproject.toml": '[project]\nname = "acme-rf"\ndependencies = ["httpx>=0.27"]\n',
                       "acme_rf/__init__.py": "import httpx\nAUTH = 'https://auth.request.finance'\n"
                                              "def authorize_url(code_challenge): ...\n"})
    cfg, text, _ = init(tmp_path)
    assert (cfg.kind, cfg.flow) == ("python", "authorization_code")
    assert cfg.python is not None and cfg.python.factory == "rfcheck_adapter:make_target"
    assert "rfcheck_adapter.py is yours to write" in text
    assert not re.search(r"^\[target\.(env|intercept)\]", text, re.M)  # in process: not used


def test_python_module_with_make_target(tmp_path: Path) -> None:
    cfg, _, _ = init(copy_example("httpx_code", tmp_path))
    assert cfg.python is not None and (cfg.kind, cfg.flow, cfg.python.factory) == (
        "python", "authorization_code", "acme_invoices:make_target")
    assert cfg.redirect_uri == "http://localhost:8000/callback"
    cfg, _, _ = init(copy_example("cc_worker", tmp_path))
    assert cfg.python is not None and (cfg.kind, cfg.flow, cfg.python.factory) == (
        "python", "client_credentials", "acme_worker:make_target")


def test_python_package_run_as_a_program_is_a_command(tmp_path: Path) -> None:
    project(tmp_path, {"requirements.txt": "requests==2.32.3\n",
                       "invoicesync/__init__.py": "",
                       "invoicesync/__main__.py": "import os, requests\n"
                                                  "TOKEN_URL = 'https://auth.request.finance/oauth/token'\n"
                                                  "ID = os.environ['SYNC_CLIENT_ID']\n"})
    cfg, _, _ = init(tmp_path)
    assert (cfg.kind, cfg.flow, cfg.hosts) == ("command", "client_credentials", True)
    assert cfg.command is not None and cfg.command.run == "python3 -m invoicesync"
    assert active_env(cfg)["SYNC_CLIENT_ID"] == "{client_id}"


def test_a_requests_oauthlib_worker_gets_https_without_the_callback_switch(tmp_path: Path) -> None:
    # a worker has no callback: https on the mock covers every URL oauthlib checks
    project(tmp_path, {"requirements.txt": "requests-oauthlib==2.0.0\n",
                       "sync.py": "import os\nfrom oauthlib.oauth2 import BackendApplicationClient\n"
                                  "from requests_oauthlib import OAuth2Session\n"
                                  "TOKEN_URL = os.environ['RF_ISSUER'] + '/oauth/token'\n"
                                  "if __name__ == '__main__':\n    OAuth2Session(client=BackendApplicationClient("
                                  "os.environ['RF_CLIENT_ID'])).fetch_token(TOKEN_URL, grant_type='client_credentials')\n"})
    cfg, text, out = init(tmp_path)
    assert (cfg.kind, cfg.flow, cfg.tls) == ("command", "client_credentials", True)
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in text
    assert re.search(r"^tls = true +# oauthlib refuses http:// URLs \(InsecureTransportError\): the mock serves "
                     r"https, as Request Finance does$", text, re.M)
    assert "requirements.txt: requests-oauthlib" in out


def test_the_oauthlib_switch_listed_in_an_env_example_is_set(tmp_path: Path) -> None:
    project(tmp_path, {"requirements.txt": "flask\nrequests-oauthlib\n",
                       ".env.example": "OAUTHLIB_INSECURE_TRANSPORT=\nRF_CLIENT_ID=\n",
                       "app.py": "from flask import Flask\napp = Flask(__name__)\n"})
    cfg, text, _ = init(tmp_path)
    assert cfg.env["OAUTHLIB_INSECURE_TRANSPORT"] == "1" and cfg.tls is True
    assert len(re.findall(r"^(?:# )?OAUTHLIB_INSECURE_TRANSPORT", text, re.M)) == 1


def test_a_session_key_is_filled_for_a_web_app_only(tmp_path: Path) -> None:
    project(tmp_path, {"package.json": {"name": "sync", "main": "worker.js", "dependencies": {"axios": "1"}},
                       "worker.js": "const key = process.env.SESSION_SECRET, id = process.env.RF_CLIENT_ID\n"})
    cfg, text, _ = init(tmp_path)
    assert cfg.kind == "command" and "SESSION_SECRET" not in text


@pytest.mark.parametrize(("build", "files", "kind", "start"), [
    ("maven spring web", {"pom.xml": "<project><parent><artifactId>spring-boot-starter-parent</artifactId></parent>"
                                     "<artifactId>acme-portal</artifactId><dependencies><dependency><artifactId>"
                                     "spring-boot-starter-web</artifactId></dependency></dependencies></project>"},
     "web", "mvn -q spring-boot:run -Dspring-boot.run.arguments=--server.port={port}"),
    ("maven worker", {"pom.xml": "<project><artifactId>acme-sync</artifactId></project>"},
     "command", "mvn -q exec:java"),
    ("gradle worker", {"build.gradle": "plugins { id 'application' }\n", "gradlew": "#!/bin/sh\n",
                       "settings.gradle": "rootProject.name = 'acme-sync'\n"},
     "command", "./gradlew -q run"),
    ("go web", {"go.mod": "module github.com/acme/portal\n\nrequire github.com/gin-gonic/gin v1.10.0\n"},
     "web", "go run ."),
    ("go worker", {"go.mod": "module github.com/acme/sync\n",
                   "main.go": 'package main\nconst api = "https://api.request.finance" // the real API\n'},
     "command", "go run ."),
])
def test_jvm_and_go_projects(tmp_path: Path, build: str, files: dict[str, str | dict[str, Any]], kind: str,
                             start: str) -> None:
    cfg, _, _ = init(project(tmp_path, files))
    assert cfg.kind == kind, build
    assert cfg.flow == ("authorization_code" if kind == "web" else "client_credentials")
    assert (cfg.web.start if cfg.web else cfg.command.run if cfg.command else None) == start
    assert cfg.hosts is (build == "go worker")
    names = {"maven spring web": "acme-portal", "maven worker": "acme-sync", "gradle worker": "acme-sync",
             "go web": "portal", "go worker": "sync"}
    assert cfg.name == names[build]


def test_single_file_java_worker(tmp_path: Path) -> None:
    cfg, text, _ = init(copy_example("java_worker", tmp_path))
    assert (cfg.kind, cfg.flow, cfg.hosts) == ("command", "client_credentials", True)
    assert cfg.command is not None and cfg.command.run == "java Worker.java"
    assert "the JVM ignores HTTPS_PROXY" in text


def test_the_web_framework_decides_between_two_runtimes(tmp_path: Path) -> None:
    # a Django app with a package.json for its front-end build is a Django app
    project(tmp_path, {"package.json": {"name": "frontend", "devDependencies": {"webpack": "5", "axios": "1"}},
                       "requirements.txt": "django\n", "manage.py": ""})
    cfg, _, out = init(tmp_path)
    assert cfg.web is not None and cfg.web.start.startswith("python3 manage.py runserver")
    assert "also found: node" in out


# -- every written config: every key explained, only known placeholders ---------------------------------------
def test_every_key_written_is_explained_by_a_comment(tmp_path: Path) -> None:
    _, text, _ = init(copy_example("node/express-openid-client-v5", tmp_path))
    lines = text.splitlines()
    keys = [n for n, line in enumerate(lines) if re.match(r"[A-Za-z_][\w-]* *=", line)]
    assert len(keys) > 20
    for n in keys:
        assert "#" in lines[n].split("=", 1)[1] or lines[n - 1].startswith("#"), lines[n]
    for name in re.findall(r"\{([a-z_]+)\}", "\n".join(line for line in lines if not line.startswith("#"))):
        assert name in PLACEHOLDERS


# -- through the console script, and a written config that runs ------------------------------------------------
def test_the_console_script_writes_a_config_that_runs_to_a_ready_verdict(tmp_path: Path) -> None:
    script = shutil.which("rfcheck")
    if script is None:
        pytest.skip("the rfcheck console script is not installed (python3 -m pip install -e .)")
    folder = copy_example("httpx_code", tmp_path)
    done = subprocess.run([script, "init", str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    reports = tmp_path / "reports"
    run = subprocess.run([sys.executable, "-m", "pytest", "--rfcheck", f"--rfcheck-target={folder}",
                          f"--rfcheck-report={reports}", "-p", "no:cacheprovider", "-q"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads((reports / "rfcheck-report.json").read_text())["verdict"] == "ready"
