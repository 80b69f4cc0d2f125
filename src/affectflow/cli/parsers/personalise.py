"""Parser of ``affectflow personalise`` (handler in :mod:`affectflow.cli.personalise`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import executor_args, handler, mlflow_flag


def register(sub: Any) -> None:
    """Add the ``personalise`` subcommand to an argparse ``subparsers`` object."""
    p = sub.add_parser(
        "personalise",
        help="fine-tune a trained run per subject on its own data (MuSe 2023 personalisation)",
        description="For every subject with test recordings: copy the run's model, fine-tune it on the subject's own "
        "train recording(s) once per seed, keep per subject the seed and epoch with the best CCC on its own devel "
        "recording(s), predict its test recording(s). Subjects without own train and devel data keep the base "
        "model. Reports the pooled CCC over all subjects before and after, per subject and per seed.",
    )
    p.add_argument("run", help="a finished continuous run folder")
    p.add_argument("--seeds", type=argtypes.positive_int, default=10, help="number of seeds 1..N (default 10, the paper's)")
    p.add_argument("--seed-list", help="comma-separated seeds (overrides --seeds)")
    p.add_argument("--window", type=argtypes.positive_int, default=10, help="fine-tuning window in label steps (default 10)")
    p.add_argument("--hop", type=argtypes.positive_int, default=5, help="fine-tuning hop in label steps (default 5)")
    p.add_argument("--epochs", type=argtypes.positive_int, default=20, help="at most this many epochs per seed (default 20)")
    p.add_argument("--patience", type=argtypes.positive_int, default=5, help="early stopping patience in epochs (default 5)")
    p.add_argument("--lr", type=argtypes.positive_float, help="learning rate (default: the run's training.lr)")
    p.add_argument("--batch-size", type=argtypes.positive_int, help="batch size in windows (default: the run's training.batch_size)")
    p.add_argument("--subjects", help="comma-separated subjects (default: all with test recordings)")
    p.add_argument("--corpus", help="corpus folder (default: the run's; give it if the corpus has moved)")
    p.add_argument("--implementation", choices=["auto", "vectorised", "loop"], default="auto",
                   help="vectorised: all subject x seed models as one stacked model (gru only); loop: one by one")
    p.add_argument("--group-size", type=argtypes.nonneg_int, default=8,
                   help="vectorised: at most this many models trained together (default 8; 0 = all at once)")
    p.add_argument("--combine", choices=["select", "average"], default="select",
                   help="select: per subject the seed best on its own devel (the paper's); average: the mean of all "
                   "seeds' predictions")
    p.add_argument("--l2sp", type=argtypes.nonneg_float, default=0.0,
                   help="L2-SP penalty alpha * sum ||theta - theta_base||^2 during fine-tuning (default 0 = off)")
    p.add_argument("--shrink", type=argtypes.unit_interval, default=1.0,
                   help="keep theta_base + s * (theta - theta_base) of each fine-tuned model, s in (0, 1] (default 1)")
    p.add_argument("--device", default="cpu", help="device for predictions (default cpu)")
    executor_args(p)  # --workers/--threads/--backend/--address: groups of subject x seed jobs as parallel tasks
    mlflow_flag(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=handler("affectflow.cli.personalise:cmd_personalise"))
