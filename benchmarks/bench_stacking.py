"""Stacking M copies of one model (affectflow/training/stacked.py) against running them one after another.

Two measurements:

1. ``step`` (default): one forward + backward of M jobs' models on their own batches (B windows × T steps), the
   early-fusion GRU (or ``--model``), two ways:

   - ``loop``: the module itself, one job after another (``finetune_loop``'s and ``fit_seed``'s inner step);
   - ``stacked``: :class:`affectflow.training.stacked.StackedModels` (``stack_module_state``-style stacked
     parameters + ``functional_call`` under ``vmap(grad_and_value(...))`` over the real module; RNNs masked instead
     of packed, per-copy dropout streams); the per-job gradients are checked against the loop first.

2. ``--seeds-run``: ``affectflow train`` of one configuration with ``training.stack_seeds=false`` (seeds one by one)
   and ``=true`` (all seeds as one stacked model) on a generated corpus: wall time of each and every seed's devel
   and test CCC both ways. Default: the MuSe 2023 GRU configuration of issue 17 (4-layer GRU-256, windows 50/25,
   batch 256, 3 seeds) on a generated corpus of ``--subjects`` × ``--duration`` s (default 24 × 300 s, smaller than
   MuSe 2023's), ``--epochs`` epochs.

Usage::

    python benchmarks/bench_stacking.py [--jobs 8] [--hidden 64] [--batch 32] [--steps 10] [--repeats 5]
    python benchmarks/bench_stacking.py --seeds-run [--subjects 24] [--duration 300] [--epochs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

from affectflow.models import build_model
from affectflow.training.losses import get_loss
from affectflow.training.stacked import RngStreams, StackedModels


def step_benchmark(a: argparse.Namespace) -> None:
    torch.manual_seed(0)
    params = {"d_model": a.hidden, "d_fc": 32, "dropout": a.dropout, "num_layers": a.layers} if a.model == "gru" \
        else {}
    base = build_model({"type": a.model, "params": params, "input_dims": {"f": a.features},
                        "targets": ["arousal", "valence"]})
    base.train()
    m, b, t = a.jobs, a.batch, a.steps
    mask = torch.ones(b, t, dtype=torch.bool)
    batches = [{"x": {"f": torch.randn(b, t, a.features)}, "mask": mask, "feature_mask": {"f": mask},
                "y": torch.randn(b, t, 2), "y_mask": torch.ones(b, t, 2, dtype=torch.bool)} for _ in range(m)]
    models = [copy.deepcopy(base) for _ in range(m)]
    loss_fn = get_loss("ccc")

    def timed(fn) -> float:
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(a.repeats):
            fn()
        return (time.perf_counter() - t0) / a.repeats

    def loop():
        for j, (mod, bt) in enumerate(zip(models, batches)):
            torch.manual_seed(j)
            mod.zero_grad(set_to_none=True)
            loss_fn(mod(bt["x"], bt["mask"], bt["feature_mask"]), bt["y"], bt["y_mask"]).backward()

    stacked = StackedModels(base, "ccc")

    def stack():
        stacked.backward(models, batches, streams=RngStreams.seeded(range(m)))

    loop()
    ref = [[p.grad.clone() for p in mod.parameters()] for mod in models]
    stack()
    diff = max(float((p.grad - g).abs().max()) for mod, gs in zip(models, ref) for p, g in zip(mod.parameters(), gs))
    print(f"stacked vs loop: max |gradient diff| = {diff:.2e} (same dropout masks)")
    rows = [("loop (module per job)", timed(loop)), ("stacked (torch.func vmap over the module)", timed(stack))]
    print(f"M={m} jobs, {a.model} hidden {a.hidden} x {a.layers} layer(s), batch {b} x {t} steps, {a.features} "
          f"features, {torch.get_num_threads()} thread(s); one forward+backward of all jobs:")
    for name, s in rows:
        print(f"  {name:45s} {s * 1000:9.1f} ms  ({rows[0][1] / s:.2f}x the loop)")


def seeds_run(a: argparse.Namespace) -> None:
    from affectflow.config import load_config
    from affectflow.experiment import train
    from affectflow.synthetic.corpus import generate_corpus

    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench-stacking-"))
    cpath = work / "corpus"
    if not (cpath / "corpus.json").is_file():
        generate_corpus(cpath, n_subjects=a.subjects, duration_s=a.duration, seed=0, progress=False)
    base = [f"data.corpus={cpath}", "data.features=[acoustic,visual,physio]", "data.window.size=50",
            "data.window.hop=25", "model.d_model=256", "model.num_layers=4", "training.batch_size=256",
            f"training.epochs={a.epochs}", f"training.patience={a.epochs}", "training.seeds=[1,2,3]",
            "training.device=cpu", f"training.num_threads={a.threads}", "output.plots=false", *a.set]
    out = {}
    for mode in ("false", "true"):
        t0, c0 = time.perf_counter(), time.process_time()
        run = train(load_config(None, [*base, f"training.stack_seeds={mode}",
                                       f"output.runs_dir={work / ('runs-' + mode)}"]), progress=False)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        met = json.loads((run / "metrics.json").read_text())
        out[mode] = (seconds, met, cpu)
        print(f"stack_seeds={mode}: {seconds:.1f} s wall, {cpu:.1f} s CPU for the run ({run})")
    print("seed | partition | target | one by one | stacked | |diff|")
    one, st = out["false"][1]["per_seed"], out["true"][1]["per_seed"]
    worst = 0.0
    for seed in one:
        for part in one[seed]:
            for target, v in one[seed][part].items():
                if not isinstance(v, dict) or "ccc" not in v:
                    continue
                x, y = v["ccc"], st[seed][part][target]["ccc"]
                worst = max(worst, abs(x - y))
                print(f"{seed} | {part} | {target} | {x:.6f} | {y:.6f} | {abs(x - y):.1e}")
    print(f"wall time: one by one {out['false'][0]:.1f} s, stacked {out['true'][0]:.1f} s "
          f"({out['false'][0] / out['true'][0]:.2f}x); CPU time (steadier on a loaded machine): "
          f"{out['false'][2]:.1f} s vs {out['true'][2]:.1f} s ({out['false'][2] / out['true'][2]:.2f}x); "
          f"largest per-seed CCC difference {worst:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--model", default="gru")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--features", type=int, default=88)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds-run", action="store_true", help="affectflow train with and without stack_seeds")
    ap.add_argument("--subjects", type=int, default=24)
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--set", action="append", default=[], help="extra KEY=VALUE config overrides (--seeds-run)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.seeds_run:
        seeds_run(a)
    else:
        step_benchmark(a)


if __name__ == "__main__":
    main()
