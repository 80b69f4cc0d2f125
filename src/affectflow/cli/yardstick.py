"""CLI verb ``affectflow yardstick``: the linear yardstick (:mod:`affectflow.procedures.yardstick`; parser in
:mod:`affectflow.cli.parsers.yardstick`).

::

    affectflow yardstick --corpus C --set data.features=[acoustic,visual]     # ridge / logistic regression
    affectflow yardstick --run runs/gru-acoustic-...                          # on a run's data settings
    affectflow yardstick -c cfg.yaml --corpus C --context 20 --alphas 1,10,100
"""

from __future__ import annotations

import argparse
from affectflow.cli.common import load_cfg
from affectflow.cli.parsers.yardstick import register  # noqa: F401 - re-exported: the parser lived here
from affectflow.config import load_config
from affectflow.errors import ConfigError
from affectflow.layout import results_text
from affectflow.procedures.yardstick import LOGISTIC_CS, RIDGE_ALPHAS, run_yardstick
from affectflow.runs import Run


def _floats(text: str | None, what: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, got {text!r}.") from None


def cmd_yardstick(args: argparse.Namespace) -> int:
    if args.run:
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
        cfg = load_cfg(args)
    out, _ = run_yardstick(cfg, context=args.context, alphas=_floats(args.alphas, "--alphas") or RIDGE_ALPHAS,
                           cs=_floats(args.cs, "--cs") or LOGISTIC_CS, seed=args.seed, out=args.out,
                           progress=not args.quiet)
    print(results_text(out))
    print(f"Yardstick folder: {out}")
    return 0
