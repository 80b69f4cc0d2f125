"""Parser of ``affectflow tune`` (handler in :mod:`affectflow.cli.tune`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli.options import executor_args, handler, mlflow_flag


def register(sub: Any) -> None:
    """Add ``tune`` to the ``affectflow`` subparsers."""
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
    executor_args(p)
    mlflow_flag(p)
    p.add_argument("-q", "--quiet", action="store_true", help="(trials never show progress bars)")
    p.set_defaults(func=handler("affectflow.cli.tune:cmd_tune"))
