"""One rfcheck run: the mock, its transports, the registered client and the target's drivers."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from rfcheck import Environment, Target
from rfcheck.config import CommandSpec, TargetConfig, WebSpec
from rfcheck.provider.accounts import DEFAULT_USER, Client
from rfcheck.provider.app import Provider
from rfcheck.provider.clock import Clock
from rfcheck.provider.faults import Faults
from rfcheck.provider.tokens import AUDIENCE
from rfcheck.scenarios import SCENARIOS, ScenarioResult, Sequence, execute
from rfcheck.steps import load_file
from rfcheck.targets.base import Driver, DriverError
from rfcheck.targets.command import CommandDriver
from rfcheck.runtime import HostRoutes, Instrumentation
from rfcheck.targets.python import PythonDriver
from rfcheck.targets.web import WebDriver
from rfcheck.tls import LOOPBACK_NAMES, RunCA
from rfcheck.transport.inprocess import InProcessTransport
from rfcheck.transport.proxy import ProxyServer
from rfcheck.transport.server import LoopbackServer

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
PythonFactory = Callable[[Environment], Target]


def fill(template: str, values: dict[str, str], where: str) -> str:
    """Replace ``{name}`` placeholders; an unknown name is an error naming ``where``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise DriverError(f"{where}: unknown placeholder {{{name}}}; known: {', '.join(sorted(values))}")
        return values[name]

    return _PLACEHOLDER.sub(replace, template)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Harness:
    """Starts the mock for a run, hands out fresh drivers, and runs each scenario once."""

    def __init__(self, config: TargetConfig, python_factory: PythonFactory | None = None) -> None:
        self.config = config
        self.provider = Provider()
        self.python_factory = python_factory
        self.ca = RunCA() if config.tls or config.proxy or config.hosts else None
        # proxy mode alone needs the CA for its tunnels; the loopback servers stay http unless tls = true
        tls = self.ca.issue(LOOPBACK_NAMES, "loopback") if self.ca and config.tls else None
        cert = (tls.cert_file, tls.key_file) if tls else None
        self._servers = [LoopbackServer(self.provider, "auth", tls=cert), LoopbackServer(self.provider, "api", tls=cert)]
        self._inprocess = InProcessTransport(self.provider)
        self._proxy = ProxyServer(self.provider, self.ca) if (config.proxy or config.hosts) and self.ca else None
        self._instrumentation: Instrumentation | None = None
        self._state_dirs: list[str] = []
        self._session_driver: Driver | None = None
        self.values: dict[str, str] = {}
        self.notes: list[str] = []
        self.results: dict[str, ScenarioResult] = {}
        # the built-in scenarios, then the integration's own ([target] scenarios)
        self.scenarios = {**SCENARIOS, **{spec.name: spec for spec in map(load_file, config.scenarios)}}
        self.start_failure = ""  # why the target could not be started or driven: no scenario tries again
        self.on_scenario: Callable[[ScenarioResult, float], None] | None = None  # after each scenario ran
        self.client: Client | None = None
        self._environment: Environment | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        issuer, api_url = (server.start() for server in self._servers)
        self.values = {"issuer": issuer, "api_url": api_url, "audience": AUDIENCE, "port": str(free_port()),
                       "network": self.config.network,
                       "ca_file": self.ca.ca_file if self.ca else "",
                       "proxy_url": self._proxy.start() if self._proxy else ""}
        redirect_uri = fill(self.config.redirect_uri, self.values, "[target] redirect_uri")
        self.client = self.provider.register_client(self.config.flow, (redirect_uri,), self.config.name)
        self.values.update(client_id=self.client.client_id, client_secret=self.client.client_secret,
                           redirect_uri=redirect_uri)
        self._environment = Environment(
            issuer=issuer, api_url=api_url, client_id=self.client.client_id,
            client_secret=self.client.client_secret, audience=AUDIENCE, redirect_uri=redirect_uri,
            network=self.config.network, scopes=self.config.scopes, ca_file=self.values["ca_file"])

    def stop(self) -> None:
        shutdown = getattr(self._session_driver, "shutdown", None)
        if callable(shutdown):
            shutdown()
        if self._instrumentation is not None:
            self._instrumentation.close()
        for folder in self._state_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        for server in self._servers:
            server.stop()
        if self._proxy is not None:
            self._proxy.stop()
        if self.ca is not None:  # the run's certificates and their keys
            shutil.rmtree(self.ca.folder, ignore_errors=True)

    @property
    def environment(self) -> Environment:
        assert self._environment is not None, "Harness.start() first"
        return self._environment

    @property
    def client_id(self) -> str:
        assert self.client is not None, "Harness.start() first"
        return self.client.client_id

    # -- drivers ------------------------------------------------------------------------
    def new_driver(self) -> Driver:
        """A driver for the next scenario (the same one throughout with ``restart = "session"``)."""
        if self._session_driver is not None:
            return self._session_driver
        driver = self._make_driver()
        if self.config.web is not None and self.config.web.restart == "session":
            self._session_driver = driver
        return driver

    def _make_driver(self) -> Driver:
        kind = self.config.kind
        if kind == "python":
            if self.python_factory is None:
                raise DriverError(f"{self.config.file.name}: kind = 'python' needs [target.python] factory "
                                  "or a rfcheck_target fixture in conftest.py")
            return PythonDriver(self.python_factory, redact=self.provider.journal.redact)
        values = {**self.values, "state_dir": self._state_dir()}
        env = self._process_environment(values)
        instrumentation = self._instrumented()
        if kind == "web":
            assert self.config.web is not None
            web = self._filled_web(self.config.web, values)
            return WebDriver(self.config.web, self.config.root, web, instrumentation.environment(env, web.start),
                             self.provider, instrumentation)
        assert self.config.command is not None
        command = self._filled_command(self.config.command, values)
        return CommandDriver(self.config.command, self.config.root, command,
                             instrumentation.environment(env, command.run or command.serve), instrumentation)

    def _state_dir(self) -> str:
        """{state_dir}: a fresh empty folder for each scenario's target (a token cache it keeps between runs)."""
        folder = tempfile.mkdtemp(prefix="rfcheck-state-")
        self._state_dirs.append(folder)
        return folder

    def _instrumented(self) -> Instrumentation:
        if self._instrumentation is None:
            hosts = None
            if self.config.hosts and self._proxy is not None and self.ca is not None:
                hosts = HostRoutes(self._proxy.routes(), self.values["proxy_url"], self.ca.ca_file)
            self._instrumentation = Instrumentation(self.provider.clock, self._refused, hosts)
            for note in self._instrumentation.notes:
                self.note(note)
        return self._instrumentation

    def _refused(self, host: str, port: int, via: str) -> None:
        """A connection the target's instrumentation refused: recorded like the proxy's refusals (SEC-04)."""
        scheme = "http" if port == 80 else "https"
        self.provider.handle(httpx.Request("CONNECT", f"{scheme}://{host}:{port or 443}/"))

    def _process_environment(self, values: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        if self.ca is not None:
            env.update(SSL_CERT_FILE=self.ca.ca_file, REQUESTS_CA_BUNDLE=self.ca.ca_file,
                       NODE_EXTRA_CA_CERTS=self.ca.ca_file)
        if self._proxy is not None:
            proxy = self.values["proxy_url"]
            env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy,
                       NO_PROXY="localhost,127.0.0.1,::1", no_proxy="localhost,127.0.0.1,::1")
        env.update({name: fill(value, values, f"[target.env] {name}") for name, value in self.config.env.items()})
        return env

    @staticmethod
    def _filled_web(spec: WebSpec, values: dict[str, str]) -> WebSpec:
        where = "[target.web]"
        return dataclasses.replace(spec, start=fill(spec.start, values, f"{where} start"),
                                   url=fill(spec.url, values, f"{where} url"))

    @staticmethod
    def _filled_command(spec: CommandSpec, values: dict[str, str]) -> CommandSpec:
        where = "[target.command]"
        return dataclasses.replace(
            spec, run=fill(spec.run, values, f"{where} run"), serve=fill(spec.serve, values, f"{where} serve"),
            actions=tuple(fill(a, values, f"{where} actions") for a in spec.actions))

    def note(self, text: str) -> None:
        """A run-level note for the report (each once)."""
        if text and text not in self.notes:
            self.notes.append(text)

    def follow_target_clock(self, driver: Driver) -> None:
        """ID tokens are checked against the target's clock: the real one when it cannot travel."""
        self.provider.tokens.id_token_clock = self.provider.clock if driver.can_move_clock else Clock()
        self.note(driver.clock_note)

    # -- scenarios ----------------------------------------------------------------------
    @contextmanager
    def scenario_context(self) -> Iterator[None]:
        """Each scenario starts with no faults, the default user, and httpx routed to the mock."""
        self.provider.faults = Faults()
        self.provider.user = DEFAULT_USER
        with self._inprocess:
            yield

    def start_sequence(self, name: str) -> Sequence:
        """A fresh target, for steps taken one at a time (exploration)."""
        return Sequence(self, name)

    def scenario(self, name: str) -> ScenarioResult:
        """The result of scenario ``name``, run on first use."""
        if name not in self.results:
            spec = self.scenarios[name]
            if self.config.flow not in spec.flows:
                self.results[name] = ScenarioResult(name, "not-run", f"does not apply to the {self.config.flow} flow")
            elif self.start_failure:
                self.results[name] = ScenarioResult(name, "error", self.start_failure)
            else:
                began = time.monotonic()
                self.results[name] = execute(self, spec)
                if name == "baseline":
                    _not_driven_at_baseline(self.results[name])
                if self.results[name].outcome == "error":
                    self.start_failure = self.results[name].reason
                if self.on_scenario is not None:
                    self.on_scenario(self.results[name], time.monotonic() - began)
        return self.results[name]


def _not_driven_at_baseline(result: ScenarioResult) -> None:
    """A target that, with Request Finance answering normally, sent it nothing could not be driven (a run
    that times out, an app that does not reach the mock): nothing it did can be judged, so the scenario is
    an error and the requirements are not judged, never passed."""
    units = [e for e in result.events if e.kind in ("login", "unit")]
    # the target's own requests, or its authorization URL followed by the user's browser to the mock
    spoke = any(e.origin in ("target", "browser") and e.host in ("auth", "api") for e in result.exchanges)
    if not result.completed or result.crash is not None or spoke or not units:
        return
    if any(e.failure == "bad_authorization_url" for e in units):
        return  # the target sent its user somewhere else: an observation FLOW-01 judges
    failures = [e for e in units if not e.ok]
    if failures:
        detail = " ".join(failures[0].detail.strip().splitlines()[:1])[:300] or "no detail"
        how = f"{len(failures)} of its {len(units)} steps failed ({failures[0].label}: {detail})"
    else:
        how = (f"its {len(units)} steps succeeded without it: the target does not reach the mock (does it use "
               "{issuer} and {api_url}, or [target.intercept] for hard-coded hosts?)")
    result.outcome = "error"
    result.reason = f"in the baseline scenario the target sent no request to Request Finance; {how}"
