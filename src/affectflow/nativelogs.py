"""Silence the start-up lines native libraries write straight to file descriptor 2 (MediaPipe, TensorFlow Lite,
absl / glog), which no Python logging setting reaches.

MediaPipe's FaceLandmarker prints, on creation and from its worker threads at the first frames::

    WARNING: Logging before InitGoogle() is written to STDERR
    W0000 00:00:1796525406.134394   17262 face_landmarker_graph.cc:181] Sets FaceBlendshapesGraph acceleration ...
    INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
    W0000 00:00:1796525406.158377   17266 inference_feedback_manager.cc:121] Feedback manager requires a model ...

and the usual environment switches (``GLOG_minloglevel``, ``TF_CPP_MIN_LOG_LEVEL``) do not stop them (tried with
mediapipe 1.2.2). :func:`native_log_filter` therefore points descriptor 2 at a pipe for the duration of a block and
copies every line through to the real stderr **except** lines in those formats (:data:`NOISE`): absl/glog lines
(``I0000 ...``, ``W1206 12:00:00.000 ...``: level I or W (errors, ``E``/``F``, pass), a level letter, four digits, a time, a thread id, ``file.cc:line]``),
TensorFlow Lite ``INFO:`` lines and the two "logging before ..." notices. Everything else, Python tracebacks,
warnings and progress bars included, passes unchanged (partial lines, such as a bar's ``\\r`` updates, are passed
on as they arrive). Worker processes started inside the block inherit the filtered descriptor.

``extract`` and ``predict`` (and ``serve``'s prediction jobs, which call the same API) use it. To see the lines,
pass ``-v/--verbose`` to ``affectflow`` or set ``AFFECTFLOW_NATIVE_LOGS=1``.

This module imports nothing from affectflow, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from typing import Iterator

ENV = "AFFECTFLOW_NATIVE_LOGS"

#: Lines that are dropped (bytes, matched at the start of a line).
NOISE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\]"  # absl / glog: W0000 00:00:1796.13 17262 file.cc:181]
    rb"|INFO: (?:Created TensorFlow Lite|Initialized TensorFlow Lite)"  # TFLite delegate notices
    rb"|WARNING: Logging before InitGoogle\(\)"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb")"
)
_PREFIX_CHARS = b"IW"

_lock = threading.Lock()
_depth = 0
_state: dict = {}


def wanted() -> bool:
    """Whether native start-up lines are wanted (``AFFECTFLOW_NATIVE_LOGS`` set to ``1``/``true``/``yes``)."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _pump(read_fd: int, out_fd: int) -> None:
    buf = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        keep = [line + b"\n" for line in lines if not NOISE.match(line)]
        # a partial line that cannot be the start of a noise line (a progress bar's "\r..." update) goes on now
        if buf and buf[:1] not in _PREFIX_CHARS:
            keep.append(buf)
            buf = b""
        data = b"".join(keep)
        while data:
            try:
                n = os.write(out_fd, data)
            except OSError:
                data = b""
                break
            data = data[n:]
    if buf and not NOISE.match(buf):
        with contextlib.suppress(OSError):
            os.write(out_fd, buf)
    os.close(read_fd)


@contextlib.contextmanager
def native_log_filter(enabled: bool | None = None) -> Iterator[None]:
    """Drop native libraries' log lines from descriptor 2 inside the block (see the module docstring).

    ``enabled`` defaults to ``not wanted()``. Nested uses share one filter. Where descriptor 2 cannot be
    redirected (no ``os.pipe``/``dup2``), the block runs unfiltered.
    """
    global _depth
    if enabled is None:
        enabled = not wanted()
    if not enabled:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
                r, w = os.pipe()
                os.dup2(w, 2)
                os.close(w)
                t = threading.Thread(target=_pump, args=(r, saved), name="affectflow-native-log-filter", daemon=True)
                t.start()
                _state.update(saved=saved, thread=t)
            except OSError:
                _state.clear()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _state:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(_state["saved"], 2)  # closes the pipe's last write end held here: the pump sees EOF
                _state["thread"].join(timeout=2.0)
                if not _state["thread"].is_alive():  # else a worker still holds the pipe: the pump keeps the fd
                    with contextlib.suppress(OSError):
                        os.close(_state["saved"])
                _state.clear()
