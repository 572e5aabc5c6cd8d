"""rfcheck's instrumentation of a Python target process, loaded as ``sitecustomize``.

rfcheck puts this file's folder first on the target's ``PYTHONPATH``. Outside an rfcheck run
(no ``RFCHECK_CONTROL`` in the environment) it does nothing but hand over to the app's own
``sitecustomize``. Under rfcheck, before any of the app's code runs, the process:

1. leaves libfaketime behind (it breaks ``time.sleep`` on Python 3.11+): when the dynamic
   loader preloaded it, the interpreter starts again at once without it, same pid, same
   arguments; its children still get it back through the environment;
2. connects to rfcheck's control socket, says hello, and follows rfcheck's clock: a travel is
   elapsed time for the app. The wall clock it reads (``time.time``/``time_ns``,
   ``datetime.now``/``utcnow``/``today``, ``time.gmtime``/``localtime``/``strftime``) is moved with
   time-machine by the offset rfcheck announces, and the monotonic clocks (``time.monotonic``,
   ``monotonic_ns``, ``perf_counter``, ``perf_counter_ns``: PyJWT's JWKS cool-down, asyncio's
   timers) move forward with it; sleeping, timed waits and in-flight I/O stay real. Every move is
   acknowledged with the wall clock the process then reads. A forked child (gunicorn workers)
   reconnects and catches up before the fork returns; a gunicorn worker beats its heartbeat after
   each move, as it would have done all through the time that passed;
3. with ``RFCHECK_HOSTS``: answers name resolution for Request Finance's real hosts with the
   mock's loopback address and port, refuses (and reports) other remote names, and makes
   certifi's bundle the run's, for clients that pin it;
4. with ``RFCHECK_PORTS`` (``3000=23456``): a lane's fixed-port app binds the lane's port 23456
   when it asks for 3000 and is told 3000 when it asks where it listens (``getsockname``); a
   connection to a loopback address on port 3000 (the app calling itself) reaches 23456.

Written for every Python 3 the target may run, with the standard library only (time-machine
comes from the app's environment or rfcheck's).
"""

import os
import sys


def _rfcheck_main():
    control = os.environ.get("RFCHECK_CONTROL")
    if not control:
        return
    _leave_libfaketime()
    import json
    import socket
    import threading

    import time

    state = {"offset": 0.0, "traveller": None, "socket": None, "clock": "", "lock": threading.Lock(),
             "ahead": 0.0}

    def send(message):
        sock = state["socket"]
        if sock is None:
            return
        data = (json.dumps(message) + "\n").encode()
        with state["lock"]:
            try:
                sock.sendall(data)
            except OSError:
                pass

    def connect(parent):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect(control)
        except OSError:
            sock.close()
            return None
        state["socket"] = sock
        send({"hello": {"runtime": "python", "version": "%d.%d.%d" % sys.version_info[:3], "pid": os.getpid(),
                        "executable": sys.executable, "clock": state["clock"], "parent": parent,
                        "hosts": "resolver" if os.environ.get("RFCHECK_HOSTS") else "",
                        "ports": "sitecustomize" if os.environ.get("RFCHECK_PORTS") else ""}})
        return sock

    def follow(sock, reader):
        """Apply each offset rfcheck announces, then acknowledge it (the travel handshake)."""
        try:
            for line in reader:
                message = json.loads(line)
                if "offset" in message:
                    move_to(float(message["offset"]))
                    send({"ack": message["generation"], "wall": time.time()})
        except (OSError, ValueError):
            pass

    def move_to(offset):
        traveller = state["traveller"]
        if traveller is not None and offset != state["offset"]:
            delta = offset - state["offset"]
            traveller.shift(delta)
            state["offset"] = offset
            state["ahead"] += max(delta, 0.0)  # a monotonic clock never goes back
            _beat_gunicorn_heartbeat()

    def join(parent):
        """Connect, take the current offset before the app runs on, then follow in a thread."""
        sock = connect(parent)
        if sock is None or not state["clock"] == "time-machine":
            return
        reader = sock.makefile("rb")
        try:
            first = json.loads(reader.readline())
            move_to(float(first["offset"]))
            send({"ack": first["generation"], "wall": time.time()})
        except (OSError, ValueError, KeyError):
            return
        sock.settimeout(None)
        threading.Thread(target=follow, args=(sock, reader), name="rfcheck-clock", daemon=True).start()

    state["traveller"], state["clock"] = _start_time_machine()
    if state["traveller"] is not None:
        _move_monotonic_clocks(state)

    def after_fork():
        inherited = state["socket"]
        state["lock"] = threading.Lock()
        if inherited is not None:
            try:
                inherited.close()  # the parent's connection stays open: only this process's copy goes
            except OSError:
                pass
        state["socket"] = None
        join(os.getppid())

    join(0)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=after_fork)
    hosts = os.environ.get("RFCHECK_HOSTS")
    if hosts:
        _route_hosts(hosts, send)
    ports = os.environ.get("RFCHECK_PORTS")
    if ports:
        _move_ports(ports)


def _move_monotonic_clocks(state):
    """Monotonic clocks read ``state["ahead"]`` seconds ahead of the real ones.

    Patched on the ``time`` module before the app imports anything, so that what it and its
    libraries read (``time.monotonic()``, ``from time import monotonic``) moves; the standard
    library's own timed waits captured the real functions earlier and stay real.
    """
    import time

    def ahead(real, scale, whole):
        if whole:
            return lambda: real() + int(state["ahead"] * scale)
        return lambda: real() + state["ahead"]

    for name, scale, whole in (("monotonic", 1, False), ("perf_counter", 1, False),
                               ("monotonic_ns", 1e9, True), ("perf_counter_ns", 1e9, True)):
        real = getattr(time, name, None)
        if real is not None:
            moved = ahead(real, scale, whole)
            moved.__name__ = moved.__qualname__ = name
            setattr(time, name, moved)


def _beat_gunicorn_heartbeat():
    """A gunicorn worker touches its heartbeat file after a move: its arbiter compares that file with a
    monotonic clock that moved too, and would otherwise kill a worker that was never idle."""
    if "gunicorn.workers.workertmp" not in sys.modules:
        return
    import gc

    for thing in gc.get_objects():
        if type(thing).__name__ == "WorkerTmp" and type(thing).__module__ == "gunicorn.workers.workertmp":
            try:
                thing.notify()
            except Exception:  # the worker is going away: nothing to keep alive
                pass


def _leave_libfaketime():
    """Start the interpreter again without libfaketime, if the dynamic loader preloaded it."""
    stashed = os.environ.pop("RFCHECK_FAKETIME_PRELOAD", "")
    if stashed:  # this is the restarted interpreter: the processes it starts get libfaketime back
        os.environ["LD_PRELOAD"] = " ".join(p for p in (stashed, os.environ.get("LD_PRELOAD", "")) if p)
        return
    preload = os.environ.get("LD_PRELOAD", "").split()
    faketime = [p for p in preload if "faketime" in p]
    if not faketime or not os.path.basename(sys.executable or "").startswith("python"):
        return
    try:
        with open("/proc/self/maps") as maps:
            if "libfaketime" not in maps.read():
                return
    except OSError:
        return
    env = dict(os.environ)
    env["RFCHECK_FAKETIME_PRELOAD"] = " ".join(faketime)
    kept = [p for p in preload if p not in faketime]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    else:
        del env["LD_PRELOAD"]
    argv = getattr(sys, "orig_argv", None) or [sys.executable] + sys.argv
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def _start_time_machine():
    """Patch the wall clocks with time-machine, ticking from now; returns (traveller, status)."""
    blocked = [name for name in ("pytest", "dateutil") if name not in sys.modules]
    for name in blocked:  # time-machine imports these when present; the app does not need them
        sys.modules[name] = None
    extra = os.environ.get("RFCHECK_TIME_MACHINE_PATH", "")
    try:
        try:
            import time_machine
        except ImportError:
            if not extra:
                raise
            sys.path.append(extra)
            try:
                import time_machine
            finally:
                sys.path.remove(extra)
        import time
        traveller = time_machine.travel(time.time(), tick=True).start()
        time.time()  # the tick starts now
        return traveller, "time-machine"
    except Exception as err:  # any failure is reported to rfcheck, never hidden
        return None, "time-machine could not load on Python %d.%d (%s: %s); install time-machine in the " \
                     "app's environment" % (sys.version_info[0], sys.version_info[1], type(err).__name__, err)
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def _route_hosts(spec, send):
    """Resolve Request Finance's hosts to the mock; refuse other remote names."""
    import ipaddress
    import socket

    routes = {}
    for entry in spec.split(","):
        name, _, where = entry.partition("=")
        host, _, port = name.rpartition(":")
        address, _, target_port = where.rpartition(":")
        if host and port.isdigit() and target_port.isdigit():
            routes[(host.lower(), int(port))] = (address, int(target_port))
    intercepted = {host for host, _ in routes}
    local = {"localhost", socket.gethostname().lower()}
    try:
        with open("/etc/hosts") as hosts_file:
            for line in hosts_file:
                local.update(word.lower() for word in line.split("#")[0].split()[1:])
    except OSError:
        pass
    real_getaddrinfo = socket.getaddrinfo
    services = {"https": 443, "http": 80}

    def remote(name):
        if name in local or name.endswith(".localhost"):
            return False
        try:
            ipaddress.ip_address(name.split("%")[0])
            return False
        except ValueError:
            return True

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode("idna") if isinstance(host, bytes) else host
        if name:
            name = name.lower().rstrip(".")
            number = services.get(port, port) if isinstance(port, str) and not port.isdigit() else int(port or 0)
            if name in intercepted:
                route = routes.get((name, number))
                if route is not None:
                    return real_getaddrinfo(route[0], route[1], family, type, proto, flags)
            if name in intercepted or remote(name):
                send({"refused": {"host": name, "port": number if isinstance(number, int) else 0,
                                  "via": "resolver"}})
                raise socket.gaierror(socket.EAI_NONAME, "rfcheck: %s is not reachable while Request Finance "
                                                         "is mocked (only its hosts are)" % name)
        return real_getaddrinfo(host, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo
    bundle = os.environ.get("RFCHECK_CA_BUNDLE")
    if bundle:
        try:
            import certifi
            import certifi.core
        except ImportError:
            return
        certifi.where = certifi.core.where = lambda: bundle


def _move_ports(spec):
    """The lane's place for a fixed-port app: bind, connect and the addresses a socket reports, mapped."""
    import socket

    moved = {}
    for entry in spec.split(","):
        asked, _, lane = entry.partition("=")
        if asked.isdigit() and lane.isdigit():
            moved[int(asked)] = int(lane)
    if not moved:
        return
    said = dict((lane, asked) for asked, lane in moved.items())
    loopback = {"localhost", "::1", "ip6-localhost"}

    def local(host):
        name = host.decode() if isinstance(host, bytes) else str(host)
        return name.lower() in loopback or name.startswith("127.")

    def listening(address):
        if isinstance(address, tuple) and len(address) >= 2 and address[1] in moved:
            return (address[0], moved[address[1]]) + tuple(address[2:])
        return address

    def reaching(address):
        if isinstance(address, tuple) and len(address) >= 2 and address[1] in moved and local(address[0]):
            return (address[0], moved[address[1]]) + tuple(address[2:])
        return address

    def reported(address):
        if isinstance(address, tuple) and len(address) >= 2 and address[1] in said:
            return (address[0], said[address[1]]) + tuple(address[2:])
        return address

    cls = socket.socket
    real = {name: getattr(cls, name) for name in ("bind", "connect", "connect_ex", "getsockname", "getpeername")}

    def bind(self, address):
        return real["bind"](self, listening(address) if self.family in (socket.AF_INET, socket.AF_INET6) else address)

    def connect(self, address):
        return real["connect"](self, reaching(address) if self.family in (socket.AF_INET, socket.AF_INET6) else address)

    def connect_ex(self, address):
        return real["connect_ex"](self, reaching(address) if self.family in (socket.AF_INET, socket.AF_INET6)
                                  else address)

    def getsockname(self):
        return reported(real["getsockname"](self))

    def getpeername(self):
        return reported(real["getpeername"](self))

    for function in (bind, connect, connect_ex, getsockname, getpeername):
        setattr(cls, function.__name__, function)


def _chain():
    """Run the app's own ``sitecustomize``, the next one on the path after this folder."""
    here = os.path.dirname(os.path.abspath(__file__))
    import importlib.machinery
    import importlib.util

    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


try:
    _rfcheck_main()
except Exception as _err:  # the app must start even if rfcheck's instrumentation cannot
    sys.stderr.write("rfcheck instrumentation failed to load: %s: %s\n" % (type(_err).__name__, _err))
_chain()
