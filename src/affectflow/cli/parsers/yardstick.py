"""Parser of ``affectflow yardstick`` (handler in :mod:`affectflow.cli.yardstick`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import handler


def register(sub: Any) -> None:
    """Add ``yardstick`` to the ``affectflow`` subparsers."""
    y = sub.add_parser("yardstick", help="The linear yardstick: ridge / logistic regression on the same features.",
                       description="Fit ridge regression (regression targets) and logistic regression "
                       "(classification targets) on the config's feature sets with its normalisation (train "
                       "statistics), continuous tasks on each step plus the mean of a short past context; fit on "
                       "train, strength chosen per target on devel; scored like a run. Writes a run-like folder that "
                       "evaluate, predict and fuse accept.")
    y.add_argument("--run", help="take the data settings (corpus, features, targets, task, normalisation) from a run")
    y.add_argument("-c", "--config", help="YAML config (merged over the defaults)")
    y.add_argument("--corpus", help="corpus folder (same as --set data.corpus=...)")
    y.add_argument("--runs-dir", help="where the folder goes (same as --set output.runs_dir=...)")
    y.add_argument("-s", "--set", action="append", metavar="KEY=VALUE", help="override a config value")
    y.add_argument("--context", type=argtypes.nonneg_int, default=10,
                   help="continuous tasks: past context in label steps pooled next to each step (default 10)")
    y.add_argument("--alphas", help="comma-separated ridge strengths (default 1e5,...,0.01)")
    y.add_argument("--cs", help="comma-separated logistic-regression C values (default 1e-3,...,100)")
    y.add_argument("--seed", type=int, default=0, help="solver seed (default 0)")
    y.add_argument("--out", help="new folder (default <runs_dir>/yardstick-<features>-<time>)")
    y.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    y.set_defaults(func=handler("affectflow.cli.yardstick:cmd_yardstick"))
