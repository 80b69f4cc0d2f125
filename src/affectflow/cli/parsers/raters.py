"""Parser of ``affectflow fuse-raters`` (handler in :mod:`affectflow.cli.raters`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import handler


def register(sub: Any) -> None:
    """Add ``fuse-raters``."""
    p = sub.add_parser(
        "fuse-raters",
        help="Fuse raters' continuous traces into a gold standard (mean, EWE, RAAW; lag compensation; classes).",
        description="Fuse <SOURCE>/<Id>.csv (a timestamp (ms) or time (s) column, optional segment_id, one column "
        "per rater) into <OUT>/<Id>.csv (time, value[, segment_id]) with fusion.json; formulas in affectflow.raters.",
    )
    p.add_argument("source", help="folder of <Id>.csv rater files")
    p.add_argument("out", help="new output folder")
    p.add_argument("--method", choices=["mean", "ewe", "raaw"], default="ewe")
    p.add_argument("--max-lag", type=argtypes.nonneg_float, default=0.0,
                   help="largest per-rater lag (s) compensated by cross-correlation (RAAW: its alignment range)")
    p.add_argument("--classes", type=argtypes.int_at_least(2), help="also derive this many classes per segment (needs segment_id)")
    p.add_argument("--thresholds", help="comma-separated class thresholds (default: equal-frequency quantiles)")
    p.add_argument("--statistic", choices=["mean", "median", "last"], default="mean",
                   help="per-segment statistic that is binned into classes (default mean)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=handler("affectflow.cli.raters:cmd_fuse_raters"))
