"""What rfcheck does to a target's runtime so that an unchanged app can be judged.

For a target that runs as a process (``web``, ``command``), :class:`Instrumentation` prepares
one run's environment additions:

- the clock: Python processes follow rfcheck's clock through rfcheck's ``sitecustomize``
  (time-machine for the wall clock, the monotonic clocks moved with it, a handshake on every
  travel, see :mod:`rfcheck.runtime.control`); every other dynamically linked process through
  libfaketime (:mod:`rfcheck.runtime.faketime`), which Node confirms on every travel through
  ``preload.cjs``; programs that libfaketime cannot reach (Go) are recognised and named;
- with ``[target.intercept] hosts = true``, Request Finance's real hosts: Python resolves them
  to the mock (``sitecustomize``), Node connects to the mock (``preload.cjs``, always loaded
  through ``NODE_OPTIONS``), the JVM goes through the proxy (``JAVA_TOOL_OPTIONS``) with a truststore
  holding the run's CA, anything else through ``HTTPS_PROXY``;
- a fixed port the app listens on (``[target.web] url`` without ``{port}``): Node (``preload.cjs``) and
  Python (``sitecustomize``) listen on the lane's port instead (``RFCHECK_PORTS``), so scenarios run
  side by side; :func:`port_mover` says which start commands rfcheck can move so.

A :class:`Survey` then says, for each scenario, which processes the target ran and what
reached each of them: the scenario's notes say it, and a process whose clock rfcheck could
not move makes the travel say so (the target is never silently judged on its real clock).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rfcheck import leftovers
from rfcheck.provider.clock import Clock
from rfcheck.runtime.control import TRAVEL_TIMEOUT, ControlServer, Hello, Refusal
from rfcheck.runtime.faketime import UNAVAILABLE, FakeTime, find_library, unreachable
from rfcheck.runtime.procfs import group_pids

HERE = Path(__file__).parent
SITECUSTOMIZE_DIR = HERE / "python"
NODE_PRELOAD = HERE / "node" / "preload.cjs"
TRUSTSTORE_PASSWORD = "rfcheck"
MAPPING_GRACE = 0.05  # seconds to look again at a process whose preloaded libraries are not mapped yet
# processes that start the app rather than run it: never judged for their clock
LAUNCHERS = frozenset({"sh", "bash", "dash", "zsh", "ash", "busybox", "env", "timeout", "tini", "dumb-init",
                       "nohup", "setsid", "make", "faketime", "stdbuf", "xargs", "sleep"})


def _time_machine_path() -> str:
    """The folder rfcheck's own time-machine is installed in, for targets whose environment lacks it."""
    try:
        import time_machine
    except ImportError:
        return ""
    return str(Path(time_machine.__file__).resolve().parent.parent)


@dataclass(frozen=True)
class HostRoutes:
    """Hosts mode: where the real hosts' connections go, the proxy for the rest, and the run's CA."""

    routes: dict[str, tuple[str, int]]  # "auth.request.finance:443" -> ("127.0.0.1", 40123)
    proxy_url: str
    ca_file: str


class Instrumentation:
    """One run's instrumentation of process targets (see the module's docstring)."""

    def __init__(self, clock: Clock, on_refused: Refusal, hosts: HostRoutes | None = None,
                 ports: Mapping[int, int] | None = None) -> None:
        self.folder = Path(leftovers.folder("runtime"))
        self.hosts = hosts
        self.ports = dict(ports or {})  # a fixed port the app asks for -> the lane's port it listens on instead
        self.control = ControlServer(self.folder, clock.offset, on_refused)
        self.notes: list[str] = []  # run-level notes (each once)
        self.late: list[Hello] = []  # processes that did not confirm a travel in time
        library = find_library()
        self.faketime = FakeTime(clock, library) if library else None
        self._unsubscribe = clock.subscribe(self._travel)
        self._env = self._build_environment()

    def _travel(self, offset: float) -> None:
        self.late.extend(self.control.travel(offset))

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- the environment -----------------------------------------------------------------------
    def environment(self, env: dict[str, str], command: str = "") -> dict[str, str]:
        """``env`` (the target's environment so far) with the instrumentation added, for ``command``."""
        merged = dict(env)
        instrumented = dict(self._env)
        for name, value in instrumented.items():
            if name in ("PYTHONPATH",):
                merged[name] = os.pathsep.join(p for p in (value, env.get(name, "")) if p)
            elif name in ("NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "LD_PRELOAD"):
                merged[name] = " ".join(p for p in (value, env.get(name, "")) if p)
            else:
                merged[name] = value
        return merged

    def _build_environment(self) -> dict[str, str]:
        env = {"PYTHONPATH": str(SITECUSTOMIZE_DIR), "RFCHECK_CONTROL": self.control.path,
               "RFCHECK_TIME_MACHINE_PATH": _time_machine_path()}
        if self.faketime is not None:
            env.update(self.faketime.environment())
        # quoted: the path may hold spaces
        env["NODE_OPTIONS"] = f"--require \"{NODE_PRELOAD}\""
        if self.ports:
            env["RFCHECK_PORTS"] = ",".join(f"{asked}={lane}" for asked, lane in sorted(self.ports.items()))
        if self.hosts is None:
            return env
        routes = ",".join(f"{name}={host}:{port}" for name, (host, port) in self.hosts.routes.items())
        bundle = self._trust_bundle(self.hosts.ca_file)
        proxy = self.hosts.proxy_url
        env.update(RFCHECK_HOSTS=routes, RFCHECK_CA_BUNDLE=bundle, SSL_CERT_FILE=bundle, REQUESTS_CA_BUNDLE=bundle,
                   CURL_CA_BUNDLE=bundle, NODE_EXTRA_CA_CERTS=self.hosts.ca_file,
                   HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy,
                   NO_PROXY="localhost,127.0.0.1,::1", no_proxy="localhost,127.0.0.1,::1")
        java = self._java_options(proxy, self.hosts.ca_file)
        if java:
            env["JAVA_TOOL_OPTIONS"] = java
        return env

    def _trust_bundle(self, ca_file: str) -> str:
        """The run's CA after certifi's roots: what Python clients that pin a bundle get instead."""
        bundle = self.folder / "ca-bundle.pem"
        roots = ""
        try:
            import certifi

            roots = Path(certifi.where()).read_text()
        except (ImportError, OSError):
            pass
        bundle.write_text(roots + "\n" + Path(ca_file).read_text())
        return str(bundle)

    def _java_options(self, proxy_url: str, ca_file: str) -> str:
        """Proxy properties and a PKCS12 truststore with the run's CA, made with the JDK's keytool."""
        store, problem = _truststore(ca_file)
        if problem:
            self._note(problem)
        if store is None:
            return ""
        host, _, port = proxy_url.removeprefix("http://").rpartition(":")
        return " ".join([
            *(f"-D{scheme}.proxyHost={host} -D{scheme}.proxyPort={port}" for scheme in ("http", "https")),
            "-Dhttp.nonProxyHosts=localhost|127.*|[::1]", f"-Djavax.net.ssl.trustStore={store}",
            "-Djavax.net.ssl.trustStoreType=PKCS12", f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}"])

    def survey(self) -> "Survey":
        """A new survey of one scenario's processes, counting the hellos from now on."""
        return Survey(self, self.control.mark(), len(self.late))

    def close(self) -> None:
        self._unsubscribe()
        self.control.close()
        if self.faketime is not None:
            self.faketime.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_stores: dict[str, tuple[Path | None, str]] = {}  # the run's CA file -> its truststore (or None) and any problem
_stores_lock = threading.Lock()


def _truststore(ca_file: str) -> tuple[Path | None, str]:
    """The PKCS12 truststore holding the run's CA, made once per CA with the JDK's keytool (a JVM start: about
    300 ms, which every lane paid once made its own), beside the CA file, which goes with the run's CA folder."""
    with _stores_lock:
        store = _stores.get(ca_file, (None, "?"))[0]
        if ca_file not in _stores or (store is not None and not store.exists()):
            _stores[ca_file] = _make_truststore(ca_file)
        return _stores[ca_file]


def _make_truststore(ca_file: str) -> tuple[Path | None, str]:
    keytool = shutil.which("keytool")
    if keytool is None:
        return None, ""
    store = Path(ca_file).with_name("truststore.p12")
    store.unlink(missing_ok=True)
    made = subprocess.run(
        [keytool, "-importcert", "-noprompt", "-alias", "rfcheck-run-ca", "-file", ca_file, "-keystore", str(store),
         "-storetype", "PKCS12", "-storepass", TRUSTSTORE_PASSWORD], capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        return None, f"keytool could not make a truststore for JVM targets: {made.stderr.strip()[:200]}"
    return store, ""


# the programs whose listening port rfcheck moves (RFCHECK_PORTS): Node.js through its preload, Python through
# its sitecustomize, and the launchers that run them
NODE_PROGRAMS = frozenset({"node", "nodejs", "npm", "npx", "yarn", "pnpm", "tsx", "ts-node", "nodemon"})
_PASS_THROUGH = frozenset({"env", "exec", "nohup", "setsid", "stdbuf", "timeout", "nice", "time", "command"})


def port_mover(command: str, cwd: Path) -> tuple[str, str]:
    """Which runtime rfcheck moves the listening port of ``command`` (a start command run in ``cwd``) with:
    ``("node" | "python", "")``, or ``("", why not)``. Only a program that is Node.js or Python, or a script
    whose ``#!`` line runs one, is moved: anything else (a JVM, a Go binary, a shell script) binds where it
    was told, which only one scenario at a time can have."""
    try:
        words = shlex.split(command)
    except ValueError:
        return "", f"rfcheck could not read the start command {command!r}"
    words = [w for w in words if not (("=" in w and not w.startswith("-")) or w in _PASS_THROUGH)]
    if not words:
        return "", f"rfcheck could not tell which program {command!r} runs"
    program = words[0]
    runtime = _runtime_of(program, cwd)
    if runtime == "python":
        for word in words[1:]:
            if not word.startswith("-") or word == "-m":
                break
            if not word.startswith("--") and set(word[1:]) & set("ISE"):
                return "", f"{program} {word} skips rfcheck's sitecustomize, which moves its listening port"
    if runtime:
        return runtime, ""
    if starts_a_jvm(command):
        return "", f"{program} starts a JVM, whose listening port rfcheck cannot move"
    return "", (f"{program} is not Node.js or Python (the runtimes whose listening port rfcheck moves), nor a "
                "script that runs one")


def _runtime_of(program: str, cwd: Path) -> str:
    name = Path(program).name
    if name in NODE_PROGRAMS:
        return "node"
    if name.startswith("python") or name in ("gunicorn", "uvicorn", "flask", "hypercorn", "waitress-serve"):
        return "python" if name.startswith("python") else _runtime_of_script(program, cwd) or "python"
    return _runtime_of_script(program, cwd)


def _runtime_of_script(program: str, cwd: Path) -> str:
    """The runtime a script's ``#!`` line names ("" for a binary or any other interpreter)."""
    path = Path(program) if "/" in program else None
    if path is not None and not path.is_absolute():
        path = cwd / path
    found = str(path) if path is not None else shutil.which(program)
    if not found:
        return ""
    try:
        with open(found, "rb") as script:
            first = script.readline(256)
    except OSError:
        return ""
    if not first.startswith(b"#!"):
        return ""
    words = first[2:].decode(errors="replace").split()
    if words and Path(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    interpreter = Path(words[0]).name if words else ""
    if interpreter in ("node", "nodejs"):
        return "node"
    if interpreter.startswith("python"):
        return "python"
    return ""


@dataclass
class Seen:
    """One process of the target, as the survey saw it."""

    pid: int
    name: str  # the executable's file name
    libfaketime: bool | None = None  # whether libfaketime is mapped into it (None: not seen in /proc)
    hello: Hello | None = None
    out_of_reach: str = ""  # why libfaketime cannot move its clock although it may be mapped (Go)

    @property
    def runtime(self) -> str:
        if self.hello is not None:
            return self.hello.runtime
        if self.name.startswith("python"):
            return "python"
        return {"node": "node", "nodejs": "node", "java": "jvm"}.get(self.name, self.name)


@dataclass
class Survey:
    """Which processes one scenario's target ran, and how rfcheck reached each of them."""

    instrumentation: Instrumentation
    mark: int
    late_mark: int = 0
    seen: dict[int, Seen] = field(default_factory=dict)

    def observe(self, pgid: int | None) -> None:
        """Look at every process of the group ``pgid`` now (its executable and mapped libraries)."""
        if pgid is not None:
            for pid in group_pids(pgid):
                # a process seen for the first time right after its exec may not have its preloads mapped yet;
                # Python processes leave libfaketime on purpose, and one already seen has been looked at
                settle = self._preloaded and pid not in self.seen
                name, faketime, out_of_reach = _inspect(pid, settle)
                if name and name not in LAUNCHERS:
                    entry = self.seen.setdefault(pid, Seen(pid, name))
                    if faketime is not None:
                        entry.libfaketime = faketime or bool(entry.libfaketime)
                    entry.out_of_reach = entry.out_of_reach or out_of_reach
        self._hellos()

    def _hellos(self) -> None:
        for hello in self.instrumentation.control.hellos_since(self.mark):
            entry = self.seen.setdefault(hello.pid, Seen(hello.pid, Path(hello.executable).name or hello.runtime))
            entry.hello = hello

    @property
    def processes(self) -> list[Seen]:
        self._hellos()
        return sorted(self.seen.values(), key=lambda s: s.pid)

    @property
    def _late(self) -> list[Hello]:
        return self.instrumentation.late[self.late_mark:]

    @property
    def _preloaded(self) -> bool:
        return self.instrumentation.faketime is not None

    @property
    def _mover(self) -> str:
        faketime = self.instrumentation.faketime
        return faketime.library.origin if faketime is not None else ""

    @property
    def clock_moves(self) -> bool:
        """Whether every process of the target follows rfcheck's clock.

        Processes that ended before rfcheck could look at them (a quick ``run``) and never said
        hello count as moved only when libfaketime was preloaded for them.
        """
        return not self.clock_problems()

    def clock_problems(self) -> list[str]:
        processes = self.processes
        if not processes and not self._preloaded:
            return [UNAVAILABLE]
        problems = [f"{p.runtime} ({p.name}): {_clock(p, self._mover)[1]}" for p in processes
                    if not _clock(p, self._mover)[0]]
        problems += [f"{h.runtime} ({Path(h.executable).name}): did not confirm a travel within {TRAVEL_TIMEOUT:g} s"
                     for h in self._late]
        return list(dict.fromkeys(problems))  # the same for every scenario: one run-level note

    def summary(self) -> str:
        """One line for the scenario's notes: each runtime, its pids, and what reached it."""
        if not self.processes:
            clock = f"libfaketime from {self._mover} was preloaded for their clock" if self._preloaded else UNAVAILABLE
            return f"instrumentation: the target's processes ended before rfcheck could look at them; {clock}"
        groups: dict[str, list[int]] = {}
        for process in self.processes:
            clock = _clock(process, self._mover)[1]
            hosts = _hosts(process, self.instrumentation.hosts is not None)
            label = f"{_label(process)}: {clock}" + (f"; {hosts}" if hosts else "")
            groups.setdefault(label, []).append(process.pid)
        parts = [f"{label.split(':', 1)[0]} (pid{'s' if len(pids) > 1 else ''} {', '.join(map(str, pids))}):"
                 f"{label.split(':', 1)[1]}" for label, pids in groups.items()]
        return "instrumentation: " + " | ".join(parts)


class Surveyed:
    """What a process driver says about its target's runtimes, from its scenario's :class:`Survey`."""

    _survey: Survey | None = None

    def _look(self) -> None:
        """Observe the target's processes that run now (each driver knows which they are)."""

    @property
    def can_move_clock(self) -> bool:
        self._look()
        return self._survey is not None and self._survey.clock_moves

    @property
    def clock_note(self) -> str:
        problems = self._survey.clock_problems() if self._survey is not None else []
        return "the target's clock cannot be fully moved: " + "; ".join(problems) if problems else ""

    @property
    def runtime_note(self) -> str:
        return self._survey.summary() if self._survey is not None else ""


def _label(process: Seen) -> str:
    if process.hello is not None and process.hello.version:
        return f"{process.runtime} {process.hello.version}"
    return process.runtime


def _clock(process: Seen, mover: str) -> tuple[bool, str]:
    """Whether the process's clock follows rfcheck's, and how (or why not); ``mover`` names the
    libfaketime preloaded for the run ("" when none could be)."""
    hello = process.hello
    if hello is not None and hello.stuck:
        return False, f"clock NOT moved: {hello.stuck}"
    if process.runtime == "python":
        if hello is None:
            return False, ("clock NOT moved: rfcheck's sitecustomize did not load (python -I, -S or -E, or a "
                           "PYTHONPATH that replaced rfcheck's)")
        if hello.follows_clock:
            return True, "clock moved by time-machine, monotonic clocks with it (rfcheck's sitecustomize)"
        return False, f"clock NOT moved: {hello.clock}"
    if process.out_of_reach:
        return False, f"clock NOT moved: {process.out_of_reach}"
    if hello is not None and hello.follows_clock:
        return True, f"clock moved by libfaketime from {mover}, confirmed by the process"
    if process.libfaketime:
        return True, f"clock moved by libfaketime from {mover}"
    if process.libfaketime is None and mover:  # gone before rfcheck could look at it
        return True, f"clock moved by libfaketime from {mover} (preloaded)"
    if not mover:
        return False, f"clock NOT moved: {UNAVAILABLE}"
    return False, "clock NOT moved: libfaketime did not load in it (a statically linked program?)"


def _hosts(process: Seen, hosts_mode: bool) -> str:
    if not hosts_mode:
        return ""
    if process.hello is not None and process.hello.hosts:
        how = {"resolver": "rfcheck's sitecustomize resolves them", "preload": "rfcheck's preload connects them"}
        return f"Request Finance's hosts: {how.get(process.hello.hosts, process.hello.hosts)}"
    if process.runtime == "jvm":
        return "Request Finance's hosts: JAVA_TOOL_OPTIONS proxy properties and a truststore with the run's CA"
    if process.runtime in ("python", "node"):
        return "Request Finance's hosts: only through HTTPS_PROXY (rfcheck's instrumentation did not load)"
    return f"Request Finance's hosts: only through HTTPS_PROXY ({process.name} is not a runtime rfcheck recognises)"


JVM_LAUNCHERS = frozenset({"java", "mvn", "mvnw", "gradle", "gradlew", "sbt", "kotlin", "lein", "clojure"})


def starts_a_jvm(command: str) -> bool:
    """Whether ``command`` (a shell command: ``java Worker.java``, ``./gradlew run``) starts a JVM."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    words = [w for w in words if "=" not in w or w.startswith("-")]  # leading VAR=value assignments
    return bool(words) and Path(words[0]).name in JVM_LAUNCHERS


def _inspect(pid: int, settle: bool = False) -> tuple[str, bool | None, str]:
    """The process's executable name, whether libfaketime is mapped into it (None: it ended before that
    could be told), and why its clock is out of libfaketime's reach ("" when it is not). ``settle``: look
    again a moment later at a process whose preloads are not mapped yet."""
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "", False, ""
    mapped = _maps_libfaketime(pid)
    if mapped is False and settle and not Path(executable).name.startswith("python"):
        time.sleep(MAPPING_GRACE)
        mapped = _maps_libfaketime(pid)
    return Path(executable).name, mapped, unreachable(f"/proc/{pid}/exe")


def _maps_libfaketime(pid: int) -> bool | None:
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return "libfaketime" in maps.read()
    except OSError:
        return None
