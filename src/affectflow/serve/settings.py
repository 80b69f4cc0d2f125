"""Limits and options of the prediction service (:func:`affectflow.serve.create_app`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from affectflow.config import split_override
from affectflow.errors import ConfigError

#: Media extensions an upload may have (lower case, with the dot). Anything else is refused with 415 before a
#: byte is decoded; the extension only selects the decoder, the content is always probed.
MEDIA_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".webm", ".mp4", ".mkv", ".avi", ".mov"}
)

#: Host names a request may address by default (the ``Host`` header, port removed): this machine only. A page of
#: another site that makes a browser resolve its own name to 127.0.0.1 (DNS rebinding) is refused by this check.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(kw_only=True)
class ServeSettings:
    """Limits of one service instance; every field can be set from ``affectflow serve --set key=value``.

    Attributes
    ----------
    max_upload_mb:
        Largest accepted upload (MiB). Larger requests get 413, checked on ``Content-Length`` before the body is
        read and again while it streams in (for chunked uploads).
    upload_timeout_s:
        Longest time an upload may take to arrive (s); slower ones get 408 and are discarded.
    request_timeout_s:
        How long ``POST /predict`` waits for its answer (s). A prediction still running then continues as a job:
        the reply is ``202`` with the job's id and URL to poll instead of the result.
    sync_max_duration_s:
        ``POST /predict`` answers directly for media up to this long (s); longer files become a job at once
        (``202``), as with ``POST /jobs``.
    max_duration_s:
        Longest accepted media (s); longer files get 413.
    max_concurrent_jobs:
        Interactive predictions (``POST /predict`` of media up to ``sync_max_duration_s``) running at the same time.
    max_background_jobs:
        Background jobs (``POST /jobs``, and ``POST /predict`` of longer media) running at the same time. They have
        their own workers, so a long job never holds up a short prediction's turn.
    background_nice:
        CPU priority offset (``nice``, 0-19) of the processes that run background jobs (with ``isolate_jobs``): at
        the default 10 a long job takes the CPU time interactive predictions leave idle. 0 runs them at the
        service's own priority.
    max_queued_jobs:
        Jobs waiting for a worker, per lane; when a queue is full new uploads get 503 with ``Retry-After``.
    job_timeout_s:
        A job running longer than this (s) is cancelled at its next progress report and marked failed.
    job_ttl_s:
        Finished jobs (and their results) are forgotten this long (s) after they finish.
    max_streams:
        Open WebSocket streams at the same time; one more is closed with code 1013 (try again later).
    stream_idle_timeout_s:
        A WebSocket stream that sends nothing for this long (s) is closed.
    max_stream_message_kb:
        Largest WebSocket message (KiB).
    threads:
        torch intra-op threads used for inference (``torch.set_num_threads``); 0 leaves torch's default.
    tmp_dir:
        Parent of the private upload folder (default: the system temp dir). The service makes its own folder
        ``affectflow-serve-XXXX`` (mode 0700) in it; uploads get server-chosen names there and are deleted when
        their job is done.
    isolate_jobs:
        Run each prediction in a child process (:mod:`affectflow.serve.isolation`), so that ``DELETE /jobs/{id}``
        and ``job_timeout_s`` stop it within a fraction of a second even inside a long native call (default
        true). ``false`` runs predictions in the worker threads, where a stop acts only at the next progress
        report.
    header_timeout_s:
        A request's headers must arrive within this many seconds of its first byte, or the connection is closed
        (slow-header clients cannot hold connections open).
    keep_alive_timeout_s:
        An idle keep-alive connection is closed after this many seconds.
    allowed_hosts:
        Accepted ``Host`` header names (port ignored, case-insensitive); ``"*"`` accepts any. Default: this
        machine's names (:data:`LOCAL_HOSTS`); ``affectflow serve --host ADDR`` adds ``ADDR``. Other hosts get
        400 (a WebSocket is refused before it opens).
    allowed_origins:
        Web origins (``scheme://host[:port]``) whose pages may call the service from a browser, besides the
        service's own page (same origin). Requests with any other ``Origin`` header get 403; requests without
        one (curl, scripts) are not affected by this check.
    token_file:
        A file holding a secret token (whitespace stripped, at least 16 characters). When set, every endpoint
        except the page and its static files needs ``Authorization: Bearer <token>`` (a WebSocket may send
        ``?token=<token>`` instead, as browsers cannot set its headers); others get 401. Required by
        ``affectflow serve`` when it listens on a non-loopback address.
    """

    max_upload_mb: float = 200.0
    upload_timeout_s: float = 600.0
    request_timeout_s: float = 60.0
    sync_max_duration_s: float = 600.0
    max_duration_s: float = 4 * 3600.0
    max_concurrent_jobs: int = 2
    max_background_jobs: int = 1
    background_nice: int = 10
    max_queued_jobs: int = 16
    job_timeout_s: float = 3600.0
    job_ttl_s: float = 3600.0
    max_streams: int = 32
    stream_idle_timeout_s: float = 60.0
    max_stream_message_kb: float = 1024.0
    threads: int = 1
    tmp_dir: str | None = None
    isolate_jobs: bool = True
    header_timeout_s: float = 10.0
    keep_alive_timeout_s: float = 5.0
    allowed_hosts: list[str] = field(default_factory=lambda: list(LOCAL_HOSTS))
    allowed_origins: list[str] = field(default_factory=list)
    token_file: str | None = None

    def __post_init__(self) -> None:
        positive = ["max_upload_mb", "upload_timeout_s", "request_timeout_s", "max_duration_s", "job_timeout_s", "job_ttl_s",
                    "stream_idle_timeout_s", "max_stream_message_kb", "header_timeout_s", "keep_alive_timeout_s"]
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not v > 0:
                raise ConfigError(f"Serve setting {name} must be a positive number (finite); got {v!r}.")
        if (not isinstance(self.sync_max_duration_s, (int, float)) or isinstance(self.sync_max_duration_s, bool)
                or not math.isfinite(self.sync_max_duration_s) or self.sync_max_duration_s < 0):
            raise ConfigError(f"Serve setting sync_max_duration_s must be >= 0; got {self.sync_max_duration_s!r}.")
        if (not isinstance(self.background_nice, int) or isinstance(self.background_nice, bool)
                or not 0 <= self.background_nice <= 19):
            raise ConfigError(f"Serve setting background_nice must be an integer from 0 to 19; got "
                              f"{self.background_nice!r}.")
        for name in ["max_concurrent_jobs", "max_background_jobs", "max_streams"]:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"Serve setting {name} must be an integer >= 1; got {v!r}.")
        for name in ["max_queued_jobs", "threads"]:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"Serve setting {name} must be an integer >= 0; got {v!r}.")
        if self.tmp_dir is not None and not Path(self.tmp_dir).is_dir():
            raise ConfigError(f"Serve setting tmp_dir {self.tmp_dir!r} is not an existing folder.")
        if not isinstance(self.isolate_jobs, bool):
            raise ConfigError(f"Serve setting isolate_jobs must be true or false; got {self.isolate_jobs!r}.")
        for name in ("allowed_hosts", "allowed_origins"):
            v = getattr(self, name)
            if isinstance(v, str):
                v = [v]
                setattr(self, name, v)
            if not isinstance(v, list) or not all(isinstance(x, str) and x and x.strip() == x for x in v):
                raise ConfigError(f"Serve setting {name} must be a list of names, e.g. [localhost, myhost]; got {v!r}.")
        setattr(self, "allowed_hosts", [h.lower().strip("[]") for h in self.allowed_hosts])
        for o in self.allowed_origins:
            if o != "*" and not o.lower().startswith(("http://", "https://")):
                raise ConfigError(f"Serve setting allowed_origins: {o!r} is not an origin like https://example.org.")
        if self.token_file is not None:
            self.token()  # readable and long enough, or a ConfigError now

    def token(self) -> str | None:
        """The bearer token from ``token_file`` (``None`` when no file is set).

        Raises
        ------
        ConfigError
            The file cannot be read, or holds fewer than 16 characters.
        """
        if self.token_file is None:
            return None
        try:
            tok = Path(self.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"The token file {self.token_file!r} cannot be read: {e}.") from None
        if len(tok) < 16 or any(c.isspace() for c in tok):
            raise ConfigError(f"The token file {self.token_file!r} must hold one secret of at least 16 characters "
                              f"without spaces (e.g. the output of `python -c 'import secrets; "
                              f"print(secrets.token_urlsafe(32))'`); it holds {len(tok)} characters.")
        return tok

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (shown by ``GET /health``, without ``tmp_dir``)."""
        d = asdict(self)
        d.pop("tmp_dir")
        d.pop("token_file")
        d["token_required"] = self.token_file is not None
        return d

    @classmethod
    def from_overrides(cls, items: list[str] | None) -> "ServeSettings":
        """Settings from ``key=value`` strings, parsed by :func:`affectflow.config.split_override` (values are YAML;
        an empty value is ``None``), e.g. ``["max_upload_mb=50"]``."""
        valid = {f.name: f for f in fields(cls)}
        kw: dict[str, Any] = {}
        for item in items or []:
            key = item.partition("=")[0].strip() if isinstance(item, str) else ""
            if not isinstance(item, str) or "=" not in item or key not in valid:
                raise ConfigError(
                    f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(valid)}."
                )
            key, value = split_override(item)
            if valid[key].type in ("float",) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            kw[key] = value
        return cls(**kw)
