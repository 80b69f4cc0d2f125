"""Run one prediction in a child process that the service can kill: cancellation and time limits act within
seconds, even inside a native call (openSMILE, a decoder) that never returns to Python.

A job's worker thread calls :func:`run_isolated`; it starts a child from a ``forkserver`` (started once per
service with torch and affectflow's inference modules already imported, so a job's child costs a fork, not an
interpreter start-up), sends it the model and the upload, and relays its progress messages. Every
``poll_s`` seconds (and at every progress message) it calls ``check()``, the job's cancel/time-limit test: when
that raises, the child and everything it started (its own process group) get ``SIGKILL`` at once and the
exception goes on to the job manager. The child also dies with the forkserver (:func:`affectflow.procutil.
die_with_parent`), and the forkserver with the service, so a killed service leaves no prediction running.

What crosses the pipe: ``("progress", fraction, message)``, then either ``("done", DataFrame)``,
``("error", AffectflowError)`` (a user-fixable failure, re-raised here as itself) or ``("crash", text)`` (an
unexpected exception, re-raised as :class:`IsolatedCrash` with the child's traceback text for the log).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import traceback
from typing import Any, Callable

from affectflow.procutil import die_with_parent, kill_process_tree

#: Modules the forkserver imports once, so that each job's child starts warm.
PRELOAD = ["affectflow.serve.isolation", "affectflow.serve.model", "affectflow.inference.media", "affectflow.features.pipeline",
           "affectflow.experiment"]

_ctx_lock = threading.Lock()
_ctx: Any = None


class IsolatedCrash(RuntimeError):
    """The child failed with an unexpected exception (its traceback is the message) or died without a word."""


def context() -> Any:
    """The ``forkserver`` multiprocessing context (with :data:`PRELOAD`), made once per process."""
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            ctx = multiprocessing.get_context(method)
            if method == "forkserver":
                ctx.set_forkserver_preload(PRELOAD)
            _ctx = ctx
        return _ctx


def _noop() -> None:
    pass


def warm_up() -> None:
    """Start the forkserver now and wait until it has imported :data:`PRELOAD` (it runs one empty child), so
    that the first job does not pay for it."""
    ctx = context()
    if ctx.get_start_method() == "forkserver":
        p = ctx.Process(target=_noop, daemon=True)
        p.start()
        p.join(120)


def _child(conn, service: int, threads: int, model: Any, path: str, workdir: str | None) -> None:
    # our parent is the forkserver, which exits when the service does; when started by spawn it is the service
    die_with_parent()
    if os.getppid() == 1:
        os._exit(1)
    try:
        os.setpgrp()  # our helpers (decoders, pools) die with us when the service kills the group
    except OSError:
        pass
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    from affectflow.errors import AffectflowError

    def progress(fraction: float, message: str | None = None) -> None:
        conn.send(("progress", float(fraction), message))

    try:
        result = model.predict_file(path, progress=progress, workdir=workdir)
        conn.send(("done", result))
    except AffectflowError as e:
        try:
            conn.send(("error", e))
        except Exception:  # noqa: BLE001 - an error object that does not pickle: send its text
            conn.send(("error", _plain_error(e)))
    except BaseException:  # noqa: BLE001 - reported to the parent, which logs it
        conn.send(("crash", traceback.format_exc()))
    finally:
        conn.close()


def _plain_error(e: Exception) -> Exception:
    from affectflow.errors import AffectflowError

    return AffectflowError(str(e))


def run_isolated(model: Any, path: str | os.PathLike, *, workdir: str | os.PathLike | None = None,
                 progress: Callable[[float, str | None], None] | None = None,
                 check: Callable[[], None] | None = None, threads: int = 1, poll_s: float = 0.1) -> Any:
    """``model.predict_file(path, progress=..., workdir=workdir)`` in a killable child process.

    Parameters
    ----------
    model:
        A picklable object with ``predict_file`` (a :class:`~affectflow.serve.model.ServedModel`).
    path, workdir:
        The upload and the child's work folder (the caller removes it afterwards: a killed child cannot).
    progress:
        Called here with the child's ``(fraction, message)``; it may raise to stop the job.
    check:
        Called every ``poll_s`` seconds; when it raises, the child's process group is killed and the exception
        propagates.
    threads:
        torch threads of the child (0: torch's default).

    Returns
    -------
    Any
        What ``predict_file`` returned in the child.

    Raises
    ------
    AffectflowError
        As raised in the child.
    IsolatedCrash
        Any other exception in the child (its traceback is the message), or the child died without answering.
    """
    ctx = context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, os.getpid(), threads, model, str(path),
                                            None if workdir is None else str(workdir)), daemon=True)
    proc.start()
    send.close()
    try:
        while True:
            if check is not None:
                check()
            if recv.poll(poll_s):
                try:
                    msg = recv.recv()
                except EOFError:
                    proc.join(1.0)
                    raise IsolatedCrash(f"the prediction process ended without an answer (exit code "
                                        f"{proc.exitcode})") from None
                kind = msg[0]
                if kind == "progress":
                    if progress is not None:
                        progress(msg[1], msg[2])
                elif kind == "done":
                    return msg[1]
                elif kind == "error":
                    raise msg[1]
                else:
                    raise IsolatedCrash(str(msg[1]))
            elif not proc.is_alive() and not recv.poll(0):
                raise IsolatedCrash(f"the prediction process died (exit code {proc.exitcode})")
    finally:
        if proc.is_alive():
            kill_process_tree(proc.pid)
        proc.join(5.0)
        recv.close()
