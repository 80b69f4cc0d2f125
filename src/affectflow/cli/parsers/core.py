"""Parsers of ``generate``, ``import-muse``, ``info``, ``models``, ``train``, ``evaluate``, ``predict`` and ``demo``
(handlers in :mod:`affectflow.cli.corpora`, :mod:`affectflow.cli.core` and :mod:`affectflow.cli.demo`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import add_command, mlflow_flag
from affectflow.cli.parsers.deploy import add_media_arguments

CORE = "affectflow.cli.core"


def register(sub: Any) -> None:
    """Add ``generate``, ``import-muse``, ``info``, ``models``, ``train``, ``evaluate`` and ``predict``."""
    g = add_command(sub, "generate", "affectflow.cli.corpora:cmd_generate", "Write a synthetic TSST-like corpus with known latent affect.")
    g.add_argument("out", help="new corpus folder")
    g.add_argument("--subjects", type=argtypes.positive_int, default=40, help="number of subjects (one recording each; default 40)")
    g.add_argument("--duration", type=argtypes.positive_float, default=300.0, help="mean recording length in seconds (default 300)")
    g.add_argument("--label-noise", type=argtypes.nonneg_float, default=None, help="std of the annotation noise (default 0.12)")
    g.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    g.add_argument("--layout", choices=["tsst", "personalisation"], default="tsst",
                   help="tsst: one recording per subject; personalisation: MuSe 2023 layout, each test subject cut "
                   "into <S>_train (first 60 s), <S>_devel (next 60 s), <S>_test (rest), with per-subject label "
                   "effects the features cannot reveal")

    m = add_command(sub, "import-muse", "affectflow.cli.corpora:cmd_import_muse", "Import a MuSe 2021/2022/2023 task folder into a new corpus.")
    m.add_argument("task_dir", help="folder with metadata/, feature_segments/, label_segments/")
    m.add_argument("out", help="new corpus folder")
    m.add_argument("--features", help="comma-separated feature sets to import (default: all)")
    m.add_argument("--labels", help="comma-separated label dimensions to import (default: all)")
    m.add_argument("--name", help="corpus name (default: task folder name)")

    i = add_command(sub, "info", f"{CORE}:cmd_info", "Describe a corpus, or a run directory (status: running, interrupted, finished...).")
    i.add_argument("corpus", help="corpus folder or run directory")
    i.add_argument("--json", action="store_true",
                   help="a run directory: print its description (Run.info(): kind, task, targets, features, model and "
                   "parameter count, seeds, scores, source runs) as JSON")

    add_command(sub, "models", f"{CORE}:cmd_models", "List the registered models and their default hyperparameters.")

    t = add_command(sub, "train", f"{CORE}:cmd_train", "Train a model over several seeds and write a new run directory.")
    t.add_argument("-c", "--config", help="YAML config (merged over the defaults)")
    t.add_argument("--corpus", help="corpus folder (same as --set data.corpus=...)")
    t.add_argument("--runs-dir", help="where run directories go (same as --set output.runs_dir=...)")
    t.add_argument("-s", "--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.lr=5e-4 --set data.features=[acoustic,visual]")
    mlflow_flag(t)  # --mlflow [URI]
    t.add_argument("--resume", metavar="RUN",
                   help="continue an interrupted run in place: finished seeds are kept, the interrupted seed continues "
                   "from its last epoch state")

    e = add_command(sub, "evaluate", f"{CORE}:cmd_evaluate", "Score a trained run on partitions of its corpus (or another corpus).")
    e.add_argument("run", help="run directory")
    e.add_argument("--partitions", help="comma-separated partitions (default: devel and test of the run's config)")
    e.add_argument("--corpus", help="corpus folder (default: the run's corpus)")
    e.add_argument("--seed", type=int, help="use this seed's checkpoint (default: the selected seed)")
    e.add_argument("--device", default="auto", help="auto | cpu | cuda")

    r = add_command(sub, "predict", f"{CORE}:cmd_predict", "Predict recordings of a corpus with a trained run.")
    r.add_argument("run", help="run directory")
    r.add_argument("--recordings", help="comma-separated recording ids")
    r.add_argument("--partitions", help="comma-separated partitions (used when --recordings is not given)")
    r.add_argument("--corpus", help="corpus folder (default: the run's corpus)")
    r.add_argument("--out", help="new output folder (default: <run>/predictions-<timestamp>)")
    r.add_argument("--seed", type=int, help="use this seed's checkpoint (default: the selected seed)")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_media_arguments(r)


def register_demo(sub: Any) -> None:
    """Add ``demo``."""
    d = add_command(sub, "demo", "affectflow.cli.demo:cmd_demo", "End-to-end demo: generate a corpus, train, evaluate, predict, print results, plot.")
    d.add_argument("--out", help="demo folder (default demo_out, or demo_media_out with --media); a new run "
                   "directory is added on every call")
    d.add_argument("--quick", action="store_true", help="smaller corpus, one seed, fewer epochs")
    d.add_argument("--media", action="store_true",
                   help="start from raw media: synthesise audio/video/physiology/transcripts, extract, train, evaluate")
    d.add_argument("--workers", type=argtypes.positive_int, default=2, help="extraction worker processes (with --media)")
