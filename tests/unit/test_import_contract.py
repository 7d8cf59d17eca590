"""The architecture's boundaries, checked on every test run (docs/architecture.md, "Boundaries").

- engine/ reaches the runtime only through runtime.client;
- runtime/ imports neither engine/ nor cli/, and only runtime/client imports runtime.client;
- cli/pyengine imports neither daemon nor pyctr: what the two CLIs share lives in cli/common;
- no import cycle inside engine/ or runtime/; no module over 500 lines.
Imports under `if TYPE_CHECKING:` count: a cycle a type checker needs is still a cycle.
"""
from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "runtime", "cli")
MAX_LINES = 500


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for top in PACKAGES:
        for path in (root / top).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imported(path: Path, name: str, known: dict[str, Path]) -> Iterator[str]:
    """The project modules `name` (at `path`) imports, each resolved to the longest known module name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target:
                yield target


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _forbidden(importer: str, target: str) -> str | None:
    def within(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    if within(importer, "engine") and within(target, "runtime") and not within(target, "runtime.client"):
        return "engine reaches the runtime only through runtime.client"
    if within(importer, "runtime") and (within(target, "engine") or within(target, "cli")):
        return "the runtime imports neither the engine nor the CLIs"
    if within(importer, "runtime") and not within(importer, "runtime.client") and within(target, "runtime.client"):
        return "the runtime never imports its own client"
    if within(importer, "cli.pyengine") and any(within(target, p) for p in ("engine", "runtime", "cli.pyctr")):
        return "cli/pyengine works alone against any Docker API daemon"
    if within(importer, "cli.common") and not within(target, "cli.common"):
        return "cli/common is shared by both CLIs and depends on neither"
    return None


def breaches(root: Path) -> list[str]:
    known = _modules(root)
    out = []
    graph: dict[str, set[str]] = {}
    for name, path in sorted(known.items()):
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            out.append(f"size: {name} has {lines} lines (at most {MAX_LINES})")
        graph[name] = set()
        for target in _imported(path, name, known):
            if target == name:
                continue
            reason = _forbidden(name, target)
            if reason:
                out.append(f"boundary: {name} imports {target}: {reason}")
            if name.split(".")[0] == target.split(".")[0] and name.split(".")[0] in ("engine", "runtime"):
                graph[name].add(target)
    out += [f"cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return out


def test_the_tree_keeps_its_boundaries() -> None:
    assert breaches(ROOT) == []


def _copy(tmp_path: Path) -> Path:
    for top in PACKAGES:
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_an_engine_module_reaching_into_the_runtime_fails(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    victim = root / "engine" / "containers" / "plan.py"
    victim.write_text(victim.read_text() + "\nfrom runtime.tasks import spec\n")
    assert breaches(root) == ["boundary: engine.containers.plan imports runtime.tasks.spec: "
                              "engine reaches the runtime only through runtime.client"]


def test_a_cycle_and_an_oversized_module_fail(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    store = root / "engine" / "containers" / "store.py"
    store.write_text(store.read_text() + "\nif TYPE_CHECKING:\n    from engine.backend import Backend\n"
                     + "\n" * MAX_LINES)
    found = breaches(root)
    assert any(b.startswith("size: engine.containers.store has") for b in found)
    assert any(b.startswith("cycle: ") and "engine.backend" in b and "engine.containers.store" in b for b in found)


def test_the_cli_may_not_import_the_engine(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    victim = root / "cli" / "pyengine" / "images.py"
    victim.write_text(victim.read_text() + "\nfrom engine.humanize import human_size\n")
    assert breaches(root) == ["boundary: cli.pyengine.images imports engine.humanize: "
                              "cli/pyengine works alone against any Docker API daemon"]
