"""Figures of recipes, written into ``<recipe>/plots/`` with :mod:`affectflow.plots` and linked from ``recipe.md``.

A recipe lists them under ``figures:`` (validated with the rest of the recipe)::

    figures:
      - {id: gains, title: "Per-subject personalisation gains", paper: "3.2.2", kind: subject_gains,
         source: "@personalised"}
      - {id: folds, title: "CCC per fold", paper: "Table 1", kind: table_bars, table: table1,
         options: {panel: Emotion, label: [Method]}}

Kinds (:data:`FIGURE_KINDS`; a kind is a function ``(spec, results, tables) -> (draw, data)``):

``subject_gains``
    ``source``: a ``personalise`` step. Per target, the personalised run with the best devel score (the one of the
    recipe's "best single personalised run" row) and, per test subject, its pooled test CCC before and after
    personalisation from that folder's ``report.json`` (:func:`affectflow.plots.plot_subject_gains`).
``table_bars``
    ``table``: the id of one of the recipe's tables (or a list of ids): the table drawn as grouped bars
    (:func:`affectflow.plots.plot_bar_panels`). Options: ``values`` (the numeric columns to draw; default every
    column whose cells are numbers), ``label`` (the columns naming a series; default the other columns), ``panel``
    (a column whose value splits the rows into panels), ``ylabel`` (default CCC). Linear-yardstick rows are drawn
    as dashed reference marks.

Every figure's numbers go to ``recipe.json`` (``figures[].data``) next to its file, read from the same runs as the
tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from affectflow.errors import ConfigError
from affectflow.layout import plots_folder
from affectflow.plots import plot_bar_panels, plot_subject_gains
from affectflow.recipes.refs import substitute_refs
from affectflow.recipes.tables import best_by_devel, run_targets, step_runs

FIGURE_KEYS = {"id", "title", "paper", "ours", "kind", "source", "table", "options"}
FIGURE_KINDS: dict[str, Callable[..., tuple[Callable[[Path], Any], Any]]] = {}


def figure_kind(name: str):
    def deco(fn):
        FIGURE_KINDS[name] = fn
        return fn

    return deco


def validate_figure(f: Any, where: str, table_ids: set[str]) -> None:
    """One ConfigError paragraph for a malformed ``figures:`` entry (before any work)."""
    if not isinstance(f, dict) or set(f) - FIGURE_KEYS or "kind" not in f or "id" not in f:
        raise ConfigError(f"Each figure of recipe {where} is a mapping with `id:` and `kind:` (and title, paper, "
                          f"source, table, options); got {f!r}.")
    if f["kind"] not in FIGURE_KINDS:
        raise ConfigError(f"Figure {f['id']!r} of recipe {where} has unknown kind {f['kind']!r}; known: "
                          f"{sorted(FIGURE_KINDS)}.")
    need = "table" if f["kind"] == "table_bars" else "source"
    if need not in f:
        raise ConfigError(f"Figure {f['id']!r} ({f['kind']}) of recipe {where} needs `{need}:`.")
    for t in ([f["table"]] if isinstance(f.get("table"), str) else f.get("table") or []):
        if t not in table_ids:
            raise ConfigError(f"Figure {f['id']!r} of recipe {where} draws table {t!r}, which is not a table of the "
                              f"recipe; its tables: {sorted(table_ids)}.")


def _num(cell: Any) -> float:
    try:
        return float(cell)
    except (TypeError, ValueError):
        return float("nan")


@figure_kind("subject_gains")
def subject_gains(spec: dict[str, Any], source: Any, tables: dict[str, Any]):
    runs = step_runs(source)
    data: dict[str, Any] = {}
    for t in run_targets(runs) if runs else []:
        best = best_by_devel(runs, t)
        if best is None:
            continue
        rep = json.loads((Path(best["run"]) / "report.json").read_text())
        test = [p for p in rep["test_partitions"] if p in rep["partitions"]][-1]
        subj = rep["partitions"][test]["per_subject"]
        data[t] = {"run": best["run"], "label": best.get("label", ""), "partition": test,
                   "subjects": {s: [v["before"][t]["ccc"], v["after"][t]["ccc"]] for s, v in sorted(subj.items())}}
    per_target = {f"{t} ({d['label']})": [(s, b, a) for s, (b, a) in d["subjects"].items()] for t, d in data.items()}
    return (lambda path: plot_subject_gains(per_target, path, title=spec.get("title", ""))), data


@figure_kind("table_bars")
def table_bars(spec: dict[str, Any], source: Any, tables: dict[str, Any]):
    opts = spec.get("options") or {}
    ids = [spec["table"]] if isinstance(spec["table"], str) else list(spec["table"])
    panels = []
    for tid in ids:
        t = tables[tid]
        cols = list(t.get("columns") or [])
        if not cols:
            continue
        rows = [list(r["cells"]) + [""] * (len(cols) - len(r["cells"])) for r in t["rows"]]
        plain = [r for r, raw in zip(rows, t["rows"]) if not raw.get("yardstick") and not raw.get("ceiling")]
        values = opts.get("values") or [c for i, c in enumerate(cols)
                                        if any(np.isfinite(_num(r[i])) for r in plain)]
        panel_col = opts.get("panel")
        label_cols = opts.get("label") or [c for c in cols if c not in values and c != panel_col]
        vi = [cols.index(c) for c in values]
        li = [cols.index(c) for c in label_cols if c in cols]
        pi = cols.index(panel_col) if panel_col in cols else None
        keys = list(dict.fromkeys(r[pi] for r in rows)) if pi is not None else [None]
        for key in keys:
            mine = [(r, raw) for r, raw in zip(rows, t["rows"]) if pi is None or r[pi] == key]
            series, refs = {}, {}
            for r, raw in mine:
                name = " ".join(str(r[i]) for i in li if str(r[i])).strip() or str(r[0])
                vals = [_num(r[i]) for i in vi]
                if raw.get("ceiling"):
                    continue
                dest = refs if raw.get("yardstick") else series
                base, k = name, 2
                while name in dest:  # two rows with the same label columns stay two series
                    name, k = f"{base} ({k})", k + 1
                dest[name] = vals
            title = t.get("title", tid) + (f": {key}" if key is not None else "")
            panels.append({"title": title, "groups": values, "series": series, "references": refs})
    draw = lambda path: plot_bar_panels(panels, path, title=spec.get("title", ""),  # noqa: E731
                                        ylabel=str(opts.get("ylabel", "CCC")))
    return draw, {"panels": panels}


def build_figures(recipe: Any, results: dict[str, Any], tables: list[dict[str, Any]], folder: Path) -> list[dict]:
    """Draw every figure of ``recipe`` into ``<folder>/plots/<id>.png``; a figure that cannot be drawn is reported
    (``note``), never fatal (the finished steps and tables are kept)."""
    by_id = {t.get("id"): t for t in tables}
    out = []
    for spec in getattr(recipe, "figures", []) or []:
        entry = {"id": spec["id"], "title": spec.get("title", ""), "kind": spec["kind"],
                 "paper": spec.get("paper") or (f"ours: {spec['ours']}" if spec.get("ours") else "")}
        try:
            src = substitute_refs(spec.get("source"), results) if spec.get("source") is not None else None
            if isinstance(src, dict) and src.get("skipped"):
                entry["note"] = "step skipped"
            else:
                draw, data = FIGURE_KINDS[spec["kind"]](spec, src, by_id)
                path = draw(plots_folder(folder) / f"{spec['id']}.png")
                entry.update(file=str(Path(path).relative_to(folder)), data=data)
        except ImportError as e:  # matplotlib missing: the figure is reported, not drawn
            entry["note"] = f"not drawn: {e}"
        except Exception as e:  # noqa: BLE001 - a figure never loses the finished steps
            entry["note"] = f"not drawn: {type(e).__name__}: {e}"
        out.append(entry)
    return out
