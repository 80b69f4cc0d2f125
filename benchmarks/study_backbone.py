"""The issue-18 quality bar, as run for the README: backbones trained end to end on generated media.

``unfreeze``
    A small ResNet (widths 8-16-16-32) over 16x16 face crops + a causal TCN on the synthetic Aff-Wild2 layout
    (``affectflow generate-layout affwild2``, imported with the reference labels, ``face_crops`` and
    ``crop_pixels`` extracted at every frame), trained with ``training.schedule: progressive_unfreezing`` (groups
    stage4, stage3, stage2) and with the same backbone frozen (``groups: []``), each with the BatchNorm layers of
    frozen groups frozen (the default) and following the model's mode (``freeze_norm: false``), ``--seeds`` seeds
    each; devel CCC
    per seed (the layout withholds test labels), and the ridge yardstick on ``crop_pixels`` and on ``face_crops``.
``augment``
    A generated media corpus whose **test** recordings are degraded (audio mixed with babble of the test speakers
    at ``--test-snr`` dB, video frames blurred and darkened), backbones over ``face_crops`` (16x16) and
    ``logmel_patches`` (16 frames x 16 bands) + causal TCNs, trained without augmentation, with per-batch
    augmentation (``training.augment``: image transforms on the crops, babble at 5-11 dB on the patches), ``--seeds``
    seeds each; test CCC per seed, and the ridge yardstick.

Usage::

    python benchmarks/study_backbone.py unfreeze --work study_work [--seeds 1 2 3]
    python benchmarks/study_backbone.py augment --work study_work [--seeds 1 2 3]

Prints one line per trained run and a summary (mean +- std over seeds). Runs one training at a time with one
thread; on the shared 2-core machine ``unfreeze`` takes about 20 minutes and ``augment`` about 25.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _metrics(metrics: dict, part: str) -> dict[str, float]:
    best = metrics.get("best", metrics)
    return {t: float(v["ccc"]) for t, v in best[part].items() if isinstance(v, dict) and "ccc" in v}


def _train(overrides: list[str]) -> tuple[Path, dict]:
    from affectflow.config import load_config
    from affectflow.experiment import train

    run = train(load_config(None, overrides), progress=False)
    return run, json.loads((run / "metrics.json").read_text())


def _yardstick(overrides: list[str], out: Path) -> dict:
    from affectflow.config import load_config
    from affectflow.procedures.yardstick import run_yardstick

    _, m = run_yardstick(load_config(None, overrides), out=out)
    return m


def _summary(rows: dict[str, list[dict[str, float]]]) -> None:
    for name, per_seed in rows.items():
        keys = sorted(per_seed[0])
        print(f"  {name:28s} " + "  ".join(
            f"{k} {np.mean([r[k] for r in per_seed]):.3f} +- {np.std([r[k] for r in per_seed]):.3f}" for k in keys))


# ------------------------------------------------------------------------------------------------- unfreeze
def unfreeze(work: Path, seeds: list[int]) -> None:
    from affectflow.corpus.affwild2 import import_affwild2
    from affectflow.features.pipeline import extract
    from affectflow.synthetic.affwild2 import generate_affwild2

    corpus = work / "aw_corpus"
    if not (corpus / "corpus.json").is_file():
        generate_affwild2(work / "aw", n_videos=12, duration_s=20.0)
        import_affwild2(work / "aw", corpus, test_list=work / "aw" / "test_set.txt",
                        reference_labels=work / "aw" / "ground_truth", progress=False)
        extract(corpus, {"face_crops": {"size": 16, "rate_hz": None}, "crop_pixels": {"rate_hz": None}},
                progress=False)
    model = ("model={type: composite, fusion: {type: early, d_model: null}, encoder: {type: stack, stages: ["
             "{type: backbone, input_shape: [3, 16, 16], widths: [8, 16, 16, 32]}, "
             "{type: tcn, channels: [32, 32], causal: true}]}}")
    base = [f"data.corpus={corpus}", "data.features=[face_crops]", "data.targets=[valence,arousal]",
            "data.window.size=150", "data.window.hop=100", "data.eval_window={size: 300, hop: 200}",
            "training.batch_size=8", "training.epochs=40", "training.device=cpu", "training.num_threads=1",
            "output.plots=false", "training.schedule=progressive_unfreezing", "training.unfreezing.lr=1e-3",
            "training.unfreezing.min_lr=1e-5", "training.unfreezing.warmup_epochs=1",
            "training.unfreezing.patience=2", model]
    variants = (("progressive unfreezing", []), ("frozen backbone", ["training.unfreezing.groups=[]"]),
                ("progressive, BN follows mode", [model.replace("widths:", "freeze_norm: false, widths:")]),
                ("frozen, BN follows mode", ["training.unfreezing.groups=[]",
                                             model.replace("widths:", "freeze_norm: false, widths:")]))
    rows: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    for seed in seeds:
        for name, extra in variants:
            t0 = time.perf_counter()
            run, m = _train([*base, *extra, f"training.seeds=[{seed}]", f"output.runs_dir={work / 'runs'}"])
            dev = _metrics(m, "devel")  # the layout's test labels are withheld (only the noise-free reference)
            import pandas as pd

            h = pd.read_csv(run / "history" / f"seed-{seed}.csv", keep_default_na=False)
            unfrozen = [f"{g}@{e}" for e, g in zip(h["epoch"], h["unfrozen"]) if g]
            print(f"{name} seed {seed}: devel {dev}, epochs {len(h)}, unfrozen {unfrozen}, "
                  f"{time.perf_counter() - t0:.0f} s ({run.name})", flush=True)
            rows[name].append({f"devel_{k}": v for k, v in dev.items()})
    for feats in ("crop_pixels", "face_crops"):
        m = _yardstick([f"data.corpus={corpus}", f"data.features=[{feats}]", "data.targets=[valence,arousal]",
                        f"output.runs_dir={work / 'runs'}"], work / "runs" / f"yardstick-{feats}-{time.time_ns()}")
        print(f"ridge yardstick on {feats}: devel {_metrics(m, 'devel')}", flush=True)
    print("summary (mean +- std over seeds):")
    _summary(rows)


# ------------------------------------------------------------------------------------------------- augment
def augment(work: Path, seeds: list[int], test_snr: float) -> None:
    corpus = work / "media_corpus"
    if not (corpus / "corpus.json").is_file():
        make_degraded_corpus(corpus, test_snr)
    enc = ("{{type: stack, stages: [{{type: backbone, input_shape: {shape}, widths: [8, 8, 16, 16], "
           "pixel_norm: {norm}}}, {{type: tcn, channels: [16, 16], causal: true}}]}}")
    model = ("model={type: composite, fusion: {type: channel_attention, d_model: 16}, encoders: {"
             f"face_crops: {enc.format(shape='[3, 16, 16]', norm='[0.5, 0.5]')}, "
             f"logmel_patches: {enc.format(shape='[1, 16, 16]', norm='null')}}}}}")
    base = [f"data.corpus={corpus}", "data.features=[face_crops,logmel_patches]", "data.window.size=40",
            "data.window.hop=20", "training.batch_size=8", "training.epochs=30", "training.patience=8",
            "training.lr=0.002", "training.device=cpu", "training.num_threads=1", "output.plots=false", model]
    aug = ("training.augment={face_crops: {transforms: [brightness, blur, rotate, cutout], p: 0.5}, "
           "logmel_patches: {noise: babble, snr: [5, 11], p: 0.5}}")
    rows: dict[str, list[dict[str, float]]] = {"no augmentation": [], "per-batch augmentation": []}
    for seed in seeds:
        for name, extra in (("no augmentation", []), ("per-batch augmentation", [aug])):
            t0 = time.perf_counter()
            run, m = _train([*base, *extra, f"training.seeds=[{seed}]", f"output.runs_dir={work / 'runs'}"])
            dev, test = _metrics(m, "devel"), _metrics(m, "test")
            print(f"{name} seed {seed}: devel {dev}, test (degraded) {test}, {time.perf_counter() - t0:.0f} s "
                  f"({run.name})", flush=True)
            rows[name].append({f"test_{k}": v for k, v in test.items()})
    m = _yardstick([f"data.corpus={corpus}", "data.features=[face_crops,logmel_patches]",
                    f"output.runs_dir={work / 'runs'}"], work / "runs" / f"yardstick-aug-{time.time_ns()}")
    print(f"ridge yardstick (clean training): devel {_metrics(m, 'devel')}, test (degraded) {_metrics(m, 'test')}")
    print("summary (mean +- std over seeds):")
    _summary(rows)


def make_degraded_corpus(path: Path, test_snr: float) -> None:
    """A generated media corpus; its test recordings' audio gets babble of the other test speakers at
    ``test_snr`` dB and their video frames a blur and darkening (in place, before extraction)."""
    import av
    import cv2
    import soundfile as sf

    from affectflow.augment.audio import babble, mix_at_snr
    from affectflow.corpus.corpus import Corpus
    from affectflow.features.pipeline import extract
    from affectflow.synthetic.media import generate_media_corpus

    c = generate_media_corpus(path, n_subjects=12, duration_s=40.0, seed=0, physio=False, transcript=False,
                              video_size=32, video_fps=10)
    rec = c.recordings
    test = rec[rec["partition"] == "test"]["id"].tolist()
    rng = np.random.default_rng(7)
    audio = {rid: sf.read(path / "media" / f"{rid}.wav", dtype="float32") for rid in test}
    for rid in test:
        x, sr = audio[rid]
        others = [audio[o][0] for o in test if o != rid] or [x]
        sf.write(path / "media" / f"{rid}.wav", mix_at_snr(x, babble(others, len(x), rng), test_snr, rng), sr)
        src = path / "media" / f"{rid}.mp4"
        with av.open(str(src)) as cin:
            stream = cin.streams.video[0]
            frames = [f.to_ndarray(format="rgb24") for f in cin.decode(video=0)]
            rate = stream.average_rate
        tmp = src.with_suffix(".tmp.mp4")
        with av.open(str(tmp), "w") as cout:
            vs = cout.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
            vs.options = {"crf": "10"}
            for img in frames:
                img = np.clip(cv2.GaussianBlur(img, (0, 0), 1.5).astype(np.float32) * 0.6, 0, 255).astype(np.uint8)
                for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    cout.mux(p)
            for p in vs.encode():
                cout.mux(p)
        tmp.replace(src)
    extract(Corpus(path), {"face_crops": {"size": 16, "rate_hz": 2.0},
                           "logmel_patches": {"rate_hz": 2.0, "n_frames": 16, "n_mels": 16, "frame_hop": 0.02}},
            progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("study", choices=["unfreeze", "augment"])
    ap.add_argument("--work", default="study_backbone_work")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--test-snr", type=float, default=3.0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.study == "unfreeze":
        unfreeze(work, args.seeds)
    else:
        augment(work, args.seeds, args.test_snr)


if __name__ == "__main__":
    main()
