"""The ASGI application of ``affectflow serve``: prediction over HTTP, streaming over a WebSocket, a live page.

Endpoints
---------
``GET /``
    The web page (``static/index.html``): choose a file or the microphone, watch the valence/arousal curves and
    the 2-D trajectory draw, download the CSV.
``GET /health``
    ``{"status": "ok", "run", "uptime_s", "jobs": {status: count}, "streams", "limits"}``.
``GET /info``
    The run's metadata (:meth:`ServedModel.metadata`): targets, feature sets, label rate, causal, stream inputs,
    accepted file extensions and the limits.
``POST /predict[?format=json|csv]``
    Upload one media file (multipart field ``file``, or the raw body with ``?filename=NAME.EXT``). Answers the
    time series directly (``200``) when it is ready within ``request_timeout_s`` and the media is at most
    ``sync_max_duration_s`` long; otherwise ``202`` with the job (as ``POST /jobs``) to poll.
``POST /jobs``
    Upload as above; always ``202`` with ``{"id", "url", "result_url", "status", ...}``. Jobs (and ``/predict``
    of media longer than ``sync_max_duration_s``) run in the background lane: their own workers
    (``max_background_jobs``), at a lower CPU priority (``background_nice``), so that they never delay the
    interactive predictions.
``GET /jobs/{id}``
    Status (``queued | running | done | failed | cancelled``), ``progress`` in [0, 1], the current stage
    (``message``) and, when done, the result.
``GET /jobs/{id}/result[?format=json|csv]``
    The result (``409`` while the job runs; the job's error status when it failed).
``DELETE /jobs/{id}``
    Cancel a job.
``WS /stream``
    Step-by-step predictions from streamed audio or feature frames (protocol in :mod:`affectflow.serve.stream`).

There is no ``/docs`` page (Swagger UI would be fetched from a CDN at run time); ``GET /openapi.json`` describes
the endpoints. Every request first passes :class:`~affectflow.serve.guard.AccessGuard` (allowed ``Host`` names,
the browser's ``Origin``, the optional bearer token), and predictions run in killable child processes
(:mod:`affectflow.serve.isolation`) unless ``isolate_jobs`` is off.

The result JSON is columnar: ``{"name", "time": [...], "<target>": [...], "targets", "label_rate_hz",
"n_steps", "duration_s"}`` with ``null`` for steps without a prediction; the CSV has the columns ``time`` and the
targets. Every error is JSON ``{"error": "<kind>", "detail": "<one paragraph>"}`` with a 4xx status for anything
the client can fix; unexpected failures are logged and answered with a 500 without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import threading
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from affectflow.errors import AffectflowError
from affectflow.predictions import prediction_csv_text
from affectflow.serve.guard import AccessGuard
from affectflow.serve.isolation import IsolatedCrash, run_isolated, shutdown, warm_up
from affectflow.serve.jobs import Job, JobFailure, JobManager, QueueFull
from affectflow.serve.model import ServedModel, load_served_model
from affectflow.serve.settings import MEDIA_EXTENSIONS, ServeSettings
from affectflow.serve.stream import serve_stream
from affectflow.serve.uploads import UploadError, UploadStore, receive_upload

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("affectflow.serve") / "static"))


def error_response(status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error every endpoint answers with."""
    return JSONResponse({"error": kind, "detail": detail}, status_code=status, headers=headers)


def result_payload(df: pd.DataFrame, targets: list[str], name: str, label_rate_hz: float) -> dict[str, Any]:
    """A prediction DataFrame (``time`` + one column per target) as columnar JSON values (NaN → ``None``)."""

    def col(values: np.ndarray) -> list[float | None]:
        return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64)]

    out: dict[str, Any] = {"name": name, "targets": list(targets), "label_rate_hz": label_rate_hz,
                           "n_steps": int(len(df)), "time": col(df["time"].to_numpy())}
    for t in targets:
        out[t] = col(df[t].to_numpy())
    out["duration_s"] = float(df["time"].iloc[-1]) if len(df) else 0.0
    return out


def csv_response(df: pd.DataFrame, targets: list[str], name: str) -> Response:
    """The prediction as CSV (``time,<targets>``; empty cells for missing steps), offered as a download."""
    stem = Path(name).stem or "prediction"
    return Response(prediction_csv_text(df[["time", *targets]]), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{stem}-prediction.csv"'})


def create_app(run: str | Path | ServedModel, settings: ServeSettings | None = None) -> FastAPI:
    """Build the service for a trained run.

    Parameters
    ----------
    run:
        A run directory (loaded with :func:`~affectflow.serve.model.load_served_model`) or a loaded
        :class:`~affectflow.serve.model.ServedModel`.
    settings:
        Limits (default :class:`ServeSettings`).

    Returns
    -------
    FastAPI
        The ASGI app. Its upload folder and job workers are made when it starts (lifespan) and removed when it
        stops; ``app.state.service`` holds them.
    """
    settings = settings or ServeSettings()
    model = run if isinstance(run, ServedModel) else load_served_model(run, threads=settings.threads)
    svc = _Service(model, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc.start()
        try:
            yield
        finally:
            svc.stop()

    app = FastAPI(title="affectflow serve", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = svc
    app.add_middleware(AccessGuard, allowed_hosts=settings.allowed_hosts, allowed_origins=settings.allowed_origins,
                       token=settings.token())

    # ---------------------------------------------------------------------------------------------- errors
    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError):
        kinds = {408: "timeout", 413: "too_large", 415: "unsupported_media_type", 422: "bad_media", 503: "busy"}
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        return error_response(exc.status, kinds.get(exc.status, "bad_request"), exc.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "The service failed with an internal error (its log has the details).")

    # ------------------------------------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health")
    async def health():
        return {"status": "ok", "run": model.name, "uptime_s": round(time.time() - svc.started, 3),
                "jobs": svc.jobs.counts() if svc.jobs else {}, "streams": svc.open_streams,
                "limits": settings.to_dict()}

    @app.get("/info")
    async def info():
        return {**model.metadata(), "extensions": sorted(MEDIA_EXTENSIONS), "limits": settings.to_dict()}

    # ------------------------------------------------------------------------------------------ prediction
    @app.post("/predict")
    async def predict(request: Request, format: str = "json"):
        fmt = _check_format(format)
        job = await svc.submit_upload(request, background=None)
        long_media = job.background
        if not long_media:
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.future)), settings.request_timeout_s)
            except asyncio.TimeoutError:
                pass
        if long_media or not job.is_finished:
            return JSONResponse(svc.job_links(request, job), status_code=202,
                                headers={"Location": f"/jobs/{job.id}"})
        return svc.result_response(job, fmt)

    @app.post("/jobs", status_code=202)
    async def create_job(request: Request):
        job = await svc.submit_upload(request, background=True)
        return JSONResponse(svc.job_links(request, job), status_code=202, headers={"Location": f"/jobs/{job.id}"})

    @app.get("/jobs/{job_id}")
    async def get_job(request: Request, job_id: str):
        job = svc.job_or_404(job_id)
        out = svc.job_links(request, job)
        if job.status == "done":
            out["result"] = svc.payload(job)
        return out

    @app.get("/jobs/{job_id}/result")
    async def get_result(job_id: str, format: str = "json"):
        fmt = _check_format(format)
        job = svc.job_or_404(job_id)
        if not job.is_finished:
            return error_response(409, "not_ready", f"Job {job_id} is {job.status} "
                                  f"({100 * job.progress:.0f} % done); poll GET /jobs/{job_id}.")
        return svc.result_response(job, fmt)

    @app.delete("/jobs/{job_id}")
    async def cancel_job(request: Request, job_id: str):
        svc.job_or_404(job_id)
        job = svc.jobs.cancel(job_id)
        return svc.job_links(request, job)

    # ------------------------------------------------------------------------------------------- streaming
    @app.websocket("/stream")
    async def stream(ws: WebSocket):
        await serve_stream(ws, svc)

    return app


def _check_format(fmt: str) -> str:
    f = fmt.lower()
    if f not in ("json", "csv"):
        raise UploadError(400, f"format={fmt!r}: expected json or csv.")
    return f


class _Service:
    """State of one running app: the model, upload folder, jobs and stream count."""

    def __init__(self, model: ServedModel, settings: ServeSettings) -> None:
        self.model = model
        self.settings = settings
        self.store: UploadStore | None = None
        self.jobs: JobManager | None = None
        self.open_streams = 0
        self.started = time.time()

    def start(self) -> None:
        s = self.settings
        self.store = UploadStore(s.tmp_dir, s.max_upload_mb)
        self.jobs = JobManager(s.max_concurrent_jobs, s.max_queued_jobs, s.job_timeout_s, s.job_ttl_s,
                               max_background=s.max_background_jobs)
        self.started = time.time()
        if s.isolate_jobs:
            threading.Thread(target=warm_up, args=(s.max_concurrent_jobs, s.threads, s.max_background_jobs,
                                                   s.background_nice),
                             name="affectflow-workers", daemon=True).start()

    def stop(self) -> None:
        if self.jobs is not None:
            self.jobs.shutdown()
        if self.settings.isolate_jobs:
            shutdown()
        if self.store is not None:
            self.store.close()

    # -------------------------------------------------------------------------------------------------- jobs
    async def submit_upload(self, request: Request, background: bool | None) -> Job:
        """Receive the upload, probe it (4xx for bad media) and queue its prediction: in the background lane when
        ``background`` is true, or when it is ``None`` and the media is longer than ``sync_max_duration_s``."""
        try:
            path, name, _ = await asyncio.wait_for(receive_upload(request, self.store), self.settings.upload_timeout_s)
        except asyncio.TimeoutError:
            raise UploadError(408, f"The upload did not arrive within the service's limit of "
                                   f"{self.settings.upload_timeout_s:g} s.") from None
        try:
            duration = await asyncio.to_thread(self._probe, path, name)
            if duration > self.settings.max_duration_s:
                raise UploadError(413, f"{name!r} is {duration:.1f} s long; the service accepts media up to "
                                       f"{self.settings.max_duration_s:g} s.")
            if background is None:
                background = duration > self.settings.sync_max_duration_s
            job = self.jobs.submit(name, lambda job: self._predict(job, path, name),
                                   cleanup=lambda: self.store.remove(path),
                                   info={"duration_s": round(duration, 3)}, background=background)
        except QueueFull as e:
            self.store.remove(path)
            raise _Busy(str(e)) from None
        except BaseException:
            self.store.remove(path)
            raise
        return job

    def _probe(self, path: Path, name: str) -> float:
        try:
            return float(self.model.probe(path, limit_s=self.settings.max_duration_s))
        except AffectflowError as e:
            raise UploadError(422, _clean(str(e), path, name, self.store.root)) from None

    def _predict(self, job: Job, path: Path, name: str) -> pd.DataFrame:
        workdir = self.store.root / f"work-{job.id}"
        try:
            if not self.settings.isolate_jobs:
                return self.model.predict_file(path, progress=job.report, workdir=workdir)
            try:
                return run_isolated(self.model, path, workdir=workdir, progress=job.report, check=job.check,
                                    threads=self.settings.threads,
                                    nice=self.settings.background_nice if job.background else 0)
            except IsolatedCrash as e:
                log.error("job %s (%s) failed in its process: %s", job.id, job.name, e)
                raise JobFailure(500, "The prediction failed with an internal error (the service's log has the "
                                      "details).") from None
        except AffectflowError as e:
            raise JobFailure(422, _clean(str(e), path, name, self.store.root)) from None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)  # a killed child cannot remove its own work folder

    def job_or_404(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise StarletteHTTPException(404, f"There is no job {job_id!r} (unknown, or expired "
                                              f"{self.settings.job_ttl_s:g} s after it finished).")
        return job

    def job_links(self, request: Request, job: Job) -> dict[str, Any]:
        return {**job.summary(), "url": f"/jobs/{job.id}", "result_url": f"/jobs/{job.id}/result"}

    def payload(self, job: Job) -> dict[str, Any]:
        m = self.model
        return result_payload(job.result, m.targets, job.name, m.label_rate_hz)

    def result_response(self, job: Job, fmt: str) -> Response:
        if job.status != "done":
            err = job.error or JobFailure(500, "The job failed.")
            kind = "bad_media" if err.status == 422 else ("cancelled" if job.status == "cancelled" else "failed")
            return error_response(err.status, kind, err.message)
        if fmt == "csv":
            return csv_response(job.result, self.model.targets, job.name)
        return JSONResponse(self.payload(job))


class _Busy(UploadError):
    def __init__(self, message: str) -> None:
        super().__init__(503, message)


def _clean(message: str, path: Path, name: str, root: Path) -> str:
    """An error message with the server's upload path replaced by the client's file name (and the private
    folder's path by a placeholder)."""
    return message.replace(str(path), name).replace(path.name, name).replace(str(root), "<upload folder>")
