"""Running the service under uvicorn with connection time limits.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but sets no limit on how long a client may
take to send a request's headers: a client that sends one header byte every few seconds holds a connection (and
its memory) for ever. :class:`HeaderTimeoutProtocol` adds that limit: from the first byte of a request (or the
opening of the connection) its headers must be complete within ``header_timeout_s`` seconds, else the connection
is closed. The body has its own limit in the app (``upload_timeout_s``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers (class attribute ``header_timeout_s``)."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._cancel_header_timer()
        elif self.conn.their_state is h11.IDLE:  # still waiting for (the rest of) a request's headers
            self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._cancel_header_timer()  # the keep-alive timer covers the wait for the next request

    def _arm_header_timer(self) -> None:
        if getattr(self, "_header_timer", None) is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        t = getattr(self, "_header_timer", None)
        if t is not None:
            t.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers did not arrive within %g s",
                             self.header_timeout_s)
            self.transport.close()


def uvicorn_config(app: Any, *, host: str, port: int, settings: Any, **kw: Any):
    """A ``uvicorn.Config`` for ``app`` with the service's connection limits from ``settings``
    (:class:`~affectflow.serve.settings.ServeSettings`): header and keep-alive timeouts, WebSocket message size."""
    proto = type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": settings.header_timeout_s})
    return uvicorn.Config(app, host=host, port=port, http=proto, ws="auto",
                          timeout_keep_alive=max(1, int(round(settings.keep_alive_timeout_s))),
                          ws_max_size=int(settings.max_stream_message_kb * 1024) + 1024, **kw)
