"""Acme invoice sync: a Request Finance client credentials worker with a shared token cache.

One run is one unit of work: list the invoices of the app's own Request Finance account
(``GET /invoices``) and print a one-line summary. A scheduler (cron, a Kubernetes CronJob, a
queue consumer) starts it as often as it likes, on as many machines or containers as it likes.

The access token is valid for 24 hours, so it is not requested on every run: it is cached in a
JSON file that every run of the worker on this host reads, at a fixed path,
``<tempdir>/acme-rf-token-cache/<client_id>.json`` (``ACME_TOKEN_CACHE_DIR`` moves the folder).
The cache is guarded by an ``fcntl`` lock next to it: runs that find no usable token take the lock,
read the cache again, and only the first of them asks the token endpoint; the others use what it
wrote. A token is reused until a minute before it expires (``expires_at``, computed from
``expires_in`` with this worker's own clock).

On ``401`` from the API the token is renewed once (unless another run already renewed it), written
back, and the call retried once; a second ``401`` ends the run with exit status 1, never a loop.
``429``/``5xx`` from the token endpoint are retried at most twice, honouring ``Retry-After``.

Configuration, from the environment only (no secret in any file):

    RF_ISSUER         https://auth.request.finance (no trailing slash)
    RF_API_URL        https://api.request.finance
    RF_CLIENT_ID      the OAuth app's client ID
    RF_CLIENT_SECRET  its secret (from a secret manager)
    RF_NETWORK        the X-Network of this deployment: exactly "test" or "live"
    ACME_TOKEN_CACHE_DIR  optional: the token cache folder (default <tempdir>/acme-rf-token-cache)

Exit status: 0 the work was done, 1 it failed, 2 the configuration is wrong.
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import requests

AUDIENCE = "accounts"
REFRESH_MARGIN = 60.0  # seconds: a token with less validity left than this is renewed first
MAX_TOKEN_RETRIES = 2  # token endpoint retries after 429/5xx (so at most 3 attempts)
MAX_RETRY_WAIT = 5.0  # seconds: a longer Retry-After is not waited for; the next run tries again
HTTP_TIMEOUT = 10  # seconds, for every request to Request Finance
DEFAULT_CACHE_DIR = os.path.join(tempfile.gettempdir(), "acme-rf-token-cache")


def log(message: str) -> None:
    """Progress lines go to stderr; they never hold a token or the secret."""
    print(f"acme-sync: {message}", file=sys.stderr, flush=True)


class WorkError(Exception):
    """The unit of work failed (exit status 1)."""


class ConfigError(Exception):
    """The configuration is wrong (exit status 2)."""


@dataclass(frozen=True)
class Settings:
    issuer: str
    api_url: str
    client_id: str
    client_secret: str
    network: str
    cache_dir: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        names = ("RF_ISSUER", "RF_API_URL", "RF_CLIENT_ID", "RF_CLIENT_SECRET", "RF_NETWORK")
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
        if env["RF_NETWORK"] not in ("test", "live"):
            raise ConfigError('RF_NETWORK must be exactly "test" or "live"')
        if not re.fullmatch(r"[A-Za-z0-9._~-]+", env["RF_CLIENT_ID"]):
            raise ConfigError("RF_CLIENT_ID has unexpected characters")  # it names the cache file
        return cls(issuer=env["RF_ISSUER"].rstrip("/"), api_url=env["RF_API_URL"].rstrip("/"),
                   client_id=env["RF_CLIENT_ID"], client_secret=env["RF_CLIENT_SECRET"],
                   network=env["RF_NETWORK"],
                   cache_dir=env.get("ACME_TOKEN_CACHE_DIR") or DEFAULT_CACHE_DIR)


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_at: float  # epoch seconds, by this worker's clock: time of the answer + expires_in

    def fresh(self) -> bool:
        return self.expires_at - time.time() > REFRESH_MARGIN


# -- the shared token cache -------------------------------------------------------------------
class TokenCache:
    """``<cache_dir>/<client_id>.json``, shared by every run of the worker on this host.

    Written atomically (a temporary file, then ``os.replace``), so a reader never sees half a
    file; ``<client_id>.lock`` (``fcntl.flock``) serialises the runs that renew the token.
    The file is a bearer credential for 24 hours: folder and files are readable by their owner only.
    """

    def __init__(self, cache_dir: str, client_id: str) -> None:
        self.dir = cache_dir
        self.client_id = client_id
        self.path = os.path.join(cache_dir, f"{client_id}.json")
        self.lock_path = os.path.join(cache_dir, f"{client_id}.lock")

    def read(self) -> Token | None:
        try:
            with open(self.path, encoding="utf-8") as file:
                data = json.load(file)
            if data.get("client_id") != self.client_id:  # never send a token cached for other credentials
                return None
            return Token(str(data["access_token"]), float(data["expires_at"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log("the token cache is unreadable; ignoring it")
            return None

    def write(self, token: Token) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{self.client_id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump({"client_id": self.client_id, "access_token": token.access_token,
                           "expires_at": token.expires_at}, file)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def ensure_dir(self) -> None:
        """Create the folder (owner only); refuse one that another user owns or may write to (the
        default is under the shared temp dir, where anyone could have created it first)."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        info = os.stat(self.dir)
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise WorkError(f"the token cache folder {self.dir} is not private to this user; refusing to use it")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.ensure_dir()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the file is closed, even if the run dies
            yield
        finally:
            os.close(fd)


# -- Request Finance --------------------------------------------------------------------------
class RequestFinance:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = TokenCache(settings.cache_dir, settings.client_id)
        self.cache.ensure_dir()
        self.http = requests.Session()

    def current_token(self) -> Token:
        """The cached token while it is fresh; otherwise a new one (one run asks, the others wait)."""
        token = self.cache.read()
        if token is not None and token.fresh():
            return token
        return self.renew(stale=token)

    def renew(self, stale: Token | None) -> Token:
        """Replace ``stale``: under the lock, use what another run wrote meanwhile, or ask for a new token."""
        with self.cache.locked():
            cached = self.cache.read()
            if cached is not None and cached.fresh() and cached != stale:
                return cached  # another run renewed it while this one waited
            log("requesting an access token (client credentials)")
            token = self.request_token()
            self.cache.write(token)
            return token

    def request_token(self) -> Token:
        """``grant_type=client_credentials`` with ``audience=accounts``, client_secret_post."""
        form = {"grant_type": "client_credentials", "audience": AUDIENCE,
                "client_id": self.settings.client_id, "client_secret": self.settings.client_secret}
        url = f"{self.settings.issuer}/oauth/token"
        for attempt in range(MAX_TOKEN_RETRIES + 1):
            try:
                response = self.http.post(url, data=form, headers={"Accept": "application/json"},
                                          timeout=HTTP_TIMEOUT)
            except requests.RequestException as err:
                raise WorkError(f"token endpoint unreachable ({type(err).__name__})") from None
            if response.status_code != 429 and response.status_code < 500:
                break
            wait = retry_after_seconds(response)
            wait = 2.0 ** attempt if wait is None else wait
            if attempt == MAX_TOKEN_RETRIES or wait > MAX_RETRY_WAIT:
                raise WorkError(f"token endpoint answered HTTP {response.status_code}; giving up for this run")
            log(f"token endpoint answered HTTP {response.status_code}; retrying in {wait:g} s")
            time.sleep(wait)
        body = json_body(response)
        if response.status_code != 200:
            raise WorkError(f"token request refused: HTTP {response.status_code} {body.get('error', '')}".rstrip())
        if (str(body.get("token_type", "")).lower() != "bearer" or not body.get("access_token")
                or "expires_in" not in body):
            raise WorkError("unexpected token response: no Bearer access token with expires_in")
        return Token(str(body["access_token"]), time.time() + float(body["expires_in"]))

    def api_get(self, path: str) -> Any:
        token = self.current_token()
        response = self.send(token, path)
        if response.status_code == 401:  # revoked or expired early: renew once, retry once
            log(f"GET {path}: access token refused ({bearer_error(response) or 'HTTP 401'}); renewing it once")
            token = self.renew(stale=token)
            response = self.send(token, path)
            if response.status_code == 401:
                raise WorkError(f"GET {path}: a renewed access token was refused too; stopping")
        if response.status_code != 200:
            raise WorkError(f"GET {path} answered HTTP {response.status_code}")
        return response.json()

    def send(self, token: Token, path: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token.access_token}", "X-Network": self.settings.network,
                   "Accept": "application/json"}
        try:
            return self.http.get(f"{self.settings.api_url}{path}", headers=headers, timeout=HTTP_TIMEOUT)
        except requests.RequestException as err:
            raise WorkError(f"GET {path}: Request Finance unreachable ({type(err).__name__})") from None


def json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def bearer_error(response: requests.Response) -> str:
    """The ``error`` of an RFC 6750 ``WWW-Authenticate: Bearer`` challenge, or ""."""
    match = re.search(r'\berror="([^"]*)"', response.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else ""


def retry_after_seconds(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds: a number or an HTTP date (RFC 9110 §10.2.3); None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as err:
        log(f"configuration error: {err}")
        return 2
    try:
        invoices = RequestFinance(settings).api_get("/invoices")
    except WorkError as err:
        log(str(err))
        return 1
    count = len(invoices) if isinstance(invoices, list) else "?"
    print(f"acme-sync: read {count} invoice(s) (X-Network: {settings.network})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
