"""``rfcheck serve``, through the real entry point in a subprocess (``python -m rfcheck serve ...``).

The printed values work (discovery, a client credentials token, an API call), over HTTPS with the
printed CA file too; the env file is written and a foreign one never overwritten; fixed and taken
ports; the admin API (time travel, faults, revocation, key rotation, the journal); a clean stop on
SIGINT and SIGTERM; and, end to end, the Node Express example (openid-client v6) logging in and
reading invoices against ``rfcheck serve --tls`` with the values of its env file.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_APP = ROOT / "examples" / "node" / "express-app"
MARKER = "# written by rfcheck serve"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
PRINTED = ["RF_ISSUER", "RF_API_URL", "RF_CLIENT_ID", "RF_CLIENT_SECRET", "RF_REDIRECT_URI", "RF_REDIRECT_URIS",
           "RF_AUDIENCE", "RF_NETWORK", "RF_ADMIN_URL"]


# -- running `rfcheck serve` ---------------------------------------------------------------------------
class Serve:
    """One ``rfcheck serve`` process: its printed values once ``ready``, its stderr, and how it ended."""

    def __init__(self, args: tuple[str, ...], tmpdir: Path) -> None:
        env = {**os.environ, "TMPDIR": str(tmpdir)}  # the run's CA folder is made here: its removal is visible
        self.process = subprocess.Popen([sys.executable, "-m", "rfcheck", "serve", *args], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self.stdout: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self._lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self._stderr.append), daemon=True).start()
        self.values: dict[str, str] = {}

    @staticmethod
    def _pump(stream: Any, sink: Callable[[Any], None]) -> None:
        for line in stream:
            sink(line)
        sink(None)

    @property
    def stderr(self) -> str:
        return "".join(line for line in self._stderr if line)

    def ready(self, timeout: float = READY_TIMEOUT) -> dict[str, str]:
        """The NAME=value lines printed before ``ready``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no `ready` within {timeout:g} s; stderr: {self.stderr}") from None
            if line is None:
                self.process.wait(timeout=5)
                raise AssertionError(f"exited with {self.process.returncode} before `ready`; stdout: "
                                     f"{''.join(self.stdout)!r}; stderr: {self.stderr}")
            self.stdout.append(line)
            if line.rstrip("\n") == "ready":
                return self.values
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S.*\n", line), f"not a NAME=value line: {line!r}"
            name, _, value = line.rstrip("\n").partition("=")
            self.values[name] = value

    def exit_status(self, timeout: float = 15.0) -> int:
        """For a start that must fail: the exit status (the process must end by itself)."""
        return self.process.wait(timeout=timeout)

    def stop(self, signum: int = signal.SIGINT, timeout: float = STOP_TIMEOUT) -> tuple[int, float]:
        """Send ``signum``; the exit status and how long it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signum)
        status = self.process.wait(timeout=timeout)
        return status, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    # -- HTTP helpers ---------------------------------------------------------------------------
    def client(self, **kwargs: Any) -> httpx.Client:
        ca_file = self.values.get("RF_CA_FILE")
        return httpx.Client(timeout=10, trust_env=False, verify=trusting(ca_file) if ca_file else True, **kwargs)

    def admin(self, method: str, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.values["RF_ADMIN_URL"] + path, json=json, timeout=10, trust_env=False,
                             **kwargs)

    def cc_token(self, client: httpx.Client) -> httpx.Response:
        """A client credentials token request with the printed credentials, client_secret_basic."""
        return client.post(self.values["RF_ISSUER"] + "/oauth/token",
                           data={"grant_type": "client_credentials", "audience": "accounts"},
                           auth=(self.values["RF_CLIENT_ID"], self.values["RF_CLIENT_SECRET"]))

    def invoices(self, client: httpx.Client, token: str) -> httpx.Response:
        return client.get(self.values["RF_API_URL"] + "/invoices",
                          headers={"Authorization": f"Bearer {token}", "X-Network": self.values["RF_NETWORK"]})


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """``serve(*args)``: an ``rfcheck serve`` process; every one still running is killed at teardown."""
    started: list[Serve] = []
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()

    def start(*args: str) -> Serve:
        process = Serve(args, tmpdir)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def trusting(ca_file: str) -> ssl.SSLContext:
    """What `verify=CA file` means for httpx (which deprecates passing the path itself)."""
    return ssl.create_default_context(cafile=ca_file)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ca_folders(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("rfcheck-ca-*"))


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


# -- the command line ----------------------------------------------------------------------------------
def test_help_names_the_options_and_the_admin_api() -> None:
    done = subprocess.run([sys.executable, "-m", "rfcheck", "serve", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    for word in ("--auth-port", "--api-port", "--admin-port", "--tls", "--flow", "--redirect-uri", "--network",
                 "--env-file", "POST /clock/travel", "/faults/NAME", "POST /revoke", "RF_ADMIN_URL",
                 "token_endpoint_fails"):
        assert word in done.stdout, word


def test_printed_values_work_for_discovery_a_client_credentials_token_and_an_api_call(serve) -> None:
    served = serve("--flow", "client_credentials", "--network", "live")
    values = served.ready()
    assert list(values) == [n for n in PRINTED if not n.startswith("RF_REDIRECT")]  # no redirect URI for cc
    assert values["RF_AUDIENCE"] == "accounts" and values["RF_NETWORK"] == "live"
    for name in ("RF_ISSUER", "RF_API_URL", "RF_ADMIN_URL"):
        assert values[name].startswith("http://127.0.0.1:"), values  # loopback only, plain HTTP without --tls
    with served.client() as client:
        discovery = client.get(values["RF_ISSUER"] + "/.well-known/openid-configuration")
        assert discovery.status_code == 200
        assert discovery.json()["issuer"] == values["RF_ISSUER"] + "/"  # Auth0's trailing slash
        assert discovery.json()["token_endpoint"] == values["RF_ISSUER"] + "/oauth/token"
        token = served.cc_token(client)
        assert token.status_code == 200, token.text
        body = token.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 86400 and "refresh_token" not in body
        answer = served.invoices(client, body["access_token"])
        assert answer.status_code == 200, answer.text
        assert isinstance(answer.json(), list)
        assert client.get(values["RF_API_URL"] + "/invoices",
                          headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 400
    assert "ready" not in served.stderr and "Ctrl-C" in served.stderr  # people's words on stderr only


def test_tls_serves_https_with_the_printed_ca_file_and_removes_it_at_exit(serve, tmp_path: Path) -> None:
    served = serve("--tls", "--flow", "client_credentials")
    values = served.ready()
    assert values["RF_ISSUER"].startswith("https://127.0.0.1:") and values["RF_API_URL"].startswith("https://")
    ca_file = Path(values["RF_CA_FILE"])
    assert ca_file.is_file() and ca_folders(tmp_path) == [ca_file.parent]
    with httpx.Client(verify=trusting(str(ca_file)), trust_env=False, timeout=10) as client:
        assert client.get(values["RF_ISSUER"] + "/.well-known/openid-configuration").json()["issuer"] == \
            values["RF_ISSUER"] + "/"
        token = served.cc_token(client).json()["access_token"]
        assert served.invoices(client, token).status_code == 200
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the run's CA
        httpx.get(values["RF_ISSUER"] + "/.well-known/jwks.json", trust_env=False, timeout=10)
    status, _ = served.stop()
    assert status == 0
    assert not ca_file.parent.exists() and ca_folders(tmp_path) == []


def test_redirect_uris_are_registered_exactly(serve) -> None:
    served = serve("--redirect-uri", "http://localhost:8080/cb", "--redirect-uri", "https://app.example/callback")
    values = served.ready()
    assert values["RF_REDIRECT_URI"] == "http://localhost:8080/cb"
    assert values["RF_REDIRECT_URIS"] == "http://localhost:8080/cb https://app.example/callback"
    with served.client() as client:
        for uri, status in (("https://app.example/callback", 302), ("http://localhost:8080/cb/", 400)):
            answer = client.get(values["RF_ISSUER"] + "/authorize", params={
                "response_type": "code", "client_id": values["RF_CLIENT_ID"], "redirect_uri": uri,
                "audience": "accounts", "scope": "openid"})
            assert answer.status_code == status, (uri, answer.text)


# -- the env file --------------------------------------------------------------------------------------
def read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith(MARKER), lines[0]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_env_file_is_written_rewritten_by_serve_and_never_overwrites_another_file(serve, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    served = serve("--tls", "--env-file", str(env_file))
    values = served.ready()
    written = read_env_file(env_file)
    # every value printed, RF_ADMIN_URL and RF_CA_FILE included (the README sources the file, then curls)
    assert written == {**values, "NODE_EXTRA_CA_CERTS": values["RF_CA_FILE"], "SSL_CERT_FILE": values["RF_CA_FILE"],
                       "REQUESTS_CA_BUNDLE": values["RF_CA_FILE"]}
    assert {"RF_ADMIN_URL", "RF_CA_FILE", "RF_REDIRECT_URIS", "RF_ISSUER", "RF_CLIENT_SECRET"} <= set(written)
    assert env_file.stat().st_mode & 0o077 == 0  # it holds the (mock) client secret
    assert served.stop()[0] == 0

    again = serve("--env-file", str(env_file))  # written by rfcheck serve: rewritten, now without TLS
    rewritten = read_env_file(env_file) if again.ready() else {}
    assert rewritten["RF_CLIENT_ID"] == again.values["RF_CLIENT_ID"] != values["RF_CLIENT_ID"]
    assert "NODE_EXTRA_CA_CERTS" not in rewritten
    assert again.stop()[0] == 0

    mine = tmp_path / "mine.env"
    mine.write_text("RF_CLIENT_ID=my-real-app\nRF_CLIENT_SECRET=keep-me\n")
    refused = serve("--tls", "--env-file", str(mine))
    assert refused.exit_status() == 3
    assert str(mine) in refused.stderr and "not written by rfcheck serve" in refused.stderr
    assert mine.read_text() == "RF_CLIENT_ID=my-real-app\nRF_CLIENT_SECRET=keep-me\n"
    assert "ready\n" not in refused.stdout and ca_folders(tmp_path) == []


# -- ports ---------------------------------------------------------------------------------------------
def test_fixed_ports_are_used(serve) -> None:
    auth, api, admin = free_port(), free_port(), free_port()
    if len({auth, api, admin}) < 3:
        pytest.skip("the system handed out the same free port twice")
    served = serve("--auth-port", str(auth), "--api-port", str(api), "--admin-port", str(admin))
    values = served.ready()
    assert values["RF_ISSUER"] == f"http://127.0.0.1:{auth}"
    assert values["RF_API_URL"] == f"http://127.0.0.1:{api}"
    assert values["RF_ADMIN_URL"] == f"http://127.0.0.1:{admin}"
    assert served.admin("GET", "/clock").status_code == 200


@pytest.mark.parametrize("option", ["--auth-port", "--api-port", "--admin-port"])
def test_a_taken_port_is_exit_3_naming_it(serve, tmp_path: Path, option: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        started = time.monotonic()
        refused = serve("--tls", option, str(port))
        assert refused.exit_status() == 3
        assert time.monotonic() - started < 15
    assert f"port {port} ({option}) on 127.0.0.1 is already taken" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and "ready\n" not in refused.stdout
    assert ca_folders(tmp_path) == []  # the CA made before the bind was removed


@pytest.mark.parametrize("args, message", [
    (("--auth-port", "70000"), "--auth-port 70000"),
    (("--api-port", "4000", "--admin-port", "4000"), "--api-port and --admin-port are both 4000"),
    (("--flow", "client_credentials", "--redirect-uri", "http://localhost/cb"), "--redirect-uri"),
    (("--redirect-uri", "localhost:3000/callback#x"), "--redirect-uri"),
])
def test_unusable_options_are_exit_3(serve, args: tuple[str, ...], message: str) -> None:
    refused = serve(*args)
    assert refused.exit_status() == 3
    assert message in refused.stderr and "Traceback" not in refused.stderr


# -- the admin API -------------------------------------------------------------------------------------
def test_travel_moves_the_clock_so_a_token_from_before_24_h_is_refused(serve) -> None:
    served = serve("--flow", "client_credentials")
    served.ready()
    with served.client() as client:
        token = served.cc_token(client).json()["access_token"]
        assert served.invoices(client, token).status_code == 200
        before = served.admin("GET", "/clock").json()
        travelled = served.admin("POST", "/clock/travel", {"seconds": 86400})
        assert travelled.status_code == 200 and travelled.json()["offset"] == 86400
        assert travelled.json()["epoch"] - before["epoch"] >= 86400
        refused = served.invoices(client, token)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        fresh = served.cc_token(client).json()["access_token"]  # a new token works at the new time
        assert served.invoices(client, fresh).status_code == 200
    for body, field in (({"seconds": -1}, "seconds"), ({"seconds": "1d"}, "seconds"), ({}, "seconds"),
                        ([86400], "body")):
        bad = served.admin("POST", "/clock/travel", body)
        assert bad.status_code == 400 and bad.json()["field"] == field, bad.text
    assert served.admin("GET", "/clock").json()["offset"] == 86400
    assert served.admin("GET", "/clock/travel").status_code == 405


def test_a_fault_switched_on_and_off(serve) -> None:
    served = serve("--flow", "client_credentials")
    served.ready()
    with served.client() as client:
        on = served.admin("POST", "/faults/token_endpoint_fails", {"status": 503, "times": 2, "retry_after": 3})
        assert on.status_code == 200 and on.json()["on"] is True
        listed = served.admin("GET", "/faults").json()["faults"]
        assert listed["token_endpoint_fails"]["value"] == [{"status": 503, "retry_after": 3}] * 2
        assert listed["token_delay"] == {**listed["token_delay"], "on": False, "value": 0.0}
        failed = served.cc_token(client)
        assert failed.status_code == 503 and failed.headers["retry-after"] == "3"
        assert failed.json()["error"] == "temporarily_unavailable"
        off = served.admin("DELETE", "/faults/token_endpoint_fails")  # the second failure is dropped
        assert off.status_code == 200 and off.json() == {"fault": "token_endpoint_fails", "on": False, "value": []}
        assert served.cc_token(client).status_code == 200

        assert served.admin("POST", "/faults/token_delay", {"seconds": 0.5}).json()["value"] == 0.5
        started = time.monotonic()
        assert served.cc_token(client).status_code == 200
        assert time.monotonic() - started >= 0.5
        served.admin("DELETE", "/faults/token_delay")
        assert served.admin("GET", "/faults").json()["faults"]["token_delay"]["on"] is False

    for name, body, field in (("id_token", {"fault": "wrong"}, "fault"), ("token_delay", {}, "seconds"),
                              ("token_endpoint_fails", {"status": 404}, "status"),
                              ("token_endpoint_fails", {"status": 429, "times": 0}, "times"),
                              ("withhold_scopes", {"scopes": ["admin"]}, "scopes"),
                              ("refresh_id_token", "not an object", "body")):
        bad = served.admin("POST", f"/faults/{name}", body)
        assert bad.status_code == 400 and bad.json()["field"] == field, (name, bad.text)
    # curl -d sends a form content type: the body is read as JSON all the same
    as_curl = served.admin("POST", "/faults/id_token", content=b'{"fault": "alg_none"}',
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert as_curl.status_code == 200 and as_curl.json()["value"] == "alg_none"


def test_an_unknown_fault_is_404_listing_the_known_ones(serve) -> None:
    served = serve()
    served.ready()
    for method in ("POST", "DELETE"):
        answer = served.admin(method, "/faults/slow_api", {"seconds": 1})
        assert answer.status_code == 404
        assert answer.json()["known"] == ["id_token", "refresh_id_token", "token_delay", "token_endpoint_fails",
                                          "withhold_scopes"]
        assert "slow_api" in answer.json()["message"]
    assert served.admin("GET", "/nowhere").status_code == 404
    foreign = served.admin("POST", "/faults/token_delay", {"seconds": 1}, headers={"Host": "rebound.example"})
    assert foreign.status_code == 403  # only requests addressed to a loopback name
    assert served.admin("GET", "/faults").json()["faults"]["token_delay"]["on"] is False
    assert served.admin("GET", "/clock", headers={"Host": "localhost"}).status_code == 200


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def code_login(served: Serve, client: httpx.Client, scope: str, **extra: str) -> httpx.Response:
    """A login through /authorize (the mock's user consents at once) and the code exchange."""
    values, verifier = served.values, secrets.token_urlsafe(48)
    authorize = client.get(values["RF_ISSUER"] + "/authorize", params={
        "response_type": "code", "client_id": values["RF_CLIENT_ID"], "redirect_uri": values["RF_REDIRECT_URI"],
        "audience": "accounts", "scope": scope, "state": "s1", "code_challenge": s256(verifier),
        "code_challenge_method": "S256", **extra})
    assert authorize.status_code == 302, authorize.text
    callback = dict(parse_qsl(urlsplit(authorize.headers["location"]).query))
    assert callback["state"] == "s1", callback
    return client.post(values["RF_ISSUER"] + "/oauth/token", auth=(values["RF_CLIENT_ID"], values["RF_CLIENT_SECRET"]),
                       data={"grant_type": "authorization_code", "code": callback["code"], "code_verifier": verifier,
                             "redirect_uri": values["RF_REDIRECT_URI"]})


def test_revoke_refresh_families_and_access_tokens(serve) -> None:
    served = serve()
    values = served.ready()
    with served.client() as client:
        tokens = code_login(served, client, "openid profile email offline_access").json()
        assert served.invoices(client, tokens["access_token"]).status_code == 200
        revoked = served.admin("POST", "/revoke", {"what": "refresh"})
        assert revoked.status_code == 200 and revoked.json() == {"what": "refresh", "revoked": 1}
        refresh = client.post(values["RF_ISSUER"] + "/oauth/token",
                              auth=(values["RF_CLIENT_ID"], values["RF_CLIENT_SECRET"]),
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 403 and refresh.json()["error"] == "invalid_grant"
        assert served.invoices(client, tokens["access_token"]).status_code == 200  # access tokens live on
        assert served.admin("POST", "/revoke", {"what": "access"}).json() == {"what": "access", "revoked": 1}
        assert served.invoices(client, tokens["access_token"]).status_code == 401
    bad = served.admin("POST", "/revoke", {"what": "everything"})
    assert bad.status_code == 400 and bad.json()["field"] == "what"


def test_a_withheld_scope_and_an_id_token_fault_reach_a_login(serve) -> None:
    served = serve()
    served.ready()
    served.admin("POST", "/faults/withhold_scopes", {"scopes": ["user:read"]})
    served.admin("POST", "/faults/id_token", {"fault": "wrong_iss"})
    with served.client() as client:
        tokens = code_login(served, client, "openid offline_access user:read").json()
        assert "user:read" not in tokens["scope"].split()
        claims = tokens["id_token"].split(".")[1]
        assert b"login.example.com" in base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4))
        again = code_login(served, client, "openid offline_access user:read", prompt="consent").json()
        assert "user:read" in again["scope"].split()  # asked again with prompt=consent


def test_keys_rotate_publishes_the_new_key_first(serve) -> None:
    served = serve()
    values = served.ready()
    with served.client() as client:
        before = [k["kid"] for k in client.get(values["RF_ISSUER"] + "/.well-known/jwks.json").json()["keys"]]
        rotated = served.admin("POST", "/keys/rotate").json()
        after = [k["kid"] for k in client.get(values["RF_ISSUER"] + "/.well-known/jwks.json").json()["keys"]]
    assert after == [rotated["kid"], *before] == rotated["published"]


def test_journal_lists_the_exchanges_redacted_and_since(serve) -> None:
    served = serve("--flow", "client_credentials")
    values = served.ready()
    assert served.admin("GET", "/journal").json() == {"exchanges": [], "last": 0}
    with served.client() as client:
        token = served.cc_token(client).json()["access_token"]
        served.invoices(client, token)
        client.get(values["RF_API_URL"] + "/invoices")  # no credentials: 401
    journal = served.admin("GET", "/journal")
    assert journal.status_code == 200
    exchanges = journal.json()["exchanges"]
    assert [(e["n"], e["method"], e["path"], e["status"], e["to"]) for e in exchanges] == [
        (1, "POST", "/oauth/token", 200, "auth"), (2, "GET", "/invoices", 200, "api"),
        (3, "GET", "/invoices", 401, "api")]
    assert "grant_type=client_credentials" in exchanges[0]["note"]
    assert values["RF_CLIENT_SECRET"] not in journal.text and token not in journal.text
    assert journal.json()["last"] == 3
    since = served.admin("GET", "/journal", params={"since": 2}).json()
    assert [e["n"] for e in since["exchanges"]] == [3] and since["last"] == 3
    assert served.admin("GET", "/journal", params={"since": 3}).json() == {"exchanges": [], "last": 3}
    assert {e["step"] for e in exchanges} == {"serve"}
    served.admin("POST", "/clock/travel", {"seconds": 60})
    with served.client() as client:
        served.invoices(client, token)
    after = served.admin("GET", "/journal", params={"since": 3}).json()["exchanges"]
    assert [(e["n"], e["step"]) for e in after] == [(4, "after travel +60 s")]  # what the admin API changed
    bad = served.admin("GET", "/journal", params={"since": "two"})
    assert bad.status_code == 400 and bad.json()["field"] == "since"


# -- stopping ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly(serve, tmp_path: Path, signum: int) -> None:
    served = serve("--tls")
    values = served.ready()
    ca_folder = Path(values["RF_CA_FILE"]).parent
    assert ca_folder.is_dir()
    status, seconds = served.stop(signum)
    assert status == 0, served.stderr
    assert seconds < STOP_TIMEOUT
    assert not ca_folder.exists() and ca_folders(tmp_path) == []
    assert "stopped" in served.stderr and "Traceback" not in served.stderr
    for name in ("RF_ISSUER", "RF_API_URL", "RF_ADMIN_URL"):  # nothing listens any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port_of(values[name])), timeout=1).close()


# -- end to end: the Node Express example (openid-client v6) ------------------------------------------
@pytest.fixture
def node_app_installed() -> None:
    if not (NODE_APP / "node_modules").is_dir() or shutil.which("node") is None:
        message = "needs Node.js and `npm ci` in examples/node/express-app (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Node example against rfcheck serve: {message}")
        pytest.skip(message)


def test_the_express_example_logs_in_and_reads_invoices_against_serve(serve, tmp_path: Path,
                                                                      node_app_installed: None) -> None:
    port = free_port()
    env_file = tmp_path / ".env"
    served = serve("--tls", "--redirect-uri", f"http://localhost:{port}/callback", "--env-file", str(env_file))
    values = served.ready()
    # the env its README documents, from the env file rfcheck serve wrote (RF_AUDIENCE and the other
    # CA variables are there too, unused by this app)
    env = {**os.environ, **read_env_file(env_file), "PORT": str(port)}
    assert env["RF_REDIRECT_URI"] == f"http://localhost:{port}/callback"
    assert env["NODE_EXTRA_CA_CERTS"] == values["RF_CA_FILE"]
    log = (tmp_path / "app.log").open("w+")
    app = subprocess.Popen(["node", "server.js"], cwd=NODE_APP, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        base = f"http://localhost:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert app.poll() is None, f"the app exited with {app.returncode}: {Path(log.name).read_text()}"
            try:
                if httpx.get(base + "/", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the app never answered: {Path(log.name).read_text()}"
            time.sleep(0.1)
        # the user's browser: keeps the app's cookies, follows the app to the mock's /authorize (where the
        # mock's user consents at once) and back to the app's callback; it trusts the run's CA
        with httpx.Client(verify=trusting(values["RF_CA_FILE"]), follow_redirects=True, trust_env=False, timeout=15) as browser:
            login = browser.get(base + "/login")
            assert login.status_code == 200 and login.text == "logged in", (login.status_code, login.text,
                                                                           Path(log.name).read_text())
            hops = [str(r.url) for r in login.history]
            assert hops[0] == base + "/login" and hops[1].startswith(values["RF_ISSUER"] + "/authorize?")
            invoices = browser.get(base + "/invoices")
            assert invoices.status_code == 200, (invoices.text, Path(log.name).read_text())
            assert invoices.json()["organization"] == "6542a1b0c3d4e5f6a7b8c9d0"  # the mock user's organization

            # a day later (the mock's clock only): the app meets 401, refreshes once and carries on
            served.admin("POST", "/clock/travel", {"seconds": 86_460})
            later = browser.get(base + "/invoices")
            assert later.status_code == 200, (later.text, Path(log.name).read_text())

        exchanges = served.admin("GET", "/journal").json()["exchanges"]
        token_requests = [e["note"] for e in exchanges if e["path"] == "/oauth/token" and e["status"] == 200]
        assert [n.split(";")[0] for n in token_requests] == ["grant_type=authorization_code",
                                                             "grant_type=refresh_token"], exchanges
        api = [e for e in exchanges if e["to"] == "api"]
        answered = [e for e in api if e["status"] == 200]
        assert answered and all("X-Network='test'" in e["note"] for e in answered), [e["note"] for e in api]
        expired = [e for e in api if e["status"] == 401]
        assert len(expired) == 1 and "expired" in expired[0]["note"], [e["note"] for e in api]  # once, then refreshed
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGTERM)
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(app.pid, signal.SIGKILL)
                app.wait(timeout=10)
        log.close()
    assert served.stop()[0] == 0
    assert not Path(values["RF_CA_FILE"]).exists()
