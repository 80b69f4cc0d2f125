"""Option helpers shared by the ``affectflow`` subcommands (no file writing here: the Python API writes)."""

from __future__ import annotations

import argparse
from typing import Any, Callable


def add_command(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help_: str, *,
                quiet_help: str = "no progress bars") -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func(args)`` (its help is also its description) with ``-q/--quiet``."""
    sp = sub.add_parser(name, help=help_, description=help_)
    sp.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    sp.set_defaults(func=func)
    return sp


def split_list(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (blank items dropped); ``None`` when absent or empty."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def load_cfg(args: argparse.Namespace):
    """The validated :class:`~affectflow.config.ExperimentConfig` of ``-c/--config``, ``--corpus``, ``--runs-dir``
    and ``--set KEY=VALUE`` options (overrides parsed by :func:`affectflow.config.parse_override`)."""
    from affectflow.config import load_config

    overrides = list(args.set or [])
    if getattr(args, "corpus", None):
        overrides.insert(0, f"data.corpus={args.corpus}")
    if getattr(args, "runs_dir", None):
        overrides.insert(0, f"output.runs_dir={args.runs_dir}")
    cfg = load_config(args.config, overrides)
    if getattr(args, "mlflow", None) is not None:  # --mlflow [URI] (affectflow.tracking.add_flag)
        from affectflow.tracking import cli_uri

        cfg.tracking.mlflow = cli_uri(args.mlflow, cfg.output.runs_dir)
    return cfg
