"""CLI verb ``fuse-raters``: several raters' continuous traces → one gold standard (+ segment classes)."""

from __future__ import annotations

import argparse
from typing import Any

from affectflow.cli import argtypes
from affectflow.errors import ConfigError


def cmd_fuse_raters(args: argparse.Namespace) -> int:
    from affectflow.raters import fuse_rater_files

    th: Any = "quantile"
    if args.thresholds:
        try:
            th = [float(x) for x in args.thresholds.split(",")]
        except ValueError:
            raise ConfigError(f"--thresholds takes comma-separated numbers, got {args.thresholds!r}.") from None
    rep = fuse_rater_files(args.source, args.out, method=args.method, max_lag_s=args.max_lag, n_classes=args.classes,
                           thresholds=th, statistic=args.statistic)
    print(f"Fused {len(rep['recordings'])} recording(s) with {args.method} into {args.out}")
    for rid, r in list(rep["recordings"].items())[:10]:
        print(f"  {rid}: weights {dict(zip(r['raters'], r['weights']))}, lags (s) {r['lags_s']}")
    if "classes" in rep:
        print(f"Classes: {rep['classes']}")
    return 0


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
    p.set_defaults(func=cmd_fuse_raters)
