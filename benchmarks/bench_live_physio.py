"""Agreement of live physiology features (LivePredictor.push_physio) with offline extraction.

Synthetic NeuroKit2 ECG/respiration/EDA recording (affectflow.synthetic.media, 250 Hz), a fake GRU run over the
``hrv``, ``physio_rates``, ``physio_raw`` and ``phys`` sets; raw samples pushed in random chunks; live frames
compared with ``extractor.extract`` on the whole file after ``--warmup`` s, and streamed predictions with
``predict_media`` (CCC, max abs difference).

    PYTHONPATH=src:. python benchmarks/bench_live_physio.py --duration 120 --context 30
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tests.deploy.helpers import PHYSIO_SETS as SETS
from tests.deploy.helpers import ccc, physio_recording, physio_run, stream

torch.set_num_threads(1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--context", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--lookahead", type=float, default=None)
    ap.add_argument("--columns", action="store_true", help="print every column's differences")
    a = ap.parse_args(argv)
    from affectflow.features.base import EXTRACTORS, MediaRecording
    from affectflow.inference.media import predict_media
    from affectflow.streaming import LivePredictor

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        physio = physio_recording(tmp, a.duration)
        run = physio_run(tmp / "run")
        df = pd.read_csv(physio)
        fs = 1.0 / float(np.median(np.diff(df["time"].to_numpy())))
        fs = round(fs)
        live = LivePredictor(run, physio_context=a.context, physio_lookahead=a.lookahead)
        frames = {}
        orig = live._append

        def spy(name, t, v):
            frames.setdefault(name, []).append((t, v))
            orig(name, t, v)

        live._append = spy
        t0 = time.perf_counter()
        steps = stream(live, df, fs)
        wall = time.perf_counter() - t0
        print(f"{a.duration:g} s recording at {fs} Hz, context {a.context:g} s: streamed in {wall:.1f} s")
        for n, p in SETS.items():
            ex = EXTRACTORS.build(n, p)
            off = ex.extract(MediaRecording(id="x", physio=physio))
            t = np.concatenate([f[0] for f in frames[n]])
            v = np.concatenate([f[1] for f in frames[n]])
            ref = off[ex.columns()].to_numpy(np.float64)
            assert np.allclose(t, off["time"].to_numpy()), n
            sel = t >= a.warmup
            d = np.abs(v[sel] - ref[sel])
            nan_mismatch = int((np.isnan(v[sel]) != np.isnan(ref[sel])).sum())
            scale = np.nanstd(ref[sel], axis=0)
            rel = np.nanmax(d, axis=0) / np.where(scale > 0, scale, 1)
            worst = ex.columns()[int(np.nanargmax(rel))]
            print(f"  {n:13s} max|d| {np.nanmax(d):.4g}  mean|d| {np.nanmean(d):.4g}  max|d|/std per column "
                  f"{np.nanmax(rel):.3g} ({worst}), median over columns {np.nanmedian(rel):.3g}; "
                  f"exact frames {np.mean(np.all((d < 1e-4) | np.isnan(d), axis=1)):.0%}; NaN mismatches "
                  f"{nan_mismatch}")
            if a.columns:
                for j, c in enumerate(ex.columns()):
                    print(f"      {c:14s} max|d| {np.nanmax(d[:, j]) if np.isfinite(d[:, j]).any() else np.nan:.4g}"
                          f"  mean|d| {np.nanmean(d[:, j]) if np.isfinite(d[:, j]).any() else np.nan:.4g}  "
                          f"std {scale[j]:.4g}  NaN live/offline {int(np.isnan(v[sel, j]).sum())}/"
                          f"{int(np.isnan(ref[sel, j]).sum())}")
        offline = predict_media(run, {"physio": physio}, device="cpu")
        assert len(steps) == len(offline)
        for tg in ("arousal", "valence"):
            s = np.array([x[tg] for x in steps])
            o = offline[tg].to_numpy()
            print(f"  predictions {tg}: CCC {ccc(s, o):.4f}  max|d| {np.max(np.abs(s - o)):.4f}  "
                  f"(offline std {o.std():.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
