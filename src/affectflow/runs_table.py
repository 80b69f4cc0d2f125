"""One table of all run folders under a directory (``affectflow runs``), for users who do not run MLflow.

>>> from affectflow.runs_table import runs_frame, select_runs
>>> df = runs_frame("runs")                                                  # doctest: +SKIP
>>> select_runs(df, filters=["model=gru", "training.lr=0.001"], sort="devel")  # doctest: +SKIP

Every folder below ``root`` that holds a ``run.json`` is a row (trained runs, sweep cells, CV folds, tuning trials,
fused and personalisation folders), read through :class:`affectflow.runs.Run`. Columns:

``run`` (path relative to ``root``), ``kind`` (``run``, ``fusion``, ``personalisation``, ...), ``status`` (the
effective one: a killed run is ``interrupted``), ``task``, ``model``, ``features`` (``+``-joined), ``targets``,
the key hyperparameters ``lr``, ``batch_size``, ``epochs``, ``seeds`` (how many), ``d_model``, ``window``, then
``metric`` (the main metric of the task: pooled CCC for continuous tasks, macro / weighted F1 for segment / clip
classification), ``devel`` and ``test`` (the selected seed's main metric averaged over targets; devel is
optimistic, it selected the seed), ``devel:<target>`` / ``test:<target>`` per target, ``wall_s`` (from ``created``
to ``finished`` in ``run.json``, or to the last heartbeat while running) and ``created``.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from affectflow.errors import ConfigError, RunError
from affectflow.layout import find_run_folders, read_run_config  # noqa: F401 - find_run_folders re-exported (it lived here)
from affectflow.runs import Run

MAIN_METRICS = {"continuous": ["ccc"], "segment": ["macro_f1", "ccc"], "clip": ["weighted_f1", "mse", "value"]}
#: Metrics where lower is better (sorting puts the lowest first).
LOWER_BETTER = ("mse", "rmse", "mae", "loss", "wall_s")
FIXED = ["run", "kind", "status", "task", "model", "features", "targets", "lr", "batch_size", "epochs", "seeds",
         "d_model", "window", "metric", "devel", "test"]


def _time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def _main_metric(task: str, mets: dict[str, Any]) -> str | None:
    for m in MAIN_METRICS.get(task, ["ccc"]):
        if m in mets:
            return m
    return None


def run_row(path: Path, root: Path) -> dict[str, Any]:
    """The table row of one run folder (see the module docstring)."""
    row: dict[str, Any] = {"run": str(path.relative_to(root)) if path != root else path.name}
    try:
        run = Run(path)
    except RunError as e:
        row.update(kind="?", status=f"unreadable: {str(e)[:60]}")
        return row
    info, cfg = run.record, run.config_dict
    d, t, m = cfg.get("data") or {}, cfg.get("training") or {}, cfg.get("model") or {}
    win = d.get("window") or {}
    row.update(kind=info.get("kind", "fusion" if (path / "fusion.json").is_file() else "run"), status=run.status,
               task=d.get("task", "continuous"), model=m.get("type"), features="+".join(d.get("features") or []),
               targets="+".join(d.get("targets") or []), lr=t.get("lr"), batch_size=t.get("batch_size"),
               epochs=t.get("epochs"), seeds=len(t.get("seeds") or []), d_model=m.get("d_model"),
               window=f"{win.get('size')}/{win.get('hop')}" if win else None)
    start, end = _time(info.get("created")), _time(info.get("finished"))
    if end is None and row["status"] == "running":
        end = info.get("heartbeat_unix")
    row["wall_s"] = round(end - start, 1) if start is not None and end is not None else None
    row["created"] = info.get("created")
    try:
        metrics = run.metrics() if run.metrics_path.is_file() else {}
    except (OSError, ValueError):
        metrics = {}
    best = metrics.get("best") or {}
    task = metrics.get("task", row["task"])
    parts = {"devel": d.get("devel_partition", "devel"), "test": (d.get("test_partitions") or ["test"])[0]}
    for col, part in parts.items():
        vals = []
        for target, mets in (best.get(part) or {}).items():
            metric = _main_metric(task, mets) if isinstance(mets, dict) else None
            if metric is None:
                continue
            row["metric"] = metric
            row[f"{col}:{target}"] = mets[metric]
            vals.append(mets[metric])
        row[col] = float(np.mean(vals)) if vals else None
    return row


def runs_frame(root: str | os.PathLike) -> pd.DataFrame:
    """One row per run folder under ``root`` (see the module docstring)."""
    root = Path(root)
    rows = [run_row(p, root) for p in find_run_folders(root)]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=FIXED + ["wall_s", "created"])
    cols = [c for c in FIXED if c in df] + sorted(c for c in df if ":" in c) + [c for c in ("wall_s", "created")
                                                                                 if c in df]
    return df[cols + [c for c in df if c not in cols]]


def _config_value(root: Path, run: str, key: str) -> Any:
    cur: Any = read_run_config(root / run)
    for part in key.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _matches(value: Any, wanted: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return wanted.lower() in ("", "none", "null")
    if isinstance(value, (list, tuple)):
        value = "+".join(map(str, value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(wanted) == float(value)
        except ValueError:
            return False
    return str(value) == wanted


def select_runs(df: pd.DataFrame, *, filters: Iterable[str] = (), sort: str | None = None,
                root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Keep the rows matching every ``key=value`` filter and sort them.

    A filter key is a column (``model=gru``, ``status=finished``, ``features=acoustic+visual``) or a dotted config key
    (``training.lr=0.001``, read from each run's ``config.yaml`` under ``root``); numbers compare as numbers.
    ``sort``: a column, best first (highest first, lowest first for errors and ``wall_s``); a leading ``-`` reverses.

    Raises
    ------
    ConfigError
        A malformed filter, or an unknown sort column.
    """
    out = df
    for f in filters:
        if "=" not in f or not f.split("=", 1)[0].strip():
            raise ConfigError(f"Filter {f!r} is not of the form key=value (e.g. model=gru or training.lr=0.001).")
        key, wanted = (s.strip() for s in f.split("=", 1))
        if key in out.columns:
            mask = [_matches(v, wanted) for v in out[key]]
        elif "." in key and root is not None:
            mask = [_matches(_config_value(Path(root), r, key), wanted) for r in out["run"]]
        else:
            raise ConfigError(f"Unknown filter key {key!r}: use a column ({', '.join(map(str, df.columns))}) or a "
                              "dotted config key such as training.lr.")
        out = out[np.asarray(mask, dtype=bool)] if len(out) else out
    if sort:
        rev = sort.startswith("-")
        col = sort.lstrip("-")
        if col not in out.columns:
            raise ConfigError(f"Cannot sort by {col!r}: not a column; columns: {', '.join(map(str, df.columns))}.")
        ascending = col.split(":")[0] in LOWER_BETTER or (
            "metric" in out and col.split(":")[0] in ("devel", "test") and
            out["metric"].dropna().isin(LOWER_BETTER).all() and out["metric"].notna().any())
        if not pd.api.types.is_numeric_dtype(out[col]):
            ascending = True
        out = out.sort_values(col, ascending=ascending != rev, na_position="last", kind="stable")
    return out.reset_index(drop=True)


def format_runs(df: pd.DataFrame) -> str:
    """A plain-text table (scores with 4 decimals)."""
    if df.empty:
        return "(no run folders)"
    show = df.drop(columns=[c for c in ("created",) if c in df])
    return show.to_string(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")
