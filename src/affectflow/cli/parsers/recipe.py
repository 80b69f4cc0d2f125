"""Parser of ``affectflow recipe`` (handler in :mod:`affectflow.cli.recipe`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import handler, mlflow_flag


def register(sub: Any) -> None:
    """Add ``recipe`` to the ``affectflow`` subparsers."""
    p = sub.add_parser("recipe", help="Run a paper's whole system (list | show NAME | run NAME --corpus C).",
                       description="A recipe is a declared pipeline of the existing procedures (sweeps, personalise, "
                       "fuse, late-fusion, cv, submit) with every choice's provenance; `run` reuses steps whose "
                       "inputs and settings are unchanged, continues after a kill, and writes recipe.md / "
                       "recipe.json with the paper's tables and the submission files.")
    p.add_argument("action", choices=["list", "show", "run"])
    p.add_argument("name", nargs="?", help="packaged recipe name (affectflow recipe list) or a recipe YAML file")
    p.add_argument("--corpus", help="corpus folder (run)")
    p.add_argument("--out", help="recipe folder (default runs/recipe-<name>-<budget>); an existing one is continued")
    p.add_argument("--budget", choices=["quick", "paper"], default="paper",
                   help="quick: a small version that finishes on a laptop; paper: the paper's settings (default)")
    p.add_argument("-s", "--set", action="append", metavar="NAME=VALUE",
                   help="override a recipe parameter (see `recipe show`), value as YAML, e.g. --set ablation=true")
    p.add_argument("--workers", type=argtypes.positive_int, default=1, help="parallel jobs (independent steps, sweep cells; default 1)")
    p.add_argument("--threads", type=argtypes.positive_int, default=1, help="torch threads per job (default 1)")
    p.add_argument("--backend", default="local", help="executor backend: local, serial or a registered one")
    p.add_argument("--address", default=None,
                   help="ray: the cluster every step's jobs go to, auto (the one running here) or ray://HOST:10001 "
                   "(default: RAY_ADDRESS, else a private local cluster)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    mlflow_flag(p)  # --mlflow [URI]
    p.set_defaults(func=handler("affectflow.cli.recipe:cmd_recipe"))
