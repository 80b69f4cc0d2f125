"""The corpus, training and prediction commands: ``generate``, ``import-muse``, ``info``, ``models``, ``train``,
``evaluate``, ``predict`` and ``demo`` (each a thin wrapper over the Python API; see :mod:`affectflow.cli.main`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from affectflow.cli import argtypes
from affectflow.cli import deploy as deploy_cli
from affectflow.cli.options import add_command, load_cfg, split_list
from affectflow.errors import ConfigError
from affectflow.layout import is_run_folder, results_text


def cmd_generate(args: argparse.Namespace) -> int:
    from affectflow.synthetic.corpus import generate_corpus

    overrides = {"n_subjects": args.subjects, "duration_s": args.duration, "seed": args.seed}
    if args.label_noise is not None:
        overrides["label_noise"] = args.label_noise
    if args.layout != "tsst":
        overrides["layout"] = args.layout
    corpus = generate_corpus(args.out, progress=not args.quiet, **overrides)
    print(corpus.summary())
    return 0


def cmd_import_muse(args: argparse.Namespace) -> int:
    from affectflow.corpus.muse import import_muse

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


def cmd_info(args: argparse.Namespace) -> int:
    from affectflow.corpus import Corpus

    if is_run_folder(args.corpus):
        from affectflow.runs import Run, info_text

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
    from affectflow.models import MODELS

    for name in MODELS.names():
        print(f"{name}: {MODELS.defaults(name)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from affectflow.experiment import resume_training, train

    if args.resume:
        given = [o for o, v in (("--config", args.config), ("--corpus", args.corpus), ("--runs-dir", args.runs_dir),
                                ("--set", args.set)) if v]
        if given:
            from affectflow.errors import ConfigError

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
    from affectflow.experiment import evaluate

    out, _ = evaluate(args.run, partitions=split_list(args.partitions), corpus=args.corpus, seed=args.seed,
                      device=args.device, progress=not args.quiet)
    print(results_text(out))
    print(f"Evaluation written to {out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from affectflow.experiment import predict

    if deploy_cli.has_media_arguments(args):
        return deploy_cli.predict_media_files(args)

    out = predict(args.run, recordings=split_list(args.recordings), partitions=split_list(args.partitions), corpus=args.corpus,
                  out=args.out, seed=args.seed, device=args.device, progress=not args.quiet)
    n = len(list(out.glob("*.csv")))
    print(f"Predictions for {n} recording(s) written to {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from affectflow.demo import run_demo, run_media_demo

    if args.media:
        run_media_demo(args.out or "demo_media_out", quick=args.quick, progress=not args.quiet, workers=args.workers)
    else:
        run_demo(args.out or "demo_out", quick=args.quick, progress=not args.quiet)
    return 0


def register(sub: Any) -> None:
    """Add ``generate``, ``import-muse``, ``info``, ``models``, ``train``, ``evaluate`` and ``predict``."""
    g = add_command(sub, "generate", cmd_generate, "Write a synthetic TSST-like corpus with known latent affect.")
    g.add_argument("out", help="new corpus folder")
    g.add_argument("--subjects", type=argtypes.positive_int, default=40, help="number of subjects (one recording each; default 40)")
    g.add_argument("--duration", type=argtypes.positive_float, default=300.0, help="mean recording length in seconds (default 300)")
    g.add_argument("--label-noise", type=argtypes.nonneg_float, default=None, help="std of the annotation noise (default 0.12)")
    g.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    g.add_argument("--layout", choices=["tsst", "personalisation"], default="tsst",
                   help="tsst: one recording per subject; personalisation: MuSe 2023 layout, each test subject cut "
                   "into <S>_train (first 60 s), <S>_devel (next 60 s), <S>_test (rest), with per-subject label "
                   "effects the features cannot reveal")

    m = add_command(sub, "import-muse", cmd_import_muse, "Import a MuSe 2021/2022/2023 task folder into a new corpus.")
    m.add_argument("task_dir", help="folder with metadata/, feature_segments/, label_segments/")
    m.add_argument("out", help="new corpus folder")
    m.add_argument("--features", help="comma-separated feature sets to import (default: all)")
    m.add_argument("--labels", help="comma-separated label dimensions to import (default: all)")
    m.add_argument("--name", help="corpus name (default: task folder name)")

    i = add_command(sub, "info", cmd_info, "Describe a corpus, or a run directory (status: running, interrupted, finished...).")
    i.add_argument("corpus", help="corpus folder or run directory")
    i.add_argument("--json", action="store_true",
                   help="a run directory: print its description (Run.info(): kind, task, targets, features, model and "
                   "parameter count, seeds, scores, source runs) as JSON")

    add_command(sub, "models", cmd_models, "List the registered models and their default hyperparameters.")

    t = add_command(sub, "train", cmd_train, "Train a model over several seeds and write a new run directory.")
    t.add_argument("-c", "--config", help="YAML config (merged over the defaults)")
    t.add_argument("--corpus", help="corpus folder (same as --set data.corpus=...)")
    t.add_argument("--runs-dir", help="where run directories go (same as --set output.runs_dir=...)")
    t.add_argument("-s", "--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.lr=5e-4 --set data.features=[acoustic,visual]")
    from affectflow.tracking import add_flag

    add_flag(t)  # --mlflow [URI]
    t.add_argument("--resume", metavar="RUN",
                   help="continue an interrupted run in place: finished seeds are kept, the interrupted seed continues "
                   "from its last epoch state")

    e = add_command(sub, "evaluate", cmd_evaluate, "Score a trained run on partitions of its corpus (or another corpus).")
    e.add_argument("run", help="run directory")
    e.add_argument("--partitions", help="comma-separated partitions (default: devel and test of the run's config)")
    e.add_argument("--corpus", help="corpus folder (default: the run's corpus)")
    e.add_argument("--seed", type=int, help="use this seed's checkpoint (default: the selected seed)")
    e.add_argument("--device", default="auto", help="auto | cpu | cuda")

    r = add_command(sub, "predict", cmd_predict, "Predict recordings of a corpus with a trained run.")
    r.add_argument("run", help="run directory")
    r.add_argument("--recordings", help="comma-separated recording ids")
    r.add_argument("--partitions", help="comma-separated partitions (used when --recordings is not given)")
    r.add_argument("--corpus", help="corpus folder (default: the run's corpus)")
    r.add_argument("--out", help="new output folder (default: <run>/predictions-<timestamp>)")
    r.add_argument("--seed", type=int, help="use this seed's checkpoint (default: the selected seed)")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    deploy_cli.add_media_arguments(r)


def register_demo(sub: Any) -> None:
    """Add ``demo``."""
    d = add_command(sub, "demo", cmd_demo, "End-to-end demo: generate a corpus, train, evaluate, predict, print results, plot.")
    d.add_argument("--out", help="demo folder (default demo_out, or demo_media_out with --media); a new run "
                   "directory is added on every call")
    d.add_argument("--quick", action="store_true", help="smaller corpus, one seed, fewer epochs")
    d.add_argument("--media", action="store_true",
                   help="start from raw media: synthesise audio/video/physiology/transcripts, extract, train, evaluate")
    d.add_argument("--workers", type=argtypes.positive_int, default=2, help="extraction worker processes (with --media)")
