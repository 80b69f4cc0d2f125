"""``affectflow personalise``: fine-tune a trained run per subject (MuSe 2023 personalisation).

::

    affectflow personalise runs/gru-egemaps-...                     # 10 seeds, windows 10/5 (the paper's)
    affectflow personalise RUN --seeds 5 --epochs 30 --patience 8 --lr 5e-4
    affectflow personalise RUN --corpus /new/place/of/corpus         # the run's corpus has moved
    affectflow personalise RUN --implementation loop                  # the plain reference loop

Writes ``<run>/personalisation/pers-<time>/`` (see :mod:`affectflow.procedures.personalise`) and prints its
results table (parser: :mod:`affectflow.cli.parsers.personalise`). Bad input raises :class:`~affectflow.errors.AffectflowError`, printed as one paragraph (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from affectflow.cli.common import mlflow_uri
from affectflow.cli.parsers.personalise import register  # noqa: F401 - re-exported: the parser lived here
from affectflow.errors import ConfigError
from affectflow.layout import results_text
from affectflow.procedures.personalise import personalise


def cmd_personalise(args: argparse.Namespace) -> int:
    seeds: Any = args.seeds
    if args.seed_list:
        try:
            seeds = [int(s) for s in args.seed_list.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seed-list must be comma-separated integers, got {args.seed_list!r}.") from None
    out = personalise(args.run, seeds=seeds, window=args.window, hop=args.hop, epochs=args.epochs,
                      patience=args.patience, lr=args.lr, batch_size=args.batch_size,
                      subjects=args.subjects.split(",") if args.subjects else None, corpus=args.corpus,
                      implementation=args.implementation, group_size=args.group_size or None, device=args.device,
                      progress=not args.quiet, combine=args.combine, l2sp=args.l2sp, shrink=args.shrink,
                      backend=args.backend, workers=args.workers or 1, threads=args.threads or 1,
                      executor_options={"address": args.address} if args.address else None,
                      tracking=mlflow_uri(args, Path(args.run).resolve().parent))  # default: next to the base run
    print(results_text(out))
    print(f"Personalisation written to {out}")
    return 0
