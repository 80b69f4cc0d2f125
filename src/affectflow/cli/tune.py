"""``affectflow tune``: Optuna search over config keys (see :mod:`affectflow.procedures.tune`).

::

    affectflow tune --corpus C --space space.yaml --trials 40                   # resumable; prints the table
    affectflow tune --corpus C --space space.yaml --trials 40 --backend ray --workers 8 --address auto
    affectflow train -c runs/tune-<name>/best.yaml                              # the best configuration
"""

from __future__ import annotations

import argparse
from affectflow.cli.common import mlflow_uri
from affectflow.cli.parsers.tune import register  # noqa: F401 - re-exported: the parser lived here
from affectflow.procedures.tune import load_space, run_tune, write_results


def cmd_tune(args: argparse.Namespace) -> int:
    overrides = list(args.set or [])
    if args.corpus:
        overrides.insert(0, f"data.corpus={args.corpus}")
    if args.runs_dir:
        overrides.insert(0, f"output.runs_dir={args.runs_dir}")
    spec = load_space(args.space, overrides)
    uri = mlflow_uri(args, spec.base["output"]["runs_dir"])
    if uri is not None:
        spec.base.setdefault("tracking", {})["mlflow"] = uri
    out = run_tune(spec, trials=args.trials, out=args.out, seed=args.seed, overrides=overrides,
                   workers=args.workers, threads=args.threads, backend=args.backend, address=args.address,
                   storage=args.storage)
    md, _ = write_results(out)
    print(md)
    print(f"Tune folder: {out}")
    return 0
