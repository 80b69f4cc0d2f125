"""The parsers of the ``affectflow`` subcommands, one light module per area (``register(subparsers)``).

These modules import argparse, :mod:`affectflow.cli.argtypes` and :mod:`affectflow.cli.options` only; each
subcommand names its handler as ``"affectflow.cli.<area>:<function>"`` (:class:`affectflow.cli.options.Handler`),
which is imported when the command runs. So ``affectflow --help``, ``affectflow train --help`` and argument errors
load no torch or pandas, and the handler modules import the Python API at their top.
"""
