"""The names of the files and folders in a run folder, spelled once (no heavy imports, so the CLI can use it).

:class:`affectflow.runs.Run` reads and writes run folders through these names; see :mod:`affectflow.runs` for the
layout. ``results.md`` is also the table of evaluation, sweep, cv and personalisation folders.
"""

from __future__ import annotations

import os
from pathlib import Path

RUN_JSON = "run.json"
CONFIG_YAML = "config.yaml"
METRICS_JSON = "metrics.json"
RESULTS_MD = "results.md"
PREDICTIONS_DIR = "predictions"
CHECKPOINTS_DIR = "checkpoints"
HISTORY_DIR = "history"
EVALUATIONS_DIR = "evaluations"

#: Every file and folder name of a run folder.
LAYOUT = {"info": RUN_JSON, "config": CONFIG_YAML, "metrics": METRICS_JSON, "results": RESULTS_MD,
          "predictions": PREDICTIONS_DIR, "checkpoints": CHECKPOINTS_DIR, "history": HISTORY_DIR,
          "evaluations": EVALUATIONS_DIR}


def results_text(folder: str | os.PathLike) -> str:
    """The ``results.md`` table of a folder affectflow made (a run, an evaluation, a sweep, a cv or a
    personalisation folder)."""
    return (Path(folder) / RESULTS_MD).read_text()


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a ``run.json`` (a run folder of any kind)."""
    return (Path(path) / RUN_JSON).is_file()
