"""Fixed-port apps run side by side: each lane gives the app the port it asked for in a place of its own.

An app written for ``http://localhost:3000`` (Request Finance's own Express demo is) listens on the lane's
port instead when it asks for 3000: Node through rfcheck's preload, Python through rfcheck's sitecustomize.
rfcheck's browser opens ``localhost:3000`` and reaches the lane's port; the app, its redirect URI and its
logs still say 3000. A start command whose listening port rfcheck cannot move (a JVM, a Go binary, a shell
script) keeps its scenarios one at a time, with the reason.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rfcheck.config import load_config
from rfcheck.lanes import Lane, fixed_port, free_port, serial_reason
from rfcheck.provider.app import Provider
from rfcheck.provider.clock import Clock
from rfcheck.runtime import Instrumentation, port_mover
from rfcheck.targets.deadline import Deadlines, client, client_tls

ROOT = Path(__file__).resolve().parents[1]
EXPRESS = ROOT / "examples" / "node" / "express-app"
NODE = shutil.which("node")
needs_express = pytest.mark.skipif(
    NODE is None or not (EXPRESS / "node_modules").is_dir(),
    reason="the Express example's packages are not installed (npm ci in examples/node/express-app)")


def fixed_port_express(folder: Path, port: int = 3000) -> Path:
    """A copy of examples/node/express-app written for a fixed port, as Request Finance's demo is: its url and
    redirect URI name the port, and the app listens on its default, 3000 (no PORT in its environment)."""
    for source in EXPRESS.iterdir():
        if source.suffix in (".js", ".json") and source.name != "package-lock.json":
            shutil.copy(source, folder / source.name)
    (folder / "node_modules").symlink_to(EXPRESS / "node_modules")
    config = (EXPRESS / "rfcheck.toml").read_text()
    config = config.replace('redirect_uri = "http://localhost:{port}/callback"',
                            f'redirect_uri = "http://localhost:{port}/callback"')
    config = config.replace('url = "http://localhost:{port}"', f'url = "http://localhost:{port}"')
    config = "\n".join(line for line in config.splitlines() if not line.startswith("PORT = "))
    assert "{port}" not in config
    (folder / "rfcheck.toml").write_text(config + "\n")
    return folder / "rfcheck.toml"


def _web_config(folder: Path, start: str, url: str = "http://localhost:3000") -> Path:
    (folder / "rfcheck.toml").write_text(
        '[target]\nkind = "web"\nredirect_uri = "http://localhost:3000/callback"\n'
        f'[target.web]\nstart = "{start}"\nurl = "{url}"\n')
    return folder / "rfcheck.toml"


# -- which apps rfcheck can move ------------------------------------------------------------------------
@pytest.mark.parametrize(("command", "runtime"), [
    ("node server.js", "node"), ("npm start", "node"), ("PORT=3000 node app.js", "node"),
    ("env DEBUG=1 exec node dist/index.js", "node"), ("python3 app.py", "python"),
    ("python3 -u -m flask run", "python"), ("gunicorn app:app", "python")])
def test_node_and_python_start_commands_get_a_port_of_their_own(command: str, runtime: str) -> None:
    assert port_mover(command, ROOT) == (runtime, "")


@pytest.mark.parametrize(("command", "why"), [
    ("python3 -I app.py", "python3 -I skips rfcheck's sitecustomize"),
    ("java -jar app.jar", "starts a JVM"),
    ("./gradlew run", "starts a JVM"),
    ("bin/go_web", "bin/go_web is not Node.js or Python")])
def test_other_start_commands_cannot_be_moved_and_say_why(command: str, why: str) -> None:
    runtime, reason = port_mover(command, ROOT / "examples" / "go_web")
    assert runtime == "" and why in reason


def test_a_script_runs_what_its_first_line_names(tmp_path: Path) -> None:
    (tmp_path / "serve").write_text("#!/usr/bin/env node\nrequire('./app')\n")
    (tmp_path / "serve.py").write_text("#!/usr/bin/python3 -u\nimport app\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\nexec java -jar app.jar\n")
    assert port_mover("./serve", tmp_path) == ("node", "")
    assert port_mover("./serve.py --port 3000", tmp_path) == ("python", "")
    assert port_mover("./run.sh", tmp_path)[0] == ""


def test_a_fixed_port_node_app_runs_side_by_side(tmp_path: Path) -> None:
    config = load_config(_web_config(tmp_path, "node server.js"))
    assert serial_reason(config) == "" and fixed_port(config) == 3000


def test_a_fixed_port_jvm_app_keeps_running_one_scenario_at_a_time_with_the_reason(tmp_path: Path) -> None:
    config = load_config(_web_config(tmp_path, "java -jar app.jar"))
    reason = serial_reason(config)
    assert reason.startswith("scenarios ran one at a time: [target.web] url 'http://localhost:3000' has a fixed port")
    assert "starts a JVM, whose listening port rfcheck cannot move" in reason and "{port}" in reason
    assert fixed_port(config) is None


def test_an_app_on_port_placeholder_is_not_moved(tmp_path: Path) -> None:
    config = load_config(_web_config(tmp_path, "node server.js", "http://localhost:{port}"))
    assert serial_reason(config) == "" and fixed_port(config) is None


def test_each_lane_moves_the_fixed_port_to_its_own(tmp_path: Path) -> None:
    config = load_config(_web_config(tmp_path, "node server.js"))
    idle = Provider(clock=Clock())
    lanes = [Lane(i, config, idle, None, None) for i in range(2)]
    try:
        first = lanes[0].start()
        lanes[1].start(first)
        ports = [lane.ports for lane in lanes]
        assert [list(p) for p in ports] == [[3000], [3000]] and ports[0][3000] != ports[1][3000]
        assert all(lane.ports[3000] == int(lane.values["port"]) for lane in lanes)
        # the registered redirect URI is the one the app sends: it says 3000 on every lane
        assert [lane.client.redirect_uris for lane in lanes if lane.client] == [("http://localhost:3000/callback",)] * 2
        env = lanes[1].instrumentation().environment({})
        assert env["RFCHECK_PORTS"] == f"3000={ports[1][3000]}"
        assert lanes[1].instrumentation().ports == ports[1]
        assert any("has a fixed port: each scenario's app listens on a port of its own" in n for n in lanes[0].notes)
    finally:
        for lane in lanes:
            lane.stop()


# -- the browser follows the lane's ports ------------------------------------------------------------------
class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"host": self.headers["Host"], "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_the_browser_reaches_the_lanes_port_and_still_says_the_fixed_one(echo: int) -> None:
    deadlines = Deadlines({3000: echo})
    with client(deadlines, client_tls(), trust_env=False) as browser:
        answer = browser.get("http://localhost:3000/callback?code=x")
    assert answer.json() == {"host": "localhost:3000", "path": "/callback?code=x"}
    assert deadlines.address("example.com", 3000) == ("example.com", 3000)  # only loopback names are the app's
    assert deadlines.address("127.0.0.1", 3001) == ("127.0.0.1", 3001)


# -- the runtimes move the app's port ---------------------------------------------------------------------
@pytest.fixture
def moved() -> Iterator[tuple[Instrumentation, int]]:
    lane_port = free_port()
    instrumentation = Instrumentation(Clock(), lambda host, port, via: None, ports={3000: lane_port})
    yield instrumentation, lane_port
    instrumentation.close()


PYTHON_APP = """
import http.client, http.server, socket, sys, threading
server = http.server.HTTPServer(("127.0.0.1", 3000), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("listening on", server.server_address[1], flush=True)
own = http.client.HTTPConnection("localhost", 3000, timeout=5)   # the app calling itself
own.request("GET", "/")
print("own call", own.getresponse().status, flush=True)
sys.stdin.readline()
"""

NODE_APP = """
const http = require('node:http')
const server = http.createServer((req, res) => res.end('ok ' + req.headers.host)).listen(3000, '127.0.0.1', () => {
  console.log('listening on', server.address().port)
  http.get('http://localhost:3000/', (res) => {
    console.log('own call', res.statusCode)
  })
})
process.stdin.on('data', () => process.exit(0))
"""


def _serves_on(lane_port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{lane_port}/", headers={"Host": "localhost:3000"}, timeout=5).text


def _run_app(argv: list[str], env: dict[str, str], lane_port: int) -> tuple[list[str], str]:
    app = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env, cwd=ROOT)
    try:
        assert app.stdout is not None and app.stdin is not None
        lines = [app.stdout.readline().strip(), app.stdout.readline().strip()]
        answer = _serves_on(lane_port)
        app.stdin.write("\n")
        app.stdin.flush()
        app.wait(timeout=10)
        return lines, answer
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


def test_a_python_app_asking_for_3000_listens_on_the_lanes_port(moved: tuple[Instrumentation, int]) -> None:
    instrumentation, lane_port = moved
    env = instrumentation.environment({**os.environ})
    lines, answer = _run_app([sys.executable, "-c", PYTHON_APP], env, lane_port)
    assert lines == ["listening on 3000", "own call 200"]  # its own view, and its logs, say 3000
    assert "Directory listing" in answer  # and the lane's port is where it answers


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_a_node_app_asking_for_3000_listens_on_the_lanes_port(moved: tuple[Instrumentation, int]) -> None:
    instrumentation, lane_port = moved
    env = instrumentation.environment({**os.environ})
    assert NODE is not None
    lines, answer = _run_app([NODE, "-e", NODE_APP], env, lane_port)
    assert lines == ["listening on 3000", "own call 200"]
    assert answer == "ok localhost:3000"


# -- a whole run ---------------------------------------------------------------------------------------
@needs_express
def test_a_fixed_port_express_app_is_judged_side_by_side(tmp_path: Path) -> None:
    config = fixed_port_express(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rfcheck", f"--rfcheck-target={config}",
         f"--rfcheck-report={tmp_path / 'report'}", "--rfcheck-jobs=4"],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "rfcheck-report.json").read_text())
    assert report["verdict"] == "ready"
    assert not any(n.startswith("scenarios ran one at a time") for n in report["notes"])
    assert any("url http://localhost:3000 has a fixed port: each scenario's app listens on a port of its own" in n
               for n in report["notes"])
    baseline = next(s for s in report["scenarios"] if s["name"] == "baseline")
    assert "[app] listening on 127.0.0.1:3000" in baseline["output"]  # what the app logs: its own port
    callback = next(e for e in baseline["exchanges"] if e["path"] == "/callback")
    assert callback["status"] < 400  # the mock sent the browser to localhost:3000, and the app answered there
