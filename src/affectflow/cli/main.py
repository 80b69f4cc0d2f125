"""The ``affectflow`` command line: one subcommand per pipeline stage, each a thin wrapper over the Python API.

Every ``affectflow/cli/<area>.py`` has ``register(subparsers)`` adding its commands (:data:`COMMAND_MODULES`, in
``--help`` order); shared option helpers are in :mod:`affectflow.cli.options`. The CLI writes no files itself: the
Python API does. Errors a user can fix (bad config, path or corpus) are printed as one paragraph, with exit code 2;
unexpected errors keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap

from affectflow import __version__
from affectflow.cli import core
from affectflow.cli.core import (  # noqa: F401 - re-exported: the commands lived here
    cmd_demo,
    cmd_evaluate,
    cmd_generate,
    cmd_import_muse,
    cmd_info,
    cmd_models,
    cmd_predict,
    cmd_train,
)
from affectflow.cli.options import load_cfg as _load_cfg  # noqa: F401 - old name
from affectflow.cli.options import split_list as _split  # noqa: F401 - old name
from affectflow.errors import AffectflowError

#: The modules whose ``register(subparsers)`` add the subcommands, in ``--help`` order (``module:function``).
COMMAND_MODULES = [
    "affectflow.cli.core:register",  # generate, import-muse, info, models, train, evaluate, predict
    "affectflow.cli.deploy:register",  # export, stream
    "affectflow.cli.core:register_demo",
    "affectflow.cli.extract:register",  # import-media, extract
    "affectflow.cli.procedures:register",  # sweep, cv, fuse, late-fusion
    "affectflow.cli.personalise:register",
    "affectflow.cli.yardstick:register",  # linear yardstick
    "affectflow.cli.augment:register",  # augmented copies of training media
    "affectflow.cli.runs:register",  # runs table
    "affectflow.cli.tune:register",  # Optuna search
    "affectflow.cli.serve:register",
    "affectflow.cli.data:register",  # challenge importers, submit, fuse-raters
    "affectflow.cli.recipe:register",  # recipe list | show | run
]


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="affectflow",
        description="Time-continuous emotion recognition: generate or import a corpus, extract features, train, "
        "evaluate, predict.",
    )
    p.add_argument("--version", action="version", version=f"affectflow {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr, with the start-up "
                   "lines of native libraries (MediaPipe, TensorFlow Lite) that extract and predict otherwise drop")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for target in COMMAND_MODULES:
        module, _, func = target.partition(":")
        getattr(importlib.import_module(module), func)(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        # native libraries' start-up lines (MediaPipe, TensorFlow Lite, absl) are shown too (affectflow.nativelogs)
        os.environ["AFFECTFLOW_NATIVE_LOGS"] = "1"
    try:
        return int(args.func(args) or 0)
    except AffectflowError as e:
        text = str(e)
        body = "\n".join(textwrap.fill(line, 110) if len(line) > 110 else line for line in text.splitlines())
        print(f"affectflow {args.command}: error: {body}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
