"""Run one prediction in a worker process that the service can kill: cancellation and time limits act within
a fraction of a second, even inside a native call (openSMILE, a decoder) that never returns to Python.

Worker processes are forked from a ``forkserver`` that imported torch, the extractors and their libraries once
(:data:`PRELOAD`), and each worker serves one job after the other, so a job costs a message, not an interpreter
start-up or a round of first-call set-up. A job's worker thread calls :func:`run_isolated`: it takes an idle
worker (or starts one), sends it the model and the upload, and relays its progress messages. Every ``poll_s``
seconds (and at every progress message) it calls ``check()``, the job's cancel/time-limit test: when that raises,
the worker and everything it started (its own process group) get ``SIGKILL`` at once and the exception goes on to
the job manager; the next job starts a fresh worker. A worker that finished its job normally goes back to the idle
list. Workers die with the forkserver (:func:`affectflow.procutil.die_with_parent`), and the forkserver with the
service, so a killed service leaves no prediction running; :func:`shutdown` stops the idle ones.

What crosses the pipe: the job ``(model, path, workdir)``, then ``("progress", fraction, message)`` messages and
one of ``("done", DataFrame)``, ``("error", AffectflowError)`` (a user-fixable failure, re-raised here as itself)
or ``("crash", text)`` (an unexpected exception, re-raised as :class:`IsolatedCrash` with the worker's traceback).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import traceback
from typing import Any, Callable

import torch

from affectflow.errors import AffectflowError
from affectflow.procutil import die_with_parent, kill_process_tree

#: Modules the forkserver imports once, so that workers start warm.
PRELOAD = ["affectflow.serve.isolation", "affectflow.serve.model", "affectflow.serve.preload",
           "affectflow.inference.media", "affectflow.features.pipeline", "affectflow.experiment"]

#: Idle workers kept per process at most (the others are stopped when they finish a job).
MAX_IDLE = 8

_lock = threading.Lock()
_ctx: Any = None
_idle: list["_Worker"] = []


class IsolatedCrash(RuntimeError):
    """The worker failed with an unexpected exception (its traceback is the message) or died without a word."""


def context() -> Any:
    """The ``forkserver`` multiprocessing context (with :data:`PRELOAD`), made once per process."""
    global _ctx
    with _lock:
        if _ctx is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            ctx = multiprocessing.get_context(method)
            if method == "forkserver":
                ctx.set_forkserver_preload(PRELOAD)
            _ctx = ctx
        return _ctx


def _worker_main(conn, threads: int, nice: int = 0) -> None:
    # our parent is the forkserver, which exits when the service does; when started by spawn it is the service
    die_with_parent()
    if os.getppid() == 1:
        os._exit(1)
    try:
        os.setpgrp()  # our helpers (decoders, pools) die with us when the service kills the group
    except OSError:
        pass
    if nice:
        try:
            os.nice(int(nice))  # a background worker: lower CPU priority for the rest of its life
        except OSError:
            pass
    if threads:
        torch.set_num_threads(int(threads))
    def progress(fraction: float, message: str | None = None) -> None:
        conn.send(("progress", float(fraction), message))

    while True:
        try:
            model, path, workdir = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("done", model.predict_file(path, progress=progress, workdir=workdir)))
        except AffectflowError as e:
            try:
                conn.send(("error", e))
            except Exception:  # noqa: BLE001 - an error object that does not pickle: send its text
                conn.send(("error", AffectflowError(str(e))))
        except BaseException:  # noqa: BLE001 - reported to the service, which logs it
            conn.send(("crash", traceback.format_exc()))


class _Worker:
    """One worker process and the service's end of its pipe."""

    def __init__(self, threads: int, nice: int = 0) -> None:
        ctx = context()
        self.threads = threads
        self.nice = nice
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, threads, nice), daemon=True)
        self.proc.start()
        child.close()

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self, wait: bool = True) -> None:
        """``SIGKILL`` the worker's process group; ``wait``: also wait (up to 5 s) until it has exited (a killed
        process frees its memory before it exits, which takes a moment for a large one at a low priority)."""
        if self.proc.is_alive():
            kill_process_tree(self.proc.pid)
        if wait:
            self.proc.join(5.0)
        self.conn.close()


def _take(threads: int, nice: int = 0) -> _Worker:
    with _lock:
        for w in reversed(_idle):
            if w.threads == threads and w.nice == nice:
                _idle.remove(w)
                if w.alive():
                    return w
                w.kill()
                break
    return _Worker(threads, nice)


def _give_back(w: _Worker) -> None:
    with _lock:
        if len(_idle) < MAX_IDLE and w.alive():
            _idle.append(w)
            return
    w.kill()


def warm_up(workers: int = 1, threads: int = 1, background: int = 0, nice: int = 0) -> None:
    """Start the forkserver, ``workers`` idle workers and ``background`` idle workers at priority offset ``nice``
    now (they import :data:`PRELOAD` once), so that the first jobs do not pay for it; returns when they are
    ready."""
    ws = [_take(threads) for _ in range(max(0, workers))] + [_take(threads, nice) for _ in range(max(0, background))]
    for w in ws:
        w.conn.send((_Ping(), "", None))
    for w in ws:
        if w.conn.poll(120):
            w.conn.recv()
        _give_back(w)


class _Ping:
    """A job that does nothing (used to wait until a worker is up)."""

    def predict_file(self, path, *, progress=None, workdir=None):
        return None


def shutdown() -> None:
    """Stop the idle workers (a running job's worker stops when its job ends or is killed)."""
    with _lock:
        ws, _idle[:] = list(_idle), []
    for w in ws:
        w.kill()


def run_isolated(model: Any, path: str | os.PathLike, *, workdir: str | os.PathLike | None = None,
                 progress: Callable[[float, str | None], None] | None = None,
                 check: Callable[[], None] | None = None, threads: int = 1, nice: int = 0,
                 poll_s: float = 0.1) -> Any:
    """``model.predict_file(path, progress=..., workdir=workdir)`` in a killable worker process.

    Parameters
    ----------
    model:
        A picklable object with ``predict_file`` (a :class:`~affectflow.serve.model.ServedModel`).
    path, workdir:
        The upload and the job's work folder (the caller removes it afterwards: a killed worker cannot).
    progress:
        Called here with the worker's ``(fraction, message)``; it may raise to stop the job.
    check:
        Called every ``poll_s`` seconds; when it raises, the worker's process group is killed and the exception
        propagates.
    threads:
        torch threads of the worker (0: torch's default).
    nice:
        CPU priority offset of the worker process (``os.nice``; 0: the service's own priority). Workers are
        kept per ``(threads, nice)``.

    Returns
    -------
    Any
        What ``predict_file`` returned in the worker.

    Raises
    ------
    AffectflowError
        As raised in the worker.
    IsolatedCrash
        Any other exception in the worker (its traceback is the message), or the worker died without answering.
    """
    w = _take(threads, nice)
    healthy = False
    try:
        w.conn.send((model, str(path), None if workdir is None else str(workdir)))
        while True:
            if check is not None:
                check()
            if w.conn.poll(poll_s):
                try:
                    msg = w.conn.recv()
                except EOFError:
                    w.proc.join(1.0)
                    raise IsolatedCrash(f"the prediction process ended without an answer (exit code "
                                        f"{w.proc.exitcode})") from None
                kind = msg[0]
                if kind == "progress":
                    if progress is not None:
                        progress(msg[1], msg[2])
                    continue
                healthy = True  # it answered: it can take the next job
                if kind == "done":
                    return msg[1]
                if kind == "error":
                    raise msg[1]
                raise IsolatedCrash(str(msg[1]))
            if not w.alive() and not w.conn.poll(0):
                raise IsolatedCrash(f"the prediction process died (exit code {w.proc.exitcode})")
    finally:
        if healthy:
            _give_back(w)
        else:
            w.kill(wait=False)  # the job ends now; the process is reaped below

            def replace() -> None:
                w.proc.join(5.0)
                _give_back(_Worker(threads, nice))  # the next job does not wait for the fork

            threading.Thread(target=replace, daemon=True).start()
