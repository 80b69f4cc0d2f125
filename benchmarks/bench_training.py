"""Training throughput and peak memory of the default configuration.

Two measurements, each in a fresh subprocess so that peak RSS (``ru_maxrss``) belongs to that measurement alone:

1. ``default``: a synthetic corpus of about 6 hours at 2 Hz (72 subjects x 300 s); the default config
   (GRU d_model 256, windows 200/100, batch 32, features acoustic+visual+physio) trained for a fixed number of
   epochs; prints windows/s, steps/s and peak RSS.
2. ``large``: a corpus of 3,000,000 frames x 1000 dims (12 GB of float32 features: 500 recordings x 6000 steps),
   written once under ``--workdir``; training runs for a fixed number of batches; prints peak RSS next to the
   size of the data, to show memory stays bounded (windows are read from disk by offset).

Usage::

    python benchmarks/bench_training.py                   # both (the large corpus needs ~25 GB of disk, ~10 min)
    python benchmarks/bench_training.py --only default --epochs 3
    python benchmarks/bench_training.py --only large --frames 600000   # a smaller "large" corpus
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_large_corpus(path: Path, frames: int, dims: int, steps_per_rec: int = 6000) -> None:
    """Write a corpus of ``frames`` x ``dims`` float32 features (one set) at 2 Hz with labels, in bounded memory."""
    import pandas as pd

    from affectflow.corpus import Corpus, FeatureSetInfo, LabelSetInfo

    if (path / "corpus.json").is_file():
        return
    n_rec = max(frames // steps_per_rec, 3)
    c = Corpus.create(path, name="bench-large", label_rate_hz=2.0)
    cols = [f"f{j:04d}" for j in range(dims)]
    c.write_feature_set_info(FeatureSetInfo("wide", "other", cols, 2.0))
    c.write_label_set_info(LabelSetInfo("continuous", ["arousal", "valence"], 2.0))
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, dims)).astype(np.float32) / np.sqrt(2)
    rows = []
    t0 = time.perf_counter()
    for r in range(n_rec):
        rid = f"r{r:04d}"
        t = np.arange(steps_per_rec) / 2.0
        z = np.cumsum(rng.standard_normal((steps_per_rec, 2)), axis=0).astype(np.float32)
        z = np.tanh(z / (np.abs(z).max(0) + 1e-6))
        x = z @ w + rng.standard_normal((steps_per_rec, dims)).astype(np.float32)
        frame = pd.DataFrame(x, columns=cols)
        frame.insert(0, "time", t)
        c.write_features("wide", rid, frame)
        c.write_labels(rid, pd.DataFrame({"time": t, "arousal": z[:, 0], "valence": z[:, 1]}))
        part = "train" if r < int(n_rec * 0.8) else ("devel" if r < int(n_rec * 0.9) else "test")
        rows.append({"id": rid, "subject": rid, "partition": part, "duration": steps_per_rec / 2.0})
        if r % 50 == 0:
            print(f"  wrote {r + 1}/{n_rec} recordings ({time.perf_counter() - t0:.0f} s)", flush=True)
    c.set_recordings(pd.DataFrame(rows))


def run_default(workdir: Path, epochs: int, device: str) -> dict:
    """Train the default config on a ~6 h corpus for ``epochs`` epochs (one seed)."""
    from affectflow.config import load_config
    from affectflow.data import Normalizer, SequenceStore, WindowDataset
    from affectflow.models import MODELS
    from affectflow.synthetic.corpus import generate_corpus
    from affectflow.training.seeds import resolve_device
    from affectflow.training.trainer import fit_seed

    cpath = workdir / "corpus-6h"
    if not (cpath / "corpus.json").is_file():
        generate_corpus(cpath, n_subjects=72, duration_s=300.0, seed=0, progress=False)
    cfg = load_config(None, [f"data.corpus={cpath}", "data.features=[acoustic,visual,physio]",
                             f"training.epochs={epochs}", f"training.patience={epochs + 1}",
                             f"training.device={device}"])
    from affectflow.corpus import Corpus

    corpus = Corpus(cpath)
    hours = corpus.recordings["duration"].sum() / 3600
    d = cfg.data
    store = SequenceStore(corpus, d.features, d.targets, corpus.recording_ids(["train"]))
    norm = Normalizer().fit(store)
    ds = WindowDataset(store, norm, d.window.size, d.window.hop, require_labels=True)
    dev = resolve_device(device)
    model = MODELS.build(cfg.model.type, cfg.model.params, input_dims=store.dims, targets=d.targets)
    t0 = time.perf_counter()
    res = fit_seed(model, ds, lambda m: 0.0, cfg.training, 101, device=dev, progress=False)
    total = time.perf_counter() - t0
    return {
        "benchmark": "default",
        "corpus_hours": round(hours, 2),
        "train_windows_per_epoch": len(ds),
        "epochs": len(res.history),
        "windows_per_s": round(res.windows_per_s, 1),
        "steps_per_s": round(res.windows_per_s * d.window.size, 0),
        "seconds": round(total, 1),
        "device": str(dev),
        "peak_rss_mb": round(_peak_rss_mb(), 0),
    }


def run_large(workdir: Path, frames: int, dims: int, batches: int, device: str) -> dict:
    """Build the large corpus (if needed), align it, fit normalisation, train ``batches`` batches; report memory."""
    from affectflow.config import load_config
    from affectflow.corpus import Corpus
    from affectflow.data import Normalizer, SequenceStore, WindowDataset
    from affectflow.models import MODELS
    from affectflow.training.seeds import resolve_device
    from affectflow.training.trainer import fit_seed

    cpath = workdir / f"corpus-{frames}x{dims}"
    t0 = time.perf_counter()
    make_large_corpus(cpath, frames, dims)
    t_write = time.perf_counter() - t0
    corpus = Corpus(cpath)
    cfg = load_config(None, [f"data.corpus={cpath}", "data.features=[wide]", "training.epochs=1",
                             f"training.device={device}"])
    t1 = time.perf_counter()
    store = SequenceStore(corpus, ["wide"], ["arousal", "valence"], corpus.recording_ids(["train"]))
    t_align = time.perf_counter() - t1
    total_frames = sum(r.length for r in store.records)
    t2 = time.perf_counter()
    norm = Normalizer().fit(store)
    t_norm = time.perf_counter() - t2
    ds = WindowDataset(store, norm, 200, 100, require_labels=True)
    model = MODELS.build("gru", cfg.model.params, input_dims=store.dims, targets=["arousal", "valence"])
    t3 = time.perf_counter()
    res = fit_seed(model, ds, lambda m: 0.0, cfg.training, 1, device=resolve_device(device), progress=False,
                   max_batches=batches)
    return {
        "benchmark": "large",
        "train_frames": total_frames,
        "dims": dims,
        "feature_bytes_gb": round(total_frames * dims * 4 / 1e9, 2),
        "write_s": round(t_write, 1),
        "align_s": round(t_align, 1),
        "normalise_s": round(t_norm, 1),
        "train_batches": batches,
        "train_s": round(time.perf_counter() - t3, 1),
        "windows_per_s": round(res.windows_per_s, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["default", "large"])
    ap.add_argument("--workdir", default=".bench", help="where benchmark corpora are written (reused)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=3_000_000)
    ap.add_argument("--dims", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child == "default":
        print(json.dumps(run_default(workdir, args.epochs, args.device)))
        return
    if args.child == "large":
        print(json.dumps(run_large(workdir, args.frames, args.dims, args.batches, args.device)))
        return
    for which in ["default", "large"]:
        if args.only and which != args.only:
            continue
        cmd = [sys.executable, __file__, "--child", which, "--workdir", str(workdir), "--epochs", str(args.epochs),
               "--frames", str(args.frames), "--dims", str(args.dims), "--batches", str(args.batches),
               "--device", args.device, "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        for line in out.stdout.splitlines():
            if not line.startswith("{"):
                print(line)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\n== {which} ==")
        for k, v in res.items():
            print(f"  {k:>24}: {v}")


if __name__ == "__main__":
    main()
