"""Forked worker processes that share what the parent has already built.

:func:`forked_map` runs ``fn(item)`` for every item in up to ``workers`` processes forked from this one, so every
worker starts with the parent's memory as it is (an open corpus, loaded feature stores, a fitted normaliser,
imported torch) instead of importing and rebuilding it as a spawned worker of
:class:`~affectflow.execution.LocalProcessExecutor` must (about 2.5 s of torch import per worker on the 2-core
machine, plus the data). ``fn`` and the items are inherited, never pickled, so ``fn`` may be a closure; only the
results travel back (pickled). Results are yielded as ``(index, result)`` in completion order::

    for i, result in forked_map(lambda seed: train_seed(setup, seed), seeds, workers=2):
        record(seeds[i], result)

Every worker runs with **one** torch thread. This is a rule, not a default: GNU OpenMP (the CPU wheel's threading
layer) does not survive ``fork`` once the parent has used a thread team, and a forked worker that starts a team of
two deadlocks (seen here with torch 2.13). One thread per process is also where process parallelism pays: small
recurrent models scale poorly over intra-op threads and linearly over processes (two 1-thread seed trainings side by
side on the 2-core machine each took the same 18.9 s as one alone).

Not for CUDA (a forked child cannot use a CUDA context made by its parent); callers decide that. A worker dies with
its parent (:func:`affectflow.procutil.die_with_parent`). An exception raised by ``fn`` is re-raised by the
iterator, after the workers still running have been stopped; a worker that dies (killed, out of memory) raises
:class:`~affectflow.errors.ExecutionError` naming the items that were running (the pool does not say which one
died).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence

from affectflow.errors import ConfigError, ExecutionError
from affectflow.procutil import die_with_parent

#: The job of the pool being run: (fn, items, started flags in shared memory). Set before the workers fork, so they
#: inherit it; a worker sets ``started[i]`` when it takes item ``i`` (to name the items a dead worker may have held).
_JOB: tuple[Callable[[Any], Any], Sequence[Any], Any] | None = None
#: In a worker: the job it serves (taken from the inherited :data:`_JOB`, which is cleared so that a job may run a
#: :func:`forked_map` of its own, e.g. a training with seed workers inside a forked sweep cell).
_WORKER_JOB: tuple[Callable[[Any], Any], Sequence[Any], Any] | None = None


def fork_available() -> bool:
    """Whether this platform can fork worker processes (Linux, tested; macOS allows it, untested; not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def _init_forked_worker() -> None:
    global _JOB, _WORKER_JOB
    _WORKER_JOB, _JOB = _JOB, None
    die_with_parent()
    import torch  # lazy: config, and so `affectflow extract`, loads this package

    torch.set_num_threads(1)


def _run_item(index: int) -> Any:
    fn, items, started = _WORKER_JOB  # inherited from the parent at fork time
    started[index] = 1
    return fn(items[index])


def forked_map(fn: Callable[[Any], Any], items: Sequence[Any], *, workers: int,
               describe: Callable[[Any], str] = repr) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(items[index]))`` for every item, computed in ``min(workers, len(items))`` forked processes
    with one torch thread each (see the module docstring), as each finishes.

    Parameters
    ----------
    fn:
        Called in a worker with one item; may be a closure (inherited, not pickled). Its result must be picklable.
    items:
        The jobs; inherited by the workers, not pickled.
    workers:
        At most this many processes at a time (>= 1).
    describe:
        How an item is named in the error about a worker that died.

    Raises
    ------
    ConfigError
        ``workers < 1``, this platform cannot fork, or another :func:`forked_map` is running in this process.
    ExecutionError
        A worker process died before returning its result (the message names the items that were running).
    """
    global _JOB
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"forked_map: `workers` must be an integer >= 1, got {workers!r}.")
    if not fork_available():
        raise ConfigError("Forked workers need the 'fork' start method, which this platform does not have; "
                          "use one worker.")
    if _JOB is not None:
        raise ConfigError("forked_map is already running in this process; it cannot be nested.")
    if not items:
        return
    ctx = multiprocessing.get_context("fork")
    _JOB = (fn, list(items), ctx.RawArray("b", len(items)))
    pool = ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx, initializer=_init_forked_worker)
    pending = {}
    try:
        pending = {pool.submit(_run_item, i): i for i in range(len(items))}
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool as e:  # which worker died is not known: name what was running
                    unfinished = sorted([i, *pending.values()])
                    running = [describe(items[k]) for k in unfinished if _JOB[2][k]] or [
                        describe(items[k]) for k in unfinished]  # died before marking its item
                    raise ExecutionError(
                        f"A worker process died (killed, or out of memory?) while running {', '.join(running)}; "
                        "what had finished is kept."
                    ) from e
                yield i, result
    finally:
        for fut in pending:
            fut.cancel()
        if pending:  # stopped early (an error, or the caller stopped iterating): do not wait for running jobs
            for proc in list(getattr(pool, "_processes", {}).values()):
                if proc.is_alive():
                    proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        _JOB = None


class ForkedExecutor:
    """Backend ``forked``: :func:`forked_map` behind the :class:`~affectflow.execution.Executor` interface, for jobs
    whose inputs are already in this process (personalisation groups: ``affectflow personalise --backend forked
    --workers 2``). Every worker has one torch thread (see the module docstring), so ``threads`` must be 1."""

    def __init__(self, workers: int = 2, threads: int = 1, **options: Any) -> None:
        if threads != 1:
            raise ConfigError(
                f"The forked backend runs every job with one torch thread (GNU OpenMP does not survive fork with a "
                f"thread team), got threads={threads}; set threads to 1 or use the local backend."
            )
        if not fork_available():
            raise ConfigError("The forked backend needs the 'fork' start method, which this platform does not have; "
                              "use the local backend.")
        self.workers = workers  # options of other backends (address, gpus, ...) do not apply here

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        yield from forked_map(fn, items, workers=self.workers)

    def close(self) -> None:
        pass

    def __enter__(self) -> "ForkedExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
