"""CLI verbs of the experiment procedures (``affectflow sweep`` ...), thin wrappers over :mod:`affectflow.procedures`.

::

    affectflow sweep sweep.yaml --workers 2 --threads 1        # run or resume; prints the results table
    affectflow sweep sweep.yaml --out runs/sweep-x --set training.epochs=5
"""

from __future__ import annotations

import argparse
from typing import Any


def _executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, help="jobs run in parallel (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job (default 1)")
    p.add_argument("--backend", default="local",
                   help="executor backend: local (process pool), serial, or one registered with "
                   "affectflow.procedures.executor.register_executor (default local)")


def cmd_sweep(args: argparse.Namespace) -> int:
    from affectflow.procedures.sweep import _load_cells, run_sweep, write_results

    out = run_sweep(args.sweep, out=args.out, workers=args.workers, threads=args.threads, backend=args.backend,
                    overrides=list(args.set or []), retry_failed=not args.no_retry)
    md, _ = write_results(out)
    print(md)
    _, cells = _load_cells(out)
    failed = [c.id for c in cells if c.status != "finished"]
    print(f"Sweep folder: {out} ({len(cells) - len(failed)}/{len(cells)} cells finished)")
    return 1 if failed else 0


def register(sub: Any) -> None:
    """Add the procedure verbs to the ``affectflow`` subparsers."""
    s = sub.add_parser("sweep", help="Run a grid of training runs from one YAML file (parallel, resumable).",
                       description="Run a grid over config keys (see affectflow.procedures.sweep for the file "
                       "format): every cell is an ordinary training run; finished cells are skipped when the same "
                       "sweep is run again; prints one results table (also results.md / results.csv in the sweep "
                       "folder). Exit code 1 if any cell failed.")
    s.add_argument("sweep", help="sweep YAML file (name, base, config, grid)")
    s.add_argument("--out", help="sweep folder (default <output.runs_dir>/sweep-<name>); resumed if it exists")
    s.add_argument("-s", "--set", action="append", metavar="KEY=VALUE", help="override a config value in every cell")
    s.add_argument("--no-retry", action="store_true", help="do not re-run cells that failed before")
    _executor_args(s)
    s.add_argument("-q", "--quiet", action="store_true", help="(runs never show progress bars in a sweep)")
    s.set_defaults(func=cmd_sweep)
