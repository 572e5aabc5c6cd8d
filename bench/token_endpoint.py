"""Benchmark of the token endpoint: rfcheck's loopback auth server against oauth2-mock-server.

Run by hand from the repository root (see bench/README.md):

    (cd bench && npm ci) && python3 bench/token_endpoint.py

Both servers run in child processes of their own (own process groups) on 127.0.0.1 and are
driven by the same load generator with the same flags: autocannon, N keep-alive connections for
T seconds, ``POST /oauth/token`` ``grant_type=client_credentials&audience=accounts`` with
``client_secret_basic``. The output is one ``name value`` line per number.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_BIN = BENCH / "node_modules" / ".bin"
PEER_PACKAGE = BENCH / "node_modules" / "oauth2-mock-server"
BODY = "grant_type=client_credentials&audience=accounts"
MAX_RUN_SECONDS = 10.0
READY_TIMEOUT = 30.0


class BenchError(Exception):
    """Something did not start or answered wrongly: the benchmark's numbers would mean nothing."""


# -- the two servers, each in a child process group -------------------------------------------
@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]
    stderr: IO[str]
    ready: dict[str, Any] = field(default_factory=dict)

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().strip()[-2000:]

    def status(self, field_name: str) -> int | None:
        """A ``/proc/<pid>/status`` field in KiB (``VmHWM`` is the peak resident set size)."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> float:
        """User and system CPU time so far (``/proc/<pid>/stat``), all threads."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _spawn(name: str, argv: list[str], cwd: Path) -> Child:
    # stderr goes to a file: a pipe nobody reads would block a chatty server under load
    stderr = tempfile.TemporaryFile("w+")
    try:
        process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=stderr, text=True, start_new_session=True)
    except OSError as err:
        raise BenchError(f"{name} did not start: {err}") from err
    child = Child(name, process, stderr)
    child.ready = _ready_line(child)
    return child


def _ready_line(child: Child) -> dict[str, Any]:
    """The child's first stdout line (JSON), within READY_TIMEOUT."""
    assert child.process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.process.stdout, selectors.EVENT_READ)
        if not selector.select(READY_TIMEOUT):
            child.stop()
            raise BenchError(f"{child.name} did not report ready within {READY_TIMEOUT:.0f} s: {child.errors()}")
    line = child.process.stdout.readline()
    try:
        return dict(json.loads(line))
    except ValueError:
        child.stop()
        raise BenchError(f"{child.name} did not start: {line.strip()!r} {child.errors()}")


def start_rfcheck(threads: int | None, root: Path = ROOT) -> Child:
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-rfcheck", "--rfcheck-root", str(root)]
    if threads:
        argv += ["--server-threads", str(threads)]
    return _spawn("rfcheck", argv, root)


def start_peer() -> Child:
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not installed")
    return _spawn("oauth2-mock-server", [node, str(BENCH / "peer.mjs")], BENCH)


def serve_rfcheck(threads: int | None, root: Path) -> None:
    """Child mode: rfcheck's auth host on loopback with one client credentials client."""
    sys.path.insert(0, str(root))
    import rfcheck

    if not Path(rfcheck.__file__).resolve().is_relative_to(root.resolve()):
        sys.exit(f"no rfcheck package in {root} (found {rfcheck.__file__})")
    from rfcheck.facts import CLIENT_CREDENTIALS
    from rfcheck.provider.app import Provider
    from rfcheck.transport.server import LoopbackServer

    provider = Provider()
    client = provider.register_client(CLIENT_CREDENTIALS)
    server = LoopbackServer(provider, "auth", threads=threads) if threads else LoopbackServer(provider, "auth")
    url = server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())

    def stop_when_the_parent_leaves() -> None:
        sys.stdin.read()
        stopped.set()

    threading.Thread(target=stop_when_the_parent_leaves, daemon=True).start()
    print(json.dumps({"url": url, "client_id": client.client_id, "client_secret": client.client_secret}),
          flush=True)
    stopped.wait()
    server.stop()
    if provider.errors:
        print(f"rfcheck internal errors: {provider.errors[:3]}", file=sys.stderr)


# -- the request and a first check that each target answers it ----------------------------------
@dataclass(frozen=True)
class Target:
    name: str
    url: str
    authorization: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/x-www-form-urlencoded", "Authorization": self.authorization}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def preflight(target: Target) -> None:
    """One request: a 200 with an RS256 access token, or the numbers would measure an error path."""
    status, body = _post(target)
    if status != 200:
        raise BenchError(f"{target.name} answered {status} to the token request: {body[:300]!r}")
    token = json.loads(body)["access_token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    if header.get("alg") != "RS256":
        raise BenchError(f"{target.name} signed its access token with {header.get('alg')}, not RS256")


def _post(target: Target, connection: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    host, port, path = _split(target.url)
    conn = connection or http.client.HTTPConnection(host, port, timeout=10)
    conn.request("POST", path, body=BODY, headers=target.headers)
    response = conn.getresponse()
    body = response.read()
    if connection is None:
        conn.close()
    return response.status, body


def _split(url: str) -> tuple[str, int, str]:
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port), "/" + path


# -- load generators ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    ok: int
    non2xx: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def autocannon(target: Target, connections: int, seconds: float) -> Result:
    argv = [str(NODE_BIN / "autocannon"), "--json", "--connections", str(connections),
            "--duration", f"{seconds:g}", "--method", "POST", "--body", BODY]
    for name, value in target.headers.items():
        argv += ["--headers", f"{name}={value}"]
    argv.append(target.url)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,
                              start_new_session=True, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BenchError(f"autocannon against {target.name} failed: {err}") from err
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchError(f"autocannon against {target.name} failed: {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(ok=report["2xx"], non2xx=report["non2xx"], errors=report["errors"] + report["timeouts"],
                  seconds=report["duration"], p50_ms=report["latency"]["p50"],
                  p99_ms=report["latency"]["p99"])


def python_load(target: Target, connections: int, seconds: float) -> Result:
    """Fallback when bench/node_modules is absent (--quick only): keep-alive threads, same request."""
    latencies: list[float] = []
    counts = {"ok": 0, "non2xx": 0, "errors": 0}
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds

    def worker() -> None:
        host, port, _ = _split(target.url)
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine: list[float] = []
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status, _ = _post(target, conn)
                outcome = "ok" if 200 <= status < 300 else "non2xx"
            except (OSError, http.client.HTTPException):
                outcome = "errors"
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            mine.append((time.perf_counter() - sent) * 1000)
            with lock:
                counts[outcome] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + 15)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return Result(ok=counts["ok"], non2xx=counts["non2xx"], errors=counts["errors"], seconds=elapsed,
                  p50_ms=_percentile(latencies, 50), p99_ms=_percentile(latencies, 99))


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


# -- the signing ceiling --------------------------------------------------------------------------
def rsa_signs_per_second(threads: int, seconds: float) -> float:
    """RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second (cryptography) on ``threads`` threads."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"x" * 400  # about the size of an access token's signing input
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)

    def sign(i: int) -> None:
        barrier.wait()
        stop = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < stop:
            key.sign(message, padding.PKCS1v15(), hashes.SHA256())
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=sign, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - started)


# -- the run --------------------------------------------------------------------------------------
def emit(name: str, value: float | int | str) -> None:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    print(f"{name} {text}", flush=True)


@dataclass(frozen=True)
class Measured:
    result: Result
    issued: int  # tokens issued in all, preflight and warm-up included
    cpu_cores: float  # the server's CPU time during the measured run over its length


def drive(target: Target, server: Child, loadgen: str, connections: int, seconds: float,
          warmup: float) -> Measured:
    run = autocannon if loadgen == "autocannon" else python_load
    preflight(target)
    warmed = run(target, connections, warmup).ok if warmup else 0
    cpu_before = server.cpu_seconds()
    result = run(target, connections, seconds)
    cores = (server.cpu_seconds() - cpu_before) / result.seconds if result.seconds else 0.0
    return Measured(result, 1 + warmed + result.ok, cores)


def report(prefix: str, measured: Measured) -> None:
    result = measured.result
    emit(f"{prefix}_tokens_per_s", result.per_second)
    emit(f"{prefix}_requests_ok", result.ok)
    emit(f"{prefix}_p50_ms", float(result.p50_ms))
    emit(f"{prefix}_p99_ms", float(result.p99_ms))
    emit(f"{prefix}_non2xx", result.non2xx)
    emit(f"{prefix}_errors", result.errors)
    emit(f"{prefix}_cpu_cores", round(measured.cpu_cores, 2))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.serve_rfcheck:
        serve_rfcheck(args.server_threads, args.rfcheck_root)
        return 0
    have_node_modules = (NODE_BIN / "autocannon").exists() and PEER_PACKAGE.exists()
    if not have_node_modules and not args.quick:
        print("bench/node_modules is missing: run `npm ci` in bench/ (or use --quick)", file=sys.stderr)
        return 2
    children: list[Child] = []
    try:
        return _run(args, have_node_modules, children)
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 1
    finally:
        for child in children:
            child.stop()


def _run(args: argparse.Namespace, have_node_modules: bool, children: list[Child]) -> int:
    seconds = 1.0 if args.quick else min(args.duration, MAX_RUN_SECONDS)
    warmup = 0.0 if args.quick else min(args.warmup, MAX_RUN_SECONDS)
    loadgen = args.loadgen or ("autocannon" if have_node_modules else "python")
    with_peer = have_node_modules and not args.no_peer
    print(f"# connections={args.connections} seconds={seconds:g} warmup={warmup:g} loadgen={loadgen} "
          f"cores={os.cpu_count()} server_threads={args.server_threads or 'default'} rfcheck={args.rfcheck_root} "
          f"load_average={_load_average()}", flush=True)
    # both servers first, so that one failing to start fails the run before anything is measured
    rfcheck = start_rfcheck(args.server_threads, args.rfcheck_root)
    children.append(rfcheck)
    peer = start_peer() if with_peer else None
    if peer is not None:
        children.append(peer)
    print("# server pids: " + " ".join(f"{child.name}={child.process.pid}" for child in children), flush=True)

    for n in (1, 2):  # the ceiling: what the signatures alone would allow
        emit(f"rsa2048_signs_per_s_{n}_thread{'s' if n > 1 else ''}",
             rsa_signs_per_second(n, 0.5 if args.quick else 2.0))

    idle_kib = rfcheck.status("VmRSS") or 0
    emit("rfcheck_idle_rss_mib", idle_kib / 1024)
    target = Target("rfcheck", rfcheck.ready["url"] + "/oauth/token",
                    basic(rfcheck.ready["client_id"], rfcheck.ready["client_secret"]))
    ours = drive(target, rfcheck, loadgen, args.connections, seconds, warmup)
    report("rfcheck", ours)
    peak_kib = rfcheck.status("VmHWM") or 0
    emit("rfcheck_peak_rss_mib", peak_kib / 1024)
    # the mock keeps every exchange and token for the checks: memory grows with each one
    emit("rfcheck_rss_kib_per_token", (peak_kib - idle_kib) / ours.issued)
    failed = _failed(ours.result)

    if peer is None:
        print("# peer skipped: " + ("--no-peer" if args.no_peer else "bench/node_modules is absent"), flush=True)
    else:
        peer_target = Target("oauth2-mock-server", f"http://127.0.0.1:{peer.ready['port']}/oauth/token",
                             basic("bench-client", "bench-secret"))
        theirs = drive(peer_target, peer, loadgen, args.connections, seconds, warmup)
        report("peer", theirs)
        emit("peer_peak_rss_mib", (peer.status("VmHWM") or 0) / 1024)
        failed |= _failed(theirs.result)
        if theirs.result.per_second:
            emit("ratio_rfcheck_over_peer", round(ours.result.per_second / theirs.result.per_second, 3))
    print(f"# load average after the runs: {_load_average()} (other work on the machine skews every number)",
          flush=True)
    if failed:
        print("bench failed: a target answered errors, or nothing, under load", file=sys.stderr)
        return 1
    return 0


def _failed(result: Result) -> bool:
    return not result.ok or bool(result.non2xx or result.errors)


def _load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", "-c", type=int, default=16, help="keep-alive connections (16)")
    parser.add_argument("--duration", "-d", type=float, default=10.0, help="seconds per target, at most 10")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first (1)")
    parser.add_argument("--quick", action="store_true",
                        help="1 s per target, no warm-up; the peer is skipped when bench/node_modules is absent")
    parser.add_argument("--no-peer", action="store_true", help="measure rfcheck only")
    parser.add_argument("--loadgen", choices=("autocannon", "python"),
                        help="default: autocannon when bench/node_modules is installed")
    parser.add_argument("--server-threads", type=int, help="rfcheck's worker thread count (default: rfcheck's)")
    parser.add_argument("--rfcheck-root", type=Path, default=ROOT,
                        help="the checkout whose rfcheck is measured (compare two trees); default: this one")
    parser.add_argument("--serve-rfcheck", action="store_true", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    sys.exit(main())
