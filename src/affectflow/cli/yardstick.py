"""CLI verb ``affectflow yardstick``: the linear yardstick (:mod:`affectflow.procedures.yardstick`).

::

    affectflow yardstick --corpus C --set data.features=[acoustic,visual]     # ridge / logistic regression
    affectflow yardstick --run runs/gru-acoustic-...                          # on a run's data settings
    affectflow yardstick -c cfg.yaml --corpus C --context 20 --alphas 1,10,100
"""

from __future__ import annotations

import argparse
from typing import Any
from affectflow.cli import argtypes

from affectflow.layout import results_text


def _floats(text: str | None, what: str) -> list[float] | None:
    from affectflow.errors import ConfigError

    if not text:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, got {text!r}.") from None


def cmd_yardstick(args: argparse.Namespace) -> int:
    from affectflow.cli.options import load_cfg as _load_cfg
    from affectflow.config import load_config
    from affectflow.procedures.yardstick import LOGISTIC_CS, RIDGE_ALPHAS, run_yardstick

    if args.run:
        from affectflow.errors import ConfigError
        from affectflow.runs import Run

        if args.config:
            raise ConfigError("--run takes the data settings stored in the run; it cannot be combined with --config.")
        run = Run(args.run)
        base = dict(run.config_dict)
        if (base.get("model") or {}).get("type") in ("fusion", "yardstick"):
            base["model"] = {"type": "gru"}  # only the data section matters here
        overrides = list(args.set or [])
        if args.corpus:
            overrides.insert(0, f"data.corpus={args.corpus}")
        if args.runs_dir:
            overrides.insert(0, f"output.runs_dir={args.runs_dir}")
        cfg = load_config(None, overrides, base=base)
    else:
        cfg = _load_cfg(args)
    out, _ = run_yardstick(cfg, context=args.context, alphas=_floats(args.alphas, "--alphas") or RIDGE_ALPHAS,
                           cs=_floats(args.cs, "--cs") or LOGISTIC_CS, seed=args.seed, out=args.out,
                           progress=not args.quiet)
    print(results_text(out))
    print(f"Yardstick folder: {out}")
    return 0


def register(sub: Any) -> None:
    """Add ``yardstick`` to the ``affectflow`` subparsers."""
    y = sub.add_parser("yardstick", help="The linear yardstick: ridge / logistic regression on the same features.",
                       description="Fit ridge regression (regression targets) and logistic regression "
                       "(classification targets) on the config's feature sets with its normalisation (train "
                       "statistics), continuous tasks on each step plus the mean of a short past context; fit on "
                       "train, strength chosen per target on devel; scored like a run. Writes a run-like folder that "
                       "evaluate, predict and fuse accept.")
    y.add_argument("--run", help="take the data settings (corpus, features, targets, task, normalisation) from a run")
    y.add_argument("-c", "--config", help="YAML config (merged over the defaults)")
    y.add_argument("--corpus", help="corpus folder (same as --set data.corpus=...)")
    y.add_argument("--runs-dir", help="where the folder goes (same as --set output.runs_dir=...)")
    y.add_argument("-s", "--set", action="append", metavar="KEY=VALUE", help="override a config value")
    y.add_argument("--context", type=argtypes.nonneg_int, default=10,
                   help="continuous tasks: past context in label steps pooled next to each step (default 10)")
    y.add_argument("--alphas", help="comma-separated ridge strengths (default 1e5,...,0.01)")
    y.add_argument("--cs", help="comma-separated logistic-regression C values (default 1e-3,...,100)")
    y.add_argument("--seed", type=int, default=0, help="solver seed (default 0)")
    y.add_argument("--out", help="new folder (default <runs_dir>/yardstick-<features>-<time>)")
    y.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    y.set_defaults(func=cmd_yardstick)
