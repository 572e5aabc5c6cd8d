"""What rfcheck init finds and writes: the guess and its environment lines, and the names it knows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httpx

from rfcheck.facts import AUTH_HOST


CONFIG_NAME = "rfcheck.toml"
# folders never searched: dependencies, virtual environments, build output (and every hidden folder)
SKIP_DIRS = {"node_modules", "venv", "env", "__pycache__", "site-packages", "dist", "build", "target", "out",
             "vendor", "coverage", "reports", "bower_components"}
SOURCE_SUFFIXES = {".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".vue", ".svelte", ".py",
                   ".java", ".kt", ".kts", ".scala", ".groovy", ".go", ".rb", ".php", ".cs", ".rs",
                   ".json", ".yaml", ".yml", ".properties", ".ini", ".cfg", ".conf"}
CODE_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".vue", ".svelte", ".py", ".java",
                 ".kt", ".scala", ".groovy", ".go", ".rb", ".php", ".cs", ".rs")
SKIP_FILES = {"package-lock.json", "npm-shrinkwrap.json", "composer.lock", CONFIG_NAME}
ENV_EXAMPLES = (".env.example", ".env.sample", ".env.template", ".env.dist", ".env.local.example", "example.env",
                "sample.env", ".env.defaults")
MAX_FILE = 512 * 1024
MAX_FILES = 5000

NODE_WEB = ("express", "next", "fastify", "koa", "@nestjs/core", "@hapi/hapi", "hono", "express-openid-connect",
            "@auth0/nextjs-auth0")
NODE_NOTED = ("openid-client", "express-openid-connect", "axios", "node-fetch", "got", "undici", "passport",
              "passport-openidconnect", "passport-oauth2")
PYTHON_NOTED = ("authlib", "httpx", "requests", "django", "flask", "fastapi", "aiohttp", "requests-oauthlib",
                "uvicorn", "gunicorn", "oauthlib")
PYTHON_CLIENTS = ("authlib", "httpx", "requests", "aiohttp", "requests-oauthlib", "oauthlib")
JVM_WEB = ("spring-boot-starter-web", "spring-boot-starter-webflux", "spring-boot-starter-oauth2-client",
           "javalin", "micronaut-http-server", "quarkus-resteasy", "quarkus-rest", "sparkjava", "ktor-server")
GO_WEB = ("github.com/gin-gonic/gin", "github.com/labstack/echo", "github.com/go-chi/chi", "github.com/gorilla/mux",
          "github.com/gofiber/fiber")

# what an environment variable of the app is for, from its name (the first rule that matches wins)
APP_URL = "http://localhost:{port}"
AUTH_DOMAIN = httpx.URL(AUTH_HOST).host
# not a value written as such: a session cookie key gets a fresh random value (see fill_environment)
SESSION_KEY = "<session key>"
ENV_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"CLIENT_?SECRET"), "{client_secret}"),
    # the key that signs or encrypts the app's session cookie (express-session, express-openid-connect,
    # nextjs-auth0, Auth.js, Flask, Django): the app's own, never one rfcheck issues
    (re.compile(r"^(?:[A-Z0-9]+_)?(?:SESSION|COOKIE)_(?:SECRET|KEY|SECRET_KEY)$|^(?:AUTH0_|NEXTAUTH_|AUTH_)?SECRET$"
                r"|^(?:FLASK_|DJANGO_)?SECRET_KEY$"), SESSION_KEY),
    (re.compile(r"CLIENT_?ID$|CLIENT_?ID_"), "{client_id}"),
    (re.compile(r"^(?:AUTH0|APP)_BASE_URL$"), APP_URL),  # @auth0/nextjs-auth0 v3: the app's own URL
    (re.compile(r"ISSUER|^(?:RF_|REQUEST_?FINANCE_)?(?:O?AUTH0?|OIDC)_(?:BASE_)?(?:URL|URI|SERVER(?:_URL)?)$"),
     "{issuer}"),
    (re.compile(r"AUTH0?_DOMAIN$|^(?:RF|REQUEST_?FINANCE)_DOMAIN$"), AUTH_DOMAIN),
    (re.compile(r"REDIRECT|CALLBACK"), "{redirect_uri}"),
    (re.compile(r"AUDIENCE"), "{audience}"),
    (re.compile(r"NETWORK"), "{network}"),
    (re.compile(r"API_?(?:BASE_?)?(?:URL|URI|HOST|ENDPOINT|BASE)$"), "{api_url}"),
    (re.compile(r"^(?:APP_|SERVER_|HTTP_|WEB_)?PORT$"), "{port}"),
    (re.compile(r"^(?:APP_|PUBLIC_|NEXTAUTH_|SITE_)?(?:BASE_)?URL$"), APP_URL),
)
# the placeholders a kind of target needs in its environment, with the RF_* name used when the project names none
DEFAULT_NAMES = {"{issuer}": "RF_ISSUER", "{api_url}": "RF_API_URL", "{client_id}": "RF_CLIENT_ID",
                  "{client_secret}": "RF_CLIENT_SECRET", "{redirect_uri}": "RF_REDIRECT_URI",
                  "{network}": "RF_NETWORK", "{port}": "PORT"}
NEEDED = {"web": ("{issuer}", "{api_url}", "{client_id}", "{client_secret}", "{redirect_uri}", "{network}", "{port}"),
           "command": ("{issuer}", "{api_url}", "{client_id}", "{client_secret}", "{network}")}
MEANING = {"{issuer}": "the mock authorization server's base URL (no trailing slash)",
            "{api_url}": "the mock API's base URL", "{client_id}": "a client ID rfcheck issues for this run",
            "{client_secret}": "its client secret, fresh for every run", "{redirect_uri}": "redirect_uri above",
            "{network}": "the run's network (test or live, after --rfcheck-network)",
            "{port}": "the free port rfcheck picked for the app", "{audience}": "the API audience (accounts)",
            APP_URL: "where the app itself listens",
            AUTH_DOMAIN: "the real host name, which [target.intercept] hosts = true sends to the mock",
            SESSION_KEY: "the app's session cookie key: a random value rfcheck init made for runs under rfcheck, "
                         "not a Request Finance credential (production keeps its own in a secret manager)"}
# the environment variables an SDK reads itself (its configuration defaults): needed even when the app's
# sources never name them. The SDKs derive the redirect URI from their base URL.
SDK_ENV: dict[str, tuple[tuple[str, str], ...]] = {
    "express-openid-connect": (("ISSUER_BASE_URL", "{issuer}"), ("BASE_URL", APP_URL), ("CLIENT_ID", "{client_id}"),
                               ("CLIENT_SECRET", "{client_secret}"), ("SECRET", SESSION_KEY)),
    "@auth0/nextjs-auth0 v3": (("AUTH0_ISSUER_BASE_URL", "{issuer}"), ("AUTH0_BASE_URL", APP_URL),
                               ("AUTH0_CLIENT_ID", "{client_id}"), ("AUTH0_CLIENT_SECRET", "{client_secret}"),
                               ("AUTH0_SECRET", SESSION_KEY)),
    "@auth0/nextjs-auth0 v4": (("AUTH0_DOMAIN", AUTH_DOMAIN), ("AUTH0_CLIENT_ID", "{client_id}"),
                               ("AUTH0_CLIENT_SECRET", "{client_secret}"), ("AUTH0_SECRET", SESSION_KEY),
                               ("APP_BASE_URL", APP_URL)),
}
# a name read through an environment accessor may be one word (ISSUER, SECRET); a bare string needs an underscore
ENV_NAME = re.compile(r"(?:process\.env\.|import\.meta\.env\.|\benv\.|environ\.get\(\s*['\"]|environ\[\s*['\"]|"
                       r"getenv\(\s*['\"]|Getenv\(\s*\"|env\[\s*['\"])([A-Z][A-Z0-9_]{2,})\b"
                       r"|['\"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")
# a hard-coded host: a string literal in code that starts with the URL, or a config file's value
# (a mention in a comment or a docstring, e.g. "RF_ISSUER (https://auth.request.finance)", is not one)
HOST_IN_CODE = re.compile(r"[\"'`](https://(?:auth|api)\.request\.finance)\b")
HOST_IN_CONFIG = re.compile(r"[=:]\s*[\"']?(https://(?:auth|api)\.request\.finance)\b")
@dataclass
class EnvLine:
    name: str
    value: str
    note: str
    active: bool = True


@dataclass
class Guess:
    """The config rfcheck init writes, with the reasons it gives in the comments."""

    name: str
    runtime: str  # node | python | jvm | go
    kind: str
    kind_why: str
    flow: str
    found: list[str] = field(default_factory=list)
    tls: bool = False
    tls_why: str = "the mock serves plain http on loopback, which this app's client accepts"
    start: str = ""  # web: start; command: run
    start_why: str = ""
    factory: str | None = None
    factory_why: str = ""
    redirect_path: str = "/callback"
    login_path: str = "/login"
    actions: list[str] = field(default_factory=lambda: ["/"])
    ready_timeout: int = 30
    step_timeout: int = 10
    env: list[EnvLine] = field(default_factory=list)
    env_source: str = ""
    hits: list[str] = field(default_factory=list)  # "file:line https://auth.request.finance"
    domain_env: bool = False  # an *_DOMAIN variable is set to the real host name: needs hosts = true
    client_ids: dict[str, str] = field(default_factory=dict)  # client_id_test/live -> the variable naming it
    sdk: str = ""  # an SDK that reads its own environment variables (a key of SDK_ENV)
    rule_env: list[EnvLine] = field(default_factory=list)  # what the app's OAuth client library needs to run

    @property
    def hosts(self) -> bool:
        return bool(self.hits) or self.domain_env
