"""Backbone training on raw face crops: frames/s and peak memory on this machine.

A corpus of ``--hours`` of 30 fps video as ``face_crops`` (``--size`` x ``--size`` RGB, stored like the extractor
stores them and cached as uint8 by the aligned store) is written once under ``--workdir`` (synthetic images whose
brightness and zoom follow the labels; the extraction itself is not timed). Then, in a fresh subprocess (so that
peak RSS belongs to training alone), the ABAW5-style model (backbone over each frame + TCN) trains for one epoch
with progressive unfreezing; printed: training frames/s (real time steps per second of the training loop, from
history.csv), peak RSS, and the size of the uint8 cache next to what float32 would take.

Usage::

    python benchmarks/bench_backbone.py                        # 0.25 h of 48x48 crops, small ResNet
    python benchmarks/bench_backbone.py --hours 1 --size 48     # an hour of video
    python benchmarks/bench_backbone.py --device cuda           # on a GPU (bfloat16 autocast)
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


def make_corpus(path: Path, hours: float, size: int, fps: float = 30.0, rec_s: float = 300.0) -> None:
    """Write ``hours`` of ``face_crops`` frames (recordings of ``rec_s`` seconds) with labels, in bounded memory."""
    import pandas as pd

    from affectflow.corpus import Corpus, FeatureSetInfo, LabelSetInfo
    from affectflow.features import EXTRACTORS

    if (path / "corpus.json").is_file():
        return
    ex = EXTRACTORS.build("face_crops", {"size": size})
    cols = ex.columns()
    n_rec = max(3, int(round(hours * 3600 / rec_s)))
    rec_s = hours * 3600 / n_rec
    steps = int(rec_s * fps)
    c = Corpus.create(path, name="bench-backbone", label_rate_hz=fps)
    c.write_feature_set_info(FeatureSetInfo("face_crops", "video", cols, fps,
                                            {"extractor": "face_crops", "params": ex.params(), "storage": "uint8"}))
    c.write_label_set_info(LabelSetInfo("continuous", ["arousal", "valence"], fps))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (3, size, size)).astype(np.float32)
    rows = []
    for r in range(n_rec):
        rid = f"r{r:03d}"
        t = np.arange(steps) / fps
        a = np.tanh(np.cumsum(rng.standard_normal(steps)) / 60)
        v = np.tanh(np.cumsum(rng.standard_normal(steps)) / 60)
        block = []
        for s in range(0, steps, 2000):
            k = slice(s, min(s + 2000, steps))
            img = base[None] * (1 + 0.3 * v[k, None, None, None]) + 40 * a[k, None, None, None]
            img += rng.normal(0, 10, img.shape)
            block.append((np.clip(np.rint(img), 0, 255).reshape(len(t[k]), -1) / 255.0).astype(np.float32))
        frame = pd.DataFrame(np.concatenate(block), columns=cols)
        frame.insert(0, "time", t)
        c.write_features("face_crops", rid, frame)
        del frame, block
        c.write_labels(rid, pd.DataFrame({"time": t, "arousal": a, "valence": v}))
        part = "devel" if r == 1 else "test" if r == 2 else "train"
        rows.append({"id": rid, "subject": rid, "partition": part, "duration": rec_s})
    c.set_recordings(pd.DataFrame(rows))


def train_once(corpus: Path, runs: Path, size: int, device: str, threads: int) -> dict:
    import torch

    from affectflow.config import load_config
    from affectflow.experiment import train

    torch.set_num_threads(threads)
    cfg = load_config(None, [
        f"data.corpus={corpus}", f"output.runs_dir={runs}", "data.features=[face_crops]",
        "data.window.size=300", "data.window.hop=200", "training.batch_size=12", "training.epochs=1",
        "training.seeds=[1]", f"training.device={device}", f"training.num_threads={threads}", "output.plots=false",
        "training.schedule=progressive_unfreezing", "training.unfreezing.lr=1e-3",
        "model={type: composite, fusion: {type: early, d_model: null}, encoder: {type: stack, stages: ["
        f"{{type: backbone, input_shape: [3, {size}, {size}], widths: [16, 32, 64, 128]}}, "
        "{type: tcn, channels: [64, 64], causal: true}]}}"])
    t0 = time.perf_counter()
    run = train(cfg, progress=False)
    wall = time.perf_counter() - t0
    import pandas as pd

    h = pd.read_csv(run / "history" / "seed-1.csv")
    return {"frames_per_s": float(h["frames_per_s"].iloc[0]), "epoch_s": float(h["seconds"].iloc[0]),
            "wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=0.25)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default="bench_backbone_work")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.workdir)
    corpus = work / f"corpus-{args.hours:g}h-{args.size}"
    if args.child:
        print(json.dumps(train_once(corpus, work / "runs", args.size, args.device, args.threads)))
        return
    t0 = time.perf_counter()
    make_corpus(corpus, args.hours, args.size)
    print(f"corpus: {args.hours:g} h of {args.size}x{args.size} RGB crops at 30 fps ({time.perf_counter() - t0:.0f} s "
          "to write)")
    out = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    cache = sum(f.stat().st_size for f in (corpus / "cache").rglob("*.npy"))
    frames = int(args.hours * 3600 * 30)
    print(f"training ({args.device}, {args.threads} thread(s)): {res['frames_per_s']:.0f} frames/s, one epoch "
          f"{res['epoch_s']:.1f} s (with devel scoring and startup {res['wall_s']:.1f} s), peak RSS "
          f"{res['peak_rss_mb']:.0f} MB")
    print(f"uint8 aligned cache: {cache / 2**20:.0f} MB for ~{frames} frames (float32 would be "
          f"{frames * 3 * args.size ** 2 * 4 / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
