"""Parser of ``affectflow serve`` (handler in :mod:`affectflow.cli.serve`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import handler


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
        "max_streams=32, stream_idle_timeout_s=60, max_stream_message_kb=1024, threads=1, tmp_dir=PATH, "
        "isolate_jobs=true, header_timeout_s=10, keep_alive_timeout_s=5, allowed_hosts=[localhost,127.0.0.1,::1], "
        "allowed_origins=[]. Binding to a non-loopback --host needs --token-file.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=argtypes.int_between(0, 65535), default=8000, help="port (default 8000)")
    p.add_argument("--seed", type=int, help="use this seed's checkpoint (default: the selected seed)")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding a secret token (>= 16 characters) every call must send as 'Authorization: "
                   "Bearer <token>'; required when --host is not a loopback address")
    p.add_argument("-s", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a service limit, e.g. --set max_upload_mb=50 (repeatable)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default info)")
    p.add_argument("-q", "--quiet", action="store_true", help="no access log")
    p.set_defaults(func=handler("affectflow.cli.serve:run_serve"))
