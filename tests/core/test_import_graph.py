"""The import graph (scripts/import_graph.py): no import circle between affectflow modules, no import that climbs the
layers, no private name imported across modules, and function-level affectflow imports only where they are justified
(a heavy optional dependency behind them, or a ``# lazy: <reason>`` comment)."""

import functools
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

@functools.cache
def _graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.cache
def _main_report() -> dict:
    return _graph().report(ROOT / "src" / "affectflow")


def test_no_import_circle():
    r = _main_report()
    assert r["circle_groups"] == [], (f"import circle(s) {r['circles']}: move the shared piece down a layer (see "
                                      "README, Layout)")


def test_no_new_private_import():
    r = _main_report()
    new = list(r["private"])
    assert not new, f"private names imported across modules {new}: give the shared piece a public name"


def test_no_upward_import():
    r = _main_report()
    assert r["upward"] == [], (f"imports that climb the layers {r['upward']}: a module imports only from its own layer "
                               "and the ones below (README, Layout); move the shared piece down")


def test_no_plain_function_level_import():
    plain = _main_report()["function_level_classes"]["plain"]
    assert not plain, (f"function-level affectflow imports {plain}: move them to the module top; keep one inside the "
                       "function only for a heavy optional dependency (found automatically) or with a one-line "
                       "'# lazy: <reason>' comment on the import (see scripts/import_graph.py)")


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
    assert r["upward_keys"] == ["affectflow.errors -> affectflow.cli.tool"]
    assert r["function_level"] == ["affectflow.errors -> affectflow.cli.tool (line 2)"]
    assert r["plain_keys"] == ["affectflow.errors:f -> affectflow.cli.tool"]
    assert r["private"] == []
    (pkg / "cli" / "third.py").write_text("from affectflow.cli.tool import _hidden, __doc__\nfrom .other import _x\n")
    r = _graph().report(pkg)
    assert r["private"] == ["affectflow.cli.third -> affectflow.cli.tool._hidden (line 1)",
                            "affectflow.cli.third -> affectflow.cli.other._x (line 2)"]


def test_function_level_imports_are_classified(tmp_path):
    pkg = tmp_path / "affectflow"
    (pkg / "io").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "io" / "__init__.py").write_text("import numpy\n")
    (pkg / "io" / "face.py").write_text("import os\nimport mediapipe as mp\n")   # a heavy optional package
    (pkg / "io" / "via.py").write_text("from affectflow.io import face\n")      # pulls it through another module
    (pkg / "models.py").write_text("import torch\n")
    (pkg / "plots.py").write_text("def plot():\n    import matplotlib\n")        # lazy itself: light to import
    (pkg / "config.py").write_text(
        "import mediapipe\n"
        "class C:\n"
        "    def a(self):\n"
        "        from affectflow.io import face\n"              # heavy, but config pulls mediapipe already: plain
        "    def b(self):\n"
        "        # lazy: pulls torch, which `affectflow --help` must not\n"
        "        from affectflow import models\n"
        "def c():\n"
        "    from affectflow.models import x  # lazy: keeps torch out\n"
        "    from affectflow import plots, models\n"
        "def e():\n"
        "    # lazy: one comment covers the run of imports it heads\n"
        "    from affectflow import models\n"
        "    from affectflow import plots\n"
        "    e = 1\n"
        "    from affectflow import metrics\n")
    (pkg / "metrics.py").write_text("def d():\n    from affectflow.io import via\n    from affectflow.io import face\n"
                                    "    import json\n    import torch  # lazy: keeps torch out\n")
    r = _graph().report(pkg)
    cls = r["function_level_classes"]
    assert cls["heavy-optional"] == ["affectflow.metrics:d -> affectflow.io.via (line 2): pulls mediapipe",
                                     "affectflow.metrics:d -> affectflow.io.face (line 3): pulls mediapipe"]
    assert cls["justified-lazy"] == [
        "affectflow.config:C.b -> affectflow.models (line 7): pulls torch, which `affectflow --help` must not",
        "affectflow.config:c -> affectflow.models (line 9): keeps torch out",
        "affectflow.config:e -> affectflow.models (line 13): one comment covers the run of imports it heads",
        "affectflow.config:e -> affectflow.plots (line 14): one comment covers the run of imports it heads"]
    assert cls["plain"] == ["affectflow.config:C.a -> affectflow.io.face (line 4)",
                            "affectflow.config:c -> affectflow.plots (line 10)",
                            "affectflow.config:c -> affectflow.models (line 10): moving it up pulls torch",
                            "affectflow.config:e -> affectflow.metrics (line 16)"]
    assert r["outside_function_level"] == {"heavy-optional": ["affectflow.plots:plot -> matplotlib (line 2)"],
                                           "torch": ["affectflow.metrics:d -> torch (line 5): keeps torch out"],
                                           "light, justified": [], "light": ["affectflow.metrics:d -> json (line 4)"]}
    assert r["plain_keys"] == ["affectflow.config:C.a -> affectflow.io.face", "affectflow.config:c -> affectflow.models",
                               "affectflow.config:c -> affectflow.plots", "affectflow.config:e -> affectflow.metrics"]
