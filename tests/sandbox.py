"""Run a verb inside a sandbox folder and check that nothing outside it changed.

::

    from tests.sandbox import Sandbox

    def test_x(tmp_path, capsys):
        with Sandbox(tmp_path) as box:                # box.path: tmp_path/outer/mid/box (nested, so that
            code, out, err = box.run(["sweep", ...])  # '../../x' escapes still land inside tmp_path)
        # on leaving: every file and folder of tmp_path outside box.path is as before (names, sizes, mtimes,
        # symlink targets); a difference fails the test with the paths that changed

``box.run(argv)`` calls :func:`affectflow.cli.main.main` in-process with ``box.path`` as the current folder and
returns ``(exit code, stdout, stderr)``; argparse errors (``SystemExit``) count as their exit code.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path


def listing(root: Path, exclude: Path | None = None) -> dict[str, tuple]:
    """Every entry under ``root`` (not following symlinks) → (kind, size, mtime_ns or link target)."""
    out: dict[str, tuple] = {}
    ex = str(exclude) if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        if ex is not None and (dirpath == ex or dirpath.startswith(ex + os.sep)):
            dirnames[:] = []
            continue
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if ex is not None and p == ex:
                continue
            st = os.lstat(p)
            if os.path.islink(p):
                out[p] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[p] = ("dir",)
            else:
                out[p] = ("file", st.st_size, st.st_mtime_ns)
    return out


class Sandbox:
    """A nested folder ``root/outer/mid/box`` whose surroundings (all of ``root``) must not change."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / "outer" / "mid" / "box"

    def __enter__(self) -> "Sandbox":
        self.path.mkdir(parents=True, exist_ok=True)
        self.before = listing(self.root, exclude=self.path)
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.check()

    def check(self) -> None:
        after = listing(self.root, exclude=self.path)
        changed = sorted(k for k in set(self.before) | set(after) if self.before.get(k) != after.get(k))
        assert not changed, f"the verb changed things outside its sandbox: {changed[:10]}"

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        """``affectflow ARGV`` in-process, in the sandbox folder; ``(exit code, stdout, stderr)``."""
        from affectflow.cli.main import main

        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(self.path)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main([str(a) for a in argv])
                except SystemExit as e:  # argparse
                    code = e.code if isinstance(e.code, int) else 2
        finally:
            os.chdir(cwd)
        return code, out.getvalue(), err.getvalue()
