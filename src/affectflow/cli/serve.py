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
import dataclasses
import ipaddress

import uvicorn

from affectflow.cli.parsers.serve import register  # noqa: F401 - re-exported: the parser lived here
from affectflow.errors import ConfigError
from affectflow.serve import ServeSettings, create_app
from affectflow.serve.model import load_served_model
from affectflow.serve.server import uvicorn_config


def run_serve(args: argparse.Namespace) -> int:
    """Start the server; returns 0 when it is stopped (Ctrl+C)."""
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535; got {args.port}.")
    settings = ServeSettings.from_overrides(args.set)
    if args.token_file:
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
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
