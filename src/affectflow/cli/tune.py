"""``affectflow tune``: Optuna search over config keys (see :mod:`affectflow.procedures.tune`).

::

    affectflow tune --corpus C --space space.yaml --trials 40                   # resumable; prints the table
    affectflow tune --corpus C --space space.yaml --trials 40 --backend ray --workers 8 --address auto
    affectflow train -c runs/tune-<name>/best.yaml                              # the best configuration
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_tune(args: argparse.Namespace) -> int:
    from affectflow.procedures.tune import load_space, run_tune, write_results

    overrides = list(args.set or [])
    if args.corpus:
        overrides.insert(0, f"data.corpus={args.corpus}")
    if args.runs_dir:
        overrides.insert(0, f"output.runs_dir={args.runs_dir}")
    spec = load_space(args.space, overrides)
    if args.mlflow is not None:
        from affectflow.tracking import cli_uri

        spec.base.setdefault("tracking", {})["mlflow"] = cli_uri(args.mlflow, spec.base["output"]["runs_dir"])
    out = run_tune(spec, trials=args.trials, out=args.out, seed=args.seed, overrides=overrides,
                   workers=args.workers, threads=args.threads, backend=args.backend, address=args.address,
                   storage=args.storage)
    md, _ = write_results(out)
    print(md)
    print(f"Tune folder: {out}")
    return 0


def register(sub: Any) -> None:
    """Add ``tune`` to the ``affectflow`` subparsers."""
    from affectflow.cli.procedures import executor_args as _executor_args

    p = sub.add_parser("tune", help="Hyperparameter search with Optuna (TPE, median pruning; resumable).",
                       description="TPE search over any config keys of a space file (ranges, log scales, choices), "
                       "each trial an ordinary training run, pruned by the median rule on the per-epoch devel score; "
                       "the study is kept in SQLite in the tune folder, so the same command resumes and several "
                       "processes or nodes can share it. Writes results.md/csv, best.yaml (for train -c) and "
                       "plots/optimization_history.png, plots/param_importances.png.")
    p.add_argument("--space", required=True, help="space YAML (name, base, config, space, sampler, pruning)")
    p.add_argument("--trials", type=int, required=True, help="number of trials the study should have")
    p.add_argument("--corpus", help="corpus folder (same as --set data.corpus=...)")
    p.add_argument("--runs-dir", help="where the tune folder goes (same as --set output.runs_dir=...)")
    p.add_argument("-s", "--set", action="append", metavar="KEY=VALUE", help="override a config value in every trial")
    p.add_argument("--out", help="tune folder (default <output.runs_dir>/tune-<name>); resumed if it exists")
    p.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    p.add_argument("--storage", help="SQLAlchemy URL of the study (default sqlite:///<tune folder>/optuna.db)")
    _executor_args(p)
    from affectflow.tracking import add_flag

    add_flag(p)
    p.add_argument("-q", "--quiet", action="store_true", help="(trials never show progress bars)")
    p.set_defaults(func=cmd_tune)
