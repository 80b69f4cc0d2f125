"""All-or-nothing output folders for importers and writers.

The staging itself is :func:`affectflow.corpus.corpus.staged_folder` (a hidden sibling folder renamed into place);
:func:`check_new_folder` lets an importer refuse an unusable target **before** it reads any data.
"""

from __future__ import annotations

import os
from pathlib import Path

from affectflow.errors import CorpusError
from affectflow.fsutil import staged_folder

__all__ = ["check_new_folder", "staged_folder"]


def check_new_folder(out: str | os.PathLike, what: str = "corpus") -> Path:
    """Return ``out`` as a path if it does not exist or is an empty folder; else raise :class:`CorpusError`."""
    p = Path(out)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise CorpusError(
            f"Cannot create a {what} in {str(p)!r}: it exists and is not an empty folder. Choose a new folder "
            "(nothing is ever written into or over an existing one)."
        )
    return p
