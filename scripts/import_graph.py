#!/usr/bin/env python
"""The import graph of affectflow: circles, imports that climb the layers, function-level imports.

Reads ``src/affectflow`` with :mod:`ast` (nothing is imported) and prints

- **circles**: strongly connected groups of modules (module-level and function-level imports together, since both
  run), with one cycle of each as an example;
- **upward imports**: an import from a module of a lower layer to a module of a higher layer (:data:`LAYERS`,
  bottom first), module-level and function-level;
- **function-level imports**: ``import`` / ``from`` statements of affectflow modules inside a function or method
  (they hide dependencies; they are fine for heavy optional dependencies, which are not affectflow modules);
- **private imports**: ``from affectflow.x import _name`` in another module (a ``_name`` is its module's own
  business; share it under a public name instead).

Usage::

    python scripts/import_graph.py [--src src/affectflow] [--verbose] [--json]

``tests/core/test_import_graph.py`` fails when a circle or a private import appears.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

#: The layers, bottom first: a module may import from its own layer and the layers below. The first matching prefix
#: (a top-level module or package of ``affectflow``) decides a module's layer.
LAYERS: list[list[str]] = [
    ["__init__", "errors", "fsutil", "layout", "registry", "procutil", "configs", "progress", "nativelogs"],
    ["config", "metrics", "io", "plots"],
    ["corpus", "synthetic", "raters"],
    ["features", "data", "augment"],
    ["targets", "scoring", "models", "tasks", "predictions", "training"],
    ["runs", "experiment", "runs_table", "tracking"],
    ["procedures", "inference", "streaming", "export", "submit", "serve", "recipes"],
    ["cli", "demo"],
]


def layer_of(module: str) -> int:
    """The layer index of ``affectflow.<...>`` (the first component after ``affectflow``)."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    for i, names in enumerate(LAYERS):
        if head in names:
            return i
    return len(LAYERS)  # unknown modules count as the top


def module_name(root: Path, f: Path) -> str:
    rel = f.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def collect(root: Path) -> tuple[set[str], list[tuple[str, str, bool, int]]]:
    """Modules and edges ``(importer, imported, function_level, line)`` between affectflow modules."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(root, f) for f in files}
    edges = []
    for f in files:
        mod = module_name(root, f)
        tree = ast.parse(f.read_text(encoding="utf-8"))
        is_pkg = f.name == "__init__.py"

        def visit(node: ast.AST, in_func: bool, in_type_checking: bool) -> None:
            for child in ast.iter_child_nodes(node):
                func = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                tc = in_type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
                targets: list[str] = []
                if (isinstance(child, ast.Call) and ast.unparse(child.func) in ("importlib.import_module", "import_module")
                        and child.args and isinstance(child.args[0], ast.Constant)
                        and str(child.args[0].value).startswith("affectflow")):
                    targets = [str(child.args[0].value)]
                elif isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = resolve(mod, is_pkg, child)
                    targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in child.names]
                for t in targets:
                    if not t.startswith("affectflow"):
                        continue
                    while t not in modules and "." in t:
                        t = t.rsplit(".", 1)[0]
                    if t in modules and t != mod and not in_type_checking:
                        edges.append((mod, t, in_func, child.lineno))
                visit(child, func, tc)

        visit(tree, False, False)
    return modules, edges


def private_imports(root: Path) -> list[str]:
    """``from affectflow.<m> import _name`` statements in a module other than ``<m>`` (``importer -> m._name
    (line N)``); dunder names are not private."""
    out = []
    for f in sorted(root.rglob("*.py")):
        mod = module_name(root, f)
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = resolve(mod, f.name == "__init__.py", node)
            if not base.startswith("affectflow") or base == mod:
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    out.append(f"{mod} -> {base}.{a.name} (line {node.lineno})")
    return out


def strongly_connected(nodes: set[str], adj: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); groups of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(adj.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif nxt not in index:
                index[nxt] = low[nxt] = counter[0]
                counter[0] += 1
                stack.append(nxt)
                on.add(nxt)
                work.append((nxt, iter(sorted(adj.get(nxt, ())))))
            elif nxt in on:
                low[v] = min(low[v], index[nxt])
    return out


def one_cycle(comp: list[str], adj: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the first module of ``comp`` (breadth-first inside the group)."""
    start, members = comp[0], set(comp)
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(adj.get(v, ())):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def report(root: Path) -> dict:
    """The numbers (and the lists behind them) of the import graph under ``root``."""
    modules, edges = collect(root)
    adj: dict[str, set[str]] = {}
    for a, b, _, _ in edges:
        adj.setdefault(a, set()).add(b)
    circles = strongly_connected(modules, adj)
    upward = [(a, b, fl, ln) for a, b, fl, ln in edges if layer_of(b) > layer_of(a)]
    func = [(a, b, ln) for a, b, fl, ln in edges if fl]
    return {
        "modules": len(modules),
        "imports": len(edges),
        "circles": [one_cycle(c, adj) for c in circles],
        "circle_groups": circles,
        "upward": [f"{a} -> {b} ({'function' if fl else 'module'}-level, line {ln})" for a, b, fl, ln in upward],
        "function_level": [f"{a} -> {b} (line {ln})" for a, b, ln in func],
        "private": private_imports(root),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src" / "affectflow"))
    ap.add_argument("--verbose", action="store_true", help="list every upward and function-level import")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    r = report(Path(args.src))
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"modules: {r['modules']}, affectflow imports: {r['imports']}")
    print(f"circles: {len(r['circles'])}")
    for c in r["circles"]:
        print("  " + " -> ".join(c))
    print(f"upward imports: {len(r['upward'])}")
    print(f"function-level affectflow imports: {len(r['function_level'])}")
    print(f"private-name imports across modules: {len(r['private'])}")
    for u in r["private"]:
        print("  private: " + u)
    if args.verbose:
        for u in r["upward"]:
            print("  up: " + u)
        for u in r["function_level"]:
            print("  fn: " + u)
    return 0


if __name__ == "__main__":
    sys.exit(main())
