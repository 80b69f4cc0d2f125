"""Real-time factor and peak memory of the default extraction pipeline on synthetic raw media.

What it does
    1. Generates (or reuses) a synthetic raw-media corpus of one ``--minutes`` long recording with
       :func:`affectflow.synthetic.media.generate_media_corpus`: espeak-ng speech (16 kHz wav), a 160x160 25 fps
       H.264 face video, ECG/respiration/EDA at 250 Hz, and a word-level transcript.
    2. Runs the default pipeline (``configs/extract_default.yaml``: egemaps, face_landmarks, fer, phys,
       physio_rates, word_vad, sentence_embedding, all at 2 Hz) on it with ``--workers`` processes, in a child
       process pinned to ``--cores`` CPU cores, from a cold start (model loading included), and reports

       - the whole pipeline's real-time factor ``RTF = wall seconds / media seconds`` (target: <= 0.1, i.e. at
         least 10x faster than real time on 2 cores with workers=2) and the speed-up ``1 / RTF``;
       - each extractor's RTF = its job's compute seconds (in its worker, model loading included) / media seconds;
       - the peak memory of the process tree (sum of the resident set sizes of the child and its workers,
         polled every 0.1 s) and the largest single process.
    3. Repeats the run for every length in ``--memory-minutes`` (default 10 and 60) to show whether peak memory
       grows with the recording's length.

Extractors whose module does not import (missing optional dependency) are left out and listed.

Usage::

    python benchmarks/bench_extract.py                         # 10 min RTF + memory at 10 and 60 min
    python benchmarks/bench_extract.py --minutes 2 --memory-minutes 2,6 --out /tmp/bx    # a quick run
    python benchmarks/bench_extract.py --features egemaps,phys --workers 1 --cores 1

Generated corpora are kept in ``--out`` (default ``/tmp/affectflow_bench_extract``) and reused by later runs
with the same length; results are written to ``<out>/bench_extract.json``.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _corpus(out: Path, minutes: float, seed: int) -> tuple[Path, float]:
    """A one-recording corpus of ``minutes`` (generated once, then reused)."""
    from affectflow.synthetic.media import generate_media_corpus

    path = out / f"media_{minutes:g}min_seed{seed}"
    if (path / "media.csv").is_file() and (path / "reports" / "generate_media.json").is_file():
        return path, 0.0
    if path.exists():
        shutil.rmtree(path)
    t0 = time.perf_counter()
    generate_media_corpus(path, n_subjects=1, duration_s=minutes * 60.0, seed=seed)
    return path, time.perf_counter() - t0


def _available_config(features: str | None) -> tuple[dict, dict[str, str]]:
    """The default config (or the named feature sets), minus the extractors that cannot be built here."""
    from affectflow.cli.extract import resolve_config
    from affectflow.features.pipeline import build_extractors, load_builtin_extractors

    errors = load_builtin_extractors()
    cfg = resolve_config(None, features, [])
    kept, dropped = {}, {}
    for name, spec in cfg["features"].items():
        try:
            build_extractors({"defaults": cfg["defaults"], "features": {name: spec}})
            kept[name] = spec
        except Exception as e:  # noqa: BLE001
            dropped[name] = f"{type(e).__name__}: {e}"
    if errors:
        dropped.update({f"(module {m})": err for m, err in errors.items()})
    return {"defaults": cfg["defaults"], "features": kept}, dropped


def _child(corpus: str, config_file: str, workers: int, result_file: str) -> None:
    """Run the extraction (in the child process) and write its summary."""
    from affectflow.features.pipeline import extract

    t0 = time.perf_counter()
    s = extract(corpus, config_file, workers=workers, overwrite=True, progress=False)
    wall = time.perf_counter() - t0
    Path(result_file).write_text(
        json.dumps({"wall_s": wall, "summary": s.to_dict(), "report": str(s.report_path)}, default=str)
    )


def _tree_rss(proc) -> tuple[int, int]:
    import psutil

    total, biggest = 0, 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0, 0
    for p in procs:
        try:
            r = p.memory_info().rss
        except psutil.Error:
            continue
        total += r
        biggest = max(biggest, r)
    return total, biggest


def _run_measured(corpus: Path, cfg: dict, workers: int, cores: int) -> dict:
    """Extract in a child process pinned to ``cores`` cores; poll the tree's memory."""
    import psutil
    import yaml

    tmp = Path(tempfile.mkdtemp(prefix="bench_extract_"))
    cfg_file, res_file = tmp / "config.yaml", tmp / "result.json"
    cfg_file.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    cmd = [sys.executable, __file__, "--_child", str(corpus), str(cfg_file), str(workers), str(res_file)]
    avail = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = avail[:cores] if avail and cores and cores < len(avail) else None
    t0 = time.perf_counter()
    p = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None,
    )
    proc = psutil.Process(p.pid)
    peak_total, peak_single = 0, 0
    while p.poll() is None:
        tot, big = _tree_rss(proc)
        peak_total, peak_single = max(peak_total, tot), max(peak_single, big)
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.returncode != 0 or not res_file.is_file():
        raise RuntimeError(f"extraction child failed (exit {p.returncode}):\n{err[-3000:]}")
    res = json.loads(res_file.read_text())
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "process_wall_s": wall,
        "extract_wall_s": res["wall_s"],
        "peak_tree_rss_mb": peak_total / 2**20,
        "peak_single_rss_mb": peak_single / 2**20,
        "summary": res["summary"],
        "report": res["report"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the RTF recording (default 10)")
    ap.add_argument(
        "--memory-minutes", default="10,60", help="lengths for the memory comparison (default 10,60)"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2, help="CPU cores the extraction may use (default 2)")
    ap.add_argument("--features", help="comma-separated subset of the default pipeline")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="/tmp/affectflow_bench_extract")
    ap.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        _child(args._child[0], args._child[1], int(args._child[2]), args._child[3])
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg, dropped = _available_config(args.features)
    print(f"extractors: {list(cfg['features'])}" + (f"; left out: {dropped}" if dropped else ""))
    lengths = sorted({args.minutes, *(float(m) for m in args.memory_minutes.split(",") if m.strip())})
    results: dict = {
        "workers": args.workers,
        "cores": args.cores,
        "config": cfg,
        "left_out": dropped,
        "runs": {},
    }
    for minutes in lengths:
        path, gen_s = _corpus(out, minutes, args.seed)
        print(
            f"\n== {minutes:g} min ({'generated in %.1f s' % gen_s if gen_s else 'reused'}: {path})",
            flush=True,
        )
        r = _run_measured(path, cfg, args.workers, args.cores)
        media_s = minutes * 60.0
        s = r["summary"]
        per = []
        for c in s["counts"]:
            jobs = [j for j in s["results"] if j["feature_set"] == c["feature_set"] and j["status"] == "done"]
            comp = sum(j["seconds"] for j in jobs)
            per.append(
                {
                    "feature_set": c["feature_set"],
                    "done": c["done"],
                    "failed": c["failed"],
                    "compute_s": round(comp, 2),
                    "rtf": round(comp / media_s, 4),
                }
            )
        rtf = r["extract_wall_s"] / media_s
        run = {
            "minutes": minutes,
            "generate_s": round(gen_s, 1),
            "extract_wall_s": round(r["extract_wall_s"], 2),
            "process_wall_s": round(r["process_wall_s"], 2),
            "rtf": round(rtf, 4),
            "speedup": round(1 / rtf, 2),
            "peak_tree_rss_mb": round(r["peak_tree_rss_mb"], 1),
            "peak_single_rss_mb": round(r["peak_single_rss_mb"], 1),
            "per_extractor": per,
            "failures": [f"{f['feature_set']}/{f['recording']}: {f['message']}" for f in s["failures"]],
            "report": r["report"],
        }
        results["runs"][f"{minutes:g}"] = run
        print(f"{'feature set':20s} {'done':>4s} {'failed':>6s} {'compute s':>10s} {'RTF':>8s}")
        for x in per:
            print(
                f"{x['feature_set']:20s} {x['done']:4d} {x['failed']:6d} {x['compute_s']:10.2f} {x['rtf']:8.4f}"
            )
        print(
            f"whole pipeline: {r['extract_wall_s']:.1f} s for {media_s:.0f} s of media -> RTF {rtf:.4f} "
            f"({1 / rtf:.1f}x faster than real time) with {args.workers} workers on {args.cores} cores"
        )
        print(
            f"peak memory: process tree {r['peak_tree_rss_mb']:.0f} MB, largest process {r['peak_single_rss_mb']:.0f} MB"
        )
        for f in run["failures"]:
            print(f"  FAILED {f}")
    if len(results["runs"]) > 1:
        print("\nmemory vs length:")
        for k, run in results["runs"].items():
            print(
                f"  {k:>5s} min: tree {run['peak_tree_rss_mb']:7.0f} MB, largest process {run['peak_single_rss_mb']:7.0f} MB, "
                f"RTF {run['rtf']:.4f}"
            )
    (out / "bench_extract.json").write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out / 'bench_extract.json'}")
    main_run = results["runs"][f"{args.minutes:g}"]
    return 0 if not main_run["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
