"""Subject-disjoint k-fold cross-validation (ABAW5 paper, 3.3 and Table 1).

Procedure of :func:`run_cv`:

1. the folds (:func:`affectflow.procedures.folds.cv_folds`): fold 0 is the corpus's own split, folds 1..k−1 take
   even, seeded, subject-disjoint groups of the train subjects as devel (``resplit=True``: all train + devel
   subjects re-split into k groups; ``loso=True``: one fold per subject); each fold is a partition map CSV, so
   no feature data is copied;
2. every fold is an ordinary training run of the config (its ``training.seeds`` are the S seeds per fold; the best
   seed per fold is selected on that fold's devel), run as a sweep over ``data.partitions`` (so folds run in
   parallel through the executor and an interrupted CV resumes);
3. the tables: the selected seed's devel score per fold and target (the layout of the ABAW5 paper's Table 1) with
   the mean ± std over folds, the same for test, and two test predictions, both scored on the test partitions:
   the **best fold** (highest devel selection score; the devel sets of different folds differ, as in the paper)
   and the **average of all folds** (the mean of the k fold runs' test predictions, a decision fusion with equal
   weights, see :mod:`affectflow.procedures.fuse`).

Folder ``<output.runs_dir>/cv-<name>-<time>`` (or ``out``)::

    cv.json              k, seed, mode, the folds (subjects, recording counts, map file, run dir), the scores
    folds/fold-<i>.csv   partition map of fold i (id, partition)
    training/            the sweep over folds: sweep.json, runs/<cell>-<time>/ (ordinary run dirs), results.*
    results.md           Table 1 layout, test per fold, best fold and fold average on test
    average/             the fold average as a fused run folder (evaluate / predict / fuse accept it)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.config import ExperimentConfig
from affectflow.corpus.corpus import Corpus, read_partition_map, write_partition_map
from affectflow.errors import RunError
from affectflow.fsutil import atomic_write, out_folder, write_json
from affectflow.procedures.folds import cv_folds
from affectflow.procedures.fuse import fuse_runs
from affectflow.procedures.sweep import MAIN_METRICS, SweepSpec, load_cells, run_sweep
from affectflow.layout import results_file
from affectflow.runs import Run, new_run_dir
from affectflow.tracking import finish_parent, log_run, safely, start_parent


def run_cv(
    cfg: ExperimentConfig,
    *,
    k: int = 6,
    seed: int = 0,
    loso: bool = False,
    resplit: bool = False,
    out: str | Path | None = None,
    workers: int | None = None,
    threads: int | None = None,
    backend: str | None = None,
    address: str | None = None,
) -> Path:
    """Run (or resume, with the same ``out``) a k-fold cross-validation of ``cfg``; return the CV folder.

    Parameters
    ----------
    cfg:
        The experiment (its seeds are the seeds per fold).
    k, seed:
        Number of folds and the seed of the subject shuffle (ignored with ``loso``).
    loso:
        Leave-one-subject-out: one fold per train + devel subject.
    resplit:
        Re-split all train + devel subjects into k groups instead of keeping the corpus's split as fold 0.
    out:
        The CV folder (default: a new ``<output.runs_dir>/cv-<name>-<time>``); an existing CV folder made with the
        same folds is resumed (finished folds are skipped).
    workers, threads, backend, address:
        Folds trained in parallel, torch threads per fold, executor backend and Ray address (``None``: the
        config's ``execution:`` section, see :func:`affectflow.procedures.sweep.run_sweep`).
    """
    cfg.validate()
    d = cfg.data
    corpus = Corpus(d.corpus, partitions=d.partitions)
    folds = cv_folds(corpus, k, seed, train_partitions=d.train_partitions, devel_partition=d.devel_partition,
                     keep_original=not resplit, loso=loso)
    name = cfg.output.name or f"{cfg.model.type}-{'+'.join(d.features)}"
    if out is None:
        cv_dir = new_run_dir(cfg.output.runs_dir, f"cv-{name}")
    else:
        cv_dir = out_folder(out, what="CV folder", resume_marker="cv.json")
    cv_dir = cv_dir.resolve()
    view = dict(zip(corpus.recordings["id"], corpus.recordings["partition"]))  # the config's own map, if any
    maps = []
    for f in folds:
        f.mapping = {**view, **f.mapping}
        p = cv_dir / "folds" / f"fold-{f.index}.csv"
        if p.is_file():
            if read_partition_map(p) != f.mapping:
                raise RunError(f"CV folder {str(cv_dir)!r} holds other folds (fold {f.index} differs); it was made "
                               "with another k, seed, mode or corpus. Give a new --out.")
        else:
            write_partition_map(p, f.mapping)
        maps.append(str(p))
    base = cfg.to_dict()
    base["data"]["train_partitions"] = [d.train_partitions[0]]
    base["data"]["corpus"] = str(Path(d.corpus).resolve())
    base["output"]["name"] = None
    spec = SweepSpec(name=f"cv-{name}", base=base, grid={"data.partitions": maps}, source=str(cv_dir / "cv.json"))
    info: dict[str, Any] = {
        "format": "affectflow-cv", "k": len(folds), "seed": seed, "loso": loso, "resplit": resplit,
        "mode": "loso" if loso else ("resplit" if resplit else "fold 0 = corpus split"),
        "corpus": str(Path(d.corpus).resolve()), "seeds_per_fold": list(cfg.training.seeds),
        "folds": [{**f.to_dict(), "map": m} for f, m in zip(folds, maps)],
    }
    write_json(cv_dir / "cv.json", info)
    uri = cfg.tracking.mlflow
    parent = safely(lambda: start_parent(cv_dir, uri, kind="cv", name=cv_dir.name,
                                         params={"k": len(folds), "seed": seed, "mode": info["mode"]})) if uri else None
    train_dir = run_sweep(spec, out=cv_dir / "training", workers=workers, threads=threads, backend=backend,
                          address=address, tracking_parent=parent)
    _, cells = load_cells(train_dir)
    for fi, c in zip(info["folds"], cells):
        fi["run"], fi["status"] = c.run_dir, c.status
    failed = [fi["fold"] for fi in info["folds"] if fi["status"] != "finished"]
    if failed:
        info["status"] = f"folds {failed} failed; see {results_file(train_dir)}"
        write_json(cv_dir / "cv.json", info)
        raise RunError(f"Cross-validation folds {failed} failed to train; their errors are in "
                       f"{str(results_file(train_dir))!r}. Run the same command with --out {str(cv_dir)!r} to retry.")
    info.update(summarise_cv(cv_dir, info, cfg))
    info["status"] = "finished"
    write_json(cv_dir / "cv.json", info)
    atomic_write(results_file(cv_dir), lambda p: p.write_text(cv_markdown(info) + "\n"))
    if parent:
        safely(lambda: log_run(cv_dir / "average", uri, parent=parent, name="fold average"))
        safely(lambda: finish_parent(parent, cv_dir, uri))
    return cv_dir


def _main(task: str, mets: dict[str, Any]) -> str:
    for m in MAIN_METRICS.get(task, ["ccc"]):
        if m in mets:
            return m
    return next(iter(k for k in mets if k != "n"))


def summarise_cv(cv_dir: Path, info: dict[str, Any], cfg: ExperimentConfig) -> dict[str, Any]:
    """Per fold and target scores, mean ± std over folds, best fold and the fold average on test."""
    d = cfg.data
    metrics = [Run(fi["run"]).metrics() for fi in info["folds"]]
    task = metrics[0].get("task", "continuous")
    per_fold: dict[str, Any] = {}
    for part in [d.devel_partition, *d.test_partitions]:
        per_fold[part] = {}
        for target in d.targets:
            mets = metrics[0]["best"][part][target]
            metric = _main(task, mets)
            vals = [m["best"][part][target][metric] for m in metrics]
            per_fold[part][target] = {"metric": metric, "folds": vals, "mean": float(np.nanmean(vals)),
                                      "std": float(np.nanstd(vals))}
    selection = [m["selection"]["per_seed"][str(m["selection"]["best_seed"])] for m in metrics]
    best_fold = int(np.nanargmax(np.where(np.isfinite(selection), selection, -np.inf)))
    best_test = {part: metrics[best_fold]["best"][part] for part in d.test_partitions}
    runs = [fi["run"] for fi in info["folds"]]
    avg_dir = cv_dir / "average"
    if (avg_dir / "fusion.json").is_file():
        fused = json.loads((avg_dir / "fusion.json").read_text())
    else:
        fused_dir = fuse_runs(runs, method="mean", out=avg_dir, partitions=list(d.test_partitions),
                              select_partition=None)
        fused = json.loads((fused_dir / "fusion.json").read_text())
    avg_test = {part: fused["scores"]["fused"][part] for part in d.test_partitions}
    return {"task": task, "per_fold": per_fold, "selection_per_fold": selection, "best_fold": best_fold,
            "test_best_fold": best_test, "test_fold_average": avg_test, "average_run": str(avg_dir)}


def cv_markdown(info: dict[str, Any]) -> str:
    """The CV report: Table 1 layout (devel), test per fold, and the two test predictions."""
    k = info["k"]
    pf = info["per_fold"]
    parts = list(pf)
    lines = [f"Cross-validation: {k} subject-disjoint folds ({info['mode']}; shuffle seed {info['seed']}); "
             f"{len(info['seeds_per_fold'])} seed(s) per fold, the best per fold selected on that fold's devel "
             "(its devel scores are optimistic).", ""]
    for part in parts:
        metric = next(iter(pf[part].values()))["metric"]
        title = "validation (each fold's own devel)" if part == parts[0] else f"{part} (each fold's selected seed)"
        lines += [f"{metric.upper() if metric == 'ccc' else metric} on {title}:", "",
                  "| target | " + " | ".join(f"Fold {i}" for i in range(k)) + " | mean ± std |",
                  "|---|" + "---|" * (k + 1)]
        for target, v in pf[part].items():
            lines.append(f"| {target} | " + " | ".join(f"{x:.4f}" for x in v["folds"]) +
                         f" | {v['mean']:.4f} ± {v['std']:.4f} |")
        lines.append("")
    lines += [f"Test predictions (best fold = fold {info['best_fold']}, by devel selection score; average = mean of "
              f"all {k} folds' predictions):", "", "| partition | target | metric | best fold | average of folds |",
              "|---|---|---|---|---|"]
    task = info.get("task", "continuous")
    for part, targets in info["test_best_fold"].items():
        for target, mets in targets.items():
            metric = _main(task, mets)
            avg = info["test_fold_average"][part].get(target, {}).get(metric, float("nan"))
            lines.append(f"| {part} | {target} | {metric} | {mets[metric]:.4f} | {avg:.4f} |")
    return "\n".join(lines)
