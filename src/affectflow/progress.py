"""Progress of long phases (imports, generation, extraction, alignment): one helper for every verb.

:func:`progress_bar` is a drop-in for ``tqdm(...)``: on a terminal it *is* a tqdm bar (on stderr); when stderr is
a file or a pipe (a batch job's log, ``2> log``), it draws nothing while the phase runs and prints **one line when
the phase ends**, e.g. ``[affectflow] features utt: 4000 clips in 1.9 s`` (with ``, 3 failed`` style postfix
values), instead of a bar redrawn per item. :func:`phase` does the same for a step with no items to count.

The environment variable ``AFFECTFLOW_PROGRESS`` overrides the choice: ``bar`` (always tqdm), ``lines`` (always one
line per phase) or ``off`` (nothing; ``-q/--quiet`` of each verb does the same).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Iterable, Iterator

ENV = "AFFECTFLOW_PROGRESS"


def progress_mode(stream: Any = None) -> str:
    """``"bar"``, ``"lines"`` or ``"off"``: ``AFFECTFLOW_PROGRESS`` if set, else ``bar`` when ``stream`` (default
    stderr) is a terminal and ``lines`` otherwise."""
    mode = os.environ.get(ENV, "").strip().lower()
    if mode in ("bar", "lines", "off"):
        return mode
    stream = stream if stream is not None else sys.stderr
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


class _LinePhase:
    """The pipe/file form of a progress bar: counts silently, prints one summary line on :meth:`close`."""

    def __init__(self, iterable: Iterable | None, desc: str, total: int | None, unit: str, stream: Any) -> None:
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.stream = stream
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self.t0 = time.perf_counter()
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for x in self.iterable:
                yield x
                self.n += 1
        finally:
            self.close()

    def __len__(self) -> int:
        return len(self.iterable) if self.iterable is not None else (self.total or 0)

    def __enter__(self) -> "_LinePhase":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix.update(ordered_dict or {}, **kwargs)

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        extra = "".join(f", {v} {k}" for k, v in self.postfix.items())
        of = f"/{self.total}" if self.total is not None and self.total != self.n else ""
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"[affectflow] {self.desc}: {self.n}{of} {self.unit} in {time.perf_counter() - self.t0:.1f} s{extra}",
              file=stream, flush=True)


def progress_bar(iterable: Iterable | None = None, *, desc: str, total: int | None = None, unit: str = "it",
                 disable: bool = False, stream: Any = None, **tqdm_kwargs: Any):
    """A progress bar over ``iterable`` (or one updated by hand with ``update(n)``; close it, or use ``with``).

    Parameters
    ----------
    iterable:
        What to iterate (optional).
    desc, total, unit:
        As for tqdm: the phase's name, the item count (default ``len(iterable)`` where it has one), the item noun.
    disable:
        No output at all (``-q/--quiet``).
    stream:
        Where to write (default stderr); its being a terminal picks the form (see the module docstring).
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    mode = "off" if disable else progress_mode(stream)
    if mode == "bar" or mode == "off":
        from tqdm.auto import tqdm  # lazy: ~0.1 s to import; phases on a pipe or file need none

        kwargs = {"leave": False, **tqdm_kwargs}
        if stream is not None:
            kwargs["file"] = stream
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=mode == "off", **kwargs)
    return _LinePhase(iterable, desc, total, unit, stream)


@contextlib.contextmanager
def phase(desc: str, *, disable: bool = False, stream: Any = None) -> Iterator[None]:
    """Report a step without items: on a terminal ``desc ...`` then ``done in X s``; on a pipe or file one line at
    the end (``[affectflow] desc: done in X s``)."""
    mode = "off" if disable else progress_mode(stream)
    out = stream if stream is not None else sys.stderr
    t0 = time.perf_counter()
    if mode == "bar":
        print(f"{desc} ...", file=out, flush=True)
    yield
    if mode != "off":
        print(f"[affectflow] {desc}: done in {time.perf_counter() - t0:.1f} s", file=out, flush=True)
