"""Parsers of the procedure verbs ``sweep``, ``cv``, ``fuse`` and ``late-fusion`` (handlers in
:mod:`affectflow.cli.procedures`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import executor_args, handler, mlflow_flag


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
    mlflow_flag(s)
    s.add_argument("-q", "--quiet", action="store_true", help="(runs never show progress bars in a sweep)")
    s.set_defaults(func=handler("affectflow.cli.procedures:cmd_sweep"))
    register_more(sub)


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
    mlflow_flag(c)
    c.add_argument("-q", "--quiet", action="store_true", help="(fold runs never show progress bars)")
    c.set_defaults(func=handler("affectflow.cli.procedures:cmd_cv"))

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
    f.set_defaults(func=handler("affectflow.cli.procedures:cmd_fuse"))

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
    lf.set_defaults(func=handler("affectflow.cli.procedures:cmd_late_fusion"))
