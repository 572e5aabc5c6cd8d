"""One rfcheck run: the mock, its two transports, the registered client and the target's driver."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rfcheck import Environment
from rfcheck.config import TargetConfig
from rfcheck.provider.accounts import DEFAULT_USER, Client
from rfcheck.provider.app import Provider
from rfcheck.provider.faults import Faults
from rfcheck.provider.tokens import AUDIENCE
from rfcheck import library  # noqa: F401  (registers the built-in scenarios)
from rfcheck.scenarios import SCENARIOS, ScenarioResult, execute
from rfcheck.targets.base import Driver, DriverError
from rfcheck.transport.inprocess import InProcessTransport
from rfcheck.transport.server import LoopbackServer

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def fill(template: str, values: dict[str, str], where: str) -> str:
    """Replace ``{name}`` placeholders; an unknown name is an error naming ``where``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise DriverError(f"{where}: unknown placeholder {{{name}}}; known: {', '.join(sorted(values))}")
        return values[name]

    return _PLACEHOLDER.sub(replace, template)


class Harness:
    """Starts the mock for a run, hands out fresh drivers, and runs each scenario once."""

    def __init__(self, config: TargetConfig, driver_factory: Callable[["Harness"], Driver]) -> None:
        self.config = config
        self.provider = Provider()
        self._driver_factory = driver_factory
        self._servers = [LoopbackServer(self.provider, "auth"), LoopbackServer(self.provider, "api")]
        self._inprocess: InProcessTransport | None = None
        self.results: dict[str, ScenarioResult] = {}
        self.client: Client | None = None
        self._environment: Environment | None = None

    def start(self) -> None:
        issuer, api_url = (server.start() for server in self._servers)
        values = {"issuer": issuer, "api_url": api_url, "audience": AUDIENCE}
        redirect_uri = fill(self.config.redirect_uri, values, "[target] redirect_uri")
        self.client = self.provider.register_client(self.config.flow, (redirect_uri,), self.config.name)
        self._environment = Environment(
            issuer=issuer, api_url=api_url, client_id=self.client.client_id,
            client_secret=self.client.client_secret, audience=AUDIENCE, redirect_uri=redirect_uri,
            network=self.config.network, scopes=self.config.scopes)
        self._inprocess = InProcessTransport(self.provider)

    def stop(self) -> None:
        for server in self._servers:
            server.stop()

    def new_driver(self) -> Driver:
        return self._driver_factory(self)

    @contextmanager
    def scenario_context(self) -> Iterator[None]:
        """Each scenario starts with no faults, the default user, and httpx routed to the mock."""
        self.provider.faults = Faults()
        self.provider.user = DEFAULT_USER
        assert self._inprocess is not None, "Harness.start() first"
        with self._inprocess:
            yield

    @property
    def environment(self) -> Environment:
        assert self._environment is not None, "Harness.start() first"
        return self._environment

    @property
    def client_id(self) -> str:
        assert self.client is not None, "Harness.start() first"
        return self.client.client_id

    def scenario(self, name: str) -> ScenarioResult:
        """The result of scenario ``name``, run on first use."""
        if name not in self.results:
            spec = SCENARIOS[name]
            if self.config.flow not in spec.flows:
                self.results[name] = ScenarioResult(name, "not-run", f"does not apply to the {self.config.flow} flow")
            else:
                self.results[name] = execute(self, spec)
        return self.results[name]
