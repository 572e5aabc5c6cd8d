"""Lanes: where scenarios run side by side without seeing each other.

A lane is what one scenario's target talks to: the two loopback servers (auth and api, each on a
port of its own), the proxy when the target's traffic for the real hosts is intercepted, the
instrumentation of its processes, a clock and a port for the target (``{port}``). A lane serves
one scenario at a time. Each scenario gets a fresh :class:`~rfcheck.provider.app.Provider` (its
clock from offset zero, its faults, user, codes, tokens and journal), bound to the lane's servers
while it runs, so a request is routed to its scenario by the port it reaches. The run's client
(one ID and secret) is known to every scenario's provider, with the lane's redirect URI.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import socket
import sys
from pathlib import Path

import httpx

from rfcheck import Environment
from rfcheck.config import PLACEHOLDER, TargetConfig
from rfcheck.facts import AUDIENCE
from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.provider.clock import Clock
from rfcheck.runtime import HostRoutes, Instrumentation, port_mover
from rfcheck.targets.deadline import LOOPBACK_HOSTS
from rfcheck.targets.base import DriverError
from rfcheck.tls import RunCA
from rfcheck.transport.proxy import ProxyServer
from rfcheck.transport.server import LoopbackServer

DEFAULT_JOBS_CAP = 8  # scenarios at once when nothing asks for more: twice the cores, at most this


def fill(template: str, values: dict[str, str], where: str) -> str:
    """Replace ``{name}`` placeholders; an unknown name is an error naming ``where``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise DriverError(f"{where}: unknown placeholder {{{name}}}; known: {', '.join(sorted(values))}")
        return values[name]

    return PLACEHOLDER.sub(replace, template)


_LOWEST_PICKED = 20_000  # below: the ports development servers and databases are usually given


# the operating system's randomness, not the random module's: test runners seed that one alike in every worker
# (pytest-randomly, hypothesis), and two runs side by side would then try the same ports in the same order
_PICK = random.SystemRandom()


def free_port() -> int:
    """A free port for the target to listen on (``{port}``), outside the range the kernel hands out
    to outgoing connections (``ip_local_port_range``): a port found free there could be taken by any
    connection opened on the machine before the target binds it (seen in CI, the target then failing
    with "already taken")."""
    low, high = _ephemeral_range()
    ranges = [r for r in (range(max(_LOWEST_PICKED, 1024), low), range(high + 1, 65536)) if len(r) > 100]
    for _ in range(50 if ranges else 0):
        port = _PICK.choice(_PICK.choice(ranges))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # no room outside it: any free port
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):  # no /proc: macOS (and IANA) hand out 49152-65535
        return (49152, 65535) if sys.platform == "darwin" else (32768, 60999)


def default_jobs() -> int:
    """Enough scenarios at once to overlap their waiting (a process starting, a Retry-After, a slow token
    endpoint), bounded by the cores: twice their number, at most :data:`DEFAULT_JOBS_CAP`."""
    return max(1, min(DEFAULT_JOBS_CAP, 2 * (os.cpu_count() or 1)))


def serial_reason(config: TargetConfig) -> str:
    """Why this target's scenarios must run one at a time ("" when they may run at once)."""
    lead = "scenarios ran one at a time"
    if config.kind == "python":
        return (f"{lead}: an in-process Python target shares pytest's process, whose clock (freezegun), "
                "stdout and logging cannot be told apart per scenario")
    if config.web is not None:
        if config.web.restart == "session":
            return f"{lead}: restart = \"session\" keeps one app for every scenario"
        if "{port}" not in config.web.url:
            _, why = port_mover(config.web.start, config.root)
            if why:
                return (f"{lead}: [target.web] url {config.web.url!r} has a fixed port, which only one app at a "
                        f"time can listen on, and rfcheck cannot give each scenario's app a port of its own ({why}); "
                        "write it with {port} to let rfcheck start one app per scenario at once")
    if config.command is not None and config.command.serve:
        fixed = _fixed_actions(config)
        ports = {httpx.URL(a).port for a in fixed}
        _, why = port_mover(config.command.serve, config.root) if fixed else ("", "")
        why = why or (f"they name {len(ports)} fixed ports, and only one per worker is moved" if len(ports) > 1
                      else "" if all(httpx.URL(a).host.lower() in LOOPBACK_HOSTS for a in fixed)
                      else "a worker on another host than this machine's loopback cannot be moved")
        if why:
            return (f"{lead}: [target.command] actions name a fixed port ({fixed[0]!r}), which only one worker at a "
                    f"time can listen on, and rfcheck cannot give each scenario's worker a port of its own ({why}); "
                    "write it with {port} to let rfcheck start one worker per scenario at once")
    return ""


def _fixed_actions(config: TargetConfig) -> list[str]:
    """A ``serve`` worker's actions written with a port of their own instead of ``{port}``."""
    assert config.command is not None
    return [a for a in config.command.actions if "{port}" not in a and httpx.URL(a).port is not None]


def fixed_port(config: TargetConfig) -> int | None:
    """The port a web app or a ``serve`` worker listens on whatever the lane (its ``url`` or its actions
    written without ``{port}``), when rfcheck moves it to the lane's own; None otherwise."""
    if serial_reason(config):
        return None
    web = config.web
    if web is not None and "{port}" not in web.url:
        url = httpx.URL(web.url)
        return url.port or {"https": 443}.get(url.scheme, 80)
    if config.command is not None and config.command.serve and _fixed_actions(config):
        return httpx.URL(_fixed_actions(config)[0]).port
    return None


class Lane:
    """One scenario at a time: its servers, proxy, instrumentation, clock and the target's port."""

    def __init__(self, index: int, config: TargetConfig, idle: Provider, ca: RunCA | None,
                 tls: tuple[str, str] | None) -> None:
        self.index = index
        self.config = config
        self.clock = Clock()
        self.provider = idle  # the run's provider while no scenario runs here: it records strays
        self._ca = ca
        self._servers = [LoopbackServer(idle, "auth", tls=tls), LoopbackServer(idle, "api", tls=tls)]
        intercept = (config.proxy or config.hosts) and ca is not None
        self._proxy = ProxyServer(idle, ca) if intercept and ca is not None else None
        self._instrumentation: Instrumentation | None = None
        self.values: dict[str, str] = {}
        self.client: Client | None = None
        self.environment: Environment | None = None
        self.notes: list[str] = []  # the instrumentation's run-level notes
        self.ports: dict[int, int] = {}  # a fixed port the app asks for -> this lane's, where it listens instead

    def start(self, client: Client | None = None) -> Client:
        """Serve, and fill in the values a target of this lane gets; ``client`` is the run's (None: the first
        lane registers it)."""
        issuer, api_url = (server.start() for server in self._servers)
        self.values = {"issuer": issuer, "api_url": api_url, "audience": AUDIENCE, "port": str(free_port()),
                       "network": self.config.network, "ca_file": self._ca.ca_file if self._ca else "",
                       "proxy_url": self._proxy.start() if self._proxy else ""}
        fixed = fixed_port(self.config)
        if fixed is not None:
            self.ports = {fixed: int(self.values["port"])}
            self.notes.append(self._moved_note(fixed))
        redirect_uri = fill(self.config.redirect_uri, self.values, "[target] redirect_uri")
        if client is None:
            client = self.provider.register_client(self.config.flow, (redirect_uri,), self.config.name)
        self.client = dataclasses.replace(client, redirect_uris=(redirect_uri,))
        self.values.update(client_id=client.client_id, client_secret=client.client_secret, redirect_uri=redirect_uri)
        self.environment = Environment(
            issuer=issuer, api_url=api_url, client_id=client.client_id, client_secret=client.client_secret,
            audience=AUDIENCE, redirect_uri=redirect_uri, network=self.config.network, scopes=self.config.scopes,
            ca_file=self.values["ca_file"])
        return client

    def _moved_note(self, fixed: int) -> str:
        if self.config.web is not None:
            return (f"[target.web] url {self.config.web.url} has a fixed port: each scenario's app listens on a port "
                    f"of its own when it asks for {fixed} (rfcheck's runtime instrumentation moves it there) and "
                    f"rfcheck's browser reaches it there, so that scenarios run side by side; the app, its redirect URI "
                    f"and its logs still say {fixed}")
        return (f"[target.command] actions name the fixed port {fixed}: each scenario's worker listens on a port of "
                f"its own when it asks for {fixed} (rfcheck's runtime instrumentation moves it there) and rfcheck's "
                f"actions reach it there, so that scenarios run side by side; the worker and its logs still say {fixed}")

    def bind(self, provider: Provider) -> None:
        """The next scenario's provider: its requests reach it, its clock starts again from zero."""
        assert self.client is not None, "Lane.start() first"
        self.clock.restart()
        provider.add_client(self.client)
        self._serve(provider)

    def release(self, idle: Provider) -> None:
        """No scenario here any more: what still arrives reaches the run's own provider."""
        self._serve(idle)

    def _serve(self, provider: Provider) -> None:
        self.provider = provider
        for server in self._servers:
            server.bind(provider)
        if self._proxy is not None:
            self._proxy.bind(provider)

    def instrumentation(self) -> Instrumentation:
        """The instrumentation of this lane's process targets, made on first use."""
        if self._instrumentation is None:
            hosts = None
            if self.config.hosts and self._proxy is not None and self._ca is not None:
                hosts = HostRoutes(self._proxy.routes(), self.values["proxy_url"], self._ca.ca_file)
            self._instrumentation = Instrumentation(self.clock, self._refused, hosts, self.ports)
            self.notes.extend(self._instrumentation.notes)
        return self._instrumentation

    def _refused(self, host: str, port: int, via: str) -> None:
        """A connection the target's instrumentation refused: recorded like the proxy's refusals (SEC-04)."""
        scheme = "http" if port == 80 else "https"
        self.provider.handle(httpx.Request("CONNECT", f"{scheme}://{host}:{port or 443}/"))

    def stop(self) -> None:
        if self._instrumentation is not None:
            self._instrumentation.close()
        for server in self._servers:
            server.stop()
        if self._proxy is not None:
            self._proxy.stop()
