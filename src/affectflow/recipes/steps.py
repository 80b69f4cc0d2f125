"""The step kinds of a recipe: each wraps one existing procedure and returns a JSON-able result.

A step kind is a :class:`StepKind` subclass registered in :data:`STEP_KINDS` (see :mod:`affectflow.recipes` for how
to declare a new one). ``run(ctx, settings)`` gets the step's settings with every ``$param`` and ``@step`` reference
already replaced, works inside ``ctx.folder`` (the step's own folder: a rerun with the same settings and inputs
continues there) and returns its result. Results that name runs use one shape, so any step can read any other's::

    {"runs": [{"label": "acoustic|arousal", "params": {"data.features": ["acoustic"], "data.targets": ["arousal"]},
               "run": "/abs/run/dir", "devel": 0.61}, ...]}

``devel`` is the run's selection score on its devel partition (the trained run's selected seed; for fused and
personalised folders the mean CCC over targets of its devel predictions): steps select on it, never on test.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import itertools
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from affectflow.config import (
    config_from_dict,
    default_config_dict,
    merge_config,
    nested_override as _nested,
    parse_override,
    preset_dict,
)
from affectflow.corpus.corpus import Corpus, write_json
from affectflow.errors import AffectflowError, ConfigError, RunError
from affectflow.execution import get_executor
from affectflow.experiment import check_buildable
from affectflow.predictions import Predictions
from affectflow.procedures.cv import run_cv
from affectflow.procedures.fuse import fuse_runs, run_partition_predictions
from affectflow.procedures.latefusion import staged_late_fusion
from affectflow.procedures.personalise import personalise
from affectflow.procedures.sweep import SweepSpec, load_cells, run_sweep
from affectflow.runs import Run
from affectflow.submit import FORMATS, write_submission


@dataclass
class StepContext:
    """Where and how a step runs: its folder, the corpus, and the executor settings for its inner jobs."""

    folder: Path
    corpus: str
    backend: str = "serial"
    workers: int = 1
    threads: int = 1
    progress: bool = False


class StepKind:
    """Base class of step kinds: the keys a step may have, which are required, a cost estimate and ``run``."""

    keys: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    doc: str = ""

    def validate(self, step: Any, settings: dict[str, Any]) -> None:
        """Check ``settings`` (parameters substituted, step references still ``@...`` strings) before any work."""

    def units(self, settings: dict[str, Any]) -> int:
        """Rough cost in training runs (for the ETA)."""
        return 0

    def preflight(self, settings: dict[str, Any], corpus: Any) -> None:
        """Checks that need the corpus (e.g. that every model builds on its feature widths), run for every step
        whose settings need no other step's result, before any step runs."""

    def run(self, ctx: StepContext, settings: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


STEP_KINDS: dict[str, StepKind] = {}


def register_step(name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`StepKind` subclass under ``name``."""

    def deco(cls: type) -> type:
        STEP_KINDS[name] = cls()
        return cls

    return deco


# ---------------------------------------------------------------------------- helpers
def _is_ref(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("@")


def base_config(settings: dict[str, Any], ctx: StepContext | None = None) -> dict[str, Any]:
    """defaults ← ``preset`` ← ``config`` ← ``set`` overrides; corpus, runs folder, threads and plots from ``ctx``."""

    cfg = default_config_dict()
    if settings.get("preset"):
        cfg = merge_config(cfg, preset_dict(str(settings["preset"])))
    if settings.get("config"):
        if not isinstance(settings["config"], dict):
            raise ConfigError(f"`config:` must be a mapping in the config's YAML shape, got {settings['config']!r}.")
        cfg = merge_config(cfg, settings["config"])
    for o in settings.get("set") or []:
        cfg = merge_config(cfg, parse_override(str(o)))
    if ctx is not None:
        cfg["data"]["corpus"] = str(Path(ctx.corpus).resolve())
        cfg["output"]["runs_dir"] = str(ctx.folder / "runs")
        cfg["output"]["plots"] = False
        cfg["training"]["num_threads"] = ctx.threads
    return cfg


def _check_config(settings: dict[str, Any], what: str) -> None:
    """Validate the config a step would train with (``$corpus`` stands in for the corpus)."""
    if any(_is_ref(v) for v in (settings.get("preset"), settings.get("config"))):
        return
    cfg = base_config(settings)
    cfg["data"]["corpus"] = cfg["data"].get("corpus") or "corpus"
    try:
        config_from_dict(cfg).validate()
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None


def check_builds(settings: dict[str, Any], corpus: Any, what: str, cells: list[dict[str, Any]] | None = None) -> None:
    """Build every cell's model once on the corpus's feature widths (no data read); one ConfigError otherwise."""
    base = base_config(settings)
    base["data"]["corpus"] = str(corpus.path)
    for cell in cells or [{}]:
        cfg = base
        for k, v in cell.items():
            cfg = merge_config(cfg, _nested(k, v))
        try:
            ec = config_from_dict(cfg).validate()
            for name in ec.data.features:
                corpus.feature_set(name)
            check_buildable(ec, corpus)
        except AffectflowError as e:
            label = f" (cell {_label(cell)})" if cell else ""
            raise ConfigError(f"{what}{label}: {e}") from None


def run_devel_score(run_dir: str | Path) -> float:
    """Selection score on devel of a trained run, fused run or personalisation folder (higher is better)."""
    run = Run(run_dir)
    m = run.metrics()
    sel = m.get("selection")
    if sel and sel.get("best_seed") is not None:
        return float(sel["per_seed"][str(sel["best_seed"])])
    devel = run.config_dict["data"]["devel_partition"]
    vals = [v.get("ccc", np.nan) for v in m["best"].get(devel, {}).values()]
    return float(np.nanmean(vals)) if vals and np.isfinite(vals).any() else float("nan")


def _label(params: dict[str, Any]) -> str:
    parts = []
    for v in params.values():
        parts.append("+".join(map(str, v)) if isinstance(v, list) else str(v))
    return "|".join(parts) or "run"


def group_of(entry: dict[str, Any], per: str | None) -> str:
    """The group of a run entry by the parameter ``per`` (e.g. ``data.targets``; ``None``: one group ``all``)."""
    if not per:
        return "all"
    v = entry.get("params", {}).get(per)
    if v is None:
        return "all"
    return "+".join(map(str, v)) if isinstance(v, list) else str(v)


def select_runs(runs: list[dict[str, Any]], per: str | None = "data.targets", top: int | None = 1) -> dict[str, list]:
    """Group → the ``top`` finished runs with the best devel score (descending; ``top`` None: all)."""
    groups: dict[str, list] = {}
    for r in runs:
        if r.get("status", "finished") != "finished" or not np.isfinite(r.get("devel", np.nan)):
            continue
        groups.setdefault(group_of(r, per), []).append(r)
    return {g: sorted(rs, key=lambda r: -r["devel"])[: top or None] for g, rs in groups.items()}


def runs_arg(value: Any, what: str) -> list[dict[str, Any]]:
    if isinstance(value, list) and value and all(isinstance(v, dict) and "runs" in v for v in value):
        value = [r for v in value for r in v["runs"]]  # several step results
    if isinstance(value, dict) and "runs" in value:
        value = value["runs"]
    if isinstance(value, dict) and "run" in value:
        value = [value]
    if isinstance(value, str):
        value = [{"run": value, "params": {}}]
    if not isinstance(value, list) or not all(isinstance(r, (dict, str)) for r in value):
        raise ConfigError(f"{what} must be a step result with runs (e.g. @early) or a list of run folders.")
    out = []
    for r in value:
        r = {"run": r, "params": {}} if isinstance(r, str) else dict(r)
        r.setdefault("params", {})
        r.setdefault("label", _label(r["params"]) if r["params"] else Path(r["run"]).name)
        if "devel" not in r:
            r["devel"] = run_devel_score(r["run"])
        out.append(r)
    return out


# ---------------------------------------------------------------------------- sweep / train
class _CellSweep:
    """A sweep whose cells are given as a list (``cells``, dotted key → value) times a product ``grid``."""

    @staticmethod
    def spec(name: str, base: dict[str, Any], cells: list[dict[str, Any]], grid: dict[str, list]) -> Any:
        product = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())] if grid else [{}]
        all_cells = [{**c, **g} for c in (cells or [{}]) for g in product]

        class Spec(SweepSpec):
            def cells(self) -> list[dict[str, Any]]:
                return [dict(c) for c in all_cells]

        return Spec(name=name, base=base, grid={"cells": all_cells})


def _grid(settings: dict[str, Any]) -> dict[str, list]:
    grid = dict(settings.get("grid") or {})
    if settings.get("each_feature") is not None:
        grid = {"data.features": [[f] for f in settings["each_feature"]], **grid}
    return grid


def run_sweep_step(ctx: StepContext, settings: dict[str, Any], name: str) -> dict[str, Any]:
    """Train the step's cells as a sweep in ``<folder>/sweep`` (resumable) and return ``{"runs": [...]}``."""
    base = base_config(settings, ctx)
    spec = _CellSweep.spec(name, base, list(settings.get("cells") or []), _grid(settings))
    out = run_sweep(spec, out=ctx.folder / "sweep", workers=ctx.workers, threads=ctx.threads, backend=ctx.backend)
    _, cells = load_cells(out)
    failed = [f"{c.id} ({_label(c.params)}): {(c.error or '').splitlines()[0] if c.error else c.status}"
              for c in cells if c.status != "finished"]
    if failed:
        raise RunError(f"{len(failed)} of {len(cells)} training runs of step {name!r} failed: {failed[:3]}. Their "
                       f"folders are under {str(out)!r}; run the recipe again to retry them.")
    runs = [{"label": _label(c.params), "params": c.params, "run": c.run_dir, "status": c.status,
             "devel": run_devel_score(c.run_dir)} for c in cells]
    return {"runs": runs, "sweep": str(out)}


@register_step("sweep")
class SweepStep(StepKind):
    """A grid of ordinary training runs (:mod:`affectflow.procedures.sweep`): ``preset``, ``config``, ``set``, then
    ``cells`` (a list of ``{dotted key: value}``, e.g. from a ``combinations`` or ``select`` step) times ``grid``
    (dotted key → list); ``each_feature: [a, b]`` adds ``data.features: [[a], [b]]`` to the grid."""

    keys = ("preset", "config", "set", "grid", "cells", "each_feature")

    def validate(self, step, settings):
        if not any(settings.get(k) for k in ("grid", "cells", "each_feature")):
            raise ConfigError(f"Sweep step {step.id!r} needs `grid:`, `cells:` or `each_feature:`.")
        g = settings.get("grid") or {}
        if not _is_ref(g) and (not isinstance(g, dict) or any(not isinstance(v, list) or not v for v in g.values())):
            raise ConfigError(f"`grid:` of step {step.id!r} maps dotted config keys to non-empty lists; got {g!r}.")
        _check_config(settings, f"Step {step.id!r}")

    def units(self, settings):
        cells = settings.get("cells") or [{}]
        n_cells = 4 if _is_ref(cells) else len(cells)  # not known before the step it reads has run: a guess
        grid = settings.get("grid") or {}
        grid = {} if _is_ref(grid) else _grid({**settings, "grid": grid}) if not _is_ref(
            settings.get("each_feature")) else grid
        n = int(np.prod([len(v) if isinstance(v, list) else 1 for v in grid.values()])) if grid else 1
        return max(1, n_cells * n)

    def preflight(self, settings, corpus):
        grid = _grid(settings)
        product = [dict(zip(grid, v)) for v in itertools.product(*grid.values())] if grid else [{}]
        cells = [{**c, **g} for c in (settings.get("cells") or [{}]) for g in product]
        check_builds(settings, corpus, "Sweep step", cells)

    def run(self, ctx, settings):
        return run_sweep_step(ctx, settings, ctx.folder.name)


@register_step("train")
class TrainStep(StepKind):
    """One ordinary training run (``preset``, ``config``, ``set``); result ``{"run": dir, "runs": [that run]}``;
    ``columns`` (e.g. ``{Feature: eGeMAPS, M: A, Model: Self-Attn+LSTM}``) label its row in tables."""

    keys = ("preset", "config", "set", "columns")

    def validate(self, step, settings):
        _check_config(settings, f"Step {step.id!r}")

    def units(self, settings):
        return 1

    def preflight(self, settings, corpus):
        check_builds({k: v for k, v in settings.items() if k != "columns"}, corpus, "Train step")

    def run(self, ctx, settings):
        res = run_sweep_step(ctx, {k: v for k, v in settings.items() if k != "columns"} | {"cells": [{}]},
                             ctx.folder.name)
        r = res["runs"][0]
        r["label"] = ctx.folder.name.rsplit("-", 1)[0]
        r["columns"] = dict(settings.get("columns") or {})
        return {"run": r["run"], "devel": r["devel"], "runs": [r]}


# ---------------------------------------------------------------------------- choosing runs and combinations
@register_step("select")
class SelectStep(StepKind):
    """The ``top`` runs per group (``per``, default ``data.targets``) of ``source`` by devel score; result ``runs``
    and ``cells`` (their sweep parameters, for a following sweep's ``cells``)."""

    keys = ("source", "per", "top")
    required = ("source",)

    def run(self, ctx, settings):
        runs = runs_arg(settings["source"], "`source`")
        chosen = select_runs(runs, settings.get("per", "data.targets"), settings.get("top", 1))
        flat = [r for g in sorted(chosen) for r in chosen[g]]
        return {"runs": flat, "cells": [r["params"] for r in flat]}


@register_step("combinations")
class CombinationsStep(StepKind):
    """Early-fusion combinations of the best feature sets (MuSe 2023 Table 3): per group (``per``, default
    ``data.targets``) the ``top`` single-set runs of ``source`` by devel score, and every combination of ``sizes``
    (default ``[2, 3]``) of their sets. Result ``cells`` (``data.features`` + the group's key) and ``ranking``."""

    keys = ("source", "per", "top", "sizes")
    required = ("source",)

    def validate(self, step, settings):
        sizes = settings.get("sizes", [2, 3])
        if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 2 for s in sizes):
            raise ConfigError(f"`sizes:` of step {step.id!r} must be a list of integers >= 2, got {sizes!r}.")

    def run(self, ctx, settings):
        per = settings.get("per", "data.targets")
        runs = runs_arg(settings["source"], "`source`")
        ranked = select_runs(runs, per, None)
        top = int(settings.get("top", 3))
        canon: list[str] = []  # the sets in the order of the source runs (the recipe's order), so that a combination
        for r in runs:         # is named the same for every dimension
            for f in r["params"].get("data.features", []):
                if f not in canon:
                    canon.append(f)
        cells, ranking = [], {}
        for g, rs in sorted(ranked.items()):
            sets = []
            for r in rs:
                for f in r["params"].get("data.features", []):
                    if f not in sets:
                        sets.append(f)
            ranking[g] = [{"features": r["params"].get("data.features"), "devel": r["devel"]} for r in rs]
            best = sets[:top]
            key_val = rs[0]["params"].get(per) if per else None
            for size in settings.get("sizes", [2, 3]):
                for combo in itertools.combinations(best, size):
                    cell = {"data.features": sorted(combo, key=canon.index)}
                    if per and key_val is not None:
                        cell[per] = key_val
                    cells.append(cell)
        if not cells:
            raise RunError("No feature-set combinations: fewer finished single-set runs than the smallest size.")
        return {"cells": cells, "ranking": ranking}


# ---------------------------------------------------------------------------- personalise / fuse
def _personalise_job(job: dict[str, Any]) -> dict[str, Any]:
    try:
        folder = personalise(job["run"], **job["options"])
        return {"ok": True, "folder": str(folder)}
    except AffectflowError as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


@register_step("personalise")
class PersonaliseStep(StepKind):
    """Per-subject fine-tuning (:func:`affectflow.procedures.personalise.personalise`) of every run of ``source``
    (optionally only the ``select: {per, top}`` best by devel), with ``options`` (personalise's keyword
    arguments). Result ``runs``: the personalisation folders, with the base run and its parameters."""

    keys = ("source", "select", "options")
    required = ("source",)

    def validate(self, step, settings):
        allowed = set(inspect.signature(personalise).parameters) - {"run_path", "corpus", "progress"}
        bad = sorted(set(settings.get("options") or {}) - allowed)
        if bad:
            raise ConfigError(f"`options:` of step {step.id!r} has unknown personalise option(s) {bad}; known: "
                              f"{sorted(allowed)}.")

    def units(self, settings):
        return 2

    def run(self, ctx, settings):
        runs = runs_arg(settings["source"], "`source`")
        sel = settings.get("select")
        if sel:
            chosen = select_runs(runs, sel.get("per", "data.targets"), sel.get("top", 1))
            runs = [r for g in sorted(chosen) for r in chosen[g]]
        done_file = ctx.folder / "done.json"
        done = json.loads(done_file.read_text()) if done_file.is_file() else {}
        opts = dict(settings.get("options") or {})
        opts.setdefault("device", "cpu")
        todo = [r for r in runs if r["run"] not in done]
        jobs = [{"run": r["run"], "options": opts} for r in todo]
        if jobs:
            ex = get_executor(ctx.backend, workers=min(ctx.workers, len(jobs)), threads=ctx.threads)
            try:
                for i, res in ex.map(_personalise_job, jobs):
                    if not res["ok"]:
                        raise RunError(f"Personalising {todo[i]['run']!r} failed: {res['error']}")
                    done[todo[i]["run"]] = res["folder"]
                    write_json(done_file, done)
            finally:
                ex.close()
        out = [{"label": r["label"], "params": r["params"], "base": r["run"], "base_devel": r["devel"],
                "run": done[r["run"]], "devel": run_devel_score(done[r["run"]])} for r in runs]
        return {"runs": out}


@register_step("fuse")
class FuseStep(StepKind):
    """Decision fusion (:func:`affectflow.procedures.fuse.fuse_runs`) per group (``per``, default
    ``data.targets``) of the ``top`` runs of ``source`` by devel score (default all); ``method`` (weighted / mean),
    weight-grid ``step`` and ``weights`` (``per-target``, default, or ``shared``: one weight vector for all targets,
    MER 2023 Eq. 10-11). Result ``runs`` (one fused run per group, with its ``members``)."""

    keys = ("source", "per", "top", "method", "step", "weights")

    def validate(self, step, settings):
        if settings.get("weights", "per-target") not in ("per-target", "shared"):
            raise ConfigError(f"`weights:` of step {step.id!r} must be per-target or shared, got "
                              f"{settings['weights']!r}.")
    required = ("source",)

    def run(self, ctx, settings):
        per = settings.get("per", "data.targets")
        runs = runs_arg(settings["source"], "`source`")
        chosen = select_runs(runs, per, settings.get("top"))
        out = []
        for g, rs in sorted(chosen.items()):
            dest = ctx.folder / f"fused-{g.replace('+', '_')}"
            if not (dest / "fusion.json").is_file():
                if dest.exists():
                    shutil.rmtree(dest)  # an interrupted fusion of this step's own folder: redo it
                if len(rs) == 1:
                    out.append({**rs[0], "members": [rs[0]["run"]], "label": f"{g} (single member)"})
                    continue
                method = settings.get("method", "weighted")
                fuse_runs([r["run"] for r in rs], method=method, step=float(settings.get("step", 0.05)),
                          per_target=settings.get("weights", "per-target") != "shared",
                          select_partition="devel" if method == "weighted" else None, out=dest)
            params = {per: rs[0]["params"].get(per)} if per and rs[0]["params"].get(per) is not None else {}
            out.append({"label": f"{g}: " + " + ".join(r["label"] for r in rs), "params": params, "run": str(dest),
                        "members": [r["run"] for r in rs], "member_labels": [r["label"] for r in rs],
                        "devel": run_devel_score(dest)})
        return {"runs": out}


# ---------------------------------------------------------------------------- late fusion / cv
def prediction_name(run: str) -> str:
    """A corpus-wide unique feature-set name for a run's predictions (``pred_<run folder>_<hash of its path>``)."""
    p = str(Path(run).resolve())
    return "pred_" + re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(p).name)[:40] + "_" + hashlib.sha256(p.encode()).hexdigest()[:8]


@register_step("late_fusion")
class LateFusionStep(StepKind):
    """Staged late fusion (:func:`affectflow.procedures.latefusion.staged_late_fusion`): for every entry of
    ``combinations`` (a list of ``{label, runs: [@a.run, @b.run, ...], <table columns>...}``) the cross-fitted
    prediction features of its runs, then the BiLSTM fusion run; ``folds``, ``seed`` and ``set`` (overrides of the
    fusion runs' config). Combinations run one after another, so each member is cross-fitted once and reused.
    Result ``runs`` (one fusion run per combination, ``columns`` = the entry's other keys)."""

    keys = ("combinations", "folds", "seed", "set")
    required = ("combinations",)

    def validate(self, step, settings):
        combos = settings["combinations"]
        if not isinstance(combos, list) or not combos:
            raise ConfigError(f"`combinations:` of late-fusion step {step.id!r} is a list of {{label, runs}}.")
        for c in combos:
            if not isinstance(c, dict) or "label" not in c or "runs" not in c:
                raise ConfigError(f"Each combination of step {step.id!r} needs `label:` and `runs:`; got {c!r}.")
            if not _is_ref(c["runs"]) and (not isinstance(c["runs"], list) or len(c["runs"]) < 2):
                raise ConfigError(f"Combination {c['label']!r} of step {step.id!r} lists two or more runs.")

    def units(self, settings):
        return len(settings["combinations"]) + int(settings.get("folds", 5))

    def run(self, ctx, settings):
        done_file = ctx.folder / "done.json"
        done = json.loads(done_file.read_text()) if done_file.is_file() else {}
        out = []
        for c in settings["combinations"]:
            label, members = str(c["label"]), [str(r) for r in c["runs"]]
            if label not in done:
                sets = [*(settings.get("set") or []), f"output.runs_dir={ctx.folder / 'runs'}", "output.plots=false",
                        f"training.num_threads={ctx.threads}", f"output.name=late-{label.replace('+', '_')}"]
                run = staged_late_fusion(members, folds=int(settings.get("folds", 5)), seed=int(settings.get("seed", 0)),
                                         overrides=sets, names=[prediction_name(r) for r in members],
                                         workers=ctx.workers, threads=ctx.threads, backend=ctx.backend)
                done[label] = str(run)
                write_json(done_file, done)
            cols = {k: v for k, v in c.items() if k not in ("label", "runs")}
            out.append({"label": label, "params": {}, "run": done[label], "members": members, "columns": cols,
                        "devel": run_devel_score(done[label])})
        return {"runs": out}


@register_step("cv")
class CVStep(StepKind):
    """Subject-disjoint k-fold cross-validation (:func:`affectflow.procedures.cv.run_cv`; fold 0 = the corpus's
    split) of ``preset`` / ``config`` / ``set`` with ``folds`` (k) and ``seed``; the config's seeds are the seeds
    per fold. Result ``cv`` (folder), ``runs`` (one per fold, ``params: {fold: i}``) and ``best_fold``."""

    keys = ("preset", "config", "set", "folds", "seed")

    def validate(self, step, settings):
        _check_config(settings, f"Step {step.id!r}")

    def units(self, settings):
        return int(settings.get("folds", 6))

    def preflight(self, settings, corpus):
        check_builds({k: v for k, v in settings.items() if k not in ("folds", "seed")}, corpus, "CV step")

    def run(self, ctx, settings):
        cfg = config_from_dict(base_config(settings, ctx)).validate()
        cv_dir = run_cv(cfg, k=int(settings.get("folds", 6)), seed=int(settings.get("seed", 0)),
                        out=ctx.folder / "cv", workers=ctx.workers, threads=ctx.threads, backend=ctx.backend)
        info = json.loads((cv_dir / "cv.json").read_text())
        runs = [{"label": f"fold {f['fold']}", "params": {"fold": f["fold"]}, "run": f["run"],
                 "devel": run_devel_score(f["run"])} for f in info["folds"]]
        mean_devel = float(np.nanmean([r["devel"] for r in runs]))
        avg = {"label": f"mean of {len(runs)} folds", "params": {}, "run": info["average_run"], "devel": mean_devel,
               "members": [r["run"] for r in runs], "devel_note": "mean of the folds' devel scores"}
        return {"cv": str(cv_dir), "runs": runs, "best_fold": info["best_fold"], "average": info["average_run"],
                "average_result": {"runs": [avg]}}


# ---------------------------------------------------------------------------- submission
def merged_predictions(runs: list[str], partition: str) -> Any:
    """The saved predictions of ``runs`` on ``partition``, joined target-wise (runs of different targets, e.g. one
    fused run per dimension) into one :class:`~affectflow.predictions.Predictions`."""
    preds = [run_partition_predictions(r, partition) for r in runs]
    if len(preds) == 1:
        return preds[0]
    first = preds[0]
    if not first.continuous:
        return _merged_samples(preds, runs, partition)
    specs, values, labels = list(first.specs), [np.asarray(v) for v in first.values], list(first.labels or [])
    for p in preds[1:]:
        if p.recordings != first.recordings or any(not np.allclose(a, b) for a, b in zip(p.times, first.times)):
            raise RunError(f"Runs {runs} did not predict the same recordings / steps of {partition!r}; they cannot be "
                           "joined into one submission.")
        dup = [s.name for s in p.specs if s.name in {x.name for x in specs}]
        if dup:
            raise RunError(f"Runs {runs} predict target(s) {dup} twice; give one run per target.")
        specs += list(p.specs)
        values = [np.concatenate([a, np.asarray(b)], axis=1) for a, b in zip(values, p.values)]
        if p.labels is not None and labels:
            labels = [None if a is None or b is None else np.concatenate([np.asarray(a), np.asarray(b)], axis=1)
                      for a, b in zip(labels, p.labels)]
    return Predictions(first.task, specs, list(first.recordings), times=list(first.times), values=values,
                       labels=labels or None)


def _merged_samples(preds: list[Any], runs: list[str], partition: str) -> Any:
    """Segment / clip predictions of runs of different targets joined column-wise (same samples, any order)."""
    first = preds[0]
    keys = [k if isinstance(k, str) else tuple(k) for k in first.keys]
    specs, outputs, labels = list(first.specs), [np.asarray(first.outputs)], [first.label_matrix()]
    for p, run in zip(preds[1:], runs[1:]):
        index = {k if isinstance(k, str) else tuple(k): i for i, k in enumerate(p.keys)}
        if p.task != first.task or set(index) != set(keys):
            raise RunError(f"Runs {runs} did not predict the same {first.task}s of {partition!r}; they cannot be "
                           "joined into one submission.")
        dup = [s.name for s in p.specs if s.name in {x.name for x in specs}]
        if dup:
            raise RunError(f"Runs {runs} predict target(s) {dup} twice; give one run per target.")
        order = [index[k] for k in keys]
        specs += list(p.specs)
        outputs.append(np.asarray(p.outputs)[order])
        labels.append(p.label_matrix()[order])
    return Predictions(first.task, specs, list(first.recordings), keys=list(first.keys),
                       outputs=np.concatenate(outputs, axis=1), labels=np.concatenate(labels, axis=1))


@register_step("submit")
class SubmitStep(StepKind):
    """Challenge submission files (:func:`affectflow.submit.write_submission`, format ``format``: muse2023 /
    muse2021-sent / abaw / mer2023) from the saved predictions of ``source`` on ``partitions`` (default
    ``[test]``). ``source``: a run, a list of runs of different targets (joined), or a step result with ``runs``;
    with ``best: n`` and a ``cv`` result, fold 0 and the ``n`` other folds with the best devel score (ABAW5) each
    get a submission."""

    keys = ("source", "format", "partitions", "best")
    required = ("source", "format")

    def validate(self, step, settings):
        if settings["format"] not in FORMATS:
            raise ConfigError(f"`format:` of step {step.id!r} must be one of {list(FORMATS)}, got "
                              f"{settings['format']!r}.")

    def run(self, ctx, settings):
        parts = list(settings.get("partitions") or ["test"])
        corpus = Corpus(ctx.corpus)
        src = settings["source"]
        groups: list[tuple[str, list[str]]]
        if isinstance(src, dict) and "cv" in src and settings.get("best") is not None:
            runs = runs_arg(src, "`source`")
            others = sorted(runs[1:], key=lambda r: -r["devel"])[: int(settings["best"])]
            groups = [(r["label"].replace(" ", "-"), [r["run"]]) for r in [runs[0], *others]]
        else:
            runs = runs_arg(src, "`source`")
            groups = [("submission", [r["run"] for r in runs])]
        out = []
        for name, members in groups:
            dest = ctx.folder / name
            if not dest.is_dir():
                write_submission({p: merged_predictions(members, p) for p in parts}, settings["format"], dest,
                                 corpus=corpus)
            out.append({"name": name, "folder": str(dest), "runs": members})
        return {"submissions": out}


def step_kinds_doc() -> str:
    """One line per registered step kind (for ``affectflow recipe show``)."""
    return "\n".join(f"  {k}: {' '.join((v.__class__.__doc__ or '').split())}" for k, v in sorted(STEP_KINDS.items()))

