"""Training throughput and synthetic-corpus accuracy of every registered architecture.

Throughput (default): forward + backward passes of each architecture at a paper-sized setting, ``--batch``
sequences (default 32) of ``--steps`` label steps (default 200: 100 s at 2 Hz) with three feature sets of widths
88 (eGeMAPS), 768 (wav2vec2 / HuBERT-base) and 21 (physiological), real lengths drawn between half and all of
``--steps``. Hyperparameters follow the papers' presets (``affectflow/configs/presets``) where they exist. Prints
parameters, milliseconds per batch, sequences/s and real steps/s::

    python benchmarks/bench_models.py                     # CPU
    python benchmarks/bench_models.py --device cuda --iters 20

Accuracy (``--ccc``): each architecture at a small width is trained briefly (``--epochs``, one model per seed)
on a synthetic corpus (``--subjects`` recordings of ``--duration`` s; 60/20/20 % train/devel/test) with the
core trainer, and the devel CCC (pooled over recordings, best epoch) is printed per target, with the noise-free
ceiling of the corpus. ``afg_jdev`` is trained on arousal classes (above/below 0) + valence with the MER 2023
multitask loss; its arousal column is the class accuracy (majority rate in brackets)::

    python benchmarks/bench_models.py --ccc --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from affectflow.models import MODELS
from affectflow.models.small import SMALL_SETTINGS

PAPER_DIMS = {"egemaps": 88, "w2v": 768, "phys": 21}
TARGETS = ["arousal", "valence"]

# paper-sized hyperparameters (presets where the paper states them, defaults otherwise)
PAPER: dict[str, dict] = {
    "gru": {"d_model": 256, "num_layers": 1, "d_fc": 64},
    "composite": {
        "fusion": {"type": "afg", "d_model": 256, "structure": "hierarchical", "primary": ["egemaps", "w2v"]},
        "encoder": {"type": "gru", "hidden_size": 256},
    },
    "lstm": {"hidden_size": 128, "num_layers": 2},
    "sa_lstm": {"d_attn": None, "num_heads": 4, "hidden_size": 128, "lstm_layers": 2},
    "gcnn_lstm": {"channels": 64, "hidden_size": 128},
    "transformer": {"d_model": 64, "num_heads": 4, "dim_feedforward": 128, "num_layers": 6},
    "tcn": {"channels": [512, 256, 256, 128], "kernel_size": 5},
    "mbconv": {"channels": [64, 64, 64]},
    "way1": {},
    "way2": {},
    "way3": {},
    "way4": {},
    "way5": {},
    "way6": {},
    "late_fusion_bilstm": {
        "encoder": {"type": "sa_lstm", "d_attn": None, "hidden_size": 128, "lstm_layers": 2},
        "encoders": {"phys": {"type": "lstm", "hidden_size": 128, "num_layers": 2}},
        "mask_inputs": False,
    },
    "late_average": {"encoder": {"type": "lstm", "hidden_size": 128}},
    "leader_follower_tcn": {
        "leader": "w2v",
        "channels": {"w2v": [512, 256, 256, 128], "default": [32, 32, 32, 32]},
    },
    "channel_attention_tcn": {"channels": {"w2v": [512, 256, 256, 128], "default": [32, 32, 32, 32]}},
    "afg_jdev": {"d_model": 256, "structure": "parallel", "primary": ["egemaps", "w2v"], "n_classes": 6},
}
# small settings for the accuracy table (the same as tests/models/test_learning.py)
SMALL: dict[str, dict] = {
    **SMALL_SETTINGS,
    "afg_jdev": {
        "d_model": 32,
        "n_classes": 2,
        "structure": "pairwise",
        "encoder": {"type": "gru", "hidden_size": 32},
    },
}


def _targets(name: str) -> list[str]:
    return ["emotion", "valence"] if name == "afg_jdev" else TARGETS


# ---------------------------------------------------------------------------- throughput
def throughput(
    names: list[str], device: torch.device, batch: int, steps: int, iters: int, warmup: int
) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(steps // 2, steps + 1, (batch,), generator=g)
    lengths[0] = steps
    mask = (torch.arange(steps)[None, :] < lengths[:, None]).to(device)
    x = {k: torch.randn(batch, steps, d, generator=g).to(device) for k, d in PAPER_DIMS.items()}
    fm = {k: mask.clone() for k in PAPER_DIMS}
    rows = []
    for name in names:
        torch.manual_seed(0)
        model = (
            MODELS.build(name, PAPER[name], input_dims=PAPER_DIMS, targets=_targets(name)).to(device).train()
        )
        n_params = sum(p.numel() for p in model.parameters())

        def step(model=model):
            out = model(x, mask, fm)
            loss = (out[mask] ** 2).mean()
            model.zero_grad(set_to_none=True)
            loss.backward()

        for _ in range(warmup):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / iters
        rows.append(
            {
                "model": name,
                "params_M": n_params / 1e6,
                "ms": dt * 1e3,
                "seq_s": batch / dt,
                "steps_s": float(lengths.sum()) / dt,
                "causal": bool(model.causal),
            }
        )
        print(f"  {name:24s} {dt * 1e3:9.1f} ms/batch", flush=True)
    return rows


# ---------------------------------------------------------------------------- accuracy
def accuracy(
    names: list[str], seeds: list[int], subjects: int, duration: float, epochs: int, window: int
) -> tuple[list[dict], dict]:
    from torch.utils.data import DataLoader

    from affectflow.config import TrainingConfig
    from affectflow.data.dataset import WindowDataset, collate
    from affectflow.data.normalize import Normalizer
    from affectflow.data.store import SequenceStore
    from affectflow.experiment import noise_free_ceiling
    from affectflow.metrics import ccc
    from affectflow.models.heads import split_outputs
    from affectflow.synthetic.corpus import generate_corpus
    from affectflow.training.inference import predict_store
    from affectflow.training.multitask import ModelWithLoss, MultitaskLoss
    from affectflow.training.trainer import fit_seed

    feats = ["acoustic", "visual", "physio"]
    tmp = Path(tempfile.mkdtemp(prefix="bench_models_"))
    corpus = generate_corpus(tmp / "corpus", n_subjects=subjects, duration_s=duration, seed=0, progress=False)
    train = SequenceStore(corpus, feats, TARGETS, corpus.recording_ids(["train"]))
    devel = SequenceStore(corpus, feats, TARGETS, corpus.recording_ids(["devel"]))
    norm = Normalizer().fit(train, [devel])
    ds = WindowDataset(train, norm, window, window // 2, require_labels=True)
    ceiling = noise_free_ceiling(corpus, devel) or {}
    cfg = TrainingConfig(epochs=epochs, patience=epochs, batch_size=8, lr=3e-3, seeds=seeds, device="cpu")
    y = [np.concatenate([r.y[:, k] for r in devel.records]) for k in range(2)]
    cpu = torch.device("cpu")

    def regression_scores(m):
        p = predict_store(m, devel, norm)
        return [ccc(y[k], np.concatenate([q[:, k] for q in p])) for k in range(2)]

    def jdev_scores(w, model):
        w.eval()
        cls, val, ya, yv = [], [], [], []
        with torch.no_grad():
            for b in DataLoader(WindowDataset(devel, norm, None, None), batch_size=4, collate_fn=collate):
                parts = split_outputs(w(b["x"], b["mask"], b["feature_mask"]), model.output_sizes)
                m = b["mask"]
                cls.append(parts["arousal"].argmax(-1)[m])
                val.append(parts["valence"][..., 0][m])
                ya.append(b["y"][..., 0][m])
                yv.append(b["y"][..., 1][m])
        w.train()
        cls, val, ya, yv = (torch.cat(v).numpy() for v in (cls, val, ya, yv))
        return [float((cls == (ya > 0)).mean()), ccc(yv, val)]

    rows = []
    for name in names:
        for seed in seeds:
            torch.manual_seed(seed)
            model = MODELS.build(name, SMALL[name], input_dims=train.dims, targets=TARGETS)
            t0 = time.process_time()
            if name == "afg_jdev":
                loss = MultitaskLoss(
                    {"arousal": "ce", "valence": "mse"},
                    form="mer2023",
                    output_sizes=model.output_sizes,
                    targets=TARGETS,
                )
                wrapped = ModelWithLoss(model, loss)

                def compute_loss(w, b):
                    yy = b["y"].clone()
                    yy[..., 0] = (yy[..., 0] > 0).float()
                    return ModelWithLoss.compute_loss(w, {**b, "y": yy})

                res = fit_seed(
                    wrapped,
                    ds,
                    lambda w, model=model: jdev_scores(w, model)[1],
                    cfg,
                    seed,
                    device=cpu,
                    progress=False,
                    compute_loss=compute_loss,
                )
                scores = jdev_scores(wrapped, model)
                extra = {"weights": loss.weights()}
            else:
                res = fit_seed(
                    model,
                    ds,
                    lambda m: float(np.mean(regression_scores(m))),
                    cfg,
                    seed,
                    device=cpu,
                    progress=False,
                )
                scores = regression_scores(model)
                extra = {}
            rows.append(
                {
                    "model": name,
                    "seed": seed,
                    "arousal": scores[0],
                    "valence": scores[1],
                    "best_epoch": res.best_epoch,
                    "cpu_s": time.process_time() - t0,
                    **extra,
                }
            )
            print(
                f"  {name:24s} seed {seed}: arousal {scores[0]:.3f} valence {scores[1]:.3f} "
                f"(epoch {res.best_epoch}, {rows[-1]['cpu_s']:.1f} s CPU)",
                flush=True,
            )
    majority = float(max((y[0] > 0).mean(), (y[0] <= 0).mean()))
    return rows, {
        "ceiling": ceiling,
        "majority": majority,
        "train_windows": len(ds),
        "train_recordings": len(train.records),
        "devel_recordings": len(devel.records),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--iters", type=int, default=3, help="timed iterations per architecture")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--only", default=None, help="comma-separated architecture names")
    ap.add_argument("--ccc", action="store_true", help="also train on a synthetic corpus and print devel CCC")
    ap.add_argument("--no-throughput", action="store_true", help="skip the throughput table")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--subjects", type=int, default=10)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--window", type=int, default=40)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    names = MODELS.names() if a.only is None else a.only.split(",")
    unknown = [n for n in names if n not in PAPER]
    if unknown:
        ap.error(f"unknown architectures {unknown}; valid: {sorted(PAPER)}")
    device = torch.device(a.device)
    if not a.no_throughput:
        print(
            f"forward+backward, batch {a.batch} x {a.steps} steps, features {PAPER_DIMS}, device {device}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {a.iters} timed iterations"
        )
        rows = throughput(names, device, a.batch, a.steps, a.iters, a.warmup)
        print("\n| model | params (M) | causal | ms / batch | sequences / s | steps / s |")
        print("|---|---:|:---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['model']} | {r['params_M']:.3f} | {'yes' if r['causal'] else 'no'} | {r['ms']:.1f} | "
                f"{r['seq_s']:.1f} | {r['steps_s']:.0f} |"
            )
    if a.ccc:
        print(
            f"\ntraining on a synthetic corpus: {a.subjects} recordings x {a.duration:.0f} s, {a.epochs} epochs, "
            f"windows {a.window}/{a.window // 2}, seeds {a.seeds}"
        )
        torch.set_num_threads(a.threads or 1)
        rows, info = accuracy(names, a.seeds, a.subjects, a.duration, a.epochs, a.window)
        ceil = info["ceiling"]
        print(
            f"\n{info['train_recordings']} train recordings ({info['train_windows']} windows), "
            f"{info['devel_recordings']} devel recordings; noise-free ceiling: "
            + ", ".join(f"{k} {v:.3f}" for k, v in ceil.items())
        )
        print("\n| model | arousal CCC | valence CCC | mean | best epoch | CPU s / seed |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in names:
            rs = [r for r in rows if r["model"] == name]
            ar, va = np.array([r["arousal"] for r in rs]), np.array([r["valence"] for r in rs])
            pm = (
                (lambda v: f"{v.mean():.3f} ± {v.std():.3f}")
                if len(rs) > 1
                else (lambda v: f"{v.mean():.3f}")
            )
            if name == "afg_jdev":
                print(
                    f"| {name} | acc {pm(ar)} (majority {info['majority']:.3f}) | {pm(va)} | – | "
                    f"{np.mean([r['best_epoch'] for r in rs]):.1f} | {np.mean([r['cpu_s'] for r in rs]):.1f} |"
                )
            else:
                print(
                    f"| {name} | {pm(ar)} | {pm(va)} | {pm((ar + va) / 2)} | "
                    f"{np.mean([r['best_epoch'] for r in rs]):.1f} | {np.mean([r['cpu_s'] for r in rs]):.1f} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
