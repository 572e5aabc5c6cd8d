"""``rfcheck serve``: the mock Request Finance on loopback, for an app under development.

The same strict mock as a readiness run (its Auth0-style authorization server and its API, each on
its own port of 127.0.0.1), with one client registered at start, and a small admin API (JSON, on a
third port; see :mod:`rfcheck.commands.admin`) that moves the clock, switches faults on and off,
revokes tokens, rotates the signing key and lists the exchanges so far.

At start it prints, on stdout, one ``NAME=value`` per line and then a line ``ready`` (flushed), so
that a script can read the values before it starts the app::

    RF_ISSUER=http://127.0.0.1:41231        (discovery names it with a trailing slash, like Auth0)
    RF_API_URL=http://127.0.0.1:41233
    RF_CLIENT_ID=rfc_...
    RF_CLIENT_SECRET=...
    RF_REDIRECT_URI=http://localhost:3000/callback     (the first one; authorization code flow only)
    RF_REDIRECT_URIS=http://localhost:3000/callback    (all of them, separated by spaces)
    RF_AUDIENCE=accounts
    RF_NETWORK=test
    RF_CA_FILE=/tmp/rfcheck-ca-.../ca.pem             (with --tls)
    RF_ADMIN_URL=http://127.0.0.1:41235
    ready

Everything else (what runs where, how to stop it) goes to stderr. ``--env-file PATH`` also writes the
values as a ``.env`` file for the app; its first line is the marker :data:`ENV_MARKER`, and an
existing file without it is never overwritten (exit 3). The app's own clock does not travel with the
mock's: ID tokens are dated by the real clock, so that a refresh after ``POST /clock/travel`` still
returns an ID token the app accepts, while access tokens expire on the mock's clock.

Ctrl-C (SIGINT), SIGTERM and SIGHUP stop it cleanly: the servers stop, the run's CA folder is
removed, and the exit status is 0. A taken port, an unusable redirect URI or an env file it must not
overwrite is exit status 3 with a message naming it.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from rfcheck.commands import UsageError
from rfcheck.commands.admin import AdminApp, AdminServer
from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.provider.clock import Clock
from rfcheck.provider.tokens import AUDIENCE
from rfcheck.tls import RunCA
from rfcheck.transport.server import LoopbackMock

DEFAULT_REDIRECT_URI = "http://localhost:3000/callback"
ENV_MARKER = "# written by rfcheck serve"
CLIENT_NAME = "rfcheck serve"
_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Prints NAME=value lines (RF_ISSUER, RF_API_URL, RF_CLIENT_ID, RF_CLIENT_SECRET, RF_REDIRECT_URI,\n"
        "RF_REDIRECT_URIS, RF_AUDIENCE, RF_NETWORK, RF_CA_FILE with --tls, RF_ADMIN_URL) and then `ready`\n"
        "on stdout. Admin API (JSON, on RF_ADMIN_URL):\n"
        "  GET /journal[?since=N]   POST /clock/travel {\"seconds\": 86460}   GET /clock\n"
        "  GET /faults   POST /faults/NAME {...}   DELETE /faults/NAME\n"
        "  POST /revoke {\"what\": \"refresh\"|\"access\"}   POST /keys/rotate\n"
        "Faults: token_delay, id_token, refresh_id_token, withhold_scopes, token_endpoint_fails.\n"
        "Ctrl-C or SIGTERM stops it (exit 0). Exit 3: a taken port, an env file not written by rfcheck serve.")
    ports = parser.add_argument_group("ports (on 127.0.0.1 only; 0 or absent: a free port)")
    ports.add_argument("--auth-port", type=int, default=0, metavar="N", help="the authorization server's port")
    ports.add_argument("--api-port", type=int, default=0, metavar="N", help="the API's port")
    ports.add_argument("--admin-port", type=int, default=0, metavar="N", help="the admin API's port")
    parser.add_argument("--tls", action="store_true",
                        help="serve the authorization server and the API over HTTPS, with a CA made for this run "
                             "(its file is printed as RF_CA_FILE and removed at exit); openid-client v6 needs it")
    parser.add_argument("--flow", choices=(AUTHORIZATION_CODE, CLIENT_CREDENTIALS), default=AUTHORIZATION_CODE,
                        help="the flow of the client registered at start (default: %(default)s)")
    parser.add_argument("--redirect-uri", action="append", metavar="URI", dest="redirect_uris",
                        help="a redirect URI registered for the client, matched exactly; repeat for more "
                             f"(default: {DEFAULT_REDIRECT_URI}; authorization code flow only)")
    parser.add_argument("--network", choices=("test", "live"), default="test",
                        help="the X-Network value the app should send, printed as RF_NETWORK (informational: "
                             "the mock serves both; default: %(default)s)")
    parser.add_argument("--env-file", metavar="PATH",
                        help="also write the values as a .env file for the app (RF_*, and NODE_EXTRA_CA_CERTS, "
                             "SSL_CERT_FILE, REQUESTS_CA_BUNDLE with --tls); a file that rfcheck serve did not "
                             f"write (first line {ENV_MARKER!r}) is never overwritten")


def run(args: argparse.Namespace) -> int:
    ports = _ports(args)
    redirect_uris = _redirect_uris(args)
    env_file = _env_file(args.env_file) if args.env_file else None
    stop = threading.Event()
    with _stop_on_signals(stop), _Mock(ports, args.tls) as mock:
        client = mock.provider.register_client(args.flow, redirect_uris, CLIENT_NAME)
        admin_url = mock.start_admin(client, ports["--admin-port"])
        values = _values(mock, client, args.network, admin_url)
        if env_file is not None:
            _write_env_file(env_file, values, mock.ca)
        _announce(values, mock, env_file)
        while not stop.wait(0.2):
            pass
        _say("stopping")
    _say("stopped")
    return 0


# -- the inputs ------------------------------------------------------------------------------
def _ports(args: argparse.Namespace) -> dict[str, int]:
    ports = {"--auth-port": args.auth_port, "--api-port": args.api_port, "--admin-port": args.admin_port}
    for option, port in ports.items():
        if not 0 <= port <= 65535:
            raise UsageError(f"{option} {port}: not a TCP port (0 to 65535; 0 picks a free one)")
    fixed = [(option, port) for option, port in ports.items() if port]
    for i, (option, port) in enumerate(fixed):
        for other, other_port in fixed[i + 1:]:
            if port == other_port:
                raise UsageError(f"{option} and {other} are both {port}: each server needs its own port")
    return ports


def _redirect_uris(args: argparse.Namespace) -> tuple[str, ...]:
    if args.flow == CLIENT_CREDENTIALS:
        if args.redirect_uris:
            raise UsageError("--redirect-uri is for the authorization_code flow; a client credentials client "
                             "has no redirect URI")
        return ()
    uris = tuple(dict.fromkeys(args.redirect_uris or [DEFAULT_REDIRECT_URI]))
    for uri in uris:
        parts = urlsplit(uri)
        if not parts.scheme or not (parts.netloc or parts.path) or any(c.isspace() for c in uri):
            raise UsageError(f"--redirect-uri {uri!r}: not an absolute URI (e.g. {DEFAULT_REDIRECT_URI})")
        if parts.fragment or uri.endswith("#"):
            raise UsageError(f"--redirect-uri {uri!r}: a redirect URI has no fragment (RFC 6749 section 3.1.2)")
    return uris


def _env_file(raw: str) -> Path:
    """The env file to write; refused (exit 3) when it exists and rfcheck serve did not write it."""
    path = Path(raw).expanduser()
    if path.is_dir():
        raise UsageError(f"--env-file {raw}: is a folder")
    if not path.parent.is_dir():
        raise UsageError(f"--env-file {raw}: the folder {path.parent} does not exist")
    if path.exists() or path.is_symlink():
        try:
            with path.open(encoding="utf-8", errors="replace") as existing:
                first = existing.readline()
        except OSError as err:
            raise UsageError(f"--env-file {raw}: cannot read it: {err.strerror or err}") from None
        if not first.startswith(ENV_MARKER):
            raise UsageError(f"--env-file {raw}: the file exists and was not written by rfcheck serve (its first "
                             f"line is not {ENV_MARKER!r}); it is left alone: choose another path or remove it")
    return path


# -- the mock ---------------------------------------------------------------------------------
class _Mock(LoopbackMock):
    """The loopback mock with serve's clock rule and its admin server; all gone on exit."""

    def __init__(self, ports: dict[str, int], tls: bool) -> None:
        provider = Provider()
        # the app's clock does not travel with the mock's: its ID tokens are dated by the real clock
        provider.tokens.id_token_clock = Clock()
        super().__init__(provider, tls=tls, ports={"auth": ports["--auth-port"], "api": ports["--api-port"]})
        self.admin: AdminServer | None = None

    def __enter__(self) -> "_Mock":
        try:
            super().__enter__()
        except OSError as err:
            kind = self.failed or "auth"
            raise _port_error(err, f"--{kind}-port", self.ports[kind]) from None
        return self

    def start_admin(self, client: Client, port: int) -> str:
        self.admin = AdminServer(AdminApp(self.provider, client), port)
        try:
            return self.admin.start()
        except OSError as err:
            raise _port_error(err, "--admin-port", port) from None

    def close(self) -> None:
        super().close()
        if self.admin is not None:
            self.admin.stop()
        self.admin = None


def _port_error(err: OSError, option: str, port: int) -> UsageError:
    code, reason = err.errno, err.strerror or str(err)
    if port and code == errno.EADDRINUSE:
        return UsageError(f"port {port} ({option}) on 127.0.0.1 is already taken by another program: stop it, "
                          "or choose another port (0 picks a free one)")
    if port:
        return UsageError(f"port {port} ({option}) on 127.0.0.1 cannot be used: {reason}")
    return UsageError(f"no free port for {option} on 127.0.0.1: {reason}")


# -- what it tells the app ------------------------------------------------------------------
def _values(mock: _Mock, client: Client, network: str, admin_url: str) -> dict[str, str]:
    values = {"RF_ISSUER": mock.issuer, "RF_API_URL": mock.api_url, "RF_CLIENT_ID": client.client_id,
              "RF_CLIENT_SECRET": client.client_secret}
    if client.redirect_uris:
        values.update(RF_REDIRECT_URI=client.redirect_uris[0], RF_REDIRECT_URIS=" ".join(client.redirect_uris))
    values.update(RF_AUDIENCE=AUDIENCE, RF_NETWORK=network)
    if mock.ca is not None:
        values["RF_CA_FILE"] = mock.ca.ca_file
    values["RF_ADMIN_URL"] = admin_url
    return values


def _announce(values: dict[str, str], mock: _Mock, env_file: Path | None) -> None:
    scheme = "https" if mock.ca else "http"
    _say(f"mock Request Finance ({scheme}): authorization server {values['RF_ISSUER']}, API "
         f"{values['RF_API_URL']}, admin API {values['RF_ADMIN_URL']} (try: curl {values['RF_ADMIN_URL']}/)")
    if env_file is not None:
        _say(f"values written to {env_file}")
    _say("Ctrl-C stops it")
    lines = [f"{name}={value}" for name, value in values.items()] + ["ready"]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _say(message: str) -> None:
    print(f"rfcheck serve: {message}", file=sys.stderr, flush=True)


def _write_env_file(path: Path, values: dict[str, str], ca: RunCA | None) -> None:
    entries = dict(values)  # every value printed on stdout: the README's commands use RF_ADMIN_URL and RF_CA_FILE
    if ca is not None:
        entries.update(NODE_EXTRA_CA_CERTS=ca.ca_file, SSL_CERT_FILE=ca.ca_file, REQUESTS_CA_BUNDLE=ca.ca_file)
    lines = [f"{ENV_MARKER}: the mock Request Finance on loopback (rfcheck serve --help).",
             "# Rewritten at each start; the values work only while it runs. Keep this file out of git.",
             *(f"{name}={_dotenv_value(value)}" for name, value in entries.items())]
    handle, temporary = tempfile.mkstemp(prefix=".rfcheck-env-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.chmod(temporary, 0o600)  # it holds the (mock) client secret
        os.replace(temporary, path)
    except OSError as err:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"--env-file {path}: cannot write it: {err.strerror or err}") from None


def _dotenv_value(value: str) -> str:
    if value and not any(c.isspace() or c in "\"'#$\\`" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


# -- stopping -----------------------------------------------------------------------------------
@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP set ``stop`` (the main loop then stops everything); restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
