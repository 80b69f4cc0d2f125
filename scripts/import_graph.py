#!/usr/bin/env python
"""The import graph of affectflow: circles, imports that climb the layers, function-level imports.

Reads ``src/affectflow`` with :mod:`ast` (nothing is imported) and prints

- **circles**: strongly connected groups of modules (module-level and function-level imports together, since both
  run), with one cycle of each as an example;
- **upward imports**: an import from a module of a lower layer to a module of a higher layer (:data:`LAYERS`,
  bottom first), module-level and function-level;
- **function-level imports**: ``import`` / ``from`` statements of affectflow modules inside a function or method
  (they hide dependencies), each in one of three classes:

  - ``heavy-optional``: the imported module pulls, through its module-level imports, a heavy optional third-party
    package (anything but :data:`CORE_LIGHT`, torch and the standard library: mediapipe, transformers, opensmile,
    neurokit2, ray, optuna, mlflow, onnx, matplotlib, fastapi, cv2, av, ...) that the importing module does not pull
    already; found automatically;
  - ``justified-lazy``: kept inside the function for a stated reason, written as a comment ``# lazy: <reason>`` on
    the import's line or on the line just above it (which covers the run of consecutive imports it heads), e.g.
    ``# lazy: pulls torch, which `affectflow --help` must not``;
  - ``plain``: neither; it belongs at the top of the module (where that makes a circle, move the shared piece down a
    layer).

  ``--verbose`` shows, for each plain one, the heavy packages (torch included) that moving it to the top would add
  to the importing module;
- **function-level imports of other packages**, counted (not enforced) as heavy-optional, torch, or light (the
  standard library and :data:`CORE_LIGHT`: these belong at the top unless a ``# lazy:`` comment says why not);
- **private imports**: ``from affectflow.x import _name`` in another module (a ``_name`` is its module's own
  business; share it under a public name instead).

Usage::

    python scripts/import_graph.py [--src src/affectflow] [--verbose] [--json]

``tests/core/test_import_graph.py`` fails on a circle, a private import, an upward import and a plain function-level
affectflow import. A function-level import is named ``importer:function -> imported`` (the function's qualified
name).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import deque
from pathlib import Path
from typing import NamedTuple

#: The layers, bottom first: a module may import from its own layer and the layers below. The first matching prefix
#: (a top-level module or package of ``affectflow``) decides a module's layer.
LAYERS: list[list[str]] = [
    ["__init__", "errors", "fsutil", "layout", "registry", "procutil", "execution", "configs", "progress",
     "nativelogs"],
    ["metrics", "io", "plots"],
    ["corpus", "synthetic", "raters"],
    ["features", "data", "augment"],
    ["targets", "scoring", "models", "tasks", "predictions", "training"],
    ["config"],
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


#: Third-party packages that count as light: importing them at a module's top is always fine.
CORE_LIGHT = frozenset({"numpy", "pandas", "pyarrow", "scipy", "yaml", "tqdm"})
#: Heavy but not optional: a light module keeping it out is a reason to import lazily, stated in a ``# lazy:`` comment.
CORE_HEAVY = frozenset({"torch"})

LAZY_MARK = "# lazy:"


class Import(NamedTuple):
    """One import statement's edge between two affectflow modules."""

    importer: str
    imported: str
    function_level: bool
    line: int
    function: str  # qualified name of the enclosing function ("" at module level)
    reason: str  # the text after "# lazy:" on the statement's lines or the line above it ("" if none)

    @property
    def key(self) -> str:
        """``importer:function -> imported``: how the allow-lists name a function-level import."""
        return f"{self.importer}:{self.function} -> {self.imported}"


def _own_lazy_reason(lines: list[str], node: ast.stmt) -> tuple[str, bool]:
    """The ``# lazy:`` reason of one statement and whether it came from a comment line of its own above it."""
    for i in range(node.lineno - 1, (node.end_lineno or node.lineno)):
        if LAZY_MARK in lines[i]:
            return lines[i].split(LAZY_MARK, 1)[1].strip(), False
    above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
    if above.startswith(LAZY_MARK):
        return above.split(LAZY_MARK, 1)[1].strip(), True
    return "", False


def lazy_reasons(tree: ast.AST, lines: list[str]) -> dict[int, str]:
    """``id(import statement) -> reason``: the text after ``# lazy:`` on the statement's lines, or on a comment line
    just above it; such a comment line covers the run of import statements it heads (consecutive imports in one
    body)."""
    out: dict[int, str] = {}
    for node in _statements(tree):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if not isinstance(block, list):
                continue
            heading = ""
            for stmt in block:
                if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    heading = ""
                    continue
                own, heads = _own_lazy_reason(lines, stmt)
                if heads:
                    heading = own
                if own or heading:
                    out[id(stmt)] = own or heading
    return out


def parse(root: Path) -> tuple[set[str], list[Import], dict[str, set[str]], list[Import]]:
    """Modules, the imports between affectflow modules, each module's module-level third-party packages (top-level
    names, standard library left out), and the function-level imports of other packages (``imported`` is the
    top-level name; standard library included)."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(root, f) for f in files}
    stdlib = set(sys.stdlib_module_names)
    edges: list[Import] = []
    third: dict[str, set[str]] = {}
    outside: list[Import] = []
    for f in files:
        mod = module_name(root, f)
        text = f.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        reasons = lazy_reasons(tree, lines)
        is_pkg = f.name == "__init__.py"
        third[mod] = set()

        dynamic = "import_module" in text  # expressions need a look only for importlib.import_module("affectflow...")

        def visit(node: ast.AST, scope: list[str], in_func: bool, in_type_checking: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if not dynamic and isinstance(child, (ast.expr, ast.expr_context, ast.operator, ast.arguments)):
                    continue
                is_func = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                func = in_func or is_func
                sub = scope
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    sub = scope + [child.name]
                elif isinstance(child, ast.Lambda):
                    sub = scope + ["<lambda>"]
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
                seen: set[str] = set()
                stmt = child if isinstance(child, ast.stmt) else None
                for t in targets:
                    if not t.startswith("affectflow"):
                        head = t.split(".")[0]
                        if t and not in_func and not in_type_checking and head not in stdlib:
                            third[mod].add(head)
                        if t and in_func and not in_type_checking and stmt is not None and head not in seen:
                            seen.add(head)
                            outside.append(Import(mod, head, True, child.lineno, ".".join(scope),
                                                  reasons.get(id(stmt), "")))
                        continue
                    while t not in modules and "." in t:
                        t = t.rsplit(".", 1)[0]
                    if t in modules and t != mod and not in_type_checking and t not in seen:
                        seen.add(t)
                        reason = reasons.get(id(stmt), "") if stmt is not None and in_func else ""
                        edges.append(Import(mod, t, in_func, child.lineno, ".".join(scope) if in_func else "",
                                            reason))
                visit(child, sub, func, tc)

        visit(tree, [], False, False)
    return modules, edges, third, outside


def collect(root: Path) -> tuple[set[str], list[tuple[str, str, bool, int]]]:
    """Modules and edges ``(importer, imported, function_level, line)`` between affectflow modules."""
    modules, edges, _, _ = parse(root)
    return modules, [(e.importer, e.imported, e.function_level, e.line) for e in edges]


def pulls(modules: set[str], edges: list[Import], third: dict[str, set[str]]) -> dict[str, set[str]]:
    """The third-party packages that importing each module runs: its own module-level imports, those of its parent
    packages and, transitively, those of the affectflow modules it imports at module level."""
    deps: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        if not e.function_level:
            deps[e.importer].add(e.imported)
    for m in modules:
        parts = m.split(".")
        deps[m].update(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in modules)
    out: dict[str, set[str]] = {}
    for m in modules:
        seen, todo = {m}, [m]
        while todo:
            for d in deps[todo.pop()]:
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        out[m] = set().union(*(third.get(s, set()) for s in seen))
    return out


def classify(e: Import, pulled: dict[str, set[str]]) -> tuple[str, str]:
    """``(class, reason)`` of a function-level import: ``heavy-optional`` (the imported module pulls a heavy optional
    package that the importer does not), ``justified-lazy`` (a ``# lazy:`` comment) or ``plain``."""
    extra = pulled[e.imported] - pulled[e.importer]
    heavy = sorted(extra - CORE_LIGHT - CORE_HEAVY)
    if heavy:
        return "heavy-optional", "pulls " + ", ".join(heavy) + (f"; {e.reason}" if e.reason else "")
    if e.reason:
        return "justified-lazy", e.reason
    added = sorted(extra - CORE_LIGHT)
    return "plain", ("moving it up pulls " + ", ".join(added)) if added else ""


def private_imports(root: Path) -> list[str]:
    """``from affectflow.<m> import _name`` statements in a module other than ``<m>`` (``importer -> m._name
    (line N)``); dunder names are not private."""
    out = []
    for f in sorted(root.rglob("*.py")):
        mod = module_name(root, f)
        for node in _statements(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = resolve(mod, f.name == "__init__.py", node)
            if not base.startswith("affectflow") or base == mod:
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    out.append(f"{mod} -> {base}.{a.name} (line {node.lineno})")
    return out


def _statements(tree: ast.AST):
    """Every statement under ``tree`` (imports are statements; expressions are not entered)."""
    todo = deque([tree])
    while todo:
        node = todo.popleft()
        yield node
        todo.extend(c for c in ast.iter_child_nodes(node) if isinstance(c, (ast.stmt, ast.excepthandler,
                                                                                 ast.match_case)))


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
    modules, edges, third, outside = parse(root)
    pulled = pulls(modules, edges, third)
    stdlib = set(sys.stdlib_module_names)
    outside_classes: dict[str, list[str]] = {"heavy-optional": [], "torch": [], "light, justified": [], "light": []}
    for e in outside:
        kind = ("heavy-optional" if e.imported not in stdlib | CORE_LIGHT | CORE_HEAVY else
                "torch" if e.imported in CORE_HEAVY else "light, justified" if e.reason else "light")
        outside_classes[kind].append(f"{e.importer}:{e.function} -> {e.imported} (line {e.line})"
                                     + (f": {e.reason}" if e.reason else ""))
    adj: dict[str, set[str]] = {}
    for e in edges:
        adj.setdefault(e.importer, set()).add(e.imported)
    circles = strongly_connected(modules, adj)
    upward = [e for e in edges if layer_of(e.imported) > layer_of(e.importer)]
    func = [e for e in edges if e.function_level]
    classes: dict[str, list[str]] = {"heavy-optional": [], "justified-lazy": [], "plain": []}
    for e in func:
        kind, why = classify(e, pulled)
        classes[kind].append(f"{e.key} (line {e.line})" + (f": {why}" if why else ""))
    return {
        "modules": len(modules),
        "imports": len(edges),
        "circles": [one_cycle(c, adj) for c in circles],
        "circle_groups": circles,
        "upward": [f"{e.importer} -> {e.imported} ({'function' if e.function_level else 'module'}-level, line {e.line})"
                   for e in upward],
        "upward_keys": sorted({f"{e.importer} -> {e.imported}" for e in upward}),
        "function_level": [f"{e.importer} -> {e.imported} (line {e.line})" for e in func],
        "function_level_classes": classes,
        "plain_keys": sorted({e.key for e in func if classify(e, pulled)[0] == "plain"}),
        "outside_function_level": outside_classes,
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
    cls = r["function_level_classes"]
    print(f"function-level affectflow imports: {len(r['function_level'])} ("
          + ", ".join(f"{k} {len(v)}" for k, v in cls.items()) + ")")
    out = r["outside_function_level"]
    print("function-level imports of other packages (not enforced): "
          + ", ".join(f"{k} {len(v)}" for k, v in out.items()) + " (light: standard library, "
          + ", ".join(sorted(CORE_LIGHT)) + ")")
    print(f"private-name imports across modules: {len(r['private'])}")
    for u in r["private"]:
        print("  private: " + u)
    if args.verbose:
        for u in r["upward"]:
            print("  up: " + u)
        for kind, items in cls.items():
            for u in items:
                print(f"  fn {kind}: {u}")
        for kind, items in out.items():
            for u in items:
                print(f"  other {kind}: {u}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
