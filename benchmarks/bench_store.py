"""Clip-corpus import: the packed feature store against one Parquet file per clip and set, in one script run.

Generates a MER 2023-style layout of ``--clips`` clips (``affectflow.synthetic.mer.generate_mer``: an utterance-level
set ``utt`` and a frame-level set ``frames``, plus the utterance-level sets of ``--extra-sets`` written beside them
from ``utt`` by a fixed random projection with noise), then imports it with ``affectflow import-mer`` in a fresh
subprocess per layout, so that wall time and peak RSS (``os.wait4``) belong to the import alone:

- ``packed``: the current default (one memory-mapped array per feature set, :mod:`affectflow.corpus.packed`);
- ``files``: ``--storage files``, the per-clip Parquet layout every import wrote before (or, with ``--old-src DIR``,
  the import of another source tree, e.g. ``git archive 7b00f2f src | tar -x -C DIR``).

Printed per layout: wall time, CPU time (user + system of the import process: the fairer measure on a shared
machine), peak RSS, output size (the whole corpus folder) against the size of the input
``.npy`` files, and file counts. With ``--train``, a 1-epoch clip-task training (``affectflow train``, GRU, one seed)
on the packed corpus, with its wall time and peak RSS (the first training also builds the aligned cache).

Usage::

    python benchmarks/bench_store.py                                  # 4 000 clips, six sets (~95 MB of .npy)
    python benchmarks/bench_store.py --clips 100000 --utt-dim 32 --frame-dim 8 --frames 2 6 \\
        --extra-sets a:16 --no-files --train                          # the 100 k-clip run of the README
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's affectflow, also in the subprocesses (PYTHONPATH below)


def folder_stats(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path``."""
    size = n = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            size += os.path.getsize(os.path.join(dirpath, f))
            n += 1
    return size, n


def make_layout(out: Path, clips: int, utt_dim: int, frame_dim: int, frames: tuple[int, int],
                extra: list[tuple[str, int]], seed: int = 0) -> None:
    """The MER-style layout (see the module docstring)."""
    from affectflow.synthetic.mer import clip_split, generate_mer

    n_train, n_test = clip_split(clips)
    generate_mer(out, n_train=n_train, n_test=n_test, utt_dim=utt_dim, frame_dim=frame_dim, frames=tuple(frames),
                 seed=seed, acoustic_layers=False, progress=True)
    rng = np.random.default_rng(seed + 1)
    utt_files = sorted((out / "features" / "utt").glob("*.npy"))
    for name, dim in extra:
        proj = rng.normal(0, 1 / np.sqrt(utt_dim), (utt_dim, dim)).astype(np.float32)
        folder = out / "features" / name
        folder.mkdir()
        for f in utt_files:
            x = np.load(f) @ proj + rng.normal(0, 0.5, dim).astype(np.float32)
            np.save(folder / f.name, x.astype(np.float32))


def run_measured(cmd: list[str], env: dict, log: Path) -> dict:
    """Run ``cmd``; return wall seconds, peak RSS (MiB) and the exit code (output to ``log``)."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    return {"seconds": round(wall, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "rc": os.waitstatus_to_exitcode(status)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=4000)
    ap.add_argument("--utt-dim", type=int, default=1024)
    ap.add_argument("--frame-dim", type=int, default=64)
    ap.add_argument("--frames", type=int, nargs=2, default=(10, 40), metavar=("MIN", "MAX"),
                    help="frames per clip of the frame-level set (5 Hz)")
    ap.add_argument("--extra-sets", default="audio_b:768,video_a:1024,video_b:512,text_a:1024",
                    help="NAME:DIM,... utterance-level sets added to utt and frames ('' for none)")
    ap.add_argument("--workdir", help="keep everything here (default: a temporary folder, removed)")
    ap.add_argument("--no-files", action="store_true", help="skip the per-file import (e.g. for 100 k clips)")
    ap.add_argument("--old-src", help="import the 'files' layout with this source tree (DIR/src) instead of "
                    "--storage files")
    ap.add_argument("--train", action="store_true", help="also train 1 epoch on the packed corpus")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    extra = [(s.split(":")[0], int(s.split(":")[1])) for s in args.extra_sets.split(",") if s.strip()]

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"clips": args.clips, "sets": {"utt": args.utt_dim, "frames": args.frame_dim,
                                               **dict(extra)}, "frames_per_clip": list(args.frames)}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "AFFECTFLOW_PROGRESS": "lines", "OMP_NUM_THREADS": "1"}
    py = [sys.executable, "-m", "affectflow.cli.main"]
    try:
        layout = work / "layout"
        if not layout.exists():
            t0 = time.perf_counter()
            make_layout(layout, args.clips, args.utt_dim, args.frame_dim, tuple(args.frames), extra)
            res["generate_seconds"] = round(time.perf_counter() - t0, 1)
        inp, n_in = folder_stats(layout / "features")
        res["input"] = {"bytes": inp, "files": n_in}
        print(f"layout: {args.clips} clips, sets {res['sets']} -> {inp / 1e6:.1f} MB in {n_in} .npy files")
        rate = ["--frame-rate", "frames=5"]
        layouts = [("packed", env, [])]
        if not args.no_files:
            old_env = {**env, "PYTHONPATH": str(Path(args.old_src) / "src")} if args.old_src else env
            layouts.append(("files", old_env, [] if args.old_src else ["--storage", "files"]))
        for name, e, extra_args in layouts:
            out = work / f"corpus_{name}"
            shutil.rmtree(out, ignore_errors=True)
            m = run_measured(py + ["import-mer", str(layout), str(out)] + rate + extra_args, e, work / f"{name}.log")
            if m["rc"] != 0:
                print((work / f"{name}.log").read_text()[-3000:])
                raise SystemExit(f"import ({name}) failed")
            size, files = folder_stats(out)
            m.update(bytes=size, files=files, size_ratio=round(size / inp, 3))
            res[name] = m
            print(f"import {name:6s}: {m['seconds']:8.1f} s wall, {m['cpu_seconds']:7.1f} s CPU  peak RSS "
                  f"{m['peak_rss_mib']:5.0f} MiB  "
                  f"{size / 1e6:8.1f} MB ({size / inp:.2f}x input) in {files} files")
            for line in (work / f"{name}.log").read_text().splitlines():
                if line.startswith("[affectflow]"):
                    print("    " + line)
        if "files" in res:
            res["speedup"] = round(res["files"]["seconds"] / res["packed"]["seconds"], 1)
            res["cpu_speedup"] = round(res["files"]["cpu_seconds"] / res["packed"]["cpu_seconds"], 1)
            print(f"packed vs files: {res['speedup']}x faster (wall), {res['cpu_speedup']}x less CPU time, "
                  f"{res['files']['bytes'] / res['packed']['bytes']:.1f}x smaller")
        if args.train:
            feats = ",".join(["utt", "frames"] + [n for n, _ in extra])
            cmd = py + ["train", "--corpus", str(work / "corpus_packed"), "--set", "data.task=clip",
                        "--set", "data.targets=[discrete,valence]", "--set", f"data.features=[{feats}]",
                        "--set", "data.test_partitions=[test1,test2,test3]", "--set", "training.loss=mse",
                        "--set", "training.epochs=1", "--set", "training.seeds=[1]",
                        "--set", "training.num_threads=1", "--set", f"output.runs_dir={work / 'runs'}",
                        "--set", "output.plots=false", "-q"]
            m = run_measured(cmd, env, work / "train.log")
            if m["rc"] != 0:
                print((work / "train.log").read_text()[-3000:])
                raise SystemExit("training failed")
            run = next((work / "runs").iterdir())
            metrics = json.loads((run / "metrics.json").read_text())
            m["train_samples_per_s"] = metrics.get("train_samples_per_s")
            res["train"] = m
            print(f"train 1 epoch: {m['seconds']:.1f} s wall, {m['cpu_seconds']:.1f} s CPU, peak RSS {m['peak_rss_mib']:.0f} MiB "
                  f"({m['train_samples_per_s'] or 0:.0f} train samples/s in the loop); run {run}")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
