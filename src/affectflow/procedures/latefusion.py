"""Staged late fusion (MuSe 2021 stress paper, Fig. 1–2, Eq. 12–14 and 19): unimodal runs first, then a BiLSTM
trained on their predictions.

Stage 1 is any set of ordinary (continuous) runs, e.g. one per modality. Stage 2 trains through the ordinary train
path: each unimodal run's predictions become a **feature set of the corpus**, ``pred_<run>`` (one column per
target, on the label grid), and the fusion is an ordinary run with ``data.features = [pred_<run1>, pred_<run2>,
…]`` and model ``lstm`` with ``d_model: null`` (plain concatenation, Eq. 12 / 19), a bidirectional LSTM (Eq. 13)
and ``d_fc: null`` (one linear layer, Eq. 14).

**Out-of-fold train inputs (cross-fitting).** A unimodal model's predictions on its own train recordings are far
better than on unseen ones, so a fusion trained on them learns to trust the wrong run and fails on devel/test.
The train inputs are therefore produced out of fold: the train subjects are split (seeded) into K subject-disjoint
groups; for each group a copy of the unimodal run's config is trained on the other groups (same devel partition for
early stopping, same seeds) — an ordinary run over a partition map in which the group is the partition
``heldout`` — and predicts the held-out group. Devel and test inputs come from the unimodal run itself (trained on
all of train), as at deployment. Every train input is thus a prediction for a subject the predicting model never
saw, like the devel and test inputs. The K fold runs per unimodal run live in ``<run>/crossfit/k<K>-seed<S>/`` (a
sweep folder: resumable, parallel through the executor).

Python API::

    from affectflow.procedures.latefusion import staged_late_fusion
    run_dir = staged_late_fusion(["runs/audio", "runs/video", "runs/physio"], folds=5, seed=0)

CLI: ``affectflow late-fusion RUN RUN ... [--folds 5] [--seed 0] [--set key=value]``.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from affectflow.config import config_from_dict, merge_config, parse_override
from affectflow.corpus.corpus import TIME, Corpus, FeatureSetInfo, write_partition_map
from affectflow.errors import ConfigError, CorpusError, RunError
from affectflow.experiment import train
from affectflow.fsutil import atomic_write, check_names, write_json
from affectflow.predictions import Predictions
from affectflow.procedures.folds import subject_groups
from affectflow.procedures.sweep import SweepSpec, load_cells, run_sweep
from affectflow.layout import results_file
from affectflow.runs import Run, write_run_info

HELDOUT = "heldout"
FUSION_MODEL = {"type": "lstm", "d_model": None, "hidden_size": 32, "num_layers": 1, "bidirectional": True,
                "dropout": 0.0, "d_fc": None, "mask_inputs": True}


def prediction_feature_name(run: str | Path) -> str:
    """Default feature-set name of a run's predictions: ``pred_<run folder name>`` (safe characters only)."""
    return "pred_" + re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(run).resolve().name)


def _finished(run: Run) -> None:
    if run.record.get("status") != "finished":
        raise RunError(f"Run {str(run.path)!r} did not finish (status {run.record.get('status')!r}).")


def crossfit(run: str | Path, *, folds: int = 5, seed: int = 0, workers: int = 1, threads: int = 1,
             backend: str = "local") -> tuple[Any, dict[str, Any]]:
    """Out-of-fold predictions of ``run`` for its train recordings (see the module docstring).

    Returns the train recordings' :class:`~affectflow.predictions.Predictions` (each from the fold model that did
    not see its subject) and a description (groups, fold run dirs).
    """
    r = Run(run)
    _finished(r)
    cfg = copy.deepcopy(r.config_dict)
    d = cfg["data"]
    if d.get("task", "continuous") != "continuous":
        raise ConfigError(f"Staged late fusion works on continuous runs; {str(r.path)!r} is a {d['task']!r} run.")
    corpus = Corpus(d["corpus"], partitions=d.get("partitions"))
    rec = corpus.recordings
    train = rec[rec["partition"].isin(d["train_partitions"])]
    groups = subject_groups(train["subject"].tolist(), folds, seed)
    folder = r.path / "crossfit" / f"k{folds}-seed{seed}"
    if HELDOUT in set(rec["partition"]):
        raise CorpusError(f"Corpus {str(corpus.path)!r} already has a partition named {HELDOUT!r}; cross-fitting "
                          "uses that name for the held-out train subjects.")
    maps = []
    train_ids = set(train["id"])
    for j, g in enumerate(groups):
        held = set(g)
        mapping = {rid: (HELDOUT if (s in held and rid in train_ids) else part) for rid, s, part in
                   zip(rec["id"], rec["subject"], rec["partition"])}
        maps.append(str(write_partition_map(folder / "folds" / f"fold-{j}.csv", mapping)))
    base = copy.deepcopy(cfg)
    base["data"]["test_partitions"] = [HELDOUT]
    base["data"]["corpus"] = str(Path(d["corpus"]).resolve())
    base["output"]["name"] = None
    spec = SweepSpec(name=f"crossfit-{r.path.name}", base=base, grid={"data.partitions": maps},
                     source=str(r.config_path))
    sweep_dir = run_sweep(spec, out=folder / "training", workers=workers, threads=threads, backend=backend)
    _, cells = load_cells(sweep_dir)
    bad = [c.id for c in cells if c.status != "finished"]
    if bad:
        raise RunError(f"Cross-fitting runs {bad} of {str(r.path)!r} failed; see {str(results_file(sweep_dir))!r} "
                       "and run the same command again to retry them.")
    parts = [Run(c.run_dir).saved_predictions(HELDOUT) for c in cells]
    oof = Predictions.concat(parts)
    info = {"folds": folds, "seed": seed, "groups": groups, "runs": [c.run_dir for c in cells],
            "folder": str(folder)}
    write_json(folder / "crossfit.json", info)
    return oof.subset(sorted(oof.recordings, key=list(train["id"]).index)), info


def write_prediction_features(corpus: Corpus, name: str, preds: Any, *, params: dict[str, Any]) -> FeatureSetInfo:
    """Store continuous predictions as feature set ``name`` (columns = targets, frames on the label grid)."""
    info = FeatureSetInfo(name=name, modality="prediction", columns=list(preds.targets), rate_hz=corpus.label_rate_hz,
                          params=params, description="predictions of an affectflow run (staged late fusion input)")
    corpus.write_feature_set_info(info)
    for rid, t, v in zip(preds.recordings, preds.times, preds.values):
        frame = pd.DataFrame(np.asarray(v, np.float32), columns=info.columns)
        frame.insert(0, TIME, np.asarray(t, np.float64))
        corpus.write_features(name, rid, frame)
    return info


def prediction_features(run: str | Path, *, name: str | None = None, folds: int = 5, seed: int = 0,
                        workers: int = 1, threads: int = 1, backend: str = "local") -> str:
    """Make (or reuse) the feature set of ``run``'s predictions: out-of-fold on train, the run's own elsewhere.

    An existing feature set of the same name is reused when it was made from the same run with the same folds and
    seed; otherwise it is refused.
    """
    r = Run(run)
    _finished(r)
    d = r.config_dict["data"]
    name = name or prediction_feature_name(r.path)
    corpus = Corpus(d["corpus"])
    want = {"run": str(r.path.resolve()), "crossfit_folds": folds, "crossfit_seed": seed}
    if name in corpus.feature_sets:
        have = corpus.feature_set(name).params
        if {k: have.get(k) for k in want} == want:
            return name
        raise CorpusError(
            f"Corpus {str(corpus.path)!r} already has a feature set {name!r} made from {have.get('run')!r} (folds "
            f"{have.get('crossfit_folds')}, seed {have.get('crossfit_seed')}); give another name."
        )
    oof, cinfo = crossfit(r.path, folds=folds, seed=seed, workers=workers, threads=threads, backend=backend)
    others = []
    for part in [d["devel_partition"], *d["test_partitions"]]:
        p = r.saved_predictions(part)
        others.append(p.subset([x for x in p.recordings if x not in set(oof.recordings)]))
    allp = Predictions.concat([oof, *[o for o in others if len(o.recordings)]])
    write_prediction_features(corpus, name, allp, params={
        **want, "train_inputs": "out-of-fold (cross-fitting over train subjects)",
        "other_inputs": "the run trained on all of train", "crossfit_runs": cinfo["runs"],
    })
    return name


def staged_late_fusion(
    runs: Sequence[str | Path],
    *,
    folds: int = 5,
    seed: int = 0,
    overrides: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    workers: int = 1,
    threads: int = 1,
    backend: str = "local",
    progress: bool = False,
) -> Path:
    """Stage 2 of staged late fusion: prediction features of ``runs`` (cross-fitted), then the fusion BiLSTM run.

    The fusion run's config is the first run's data section (corpus, targets, label set, partitions, windows) with
    ``data.features`` = the prediction feature sets, model :data:`FUSION_MODEL`, the first run's training section,
    then ``overrides`` (``key=value``). Returns the fusion's run directory (an ordinary run).
    """
    if len(runs) < 2:
        raise ConfigError("Staged late fusion needs at least two unimodal runs.")
    members = [Run(r) for r in runs]
    d0 = members[0].config_dict["data"]
    for m in members[1:]:
        d = m.config_dict["data"]
        for key in ("corpus", "targets", "label_set", "devel_partition", "test_partitions", "train_partitions",
                    "partitions"):
            a, b = d0.get(key), d.get(key)
            if key == "corpus":
                a, b = str(Path(a).resolve()), str(Path(b).resolve())
            if a != b:
                raise RunError(f"Runs {str(members[0].path)!r} and {str(m.path)!r} differ in data.{key} ({a!r} vs "
                               f"{b!r}); staged late fusion needs runs of the same corpus, targets and partitions.")
    # everything is checked before any model is trained: names, then the fusion run's whole config
    if names is not None:
        names = list(names)
        if len(names) != len(members):
            raise ConfigError(f"--names gives {len(names)} name(s) {names} for {len(members)} runs; give one per run.")
        check_names("prediction feature set name", names, where="--names", error=ConfigError)
    wanted = names or [prediction_feature_name(m.path) for m in members]
    if len(set(wanted)) != len(wanted):
        raise ConfigError(f"Two runs give the same prediction feature name {wanted}; pass distinct names.")
    base = copy.deepcopy(members[0].config_dict)
    base["data"]["features"] = wanted
    base["model"] = dict(FUSION_MODEL)
    base["output"]["name"] = "late-fusion"
    for o in overrides or []:
        base = merge_config(base, parse_override(o))
    cfg = config_from_dict(base).validate()
    feats = [prediction_features(m.path, name=wanted[i], folds=folds, seed=seed,
                                 workers=workers, threads=threads, backend=backend) for i, m in enumerate(members)]
    run_dir = train(cfg, progress=progress)
    info = dict(Run(run_dir).record)
    info["late_fusion"] = {"members": [str(m.path.resolve()) for m in members], "features": feats,
                           "crossfit_folds": folds, "crossfit_seed": seed}
    write_run_info(run_dir, info)
    table = comparison_table([m.path for m in members] + [run_dir], cfg.data.targets,
                             [cfg.data.devel_partition, *cfg.data.test_partitions])
    atomic_write(run_dir / "late_fusion.md", lambda p: p.write_text(table + "\n"))
    return run_dir


def comparison_table(runs: Sequence[str | Path], targets: list[str], partitions: list[str]) -> str:
    """Markdown: the selected seed's CCC of every run (unimodal runs, then the fusion) per partition and target."""
    cols = [(p, t) for p in partitions for t in targets]
    lines = ["| run | " + " | ".join(f"{p} {t} ccc" for p, t in cols) + " |", "|---|" + "---|" * len(cols)]
    for r in runs:
        best = Run(r).metrics()["best"]
        vals = [best.get(p, {}).get(t, {}).get("ccc", float("nan")) for p, t in cols]
        lines.append(f"| {Path(r).name} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    return ("Staged late fusion: unimodal runs, then the fusion trained on their predictions (train inputs out of "
            "fold). Selected seed per run; devel scores are optimistic.\n\n" + "\n".join(lines))


