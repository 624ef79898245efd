"""The package's imports run one way (docs/architecture.md): a test so the house stays that way.

Each top-level package of mammogan has a rank; a module may import its own package or packages of a
lower rank, never a peer of the same rank or anything above. The module graph (function-local imports
included) must have no cycle, and a mammogan import inside a function is allowed only in the CLI,
which keeps TensorFlow out of the config commands.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mammogan"
RANKS = {
    "errors": 0, "catalog": 1, "registry": 2, "core": 3, "config": 4,
    "data": 5, "prepare": 6, "augment": 7,
    "models": 8, "losses": 8,
    "metrics": 9,
    "visual": 10,
    "train": 11, "evaluate": 11, "infer": 11,
    "families": 12,
    "cli": 13, "__main__": 14,
}
LAZY_IMPORTS_ALLOWED = {"mammogan.cli"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported mammogan module, inside a function) for every import statement of one file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for sub in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                targets = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # `from . import x` imports the submodules x
                    targets = [f"{targets[0]}.{alias.name}" for alias in node.names]
            else:
                targets = [node.module or ""]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        found.extend((target, id(node) in in_function) for target in targets if target.split(".")[0] == "mammogan")
    return found


def _graph() -> dict[str, list[tuple[str, bool]]]:
    return {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mammogan"


def _existing(module: str, modules: set[str]) -> str:
    """`mammogan.a.b.name` → the deepest prefix that is a module (a `from a.b import name` of a function)."""
    while module not in modules and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


def test_every_package_has_a_rank():
    packages = {_top(module) for module in _graph()} - {"mammogan"}
    assert packages <= set(RANKS), f"add {sorted(packages - set(RANKS))} to RANKS and docs/architecture.md"


def _layer_violations(graph: dict[str, list[tuple[str, bool]]]) -> list[str]:
    wrong = []
    for module, imports in graph.items():
        source = _top(module)
        for target, _ in imports:
            destination = _top(target)
            if destination in (source, "mammogan") or source == "mammogan":
                continue
            if RANKS[destination] >= RANKS[source]:
                wrong.append(f"{module} imports {target} ({source} rank {RANKS[source]} → {destination} rank {RANKS[destination]})")
    return wrong


def test_imports_run_down_the_layers():
    wrong = _layer_violations(_graph())
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_function_local_imports_outside_the_cli():
    local = [f"{module} imports {target} inside a function" for module, imports in _graph().items()
             if module not in LAZY_IMPORTS_ALLOWED for target, inside in imports if inside]
    assert not local, "\n".join(local)


def test_module_graph_has_no_cycle():
    graph = _graph()
    modules = set(graph)
    edges = defaultdict(set)
    for module, imports in graph.items():
        for target, _ in imports:
            target = _existing(target, modules)
            if target != module and target in modules and not module.startswith(target + "."):
                edges[module].add(target)
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checks_find_what_they_look_for():
    """The rules above are only worth something if the parser finds imports and the layer check flags one."""
    imports = dict(_imports(PACKAGE / "families" / "srgan.py"))
    assert imports.get("mammogan.train.steps") is False and imports.get("mammogan.evaluate.sr") is False
    assert any(inside for _, inside in _imports(PACKAGE / "cli.py"))
    upward = {"mammogan.data.images": [("mammogan.families.srgan", False)],
              "mammogan.train.trainer": [("mammogan.evaluate.sr", False), ("mammogan.data.images", False)]}
    assert _layer_violations(upward) == [
        "mammogan.data.images imports mammogan.families.srgan (data rank 5 → families rank 12)",
        "mammogan.train.trainer imports mammogan.evaluate.sr (train rank 11 → evaluate rank 11)"]
