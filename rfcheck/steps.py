"""Scenarios as data: the step vocabulary, scenario files, and the runner that interprets them.

A scenario file is TOML, named after the scenario (``scenarios/expiry.toml`` is ``expiry``)::

    description = "Work, then travel past the 24 h lifetime and work again."
    flows = ["authorization_code", "client_credentials"]   # optional: both by default
    steps = [
      "login",
      "units 2",
      "travel 24h2m",
      "units 3",
    ]

Steps, in the words of the runner:

``login [LABEL]``
    The user logs in (authorization code flow; nothing to do for client credentials). When a
    login fails, the scenario ends there: its remaining steps need a logged-in user.
``start_login``
    The target starts a login that the user never completes.
``units N [parallel]``
    N units of work, one after the other, or all at once from N threads.
``travel DURATION [active]``
    Move rfcheck's clock (and the target's) forward: seconds (``86520``) or ``1d``, ``24h2m``,
    ``1h1m``, ``90s``. With ``active`` the user stays active across it, as real users are across
    the expiry of their token: a unit of work every 4 h of it (labelled ``active unit N``), the
    last one 4 h before the travel ends (the client credentials flow has no user: one travel).
``fault NAME [ARGUMENTS]``
    Switch a named fault of the mock on from now on (see :data:`FAULTS`).
``forge_callback [without_state]``
    An attacker obtains an authorization code for the target's client (no PKCE); with
    ``without_state`` the forged callback carries no ``state`` at all.
``deliver_forged_callback``
    The user's browser is sent to the last forged callback.

A wrong step is an error naming the file, the line and what was expected.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rfcheck.config import ConfigError, TargetConfig
from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from rfcheck.provider.named_faults import FAULTS, FaultArgumentError
from rfcheck.scenarios import ScenarioRun, ScenarioSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FLOWS = (AUTHORIZATION_CODE, CLIENT_CREDENTIALS)
NAME = re.compile(r"[a-z][a-z0-9_]*$")
FILE_KEYS = ("description", "flows", "steps")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_UNITS = 64
MAX_TRAVEL = 366 * 86_400


class ScenarioFileError(ValueError):
    """A scenario file rfcheck cannot run; the message names the file, the line and what was expected."""


@dataclass(frozen=True)
class Step:
    """One step of a scenario file: its words, and where it was written."""

    text: str
    line: int
    kind: str
    args: tuple[str, ...]


def _number(low: float, high: float) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            number = int(value)
        except ValueError:
            return f"{value!r} is not an integer"
        return "" if low <= number <= high else f"{value} is not between {low:g} and {high:g}"

    return check


# -- parsing --------------------------------------------------------------------------------------
def duration(text: str) -> int | None:
    """``86520``, ``1d``, ``24h2m``, ``90s``: seconds, or None when it is not a duration."""
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or match is None:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _problem(step: Step) -> str:
    """What is wrong with ``step`` ("" when nothing is)."""
    kind, args = step.kind, step.args
    if kind == "login":
        return ""
    if kind in ("start_login", "deliver_forged_callback"):
        return f"takes no argument, not {' '.join(args)!r}" if args else ""
    if kind == "units":
        if not args or len(args) > 2 or (len(args) == 2 and args[1] != "parallel"):
            return "expected a number of units, optionally followed by 'parallel', e.g. 'units 3' or 'units 6 parallel'"
        return _number(1, MAX_UNITS)(args[0])
    if kind == "travel":
        seconds = duration(args[0]) if len(args) in (1, 2) and args[1:] in ((), ("active",)) else None
        if seconds is None:
            return "expected one duration, in seconds or like 1d, 24h2m, 1h1m, 90s, optionally followed by 'active'"
        return "" if 0 < seconds <= MAX_TRAVEL else f"travels between 1 s and {MAX_TRAVEL // 86_400} days"
    if kind == "fault":
        if not args or args[0] not in FAULTS:
            return f"expected a named fault: {', '.join(sorted(FAULTS))}"
        fault = FAULTS[args[0]]
        try:
            fault.from_words(args[1:])
        except FaultArgumentError as err:
            return f"fault {fault.name} {err} (usage: fault {fault.name} {fault.usage})".replace("  ", " ")
        return ""
    if kind == "forge_callback":
        return "" if args in ((), ("without_state",)) else "takes nothing or 'without_state'"
    return f"unknown step {kind!r}; steps are: {', '.join(STEP_KINDS)}"


STEP_KINDS = ("login", "start_login", "units", "travel", "fault", "forge_callback", "deliver_forged_callback")


def parse_steps(texts: list[Any], where: Path, source: str = "") -> tuple[Step, ...]:
    """The steps of a scenario file, each checked; line numbers come from the file's text."""
    lines = source.splitlines()
    cursor, steps = 0, list[Step]()
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ScenarioFileError(f"{where}: steps[{index}] must be a non-empty string, not {text!r}")
        cursor, line = _line_of(lines, text, cursor)
        words = text.split()
        step = Step(text, line, words[0], tuple(words[1:]))
        problem = _problem(step)
        if problem:
            raise ScenarioFileError(f"{where}, line {line}: step {text!r}: {problem}")
        if step.kind == "deliver_forged_callback" and not any(s.kind == "forge_callback" for s in steps):
            raise ScenarioFileError(f"{where}, line {line}: step {text!r}: no forge_callback step comes before it")
        steps.append(step)
    if not steps:
        raise ScenarioFileError(f"{where}: steps is empty: a scenario needs at least one step")
    return tuple(steps)


def _line_of(lines: list[str], text: str, start: int) -> tuple[int, int]:
    """The line (1-based) holding the string ``text`` at or after line index ``start``."""
    for number in range(start, len(lines)):
        if f'"{text}"' in lines[number] or f"'{text}'" in lines[number]:
            return number + 1, number + 1
    return start, start + 1 if lines else 0


MAX_SCENARIO_BYTES = 1024 * 1024  # a scenario file is a few hundred bytes; refused unread beyond this


def load_file(path: Path) -> ScenarioSpec:
    """The scenario in ``path``; raises :class:`ScenarioFileError` naming the file (and line)."""
    name = path.stem
    if not NAME.match(name):
        raise ScenarioFileError(f"{path}: the file name {path.name!r} must be a scenario name "
                                "(lower case letters, digits and _, starting with a letter)")
    try:
        size = path.stat().st_size
        if size > MAX_SCENARIO_BYTES:
            raise ScenarioFileError(f"{path}: {size:,} bytes, more than a scenario file may have "
                                    f"({MAX_SCENARIO_BYTES:,}); it was not read")
        source = path.read_text(encoding="utf-8")
        data = tomllib.loads(source)
    except OSError as err:
        raise ScenarioFileError(f"{path}: cannot read it: {err.strerror or err}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ScenarioFileError(f"{path}: not valid TOML: {err}") from err
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ScenarioFileError(f"{path}: unknown key {unknown[0]!r}; a scenario file has {', '.join(FILE_KEYS)}")
    description = data.get("description", "")
    if not isinstance(description, str) or not description.strip():
        raise ScenarioFileError(f"{path}: description must be a non-empty string saying what the scenario does")
    flows = data.get("flows", list(FLOWS))
    if not isinstance(flows, list) or not flows or any(flow not in FLOWS for flow in flows):
        raise ScenarioFileError(f"{path}: flows must be a non-empty list of {' and '.join(FLOWS)}, not {flows!r}")
    texts = data.get("steps")
    if not isinstance(texts, list):
        raise ScenarioFileError(f"{path}: steps must be a list of strings, e.g. steps = [\"login\", \"units 3\"]")
    steps = parse_steps(texts, path, source)
    return ScenarioSpec(name, run_steps(steps), frozenset(flows), " ".join(description.split()), steps, str(path))


def load_folder(folder: Path) -> dict[str, ScenarioSpec]:
    return {spec.name: spec for spec in (load_file(path) for path in sorted(folder.glob("*.toml")))}


# -- the runner -----------------------------------------------------------------------------------
def run_steps(steps: tuple[Step, ...]) -> Callable[[ScenarioRun], None]:
    """The scenario function that takes ``steps`` against one freshly started target."""

    def run(scenario: ScenarioRun) -> None:
        forged = None
        for step in steps:
            if step.kind == "login":
                if not scenario.login(" ".join(step.args) or None):
                    return  # what follows needs a logged-in user
            elif step.kind == "start_login":
                scenario.start_login_only()
            elif step.kind == "units":
                scenario.units(int(step.args[0]), parallel=step.args[1:] == ("parallel",))
            elif step.kind == "travel" and step.args[1:] == ("active",):
                scenario.travel_active(float(duration(step.args[0]) or 0))
            elif step.kind == "travel":
                scenario.travel(float(duration(step.args[0]) or 0))
            elif step.kind == "fault":
                fault, values = FAULTS[step.args[0]], FAULTS[step.args[0]].from_words(step.args[1:])
                scenario.fault(fault.label(values),
                               lambda: fault.apply(scenario.provider, scenario.harness.client_id, values))
            elif step.kind == "forge_callback":
                forged = scenario.forge_callback(with_state=step.args != ("without_state",))
            elif step.kind == "deliver_forged_callback" and forged is not None:
                scenario.deliver_callback(forged.callback_url, "forged callback")

    return run


def step_reference() -> str:
    """The step vocabulary and the named faults, as the README and ``--help`` show them."""
    faults = "\n".join(f"  fault {f.name} {f.usage}".rstrip() + f"\n      {f.description}" for f in FAULTS.values())
    return (__doc__ or "").split("Steps, in the words of the runner:")[1].split("A wrong step")[0].strip() + \
        "\n\nNamed faults:\n" + faults


def builtin_folder() -> Path:
    """``scenarios/``: at the top of a source checkout, or inside the package of an installed wheel."""
    packaged = Path(__file__).parent / "_scenarios"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "scenarios"


SCENARIOS: dict[str, ScenarioSpec] = load_folder(builtin_folder())  # the built-in scenarios


def own_scenarios(config: TargetConfig) -> dict[str, ScenarioSpec]:
    """The integration's own scenarios (``[target] scenarios``), each file read and checked; a file that is
    wrong, or a name a built-in scenario or another file already has, is a :class:`ConfigError` naming the
    config file and the scenario file (and its line)."""
    def refused(message: str) -> ConfigError:
        return ConfigError(f"{config.file}: [target] scenarios: {message}")

    found: dict[str, ScenarioSpec] = {}
    paths: dict[str, Path] = {}
    for path in config.scenarios:
        try:
            spec = load_file(path)
        except ScenarioFileError as err:
            raise refused(str(err)) from err
        if spec.name in SCENARIOS:
            raise refused(f"{path}: a built-in scenario is already called {spec.name!r}; rename the file")
        if spec.name in found:
            raise refused(f"{path} and {paths[spec.name]} are both scenario {spec.name!r}")
        found[spec.name], paths[spec.name] = spec, path
    return found
