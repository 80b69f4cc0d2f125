"""The CLI's registration: light parsers, handlers named ``module:function`` and loaded when their command runs."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from affectflow.cli.main import build_parser
from affectflow.cli.options import Handler, resolve_handler

SRC = Path(__file__).resolve().parents[2] / "src"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_names_a_handler_that_resolves():
    cmds = _subcommands(build_parser())
    assert {"train", "predict", "demo", "extract", "sweep", "serve", "recipe", "fuse-raters"} <= set(cmds)
    for name, p in cmds.items():
        func = p.get_default("func")
        assert isinstance(func, Handler), f"{name}: the handler is not loaded by name ({func!r})"
        assert callable(resolve_handler(func)), name
        assert func.module.startswith("affectflow.cli.") and not func.module.startswith("affectflow.cli.parsers")


def test_help_and_argument_errors_import_no_api():
    code = ("import sys\nfrom affectflow.cli.main import main\n"
            "for argv in (['--help'], ['train', '--help'], ['fuse', '--step', 'nan', 'a', 'b']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code in (0, 2), e.code\n"
            "heavy = sorted(m for m in ('torch', 'pandas', 'affectflow.experiment', 'affectflow.cli.core') "
            "if m in sys.modules)\nassert not heavy, heavy\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "argument --step: expected a finite number" in r.stderr


def test_handler_names_are_checked_and_old_names_still_import():
    with pytest.raises(ValueError, match="module:function"):
        Handler("affectflow.cli.core.cmd_train")
    from affectflow.cli.core import cmd_demo, cmd_generate, cmd_train
    from affectflow.cli.main import _load_cfg, cmd_import_muse
    from affectflow.cli.main import cmd_train as old_train
    from affectflow.cli.options import load_cfg

    assert old_train is cmd_train and _load_cfg is load_cfg
    assert cmd_generate.__module__ == cmd_import_muse.__module__ == "affectflow.cli.corpora"
    assert cmd_demo.__module__ == "affectflow.cli.demo"
    assert resolve_handler("affectflow.cli.core:cmd_train") is cmd_train
