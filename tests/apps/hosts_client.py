"""A command target that hard-codes Request Finance's real hosts and reaches them with three
Python clients (urllib, requests, httpx), then tries a host that is not Request Finance's.
It prints one line per attempt; exit status 0 when Request Finance answered every client."""

import json
import sys
import urllib.request

import httpx
import requests

DISCOVERY = "https://auth.request.finance/.well-known/openid-configuration"
failed = False
for name, fetch in (("urllib", lambda: json.load(urllib.request.urlopen(DISCOVERY, timeout=5))["issuer"]),
                    ("requests", lambda: requests.get(DISCOVERY, timeout=5).json()["issuer"]),
                    ("httpx", lambda: httpx.get(DISCOVERY, timeout=5).json()["issuer"])):
    try:
        print(name, fetch(), flush=True)
    except Exception as err:
        failed = True
        print(name, "failed:", type(err).__name__, err, flush=True)
try:
    urllib.request.urlopen("https://telemetry.example.com/collect", timeout=5)
    print("foreign host reached", flush=True)
except Exception as err:
    print("foreign host refused:", type(err).__name__, flush=True)
sys.exit(1 if failed else 0)
