"""Tests for rfcheck.config: loading, lookup and the usage errors of the target config."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rfcheck.config import (
    CommandSpec,
    ConfigError,
    PythonSpec,
    TargetConfig,
    WebSpec,
    find_config,
    load_config,
    with_network,
)

MINIMAL_PYTHON = '[target]\nkind = "python"\n'

FULL_WEB = """\
[target]
name = "acme-invoices"
kind = "web"
flow = "authorization_code"
network = "live"
redirect_uri = "http://localhost:{port}/callback"
scopes = ["openid", "profile", "email", "offline_access"]
project = "app"
tls = true
client_id_test = "literal-test-id"
client_id_live = "env:RFCHECK_TEST_LIVE_ID"

[target.web]
start = "node dist/index.js"
url = "http://localhost:{port}"
ready = "/health"
login = "/auth/login"
actions = ["/invoices", "/profile"]
restart = "session"
ready_timeout = 60
step_timeout = 2.5

[target.env]
AUTH0_ISSUER_BASE_URL = "{issuer}"
RF_API_URL = "{api_url}"

[target.intercept]
proxy = true

[target.confirm]
MAN-01 = "integration@acme.com, created 2026-11-02"
MAN-06 = "reviewed by Jo"
"""


def write(folder: Path, text: str, name: str = "rfcheck.toml") -> Path:
    """Write a config file into ``folder`` and return its path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(folder: Path, text: str, name: str = "rfcheck.toml") -> str:
    """Load ``text`` as a config that must fail; return the error message."""
    with pytest.raises(ConfigError) as info:
        load_config(write(folder, text, name))
    return str(info.value)


# --- happy paths -------------------------------------------------------------------------


def test_minimal_python_target_gets_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL_PYTHON))
    assert cfg == TargetConfig(
        file=tmp_path.resolve() / "rfcheck.toml",
        root=tmp_path.resolve(),
        name=tmp_path.name,
        kind="python",
        flow="authorization_code",
        network="test",
        redirect_uri="http://localhost/callback",
        scopes=("openid", "profile", "email", "offline_access", "user:read"),
        project=tmp_path.resolve(),
        python=PythonSpec(factory=None),
    )


def test_python_factory(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL_PYTHON + 'python.factory = "acme.adapter:make_target"\n'))
    assert cfg.python == PythonSpec(factory="acme.adapter:make_target")


def test_full_web_target_with_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFCHECK_TEST_LIVE_ID", "live-id-123")
    (tmp_path / "app").mkdir()
    cfg = load_config(write(tmp_path, FULL_WEB))
    assert (cfg.name, cfg.kind, cfg.flow, cfg.network) == ("acme-invoices", "web", "authorization_code", "live")
    assert cfg.redirect_uri == "http://localhost:{port}/callback"
    assert cfg.scopes == ("openid", "profile", "email", "offline_access")
    assert cfg.project == tmp_path.resolve() / "app"
    assert cfg.tls is True and cfg.proxy is True
    assert (cfg.client_id_test, cfg.client_id_live) == ("literal-test-id", "live-id-123")
    assert cfg.web == WebSpec(
        start="node dist/index.js", url="http://localhost:{port}", ready="/health", login="/auth/login",
        actions=("/invoices", "/profile"), restart="session", ready_timeout=60.0, step_timeout=2.5,
    )
    assert cfg.python is None and cfg.command is None
    assert cfg.env == {"AUTH0_ISSUER_BASE_URL": "{issuer}", "RF_API_URL": "{api_url}"}
    assert cfg.confirm == {"MAN-01": "integration@acme.com, created 2026-11-02", "MAN-06": "reviewed by Jo"}


def test_web_defaults(tmp_path: Path) -> None:
    text = '[target]\nkind = "web"\n[target.web]\nstart = "npm start"\nurl = "http://localhost:3000"\n'
    assert load_config(write(tmp_path, text)).web == WebSpec(start="npm start", url="http://localhost:3000")


def test_command_targets(tmp_path: Path) -> None:
    run = '[target]\nkind = "command"\nflow = "client_credentials"\n[target.command]\nrun = "python -m sync"\n'
    assert load_config(write(tmp_path, run)).command == CommandSpec(run="python -m sync")
    serve = '[target]\nkind = "command"\n[target.command]\nserve = "worker"\nactions = ["http://localhost:9/go"]\n'
    assert load_config(write(tmp_path, serve)).command == CommandSpec(serve="worker", actions=("http://localhost:9/go",))


def test_pyproject_tool_rfcheck(tmp_path: Path) -> None:
    text = '[project]\nname = "acme"\n\n[tool.rfcheck.target]\nkind = "python"\nnetwork = "live"\n'
    cfg = load_config(write(tmp_path, text, "pyproject.toml"))
    assert (cfg.file.name, cfg.kind, cfg.network) == ("pyproject.toml", "python", "live")


def test_env_client_ids_resolve_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RF_ID_TEST", "abc")
    monkeypatch.delenv("RF_ID_LIVE", raising=False)
    text = MINIMAL_PYTHON + 'client_id_test = "env:RF_ID_TEST"\nclient_id_live = "env:RF_ID_LIVE"\n'
    cfg = load_config(write(tmp_path, text))
    assert (cfg.client_id_test, cfg.client_id_live) == ("abc", None)


def test_with_network_overrides(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL_PYTHON))
    assert with_network(cfg, "live").network == "live"
    assert cfg.network == "test"


# --- find_config -------------------------------------------------------------------------


def test_find_config_prefers_rfcheck_toml(tmp_path: Path) -> None:
    write(tmp_path, '[tool.rfcheck.target]\nkind = "python"\n', "pyproject.toml")
    own = write(tmp_path, MINIMAL_PYTHON)
    assert find_config(None, tmp_path) == own.resolve()


def test_find_config_uses_pyproject_only_with_tool_rfcheck(tmp_path: Path) -> None:
    pyproject = write(tmp_path, '[tool.rfcheck.target]\nkind = "python"\n', "pyproject.toml")
    assert find_config(None, tmp_path) == pyproject.resolve()
    write(tmp_path, '[tool.black]\nline-length = 100\n', "pyproject.toml")
    with pytest.raises(ConfigError, match=r"looked for .*rfcheck\.toml and \[tool\.rfcheck\] in .*pyproject\.toml"):
        find_config(None, tmp_path)


def test_find_config_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "examples" / "app").mkdir(parents=True)
    own = write(tmp_path / "examples" / "app", MINIMAL_PYTHON)
    assert find_config("examples/app", tmp_path) == own.resolve()
    assert find_config(tmp_path / "examples" / "app", Path("/nonexistent")) == own.resolve()


def test_find_config_a_file(tmp_path: Path) -> None:
    other = write(tmp_path, MINIMAL_PYTHON, "ci-target.toml")
    assert find_config("ci-target.toml", tmp_path) == other.resolve()
    assert load_config(other).kind == "python"


def test_find_config_nothing_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rfcheck.toml"):
        find_config(None, tmp_path)
    with pytest.raises(ConfigError, match="no such file or folder"):
        find_config("missing.toml", tmp_path)


# --- usage errors ------------------------------------------------------------------------


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + 'netwrok = "live"\n')
    assert message == "rfcheck.toml: unknown key [target] netwrok (did you mean network?)"


def test_unknown_key_in_a_pyproject_sub_table(tmp_path: Path) -> None:
    text = '[tool.rfcheck.target]\nkind = "web"\n[tool.rfcheck.target.web]\nstrat = "x"\n'
    message = config_error(tmp_path, text, "pyproject.toml")
    assert message == "pyproject.toml: unknown key [tool.rfcheck.target.web] strat (did you mean start?)"


def test_unknown_top_level_table(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[targte]\nkind = "python"\n')
    assert message == "rfcheck.toml: unknown key targte (did you mean target?)"


def test_wrong_type(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + 'scopes = "openid profile"\n')
    assert message == "rfcheck.toml: [target] scopes must be a list of strings, got 'openid profile'"


def test_wrong_type_of_a_number(tmp_path: Path) -> None:
    text = '[target]\nkind = "web"\n[target.web]\nstart = "s"\nurl = "http://h"\nstep_timeout = "10s"\n'
    message = config_error(tmp_path, text)
    assert message == ("rfcheck.toml: [target.web] step_timeout must be a positive number of seconds, at most 3600, "
                       "got '10s'")


@pytest.mark.parametrize(("line", "message"), [
    ("ready_timeout = inf", "[target.web] ready_timeout must be a positive number of seconds, at most 3600, got inf"),
    ("ready_timeout = 1e9", "[target.web] ready_timeout must be a positive number of seconds, at most 3600"),
    ('ready = "health"', "[target.web] ready: 'health' must be a path on the app's url, starting with '/' (e.g. '/health')"),
    ('actions = ["/invoices", "orgs"]', "[target.web] actions: 'orgs' must be a path on the app's url, starting with '/'"),
])
def test_web_values_are_checked(tmp_path: Path, line: str, message: str) -> None:
    text = f'[target]\nkind = "web"\n[target.web]\nstart = "s"\nurl = "http://h"\n{line}\n'
    assert config_error(tmp_path, text).startswith(f"rfcheck.toml: {message}")


@pytest.mark.parametrize(("env", "message"), [
    ('"A=B" = "x"', "[target.env] 'A=B' is not an environment variable name (no '=', no NUL byte)"),
    ('TOKEN = "a\\u0000b"', "[target.env] TOKEN: a NUL byte cannot be in an environment value"),
])
def test_environment_names_and_values_are_checked(tmp_path: Path, env: str, message: str) -> None:
    text = f'[target]\nkind = "command"\nflow = "client_credentials"\n[target.command]\nrun = "true"\n[target.env]\n{env}\n'
    assert config_error(tmp_path, text) == f"rfcheck.toml: {message}"


def test_missing_required_key(tmp_path: Path) -> None:
    text = '[tool.rfcheck.target]\nkind = "web"\n[tool.rfcheck.target.web]\nurl = "http://localhost:3000"\n'
    message = config_error(tmp_path, text, "pyproject.toml")
    assert message == "pyproject.toml: [tool.rfcheck.target.web] start is required when kind = 'web'"


def test_missing_kind(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[target]\nname = "x"\n')
    assert message == "rfcheck.toml: [target] kind is required (one of python, web, command)"


def test_bad_enum(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[target]\nkind = "java"\n')
    assert message == "rfcheck.toml: [target] kind = 'java' is not one of python, web, command"


def test_bad_scope(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + 'scopes = ["openid", "admin"]\n')
    assert message.startswith("rfcheck.toml: [target] scopes contains 'admin', which is not one of openid")


def test_kind_table_mismatch(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + '[target.web]\nstart = "x"\n')
    assert message == "rfcheck.toml: [target.web] is given but kind = 'python'"


def test_command_needs_exactly_one_of_run_and_serve(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[target]\nkind = "command"\n')
    assert message == "rfcheck.toml: [target.command] exactly one of run and serve is required when kind = 'command'"
    message = config_error(tmp_path, '[target]\nkind = "command"\n[target.command]\nserve = "worker"\n')
    assert message.startswith("rfcheck.toml: [target.command] actions is required")


def test_bad_confirm_key(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + '[target.confirm]\nMAN-07 = "done"\n')
    assert message.startswith("rfcheck.toml: [target.confirm] MAN-07 is not a manual requirement ID (one of MAN-01")


def test_empty_confirm_note(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + '[target.confirm]\nMAN-02 = " "\n')
    assert message == "rfcheck.toml: [target.confirm] MAN-02 must not be empty"


def test_env_values_must_be_strings(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + "[target.env]\nPORT = 3000\n")
    assert message == "rfcheck.toml: [target.env] PORT must be a string, got 3000"


@pytest.mark.parametrize("factory", ["acme", "acme:", "acme.:make", "acme:make-target", "a:b:c"])
def test_bad_factory_format(tmp_path: Path, factory: str) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + f'[target.python]\nfactory = "{factory}"\n')
    assert message == f"rfcheck.toml: [target.python] factory = {factory!r} must look like 'module.sub:callable'"


def test_redirect_uri_must_be_a_url(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + 'redirect_uri = "/callback"\n')
    assert message.startswith("rfcheck.toml: [target] redirect_uri = '/callback' must be an absolute URL")


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[target]\nkind = "python"\nname = \n')
    assert message.startswith("rfcheck.toml: invalid TOML: ")
    assert "line 3" in message


def test_nonexistent_project_folder(tmp_path: Path) -> None:
    message = config_error(tmp_path, MINIMAL_PYTHON + 'project = "src"\n')
    assert message.startswith("rfcheck.toml: [target] project = 'src' is not an existing folder")
    assert str(tmp_path.resolve() / "src") in message


@pytest.mark.parametrize("project", ["/", ".."])
def test_a_project_outside_the_targets_repository_is_refused(tmp_path: Path, project: str) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    message = config_error(folder, MINIMAL_PYTHON + f'project = "{project}"\n')
    assert message.startswith(f"rfcheck.toml: [target] project = '{project}' is outside the target's repository "
                              f"({folder.resolve()})"), message


def test_a_project_inside_the_repository_is_taken(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "service").mkdir()
    (tmp_path / "lib").mkdir()
    write(tmp_path / "service", MINIMAL_PYTHON + 'project = "../lib"\n')
    assert load_config(tmp_path / "service" / "rfcheck.toml").project == (tmp_path / "lib").resolve()


def test_pyproject_without_tool_rfcheck(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[project]\nname = "acme"\n', "pyproject.toml")
    assert message == "pyproject.toml: [tool.rfcheck] is missing"


def test_with_network_bad_value(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL_PYTHON))
    with pytest.raises(ConfigError) as info:
        with_network(cfg, "prod")
    message = str(info.value)
    assert message.startswith("--rfcheck-network 'prod' is not one of test, live")
    assert "network" in message and "rfcheck.toml" in message


def test_a_config_nested_too_deep_is_a_usage_error(tmp_path: Path) -> None:
    text = '[target]\nkind = "web"\nscopes = ' + "[" * 5000 + "]" * 5000 + "\n"
    assert config_error(tmp_path, text) == "rfcheck.toml: invalid TOML: its arrays or tables are nested too deep"


@pytest.mark.parametrize(("value", "message"), [
    ("0", "[target] jobs must be a whole number of scenarios from 1 to 64, got 0"),
    ("2.5", "[target] jobs must be a whole number of scenarios from 1 to 64, got 2.5"),
    ("true", "[target] jobs must be a whole number of scenarios from 1 to 64, got True"),
])
def test_jobs_is_a_whole_number_of_scenarios(tmp_path: Path, value: str, message: str) -> None:
    assert config_error(tmp_path, MINIMAL_PYTHON + f"jobs = {value}\n") == f"rfcheck.toml: {message}"


def test_jobs_bounds_how_many_scenarios_run_at_once(tmp_path: Path) -> None:
    from rfcheck.config import load_config
    from rfcheck.harness import Harness

    (tmp_path / "rfcheck.toml").write_text(
        '[target]\nkind = "web"\njobs = 2\n[target.web]\nstart = "s"\nurl = "http://127.0.0.1:{port}"\n')
    config = load_config(tmp_path / "rfcheck.toml")
    assert config.jobs == 2
    assert Harness(config).jobs == 2, "the default is capped by what the target tolerates"
    assert Harness(config, jobs=5).jobs == 5, "--rfcheck-jobs decides"
    fixed = config.__class__(**{**config.__dict__, "web": config.web.__class__(
        **{**config.web.__dict__, "url": "http://127.0.0.1:3000"})})  # type: ignore[union-attr]
    assert Harness(fixed, jobs=5).jobs == 1, "a fixed port runs one scenario at a time"
