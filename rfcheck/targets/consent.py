"""rfcheck's simulated user agent at the mock's authorization page.

It follows the authorization URL the target produced, lets the scenario's user
consent, and returns where the browser would go next: the callback URL.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode

import httpx

from rfcheck.provider.app import Provider
from rfcheck.targets.base import StepFailed

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
_ACTION = re.compile(r'action="([^"]*)"')


def consent(provider: Provider, authorization_url: str, origin: str = "browser") -> str:
    """Visit ``authorization_url`` as the user; return the callback URL the browser is sent to."""
    try:
        url = httpx.URL(authorization_url)
    except (httpx.InvalidURL, TypeError) as err:
        raise StepFailed(f"start_login() returned {authorization_url!r}, which is not a URL: {err}",
                         kind="bad_authorization_url") from err
    site = provider.site_for(url)
    if site is None or site.kind != "auth" or url.path.rstrip("/") != "/authorize":
        raise StepFailed(f"start_login() returned {short_url(authorization_url)}, not the /authorize endpoint "
                         "of the Request Finance authorization server", kind="bad_authorization_url")
    response = provider.handle(httpx.Request("GET", url), origin=origin, site=site)
    if response.status_code in (302, 303) and "location" in response.headers:
        return response.headers["location"]
    if response.status_code == 200 and "<form" in response.text:
        return _form_post_as_url(response.text)
    raise StepFailed(f"the authorization server showed the user an error ({response.status_code}): "
                     f"{_page_text(response.text)}")


def _form_post_as_url(page: str) -> str:
    """A ``form_post`` answer (OAuth 2.0 Form Post Response Mode) as the equivalent callback URL."""
    action = _ACTION.search(page)
    fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(page)}
    if action is None:
        raise StepFailed("the form_post answer has no action URL")
    return f"{html.unescape(action.group(1))}?{urlencode(fields)}"


def _page_text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip()[:300]


def short_url(url: str) -> str:
    """A URL as a message shows it: whole when short, else its first 117 characters."""
    return url if len(url) < 120 else url[:117] + "..."
