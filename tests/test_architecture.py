"""The shape of the package, from its own imports: data flows one way (target -> mock -> journal ->
checks -> report), no module imports another that imports it back (directly or around a circle,
through ``TYPE_CHECKING`` blocks, imports inside functions and imports by name such as
``importlib.import_module(f"rfcheck.commands.{name}")`` included), and the checks read only the journal
and the run's frozen view."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rfcheck"
# what a check may not see: the mock, the engine that runs scenarios, the targets and the pytest glue
NOT_FOR_CHECKS = ("rfcheck.provider", "rfcheck.scenarios", "rfcheck.harness", "rfcheck.lanes", "rfcheck.steps",
                  "rfcheck.world", "rfcheck.targets", "rfcheck.runtime", "rfcheck.transport", "rfcheck.plugin",
                  "rfcheck.run", "rfcheck.explore", "rfcheck.testing")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "_scenarios" in parts or parts[:3] == ("rfcheck", "runtime", "python"):
            continue  # the suites and the code rfcheck puts into a target's interpreter are not the package's
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _named(node: ast.AST, module: str, is_package: bool, known: dict[str, Path]) -> Iterator[str]:
    """The rfcheck modules ``node`` imports."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".")[: None if is_package else -1]
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr in ("import_module", "import_plugin") and node.args):
        argument = node.args[0]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            yield argument.value
        elif isinstance(argument, ast.JoinedStr):  # f"rfcheck.commands.{name}": every module under the prefix
            prefix = "".join(str(v.value) for v in argument.values if isinstance(v, ast.Constant))
            yield from (name for name in known if name.startswith(prefix) and len(name) > len(prefix))


def imports() -> dict[str, set[str]]:
    known = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _named(node, module, path.name == "__init__.py", known):
                while name and name not in known:
                    name = name.rpartition(".")[0]
                if name.startswith("rfcheck") and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_finder_sees_a_circle_through_each_kind_of_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    tree = ast.parse("if TYPE_CHECKING:\n    from rfcheck.harness import Harness\n"
                     "def f():\n    import rfcheck.plugin\n    importlib.import_module(f'rfcheck.commands.{x}')\n")
    known = _modules()
    named = {n for node in ast.walk(tree) for n in _named(node, "rfcheck.x", False, known)}
    assert {"rfcheck.harness.Harness", "rfcheck.plugin", "rfcheck.commands.serve"} <= named


def test_no_module_imports_one_that_imports_it_back() -> None:
    found = circles(imports())
    assert found == [], "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_package_imports_one_that_imports_it_back() -> None:
    """The same over packages (rfcheck.targets, rfcheck.runtime, ...): the drivers use the runtime's
    instrumentation, which never reaches back into a driver."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for module, targets in imports().items():
        graph.setdefault(package(module), set()).update(package(t) for t in targets if package(t) != package(module))
    found = circles(graph)
    assert found == [], "package circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_checks_read_only_the_journal_and_the_run_s_view() -> None:
    graph = imports()
    seen = {(module, target) for module, targets in graph.items() if module.startswith("rfcheck.checks")
            for target in targets if target.startswith(NOT_FOR_CHECKS)}
    assert seen == set(), sorted(seen)


def test_the_mock_never_imports_pytest_nor_the_engine() -> None:
    for module, path in _modules().items():
        if not module.startswith("rfcheck.provider"):
            continue
        text = path.read_text(encoding="utf-8")
        assert "import pytest" not in text, module
        assert not any(t.startswith(("rfcheck.scenarios", "rfcheck.harness", "rfcheck.checks", "rfcheck.targets"))
                       for t in imports()[module]), module
