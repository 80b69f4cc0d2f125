"""One owner of the run folder: no module but runs.py and layout.py spells a run-folder file name.

Every other module reads a run through :class:`affectflow.runs.Run` (``Run(path).metrics()``, ``.config_dict``,
``.record``, ``.checkpoint(seed)``, ``.history_files()``, ...) and writes one through the writers and path functions
of runs.py / layout.py. Checked on the source: a path join with a run-folder name (``x / "metrics.json"``,
``x / "checkpoints"``), a run-folder file name as a string anywhere, and an import of layout's name constants.
"""

from __future__ import annotations

import ast
from pathlib import Path

import affectflow
from affectflow.layout import LAYOUT

SRC = Path(affectflow.__file__).parent
OWNERS = {"runs.py", "layout.py"}
#: Names of the run folder (files and folders).
NAMES = set(LAYOUT.values())
#: The file names (with an extension): flagged wherever they are spelled, not only in path joins.
FILES = {n for n in NAMES if "." in n}
#: The layout's name constants (importing one is reading the layout by name).
CONSTANTS = {"RUN_JSON", "CONFIG_YAML", "METRICS_JSON", "RESULTS_MD", "PREDICTIONS_DIR", "CHECKPOINTS_DIR",
             "HISTORY_DIR", "EVALUATIONS_DIR", "TRAIN_LOG", "RESUME_DIR", "PLOTS_DIR", "LAYOUT"}
#: (module path relative to the package, name) pairs that are not run-folder reads, and why.
ALLOWED = {
    ("inference/media.py", "predictions"): "the predictions of a media work folder (not a run folder)",
    ("fsutil.py", "run.json"): "FOLDER_MARKERS: fsutil sits below layout.py and tells any affectflow-made folder "
                               "(corpus, run, sweep...) from a user's folder before writing into it",
}


def violations(source: str, module: str) -> list[str]:
    """Where ``source`` (the module ``module``) spells a run-folder name (see the module docstring)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in NAMES - FILES \
                        and (module, side.value) not in ALLOWED:
                    out.append((node.lineno, f"{module}:{node.lineno}: path join with {side.value!r}"))
        elif isinstance(node, ast.Constant) and node.value in FILES and (module, node.value) not in ALLOWED:
            out.append((node.lineno, f"{module}:{node.lineno}: {node.value!r}"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("affectflow"):
            for a in node.names:
                if a.name in CONSTANTS:
                    out.append((node.lineno, f"{module}:{node.lineno}: imports {a.name} from {node.module}"))
    return [msg for _, msg in sorted(out)]


def test_no_module_but_runs_and_layout_spells_a_run_folder_name():
    found = []
    for f in sorted(SRC.rglob("*.py")):
        module = f.relative_to(SRC).as_posix()
        if module not in OWNERS:
            found += violations(f.read_text(encoding="utf-8"), module)
    assert not found, ("run-folder names outside runs.py / layout.py (read the run through affectflow.runs.Run, or "
                       "use layout's path functions where the folder is still being written):\n" + "\n".join(found))


def test_the_check_finds_each_kind_of_spelling():
    src = ('import json\nfrom affectflow.runs import METRICS_JSON\n'
           'a = json.loads((run / "metrics.json").read_text())\nb = sorted((run / "checkpoints").glob("*.pt"))\n'
           'c = "history"\nd = out / "predictions"\n')
    got = violations(src, "recipes/x.py")
    assert len(got) == 4 and "imports METRICS_JSON" in got[0] and "'metrics.json'" in got[1]
    assert "path join with 'checkpoints'" in got[2] and "path join with 'predictions'" in got[3]
    assert violations('p = wd / "predictions"\n', "inference/media.py") == []  # the one justified exception
