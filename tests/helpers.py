"""Helpers for rfcheck's own tests: an agent that talks to the provider like an integration,
what tests of real target processes share (``alive``, ``gone``, ``pids``, the ``toml`` writer),
and the judge that runs a check on its own scenarios against the examples (``Judge``, ``Acme``,
``Worker`` and their broken variants shared by several check tests).

Plain functions and classes live here; the fixtures that build them are in ``conftest.py``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import socket
import secrets
import subprocess
import sys
import sysconfig
import time
import venv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt

from rfcheck import Environment
from rfcheck.checks import CHECKS, scenarios_read
from rfcheck.config import TargetConfig
from rfcheck.harness import Harness
from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from rfcheck.provider.accounts import Client
from rfcheck.facts import API_HOST, AUTH_HOST
from rfcheck.provider.app import Provider
from rfcheck.report.model import Finding
from rfcheck.transport.server import LoopbackServer

ISSUER = AUTH_HOST + "/"
REDIRECT_URI = "https://app.example/callback"
FULL_SCOPE = "openid profile email offline_access"

T = TypeVar("T")


def pkce_pair() -> tuple[str, str]:
    """A fresh RFC 7636 ``(code_verifier, S256 code_challenge)`` pair."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The parameters of an /authorize redirect, from the query or the fragment."""
    assert response.status_code == 302, (response.status_code, response.text)
    location = urlsplit(response.headers["location"])
    return dict(parse_qsl(location.fragment or location.query, keep_blank_values=True))


def unverified(token: str) -> dict[str, Any]:
    """A JWT's claims without any check (to look at what the provider put in)."""
    return jwt.decode(token, options={"verify_signature": False})


@dataclass
class Login:
    """What one full authorization-code login produced."""

    tokens: dict[str, Any]
    code: str
    verifier: str | None
    nonce: str | None
    state: str
    authorize_response: httpx.Response
    token_response: httpx.Response

    @property
    def access_token(self) -> str:
        return str(self.tokens["access_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.tokens["refresh_token"])

    @property
    def id_token(self) -> str:
        return str(self.tokens["id_token"])


@dataclass
class Agent:
    """Sends requests to a provider like an integration does, through ``httpx.MockTransport``."""

    provider: Provider
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(transport=httpx.MockTransport(self.provider.handle))

    # -- front channel ----------------------------------------------------------
    def authorize_url(self, client: Client | None, **params: Any) -> str:
        """An /authorize URL with sensible defaults; a parameter set to ``None`` is left out."""
        defaults: dict[str, Any] = {
            "response_type": "code", "client_id": client.client_id if client else None,
            "redirect_uri": REDIRECT_URI, "audience": "accounts", "scope": FULL_SCOPE,
            "state": secrets.token_urlsafe(8),
        }
        merged = {k: v for k, v in {**defaults, **params}.items() if v is not None}
        return f"{AUTH_HOST}/authorize?{urlencode(merged)}"

    def authorize(self, client: Client | None, **params: Any) -> httpx.Response:
        return self.http.get(self.authorize_url(client, **params))

    # -- back channel -------------------------------------------------------------
    def token(self, client: Client | None = None, *, auth: str = "post", json_body: bool = False,
              headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        """POST /oauth/token; ``auth`` is ``post``, ``basic``, ``both`` or ``none``."""
        body = {k: v for k, v in params.items() if v is not None}
        request_headers = dict(headers or {})
        if client is not None and auth in ("post", "both"):
            body.update(client_id=client.client_id, client_secret=client.client_secret)
        if client is not None and auth in ("basic", "both"):
            request_headers["Authorization"] = basic_header(client.client_id, client.client_secret)
        if json_body:
            return self.http.post(f"{AUTH_HOST}/oauth/token", json=body, headers=request_headers)
        return self.http.post(f"{AUTH_HOST}/oauth/token", data=body, headers=request_headers)

    def login(self, client: Client, *, scope: str = FULL_SCOPE, pkce: bool = True,
              nonce: str | None = None, token_auth: str = "post", **authorize_params: Any) -> Login:
        """Authorize (code flow) then redeem the code; asserts that both steps succeed."""
        verifier, challenge = pkce_pair() if pkce else (None, None)
        state = secrets.token_urlsafe(8)
        front = self.authorize(client, scope=scope, nonce=nonce, state=state, code_challenge=challenge,
                               code_challenge_method="S256" if pkce else None, **authorize_params)
        answer = redirect_params(front)
        assert "code" in answer, answer
        back = self.token(client, auth=token_auth, grant_type=AUTHORIZATION_CODE, code=answer["code"],
                          redirect_uri=REDIRECT_URI, code_verifier=verifier)
        assert back.status_code == 200, back.text
        return Login(back.json(), answer["code"], verifier, nonce, state, front, back)

    def refresh(self, client: Client, refresh_token: str, **params: Any) -> httpx.Response:
        return self.token(client, grant_type="refresh_token", refresh_token=refresh_token, **params)

    def cc_token(self, client: Client, **params: Any) -> str:
        response = self.token(client, grant_type=CLIENT_CREDENTIALS, audience="accounts", **params)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    # -- resources ----------------------------------------------------------------
    def api(self, method: str, path: str, token: str | None = None, *, network: str | None = "test",
            authorization: str | None = None, headers: dict[str, str] | None = None,
            **kwargs: Any) -> httpx.Response:
        """A call to api.request.finance with ``Authorization: Bearer <token>`` and ``X-Network``."""
        request_headers = dict(headers or {})
        if token is not None:
            request_headers["Authorization"] = f"Bearer {token}"
        if authorization is not None:
            request_headers["Authorization"] = authorization
        if network is not None:
            request_headers["X-Network"] = network
        return self.http.request(method, f"{API_HOST}{path}", headers=request_headers, **kwargs)

    def jwks(self) -> dict[str, Any]:
        response = self.http.get(f"{AUTH_HOST}/.well-known/jwks.json")
        assert response.status_code == 200
        return dict(response.json())

    def verify_id_token(self, token: str, client: Client, **options: Any) -> dict[str, Any]:
        """Verify an ID token as a careful relying party does: RS256 via the JWKS, aud, iss, exp, iat."""
        header = jwt.get_unverified_header(token)
        jwk = next((k for k in self.jwks()["keys"] if k["kid"] == header.get("kid")), None)
        if jwk is None:
            raise jwt.InvalidKeyError(f"no key {header.get('kid')!r} in the JWKS")
        return dict(jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=client.client_id,
                               issuer=ISSUER, options={"require": ["iss", "sub", "aud", "exp", "iat"],
                                                       **options}))


def basic_header(client_id: str, secret: str) -> str:
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def json_of(response: httpx.Response) -> Any:
    return json.loads(response.content)


# -- target processes and config files -------------------------------------------------------
def alive(pid: int) -> bool:
    """Whether ``pid`` still runs. A killed orphan stays a zombie here (PID 1 does not reap), and
    a zombie has ended: it runs no code and holds no port."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def gone(pid: int, within: float = 2.0) -> bool:
    """Whether ``pid`` has ended within ``within`` seconds."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def eventually(read: Callable[[], T], within: float = 5.0) -> T:
    """``read()`` once it is truthy (what a server thread records just after its client has moved on),
    or its last value after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not (value := read()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def pids(text: str) -> set[int]:
    """The process ids a target printed as ``pid=<n>``."""
    return {int(pid) for pid in re.findall(r"pid=(\d+)", text)}


def toml(tables: dict[str, dict[str, Any]]) -> str:
    """A small TOML writer: JSON strings, lists, numbers and booleans are TOML too."""
    return "\n".join(f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
                     for name, table in tables.items())


# -- judging a check on its own scenarios against the examples --------------------------------
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FULL_SCOPES = ("openid", "profile", "email", "offline_access", "user:read")
WITHOUT_OFFLINE = ("openid", "profile", "email", "user:read")
WITHOUT_USER_READ = ("openid", "profile", "email", "offline_access")


def load_example(path: Path, name: str) -> ModuleType:
    """Import the example at ``path`` as module ``name`` (the examples are not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


acme = load_example(EXAMPLES / "httpx_code" / "acme_invoices.py", "rfcheck_tests_acme_invoices")
worker = load_example(EXAMPLES / "cc_worker" / "acme_worker.py", "rfcheck_tests_acme_worker")
Acme: type = acme.AcmeInvoices
Worker: type = worker.AcmeWorker


def edit_url(url: str, drop: tuple[str, ...] = (), **values: str) -> str:
    """``url`` with query parameters removed or set."""
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k not in drop}
    return parts._replace(query=urlencode({**query, **values})).geturl()


class PlainPkce(Acme):  # type: ignore[misc, valid-type]
    """Sends its verifier as a ``plain`` code challenge: the mock refuses the login."""

    def start_login(self) -> str:
        url = super().start_login()
        return edit_url(url, code_challenge=self._pending.verifier, code_challenge_method="plain")


def start_harness(target: type, scopes: tuple[str, ...], harness_type: type[Harness] = Harness) -> Harness:
    """A started harness running ``target`` (a subclass of ``Acme`` or ``Worker``) built like the
    examples' ``make_target``; the target gets the harness as ``rfcheck`` (to turn on faults or
    find API keys)."""
    flow = CLIENT_CREDENTIALS if issubclass(target, Worker) else AUTHORIZATION_CODE
    config = TargetConfig(file=Path("rfcheck.toml"), root=Path("."), name=target.__name__, kind="python",
                          flow=flow, network="test", redirect_uri="http://localhost:8000/callback",
                          scopes=scopes, project=Path("."))

    def make(env: Environment) -> Any:
        if flow == CLIENT_CREDENTIALS:
            made = target(client_id=env.client_id, client_secret=env.client_secret, network=env.network)
        else:
            made = target(client_id=env.client_id, client_secret=env.client_secret, redirect_uri=env.redirect_uri,
                          network=env.network, scopes=tuple(env.scopes))
        made.rfcheck = harness
        return made

    harness = harness_type(config, make)
    harness.start()
    return harness


class Judge:
    """``judge(ID, target, scopes, harness_type)``: the check on its own scenarios, one harness per target."""

    def __init__(self) -> None:
        self.harnesses: dict[tuple[Any, ...], Harness] = {}

    def harness(self, target: type = Acme, scopes: tuple[str, ...] = FULL_SCOPES,
                harness_type: type[Harness] = Harness) -> Harness:
        key = (target, scopes, harness_type)
        if key not in self.harnesses:
            self.harnesses[key] = start_harness(target, scopes, harness_type)
        return self.harnesses[key]

    def __call__(self, requirement_id: str, target: type = Acme, scopes: tuple[str, ...] = FULL_SCOPES,
                 harness_type: type[Harness] = Harness) -> Finding:
        harness, check = self.harness(target, scopes, harness_type), CHECKS[requirement_id]
        return check.function(harness.check_context({name: harness.scenario(name)
                                                for name in scenarios_read(check, harness.scenarios)}))

    def close(self) -> None:
        for harness in self.harnesses.values():
            harness.stop()


def details(finding: Finding) -> str:
    """A finding's evidence details in one line."""
    return " | ".join(e.detail for e in finding.evidence)


def raw_exchange(server_url: str, request: bytes) -> bytes:
    """Send ``request`` as bytes to a loopback server, half-close, and read the whole answer."""
    host, port = server_url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        try:
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@contextmanager
def loopback_servers(provider: Provider) -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    """The mock's auth and api hosts on loopback ports, stopped on the way out."""
    auth, api = LoopbackServer(provider, "auth"), LoopbackServer(provider, "api")
    auth.start()
    api.start()
    try:
        yield auth, api
    finally:
        auth.stop()
        api.stop()


def venv_with_this_interpreters_packages(env_dir: Path) -> Path:
    """A new venv whose dependencies come from this interpreter's site-packages (a venv's or the system's:
    a venv's own ``system_site_packages`` would see the base interpreter's instead); its python.

    Plain path lines: the ``.pth`` files there (an editable rfcheck's finder among them) are not run, so
    rfcheck itself is importable only once installed into the new venv."""
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    nested = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(nested) / "outer-dependencies.pth").write_text("".join(f"{path}\n" for path in outer))
    return python
