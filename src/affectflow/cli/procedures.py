"""CLI verbs of the experiment procedures (``affectflow sweep`` ...), thin wrappers over :mod:`affectflow.procedures`
(parsers in :mod:`affectflow.cli.parsers.procedures`).

::

    affectflow sweep sweep.yaml --workers 2 --threads 1        # run or resume; prints the results table
    affectflow sweep sweep.yaml --out runs/sweep-x --set training.epochs=5
    affectflow cv --corpus C -c cfg.yaml -k 6 --seed 0 --workers 2   # or --loso / --resplit
    affectflow fuse RUN_A RUN_B RUN_C [--method mean] [--step 0.05] [--weights shared]
    affectflow late-fusion RUN_AUDIO RUN_VIDEO RUN_PHYSIO --folds 5 [--set training.epochs=30]
"""

from __future__ import annotations

import argparse

from affectflow.cli.common import load_cfg, mlflow_uri
from affectflow.cli.options import executor_args, mlflow_flag, split_list
from affectflow.cli.parsers.procedures import register, register_more  # noqa: F401 - re-exported: they lived here
from affectflow.layout import results_text
from affectflow.procedures.cv import run_cv
from affectflow.procedures.fuse import fuse_runs
from affectflow.procedures.latefusion import staged_late_fusion
from affectflow.procedures.sweep import load_cells, load_sweep, run_sweep, write_results

tracking_flag = mlflow_flag  # old name of the --mlflow option helper (now in affectflow.cli.options)


def cmd_sweep(args: argparse.Namespace) -> int:
    spec = load_sweep(args.sweep, list(args.set or []))
    uri = mlflow_uri(args, spec.base["output"]["runs_dir"])
    if uri is not None:
        spec.base.setdefault("tracking", {})["mlflow"] = uri
    out = run_sweep(spec, out=args.out, workers=args.workers, threads=args.threads, backend=args.backend,
                    overrides=list(args.set or []), retry_failed=not args.no_retry, address=args.address)
    md, _ = write_results(out)
    print(md)
    _, cells = load_cells(out)
    failed = [c.id for c in cells if c.status != "finished"]
    print(f"Sweep folder: {out} ({len(cells) - len(failed)}/{len(cells)} cells finished)")
    return 1 if failed else 0


def cmd_cv(args: argparse.Namespace) -> int:
    cfg = load_cfg(args)
    out = run_cv(cfg, k=args.folds, seed=args.seed, loso=args.loso, resplit=args.resplit, out=args.out,
                 workers=args.workers, threads=args.threads, backend=args.backend, address=args.address)
    print(results_text(out))
    print(f"CV folder: {out}")
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    out = fuse_runs(args.runs, method=args.method, step=args.step, per_target=args.weights == "per-target",
                    select_partition=args.select_on if args.method == "weighted" else None,
                    partitions=split_list(args.partitions), out=args.out)
    print(results_text(out))
    print(f"Fused run: {out}")
    return 0


def cmd_late_fusion(args: argparse.Namespace) -> int:
    run_dir = staged_late_fusion(args.runs, folds=args.folds, seed=args.seed, overrides=list(args.set or []),
                                 names=split_list(args.names), workers=args.workers, threads=args.threads,
                                 backend=args.backend, progress=not args.quiet)
    print(results_text(run_dir))
    print((run_dir / "late_fusion.md").read_text())
    print(f"Fusion run: {run_dir}")
    return 0


_executor_args = executor_args  # old name, kept for callers of earlier versions (now in affectflow.cli.options)
