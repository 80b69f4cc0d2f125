"""The names of the files and folders in a run folder, and the column names of a prediction CSV, spelled once (no
heavy imports, so the CLI can use it).

:class:`affectflow.runs.Run` reads and writes run folders through these names; see :mod:`affectflow.runs` for the
layout. ``results.md`` is also the table of evaluation, sweep, cv and personalisation folders. The path functions
below (:func:`checkpoint_file`, :func:`history_files`, :func:`results_file`, ...) are for the code that writes a run
folder before it can be opened as a :class:`~affectflow.runs.Run` and for the modules below ``runs.py``; no other
module spells a run-folder name (``tests/core/test_run_files.py`` checks it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import yaml

from affectflow.errors import RunError

RUN_JSON = "run.json"
CONFIG_YAML = "config.yaml"
METRICS_JSON = "metrics.json"
RESULTS_MD = "results.md"
PREDICTIONS_DIR = "predictions"
CHECKPOINTS_DIR = "checkpoints"
HISTORY_DIR = "history"
EVALUATIONS_DIR = "evaluations"
TRAIN_LOG = "train.log"
RESUME_DIR = "resume"
PLOTS_DIR = "plots"

#: Every file and folder name of a run folder.
LAYOUT = {"info": RUN_JSON, "config": CONFIG_YAML, "metrics": METRICS_JSON, "results": RESULTS_MD,
          "predictions": PREDICTIONS_DIR, "checkpoints": CHECKPOINTS_DIR, "history": HISTORY_DIR,
          "evaluations": EVALUATIONS_DIR, "log": TRAIN_LOG, "resume": RESUME_DIR, "plots": PLOTS_DIR}

#: Folders inside a run folder that never hold a run (not searched by :func:`find_run_folders`).
INNER_FOLDERS = (CHECKPOINTS_DIR, PREDICTIONS_DIR, HISTORY_DIR, RESUME_DIR, PLOTS_DIR)


def results_text(folder: str | os.PathLike) -> str:
    """The ``results.md`` table of a folder affectflow made (a run, an evaluation, a sweep, a cv or a
    personalisation folder)."""
    return results_file(folder).read_text()


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a ``run.json`` (a run folder of any kind)."""
    return (Path(path) / RUN_JSON).is_file()


# ---------------------------------------------------------------------------- paths in a run folder
# For the code that writes a run folder before it can be opened as a Run (training, the procedures) and for the
# modules below runs.py (plots.py); everything else reads a run through affectflow.runs.Run.
def results_file(folder: str | os.PathLike) -> Path:
    """``<folder>/results.md``: the results table of any folder affectflow makes (run, evaluation, sweep, cv,
    tuning, personalisation)."""
    return Path(folder) / RESULTS_MD


def plots_folder(folder: str | os.PathLike) -> Path:
    """``<folder>/plots/``: the figures of a run or of a procedure folder (not created here)."""
    return Path(folder) / PLOTS_DIR


def checkpoint_file(run_dir: str | os.PathLike, seed: int) -> Path:
    """``checkpoints/seed-<seed>.pt``: the finished checkpoint of ``seed`` (its presence marks the seed finished)."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"seed-{int(seed)}.pt"


def checkpoints_folder(run_dir: str | os.PathLike) -> Path:
    """``checkpoints/``: a run's checkpoints (per seed, per subject, or the yardstick's linear model)."""
    return Path(run_dir) / CHECKPOINTS_DIR


def history_file(run_dir: str | os.PathLike, seed: int) -> Path:
    """``history/seed-<seed>.csv``: per-epoch train loss, devel score and learning rate of ``seed``."""
    return Path(run_dir) / HISTORY_DIR / f"seed-{int(seed)}.csv"


def history_files(run_dir: str | os.PathLike) -> list[Path]:
    """Every ``history/seed-*.csv`` of a run, sorted by name (empty when there is none)."""
    folder = Path(run_dir) / HISTORY_DIR
    return sorted(folder.glob("seed-*.csv")) if folder.is_dir() else []


def prediction_folder(run_dir: str | os.PathLike, partition: str | None = None) -> Path:
    """``predictions/`` or ``predictions/<partition>/`` (no check of the partition name: see
    :meth:`affectflow.runs.Run.predictions_dir`)."""
    base = Path(run_dir) / PREDICTIONS_DIR
    return base if partition is None else base / partition


def log_file(run_dir: str | os.PathLike) -> Path:
    """``train.log``: the training log."""
    return Path(run_dir) / TRAIN_LOG


def resume_folder(run_dir: str | os.PathLike) -> Path:
    """``resume/``: the epoch states of the seeds still training."""
    return Path(run_dir) / RESUME_DIR


def read_run_record(path: str | os.PathLike) -> dict | None:
    """``run.json``'s mapping of the folder ``path``; ``None`` when it has none or it is unreadable (no error:
    for code that scans folders; :class:`affectflow.runs.Run` reports a damaged file)."""
    f = Path(path) / RUN_JSON
    try:
        record = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def read_run_config(path: str | os.PathLike) -> dict:
    """``config.yaml``'s mapping of the folder ``path``; ``{}`` when it has none or it is unreadable (no error: for
    code that scans folders; :class:`affectflow.runs.Run` reports a damaged file)."""
    f = Path(path) / CONFIG_YAML
    try:
        cfg = yaml.safe_load(f.read_text(encoding="utf-8")) if f.is_file() else {}
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def run_finished(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` is a run folder whose ``run.json`` says ``finished`` and that has its ``metrics.json``."""
    if not path:
        return False
    record = read_run_record(path)
    return bool(record) and record.get("status") == "finished" and (Path(path) / METRICS_JSON).is_file()


def find_run_folders(root: str | os.PathLike) -> list[Path]:
    """Every folder at or below ``root`` with a ``run.json`` (sorted; hidden folders and the folders inside a run,
    :data:`INNER_FOLDERS`, are not entered)."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"{str(root)!r} is not a folder; give the folder that holds the run directories (e.g. runs).")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in INNER_FOLDERS)
        if RUN_JSON in filenames:
            out.append(Path(dirpath))
    return sorted(out)


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
