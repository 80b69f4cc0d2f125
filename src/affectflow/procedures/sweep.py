"""Sweeps: a grid over any config keys, each cell an ordinary training run, one results table across all cells.

A sweep file (YAML)::

    name: features               # optional; default: the file name without extension
    base: base.yaml              # optional experiment config, relative to the sweep file
    config:                      # optional overrides in the config's YAML shape, merged over `base`
      data: {corpus: corpus}
      training: {seeds: [1, 2, 3], epochs: 30}
    grid:                        # dotted key -> list of values; the cells are the product of all lists
      data.features: [[acoustic], [visual], [acoustic, visual]]
      data.window: [{size: 40, hop: 20}, {size: 80, hop: 40}]
      model.d_model: [32, 64]

Every cell's config is ``defaults ← base ← config ← --set overrides ← the cell's grid values``, validated before
anything runs (a wrong key or value fails the whole sweep up front). Relative ``data.corpus`` paths are taken
relative to the current directory and stored absolute.

The sweep folder (default ``<output.runs_dir>/sweep-<name>``)::

    sweep.json          the resolved spec and, per cell: id, params, config, status, run dir, error
    runs/<cell>-<time>/ each cell's ordinary run directory (see affectflow.runs)
    results.md / results.csv   one row per cell: its grid values, then per evaluated partition and target the
                        selected seed's score and the mean ± std over seeds (rewritten after every finished cell)

**Resuming.** Running the same sweep into the same folder skips finished cells (also cells whose run finished
although the sweep process died before recording it) and re-runs failed or interrupted cells in a *new* run
directory (a failed run's folder is kept with its error; an interrupted one, whose process was killed, is removed
and listed in the cell's ``attempts`` as removed). A folder made by a different grid or config is refused.

Execution goes through :mod:`affectflow.execution` (``serial``, ``local`` process pool, ``ray`` or any
registered backend; the base config's ``execution:`` section or ``--backend/--address``). Cells are idempotent
(:func:`run_cell`), so a cell whose worker died is retried by Ray into the same run folder with the same result.
"""

from __future__ import annotations

import copy
import itertools
import json
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from affectflow.config import (
    config_from_dict,
    default_config_dict,
    merge_config,
    nested_override,
    parse_override,
    read_yaml,
)
from affectflow.corpus.corpus import Corpus
from affectflow.errors import AffectflowError, ConfigError, RunError
from affectflow.experiment import resume_training, train
from affectflow.fsutil import (
    atomic_write,
    check_name,
    is_inside,
    json_fingerprint,
    resumable_folder,
    write_json,
)
from affectflow.execution import execution_settings, get_executor
from affectflow.layout import is_run_folder, read_run_record, results_file, run_finished
from affectflow.runs import Run, new_run_dir, run_status
from affectflow.tracking import finish_parent, log_run, safely, start_parent

# main metric per task for the table (first one present in a target's metrics)
MAIN_METRICS = {
    "continuous": ["ccc"],
    "segment": ["macro_f1", "ccc"],
    "clip": ["weighted_f1", "mse", "value"],
}


@dataclass(kw_only=True)
class SweepSpec:
    """A parsed sweep: its name, the base config (YAML shape, defaults included) and the grid."""

    name: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    source: str | None = None

    def cells(self) -> list[dict[str, Any]]:
        """The grid's cells in order (last key varies fastest): ``{key: value}`` each."""
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]


@dataclass(kw_only=True)
class Cell:
    """One cell of a sweep."""

    id: str
    params: dict[str, Any]
    config: dict[str, Any]
    status: str = "pending"  # pending | running | finished | failed
    run_dir: str | None = None
    error: str | None = None
    attempts: list[str] = field(default_factory=list)


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read a sweep file (see the module docstring); ``overrides`` (``key=value``) apply to every cell."""
    p = Path(path)
    doc = read_yaml(p)
    unknown = sorted(set(doc) - {"name", "base", "config", "grid"})
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} in sweep file {str(p)!r}; valid keys: name, base, config, grid.")
    grid = doc.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(
            f"Sweep file {str(p)!r} needs a non-empty `grid:` mapping of config keys to lists of values, e.g. "
            "`grid: {data.features: [[acoustic], [visual]], model.d_model: [32, 64]}`."
        )
    for k, v in grid.items():
        if not isinstance(k, str) or not k or any(not part for part in k.split(".")):
            raise ConfigError(f"Grid key {k!r} in {str(p)!r} is not a dotted config key such as `training.lr`.")
        if not isinstance(v, list) or not v:
            raise ConfigError(f"Grid key {k!r} in {str(p)!r} must map to a non-empty list of values, got {v!r}.")
        canon = [json.dumps(x, sort_keys=True, default=str) for x in v]
        repeated = sorted({c for c in canon if canon.count(c) > 1})
        if repeated:
            raise ConfigError(f"Grid key {k!r} in {str(p)!r} repeats the value(s) {repeated} ({len(v)} values, "
                              f"{len(set(canon))} distinct): each repeat would train the same cell again; list each "
                              "value once.")
    base = default_config_dict()
    if doc.get("base"):
        bp = Path(doc["base"])
        bp = bp if bp.is_absolute() else p.parent / bp
        base = merge_config(base, read_yaml(bp))
    if doc.get("config") is not None:
        if not isinstance(doc["config"], dict):
            raise ConfigError(f"`config:` in sweep file {str(p)!r} must be a mapping in the config's YAML shape.")
        base = merge_config(base, doc["config"])
    for o in overrides or []:
        base = merge_config(base, parse_override(o))
    name = check_name("sweep name (`name:` or the file name)", str(doc.get("name") or p.stem), error=ConfigError)
    return SweepSpec(name=name, base=base, grid={k: list(v) for k, v in grid.items()}, source=str(p))


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return v
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def build_cells(spec: SweepSpec) -> list[Cell]:
    """Resolve and validate every cell's config (raises :class:`ConfigError` before anything runs)."""
    cells = []
    for i, params in enumerate(spec.cells()):
        cfg = spec.base
        for k, v in params.items():
            cfg = merge_config(cfg, nested_override(k, v))
        try:
            ec = config_from_dict(cfg).validate()
        except ConfigError as e:
            raise ConfigError(f"Sweep cell {i} ({', '.join(f'{k}={_fmt(v)}' for k, v in params.items())}): {e}") from e
        d = ec.to_dict()
        d["data"]["corpus"] = str(Path(d["data"]["corpus"]).resolve())
        cells.append(Cell(id=f"c{i:03d}", params=params, config=d))
    return cells


def _check_corpora(cells: list[Cell]) -> None:
    seen: dict[str, Corpus] = {}
    for c in cells:
        path = c.config["data"]["corpus"]
        if path not in seen:
            seen[path] = Corpus(path)
        for name in c.config["data"]["features"]:
            try:
                seen[path].feature_set(name)
            except AffectflowError as e:
                raise ConfigError(f"Sweep cell {c.id} ({', '.join(f'{k}={_fmt(v)}' for k, v in c.params.items())}): {e}") from e


#: Config sections that say where and how a cell runs, not what it computes: not part of a sweep's identity.
NOT_IDENTITY = ("execution", "tracking")


def _fingerprint(cells: list[Cell]) -> str:
    def ident(cfg: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in cfg.items() if k not in NOT_IDENTITY}

    return json_fingerprint([[c.id, c.params, ident(c.config)] for c in cells])


def run_cell(job: dict[str, Any]) -> dict[str, Any]:
    """Train one cell (an executor job): ``{"config", "run_dir"}`` → ``{"status", "run_dir", "error"}``.

    Never raises for a failed training: the error is returned, so the other cells go on. Idempotent, so an executor
    may run it again after its worker died (Ray's retries): a run folder that already finished is returned as it is,
    one left behind by a killed attempt is continued from its last epoch state (:func:`resume_training`, equal to
    an undisturbed run), an empty one is trained.
    """
    try:
        cfg = config_from_dict(job["config"]).validate()
        run_dir = Path(job["run_dir"])
        if is_run_folder(run_dir):
            run = Run(run_dir)
            status = run.status
            if status == "finished" and run.metrics_path.is_file():
                return {"status": "finished", "run_dir": str(run_dir), "error": None}
            if status != "running":
                run_dir = resume_training(run_dir, progress=False)
                return {"status": "finished", "run_dir": str(run_dir), "error": None}
        run_dir = train(cfg, progress=False, run_dir=run_dir)
        return {"status": "finished", "run_dir": str(run_dir), "error": None}
    except Exception as e:  # noqa: BLE001 - a cell's failure is recorded, the sweep goes on
        msg = f"{type(e).__name__}: {e}"
        if not isinstance(e, AffectflowError):
            msg += "\n" + traceback.format_exc(limit=6)
        return {"status": "failed", "run_dir": job["run_dir"], "error": msg}


def _run_finished(run_dir: str | None) -> bool:
    return run_finished(run_dir)


def _save(sweep_dir: Path, spec: SweepSpec, cells: list[Cell], fingerprint: str) -> None:
    write_json(sweep_dir / "sweep.json", {
        "format": "affectflow-sweep", "name": spec.name, "source": spec.source, "fingerprint": fingerprint,
        "grid": spec.grid, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cells": [c.__dict__ for c in cells],
    })


def load_cells(sweep_dir: Path) -> tuple[dict[str, Any], list[Cell]]:
    f = sweep_dir / "sweep.json"
    if not f.is_file():
        raise RunError(f"{str(sweep_dir)!r} is not a sweep folder (sweep.json is missing).")
    doc = json.loads(f.read_text())
    return doc, [Cell(**c) for c in doc["cells"]]


def run_sweep(
    spec: SweepSpec | str | Path,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    threads: int | None = None,
    backend: str | None = None,
    overrides: list[str] | None = None,
    retry_failed: bool = True,
    address: str | None = None,
    tracking_parent: str | None = None,
) -> Path:
    """Run (or resume) a sweep; return its folder.

    Parameters
    ----------
    spec:
        A :class:`SweepSpec` or the path of a sweep file.
    out:
        The sweep folder; default ``<output.runs_dir>/sweep-<name>``. An existing folder of the same sweep is
        resumed; one of another sweep is refused.
    workers, threads:
        Parallel cells and torch threads per cell (each cell runs with ``training.num_threads = threads``; this
        does not change the cell's identity, so a sweep may be resumed with other values).
    backend, address:
        Executor backend (``local``, ``serial``, ``ray`` or a registered one) and the Ray cluster address.
        ``None`` (here and for ``workers`` / ``threads``): the base config's ``execution:`` section, else
        ``local``, 1, 1. The other ``execution:`` keys (Ray task resources, retries) come from the base config.
    retry_failed:
        Re-run cells that failed before (default); if false they stay failed.
    tracking_parent:
        With ``tracking.mlflow`` set in the base config: the MLflow run the sweep's own run is nested under (a CV or
        recipe). The sweep's run holds every cell's run (logged by this process as cells finish).
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep(spec, overrides)
    backend, workers, threads, options = execution_settings(spec.base.get("execution"), backend=backend,
                                                            workers=workers, threads=threads, address=address)
    cells = build_cells(spec)
    _check_corpora(cells)
    fp = _fingerprint(cells)
    sweep_dir, doc = resumable_folder(
        Path(out) if out is not None else Path(spec.base["output"]["runs_dir"]) / f"sweep-{spec.name}",
        marker="sweep.json", fingerprint=fp, what="sweep folder",
        differs=f"holds a different sweep (its grid or config differ from {spec.source or spec.name!r}); give a new "
        "folder with --out to run this one.",
    )
    if doc is not None:
        cells = [Cell(**c) for c in doc["cells"]]
    for c in cells:  # a run that finished after the sweep process died counts as finished
        if c.status != "finished" and _run_finished(c.run_dir):
            c.status, c.error = "finished", None
    todo = [c for c in cells if c.status != "finished" and (retry_failed or c.status != "failed")]
    jobs = []
    for c in todo:
        if c.run_dir:
            _discard_half_run(sweep_dir, c)
        run_dir = new_run_dir(sweep_dir / "runs", c.id)
        if c.run_dir:
            c.attempts.append(c.run_dir)
        c.run_dir, c.status, c.error = str(run_dir), "running", None
        cfg = copy.deepcopy(c.config)
        cfg["training"]["num_threads"] = threads
        cfg.setdefault("tracking", {})["mlflow"] = None  # cells are logged here, nested under the sweep
        jobs.append({"config": cfg, "run_dir": str(run_dir)})
    _save(sweep_dir, spec, cells, fp)
    write_results(sweep_dir)
    uri = (spec.base.get("tracking") or {}).get("mlflow")
    parent = safely(lambda: start_parent(sweep_dir, uri, kind="sweep", name=sweep_dir.name,
                                            params={"grid": spec.grid}, parent=tracking_parent)) if uri else None
    if jobs:
        ex = get_executor(backend, workers=min(workers, len(jobs)), threads=threads, **options)
        try:
            for i, res in ex.map(run_cell, jobs):
                c = todo[i]
                c.status, c.error = res["status"], res["error"]
                _save(sweep_dir, spec, cells, fp)
                write_results(sweep_dir)
                if parent:
                    safely(lambda c=c: log_run(c.run_dir, uri, parent=parent, name=c.id))
        finally:
            ex.close()
    if parent:
        for c in cells:  # cells finished by an earlier, interrupted sweep process (logged once: mlflow.json)
            if c.run_dir and is_run_folder(c.run_dir):
                safely(lambda c=c: log_run(c.run_dir, uri, parent=parent, name=c.id))
        safely(lambda: finish_parent(parent, sweep_dir, uri, ok=all(c.status == "finished" for c in cells)))
    return sweep_dir


def _discard_half_run(sweep_dir: Path, cell: Cell) -> None:
    """Before a cell is trained again: remove its previous attempt's folder when that run was interrupted (it did
    not finish and its trainer is gone (a killed sweep or CV leaves half run folders that nothing resumes); the attempt stays listed
    in ``sweep.json`` as ``<path> (removed: <status>)``.

    A run still ``running`` in a live process is refused (two sweeps in one folder). Only a direct child of
    ``<sweep>/runs`` that is a real folder (not a symlink) is ever removed.
    """
    p = Path(cell.run_dir)
    runs = sweep_dir / "runs"
    if not p.exists() or p.is_symlink() or p.parent.resolve() != runs.resolve() or not is_inside(runs, p):
        return
    info = read_run_record(p) or {"status": "interrupted"}
    status = run_status(info)
    if status == "running":
        raise RunError(f"Cell {cell.id} of sweep {str(sweep_dir)!r} is being trained right now by process "
                       f"{info.get('pid')} ({str(p)!r}); wait for it or stop it before resuming the sweep.")
    if status != "interrupted":  # finished, or failed with its error recorded: kept
        return
    shutil.rmtree(p, ignore_errors=True)
    cell.run_dir = f"{p} (removed: interrupted)"


# ---------------------------------------------------------------------------- results
def _main_metric(task: str, mets: dict[str, Any]) -> str | None:
    for m in MAIN_METRICS.get(task, ["ccc"]):
        if m in mets:
            return m
    return None


def results_frame(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per cell: id, status, grid values, seeds, run dir, and per partition/target the selected seed's main
    score (``<part>/<target>/<metric>``) plus ``.../mean`` and ``.../std`` over seeds."""
    sweep_dir = Path(sweep_dir)
    _, cells = load_cells(sweep_dir)
    rows = []
    for c in cells:
        row: dict[str, Any] = {"cell": c.id, "status": c.status}
        row.update({k: _fmt(v) for k, v in c.params.items()})
        row["seeds"] = len(c.config["training"]["seeds"])
        row["run"] = c.run_dir
        run = Run(c.run_dir) if c.status == "finished" and c.run_dir and is_run_folder(c.run_dir) else None
        if run is not None and run.metrics_path.is_file():
            m = run.metrics()
            task = m.get("task", "continuous")
            d = c.config["data"]
            for part in [d["devel_partition"], *d["test_partitions"]]:
                for target, mets in m["best"].get(part, {}).items():
                    metric = _main_metric(task, mets)
                    if metric is None:
                        continue
                    key = f"{part}/{target}/{metric}"
                    row[key] = mets[metric]
                    s = m["summary"][part][target][metric]
                    row[f"{key}/mean"], row[f"{key}/std"] = s["mean"], s["std"]
        elif c.error:
            row["error"] = c.error.splitlines()[0]
        rows.append(row)
    return pd.DataFrame(rows)


def write_results(sweep_dir: str | Path) -> tuple[str, pd.DataFrame]:
    """Write ``results.md`` and ``results.csv`` of a sweep folder; return the markdown and the frame."""
    sweep_dir = Path(sweep_dir)
    df = results_frame(sweep_dir)
    md = results_markdown(df)
    atomic_write(sweep_dir / "results.csv", lambda p: df.to_csv(p, index=False, float_format="%.6g"))
    atomic_write(results_file(sweep_dir), lambda p: p.write_text(md + "\n"))
    return md, df


def results_markdown(df: pd.DataFrame) -> str:
    """Markdown table: grid values, then per score column ``selected (mean ± std)``; best devel mean in bold."""
    fixed = {"cell", "status", "run", "seeds", "error"}
    score_keys = [c for c in df.columns if c.count("/") == 2]
    params = [c for c in df.columns if c not in fixed and "/" not in c]
    devel_keys = [k for k in score_keys if k.split("/")[0] == "devel"] or score_keys[:1]
    best_idx = None
    if devel_keys and all(f"{k}/mean" in df for k in devel_keys):
        means = df[[f"{k}/mean" for k in devel_keys]].mean(axis=1, skipna=False)
        lower_better = all(k.endswith("/mse") for k in devel_keys)
        if means.notna().any():
            best_idx = means.idxmin() if lower_better else means.idxmax()
    head = ["cell", *params, "seeds", *[k.replace("/", " ") for k in score_keys], "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in df.iterrows():
        vals = [str(r["cell"]), *[str(r[p]) for p in params], str(r["seeds"])]
        for k in score_keys:
            v = r.get(k)
            if v is None or (isinstance(v, float) and np.isnan(v)):
                vals.append("")
                continue
            cell = f"{v:.4f} ({r[k + '/mean']:.4f} ± {r[k + '/std']:.4f})"
            vals.append(f"**{cell}**" if i == best_idx and k in devel_keys else cell)
        status = str(r["status"])
        if isinstance(r.get("error"), str) and r["error"]:
            status += f": {r['error'][:80]}"
        vals.append(status)
        lines.append("| " + " | ".join(vals) + " |")
    note = ("Scores: selected seed (mean ± std over seeds); the selected seed's devel scores are optimistic (it was "
            "chosen on devel). Bold: the best cell by devel mean over seeds and targets.")
    return "\n".join([note, "", *lines])


_nested = nested_override  # old name, kept for callers of earlier versions
_load_cells = load_cells  # old name, kept for callers of earlier versions
