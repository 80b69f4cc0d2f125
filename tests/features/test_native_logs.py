"""Native libraries' start-up lines (MediaPipe, TensorFlow Lite, absl) are dropped during extraction unless asked
for (`affectflow -v` / AFFECTFLOW_NATIVE_LOGS=1); every other line on stderr passes unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
NOISE = [
    "WARNING: Logging before InitGoogle() is written to STDERR",
    "W0000 00:00:1796525406.134394   17262 face_landmarker_graph.cc:181] Sets FaceBlendshapesGraph acceleration",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "I1206 02:51:40.123456   17266 inference_feedback_manager.cc:121] Feedback manager requires a model",
]
KEEP = ["E1206 02:51:40.123456   17266 model.cc:1] a native error stays", "Traceback-like text stays",
        "extract: 50%|#####     | 1/2 [00:01<00:01]"]


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("AFFECTFLOW_NATIVE_LOGS", None)
    env.update(extra)
    return env


def test_filter_drops_only_native_noise_written_to_fd_2():
    lines = NOISE + KEEP
    code = ("import os, sys\nfrom affectflow.nativelogs import native_log_filter\n"
            "with native_log_filter():\n"
            f"    for line in {lines!r}:\n"
            "        os.write(2, (line + '\\n').encode())\n"
            "    print('python stderr', file=sys.stderr)\n"
            "os.write(2, b'I0000 00:00:1.0 1 x.cc:1] after the block\\n')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    for line in NOISE:
        assert line not in out.stderr
    for line in KEEP + ["python stderr", "after the block"]:
        assert line in out.stderr
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env=_env(AFFECTFLOW_NATIVE_LOGS="1"))
    for line in NOISE + KEEP:
        assert line in shown.stderr


def test_face_extraction_is_quiet_unless_asked(tmp_path):
    """One process: extraction with the default (quiet), a marker, then the same with AFFECTFLOW_NATIVE_LOGS=1."""
    pytest.importorskip("mediapipe")
    from tests.features.test_face import write_video

    media = tmp_path / "media"
    media.mkdir()
    write_video(media / "astro.mp4", n=25)
    code = f"""
import os
from affectflow.corpus.media import import_media
from affectflow.features.pipeline import extract
import_media({str(media)!r}, {str(tmp_path / "c")!r})
extract({str(tmp_path / "c")!r}, {{"features": {{"a": {{"type": "face_landmarks"}}}}}}, progress=False, report=False)
os.write(2, b"--marker--\\n")
os.environ["AFFECTFLOW_NATIVE_LOGS"] = "1"
extract({str(tmp_path / "c")!r}, {{"features": {{"b": {{"type": "face_landmarks", "rate_hz": 4.0}}}}}}, progress=False,
        report=False)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    quiet, _, loud = r.stderr.partition("--marker--")
    assert loud, r.stderr
    assert "XNNPACK" not in quiet and "InitGoogle" not in quiet and ".cc:" not in quiet, quiet
    assert "face_landmarker_graph.cc" in loud, loud  # (the XNNPACK line is printed once per process)
