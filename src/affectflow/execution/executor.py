"""Where independent jobs run: one small interface, pluggable backends.

Generic execution machinery (it knows nothing of runs or features): a procedure (a sweep's cells, cross-validation's
folds, cross-fitting's fold models) or the extraction runner (:func:`affectflow.features.pipeline.extract`) hands a
list of picklable job descriptions and a **top-level** function to :meth:`Executor.map`, and gets ``(index, result)``
pairs back as jobs finish (completion order, not submission order), so it can record progress after every job::

    from affectflow.execution import get_executor

    ex = get_executor("local", workers=2, threads=1)
    try:
        for i, result in ex.map(run_one, jobs):
            record(i, result)
    finally:
        ex.close()

(Earlier versions had this module as ``affectflow.procedures.executor``; that path still works for one release.)

Backends
--------
``serial``
    Runs the jobs one after the other in this process (no pickling; the default for one worker and in tests).
``local``
    A process pool of ``workers`` processes (``spawn`` start method, so no forked OpenMP state); every worker
    calls ``torch.set_num_threads(threads)`` once at start and dies with its parent
    (:func:`affectflow.procutil.die_with_parent`: a killed sweep or CV leaves no orphan finishing its job).

``forked``
    Processes forked from this one (:mod:`affectflow.execution.forked`): no start-up, no import, the job inputs
    inherited instead of pickled; one torch thread per worker (``threads`` must be 1); Linux/macOS only.
``ray``
    Ray tasks on a private local cluster or an existing one (``address="auto"`` / ``"ray://host:port"``), each
    task declaring its resources (CPUs, GPU fraction, memory, custom resources) and retried by Ray when its worker
    dies: :mod:`affectflow.execution.ray_executor`. Options: ``address``, ``cpus``, ``gpus``, ``memory_gb``,
    ``resources``, ``max_retries`` (the ``execution:`` section of a config, :func:`execution_settings`).

Plugging in another backend
---------------------------
Write a class with ``__init__(self, workers: int, threads: int, **options)``, ``map(self, fn, items)`` yielding
``(index, fn(items[index]))`` as jobs finish, and ``close(self)``; register it under a name. Procedures and the
CLI (``--backend NAME``) then use it without any change (see :class:`~affectflow.execution.ray_executor.RayExecutor`
for a complete one)::

    from affectflow.execution import register_executor
    register_executor("mine", MyExecutor)

Job functions should catch the errors of their own job and return them as part of the result (as
:func:`affectflow.procedures.sweep.run_cell` does), so that one failed job never stops the others; an exception
escaping ``fn`` is re-raised by ``map``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Protocol, Sequence

from affectflow.errors import ConfigError
from affectflow.execution.forked import ForkedExecutor
from affectflow.execution.ray_executor import RayExecutor
from affectflow.procutil import die_with_parent


class Executor(Protocol):
    """What a procedure needs from a backend."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Run ``fn(item)`` for every item; yield ``(index, result)`` as each finishes."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


def _set_threads(threads: int) -> None:
    import torch  # lazy: config, and so `affectflow extract`, loads this module

    torch.set_num_threads(int(threads))


def _init_pool_worker(threads: int) -> None:
    """Start of a pool worker: die with the parent (a killed sweep leaves no orphan finishing its cell), set the
    torch threads."""
    die_with_parent()
    _set_threads(threads)


class SerialExecutor:
    """Runs jobs in order in the calling process (sets torch threads for the duration and restores them)."""

    def __init__(self, workers: int = 1, threads: int = 1, **options: Any) -> None:
        self.threads = threads  # options of other backends (address, gpus, ...) do not apply here

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        import torch  # lazy: config, and so `affectflow extract`, loads this module

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

    def __init__(self, workers: int = 2, threads: int = 1, **options: Any) -> None:
        self.workers, self.threads = workers, threads  # options of other backends do not apply here
        self._pool: ProcessPoolExecutor | None = None

    def _ensure(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_pool_worker, initargs=(self.threads,))
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


EXECUTORS: dict[str, Callable[..., Any]] = {"serial": SerialExecutor, "local": LocalProcessExecutor,
                                            "forked": ForkedExecutor, "ray": RayExecutor}  # ray itself is imported when a RayExecutor starts

#: Keys of a config's ``execution:`` section that are executor options (passed to the backend).
OPTION_KEYS = ("address", "cpus", "gpus", "memory_gb", "resources", "max_retries")


def register_executor(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(workers=..., threads=..., **options)`` available as backend ``name``."""
    EXECUTORS[name] = factory


def execution_settings(section: Any = None, *, backend: str | None = None, workers: int | None = None,
                       threads: int | None = None, address: str | None = None) -> tuple[str, int, int, dict[str, Any]]:
    """Resolve where jobs run: ``(backend, workers, threads, options)``.

    Command-line values (not ``None``) win over the config's ``execution:`` section (a mapping or an
    :class:`~affectflow.config.ExecutionConfig`), which wins over the defaults ``local``, 1 worker, 1 thread.
    ``options`` holds the backend options that are set (``address``, ``cpus``, ``gpus``, ``memory_gb``,
    ``resources``, ``max_retries``).
    """
    sec = dataclasses.asdict(section) if dataclasses.is_dataclass(section) else dict(section or {})
    backend = backend or sec.get("backend") or "local"
    workers = workers if workers is not None else (sec.get("workers") or 1)
    threads = threads if threads is not None else (sec.get("threads") or 1)
    options = {k: sec[k] for k in OPTION_KEYS if sec.get(k) is not None and sec.get(k) != {}}
    if address is not None:
        options["address"] = address
    return backend, int(workers), int(threads), options


def get_executor(backend: str = "local", *, workers: int = 1, threads: int = 1, **options: Any) -> Any:
    """The executor ``backend`` with ``workers`` parallel jobs of ``threads`` torch threads each.

    ``local`` with one worker falls back to ``serial`` (no process start-up cost). ``options`` go to the backend
    (``serial`` and ``local`` ignore them; ``ray`` takes ``address``, ``cpus``, ``gpus``, ``memory_gb``,
    ``resources``, ``max_retries``).
    """
    if isinstance(workers, bool) or isinstance(threads, bool) or workers < 1 or threads < 1:
        raise ConfigError(f"Workers and threads must be >= 1; got workers={workers}, threads={threads}.")
    if backend not in EXECUTORS:
        raise ConfigError(f"Unknown executor backend {backend!r}; available: {sorted(EXECUTORS)}.")
    if backend == "local" and workers == 1:
        backend = "serial"
    ex = EXECUTORS[backend](workers=workers, threads=threads, **options)
    return ex
