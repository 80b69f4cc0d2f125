"""Prediction jobs: a bounded pool of worker threads, a bounded queue, progress, cancellation and expiry.

Jobs run in two lanes with their own workers and queues, so that a long upload never takes the place of a short
one: the **interactive** lane (``POST /predict`` of media up to ``sync_max_duration_s``, whose client waits for the
answer) and the **background** lane (``POST /jobs`` and long media). A background job's child process runs at a
lower CPU priority (``background_nice``), so that it uses the cores the interactive predictions leave idle.

A job runs ``fn(report)``; ``fn`` calls ``job.report(fraction, message)`` now and then (``fraction`` in [0, 1],
``message`` the current stage). ``report`` raises
:class:`JobCancelled` when the job was cancelled or has run past its time limit, which ends ``fn`` there.
Inference releases the GIL inside torch/openSMILE, so threads give real parallelism up to
``max_concurrent_jobs``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job's function by ``report`` when the job must stop."""


class QueueFull(Exception):
    """No room for another job (``max_concurrent_jobs`` running and ``max_queued_jobs`` waiting)."""


@dataclass
class JobFailure(Exception):
    """A job's failure as the client sees it: an HTTP status and one paragraph."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Job:
    """One prediction job (see the module docstring). Times are ``time.time()`` seconds."""

    id: str
    name: str
    timeout_s: float
    status: str = "queued"  # queued | running | done | failed | cancelled
    progress: float = 0.0
    message: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: Any = None
    error: JobFailure | None = None
    info: dict[str, Any] = field(default_factory=dict)
    background: bool = False
    cancel_requested: bool = False
    future: concurrent.futures.Future | None = None

    @property
    def finished_ok(self) -> bool:
        return self.status == "done"

    @property
    def is_finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    def check(self) -> None:
        """Raise :class:`JobCancelled` when the job was cancelled or has run past its time limit."""
        if self.cancel_requested:
            raise JobCancelled("cancelled by the client")
        if self.started is not None and time.time() - self.started > self.timeout_s:
            raise JobCancelled(f"the job ran past the service's limit of {self.timeout_s:g} s")

    def report(self, fraction: float, message: str | None = None) -> None:
        """Record progress from inside the job (``fraction`` in [0, 1], an optional stage ``message``); raises
        :class:`JobCancelled` when the job must stop."""
        self.check()
        self.progress = float(min(max(fraction, 0.0), 1.0))
        if message:
            self.message = str(message)

    def summary(self) -> dict[str, Any]:
        """The job's state as JSON-able values (no result)."""
        d: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "progress": round(self.progress, 4),
            "message": self.message,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "lane": "background" if self.background else "interactive",
            **self.info,
        }
        if self.error is not None:
            d["error"] = self.error.message
        return d


class JobManager:
    """Runs jobs in two lanes (interactive and background, see the module docstring), each on its own worker
    threads and with its own bounded queue.

    Parameters
    ----------
    max_concurrent:
        Worker threads of the interactive lane.
    max_queued:
        Jobs allowed to wait for a worker, per lane.
    timeout_s:
        Time limit of a running job (checked at each ``report``).
    ttl_s:
        Finished jobs are dropped this long after finishing.
    max_background:
        Worker threads of the background lane.
    """

    def __init__(self, max_concurrent: int, max_queued: int, timeout_s: float, ttl_s: float,
                 max_background: int = 1) -> None:
        self.max_concurrent = max_concurrent
        self.max_background = max_background
        self.max_queued = max_queued
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_concurrent,
                                                           thread_name_prefix="affectflow-job")
        self._background_pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_background,
                                                                      thread_name_prefix="affectflow-bgjob")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------------- public
    def submit(self, name: str, fn: Callable[[Job], Any], *, cleanup: Callable[[], None] | None = None,
               info: dict[str, Any] | None = None, background: bool = False) -> Job:
        """Queue ``fn(job)`` (it reports through ``job.report``) in the interactive lane, or in the background lane
        when ``background``; ``cleanup()`` runs after it in any case.

        Raises
        ------
        QueueFull
            When ``max_queued`` jobs are already waiting in that lane.
        """
        with self._lock:
            self._expire()
            lane = [j for j in self._jobs.values() if j.background == background]
            waiting = sum(1 for j in lane if j.status == "queued")
            running = sum(1 for j in lane if j.status == "running")
            limit = self.max_background if background else self.max_concurrent
            if running >= limit and waiting >= self.max_queued:
                kind = "background jobs" if background else "predictions"
                raise QueueFull(
                    f"The service is busy: {running} {kind} are running and {waiting} are waiting "
                    f"(limits {limit} and {self.max_queued}); try again later."
                )
            job = Job(id=uuid.uuid4().hex, name=name, timeout_s=self.timeout_s, info=dict(info or {}),
                      background=background)
            self._jobs[job.id] = job
            pool = self._background_pool if background else self._pool
            job.future = pool.submit(self._run, job, fn, cleanup)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or ``None`` (unknown or expired)."""
        with self._lock:
            self._expire()
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop (a queued job is cancelled before it starts)."""
        job = self.get(job_id)
        if job is not None and not job.is_finished:
            job.cancel_requested = True
            if job.future is not None and job.future.cancel():
                self._finish(job, "cancelled", error=JobFailure(409, "The job was cancelled before it started."))
        return job

    def counts(self) -> dict[str, int]:
        """Number of jobs per status."""
        with self._lock:
            self._expire()
            out: dict[str, int] = {}
            for j in self._jobs.values():
                out[j.status] = out.get(j.status, 0) + 1
            return out

    def shutdown(self) -> None:
        """Cancel what is queued or running and stop the workers (waits for running jobs' next report)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for j in jobs:
            j.cancel_requested = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._background_pool.shutdown(wait=True, cancel_futures=True)

    # -------------------------------------------------------------------------------------------- internals
    def _run(self, job: Job, fn: Callable[[Job], Any], cleanup: Callable[[], None] | None) -> None:
        try:
            if job.cancel_requested:
                raise JobCancelled("cancelled by the client")
            job.status = "running"
            job.started = time.time()
            result = fn(job)
            job.result = result
            job.progress = 1.0
            self._finish(job, "done")
        except JobCancelled as e:
            self._finish(job, "cancelled", error=JobFailure(409, f"The job was stopped: {e}."))
        except JobFailure as e:
            self._finish(job, "failed", error=e)
        except Exception:  # noqa: BLE001 - logged with its traceback here; the client gets one paragraph
            log.exception("job %s (%s) failed", job.id, job.name)
            self._finish(job, "failed", error=JobFailure(
                500, "The prediction failed with an internal error (the service's log has the details)."))
        finally:
            if cleanup is not None:
                try:
                    cleanup()
                except Exception:  # noqa: BLE001
                    log.exception("cleanup of job %s failed", job.id)

    def _finish(self, job: Job, status: str, error: JobFailure | None = None) -> None:
        job.error = error
        job.finished = time.time()
        job.status = status

    def _expire(self) -> None:
        now = time.time()
        for jid in [j.id for j in self._jobs.values() if j.finished is not None and now - j.finished > self.ttl_s]:
            del self._jobs[jid]
