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

from affectflow.cli.common import mlflow_uri
from affectflow.cli.parsers.recipe import register  # noqa: F401 - re-exported: the parser lived here
from affectflow.errors import ConfigError
from affectflow.recipes import list_recipes, load_recipe, run_recipe, show_recipe


def cmd_recipe(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name, title in list_recipes():
            print(f"{name}: {title}")
        return 0
    if not args.name:
        raise ConfigError(f"`affectflow recipe {args.action}` needs a recipe name or file; see `affectflow recipe list`.")
    recipe = load_recipe(args.name, budget=args.budget, overrides=list(args.set or []))
    if args.action == "show":
        print(show_recipe(recipe))
        return 0
    if not args.corpus:
        raise ConfigError("`affectflow recipe run` needs --corpus (the corpus folder to run the recipe on).")
    tracking = mlflow_uri(args, Path(args.out).resolve().parent if args.out else "runs")
    folder = run_recipe(recipe, corpus=args.corpus, out=args.out, backend=args.backend, workers=args.workers,
                        tracking=tracking, address=args.address,
                        threads=args.threads, progress=not args.quiet)
    text = (folder / "recipe.md").read_text()
    print(text)
    print(f"Recipe folder: {folder}")
    return 0
