"""The corpus commands ``generate`` (a synthetic corpus) and ``import-muse`` (parsers in
:mod:`affectflow.cli.parsers.core`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from affectflow.cli.options import split_list
from affectflow.corpus.muse import import_muse
from affectflow.synthetic.corpus import generate_corpus


def cmd_generate(args: argparse.Namespace) -> int:
    overrides = {"n_subjects": args.subjects, "duration_s": args.duration, "seed": args.seed}
    if args.label_noise is not None:
        overrides["label_noise"] = args.label_noise
    if args.layout != "tsst":
        overrides["layout"] = args.layout
    corpus = generate_corpus(args.out, progress=not args.quiet, **overrides)
    print(corpus.summary())
    return 0


def cmd_import_muse(args: argparse.Namespace) -> int:
    _, report = import_muse(
        args.task_dir,
        args.out,
        features=split_list(args.features),
        labels=split_list(args.labels),
        name=args.name,
        progress=not args.quiet,
    )
    print(report.summary())
    print(f"Report: {Path(args.out) / 'reports' / 'import.json'}")
    return 0
