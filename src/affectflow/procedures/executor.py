"""Where the independent jobs of a procedure run: one small interface, pluggable backends.

A procedure (a sweep's cells, cross-validation's folds, cross-fitting's fold models) hands a list of picklable
job descriptions and a **top-level** function to :meth:`Executor.map`, and gets ``(index, result)`` pairs back as
jobs finish (completion order, not submission order), so it can record progress after every job::

    from affectflow.procedures.executor import get_executor

    ex = get_executor("local", workers=2, threads=1)
    try:
        for i, result in ex.map(run_one, jobs):
            record(i, result)
    finally:
        ex.close()

Backends
--------
``serial``
    Runs the jobs one after the other in this process (no pickling; the default for one worker and in tests).
``local``
    A process pool of ``workers`` processes (``spawn`` start method, so no forked OpenMP state); every worker
    calls ``torch.set_num_threads(threads)`` once at start.

Plugging in another backend (e.g. Ray)
--------------------------------------
Write a class with ``__init__(self, workers: int, threads: int)``, ``map(self, fn, items)`` yielding
``(index, fn(items[index]))`` as jobs finish, and ``close(self)``; register it under a name. Procedures and the
CLI (``--backend NAME``) then use it without any change::

    import ray
    from affectflow.procedures.executor import register_executor

    class RayExecutor:
        def __init__(self, workers, threads):
            ray.init(ignore_reinit_error=True)
            self.threads = threads
        def map(self, fn, items):
            remote = ray.remote(num_cpus=self.threads)(fn)
            pending = {remote.remote(x): i for i, x in enumerate(items)}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), ray.get(ref)
        def close(self):
            pass

    register_executor("ray", RayExecutor)

Job functions should catch the errors of their own job and return them as part of the result (as
:func:`affectflow.procedures.sweep.run_cell` does), so that one failed job never stops the others; an exception
escaping ``fn`` is re-raised by ``map``.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Protocol, Sequence

from affectflow.errors import ConfigError


class Executor(Protocol):
    """What a procedure needs from a backend."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Run ``fn(item)`` for every item; yield ``(index, result)`` as each finishes."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(int(threads))


class SerialExecutor:
    """Runs jobs in order in the calling process (sets torch threads for the duration and restores them)."""

    def __init__(self, workers: int = 1, threads: int = 1) -> None:
        self.threads = threads

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        import torch

        before = torch.get_num_threads()
        try:
            for i, item in enumerate(items):
                _set_threads(self.threads)
                yield i, fn(item)
        finally:
            torch.set_num_threads(before)

    def close(self) -> None:
        pass

    def __enter__(self) -> "SerialExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalProcessExecutor:
    """A pool of ``workers`` spawned processes, each with ``threads`` torch threads."""

    def __init__(self, workers: int = 2, threads: int = 1) -> None:
        self.workers, self.threads = workers, threads
        self._pool: ProcessPoolExecutor | None = None

    def _ensure(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_set_threads, initargs=(self.threads,))
        return self._pool

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if not items:
            return
        pool = self._ensure()
        pending = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    yield pending.pop(fut), fut.result()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "LocalProcessExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


EXECUTORS: dict[str, Callable[..., Any]] = {"serial": SerialExecutor, "local": LocalProcessExecutor}


def register_executor(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(workers=..., threads=...)`` available as backend ``name``."""
    EXECUTORS[name] = factory


def get_executor(backend: str = "local", *, workers: int = 1, threads: int = 1) -> Any:
    """The executor ``backend`` with ``workers`` parallel jobs of ``threads`` torch threads each.

    ``local`` with one worker falls back to ``serial`` (no process start-up cost).
    """
    if workers < 1 or threads < 1:
        raise ConfigError(f"Workers and threads must be >= 1; got workers={workers}, threads={threads}.")
    if backend not in EXECUTORS:
        raise ConfigError(f"Unknown executor backend {backend!r}; available: {sorted(EXECUTORS)}.")
    if backend == "local" and workers == 1:
        backend = "serial"
    ex = EXECUTORS[backend](workers=workers, threads=threads)
    return ex
