"""Personalisation study: does per-subject selection of one seed on 60 s of own devel data make subjects worse, and
do averaging the seeds, L2-SP toward the base model, or shrinking the update help?

On ``affectflow generate --layout personalisation`` corpora (default: 69 subjects of 5 minutes, 14 test subjects,
one corpus per ``--corpus-seeds`` value), stage 1 is the paper's early-fusion GRU (``muse2023-gru`` preset, hidden
``--hidden``) on acoustic + visual + physio; then every test subject is personalised (10 seeds, windows 10/5, <= 20
epochs, patience 5) once per option:

- ``select``: the paper's, per subject the seed best on its own devel minute;
- ``average``: the mean of all seeds' predictions (each seed at its best own-devel epoch);
- ``l2sp=A``: fine-tuning with the penalty ``A · Σ‖θ − θ_base‖²`` (then ``select``);
- ``shrink=S``: each fine-tuned model moved back to ``θ_base + S · (θ − θ_base)`` (then ``select``);
- combinations (``average+shrink`` ...).

Prints per option: the pooled test CCC per dimension (the challenge score), and per dimension the number of test
subjects whose own test CCC is lower after personalisation than before (made worse), the worst drop, and the mean
per-subject change::

    nice -n 10 python benchmarks/study_personalise_options.py                       # full study (one corpus)
    python benchmarks/study_personalise_options.py --subjects 30 --stage1-epochs 5  # smaller
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from affectflow.config import load_config
from affectflow.experiment import train
from affectflow.procedures.personalise import load_report, personalise
from affectflow.synthetic.corpus import generate_corpus

PRESET = Path(__file__).resolve().parents[1] / "src" / "affectflow" / "configs" / "presets" / "muse2023-gru.yaml"
OPTIONS = {
    "select (paper)": {},
    "average": {"combine": "average"},
    "l2sp=0.1": {"l2sp": 0.1},
    "l2sp=1": {"l2sp": 1.0},
    "shrink=0.5": {"shrink": 0.5},
    "average+shrink=0.5": {"combine": "average", "shrink": 0.5},
    "average+l2sp=0.1": {"combine": "average", "l2sp": 0.1},
}


def subject_changes(rep: dict) -> dict[str, dict[str, float]]:
    """Per test subject and dimension: test CCC after − before."""
    out = {}
    for subj, v in rep["partitions"]["test"]["per_subject"].items():
        out[subj] = {t: v["after"][t]["ccc"] - v["before"][t]["ccc"] for t in v["before"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=69)
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--corpus-seeds", default="0", help="comma-separated corpus seeds (one corpus each)")
    ap.add_argument("--hidden", type=int, default=128, help="GRU hidden size of stage 1 (paper 256)")
    ap.add_argument("--stage1-seeds", type=int, default=2)
    ap.add_argument("--stage1-epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--options", help="comma-separated option names (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="work folder (default: a temporary one)")
    ap.add_argument("--json", help="write all results to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.out or tempfile.mkdtemp(prefix="study_personalise_"))
    names = args.options.split(",") if args.options else list(OPTIONS)
    print(f"settings: {vars(args)}; work {work}")
    results: dict = {}
    for cs in [int(s) for s in args.corpus_seeds.split(",")]:
        t0 = time.perf_counter()
        corpus = generate_corpus(work / f"corpus-{cs}", n_subjects=args.subjects, duration_s=args.duration,
                                 duration_jitter_s=0.0, layout="personalisation", seed=cs, progress=False)
        cfg = load_config(PRESET, [
            f"data.corpus={corpus.path}", f"output.runs_dir={work / 'runs'}", "data.features=[acoustic,visual,physio]",
            f"model.d_model={args.hidden}", f"training.seeds={list(range(1, args.stage1_seeds + 1))}",
            f"training.epochs={args.stage1_epochs}", "training.patience=8", "training.device=cpu",
            f"training.num_threads={args.threads}", "output.plots=false"])
        run = train(cfg, progress=False)
        print(f"corpus seed {cs}: stage 1 {time.perf_counter() - t0:.0f} s ({run})")
        for name in names:
            t0 = time.perf_counter()
            rep = load_report(personalise(run, seeds=args.seeds, epochs=20, patience=5, **OPTIONS[name]))
            ch = subject_changes(rep)
            test = rep["partitions"]["test"]
            row = {"seconds": time.perf_counter() - t0, "pooled": {}, "worse": {}, "worst": {}, "mean_change": {},
                   "per_subject": ch}
            for t in test["before"]:
                d = np.array([c[t] for c in ch.values()])
                row["pooled"][t] = (test["before"][t]["ccc"], test["after"][t]["ccc"], (test.get("ceiling") or {}).get(t))
                row["worse"][t] = int((d < 0).sum())
                row["worst"][t] = float(d.min())
                row["mean_change"][t] = float(d.mean())
            results.setdefault(str(cs), {})[name] = row
            print(f"  {name:<20} " + "; ".join(
                f"{t}: pooled {b:.4f} -> {a:.4f}, worse {row['worse'][t]}/{len(ch)}, worst {row['worst'][t]:+.3f}, "
                f"mean {row['mean_change'][t]:+.3f}" for t, (b, a, _) in row["pooled"].items())
                + f" ({row['seconds']:.0f} s)", flush=True)
    print("\nsummary over corpora (subjects made worse on their own test data, per dimension; pooled test CCC after):")
    print("| option | arousal worse | valence worse | pooled arousal | pooled valence |")
    print("|---|---|---|---|---|")
    for name in names:
        rows = [results[c][name] for c in results]
        n = sum(len(r["per_subject"]) for r in rows)
        w = {t: sum(r["worse"][t] for r in rows) for t in rows[0]["worse"]}
        p = {t: np.mean([r["pooled"][t][1] for r in rows]) for t in rows[0]["pooled"]}
        print(f"| {name} | {w.get('arousal')}/{n} | {w.get('valence')}/{n} | {p.get('arousal', np.nan):.4f} | "
              f"{p.get('valence', np.nan):.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
