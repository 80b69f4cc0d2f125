"""Scaling: the same 16-cell sweep and the same extraction run serially, with the local process pool and on a local
Ray cluster; per-task overhead; a model of how the MuSe 2023 recipe's wall time scales with cluster nodes.

What it does
    1. Sweep: a synthetic feature corpus (``--subjects`` × ``--duration`` s), a 4 × 2 × 2 = 16-cell grid (feature
       sets × lr × d_model; ``--epochs``, one seed, one torch thread per cell) through :func:`run_sweep` with the
       ``serial`` backend, ``local`` (``--workers`` processes) and ``ray`` (a private local cluster of ``--workers``
       CPUs). Every cell is timed inside its worker (job start to end), so

       - ``busy`` = Σ cell seconds, ``ideal`` = busy / slots (slots = 1 serially, else ``--workers``),
       - overhead per task = ``(wall × slots − busy) / cells``: the time a slot spends per task on anything but the
         cell (process start, pickling, scheduling, the driver's sweep.json / results table after every cell).
    2. Extraction: a generated raw-media corpus (``--media-recordings`` × ``--media-duration`` s; espeak speech,
       physiology) through :func:`affectflow.features.pipeline.extract` with ``egemaps``, ``phys`` and
       ``physio_rates`` (serial, local pool, Ray); the same overhead per task from the jobs' compute seconds.
    3. Ray floor: start-up time of the local cluster and the round trip of ``--noop`` empty tasks.
    4. A model of the MuSe 2023 recipe (``src/affectflow/recipes/muse2023.yaml``, the paper's 10 feature sets) on
       ``n`` nodes of ``c`` slots: stages run one after another (unimodal 20 cells → early fusion 8 cells →
       personalisation 6 members × 14 subjects × 10 seeds in groups of 8 = 108 tasks → fusion), so
       ``T(n) = Σ_stages ceil(tasks_s / (n·c)) · t_s + tasks · overhead`` and two limits: the **driver** records
       every finished task (sweep.json + results table: ``d(N) ≈ d16 · N / 16`` s, measured here on the 16-cell
       sweep) and saturates when ``n·c / t_cell > 1 / d``; the **shared storage** saturates when
       ``n·c · (bytes read + written per cell) / t_cell`` exceeds its bandwidth (``--storage-mb-s``).

The machine is shared with other developers while this runs (2 cores): absolute seconds move with their load; the
ratios and the per-task overheads are the point. Ray runs in a loopback-only network namespace
(:func:`affectflow.execution.ray_executor.loopback_only`); if that is impossible the Ray part is left out.

Usage::

    nice -n 10 python benchmarks/bench_scale.py                   # ~4 min here
    python benchmarks/bench_scale.py --epochs 2 --subjects 8 --out /tmp/bs --cell-seconds 600

Results: printed, and ``<out>/bench_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml  # noqa: E402

import affectflow.procedures.sweep as sweep_mod  # noqa: E402

_ORIGINAL_RUN_CELL = sweep_mod.run_cell


def timed_cell(job: dict) -> dict:
    """A sweep cell timed inside its worker (start / end wall clock, pid)."""
    t0 = time.time()
    res = _ORIGINAL_RUN_CELL(job)
    return {**res, "t0": t0, "t1": time.time(), "pid": os.getpid()}


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_sweep(out: Path, corpus: Path, backend: str, workers: int, epochs: int) -> dict:
    from affectflow.procedures.sweep import _load_cells

    doc = {"name": f"bench-{backend}",
           "config": {"data": {"corpus": str(corpus), "window": {"size": 40, "hop": 20}},
                      "model": {"d_fc": 16, "dropout": 0.0},
                      "training": {"epochs": epochs, "patience": epochs, "seeds": [1], "batch_size": 16,
                                   "device": "cpu"},
                      "output": {"runs_dir": str(out / "runs"), "plots": False}},
           "grid": {"data.features": [["acoustic"], ["visual"], ["physio"], ["acoustic", "visual", "physio"]],
                    "training.lr": [0.001, 0.003], "model.d_model": [16, 32]}}
    f = out / f"sweep-{backend}.yaml"
    f.write_text(yaml.safe_dump(doc))
    results: list[dict] = []
    orig = sweep_mod.get_executor

    def recording_executor(*a, **k):  # keep the per-cell timings run_sweep does not store
        ex = orig(*a, **k)
        inner = ex.map

        def map_(fn, items):
            for i, r in inner(fn, items):
                results.append(r)
                yield i, r
        ex.map = map_
        return ex

    sweep_mod.get_executor, sweep_mod.run_cell = recording_executor, timed_cell
    try:
        t0 = time.perf_counter()
        folder = sweep_mod.run_sweep(f, out=out / f"sweep-{backend}", backend=backend, workers=workers, threads=1)
        wall = time.perf_counter() - t0
    finally:
        sweep_mod.get_executor, sweep_mod.run_cell = orig, _ORIGINAL_RUN_CELL
    _, cells = _load_cells(folder)
    assert all(c.status == "finished" for c in cells), [c.error for c in cells]
    slots = 1 if backend == "serial" else workers
    busy = sum(r["t1"] - r["t0"] for r in results)
    n = len(results)
    t1 = time.perf_counter()
    sweep_mod.write_results(folder)
    record = time.perf_counter() - t1
    run_bytes = sum(_du(Path(c.run_dir)) for c in cells) / len(cells)
    return {"backend": backend, "slots": slots, "cells": n, "wall_s": wall, "busy_s": busy,
            "cell_s": busy / n, "ideal_s": busy / slots, "overhead_per_task_s": (wall * slots - busy) / n,
            "processes": len({r["pid"] for r in results}), "driver_record_s": record, "run_folder_bytes": run_bytes,
            "folder": str(folder)}


def bench_extract(out: Path, media: Path, backend: str, workers: int) -> dict:
    from affectflow.features.pipeline import extract

    target = out / f"media-{backend}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(media, target)
    cfg = {"egemaps": {}, "phys": {}, "physio_rates": {}}
    t0 = time.perf_counter()
    if backend == "local":
        s = extract(target, cfg, workers=workers, progress=False)
    else:
        s = extract(target, cfg, workers=workers, progress=False, backend=backend)
    wall = time.perf_counter() - t0
    done = [r for r in s.results if r.status == "done"]
    assert s.ok and done, s.format()
    slots = 1 if backend == "serial" else workers
    busy = sum(r.seconds for r in done)
    return {"backend": backend, "slots": slots, "jobs": len(done), "wall_s": wall, "busy_s": busy,
            "job_s": busy / len(done), "overhead_per_task_s": (wall * slots - busy) / len(done)}


def ray_floor(workers: int, n: int) -> dict:
    import ray

    from affectflow.execution import get_executor

    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    start = time.perf_counter() - t0
    ex = get_executor("ray", workers=workers, threads=1)
    list(ex.map(abs, list(range(workers * 2))))  # warm the workers
    t0 = time.perf_counter()
    got = dict(ex.map(abs, list(range(-n, 0))))
    per = (time.perf_counter() - t0) / n
    assert len(got) == n
    return {"cluster_start_s": start, "noop_tasks": n, "noop_task_s": per}


# ---------------------------------------------------------------------------- the recipe model
MUSE2023_STAGES = [  # (stage, tasks): the paper's 10 feature sets x 2 dimensions; 3 best per dimension
    ("unimodal sweep", 10 * 2),
    ("early-fusion sweep (pairs + triple of the 3 best, per dimension)", (3 + 1) * 2),
    ("personalisation (3 members x 2 dims; 14 subjects x 10 seeds in groups of 8)", 3 * 2 * math.ceil(14 * 10 / 8)),
]


def recipe_model(cell_s: float, pers_task_s: float, overhead_s: float, d16_s: float, cell_bytes: float,
                 storage_mb_s: float, slots_per_node: int, nodes: list[int]) -> dict:
    rows = []
    total_tasks = sum(t for _, t in MUSE2023_STAGES)
    for n in nodes:
        slots = n * slots_per_node
        t = 0.0
        for name, tasks in MUSE2023_STAGES:
            per = pers_task_s if name.startswith("personal") else cell_s
            t += math.ceil(tasks / slots) * (per + overhead_s)
        rows.append({"nodes": n, "slots": slots, "wall_s": t})
    d = d16_s * max(total_tasks, 16) / 16  # the driver's bookkeeping per finished task at this sweep size
    driver_slots = cell_s / d if d > 0 else math.inf
    storage_slots = storage_mb_s * 1e6 * cell_s / cell_bytes if cell_bytes > 0 else math.inf
    widest = max(t for _, t in MUSE2023_STAGES)
    return {"rows": rows, "driver_s_per_task": d, "driver_limit_slots": driver_slots,
            "storage_limit_slots": storage_slots, "widest_stage_tasks": widest,
            "useful_slots": min(widest, driver_slots, storage_slots)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/affectflow_bench_scale")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--subjects", type=int, default=10)
    ap.add_argument("--duration", type=float, default=150.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--media-recordings", type=int, default=4)
    ap.add_argument("--media-duration", type=float, default=20.0)
    ap.add_argument("--noop", type=int, default=200)
    ap.add_argument("--cell-seconds", type=float, default=600.0,
                    help="assumed seconds of one paper-scale MuSe 2023 cell (3 seeds x up to 60 epochs) for the model")
    ap.add_argument("--pers-task-seconds", type=float, default=60.0,
                    help="assumed seconds of one personalisation task (8 subject x seed jobs) for the model")
    ap.add_argument("--storage-mb-s", type=float, default=100.0, help="shared-storage bandwidth for the model")
    ap.add_argument("--slots-per-node", type=int, default=8)
    ap.add_argument("--cell-bytes", type=float, default=69 * 600 * 1500 * 4 + 5e6,
                    help="bytes one paper-scale cell reads + writes from shared storage (default ~253 MB: a 3-set "
                    "fusion of ~1500 float32 dims x 69 recordings x 600 steps, read once, + a ~5 MB run folder)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ray_ok = True
    try:
        from affectflow.execution.ray_executor import loopback_only

        loopback_only()
    except Exception as e:  # noqa: BLE001
        print(f"Ray part left out: no loopback-only namespace ({e})")
        ray_ok = False

    from affectflow.synthetic.corpus import generate_corpus
    from affectflow.synthetic.media import generate_media_corpus

    corpus = generate_corpus(out / "corpus", n_subjects=args.subjects, duration_s=args.duration, seed=0,
                             progress=False).path
    t0 = time.perf_counter()
    media = generate_media_corpus(out / "media", n_subjects=args.media_recordings, duration_s=args.media_duration,
                                  seed=0, video=False).path
    gen_s = time.perf_counter() - t0
    report: dict = {"machine": f"{os.cpu_count()} cores, shared with other developers", "args": vars(args)}
    # serial and the process pool first: the pool forks, which must not happen after Ray's threads started
    report["sweep"] = [bench_sweep(out, corpus, b, args.workers, args.epochs) for b in ("serial", "local")]
    report["extract"] = [bench_extract(out, media, b, args.workers) for b in ("serial", "local")]
    floor = ray_floor(args.workers, args.noop) if ray_ok else None
    report["ray_floor"] = floor
    if ray_ok:
        report["sweep"].append(bench_sweep(out, corpus, "ray", args.workers, args.epochs))
        report["extract"].append(bench_extract(out, media, "ray", args.workers))
    report["media_generation_s"] = gen_s

    print(f"\n16-cell sweep ({args.subjects} subjects x {args.duration:g} s, {args.epochs} epochs, 1 seed, 1 thread "
          "per cell); machine shared:")
    print(f"{'backend':8s} {'slots':>5s} {'wall s':>8s} {'cell s':>8s} {'ideal s':>8s} {'overhead/task s':>16s} "
          f"{'% of cell':>9s} {'procs':>5s}")
    for r in report["sweep"]:
        print(f"{r['backend']:8s} {r['slots']:5d} {r['wall_s']:8.1f} {r['cell_s']:8.2f} {r['ideal_s']:8.1f} "
              f"{r['overhead_per_task_s']:16.3f} {100 * r['overhead_per_task_s'] / r['cell_s']:8.1f}% "
              f"{r['processes']:5d}")
    print(f"\nExtraction ({args.media_recordings} recordings x {args.media_duration:g} s; egemaps, phys, "
          "physio_rates):")
    print(f"{'backend':8s} {'slots':>5s} {'jobs':>5s} {'wall s':>8s} {'job s':>8s} {'overhead/task s':>16s}")
    for r in report["extract"]:
        print(f"{r['backend']:8s} {r['slots']:5d} {r['jobs']:5d} {r['wall_s']:8.1f} {r['job_s']:8.2f} "
              f"{r['overhead_per_task_s']:16.3f}")
    if floor:
        print(f"\nRay: local cluster start {floor['cluster_start_s']:.1f} s; empty task round trip "
              f"{1000 * floor['noop_task_s']:.1f} ms ({floor['noop_tasks']} tasks, {args.workers} CPUs)")

    ray_row = next((r for r in report["sweep"] if r["backend"] == "ray"), report["sweep"][-1])
    serial_row = report["sweep"][0]
    cell_bytes = args.cell_bytes
    model = recipe_model(args.cell_seconds, args.pers_task_seconds, max(ray_row["overhead_per_task_s"], 0.0),
                         serial_row["driver_record_s"], cell_bytes, args.storage_mb_s, args.slots_per_node,
                         [1, 2, 4, 8, 16, 32])
    report["model"] = {**model, "cell_bytes": cell_bytes}
    print(f"\nMuSe 2023 recipe model (paper scale: cell {args.cell_seconds:g} s, personalisation task "
          f"{args.pers_task_seconds:g} s, {args.slots_per_node} slots per node, Ray overhead "
          f"{max(ray_row['overhead_per_task_s'], 0):.2f} s per task as measured):")
    for r in model["rows"]:
        print(f"  {r['nodes']:3d} nodes ({r['slots']:4d} slots): {r['wall_s'] / 3600:6.2f} h")
    print(f"  widest stage: {model['widest_stage_tasks']} tasks (more slots than that do not help); driver "
          f"bookkeeping {model['driver_s_per_task']:.3f} s per finished task -> driver-bound beyond "
          f"{model['driver_limit_slots']:.0f} slots; storage ({args.storage_mb_s:g} MB/s, "
          f"{cell_bytes / 1e6:.0f} MB per cell) -> storage-bound beyond {model['storage_limit_slots']:.0f} slots")
    big = 1000
    d_big = serial_row["driver_record_s"] * big / 16
    print(f"  a {big}-cell sweep: the driver rewrites sweep.json and the results table (reading every cell's "
          f"metrics) after each finished cell, ~{d_big:.1f} s per cell at that size -> driver-bound beyond "
          f"{args.cell_seconds / d_big:.0f} slots")
    report["model"]["driver_limit_slots_1000_cells"] = args.cell_seconds / d_big
    (out / "bench_scale.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nWritten {out / 'bench_scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
