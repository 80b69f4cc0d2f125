"""Parser of ``affectflow runs`` (handler in :mod:`affectflow.cli.runs`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli.options import handler


def register(sub: Any) -> None:
    """Add ``runs`` to the ``affectflow`` subparsers."""
    p = sub.add_parser("runs", help="One table of all run folders (model, features, scores, status, wall time).",
                       description="Every folder under DIR with a run.json (trained runs, sweep cells, CV folds, "
                       "tuning trials, fused and personalisation folders) as one row: kind, status, task, model, "
                       "feature sets, targets, key hyperparameters, the selected seed's devel and test score (main "
                       "metric averaged over targets, and per target), wall time.")
    p.add_argument("dir", nargs="?", default="runs", help="folder to search (default runs)")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="keep rows where a column (model=gru, status=finished) or a dotted config key "
                   "(training.lr=0.001) has this value; repeatable")
    p.add_argument("--sort", metavar="COLUMN", help="sort by a column, best first (e.g. devel, test:arousal, "
                   "wall_s); a leading - reverses")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a text table")
    p.add_argument("-q", "--quiet", action="store_true", help="(no progress output)")
    p.set_defaults(func=handler("affectflow.cli.runs:cmd_runs"))
