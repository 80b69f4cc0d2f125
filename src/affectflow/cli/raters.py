"""CLI verb ``fuse-raters``: several raters' continuous traces → one gold standard (+ segment classes)."""

from __future__ import annotations

import argparse
from typing import Any

from affectflow.cli.parsers.raters import register  # noqa: F401 - re-exported: the parser lived here
from affectflow.errors import ConfigError
from affectflow.raters import fuse_rater_files


def cmd_fuse_raters(args: argparse.Namespace) -> int:
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
