"""CLI verbs of the experiment procedures (``affectflow sweep`` ...), thin wrappers over :mod:`affectflow.procedures`.

::

    affectflow sweep sweep.yaml --workers 2 --threads 1        # run or resume; prints the results table
    affectflow sweep sweep.yaml --out runs/sweep-x --set training.epochs=5
    affectflow cv --corpus C -c cfg.yaml -k 6 --seed 0 --workers 2   # or --loso / --resplit
    affectflow fuse RUN_A RUN_B RUN_C [--method mean] [--step 0.05] [--weights shared]
    affectflow late-fusion RUN_AUDIO RUN_VIDEO RUN_PHYSIO --folds 5 [--set training.epochs=30]
"""

from __future__ import annotations

import argparse
from typing import Any
from affectflow.cli import argtypes

from affectflow.layout import results_text


def tracking_flag(p: argparse.ArgumentParser) -> None:
    from affectflow.tracking import add_flag

    add_flag(p)


def executor_args(p: argparse.ArgumentParser) -> None:
    """Add ``--workers``, ``--threads``, ``--backend`` and ``--address`` (the executor of a procedure)."""
    p.add_argument("--workers", type=argtypes.positive_int, default=None,
                   help="jobs run in parallel (default: execution.workers of the config, else 1)")
    p.add_argument("--threads", type=argtypes.positive_int, default=None,
                   help="torch threads per job (default: execution.threads of the config, else 1)")
    p.add_argument("--backend", default=None,
                   help="executor backend: local (process pool), serial, ray, or one registered with "
                   "affectflow.execution.register_executor (default: execution.backend, else local)")
    p.add_argument("--address", default=None,
                   help="ray: the cluster, auto (the one running here) or ray://HOST:10001 (default: "
                   "execution.address; none = start a private local cluster)")


def cmd_sweep(args: argparse.Namespace) -> int:
    from affectflow.procedures.sweep import load_cells, load_sweep, run_sweep, write_results

    spec = load_sweep(args.sweep, list(args.set or []))
    if args.mlflow is not None:
        from affectflow.tracking import cli_uri

        spec.base.setdefault("tracking", {})["mlflow"] = cli_uri(args.mlflow, spec.base["output"]["runs_dir"])
    out = run_sweep(spec, out=args.out, workers=args.workers, threads=args.threads, backend=args.backend,
                    overrides=list(args.set or []), retry_failed=not args.no_retry, address=args.address)
    md, _ = write_results(out)
    print(md)
    _, cells = load_cells(out)
    failed = [c.id for c in cells if c.status != "finished"]
    print(f"Sweep folder: {out} ({len(cells) - len(failed)}/{len(cells)} cells finished)")
    return 1 if failed else 0


def register(sub: Any) -> None:
    """Add the procedure verbs to the ``affectflow`` subparsers."""
    s = sub.add_parser("sweep", help="Run a grid of training runs from one YAML file (parallel, resumable).",
                       description="Run a grid over config keys (see affectflow.procedures.sweep for the file "
                       "format): every cell is an ordinary training run; finished cells are skipped when the same "
                       "sweep is run again; prints one results table (also results.md / results.csv in the sweep "
                       "folder). Exit code 1 if any cell failed.")
    s.add_argument("sweep", help="sweep YAML file (name, base, config, grid)")
    s.add_argument("--out", help="sweep folder (default <output.runs_dir>/sweep-<name>); resumed if it exists")
    s.add_argument("-s", "--set", action="append", metavar="KEY=VALUE", help="override a config value in every cell")
    s.add_argument("--no-retry", action="store_true", help="do not re-run cells that failed before")
    executor_args(s)
    tracking_flag(s)
    s.add_argument("-q", "--quiet", action="store_true", help="(runs never show progress bars in a sweep)")
    s.set_defaults(func=cmd_sweep)
    register_more(sub)


def cmd_cv(args: argparse.Namespace) -> int:
    from affectflow.cli.options import load_cfg as _load_cfg
    from affectflow.procedures.cv import run_cv

    cfg = _load_cfg(args)
    out = run_cv(cfg, k=args.folds, seed=args.seed, loso=args.loso, resplit=args.resplit, out=args.out,
                 workers=args.workers, threads=args.threads, backend=args.backend, address=args.address)
    print(results_text(out))
    print(f"CV folder: {out}")
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    from affectflow.cli.options import split_list as _split
    from affectflow.procedures.fuse import fuse_runs

    out = fuse_runs(args.runs, method=args.method, step=args.step, per_target=args.weights == "per-target",
                    select_partition=args.select_on if args.method == "weighted" else None,
                    partitions=_split(args.partitions), out=args.out)
    print(results_text(out))
    print(f"Fused run: {out}")
    return 0


def cmd_late_fusion(args: argparse.Namespace) -> int:
    from affectflow.cli.options import split_list as _split
    from affectflow.procedures.latefusion import staged_late_fusion

    run_dir = staged_late_fusion(args.runs, folds=args.folds, seed=args.seed, overrides=list(args.set or []),
                                 names=_split(args.names), workers=args.workers, threads=args.threads,
                                 backend=args.backend, progress=not args.quiet)
    print(results_text(run_dir))
    print((run_dir / "late_fusion.md").read_text())
    print(f"Fusion run: {run_dir}")
    return 0


def register_more(sub: Any) -> None:
    """``cv``, ``fuse`` and ``late-fusion``."""
    c = sub.add_parser("cv", help="Subject-disjoint k-fold cross-validation (fold 0 = the corpus's split).",
                       description="Train the config on k subject-disjoint folds of train + devel (fold 0 is the "
                       "corpus's own split; the others re-split the train subjects evenly, seeded); the best of the "
                       "config's seeds per fold on that fold's devel; prints a table per fold and target (ABAW5 "
                       "Table 1) and the test scores of the best fold and of the average of all folds.")
    c.add_argument("-c", "--config", help="YAML config (merged over the defaults)")
    c.add_argument("--corpus", help="corpus folder (same as --set data.corpus=...)")
    c.add_argument("--runs-dir", help="where the CV folder goes (same as --set output.runs_dir=...)")
    c.add_argument("-s", "--set", action="append", metavar="KEY=VALUE", help="override a config value")
    c.add_argument("-k", "--folds", type=argtypes.int_at_least(2), default=6, help="number of folds (default 6, the ABAW5 paper's)")
    c.add_argument("--seed", type=int, default=0, help="seed of the subject split (default 0)")
    c.add_argument("--loso", action="store_true", help="leave one subject out (k = number of train+devel subjects)")
    c.add_argument("--resplit", action="store_true", help="re-split all train+devel subjects (no fold 0 = corpus split)")
    c.add_argument("--out", help="CV folder (default: new <runs_dir>/cv-<name>-<time>); an existing one is resumed")
    executor_args(c)
    tracking_flag(c)
    c.add_argument("-q", "--quiet", action="store_true", help="(fold runs never show progress bars)")
    c.set_defaults(func=cmd_cv)

    f = sub.add_parser("fuse", help="Decision fusion of several runs' predictions (mean or devel-chosen weights).",
                       description="Combine the saved predictions of runs on the same recordings: the mean, or "
                       "weights summing to 1 chosen on devel by a grid over the simplex (single runs included, so "
                       "the fusion is never worse on devel than the best run). Class posteriors are averaged for "
                       "classification targets. Writes a fused run folder that evaluate, predict and fuse accept.")
    f.add_argument("runs", nargs="+", help="two or more run folders (trained or fused)")
    f.add_argument("--method", choices=["weighted", "mean"], default="weighted", help="default weighted")
    f.add_argument("--step", type=argtypes.unit_interval, default=0.05, help="weight grid step (default 0.05)")
    f.add_argument("--weights", choices=["per-target", "shared"], default="per-target",
                   help="one weight vector per target (default) or one for all targets (MER 2023 Eq. 10-11)")
    f.add_argument("--select-on", default="devel", help="partition the weights are chosen on (default devel)")
    f.add_argument("--partitions", help="comma-separated partitions to fuse (default: devel and test of the first run)")
    f.add_argument("--out", help="new folder for the fused run (default <first run's folder>/../fusion-<time>)")
    f.add_argument("-q", "--quiet", action="store_true", help="(no progress bars)")
    f.set_defaults(func=cmd_fuse)

    lf = sub.add_parser("late-fusion", help="Staged late fusion: a BiLSTM trained on unimodal runs' predictions.",
                        description="Turn each run's predictions into a corpus feature set pred_<run> (train "
                        "recordings: out-of-fold predictions of models cross-fitted over train subjects; devel/test: "
                        "the run's own), then train the fusion (model lstm, bidirectional, on the concatenated "
                        "predictions; MuSe 2021 Eq. 12-14) through the ordinary train path.")
    lf.add_argument("runs", nargs="+", help="two or more finished continuous runs on the same corpus and targets")
    lf.add_argument("--folds", type=argtypes.int_at_least(2), default=5, help="cross-fitting subject folds of train (default 5)")
    lf.add_argument("--seed", type=int, default=0, help="seed of the subject folds (default 0)")
    lf.add_argument("--names", help="comma-separated feature set names for the runs' predictions (default pred_<run>)")
    lf.add_argument("-s", "--set", action="append", metavar="KEY=VALUE", help="override the fusion run's config")
    executor_args(lf)
    lf.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    lf.set_defaults(func=cmd_late_fusion)


_executor_args = executor_args  # old name, kept for callers of earlier versions
