"""``affectflow runs``: one table of all run folders under a directory (see :mod:`affectflow.runs_table`).

::

    affectflow runs                                   # every run folder under ./runs
    affectflow runs runs/ --filter model=gru --filter training.lr=0.001 --sort devel
    affectflow runs runs/ --csv > all_runs.csv
"""

from __future__ import annotations

import argparse
from affectflow.cli.parsers.runs import register  # noqa: F401 - re-exported: the parser lived here
from affectflow.runs_table import format_runs, runs_frame, select_runs


def cmd_runs(args: argparse.Namespace) -> int:
    df = select_runs(runs_frame(args.dir), filters=args.filter or [], sort=args.sort, root=args.dir)
    if args.csv:
        print(df.to_csv(index=False, float_format="%.6g"), end="")
    else:
        print(format_runs(df))
    return 0
