"""The run commands ``info``, ``models``, ``train``, ``evaluate`` and ``predict`` (each a thin wrapper over the
Python API; see :mod:`affectflow.cli.main`). Their parsers, and those of ``generate``, ``import-muse`` (handlers
in :mod:`affectflow.cli.corpora`) and ``demo`` (:mod:`affectflow.cli.demo`), are in
:mod:`affectflow.cli.parsers.core`. ``predict --media ...`` runs :func:`affectflow.cli.deploy.predict_media_files`,
loaded when it is asked for."""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

from affectflow.cli.common import load_cfg
from affectflow.cli.options import resolve_handler, split_list
from affectflow.cli.parsers.core import register, register_demo  # noqa: F401 - re-exported: the parsers lived here
from affectflow.cli.parsers.deploy import has_media_arguments
from affectflow.corpus import Corpus
from affectflow.errors import ConfigError
from affectflow.experiment import evaluate, predict, resume_training, train
from affectflow.layout import is_run_folder, results_text
from affectflow.models import MODELS
from affectflow.runs import Run, info_text

#: Handlers that lived here, still importable from here (loaded on first use: they import more of the API).
MOVED = {"cmd_generate": "affectflow.cli.corpora", "cmd_import_muse": "affectflow.cli.corpora",
         "cmd_demo": "affectflow.cli.demo"}


def __getattr__(name: str) -> Any:
    if name in MOVED:
        return getattr(importlib.import_module(MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def cmd_info(args: argparse.Namespace) -> int:
    if is_run_folder(args.corpus):
        run = Run(args.corpus)
        info = run.info()
        if args.json:
            print(json.dumps(info, indent=2, allow_nan=False))
        else:
            print(run.summary())
            print(info_text(info))
        return 0
    if args.json:
        raise ConfigError(f"--json describes a run folder; {args.corpus!r} is not one (a corpus is described as text).")
    print(Corpus(args.corpus).summary())
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for name in MODELS.names():
        print(f"{name}: {MODELS.defaults(name)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        given = [o for o, v in (("--config", args.config), ("--corpus", args.corpus), ("--runs-dir", args.runs_dir),
                                ("--set", args.set)) if v]
        if given:
            raise ConfigError(f"--resume continues a run with the config stored in it; {given} cannot be combined "
                              "with it.")
        run_dir = resume_training(args.resume, progress=not args.quiet)
    else:
        cfg = load_cfg(args)
        run_dir = train(cfg, progress=not args.quiet)
    print(results_text(run_dir))
    print(f"Run directory: {run_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    out, _ = evaluate(args.run, partitions=split_list(args.partitions), corpus=args.corpus, seed=args.seed,
                      device=args.device, progress=not args.quiet)
    print(results_text(out))
    print(f"Evaluation written to {out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    if has_media_arguments(args):  # media files: extraction and the media path (affectflow.cli.deploy)
        return resolve_handler("affectflow.cli.deploy:predict_media_files")(args)

    out = predict(args.run, recordings=split_list(args.recordings), partitions=split_list(args.partitions), corpus=args.corpus,
                  out=args.out, seed=args.seed, device=args.device, progress=not args.quiet)
    n = len(list(out.glob("*.csv")))
    print(f"Predictions for {n} recording(s) written to {out}")
    return 0
