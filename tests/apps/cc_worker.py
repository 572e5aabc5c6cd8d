"""A tiny client credentials worker for rfcheck's own tests: ``once`` or ``serve``.

``python cc_worker.py once``: one unit of work (token, then GET /invoices), exit 0 on success.
``python cc_worker.py failing``: the same unit, then exit 1 (a job that always reports failure).
``python cc_worker.py serve``: listens on ``PORT``; ``GET /work`` does a unit, ``/hang`` never
answers in time, ``/fail`` answers 500.
"""

from __future__ import annotations

import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

PID = os.getpid()


def unit() -> int:
    """One unit of API work; returns how many invoices it saw."""
    token = requests.post(f"{os.environ['RF_ISSUER']}/oauth/token", timeout=5, data={
        "grant_type": "client_credentials", "audience": os.environ["RF_AUDIENCE"],
        "client_id": os.environ["RF_CLIENT_ID"], "client_secret": os.environ["RF_CLIENT_SECRET"]})
    token.raise_for_status()
    invoices = requests.get(f"{os.environ['RF_API_URL']}/invoices", timeout=5, headers={
        "Authorization": f"Bearer {token.json()['access_token']}", "X-Network": "test"})
    invoices.raise_for_status()
    return len(invoices.json())


class Worker(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/hang":
            threading.Event().wait(10)  # not time.sleep: see tests/apps/web_app.py
        status, text = (500, "broken") if self.path == "/fail" else (200, f"{unit()} invoices")
        print(f"pid={PID} {self.path}: {text}", flush=True)
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


if __name__ == "__main__":
    if sys.argv[1:] == ["once"]:
        print(f"pid={PID} synced {unit()} invoices", flush=True)
    elif sys.argv[1:] == ["failing"]:
        print(f"pid={PID} saw {unit()} invoices, then the export failed", flush=True)
        sys.exit(1)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Worker)
        server.daemon_threads = True
        server.serve_forever()
