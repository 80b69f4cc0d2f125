"""Backbone training from generated video: extraction and training memory (peak RSS) and speed (frames/s).

``--hours`` of face video are generated with the project's media generator (:func:`affectflow.synthetic.media.
generate_media_corpus`: ``--hours * 3600 / --rec-s`` subjects with one ``--rec-s`` second recording each, 30 fps,
``--video-size`` pixels, labels at 30 Hz so that every label step is one frame; no audio, physiology or
transcript), once per ``--workdir``. Then, each in a fresh subprocess so that its peak RSS is its own:

``extract``
    ``affectflow extract`` of ``face_crops`` (``--size`` x ``--size`` RGB at every frame) with one worker: decoding,
    cropping and writing the feature files. Printed: frames/s and peak RSS.
``train``
    The ABAW5-style model (small ResNet over each frame + causal TCN, progressive unfreezing, windows of 300
    frames, batch 12, evaluation in windows of 300 every 200) for one epoch of at most ``--batches`` batches over the
    training windows of the whole corpus: building the aligned uint8 cache, the normaliser, the batches, devel
    scoring of one recording. Printed: training frames/s (real time steps per second of the training loop) and peak
    RSS; the per-partition scoring that ``train`` does after the last epoch (the whole training partition) is
    skipped, as it is inference, not training.

Usage::

    python benchmarks/bench_backbone.py                                 # 0.25 h of 48x48 crops
    python benchmarks/bench_backbone.py --hours 2 --batches 20           # two hours of video
    python benchmarks/bench_backbone.py --device cuda                    # on a GPU (bfloat16 autocast)
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def make_media(path: Path, hours: float, rec_s: float, video_size: int) -> float:
    """Generate the corpus (if missing); return the seconds it took."""
    from affectflow.synthetic.media import generate_media_corpus

    if (path / "corpus.json").is_file():
        return 0.0
    t0 = time.perf_counter()
    n = max(3, int(round(hours * 3600 / rec_s)))
    frac = 1.0 / n  # one devel and one test recording
    generate_media_corpus(path, n_subjects=n, duration_s=hours * 3600 / n, seed=0, video_fps=30,
                          video_size=video_size, label_rate_hz=30.0, audio=False, physio=False, transcript=False,
                          partitions=(1.0 - 2 * frac, frac, frac))
    return time.perf_counter() - t0


def child_extract(corpus: Path, size: int) -> dict:
    from affectflow.features.pipeline import extract

    t0 = time.perf_counter()
    extract(corpus, {"face_crops": {"size": size, "rate_hz": None}}, progress=False, workers=1)
    return {"seconds": time.perf_counter() - t0}


class _Done(Exception):
    pass


def child_train(corpus: Path, runs: Path, size: int, device: str, threads: int, batches: int) -> dict:
    import torch

    import affectflow.experiment as E
    from affectflow.config import load_config

    torch.set_num_threads(threads)
    result: dict = {}
    real = E.fit_seed

    def fit_limited(*args, **kwargs):
        res = real(*args, **kwargs, max_batches=batches)
        result["frames_per_s"] = res.frames_per_s
        result["history"] = res.history
        raise _Done()  # skip the scoring of every partition after training

    E.fit_seed = fit_limited
    cfg = load_config(None, [
        f"data.corpus={corpus}", f"output.runs_dir={runs}", "data.features=[face_crops]",
        "data.window.size=300", "data.window.hop=200", "data.eval_window={size: 300, hop: 200}",
        "training.batch_size=12", "training.epochs=1", "training.seeds=[1]", f"training.device={device}",
        f"training.num_threads={threads}", "output.plots=false", "training.schedule=progressive_unfreezing",
        "training.unfreezing.lr=1e-3",
        "model={type: composite, fusion: {type: early, d_model: null}, encoder: {type: stack, stages: ["
        f"{{type: backbone, input_shape: [3, {size}, {size}], widths: [16, 32, 64, 128]}}, "
        "{type: tcn, channels: [64, 64], causal: true}]}}"])
    t0 = time.perf_counter()
    try:
        E.train(cfg, progress=False)
    except _Done:
        pass
    h = result["history"][0]
    return {"frames_per_s": float(result["frames_per_s"]), "epoch_s": float(h["seconds"]),
            "wall_s": time.perf_counter() - t0}


def _child(args, phase: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", phase, *sys.argv[1:]], capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=0.25)
    ap.add_argument("--rec-s", type=float, default=300.0, help="seconds per recording")
    ap.add_argument("--size", type=int, default=48, help="crop side")
    ap.add_argument("--video-size", type=int, default=64, help="side of the generated video frames")
    ap.add_argument("--batches", type=int, default=20, help="training batches measured")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default="bench_backbone_work")
    ap.add_argument("--child", choices=["extract", "train"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.workdir)
    corpus = work / f"media-{args.hours:g}h-{int(args.rec_s)}s-v{args.video_size}"
    if args.child:
        if args.child == "extract":
            res = child_extract(corpus, args.size)
        else:
            res = child_train(corpus, work / "runs", args.size, args.device, args.threads, args.batches)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        res["peak_rss_mb"] = ru.ru_maxrss / 1024.0
        res["cpu_s"] = ru.ru_utime + ru.ru_stime  # on a busy machine, wall time says little about the code
        print(json.dumps(res))
        return
    gen_s = make_media(corpus, args.hours, args.rec_s, args.video_size)
    frames = int(round(args.hours * 3600 * 30))
    print(f"corpus: {args.hours:g} h of {args.video_size}x{args.video_size} video at 30 fps in {args.rec_s:g} s "
          f"recordings (~{frames} frames; generated in {gen_s:.0f} s)")
    ex = _child(args, "extract")
    feat = sum(f.stat().st_size for f in (corpus / "features" / "face_crops").glob("*.parquet"))
    print(f"extract face_crops {args.size}x{args.size} (1 worker): {frames / ex['seconds']:.0f} frames/s "
          f"({frames / ex.get('cpu_s', float('nan')):.0f} per CPU second), peak RSS {ex['peak_rss_mb']:.0f} MB, "
          f"feature files {feat / 2**20:.0f} MB")
    tr = _child(args, "train")
    cache = sum(f.stat().st_size for f in (corpus / "cache").rglob("*.npy"))
    print(f"train ({args.device}, {args.threads} thread(s), {args.batches} batches of 12 x 300 frames): "
          f"{tr['frames_per_s']:.0f} frames/s, peak RSS {tr['peak_rss_mb']:.0f} MB (wall {tr['wall_s']:.0f} s, "
          f"{tr.get('cpu_s', float('nan')):.0f} CPU s with the cache, normaliser and devel scoring)")
    print(f"uint8 aligned cache: {cache / 2**20:.0f} MB (float32 would be "
          f"{frames * 3 * args.size ** 2 * 4 / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
