"""File helpers at the bottom of the import graph: safe names, contained paths, atomic writes.

Every file affectflow writes (corpora, runs, predictions, reports) goes through :func:`atomic_write` (temporary file
in the same folder, then rename), so a crash never leaves a partial file; its mode follows the process umask (as a
plain ``open`` would). Every name that becomes part of a path (recording ids, partitions, feature and label set
names, run names) is checked with :func:`check_name`, and :func:`child_path` refuses any path that would leave its
folder. :func:`staged_folder` builds a whole new folder all-or-nothing.

This module imports nothing from affectflow except :mod:`affectflow.errors`, so every layer may use it.
(These helpers used to live in :mod:`affectflow.corpus.corpus`, which still re-exports them.)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.errors import CorpusError

#: A safe file or folder name: starts with a letter or digit, then letters, digits and ``_ . + -``.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def is_safe_name(name: Any) -> bool:
    """Whether ``name`` is a string that :data:`SAFE_NAME` accepts (see :func:`check_name`)."""
    return isinstance(name, str) and SAFE_NAME.match(name) is not None


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is safe as a file name, else raise :class:`~affectflow.errors.CorpusError`."""
    if not is_safe_name(name):
        raise CorpusError(
            f"Invalid {kind} {name!r}: names must start with a letter or digit and contain only letters, digits "
            "and the characters '_', '.', '+', '-' (they become file names)."
        )
    return name


def child_path(root: str | os.PathLike, name: str, suffix: str = "", *, kind: str = "name") -> Path:
    """``root / (name + suffix)`` after checking that ``name`` is a safe file name and the path stays in ``root``.

    Parameters
    ----------
    root:
        The folder the path must stay in (compared lexically, so a symlinked ``root`` is fine).
    name:
        A recording id, partition or set name (checked with :func:`check_name`).
    suffix:
        Appended to ``name``, e.g. ``".parquet"``.
    kind:
        What ``name`` is, for the error message.

    Raises
    ------
    CorpusError
        ``name`` is not a safe name, or the joined path would leave ``root``.
    """
    check_name(kind, name)
    root_s = os.path.normpath(os.path.abspath(os.fspath(root)))
    out = os.path.normpath(os.path.join(root_s, name + suffix))
    if os.path.dirname(out) != root_s:
        raise CorpusError(f"Refusing the path {out!r}: {kind} {name!r} would leave the folder {root_s!r}.")
    return Path(root) / (name + suffix)


def current_umask() -> int:
    """The process umask (read without changing it where the platform allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path`` (same folder, so the rename is atomic).

    The file gets the mode a plain ``open`` would give it (``0o666`` minus the umask), not ``mkstemp``'s ``0o600``,
    so that colleagues sharing a corpus or a run can read it when the umask allows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (numpy scalars and arrays and paths become plain JSON values)."""
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, default=json_default) + "\n"))


def json_default(o: Any) -> Any:
    """``json.dumps`` ``default=`` hook: numpy integers/floats/arrays and paths as plain values."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, *, what: str = "corpus"):
    """Build a new folder all-or-nothing: yield a hidden sibling folder, rename it to ``out`` on success.

    On any exception (or a kill before the rename) ``out`` is left untouched: the staging folder is removed (a killed
    process leaves only a hidden ``.<name>.staging-*`` sibling, never a partial ``out``). The staged folder gets the
    mode of a plain ``mkdir`` (``0o777`` minus the umask).

    Raises
    ------
    CorpusError
        ``out`` exists and is not an empty folder (checked before and again at the rename).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CorpusError(f"Cannot create a {what} in {str(out)!r}: it exists and is not an empty folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())
        yield tmp
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CorpusError(f"Cannot create a {what} in {str(out)!r}: it was created by someone else meanwhile.")
        os.replace(tmp, out)  # atomic; replaces an empty folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
