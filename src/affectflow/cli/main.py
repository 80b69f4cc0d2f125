"""The ``affectflow`` command line: one subcommand per pipeline stage, each a thin wrapper over the Python API.

Every area has a light parser module ``affectflow/cli/parsers/<area>.py`` whose ``register(subparsers)`` adds its
commands (:data:`COMMAND_MODULES`, in ``--help`` order) and names each command's handler as ``"module:function"``
(:class:`affectflow.cli.options.Handler`); the handler's module ``affectflow/cli/<area>.py`` imports the Python API
at its top and is imported only when its command runs (so ``--help`` and argument errors load no torch).
Shared option helpers are in :mod:`affectflow.cli.options`. The CLI writes no files itself: the Python API does.
Errors a user can fix (bad config, path or corpus) are printed as one paragraph, with exit code 2; unexpected errors
keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap
from typing import Any

from affectflow import __version__
from affectflow.cli.options import resolve_handler
from affectflow.cli.options import split_list as _split  # noqa: F401 - old name
from affectflow.errors import AffectflowError

#: The parser modules whose ``register(subparsers)`` add the subcommands, in ``--help`` order
#: (``module:function``; light modules: see :mod:`affectflow.cli.parsers`).
COMMAND_MODULES = [
    "affectflow.cli.parsers.core:register",  # generate, import-muse, info, models, train, evaluate, predict
    "affectflow.cli.parsers.deploy:register",  # export, stream
    "affectflow.cli.parsers.core:register_demo",
    "affectflow.cli.parsers.extract:register",  # import-media, extract
    "affectflow.cli.parsers.procedures:register",  # sweep, cv, fuse, late-fusion
    "affectflow.cli.parsers.personalise:register",
    "affectflow.cli.parsers.yardstick:register",  # linear yardstick
    "affectflow.cli.parsers.augment:register",  # augmented copies of training media
    "affectflow.cli.parsers.runs:register",  # runs table
    "affectflow.cli.parsers.tune:register",  # Optuna search
    "affectflow.cli.parsers.serve:register",
    "affectflow.cli.parsers.data:register",  # challenge importers, submit, fuse-raters
    "affectflow.cli.parsers.recipe:register",  # recipe list | show | run
]

#: Names that lived here, importable from here still (``from affectflow.cli.main import cmd_train``): a
#: ``"module:name"`` or a module. They import the Python API, so they are loaded on first use, not with the parser.
MOVED = {
    **{name: f"affectflow.cli.core:{name}" for name in ("cmd_evaluate", "cmd_info", "cmd_models", "cmd_predict",
                                                        "cmd_train")},
    "cmd_generate": "affectflow.cli.corpora:cmd_generate",
    "cmd_import_muse": "affectflow.cli.corpora:cmd_import_muse",
    "cmd_demo": "affectflow.cli.demo:cmd_demo",
    "core": "affectflow.cli.core",
    "_load_cfg": "affectflow.cli.common:load_cfg",
}


def __getattr__(name: str) -> Any:
    if name not in MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = MOVED[name].partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


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
        func = resolve_handler(args.func)  # imports the command's handler module (and with it the Python API)
        return int(func(args) or 0)
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
