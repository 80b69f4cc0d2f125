"""``affectflow serve``: the prediction service of a trained run (FastAPI app served by uvicorn).

::

    affectflow serve RUN                                   # http://127.0.0.1:8000/ : the live page
    affectflow serve RUN --host 0.0.0.0 --port 8080 --set max_upload_mb=50 --set max_concurrent_jobs=4

Limits are :class:`affectflow.serve.settings.ServeSettings` fields, set with ``--set key=value``.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "serve",
        help="serve a trained run over HTTP: POST /predict, jobs with progress, a WebSocket stream, a live page",
        description="Serve a trained run: a web page (GET /) to predict an uploaded file or the microphone with "
        "live valence/arousal curves; POST /predict and POST /jobs for media files (JSON or CSV); WS /stream for "
        "step-by-step predictions from audio chunks or feature frames; GET /health; GET /info for the run's "
        "metadata. Limits: --set max_upload_mb=200, upload_timeout_s=600, request_timeout_s=60, sync_max_duration_s=600, "
        "max_duration_s=14400, max_concurrent_jobs=2, max_queued_jobs=16, job_timeout_s=3600, job_ttl_s=3600, "
        "max_streams=32, stream_idle_timeout_s=60, max_stream_message_kb=1024, threads=1, tmp_dir=PATH.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--seed", type=int, help="use this seed's checkpoint (default: the selected seed)")
    p.add_argument("-s", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a service limit, e.g. --set max_upload_mb=50 (repeatable)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default info)")
    p.add_argument("-q", "--quiet", action="store_true", help="no access log")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Start the server; returns 0 when it is stopped (Ctrl+C)."""
    import uvicorn

    from affectflow.errors import ConfigError
    from affectflow.serve import ServeSettings, create_app
    from affectflow.serve.model import load_served_model

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535; got {args.port}.")
    settings = ServeSettings.from_overrides(args.set)
    model = load_served_model(args.run, seed=args.seed, threads=settings.threads)
    app = create_app(model, settings)
    print(f"Serving run {model.name} ({', '.join(model.targets)}) on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=not args.quiet,
                ws_max_size=int(settings.max_stream_message_kb * 1024) + 1024)
    return 0
