"""Hostile input against the mock's loopback servers and proxy: what comes back, what is recorded,
how a normal client fares beside slow ones, and what the server's memory does.

Four measurements, each printed as ``name value`` lines:

1. ``hostile_*``: N generated hostile requests (default 10,000; the suite's fuzz vocabulary from
   tests/hostile.py: odd methods and targets, NULs, long lines, 150 header fields, bad lengths and
   chunk sizes, unknown codings, HTTP/2.0 request lines, CONNECTs followed by anything but TLS),
   each on its own connection to the auth host, the API host or the proxy. Counted: answers of
   500, answers without a journal record (an accepted CONNECT tunnel's inner requests are the ones
   recorded), connections that got no answer, records whose status is not the answer's, internal
   errors; then whether a normal token request is still answered 200.
2. ``latency_*``: a normal client credentials token request (a new connection each time, as a
   command-line integration makes it), 200 times alone, then 200 times while 100 slow clients
   send their heads a few bytes every 0.2 s and 100 more hold connections without a word.
3. ``memory_*``: the resident memory (``VmRSS``) of an auth host in a process of its own, before
   and after ten 16 MiB bodies (refused with 413 before they are read), ten 1 MiB bodies and forty
   more (accepted; the journal keeps 8 KiB of each value, with its size and digest).
4. ``connections_1000_*``: 1,000 idle connections held at once, and a normal request beside them.

    python3 bench/hostile.py            # the full run (about a minute)
    python3 bench/hostile.py --quick    # 1,000 requests, 20 slow clients
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from rfcheck.facts import CLIENT_CREDENTIALS  # noqa: E402
from rfcheck.provider.accounts import Client  # noqa: E402
from rfcheck.provider.app import Provider  # noqa: E402
from rfcheck.tls import RunCA  # noqa: E402
from rfcheck.transport.proxy import ProxyServer  # noqa: E402
from rfcheck.transport.server import LoopbackServer  # noqa: E402
from tests.hostile import hostile_requests, is_tunnel, statuses  # noqa: E402

BATCH = 500


def say(name: str, value: float | int) -> None:
    print(f"{name} {value:.1f}" if isinstance(value, float) else f"{name} {value}", flush=True)


def address(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split(":")
    return host, int(port.split("/")[0])


def exchange(url: str, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` on a new connection, half-close, read the answer to the end."""
    with socket.create_connection(address(url), timeout=timeout) as conn:
        with _quiet():
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        with _quiet():
            while chunk := conn.recv(65536):
                answer += chunk
    return answer


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except (ConnectionResetError, BrokenPipeError):  # the server closed after refusing: the answer is read
        pass


def token_request(auth: LoopbackServer, client: Client) -> bytes:
    body = b"grant_type=client_credentials&audience=accounts"
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode())
    return (b"POST /oauth/token HTTP/1.1\r\nHost: auth\r\nConnection: close\r\nAuthorization: Basic " + basic
            + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


# -- 1. hostile requests --------------------------------------------------------------------------
def hostile(provider: Provider, servers: dict[str, Any], count: int) -> Counter[str]:
    tally: Counter[str] = Counter()

    def one(request: tuple[bytes, str]) -> None:
        if tally["sent"] >= count:
            return
        data, where = request
        mark = provider.journal.mark()
        tally["sent"] += 1
        try:
            answer = exchange(servers[where].url, data)
        except OSError:
            answer = b""
        recorded = [e.status for e in provider.journal.since(mark)]
        answered = statuses(answer)
        if not answered and not is_tunnel(answer):
            tally["unanswered"] += 1
        if 500 in answered:
            tally["answers_500"] += 1
        if is_tunnel(answer):
            tally["tunnels"] += 1
        if len(recorded) < len(answered):
            tally["unrecorded"] += len(answered) - len(recorded)
            if tally["unrecorded"] <= 5:
                print(f"# {len(recorded)} records for {where}: {data[:160]!r} -> {answer[:80]!r}", flush=True)
        elif recorded != answered:
            tally["record_status_differs"] += 1
        tally["answers"] += len(answered)
        for status in answered:
            tally[f"status_{status}"] += 1

    batch = 0
    while tally["sent"] < count:
        run = seed(batch)(settings(max_examples=BATCH, database=None, phases=[Phase.generate], deadline=None,
                                   suppress_health_check=list(HealthCheck))(given(hostile_requests())(one)))
        before = tally["sent"]
        run()
        batch += 1
        if tally["sent"] == before:
            break
    return tally


# -- 2. latency beside slow clients ------------------------------------------------------------------
def latencies(auth: LoopbackServer, client: Client, count: int) -> list[float]:
    out = []
    request = token_request(auth, client)
    for _ in range(count):
        began = time.perf_counter()
        answer = exchange(auth.url, request)
        out.append((time.perf_counter() - began) * 1000)
        if not answer.startswith(b"HTTP/1.1 200 "):
            raise SystemExit(f"bench failed: the token request was answered {answer[:80]!r}")
    return out


@contextmanager
def slow_clients(url: str, dribbling: int, silent: int) -> Iterator[None]:
    """``dribbling`` clients sending a head a few bytes every 0.2 s, ``silent`` ones saying nothing."""
    head = b"POST /oauth/token HTTP/1.1\r\nHost: auth\r\nUser-Agent: slow\r\n" + b"X-Pad: " + b"p" * 4000
    stop = threading.Event()
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.create_connection(address(url), timeout=5))
                 for _ in range(dribbling + silent)]

        def dribble() -> None:
            sent = 0
            while not stop.is_set() and sent < len(head):
                for sock in socks[:dribbling]:
                    with _quiet():
                        sock.sendall(head[sent:sent + 3])
                sent += 3
                stop.wait(0.2)

        thread = threading.Thread(target=dribble, daemon=True)
        thread.start()
        time.sleep(0.5)
        try:
            yield
        finally:
            stop.set()
            thread.join()


def percentiles(name: str, values: list[float]) -> None:
    ordered = sorted(values)
    say(f"{name}_p50_ms", statistics.median(ordered))
    say(f"{name}_p99_ms", ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))])
    say(f"{name}_max_ms", ordered[-1])


# -- 3. memory, of a server in a process of its own --------------------------------------------------
def serve_auth() -> None:
    """Child mode: the auth host with one client credentials client, until stdin closes."""
    provider = Provider()
    client = provider.register_client(CLIENT_CREDENTIALS, name="bench")
    auth = LoopbackServer(provider, "auth")
    print(json.dumps({"url": auth.start(), "id": client.client_id, "secret": client.client_secret}), flush=True)
    sys.stdin.read()
    auth.stop()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def large_bodies(url: str, client_id: str, secret: str, size: int, times: int) -> Counter[str]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode())
    prefix = b"grant_type=client_credentials&audience=accounts&pad="
    body = prefix + b"x" * (size - len(prefix))
    head = (b"POST /oauth/token HTTP/1.1\r\nHost: auth\r\nConnection: close\r\nAuthorization: Basic " + basic
            + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n")
    statuses: Counter[str] = Counter()
    for _ in range(times):
        answer = exchange(url, head + body, timeout=30)
        statuses[answer.split(b" ", 2)[1].decode() if answer else "none"] += 1
    return statuses


def memory() -> None:
    child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-auth"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        started = json.loads(child.stdout.readline())
        url, client_id, secret = started["url"], started["id"], started["secret"]
        before = rss_mib(child.pid)
        refused = large_bodies(url, client_id, secret, 16 * 1024 * 1024, 10)
        after_refused = rss_mib(child.pid)
        accepted = large_bodies(url, client_id, secret, 1024 * 1024, 10)
        after_accepted = rss_mib(child.pid)
        accepted_more = large_bodies(url, client_id, secret, 1024 * 1024, 40)
        after_more = rss_mib(child.pid)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)
    print(f"# server process: 16 MiB bodies answered {dict(refused)}, 1 MiB bodies answered "
          f"{dict(accepted + accepted_more)}")
    say("memory_server_before_mib", before)
    say("memory_growth_ten_16mib_bodies_mib", after_refused - before)
    say("memory_growth_ten_1mib_bodies_mib", after_accepted - after_refused)
    say("memory_growth_forty_more_1mib_bodies_mib", after_more - after_accepted)


# -- 4. many idle connections -------------------------------------------------------------------------
def idle_connections(auth: LoopbackServer, client: Client, count: int) -> float:
    with ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(socket.create_connection(address(auth.url), timeout=5))
        began = time.perf_counter()
        answer = exchange(auth.url, token_request(auth, client))
        took = (time.perf_counter() - began) * 1000
    if not answer.startswith(b"HTTP/1.1 200 "):
        raise SystemExit(f"bench failed: beside {count} idle connections the answer was {answer[:80]!r}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--slow", type=int, default=100, help="slow clients of each kind (default 100)")
    parser.add_argument("--quick", action="store_true", help="1,000 requests, 20 slow clients, fewer repeats")
    parser.add_argument("--serve-auth", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_auth:
        serve_auth()
        return 0
    count, slow, repeats = (1000, 20, 50) if args.quick else (args.requests, args.slow, 200)
    print(f"# load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores", flush=True)
    provider = Provider()
    client = provider.register_client(CLIENT_CREDENTIALS, name="bench")
    with tempfile.TemporaryDirectory(prefix="rfcheck-bench-") as folder, ExitStack() as stack:
        auth, api = LoopbackServer(provider, "auth"), LoopbackServer(provider, "api")
        proxy = ProxyServer(provider, RunCA(Path(folder)))
        for server in (auth, api, proxy):
            server.start()
            stack.callback(server.stop)
        servers = {"auth": auth, "api": api, "proxy": proxy}

        began = time.monotonic()
        tally = hostile(provider, servers, count)
        say("hostile_seconds", time.monotonic() - began)
        for key in ("sent", "answers", "answers_500", "unrecorded", "unanswered", "record_status_differs", "tunnels"):
            say(f"hostile_{key}", tally[key])
        print("# statuses: " + " ".join(f"{k[7:]}={v}" for k, v in sorted(tally.items()) if k.startswith("status_")))
        say("hostile_internal_errors", len(provider.errors))
        after = exchange(auth.url, token_request(auth, client))
        say("hostile_normal_request_after_status", int(after.split(b" ", 2)[1]) if after else 0)

        alone = latencies(auth, client, repeats)
        percentiles("latency_alone", alone)
        with slow_clients(auth.url, slow, slow):
            beside = latencies(auth, client, repeats)
        percentiles(f"latency_beside_{2 * slow}_slow", beside)
        say("ratio_p50_beside_slow_over_alone", statistics.median(beside) / statistics.median(alone))

        memory()

        say(f"connections_{10 * slow}_idle_normal_request_ms", idle_connections(auth, client, 10 * slow))
    failed = tally["answers_500"] + tally["unrecorded"] + tally["unanswered"] + len(provider.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
