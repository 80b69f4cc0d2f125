"""The ``/stream`` WebSocket: step-by-step predictions from streamed audio or feature frames.

Protocol (JSON text messages; audio as binary messages)::

    client → {"type": "start", "input": "audio", "sample_rate": 16000, "encoding": "f32le"}
             (or "input": "features"; "encoding": "f32le" | "s16le", little-endian mono PCM)
    server → {"type": "ready", "input", "sample_rate", "targets", "label_rate_hz", "feature_sets"}
    client → binary PCM chunks (audio), or
             {"type": "frame", "features": {"<feature set>": [values...], ...}}   (features; one label step)
    server → {"type": "prediction", "step": k, "time": t, "<target>": value, ...}   (one per label step, in order)
    client → {"type": "end"}
    server → the remaining predictions, then {"type": "end", "steps": n} and closes (1000)

When the model is behind, the audio chunks waiting are given to it in one call (the predictions are the same,
they only come in bigger batches); at most 64 messages wait, then the server stops reading until it catches up.
Errors are sent as ``{"type": "error", "detail": "..."}`` before the socket is closed with 1003 (unsupported
data), 1008 (protocol violation), 1009 (message too big), 1013 (too many streams: try again later) or 1011
(internal error). A stream idle for ``stream_idle_timeout_s`` is closed with 1000 after an error message.
Inference runs in a worker thread so that other clients are served meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from affectflow.errors import AffectflowError

log = logging.getLogger(__name__)


class _Refused(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def prediction_messages(preds: list[dict[str, Any]]) -> list[str]:
    """Serialised ``prediction`` messages (NaN → ``null``)."""
    out = []
    for p in preds:
        msg = {"type": "prediction"}
        for k, v in p.items():
            msg[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        out.append(json.dumps(msg))
    return out


def decode_pcm(data: bytes, encoding: str) -> np.ndarray:
    """Little-endian mono PCM bytes as float32 in [-1, 1]."""
    if encoding == "f32le":
        if len(data) % 4:
            raise _Refused(1003, f"An f32le audio message must hold a whole number of 4-byte samples; got {len(data)} bytes.")
        x = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise _Refused(1003, "The audio contains NaN or infinite samples.")
        return x
    if len(data) % 2:
        raise _Refused(1003, f"An s16le audio message must hold a whole number of 2-byte samples; got {len(data)} bytes.")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


async def serve_stream(ws: WebSocket, svc) -> None:
    """Run one WebSocket stream (see the module docstring) for the service ``svc``."""
    settings = svc.settings
    await ws.accept()
    if svc.open_streams >= settings.max_streams:
        await _close(ws, 1013, f"The service already has {svc.open_streams} open streams (limit "
                               f"{settings.max_streams}); try again later.")
        return
    svc.open_streams += 1
    session = None
    max_bytes = int(settings.max_stream_message_kb * 1024)
    try:
        start = await _receive(ws, settings.stream_idle_timeout_s, max_bytes)
        if start.get("text") is None:
            raise _Refused(1008, "The first message must be a JSON 'start' message, e.g. "
                                 '{"type": "start", "input": "audio", "sample_rate": 16000}.')
        hello = _json(start["text"])
        if hello.get("type") != "start":
            raise _Refused(1008, f"The first message must have type 'start'; got {hello.get('type')!r}.")
        kind = hello.get("input", "audio")
        encoding = hello.get("encoding", "f32le")
        if kind not in ("audio", "features"):
            raise _Refused(1008, f"'input' must be 'audio' or 'features'; got {kind!r}.")
        if encoding not in ("f32le", "s16le"):
            raise _Refused(1008, f"'encoding' must be 'f32le' or 's16le'; got {encoding!r}.")
        try:
            session = await asyncio.to_thread(svc.model.open_stream, kind, hello.get("sample_rate"))
        except AffectflowError as e:
            raise _Refused(1008, str(e)) from None
        await ws.send_text(json.dumps({"type": "ready", "input": kind, "encoding": encoding, **session.describe()}))
        # A reader task validates messages into a bounded queue (when it is full the reader stops reading, so a
        # client sending faster than the model keeps up is slowed down by TCP); this task feeds the model. When
        # it is behind, every audio chunk waiting in the queue goes to the model in one call: the per-call cost
        # of feature extraction is paid once per batch, so a busy server catches up instead of falling behind.
        queue: asyncio.Queue = asyncio.Queue(maxsize=64)
        reader = asyncio.create_task(_read(ws, queue, kind, encoding, settings.stream_idle_timeout_s, max_bytes))
        try:
            held: list = []  # an item taken from the queue while batching audio, handled next
            while True:
                item = held.pop() if held else await queue.get()
                if item[0] == "raise":
                    raise item[1]
                if item[0] == "audio":
                    chunks = [item[1]]
                    while not queue.empty():
                        nxt = queue.get_nowait()
                        if nxt[0] != "audio":
                            held.append(nxt)
                            break
                        chunks.append(nxt[1])
                    x = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
                    preds = await asyncio.to_thread(_guard, session.push_audio, x)
                elif item[0] == "frame":
                    preds = await asyncio.to_thread(_guard, session.push_frame, item[1])
                else:  # end
                    preds = await asyncio.to_thread(_guard, session.finish)
                    for m in prediction_messages(preds):
                        await ws.send_text(m)
                    await ws.send_text(json.dumps({"type": "end", "steps": session.steps}))
                    await ws.close(1000)
                    return
                for m in prediction_messages(preds):
                    await ws.send_text(m)
        finally:
            reader.cancel()
    except _Refused as e:
        await _close(ws, e.code, e.detail)
    except WebSocketDisconnect:
        pass
    except asyncio.TimeoutError:
        await _close(ws, 1000, f"No message for {settings.stream_idle_timeout_s:g} s; the stream is closed.")
    except Exception:  # noqa: BLE001 - logged; the client gets one line
        log.exception("stream failed")
        await _close(ws, 1011, "The stream failed with an internal error (the service's log has the details).")
    finally:
        svc.open_streams -= 1
        if session is not None:
            session.close()


async def _read(ws: WebSocket, queue: asyncio.Queue, kind: str, encoding: str, idle_s: float,
                max_bytes: int) -> None:
    """Receive, validate and queue ``("audio", x)``, ``("frame", features)`` and ``("end",)`` items; a protocol
    error, a disconnect or the idle timeout is queued as ``("raise", exception)``."""
    try:
        while True:
            msg = await _receive(ws, idle_s, max_bytes)
            if msg.get("bytes") is not None:
                if kind != "audio":
                    raise _Refused(1003, "Binary messages are audio, but this stream was started with input "
                                         "'features'; send {\"type\": \"frame\", ...} messages.")
                await queue.put(("audio", decode_pcm(msg["bytes"], encoding)))
                continue
            body = _json(msg["text"])
            t = body.get("type")
            if t == "end":
                await queue.put(("end",))
                return
            if t != "frame" or kind != "features":
                raise _Refused(1008, f"Unexpected message type {t!r} on a stream of input {kind!r}: expected "
                                     + ("binary audio or 'end'." if kind == "audio" else "'frame' or 'end'."))
            feats = body.get("features")
            if not isinstance(feats, dict):
                raise _Refused(1003, "A 'frame' message needs 'features': {feature set: [values...]}.")
            await queue.put(("frame", feats))
    except asyncio.CancelledError:
        raise
    except BaseException as e:  # noqa: BLE001 - handed to the stream's task, which answers the client
        await queue.put(("raise", e))


def _guard(fn, *args):
    try:
        return fn(*args)
    except AffectflowError as e:
        raise _Refused(1003, str(e)) from None


async def _receive(ws: WebSocket, timeout: float, max_bytes: int) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    if msg["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(msg.get("code", 1000))
    size = len(msg.get("bytes") or b"") + len((msg.get("text") or "").encode())
    if size > max_bytes:
        raise _Refused(1009, f"A message of {size} bytes is larger than the limit of {max_bytes} bytes.")
    return msg


def _json(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as e:
        raise _Refused(1003, f"A text message is not valid JSON: {e}.") from None
    if not isinstance(body, dict):
        raise _Refused(1003, "A text message must be a JSON object.")
    return body


async def _close(ws: WebSocket, code: int, detail: str) -> None:
    try:
        await ws.send_text(json.dumps({"type": "error", "detail": detail}))
        await ws.close(code)
    except Exception:  # noqa: BLE001 - the client may already be gone
        pass
