"""Option helpers shared by the ``affectflow`` subcommands (no file writing here: the Python API writes).

A subcommand is declared in a light parser module (:mod:`affectflow.cli.parsers`) that names its handler as a
``"module:function"`` string (:class:`Handler`); the module holding the handler, which imports the Python API
(torch, pandas ...) at its top, is imported only when that command runs. ``affectflow --help``, a subcommand's
``--help`` and argument errors therefore import argparse and these helpers only.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Callable

from affectflow.cli import argtypes


class Handler:
    """A subcommand's handler named by ``"module:function"``, imported when it is called.

    ``Handler("affectflow.cli.core:cmd_train")(args)`` imports :mod:`affectflow.cli.core` and returns
    ``cmd_train(args)`` (the exit code). Parsers store one as ``func`` (``parser.set_defaults(func=...)``), so
    ``args.func(args)`` works as with a plain function.
    """

    def __init__(self, target: str) -> None:
        module, sep, name = target.partition(":")
        if not sep or not module or not name:
            raise ValueError(f"a handler is named 'module:function', got {target!r}")
        self.target, self.module, self.name = target, module, name

    def load(self) -> Callable[[argparse.Namespace], int]:
        """The handler function (its module imported now)."""
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, args: argparse.Namespace) -> int:
        return self.load()(args)

    def __repr__(self) -> str:
        return f"Handler({self.target!r})"


def resolve_handler(func: Callable[[argparse.Namespace], int] | Handler | str) -> Callable[[argparse.Namespace], int]:
    """The function behind a parser's ``func``: a :class:`Handler` or ``"module:function"`` is imported, a
    function is returned as it is."""
    if isinstance(func, str):
        func = Handler(func)
    return func.load() if isinstance(func, Handler) else func


def handler(func: Callable[[argparse.Namespace], int] | str) -> Callable[[argparse.Namespace], int]:
    """``func`` as a parser's ``func`` default: a ``"module:function"`` string becomes a lazy :class:`Handler`."""
    return Handler(func) if isinstance(func, str) else func


def add_command(sub: Any, name: str, func: Callable[[argparse.Namespace], int] | str, help_: str, *,
                quiet_help: str = "no progress bars") -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func(args)`` (a function or a ``"module:function"`` handler name; its help
    is also its description) with ``-q/--quiet``."""
    sp = sub.add_parser(name, help=help_, description=help_)
    sp.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    sp.set_defaults(func=handler(func))
    return sp


def mlflow_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--mlflow [URI]`` (``None`` when absent, ``""`` without a URI: see :func:`affectflow.tracking.cli_uri`)."""
    parser.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                        help="log to MLflow (default URI sqlite:///<runs_dir>/mlflow.db; same as tracking.mlflow)")


def executor_args(p: argparse.ArgumentParser) -> None:
    """Add ``--workers``, ``--threads``, ``--backend`` and ``--address`` (the executor of a procedure)."""
    p.add_argument("--workers", type=argtypes.positive_int, default=None,
                   help="jobs run in parallel (default: execution.workers of the config, else 1)")
    p.add_argument("--threads", type=argtypes.positive_int, default=None,
                   help="torch threads per job (default: execution.threads of the config, else 1)")
    p.add_argument("--backend", default=None,
                   help="executor backend: local (process pool), serial, ray, or one registered with "
                   "affectflow.execution.register_executor (default: execution.backend, else local)")
    p.add_argument("--address", default=None,
                   help="ray: the cluster, auto (the one running here) or ray://HOST:10001 (default: "
                   "execution.address; none = start a private local cluster)")


def split_list(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (blank items dropped); ``None`` when absent or empty."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


#: Names that moved to :mod:`affectflow.cli.common` (they import the API), still importable from here.
_MOVED = {"load_cfg": "affectflow.cli.common"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
