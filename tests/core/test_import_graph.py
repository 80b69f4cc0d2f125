"""The import graph (scripts/import_graph.py): no import circle between affectflow modules, no private name
imported across modules."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

def _graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_import_circle():
    r = _graph().report(ROOT / "src" / "affectflow")
    assert r["circle_groups"] == [], (f"import circle(s) {r['circles']}: move the shared piece down a layer (see "
                                      "README, Layout)")


def test_no_new_private_import():
    r = _graph().report(ROOT / "src" / "affectflow")
    new = list(r["private"])
    assert not new, f"private names imported across modules {new}: give the shared piece a public name"


def test_the_graph_finds_a_circle_and_an_upward_import(tmp_path):
    pkg = tmp_path / "affectflow"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from affectflow.cli import tool\n")
    (pkg / "cli" / "tool.py").write_text("from affectflow.errors import f\nfrom . import other\n")
    (pkg / "cli" / "other.py").write_text("import importlib\nimportlib.import_module('affectflow.cli.tool')\n")
    r = _graph().report(pkg)
    # errors -> cli.tool -> errors and cli.tool -> cli.other -> cli.tool (a dynamic import) form one group
    assert r["circle_groups"] == [["affectflow.cli.other", "affectflow.cli.tool", "affectflow.errors"]]
    assert any("affectflow.errors -> affectflow.cli.tool" in u for u in r["upward"])
    assert r["function_level"] == ["affectflow.errors -> affectflow.cli.tool (line 2)"]
    assert r["private"] == []
    (pkg / "cli" / "third.py").write_text("from affectflow.cli.tool import _hidden, __doc__\nfrom .other import _x\n")
    r = _graph().report(pkg)
    assert r["private"] == ["affectflow.cli.third -> affectflow.cli.tool._hidden (line 1)",
                            "affectflow.cli.third -> affectflow.cli.other._x (line 2)"]
