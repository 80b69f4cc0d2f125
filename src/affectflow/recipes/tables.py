"""Result tables of recipes in the papers' layouts, the linear yardstick row, and ``recipe.md`` / ``recipe.json``.

Every number in a table is read from the ``metrics.json`` of the run (trained, fused or personalised) that produced
it, and the table records that run next to the number (``recipe.json``: ``tables[i].rows[j].sources``), so a reader
can check it with ``affectflow evaluate RUN`` (the recipe tests do).

Layouts (``layout:`` of a recipe table; ``source:`` is a step reference or a mapping of them):

``by_features``
    MuSe 2023 Tables 2 and 3: one row per feature set / combination (runs of one target each, parameters
    ``data.features`` and ``data.targets``), columns Dev. and Test per target and Combined Test (mean over targets).
``ablation``
    MuSe 2023 Tables 4 / 5: one row per (#Layers, model_dim, rnn_bi), Dev. and Test per target.
``ensemble``
    MuSe 2023 Table 6 (test): the best single run by devel, the best single personalised run, and the ensemble,
    per target and Combined; with the noise-free ceiling where the corpus has one.
``models``
    MuSe 2021 stress Tables 2 and 4: rows given in the recipe (``source``: a list of ``{run, Feature, M, Model}``),
    the devel (and test) CCC per target.
``cv_folds``
    ABAW5 Table 1: per target and method, the selected seed's devel CCC in each fold ("–" where a method was run on
    fold 0 only, as LFAN in the paper).

Every table ends with the **linear yardstick** row: :mod:`affectflow.procedures.yardstick` (ridge regression on the
same features with a short past context, fitted on train, strength chosen on devel) on the data of the row's run
(:func:`yardstick_run`; one fit per distinct data section, kept in ``<recipe>/yardsticks/``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from affectflow.config import config_from_dict, default_config_dict, merge_config
from affectflow.corpus.corpus import atomic_write, write_json
from affectflow.errors import AffectflowError
from affectflow.layout import is_run_folder
from affectflow.procedures.yardstick import run_yardstick
from affectflow.recipes.refs import substitute_refs
from affectflow.runs import Run

TABLE_LAYOUTS: dict[str, Callable[..., dict[str, Any]]] = {}


def table_layout(name: str):
    def deco(fn):
        TABLE_LAYOUTS[name] = fn
        return fn

    return deco


def run_metrics(run: str) -> dict[str, Any]:
    """The ``metrics.json`` of a run folder of any kind (:meth:`affectflow.runs.Run.metrics`)."""
    return Run(run).metrics()


def run_config(run: str) -> dict[str, Any]:
    """The resolved config (``config.yaml``) of a run folder of any kind (:attr:`affectflow.runs.Run.config_dict`)."""
    return Run(run).config_dict


def _parts(run: str) -> tuple[str, str]:
    d = run_config(run)["data"]
    return d["devel_partition"], d["test_partitions"][0]


def run_score(run: str, partition: str, target: str, metric: str = "ccc") -> float:
    """``metrics.json`` ``best[partition][target][metric]`` of a run (NaN when absent)."""
    v = run_metrics(run).get("best", {}).get(partition, {}).get(target, {}).get(metric)
    return float(v) if v is not None else float("nan")


def target_metric(run: str, target: str) -> str:
    """The metric a run's task scores ``target`` with (higher is better): CCC for regression targets; for
    classification targets macro F1 (segment task, MuSe-Sent) or weighted F1 (clip task, MER 2023)."""
    try:
        best = run_metrics(run).get("best", {})
        task = run_config(run)["data"].get("task", "continuous")
    except (OSError, KeyError, TypeError, ValueError, AffectflowError):
        return "ccc"
    keys = next((set(m[target]) for m in best.values() if isinstance(m, dict) and isinstance(m.get(target), dict)),
                set())
    if "ccc" in keys or not keys & {"macro_f1", "weighted_f1"}:
        return "ccc"
    return "weighted_f1" if task == "clip" and "weighted_f1" in keys else "macro_f1"


def fmt_cell(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4f}"


def _cell(run: str | None, role: str, target: str, sources: list, column: str) -> float:
    if not run:
        return float("nan")
    dev, test = _parts(run)
    part = dev if role == "devel" else test
    v = run_score(run, part, target)
    sources.append({"column": column, "run": run, "partition": part, "target": target, "metric": "ccc", "value": v})
    return v


def run_targets(runs: list[dict[str, Any]]) -> list[str]:
    """The targets of run entries, in order of first appearance."""
    out: list[str] = []
    for r in runs:
        ts = r.get("params", {}).get("data.targets")
        if ts is None:
            ts = run_config(r["run"])["data"]["targets"]
        for t in ts:
            if t not in out:
                out.append(t)
    return out


def _target_of(r: dict[str, Any]) -> list[str]:
    ts = r.get("params", {}).get("data.targets")
    if ts is None:
        ts = run_config(r["run"])["data"]["targets"]
    return list(ts)


# ---------------------------------------------------------------------------- yardstick hook
YARDSTICK_DIR: list[Path] = []  # set by build_tables: <recipe folder>/yardsticks


def yardstick_run(run: str) -> str:
    """The linear yardstick (:func:`affectflow.procedures.yardstick.run_yardstick`: ridge / logistic regression on
    the same features and normalisation, fitted on train, strength chosen on devel) of ``run``'s data section, in
    ``<recipe>/yardsticks/<hash>`` (made once per distinct data section and reused); returns its folder."""
    cfg_d = run_config(run)
    data = cfg_d["data"]
    key = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]
    root = YARDSTICK_DIR[-1] if YARDSTICK_DIR else Path(run).parent / "yardsticks"
    dest = root / f"yardstick-{key}"
    if not (is_run_folder(dest) and Run(dest).metrics_path.is_file()):
        if dest.exists():
            shutil.rmtree(dest)  # an interrupted fit: redo it
        cfg = config_from_dict(merge_config(default_config_dict(), {"data": data, "output": cfg_d.get("output", {})}))
        run_yardstick(cfg, out=dest)
    return str(dest)


def yardstick_scores(run: str) -> tuple[str, dict[str, dict[str, float]]] | None:
    """``(yardstick folder, {partition: {target: ccc}})`` of ``run``'s data (:func:`yardstick_run`), or ``None``
    when it cannot be fitted (the row then says so)."""
    try:
        folder = yardstick_run(run)
    except ImportError:
        return None
    best = run_metrics(folder)["best"]
    return folder, {p: {t: float(m.get("ccc", np.nan)) for t, m in ts.items()} for p, ts in best.items()}


def _yardstick_row(runs_by_target: dict[str, str | None], columns: list[tuple[str, str, str]], n_lead: int,
                   label: str = "Linear yardstick (ridge)") -> dict[str, Any]:
    cells, sources, pending = [], [], False
    cache: dict[str, Any] = {}
    for col, role, target in columns:
        run = runs_by_target.get(target)
        if run is None:
            cells.append("–")
            continue
        if run not in cache:
            cache[run] = yardstick_scores(run)
        ys = cache[run]
        if ys is None:
            pending = True
            cells.append("pending")
            continue
        folder, scores = ys
        dev, test = _parts(run)
        part = dev if role == "devel" else test
        v = scores.get(part, {}).get(target, float("nan"))
        sources.append({"column": col, "run": folder, "partition": part, "target": target, "metric": "ccc",
                        "value": v, "yardstick": True, "yardstick_of": run})
        cells.append(fmt_cell(v))
    feats = sorted({"+".join(run_config(r)["data"]["features"])
                    for r in runs_by_target.values() if r})
    if feats:
        label += f" on {' / '.join(feats)}"
    return {"cells": [label + (" [pending]" if pending else "")] + [""] * (n_lead - 1) + cells, "sources": sources,
            "yardstick": True, "pending": pending}


YARDSTICK_PENDING = "[pending]: the linear yardstick could not be fitted (affectflow.procedures.yardstick missing)."


# ---------------------------------------------------------------------------- layouts
def _combined(vals: list[float]) -> float:
    return float(np.mean(vals)) if vals and all(np.isfinite(vals)) else float("nan")


@table_layout("by_features")
def by_features(source: Any, options: dict[str, Any]) -> dict[str, Any]:
    """MuSe 2023 Tables 2 / 3."""
    runs = source["runs"] if isinstance(source, dict) else source
    modality = options.get("modality", {})
    targets = run_targets(runs)
    rows: dict[str, dict[str, Any]] = {}
    for r in runs:
        feats = r["params"].get("data.features", [])
        key = "+".join(feats)
        for t in _target_of(r):
            rows.setdefault(key, {"features": feats, "runs": {}})["runs"][t] = r["run"]
    columns = [(f"{t} {c}", role, t) for t in targets for c, role in (("Dev.", "devel"), ("Test", "test"))]
    head = ["Modality", "Feature", *[c for c, _, _ in columns], "Combined Test"]
    out_rows = []
    best_dev: dict[str, tuple[float, str]] = {}
    for key, row in rows.items():
        sources: list = []
        vals = [_cell(row["runs"].get(t), role, t, sources, c) for c, role, t in columns]
        tests = [v for (c, role, t), v in zip(columns, vals) if role == "test"]
        mod = "+".join(dict.fromkeys(modality.get(f, "?") for f in row["features"]))
        out_rows.append({"cells": [mod, key, *[fmt_cell(v) for v in vals], fmt_cell(_combined(tests))], "sources": sources})
        for (c, role, t), v in zip(columns, vals):
            if role == "devel" and np.isfinite(v) and v > best_dev.get(t, (-np.inf, ""))[0]:
                best_dev[t] = (v, row["runs"][t])
    out_rows.append(_yardstick_row({t: best_dev[t][1] for t in best_dev}, columns, 2,
                                   "Linear yardstick (ridge), best row's features:"))
    out_rows[-1]["cells"].append("")
    return {"columns": head, "rows": out_rows}


@table_layout("ablation")
def ablation(source: Any, options: dict[str, Any]) -> dict[str, Any]:
    """MuSe 2023 Tables 4 / 5."""
    runs = source["runs"] if isinstance(source, dict) else source
    if not runs:
        return {"columns": [], "rows": [], "note": "step skipped"}
    targets = run_targets(runs)
    rows: dict[tuple, dict[str, Any]] = {}
    for r in runs:
        p = r["params"]
        key = (p.get("model.num_layers"), p.get("model.d_model"), p.get("model.bidirectional"))
        for t in _target_of(r):
            rows.setdefault(key, {})[t] = (r["run"], "+".join(p.get("data.features", [])))
    columns = [(f"{t} {c}", role, t) for t in targets for c, role in (("Dev.", "devel"), ("Test", "test"))]
    head = ["#Layers", "model_dim", "rnn_bi", *[c for c, _, _ in columns], "features"]
    out_rows = []
    for key, byt in sorted(rows.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        sources: list = []
        vals = [_cell(byt.get(t, (None,))[0], role, t, sources, c) for c, role, t in columns]
        bi = {True: "Y", False: "N"}.get(key[2], str(key[2]))
        feats = " / ".join(f"{t}: {v[1]}" for t, v in byt.items())
        out_rows.append({"cells": [str(key[0]), str(key[1]), bi, *[fmt_cell(v) for v in vals], feats], "sources": sources})
    any_run = {t: byt[t][0] for byt in rows.values() for t in byt}
    out_rows.append(_yardstick_row(any_run, columns, 3))
    out_rows[-1]["cells"].append("")
    return {"columns": head, "rows": out_rows}


def _target_devel(r: dict[str, Any], target: str) -> float:
    """The devel score of ``target`` of a run entry (:func:`target_metric`; its overall devel score for runs of one
    target when the metric is missing)."""
    try:
        dev, _ = _parts(r["run"])
        v = run_score(r["run"], dev, target, target_metric(r["run"], target))
    except (OSError, KeyError, ValueError):
        v = float("nan")
    return v if np.isfinite(v) else float(r.get("devel", np.nan))


def best_by_devel(runs: list[dict[str, Any]], target: str) -> dict[str, Any] | None:
    """The run with the best devel CCC on ``target`` (per target, as the papers choose per dimension)."""
    cands = [(r, _target_devel(r, target)) for r in runs if target in _target_of(r)]
    cands = [(r, v) for r, v in cands if np.isfinite(v)]
    return max(cands, key=lambda rv: rv[1])[0] if cands else None


@table_layout("ensemble")
def ensemble(source: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """MuSe 2023 Table 6 (test), with the rows that explain the ensemble's gain."""
    rows_spec = options.get("rows") or list(source)
    source = {k: {"runs": step_runs(v)} for k, v in source.items()}
    allruns = [r for k in rows_spec for r in (source[k] or {}).get("runs", [])]
    targets = run_targets(allruns)
    columns = [(t, "test", t) for t in targets]
    head = ["Method", *targets, "Combined"]
    labels = options.get("labels", {})
    out_rows = []
    ceiling_runs: dict[str, str] = {}
    for k in rows_spec:
        runs = (source[k] or {}).get("runs", [])
        sources: list = []
        vals, picked = [], []
        for c, role, t in columns:
            b = best_by_devel(runs, t)
            vals.append(_cell(b["run"] if b else None, role, t, sources, c))
            picked.append(f"{t}: {b['label']}" if b else "")
            if b and t not in ceiling_runs:
                ceiling_runs[t] = b.get("base") or b["run"]
        out_rows.append({"cells": [labels.get(k, k), *[fmt_cell(v) for v in vals], fmt_cell(_combined(vals))],
                         "sources": sources, "chosen": picked})
    if ceiling_runs:
        vals = [(_ceiling(ceiling_runs[t]) or {}).get(t, float("nan")) if t in ceiling_runs else float("nan")
                for t in targets]
        if any(np.isfinite(vals)):
            out_rows.append({"cells": ["Noise-free ceiling (clean labels vs observed)", *[fmt_cell(v) for v in vals],
                                       fmt_cell(_combined(vals))], "sources": [], "ceiling": True})
    base = {t: (best_by_devel([r for k in rows_spec for r in (source[k] or {}).get("runs", []) if "base" not in r
                                and "members" not in r], t) or {}).get("run") for t in targets}
    out_rows.append(_yardstick_row(base, columns, 1))
    out_rows[-1]["cells"].append("")
    return {"columns": head, "rows": out_rows}


def _ceiling(run: str) -> dict[str, float] | None:
    m = run_metrics(run)
    _, test = _parts(run)
    c = (m.get("ceiling") or {}).get(test)
    if c:
        return c
    base = Run(run).record.get("base_run")
    return _ceiling(base) if base else None


def step_runs(source: Any) -> list[dict[str, Any]]:
    """Runs of a step result, of a list of step results, or a list of run entries."""
    if isinstance(source, dict):
        return list(source.get("runs", []))
    out = []
    for s in source or []:
        if isinstance(s, dict) and "runs" in s:  # a step result (a train step's also has "run")
            out += s["runs"]
        elif isinstance(s, dict) and not s.get("skipped"):
            out.append(s)
    return out


@table_layout("models")
def models(source: Any, options: dict[str, Any]) -> dict[str, Any]:
    """MuSe 2021 stress Tables 2 / 4: one row per run (of a list of step results), its ``columns`` (set by the
    train / late_fusion step) first, then the devel (and test) CCC per target."""
    lead = options.get("columns", ["Feature", "M", "Model"])
    parts = options.get("partitions", ["devel"])
    rows_in = [{**r.get("columns", {}), **r} for r in step_runs(source) if r.get("run")]
    runs = [{"run": r["run"], "params": {}} for r in rows_in]
    targets = options.get("targets") or run_targets(runs)
    columns = [(f"{t}" + ("" if len(parts) == 1 else f" {p}"), p, t) for t in targets for p in parts]
    out_rows = []
    for r in rows_in:
        sources: list = []
        vals = [_cell(r["run"], role, t, sources, c) for c, role, t in columns]
        lead_cells = ["+".join(map(str, r.get(k))) if isinstance(r.get(k), list) else str(r.get(k, ""))
                      for k in lead]
        out_rows.append({"cells": lead_cells + [fmt_cell(v) for v in vals], "sources": sources})
    base = {t: r["run"] for r in rows_in[:1] for t in targets}
    if options.get("yardstick_run"):
        base = {t: options["yardstick_run"] for t in targets}
    out_rows.append(_yardstick_row(base, columns, len(lead)))
    return {"columns": [*lead, *[c for c, _, _ in columns]], "rows": out_rows}


@table_layout("cv_folds")
def cv_folds(source: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """ABAW5 Table 1: per target and method, devel CCC per fold (fold 0 = the corpus's split)."""
    k = max(len(v.get("runs", [])) for v in source.values() if v)
    allruns = [r for v in source.values() if v for r in v.get("runs", [])]
    targets = options.get("targets") or run_targets(allruns)
    head = ["Emotion", "Method", *[f"Fold {i}" for i in range(k)]]
    out_rows = []
    for t in targets:
        for method, res in source.items():
            runs = (res or {}).get("runs", [])
            sources: list = []
            vals = [_cell(runs[i]["run"], "devel", t, sources, f"Fold {i}") if i < len(runs) else float("nan")
                    for i in range(k)]
            out_rows.append({"cells": [t, method, *[fmt_cell(v) for v in vals]], "sources": sources})
    method = options.get("yardstick_of") or max(source, key=lambda m: len((source[m] or {}).get("runs", [])))
    runs = (source.get(method) or {}).get("runs", [])
    for t in targets:  # ridge on the same features as `method`, per fold (the fold runs' data sections)
        sources, cells = [], []
        for i in range(k):
            if i >= len(runs):
                cells.append("–")
                continue
            row = _yardstick_row({t: runs[i]["run"]}, [(f"Fold {i}", "devel", t)], 1)
            sources += row["sources"]
            cells.append(row["cells"][1])
        out_rows.append({"cells": [t, f"Linear yardstick (ridge), {method}'s features", *cells], "sources": sources,
                         "yardstick": True})
    return {"columns": head, "rows": out_rows}


# ---------------------------------------------------------------------------- report
def final_comparison(final: dict[str, Any]) -> dict[str, Any] | None:
    """The recipe result vs the best single run (chosen on devel, scored on test), per target."""
    if not final or "result" not in final:
        return None
    res_runs = final["result"].get("runs", []) if isinstance(final["result"], dict) else []
    singles = [r for s in final.get("singles", []) if isinstance(s, dict) for r in s.get("runs", [])]
    targets = run_targets(res_runs) if res_runs else []
    out: dict[str, Any] = {"targets": {}, "label": final.get("label", "result")}
    for t in targets:
        rr, sr = best_by_devel(res_runs, t), best_by_devel(singles, t)
        if rr is None or sr is None:
            continue
        _, test = _parts(rr["run"])
        metric = target_metric(rr["run"], t)
        a, b = run_score(rr["run"], test, t, metric), run_score(sr["run"], test, t, metric)
        out["targets"][t] = {"metric": metric, "result": a, "result_run": rr["run"], "best_single": b, "best_single_run": sr["run"],
                             "best_single_label": sr["label"], "difference": a - b, "partition": test}
    return out


def final_line(cmp: dict[str, Any] | None) -> str:
    """One line: the recipe's result vs its best single run, per target."""
    if not cmp or not cmp["targets"]:
        return "Final: no comparison (the recipe declares no `final:` result and single runs)."
    names = {"ccc": "CCC", "macro_f1": "macro F1", "weighted_f1": "weighted F1"}
    parts = [f"{t} {names.get(v.get('metric', 'ccc'), v.get('metric'))} {v['result']:.4f} vs {v['best_single']:.4f} "
             f"({v['difference']:+.4f}; best single: {v['best_single_label']})" for t, v in cmp["targets"].items()]
    part = next(iter(cmp["targets"].values()))["partition"]
    return (f"Final ({part}): {cmp['label']} vs the best single run of this recipe chosen on devel: "
            + "; ".join(parts) + ".")


def markdown_table(t: dict[str, Any]) -> str:
    """A table as markdown."""
    if not t.get("columns"):
        return f"({t.get('note', 'empty')})"
    lines = ["| " + " | ".join(t["columns"]) + " |", "|" + "---|" * len(t["columns"])]
    for r in t["rows"]:
        cells = list(r["cells"]) + [""] * (len(t["columns"]) - len(r["cells"]))
        lines.append("| " + " | ".join(cells[: len(t["columns"])]) + " |")
    return "\n".join(lines)


def build_tables(recipe: Any, results: dict[str, Any], folder: Path | None = None) -> list[dict[str, Any]]:
    """Every table of ``recipe`` from the step results."""

    out = []
    if folder is not None:
        YARDSTICK_DIR.append(Path(folder) / "yardsticks")
    for spec in recipe.tables:
        src = substitute_refs(spec["source"], results)
        if isinstance(src, dict) and src.get("skipped"):
            t = {"columns": [], "rows": [], "note": "step skipped (optional; enable it with --set)"}
        else:
            try:
                t = TABLE_LAYOUTS[spec["layout"]](src, spec.get("options") or {})
            except Exception as e:  # noqa: BLE001 - a table that cannot be built never loses the finished steps
                t = {"columns": [], "rows": [], "note": f"table not built: {type(e).__name__}: {e}"}
        out.append({"id": spec.get("id"), "title": spec.get("title", ""),
                    "paper": spec.get("paper") or (f"ours: {spec['ours']}" if spec.get("ours") else ""),
                    "layout": spec["layout"], **t})
    return out


def write_report(folder: Path, recipe: Any, results: dict[str, Any], state: dict[str, Any], *,
                 figures: Callable[..., list[dict[str, Any]]] | None = None) -> None:
    """Write ``recipe.json`` and ``recipe.md`` (tables, figures, provenance of every choice, final comparison).

    ``figures``: ``(recipe, results, tables, folder) -> [figure entries]`` (the engine passes
    :func:`affectflow.recipes.figures.build_figures`); each entry's ``file`` is linked from ``recipe.md``."""

    tables = build_tables(recipe, results, folder)
    figs = figures(recipe, results, tables, folder) if figures else []
    cmp = final_comparison(substitute_refs(recipe.final, results)) if recipe.final else None
    line = final_line(cmp)
    secs = {sid: s.get("seconds") for sid, s in state["steps"].items()}
    doc = {"format": "affectflow-recipe", "recipe": recipe.name, "title": recipe.title, "paper": recipe.paper,
           "budget": recipe.budget, "source": recipe.source, "overrides": recipe.overrides,
           "params": {k: {"value": p.value, p.source: p.note} for k, p in recipe.params.items()},
           "steps": {sid: {k: v for k, v in s.items() if k != "settings"} for sid, s in state["steps"].items()},
           "tables": tables, "figures": figs, "final": cmp, "final_line": line}
    write_json(folder / "recipe.json", doc)
    lines = [f"# {recipe.title}", "", f"Recipe `{recipe.name}`, budget `{recipe.budget}`. Paper: {recipe.paper}", "",
             "Scores are CCC (pooled over recordings). Devel scores of selected runs are optimistic (used for "
             "selection); every number is read from the run named in recipe.json (`tables[].rows[].sources`).", ""]
    for t in tables:
        lines += [f"## {t['title']}" + (f" ({t['paper']})" if t.get("paper") else ""), "", markdown_table(t), ""]
        if any(r.get("pending") for r in t.get("rows", [])):
            lines += [YARDSTICK_PENDING, ""]
    if figs:
        lines += ["## Figures", ""]
        for f in figs:
            head = f"{f['title']}" + (f" ({f['paper']})" if f.get("paper") else "")
            lines += [f"![{head}]({f['file']})" if f.get("file") else f"{head}: {f.get('note', 'not drawn')}", ""]
    lines += ["## Choices", "", "| parameter | value | from |", "|---|---|---|"]
    for k, p in recipe.params.items():
        lines.append(f"| {k} | `{json.dumps(p.value, default=str)}` | {p.source}: {p.note} |")
    lines += ["", "## Steps", "", "| step | status | seconds | folder |", "|---|---|---|---|"]
    for sid, s in state["steps"].items():
        sec = secs.get(sid)
        lines.append(f"| {sid} | {s.get('status')} | {'' if sec is None else f'{sec:.0f}'} | {s.get('folder', '')} |")
    subs = [x for r in results.values() if isinstance(r, dict) for x in r.get("submissions", [])]
    if subs:
        lines += ["", "## Submission files", ""] + [f"- {s['name']}: {s['folder']}" for s in subs]
    lines += ["", line, ""]
    atomic_write(folder / "recipe.md", lambda p: p.write_text("\n".join(lines)))
