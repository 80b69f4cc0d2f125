"""Who may talk to the service: the ``Host`` header, the browser's ``Origin`` and an optional bearer token.

One ASGI middleware, :class:`AccessGuard`, checks every HTTP request and WebSocket handshake before the app sees
it, in this order:

1. **Host.** The ``Host`` header (port removed, lower case) must be in ``allowed_hosts`` (default: localhost
   names), else ``400 bad_host``. This stops DNS rebinding: a foreign page whose name was made to resolve to
   127.0.0.1 still sends its own name as ``Host``.
2. **Origin.** A browser sends ``Origin`` with cross-site requests and every WebSocket handshake. It must be the
   service's own origin (``scheme://<Host header>``) or be in ``allowed_origins``, else ``403 bad_origin``; the
   literal ``null`` origin (sandboxed frames, ``file://`` pages) is refused too. Requests without ``Origin``
   (curl, scripts) pass this check.
3. **Token.** When a token is set, every path except the page (``/``) and its static files (``/static/...``)
   needs ``Authorization: Bearer <token>`` (a WebSocket may pass ``?token=<token>``); else ``401 unauthorized``
   with ``WWW-Authenticate: Bearer``. Tokens are compared in constant time.

A refused WebSocket is closed before it is accepted (the client sees HTTP 403).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.responses import JSONResponse

#: Paths served without a token: the page holds no secret; it asks for the token (or reads it from the URL
#: fragment ``#token=...``) and sends it with every call.
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = ("/", "/favicon.ico")


def host_name(host_header: str) -> str:
    """``"LocalHost:8000"`` → ``"localhost"``; ``"[::1]:8000"`` → ``"::1"``."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h[1:]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class AccessGuard:
    """ASGI middleware applying the host, origin and token checks (see the module docstring).

    Parameters
    ----------
    app:
        The wrapped ASGI app.
    allowed_hosts:
        Host names (``"*"``: any).
    allowed_origins:
        Extra origins allowed besides the service's own (``"*"``: any).
    token:
        The bearer token, or ``None`` for no token check.
    """

    def __init__(self, app: Any, allowed_hosts: list[str], allowed_origins: list[str], token: str | None) -> None:
        self.app = app
        self.hosts = {h.lower() for h in allowed_hosts}
        self.origins = {o.lower().rstrip("/") for o in allowed_origins}
        self.token = token

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, kind, detail = problem
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
            return
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        await JSONResponse({"error": kind, "detail": detail}, status_code=status, headers=headers)(scope, receive, send)

    def problem(self, scope: dict) -> tuple[int, str, str] | None:
        """``(status, kind, detail)`` of the first failed check, or ``None`` when the request may pass."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host_header = headers.get("host", "")
        host = host_name(host_header)
        if "*" not in self.hosts and host not in self.hosts:
            return (400, "bad_host", f"Host {host_header!r} is not one this service answers to; it accepts "
                    f"{sorted(self.hosts)} (start it with --set allowed_hosts=[...] to add names).")
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin, scope, host_header):
            return (403, "bad_origin", f"Requests from pages of {origin!r} are not allowed; the service accepts "
                    "its own page and the origins in its allowed_origins setting.")
        if self.token is not None and not self._public(scope.get("path", "")):
            given = None
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            elif scope["type"] == "websocket":
                q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                given = (q.get("token") or [None])[0]
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                return (401, "unauthorized", "This service needs its token: send 'Authorization: Bearer <token>' "
                        "(the token is in the file given to affectflow serve --token-file).")
        return None

    def _origin_ok(self, origin: str, scope: dict, host_header: str) -> bool:
        o = origin.strip().lower().rstrip("/")
        if o == "null":
            return False
        if "*" in self.origins or o in self.origins:
            return True
        parts = urlsplit(o)
        return parts.scheme in ("http", "https") and parts.netloc == host_header.strip().lower()

    @staticmethod
    def _public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
