"""Personalisation study: does choosing one seed per subject on 60 s of its own devel data make subjects worse, and
do averaging the seeds, L2-SP toward the base model, or shrinking the update help?

Input: a finished ``muse2023`` recipe folder on a ``--layout personalisation`` corpus (its best early-fusion run per
dimension, step ``best_early``). For each run and each L2-SP strength ``α`` in ``--l2sp`` the test subjects are
fine-tuned **once** (:func:`affectflow.procedures.personalise.personalise` with ``combine="average"``, which keeps
every seed's checkpoint at its best own-devel epoch), and four ways of using the same fine-tuning are scored:

- ``select``: per subject the seed with the best own-devel score (the paper's);
- ``average``: the mean of all seeds' predictions;
- ``select+shrink=0.5`` / ``average+shrink=0.5``: every fine-tuned model moved back to ``θ_base + 0.5 (θ − θ_base)``.

Prints per option and dimension the pooled test CCC before → after (the challenge score), the number of test
subjects whose own test CCC got lower (made worse), the worst and the mean per-subject change::

    affectflow generate p69 --layout personalisation --subjects 69 --seed 7
    affectflow recipe run muse2023 --corpus p69 --budget quick --out q23
    nice -n 10 python benchmarks/study_personalise_options.py q23 --l2sp 0,0.1 --epochs 10 --json study.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from affectflow.corpus.corpus import Corpus
from affectflow.experiment import load_model, run_task
from affectflow.models import build_model
from affectflow.predictions import Predictions
from affectflow.procedures.personalise import _mean_predictions, load_report, personalise
from affectflow.runs import Run, load_checkpoint


def _model(ck: dict, base_state: dict, shrink: float) -> torch.nn.Module:
    m = build_model(ck["model"])
    sd = ck["state_dict"]
    if shrink != 1.0:
        sd = {k: base_state[k] + shrink * (v - base_state[k]) if v.is_floating_point() else v for k, v in sd.items()}
    m.load_state_dict(sd)
    m.eval()
    return m


def study_run(run: str, label: str, target: str, *, l2sp: float, seeds: int, epochs: int, patience: int) -> dict:
    """The four options of one fine-tuning of ``run`` (see the module docstring): name → scores."""
    folder = personalise(run, seeds=seeds, window=10, hop=5, epochs=epochs, patience=patience, combine="average",
                         l2sp=l2sp)
    rep = load_report(folder)
    base, normalizer, ck = load_model(run)
    base_state = {k: v.detach().clone() for k, v in base.state_dict().items()}
    corpus = Corpus(rep["corpus"])
    task = run_task(Run(run), ck, corpus)
    ids = corpus.recording_ids(rep["test_partitions"])
    store = task.store(ids)
    subject_of = {r.id: r.subject for r in store.records}
    ew = ck["data"]["eval_window"]
    before = task.predict(base, store, normalizer, ew, "cpu")
    out = {}
    for shrink in (1.0, 0.5):
        for combine in ("select", "average"):
            pieces = {}
            for subj, info in rep["subjects"].items():
                mine = [i for i in ids if subject_of[i] == subj]
                if info["status"] != "personalised" or not mine:
                    continue
                use = [info["seed"]] if combine == "select" else [int(s) for s in info["per_seed"]]
                preds = [task.predict(_model(load_checkpoint(folder / "checkpoints" / f"{subj}-seed{s}.pt"), base_state,
                                             shrink), task.store(mine), normalizer, ew, "cpu") for s in use]
                p = _mean_predictions(preds)
                pieces.update({rid: p.subset([rid]) for rid in mine})
            after = Predictions.concat([pieces.get(r, before.subset([r])) for r in before.recordings])
            deltas = np.array([task.score(after.subset(m))[target]["ccc"] - task.score(before.subset(m))[target]["ccc"]
                               for m in ([i for i in ids if subject_of[i] == s] for s in sorted(set(subject_of.values())))])
            name = combine + (f"+l2sp={l2sp:g}" if l2sp else "") + ("" if shrink == 1.0 else f"+shrink={shrink:g}")
            out[name] = {"run": label, "target": target, "pooled_before": task.score(before)[target]["ccc"],
                         "pooled_after": task.score(after)[target]["ccc"], "worse": int((deltas < -1e-9).sum()),
                         "n": int(len(deltas)), "worst": float(deltas.min()), "mean": float(deltas.mean()),
                         "deltas": deltas.tolist(), "folder": str(folder)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe_folder", help="a finished muse2023 recipe folder (personalisation-layout corpus)")
    ap.add_argument("--l2sp", default="0,0.1", help="comma-separated L2-SP strengths (default 0,0.1)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--json", help="write all results to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    state = json.loads((Path(args.recipe_folder) / "state.json").read_text())
    runs = state["steps"]["best_early"]["result"]["runs"]
    results: dict = {}
    for a in [float(x) for x in args.l2sp.split(",")]:
        for r in runs:
            t = r["params"]["data.targets"][0]
            for name, row in study_run(r["run"], r["label"], t, l2sp=a, seeds=args.seeds, epochs=args.epochs,
                                       patience=args.patience).items():
                results.setdefault(name, []).append(row)
                print(f"{t:<8} {name:<28} pooled {row['pooled_before']:.4f} -> {row['pooled_after']:.4f}  worse "
                      f"{row['worse']}/{row['n']}  worst {row['worst']:+.3f}  mean {row['mean']:+.4f}", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
