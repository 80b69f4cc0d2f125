"""Table layouts of the MER 2023 and MuSe 2021 Sent recipes (registered in
:data:`affectflow.recipes.tables.TABLE_LAYOUTS`; every cell records its run, partition, target and metric in the
row's ``sources``, so a test can check it against ``affectflow evaluate`` on that run).

``mer2023`` (MER 2023 paper, Table 1)
    columns: the AFG structures, their fusion, the linear yardstick; rows: per partition ``Dis`` (weighted F1 of the
    discrete emotion, ↑), ``Dim`` (valence MSE, ↓), ``Com`` (``Dis − 0.25 · Dim``, ↑).
``sent_f1`` (MuSe 2021 Sent paper, Tables II-IV)
    rows: the runs' feature sets (raw, or with PCA: ``x‾``), columns: the hybrid models, macro F1 on devel;
    a linear-yardstick (logistic regression) row per feature column.
``sent_multitask`` (MuSe 2021 Sent paper, Table V)
    main task (feature, model), related task (feature, model), macro F1 of the main member alone, of the related
    member alone, and of the multitask framework, on devel and test.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from affectflow.recipes.tables import fmt_cell, run_config, run_metrics, step_runs, table_layout, yardstick_run
from affectflow.runs import Run

STRUCTURE_NAMES = {"parallel": "1 (parallel)", "pairwise": "2 (pairwise)", "hierarchical": "3 (hierarchical)"}


def _cfg(run: str) -> dict[str, Any]:
    return run_config(run)


def _score(run: str, part: str, target: str, metric: str) -> float:
    v = run_metrics(run).get("best", {}).get(part, {}).get(target, {}).get(metric)
    return float(v) if v is not None else float("nan")


def _src(column: str, run: str, part: str, target: str, metric: str, **extra: Any) -> dict[str, Any]:
    return {"column": column, "run": run, "partition": part, "target": target, "metric": metric,
            "value": _score(run, part, target, metric), **extra}


def _mer_targets(run: str) -> tuple[str, str]:
    """(emotion target, valence target) of a MER run: the classification and the regression one."""
    best = run_metrics(run)["best"]
    first = next(iter(best.values()))
    emo = next(t for t, m in first.items() if "weighted_f1" in m)
    val = next(t for t, m in first.items() if "mse" in m)
    return emo, val


@table_layout("mer2023")
def mer2023(source: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """MER 2023 Table 1 (see the module docstring); ``source``: ``{structures: @step, fused: @step}``."""
    cols: list[tuple[str, str]] = []
    for r in step_runs(source.get("structures")):
        s = r.get("params", {}).get("model.structure") or _cfg(r["run"])["model"].get("structure", "")
        cols.append((STRUCTURE_NAMES.get(s, str(s)), r["run"]))
    for r in step_runs(source.get("fused")):
        cols.append(("1+2+3 fused (Eq. 10-11)", r["run"]))
    if not cols:
        return {"columns": [], "rows": [], "note": "no runs"}
    emo, val = _mer_targets(cols[0][1])
    d = _cfg(cols[0][1])["data"]
    parts = options.get("partitions") or [d["devel_partition"], *d["test_partitions"]]
    ys = yardstick_run(cols[0][1])
    cols.append(("Linear yardstick (logistic + ridge)", ys))
    metrics = [("Dis (weighted F1, ↑)", emo, "weighted_f1"), ("Dim (MSE, ↓)", val, "mse"),
               ("Com (MER score, ↑)", "mer_score", "value")]
    rows = []
    for p in parts:
        for label, target, metric in metrics:
            sources = [_src(c, run, p, target, metric, yardstick=(run == ys)) for c, run in cols]
            rows.append({"cells": [p, label, *[fmt_cell(s["value"]) for s in sources]], "sources": sources})
    return {"columns": ["Partition", "Metric", *[c for c, _ in cols]], "rows": rows}


def _feature_label(run: str) -> str:
    d = _cfg(run)["data"]
    pca = d.get("pca") or {}
    return " + ".join(f"{f}‾" if (f in pca or "all" in pca) else f for f in d["features"])


@table_layout("sent_f1")
def sent_f1(source: Any, options: dict[str, Any]) -> dict[str, Any]:
    """MuSe 2021 Sent Tables II-IV: rows = feature sets (``x‾`` = after PCA), columns = models (macro F1 on
    devel, per target); then a linear-yardstick row per feature row's data."""
    runs = step_runs(source)
    if not runs:
        return {"columns": [], "rows": [], "note": "no runs"}
    targets = _cfg(runs[0]["run"])["data"]["targets"]
    models: list[str] = []
    feats: dict[str, dict[str, str]] = {}
    for r in runs:
        m = _cfg(r["run"])["model"]["type"]
        models += [m] if m not in models else []
        feats.setdefault(_feature_label(r["run"]), {})[m] = r["run"]
    part = options.get("partition", "devel")
    cols = [(t, m) for t in targets for m in models]
    rows = []
    for f, by_model in feats.items():
        sources = [_src(f"{t} {m}", by_model[m], part, t, "macro_f1") if m in by_model else None for t, m in cols]
        dims = _dims(next(iter(by_model.values())))
        rows.append({"cells": [f, dims, *[_pct(s) for s in sources]], "sources": [s for s in sources if s]})
    for f, by_model in feats.items():  # the yardstick of each feature row (same data section)
        ys = yardstick_run(next(iter(by_model.values())))
        sources = [_src(f"{t} yardstick", ys, part, t, "macro_f1", yardstick=True) for t in targets]
        vals = {t: _pct(s) for t, s in zip(targets, sources)}
        rows.append({"cells": [f"{f} — linear yardstick (logistic regression)", "",
                               *[vals[t] for t, _ in cols]], "sources": sources, "yardstick": True})
    return {"columns": ["Features", "Dimension", *[f"{t} {m}" for t, m in cols]], "rows": rows}


def _pct(s: dict[str, Any] | None) -> str:
    return "–" if s is None else fmt_cell(s["value"])


def _dims(run: str) -> str:
    """Model input widths per set (``raw→k`` for sets with PCA), from the run's checkpoint data spec."""
    r = Run(run)
    seeds = r.finished_seeds()
    if not seeds:
        return ""
    data = r.checkpoint(min(seeds, key=str))["data"]  # the first checkpoint file by name, as before
    raw, model = data["input_dims"], data.get("model_input_dims") or data["input_dims"]
    return " + ".join(f"{raw[n]}→{model[n]}" if model[n] != raw[n] else str(raw[n]) for n in data["features"])


@table_layout("sent_multitask")
def sent_multitask(source: Any, options: dict[str, Any]) -> dict[str, Any]:
    """MuSe 2021 Sent Table V (module docstring); ``source``: the ``multitask`` step's result (runs with
    ``members``: the main and the related run)."""
    rows = []
    for r in step_runs(source):
        cfg = _cfg(r["run"])
        t = cfg["data"]["targets"][0]
        dev, test = cfg["data"]["devel_partition"], cfg["data"]["test_partitions"][0]
        main, rel = r["members"][:2]
        sources, cells = [], [t]
        for run in (main, rel):
            cells += [_feature_label(run), _cfg(run)["model"]["type"]]
        for label, run in (("main alone", main), ("related alone", rel), ("multitask", r["run"])):
            for p in (dev, test):
                s = _src(f"{label} {p}", run, p, t, "macro_f1")
                sources.append(s)
                cells.append(_pct(s))
        rows.append({"cells": cells, "sources": sources})
    cols = ["Dimension", "Main feature", "Main model", "Related feature", "Related model"]
    cols += [f"{a} {p}" for a in ("Main alone", "Related alone", "Multitask") for p in ("devel", "test")]
    return {"columns": cols, "rows": rows}
