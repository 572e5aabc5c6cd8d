"""Tests for rfcheck.harness: the placeholders of the target config (``fill``), the process
environment of web and command targets ([target.env] filled in, CA and proxy variables),
one {port} for the whole run, and which driver each scenario gets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from rfcheck.config import PLACEHOLDERS as CONFIG_PLACEHOLDERS
from rfcheck.config import ConfigError
from rfcheck.harness import Harness, fill
from rfcheck.targets.base import DriverError

PLACEHOLDERS = ("api_url", "audience", "ca_file", "client_id", "client_secret", "issuer", "port", "proxy_url",
                "redirect_uri")



@pytest.fixture
def harness_for(toml_harness: Callable[..., Harness]) -> Callable[..., Harness]:
    """``harness_for(target_table, **other_tables)``: a harness for that config (started unless told)."""

    def make(target: dict[str, Any], start: bool = True, **tables: dict[str, Any]) -> Harness:
        return toml_harness({"target": {"name": "t", **target}, **tables}, start=start)

    return make


def command(run: str, env: dict[str, str] | None = None, **target: Any) -> dict[str, Any]:
    """The tables of a client credentials command target running ``run``."""
    tables: dict[str, Any] = {"target": {"kind": "command", "flow": "client_credentials", **target},
                              "target.command": {"run": run}}
    if env is not None:
        tables["target.env"] = env
    return tables


def run_command(harness_for: Callable[..., Harness], run: str, env: dict[str, str] | None = None,
                **target: Any) -> tuple[Harness, str]:
    tables = command(run, env, **target)
    harness = harness_for(tables.pop("target"), **tables)
    # not baseline: a target that never calls Request Finance there is not driven (an error)
    result = harness.scenario("expiry")
    assert result.outcome == "completed", result.reason
    return harness, result.output


# -- fill -----------------------------------------------------------------------------------
def test_fill_replaces_every_known_placeholder() -> None:
    values = {"issuer": "http://127.0.0.1:1", "port": "3000"}
    assert fill("{issuer}/authorize on {port}, {port}", values, "x") == "http://127.0.0.1:1/authorize on 3000, 3000"


def test_fill_leaves_what_is_not_a_placeholder() -> None:
    text = """node -e 'console.log({a: 1})' ${HOME} {"json": true} {Port}"""
    assert fill(text, {"port": "1"}, "x") == text


def test_an_unknown_placeholder_names_the_key_and_the_known_ones() -> None:
    with pytest.raises(DriverError) as unknown:
        fill("{isuer}/x", {"port": "1", "issuer": "i", "api_url": "a"}, "[target.env] AUTH0_ISSUER_BASE_URL")
    assert str(unknown.value) == ("[target.env] AUTH0_ISSUER_BASE_URL: unknown placeholder {isuer}; "
                                  "known: api_url, issuer, port")


def test_an_unknown_placeholder_in_target_env_is_a_config_error_naming_the_variable(
        harness_for: Callable[..., Harness]) -> None:
    tables = command("true", {"AUTH0_DOMAIN": "{domain}"})
    with pytest.raises(ConfigError) as unknown:
        harness_for(tables.pop("target"), **tables)
    assert str(unknown.value) == ("rfcheck.toml: [target.env] AUTH0_DOMAIN = '{domain}': unknown placeholder "
                                  "{domain}; known: " + ", ".join(f"{{{p}}}" for p in CONFIG_PLACEHOLDERS))


def test_an_unknown_placeholder_in_the_redirect_uri_is_a_config_error(harness_for: Callable[..., Harness]) -> None:
    with pytest.raises(ConfigError, match=r"\[target\] redirect_uri = .*unknown placeholder \{app_port\} "
                                          r"\(did you mean \{port\}\?\)"):
        harness_for({"kind": "command", "redirect_uri": "http://localhost:{app_port}/cb"}, start=False,
                    **{"target.command": {"run": "true"}})


def test_unknown_placeholders_in_the_web_settings_name_their_key(harness_for: Callable[..., Harness]) -> None:
    with pytest.raises(ConfigError, match=r"\[target.web\] start = .*unknown placeholder \{prot\}"):
        harness_for({"kind": "web"}, **{"target.web": {"start": "node app.js --port {prot}",
                                                       "url": "http://localhost:3000"}})


def test_the_network_placeholder_is_the_run_s_network(harness_for: Callable[..., Harness]) -> None:
    harness, output = run_command(harness_for, 'echo "net=$RF_NETWORK"', {"RF_NETWORK": "{network}"},
                                  network="live")
    assert harness.values["network"] == "live"
    assert "net=live" in output


# -- the values and the target's environment ------------------------------------------------------
def test_target_env_values_are_filled_in(harness_for: Callable[..., Harness]) -> None:
    env = {"RF_ISSUER": "{issuer}", "RF_API_URL": "{api_url}", "RF_CLIENT_ID": "{client_id}",
           "RF_SECRET": "{client_secret}", "RF_AUDIENCE": "{audience}", "RF_REDIRECT": "{redirect_uri}",
           "RF_TOKEN_URL": "{issuer}/oauth/token", "PLAIN": "no placeholders"}
    harness, output = run_command(harness_for, 'echo "' + ",".join(f"${name}" for name in env) + '"', env,
                                  redirect_uri="http://localhost:{port}/callback")
    values = harness.values
    assert output.splitlines()[0].split(",") == [
        values["issuer"], values["api_url"], harness.client_id, values["client_secret"], "accounts",
        f"http://localhost:{values['port']}/callback", values["issuer"] + "/oauth/token", "no placeholders"]


def test_the_values_match_the_environment_and_the_registered_client(harness_for: Callable[..., Harness]) -> None:
    harness = harness_for({"kind": "command", "redirect_uri": "http://127.0.0.1:{port}/cb"},
                          **{"target.command": {"run": "true"}})
    env, values = harness.environment, harness.values
    assert (env.issuer, env.api_url, env.client_id, env.client_secret, env.audience, env.redirect_uri) == (
        values["issuer"], values["api_url"], values["client_id"], values["client_secret"], values["audience"],
        values["redirect_uri"])
    assert harness.client is not None and harness.client.redirect_uris == (f"http://127.0.0.1:{values['port']}/cb",)
    assert not values["issuer"].endswith("/")
    assert httpx.get(values["issuer"] + "/.well-known/openid-configuration").json()["issuer"] == values["issuer"] + "/"
    assert values["ca_file"] == values["proxy_url"] == ""


def test_port_is_one_free_port_for_the_whole_run(harness_for: Callable[..., Harness]) -> None:
    tables = command('echo "port={port} env=$PORT"', {"PORT": "{port}"})
    harness = harness_for(tables.pop("target"), **tables)
    port = harness.values["port"]
    assert port.isdigit() and int(port) not in (httpx.URL(harness.values["issuer"]).port, 0)
    outputs = [harness.scenario(name).output for name in ("baseline", "expiry")]
    assert set("\n".join(outputs).splitlines()) == {f"port={port} env={port}"}


def test_without_proxy_mode_no_proxy_is_set(harness_for: Callable[..., Harness]) -> None:
    harness, output = run_command(harness_for, "env")
    assert harness.values["proxy_url"] == ""
    assert not [line for line in output.splitlines() if "_PROXY=http://127.0.0.1" in line.upper()]


def test_proxy_mode_routes_the_targets_traffic_through_the_proxy(harness_for: Callable[..., Harness]) -> None:
    tables = command("env")
    proxied = harness_for(tables.pop("target"), **tables, **{"target.intercept": {"proxy": True}})
    output = proxied.scenario("baseline").output.splitlines()
    proxy_url, ca_file = proxied.values["proxy_url"], proxied.values["ca_file"]
    assert proxy_url.startswith("http://127.0.0.1:") and Path(ca_file).is_file()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert f"{name}={proxy_url}" in output
    assert "NO_PROXY=localhost,127.0.0.1,::1" in output, "the loopback servers and the app stay direct"
    assert f"SSL_CERT_FILE={ca_file}" in output, "the tunnels' certificates come from the run's CA"


# -- drivers ---------------------------------------------------------------------------------
def web(restart: str) -> dict[str, Any]:
    return {"target.web": {"start": "python3 app.py --port {port}", "url": "http://127.0.0.1:{port}",
                           "restart": restart}}


def test_restart_session_hands_every_scenario_the_same_driver(harness_for: Callable[..., Harness]) -> None:
    harness = harness_for({"kind": "web"}, **web("session"))
    assert harness.new_driver(harness.lane, harness.provider) is harness.new_driver(harness.lane, harness.provider)


def test_restart_scenario_hands_each_scenario_a_fresh_driver(harness_for: Callable[..., Harness]) -> None:
    harness = harness_for({"kind": "web"}, **web("scenario"))
    assert harness.new_driver(harness.lane, harness.provider) is not harness.new_driver(harness.lane, harness.provider)


def test_a_python_target_without_a_factory_is_a_driver_error(harness_for: Callable[..., Harness]) -> None:
    harness = harness_for({"kind": "python"})
    with pytest.raises(DriverError, match="needs \\[target.python\\] factory or a rfcheck_target fixture"):
        harness.new_driver(harness.lane, harness.provider)


def test_stop_ends_the_mocks_servers(harness_for: Callable[..., Harness]) -> None:
    tables = command("true")
    harness = harness_for(tables.pop("target"), **tables)
    issuer = harness.values["issuer"]
    assert httpx.get(issuer + "/.well-known/jwks.json").status_code == 200
    harness.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(issuer + "/.well-known/jwks.json")
