"""``affectflow serve``: the prediction service of a trained run (FastAPI app served by uvicorn).

::

    affectflow serve RUN                                   # http://127.0.0.1:8000/ : the live page
    affectflow serve RUN --host 0.0.0.0 --port 8080 --token-file secret.txt --set allowed_hosts=[myhost.lan] \
        --set max_upload_mb=50 --set max_concurrent_jobs=4

Limits are :class:`affectflow.serve.settings.ServeSettings` fields, set with ``--set key=value``. Listening on an
address other than loopback needs ``--token-file``: every call then carries ``Authorization: Bearer <token>``,
and the page is opened as ``http://HOST:PORT/#token=<token>`` (printed at start-up).
"""

from __future__ import annotations

import argparse
from typing import Any
from affectflow.cli import argtypes


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
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Start the server; returns 0 when it is stopped (Ctrl+C)."""
    import uvicorn

    from affectflow.errors import ConfigError
    from affectflow.serve import ServeSettings, create_app
    from affectflow.serve.model import load_served_model
    from affectflow.serve.server import uvicorn_config

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535; got {args.port}.")
    settings = ServeSettings.from_overrides(args.set)
    if args.token_file:
        import dataclasses

        settings = dataclasses.replace(settings, token_file=args.token_file)
    host = args.host.strip("[]")
    if not is_loopback(host):
        if settings.token_file is None:
            raise ConfigError(
                f"--host {args.host} makes the service reachable from other machines; give --token-file FILE "
                "(a secret of at least 16 characters that every call must send as 'Authorization: Bearer "
                "<token>') or listen on 127.0.0.1."
            )
        if not any(s.startswith("allowed_hosts=") for s in args.set) and host not in ("0.0.0.0", "::"):
            settings.allowed_hosts = [*settings.allowed_hosts, host.lower()]
    model = load_served_model(args.run, seed=args.seed, threads=settings.threads)
    app = create_app(model, settings)
    shown = f"[{host}]" if ":" in host else host
    frag = "#token=<the token in " + str(args.token_file) + ">" if settings.token_file else ""
    print(f"Serving run {model.name} ({', '.join(model.targets)}) on http://{shown}:{args.port}/{frag}", flush=True)
    if host in ("0.0.0.0", "::") and "*" not in settings.allowed_hosts:
        print(f"Requests must name one of the hosts {settings.allowed_hosts}; add this machine's names with "
              "--set allowed_hosts=[...]", flush=True)
    config = uvicorn_config(app, host=host, port=args.port, settings=settings, log_level=args.log_level,
                            access_log=not args.quiet)
    uvicorn.Server(config).run()
    return 0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address to listen on) is this machine only: ``localhost`` or a loopback IP."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
