"""``affectflow recipe list | show NAME | run NAME``: a paper's whole system in one command
(:mod:`affectflow.recipes`).

::

    affectflow recipe list
    affectflow recipe show muse2023 --budget quick
    affectflow recipe run muse2023 --corpus C --budget quick --workers 2 --set ablation=true
    affectflow recipe run my-recipe.yaml --corpus C --out runs/my-recipe

Bad input (unknown recipe, step kind, key, reference or parameter) is one :class:`~affectflow.errors.ConfigError`
paragraph before any work (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from affectflow.cli import argtypes


def cmd_recipe(args: argparse.Namespace) -> int:
    from affectflow.recipes import list_recipes, load_recipe, run_recipe, show_recipe

    if args.action == "list":
        for name, title in list_recipes():
            print(f"{name}: {title}")
        return 0
    if not args.name:
        from affectflow.errors import ConfigError

        raise ConfigError(f"`affectflow recipe {args.action}` needs a recipe name or file; see `affectflow recipe list`.")
    recipe = load_recipe(args.name, budget=args.budget, overrides=list(args.set or []))
    if args.action == "show":
        print(show_recipe(recipe))
        return 0
    if not args.corpus:
        from affectflow.errors import ConfigError

        raise ConfigError("`affectflow recipe run` needs --corpus (the corpus folder to run the recipe on).")
    tracking = None
    if args.mlflow is not None:
        from affectflow.tracking import cli_uri

        tracking = cli_uri(args.mlflow, Path(args.out).resolve().parent if args.out else "runs")
    folder = run_recipe(recipe, corpus=args.corpus, out=args.out, backend=args.backend, workers=args.workers,
                        tracking=tracking, address=args.address,
                        threads=args.threads, progress=not args.quiet)
    text = (folder / "recipe.md").read_text()
    print(text)
    print(f"Recipe folder: {folder}")
    return 0


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
    from affectflow.tracking import add_flag

    add_flag(p)  # --mlflow [URI]
    p.set_defaults(func=cmd_recipe)
