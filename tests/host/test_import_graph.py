"""The host modules import each other without a cycle (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "host_tools"
# vboard/ holds MicroPython modules that run on the virtual board, not host modules.
SKIP = ("nightstand/sim/vboard/",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def host_modules() -> dict[str, Path]:
    mods = {}
    for path in sorted((ROOT / "nightstand").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(SKIP):
            mods[_module_name(path)] = path
    return mods


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the host modules it imports (`from a import b` counts as a.b if b is one)."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            for t in targets:
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*stack[stack.index(n):], n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_scan_sees_the_host_modules_and_their_imports():
    mods = host_modules()
    graph = import_graph(mods)
    assert "nightstand.cli" in mods and "nightstand.store" in mods
    assert "nightstand.store" in graph["nightstand.journal"]
    assert "nightstand.commands" in graph["nightstand.cli"]


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_host_modules():
    cycle = find_cycle(import_graph(host_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_commands_do_not_import_the_parser():
    graph = import_graph(host_modules())
    for mod, deps in graph.items():
        if mod.startswith("nightstand.commands"):
            assert "nightstand.cli" not in deps, mod


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def test_rendering_a_stored_night_does_not_import_the_simulator():
    graph = import_graph(host_modules())
    for start in ("nightstand.report", "nightstand.report.pages", "nightstand.summary",
                  "nightstand.export", "nightstand.commands.report"):
        sim = sorted(m for m in _reachable(graph, start) if m.startswith("nightstand.sim"))
        assert sim == [], f"{start} reaches {sim}"
