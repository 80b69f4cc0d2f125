"""The names of the files and folders in a run folder, and the column names of a prediction CSV, spelled once (no
heavy imports, so the CLI can use it).

:class:`affectflow.runs.Run` reads and writes run folders through these names; see :mod:`affectflow.runs` for the
layout. ``results.md`` is also the table of evaluation, sweep, cv and personalisation folders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from affectflow.errors import RunError

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


# ---------------------------------------------------------------------------- prediction CSV columns
#: Suffix of a label column (``<target>_label``); a prediction column is named as its target.
LABEL_SUFFIX = "_label"
#: Suffix of the prediction columns written by earlier versions (``<target>_pred``); still read.
OLD_PRED_SUFFIX = "_pred"
#: Key columns of segment / clip files.
KEY_COLUMNS = ("recording", "segment_id")


def split_prediction_columns(columns: Sequence[str], where: str = "") -> tuple[list[str], dict[str, str],
                                                                               dict[str, str]]:
    """Target names, target → prediction column, target → label column of a prediction CSV's header, in this
    format or the earlier one (``<target>_pred``). Key columns (``time``, ``recording``, ``segment_id``) are not
    targets; ``x_label`` is a label column when ``x`` is a prediction column."""
    cols = [c for c in columns if c != "time" and c not in KEY_COLUMNS]
    old = [c[: -len(OLD_PRED_SUFFIX)] for c in cols if c.endswith(OLD_PRED_SUFFIX)]
    rest = [c for c in cols if not c.endswith(OLD_PRED_SUFFIX)]
    if old and all(c.endswith(LABEL_SUFFIX) and c[: -len(LABEL_SUFFIX)] in old for c in rest):
        targets = old  # earlier versions: <target>_pred [+ <target>_label]
        pred = {t: f"{t}{OLD_PRED_SUFFIX}" for t in targets}
    else:
        names = set(cols)
        targets = [c for c in cols if not (c.endswith(LABEL_SUFFIX) and c[: -len(LABEL_SUFFIX)] in names)]
        pred = {t: t for t in targets}
    label = {t: f"{t}{LABEL_SUFFIX}" for t in targets if f"{t}{LABEL_SUFFIX}" in columns}
    if not targets:
        raise RunError(f"{where or 'The prediction file'} has no prediction columns (columns: {list(columns)}).")
    return targets, pred, label
