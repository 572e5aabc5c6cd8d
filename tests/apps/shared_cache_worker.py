"""A client credentials worker for rfcheck's own tests that caches its token in ONE file shared by every
instance (``CACHE_FILE``, outside rfcheck's {state_dir}), as workers with a cache at a fixed path do.

One unit of work per run: the cached token while it is younger than 23 h by the worker's clock, else a
new one; after a 401, one new token and one retry. Standard library only.
"""

import fcntl
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ISSUER, API, NETWORK = os.environ["RF_ISSUER"], os.environ["RF_API_URL"], os.environ.get("RF_NETWORK", "test")
CLIENT_ID, SECRET, CACHE = os.environ["RF_CLIENT_ID"], os.environ["RF_CLIENT_SECRET"], os.environ["CACHE_FILE"]


def new_token():
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "audience": "accounts",
                                   "client_id": CLIENT_ID, "client_secret": SECRET}).encode()
    with urllib.request.urlopen(urllib.request.Request(ISSUER + "/oauth/token", data=form), timeout=10) as answer:
        tokens = json.load(answer)
    return {"access_token": tokens["access_token"], "expires_at": time.time() + tokens["expires_in"] - 3600}


def call(token):
    request = urllib.request.Request(API + "/invoices", headers={"Authorization": "Bearer " + token,
                                                                 "X-Network": NETWORK})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


with open(CACHE, "a+") as cache:
    fcntl.flock(cache, fcntl.LOCK_EX)
    cache.seek(0)
    try:
        cached = json.loads(cache.read() or "{}")
    except ValueError:
        cached = {}
    if not cached or cached.get("expires_at", 0) <= time.time():
        cached = new_token()
    status = call(cached["access_token"])
    if status == 401:
        cached = new_token()
        status = call(cached["access_token"])
    cache.seek(0)
    cache.truncate()
    cache.write(json.dumps(cached))
print("listed invoices" if status == 200 else f"the API answered {status}", flush=True)
sys.exit(0 if status == 200 else 1)
