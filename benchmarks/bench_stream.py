"""Streaming latency and capacity of the default causal GRU, and ONNX Runtime vs PyTorch offline inference, on CPU.

The model is the default configuration (``gru``, ``d_model`` 256, ``d_fc`` 64, unidirectional, input masks) with
random weights over feature sets of the default extractors' widths (``--dims``; eGeMAPS 88, face blendshapes 52,
FER 7, Phys 21, physio rates 4, word VAD 3, sentence embedding 384); weights do not change the cost. Everything
runs on ONE thread (``torch.set_num_threads(1)``, ``intra_op_num_threads=1``) so the numbers are per core.

1. Per-step latency: :meth:`Streamer.step` (raw vectors in, normaliser + model + dict out) over ``--steps`` steps
   of one stream: mean, p50, p99 in ms.
2. Concurrent streams: ``--streams`` independent streams stepped round-robin (each its own state) for
   ``--rounds`` rounds; throughput in steps/s, and the streams one core sustains at 2 Hz and 30 Hz label rates
   (throughput / rate, i.e. with the core 100 % busy; keep headroom in practice).
3. Offline inference on a 5-minute recording at 2 Hz (600 steps; ``--minutes``, ``--rate``), batch 1: PyTorch
   (packed GRU, ``no_grad``) vs ONNX Runtime on the model exported by :func:`affectflow.export.onnx.export_model_onnx`;
   median of ``--repeats`` runs, and the max abs difference of their outputs.

4. Live audio (``--audio-s`` s of a noisy harmonic signal pushed in 0.1 s chunks at 16 kHz) through
   :class:`AudioStreamPredictor` for a GRU on eGeMAPS (2 Hz, 1 s windows): CPU seconds per audio second
   (real-time factor; eGeMAPS by openSMILE dominates) and the delay of the first step, for features computed
   as soon as each frame's audio is there (``--block-frames 1``) or in blocks of N frames (less context
   re-analysed per frame, N - 1 label steps more delay).

::

    python benchmarks/bench_stream.py
    python benchmarks/bench_stream.py --streams 200 --rounds 50 --minutes 5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DIMS = "egemaps=88,face_landmarks=52,fer=7,phys=21,physio_rates=4,word_vad=3,sentence_embedding=384"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", default=DEFAULT_DIMS, help="feature sets and widths, name=D,...")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=2.0, help="label rate of the offline recording (Hz)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--audio-s", type=float, default=60.0)
    ap.add_argument("--block-frames", type=int, nargs="+", default=[1, 4])
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from affectflow.config import load_config
    from affectflow.streaming import Streamer
    from tests.deploy.helpers import fake_run

    dims = {kv.split("=")[0]: int(kv.split("=")[1]) for kv in args.dims.split(",")}
    cfg = load_config(None, ["data.corpus=unused"])
    params = {k: v for k, v in cfg.to_dict()["model"].items() if k != "type"}
    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    run = fake_run(tmp / "run", "gru", params, dims=dims)
    rng = np.random.default_rng(0)
    print(f"model gru {params}; inputs {dims} (sum {sum(dims.values())}); 1 thread; machine shared: "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    # 1. latency of one stream
    s = Streamer(run)
    frames = [{n: rng.normal(size=d).astype(np.float32) for n, d in dims.items()} for _ in range(200)]
    for f in frames[:50]:
        s.step(f)
    lat = np.empty(args.steps)
    c0 = time.thread_time()
    for i in range(args.steps):
        f = frames[i % len(frames)]
        t0 = time.perf_counter()
        s.step(f)
        lat[i] = time.perf_counter() - t0
    cpu = (time.thread_time() - c0) / args.steps * 1e3
    lat *= 1e3
    print(f"\n1. Streamer.step latency over {args.steps} steps (strategy {s.strategy!r}): wall mean {lat.mean():.3f} ms, "
          f"p50 {np.percentile(lat, 50):.3f} ms, p99 {np.percentile(lat, 99):.3f} ms; CPU time {cpu:.3f} ms/step "
          "(goal <= 1 ms)")

    # 2. many concurrent streams
    streams = [s.clone() for _ in range(args.streams)]
    for st in streams:
        st.step(frames[0])
    t0, c0 = time.perf_counter(), time.thread_time()
    n = 0
    for r in range(args.rounds):
        for k, st in enumerate(streams):
            st.step(frames[(r + k) % len(frames)])
            n += 1
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    for label, sec in (("wall", wall), ("CPU", cpu)):
        thr = n / sec
        print(f"{'' if label == 'CPU' else chr(10)}2. {args.streams} concurrent streams x {args.rounds} steps "
              f"({label} time): {thr:.0f} steps/s on one core -> {thr / 2:.0f} streams at 2 Hz, {thr / 30:.0f} "
              "streams at 30 Hz (core 100 % busy)")

    # 3. ONNX Runtime vs PyTorch, offline, one recording
    import onnxruntime as ort

    from affectflow.experiment import load_model
    from affectflow.export.onnx import export_model_onnx, input_names

    model, _, _ = load_model(run)
    t = int(args.minutes * 60 * args.rate)
    x = {n: torch.from_numpy(rng.normal(size=(1, t, d)).astype(np.float32)) for n, d in dims.items()}
    fm = {n: torch.ones(1, t, dtype=torch.bool) for n in dims}
    mask = torch.ones(1, t, dtype=torch.bool)
    path = export_model_onnx(model, dims, tmp / "model.onnx")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {"mask": mask.numpy(), **{f"x.{n}": v.numpy() for n, v in x.items()},
             **{f"feature_mask.{n}": v.numpy() for n, v in fm.items()}}
    feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}

    def time_it(fn):
        fn()
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts)) * 1e3

    with torch.no_grad():
        ref = model(x, mask, fm).numpy()
        t_torch = time_it(lambda: model(x, mask, fm))
    out = sess.run(None, feeds)[0]
    t_ort = time_it(lambda: sess.run(None, feeds))
    print(f"\n3. offline, {args.minutes:g} min at {args.rate:g} Hz = {t} steps, batch 1, 1 thread, median of "
          f"{args.repeats}: PyTorch {t_torch:.2f} ms, ONNX Runtime {t_ort:.2f} ms "
          f"(ONNX/PyTorch time ratio {t_ort / t_torch:.2f}); max abs diff {np.abs(out - ref).max():.2e}")

    # 4. live audio
    from affectflow.features.base import EXTRACTORS
    from affectflow.features.pipeline import load_builtin_extractors
    from affectflow.streaming import AudioStreamPredictor

    load_builtin_extractors()
    ex = EXTRACTORS.build("egemaps", {"rate_hz": 2.0, "win_dur": 1.0})
    arun = fake_run(tmp / "audio-run", "gru", params, dims={"egemaps": len(ex.columns())})
    ck = torch.load(arun / "checkpoints" / "seed-1.pt", weights_only=True)
    ck["data"]["feature_sets"]["egemaps"].update(columns=ex.columns(), modality="audio", params={
        "extractor": "egemaps", "config_hash": ex.config_hash(), "params": ex.params()})
    torch.save(ck, arun / "checkpoints" / "seed-1.pt")
    sr = 16000
    tt = np.arange(int(args.audio_s * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.3 * tt)
    sig = (0.3 * np.sin(2 * np.pi * np.cumsum(f0) / sr) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * tt))
           + 0.01 * rng.normal(size=tt.size)).astype(np.float32)
    print()
    for bf in args.block_frames:
        live = AudioStreamPredictor(arun, block_frames=bf)
        chunk = int(0.1 * sr)
        c0 = time.thread_time()
        first = None
        n = 0
        for i in range(0, sig.size, chunk):
            got = live.push(sig[i:i + chunk], sr)
            if got and first is None:
                first = (i + chunk) / sr - got[0]["time"]
            n += len(got)
        n += len(live.flush())
        cpu = time.thread_time() - c0
        print(f"4. live audio, {args.audio_s:g} s in 0.1 s chunks, block_frames={bf}: {n} steps, {cpu:.2f} CPU s -> "
              f"real-time factor {cpu / args.audio_s:.3f} ({args.audio_s / cpu:.0f} live audio streams per core); "
              f"first step emitted {first:.2f} s after its time")


if __name__ == "__main__":
    main()
