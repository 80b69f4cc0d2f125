"""Helpers shared by the command handlers (``affectflow.cli.<area>``); unlike :mod:`affectflow.cli.options` they
import the Python API, so only modules that run a command import them."""

from __future__ import annotations

import argparse
import os

from affectflow.config import ExperimentConfig, load_config
from affectflow.tracking import cli_uri


def load_cfg(args: argparse.Namespace) -> ExperimentConfig:
    """The validated :class:`~affectflow.config.ExperimentConfig` of ``-c/--config``, ``--corpus``, ``--runs-dir``
    and ``--set KEY=VALUE`` options (overrides parsed by :func:`affectflow.config.parse_override`)."""
    overrides = list(args.set or [])
    if getattr(args, "corpus", None):
        overrides.insert(0, f"data.corpus={args.corpus}")
    if getattr(args, "runs_dir", None):
        overrides.insert(0, f"output.runs_dir={args.runs_dir}")
    cfg = load_config(args.config, overrides)
    if getattr(args, "mlflow", None) is not None:  # --mlflow [URI] (affectflow.cli.options.mlflow_flag)
        cfg.tracking.mlflow = cli_uri(args.mlflow, cfg.output.runs_dir)
    return cfg


def mlflow_uri(args: argparse.Namespace, runs_dir: str | os.PathLike) -> str | None:
    """The tracking URI of ``--mlflow [URI]`` (a bare flag: ``sqlite:///<runs_dir>/mlflow.db``), or ``None``
    without the flag."""
    return None if getattr(args, "mlflow", None) is None else cli_uri(args.mlflow, runs_dir)
