"""All-or-nothing creation of a corpus folder: build it in a temporary sibling, then rename it into place.

Importers validate their input first and raise before writing anything; what they write goes into a hidden
sibling folder ``.<name>.staging-XXXXXXXX`` next to the target (same file system, so the final rename is atomic).
Only when everything is written is it renamed to the target name; on any error, or an interrupt, the staging
folder is removed. So the target either does not exist (or is the empty folder it was) or is a complete corpus,
never a partial one::

    with staged_folder("my_corpus") as tmp:
        corpus = Corpus.create(tmp, name="mine", label_rate_hz=2.0)
        ...                                   # write everything
    corpus = Corpus("my_corpus")              # complete, or the `with` raised and nothing is there
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from affectflow.errors import CorpusError


def check_new_folder(out: str | os.PathLike, what: str = "corpus") -> Path:
    """Return ``out`` as a path if it does not exist or is an empty folder; else raise :class:`CorpusError`."""
    p = Path(out)
    if p.exists():
        if not p.is_dir():
            raise CorpusError(f"Cannot write the {what} to {str(p)!r}: a file of that name exists.")
        if any(p.iterdir()):
            raise CorpusError(
                f"Cannot write the {what} to {str(p)!r}: the folder exists and is not empty. Choose a new folder "
                "(an import never writes into or over an existing one)."
            )
    return p


@contextmanager
def staged_folder(out: str | os.PathLike, what: str = "corpus") -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out``; rename it to ``out`` when the block finishes without error.

    Parameters
    ----------
    out:
        The final folder: must not exist, or be an empty folder (it is replaced).
    what:
        Word used in error messages.

    Raises
    ------
    CorpusError
        ``out`` exists and is not an empty folder (checked before and again just before the rename).
    """
    target = check_new_folder(out, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        yield tmp
        check_new_folder(target, what)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
        try:
            os.chmod(target, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the user's usual mode
        except OSError:
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
