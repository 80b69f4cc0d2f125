"""The service around a real trained run: metadata, prediction of uploaded speech (JSON, CSV, jobs) equal to
``predict_media``, bad media, and the WebSocket stream equal to the causal model stepped directly."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from affectflow.serve import ServeSettings, create_app


@pytest.fixture(scope="module")
def reference(speech_run, speech_clip):
    """``predict_media`` on the clip, called directly: the answer the service must give."""
    from affectflow.inference.media import predict_media

    return predict_media(speech_run, {"audio": speech_clip}, device="cpu")


@pytest.fixture()
def client(served):
    with TestClient(create_app(served, ServeSettings()), base_url="http://localhost") as c:
        yield c


def test_health_and_run_metadata(client, speech_run):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["run"] == speech_run.name and h["streams"] == 0
    info = client.get("/info").json()
    assert info["targets"] == ["arousal", "valence"] and info["label_rate_hz"] == 2.0
    assert info["feature_sets"] == ["egemaps"] and len(info["feature_set_details"]["egemaps"]["columns"]) == 88
    assert info["causal"] is True and info["media_supported"] is True and info["file_kinds"] == ["audio"]
    assert "features" in info["stream_inputs"] and ".wav" in info["extensions"]


def test_predict_equals_predict_media_as_json_and_csv(client, speech_clip, reference):
    data = speech_clip.read_bytes()
    r = client.post("/predict", files={"file": ("speech.wav", data, "audio/wav")})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["n_steps"] == len(reference) == 24 and j["targets"] == ["arousal", "valence"]
    np.testing.assert_allclose(j["time"], reference["time"], atol=0)
    for t in ("arousal", "valence"):
        np.testing.assert_allclose(j[t], reference[t], atol=1e-6)
    r = client.post("/predict?format=csv", files={"file": ("speech.wav", data)})
    df = pd.read_csv(io.StringIO(r.text))
    assert list(df.columns) == ["time", "arousal", "valence"]
    np.testing.assert_allclose(df[["arousal", "valence"]].to_numpy(), reference[["arousal", "valence"]].to_numpy(),
                               atol=1e-5)


def test_job_reports_progress_and_gives_the_same_result(client, speech_clip, reference):
    r = client.post("/jobs", files={"file": ("speech.wav", speech_clip.read_bytes())})
    assert r.status_code == 202
    jid = r.json()["id"]
    seen = []
    for _ in range(500):
        j = client.get(f"/jobs/{jid}").json()
        seen.append((j["status"], j["progress"]))
        if j["status"] in ("done", "failed"):
            break
        import time

        time.sleep(0.01)
    assert j["status"] == "done" and j["progress"] == 1.0 and j["message"] == "done", j
    progress = [p for _, p in seen]
    assert progress == sorted(progress)  # never goes back
    np.testing.assert_allclose(j["result"]["valence"], reference["valence"], atol=1e-6)
    assert client.get(f"/jobs/{jid}/result").json() == j["result"]


@pytest.mark.parametrize("name, data, status, words", [
    ("garbage.wav", b"\x00\x01garbage" * 100, 422, "garbage.wav"),
    ("garbage.mp3", bytes(range(256)) * 40, 422, "garbage.mp3"),
    ("empty.wav", b"", 400, "empty"),
    ("speech.txt", b"RIFF....WAVE", 415, "'.txt'"),
])
def test_bad_media_get_a_clear_4xx(client, name, data, status, words):
    r = client.post("/predict", files={"file": (name, data)})
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert words in detail and "Traceback" not in r.text
    store = client.app.state.service.store
    assert str(store.root) not in detail and "/tmp" not in detail  # no server path leaks
    assert list(store.root.iterdir()) == []


def test_wrong_extension_content_still_probed(client, speech_clip):
    # a wav file named .mp3 is decoded by content (FFmpeg), a text file named .wav is refused
    r = client.post("/predict", files={"file": ("speech.mp3", speech_clip.read_bytes())})
    assert r.status_code == 200 and r.json()["n_steps"] == 24
    r = client.post("/predict", files={"file": ("notes.wav", b"just some text, not audio\n" * 50)})
    assert r.status_code == 422 and "notes.wav" in r.json()["detail"]


def test_video_without_sound_is_refused_for_an_audio_run(client, tmp_path):
    from affectflow.synthetic.media import generate_media_corpus

    c = generate_media_corpus(tmp_path / "v", n_subjects=1, duration_s=3.0, seed=1, audio=False, physio=False,
                              transcript=False, video_size=32)
    mp4 = next((c.path / "media").glob("*.mp4"))
    r = client.post("/predict", files={"file": ("face.mp4", mp4.read_bytes())})
    assert r.status_code == 422 and "no audio stream" in r.json()["detail"], r.text


def test_feature_stream_equals_the_causal_model_stepped_directly(client, speech_run):
    from affectflow.streaming import Streamer

    ref = Streamer(speech_run)
    rng = np.random.default_rng(0)
    frames = []
    for k in range(6):
        v = rng.normal(size=88) * 3
        if k == 2:
            v[:10] = np.nan
        frames.append(None if k == 4 else v)
    expected = [ref.step({"egemaps": f}) for f in frames]
    with client.websocket_connect("ws://localhost/stream") as ws:
        ws.send_text(json.dumps({"type": "start", "input": "features"}))
        ready = json.loads(ws.receive_text())
        assert ready["type"] == "ready" and ready["feature_sets"] == {"egemaps": 88}
        got = []
        for f in frames:
            vals = None if f is None else [None if np.isnan(x) else float(x) for x in f]
            ws.send_text(json.dumps({"type": "frame", "features": {"egemaps": vals}}))
            got.append(json.loads(ws.receive_text()))
        ws.send_text(json.dumps({"type": "end"}))
        assert json.loads(ws.receive_text()) == {"type": "end", "steps": 6}
    assert [g["step"] for g in got] == list(range(6)) and [g["time"] for g in got] == [0, 0.5, 1, 1.5, 2, 2.5]
    for g, e in zip(got, expected):
        assert g["type"] == "prediction"
        assert g["arousal"] == pytest.approx(e["arousal"], abs=1e-6)
        assert g["valence"] == pytest.approx(e["valence"], abs=1e-6)


@pytest.mark.parametrize("first, then, code, words", [
    ("not json", None, 1003, "not valid JSON"),
    (json.dumps({"type": "frame"}), None, 1008, "type 'start'"),
    (json.dumps({"type": "start", "input": "video"}), None, 1008, "'audio' or 'features'"),
    (json.dumps({"type": "start", "input": "features"}), json.dumps({"type": "frame", "features": {"egemaps": [1, 2]}}),
     1003, "88"),
    (json.dumps({"type": "start", "input": "features"}), json.dumps({"type": "frame", "features": {"face": [1]}}),
     1003, "Unknown feature sets"),
    (json.dumps({"type": "start", "input": "features"}), b"\x00\x00\x80\x3f", 1003, "Binary messages are audio"),
])
def test_stream_protocol_errors_close_with_a_message(client, first, then, code, words):
    with client.websocket_connect("ws://localhost/stream") as ws:
        ws.send_text(first)
        if then is not None:
            assert json.loads(ws.receive_text())["type"] == "ready"
            ws.send_bytes(then) if isinstance(then, bytes) else ws.send_text(then)
        err = json.loads(ws.receive_text())
        assert err["type"] == "error" and words in err["detail"], err
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_text()
        assert e.value.code == code
    assert client.get("/health").json()["streams"] == 0


def test_stream_limit_refuses_one_more(served):
    with TestClient(create_app(served, ServeSettings(max_streams=1)), base_url="http://localhost") as c:
        with c.websocket_connect("ws://localhost/stream") as ws1:
            ws1.send_text(json.dumps({"type": "start", "input": "features"}))
            assert json.loads(ws1.receive_text())["type"] == "ready"
            with c.websocket_connect("ws://localhost/stream") as ws2:
                err = json.loads(ws2.receive_text())
                assert "1 open streams" in err["detail"]
                with pytest.raises(WebSocketDisconnect) as e:
                    ws2.receive_text()
                assert e.value.code == 1013


def test_cli_serve_runs_the_app_and_refuses_a_bad_run(speech_run, tmp_path, capsys):
    import os
    import subprocess
    import sys
    import time

    import httpx

    from affectflow.cli.main import main
    from tests.serve.browser import free_port

    assert main(["serve", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "not an affectflow run directory" in err and "Traceback" not in err
    assert main(["serve", str(speech_run), "--set", "max_upload_mb=0"]) == 2
    assert "max_upload_mb must be a positive number" in capsys.readouterr().err

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(__import__("affectflow").__path__[0].rsplit("/", 1)[0]),
                                                       os.environ.get("PYTHONPATH", "")])}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "affectflow.cli.main", "serve", str(speech_run), "--port", str(port),
                             "-q", "--set", "max_concurrent_jobs=3", "--set", f"tmp_dir={tmp_path}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        t0 = time.time()
        while True:
            try:
                h = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.time() - t0 < 60, proc.stdout.read() if proc.poll() is not None else ""
                time.sleep(0.2)
        assert h["status"] == "ok" and h["limits"]["max_concurrent_jobs"] == 3
        assert [p.name[:17] for p in tmp_path.iterdir()] == ["affectflow-serve-"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully (lifespan end), then re-raises the SIGTERM it caught
    assert proc.returncode in (0, -15), out
    assert f"on http://127.0.0.1:{port}/" in out
    assert list(tmp_path.iterdir()) == []  # the private upload folder is removed on shutdown


def _needs_audio_streaming():
    try:
        from affectflow.streaming import AudioStreamPredictor  # noqa: F401
    except ImportError:
        pytest.skip("affectflow.streaming.AudioStreamPredictor is not available")


@pytest.mark.parametrize("encoding", ["s16le", "f32le"])
def test_audio_stream_gives_the_offline_answer_step_by_step(client, speech_clip, reference, encoding):
    _needs_audio_streaming()
    import soundfile as sf

    pcm, sr = sf.read(speech_clip, dtype="int16")
    assert sr == 16000
    data = pcm.astype("<i2").tobytes() if encoding == "s16le" else (pcm / 32768.0).astype("<f4").tobytes()
    width = 2 if encoding == "s16le" else 4
    chunk = int(0.3 * sr) * width  # 0.3 s per message
    got, before_end = [], 0
    with client.websocket_connect("ws://localhost/stream") as ws:
        ws.send_text(json.dumps({"type": "start", "input": "audio", "sample_rate": sr, "encoding": encoding}))
        ready = json.loads(ws.receive_text())
        assert ready["type"] == "ready" and ready["targets"] == ["arousal", "valence"] and ready["sample_rate"] == sr
        for i in range(0, len(data), chunk):
            ws.send_bytes(data[i:i + chunk])
        ws.send_text(json.dumps({"type": "end"}))
        while True:
            m = json.loads(ws.receive_text())
            if m["type"] == "end":
                break
            assert m["type"] == "prediction", m
            got.append(m)
        assert m["steps"] == len(got)
    assert [g["step"] for g in got] == list(range(len(reference)))
    np.testing.assert_allclose([g["time"] for g in got], reference["time"])
    for t in ("arousal", "valence"):
        np.testing.assert_allclose([g[t] for g in got], reference[t], atol=1e-4)


def test_audio_stream_refuses_bad_pcm_and_rates(client):
    _needs_audio_streaming()
    with client.websocket_connect("ws://localhost/stream") as ws:
        ws.send_text(json.dumps({"type": "start", "input": "audio", "sample_rate": 16000, "encoding": "f32le"}))
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_bytes(b"\x00\x00\x00")
        err = json.loads(ws.receive_text())
        assert "whole number of 4-byte samples" in err["detail"]
    with client.websocket_connect("ws://localhost/stream") as ws:
        ws.send_text(json.dumps({"type": "start", "input": "audio", "sample_rate": 12}))
        err = json.loads(ws.receive_text())
        assert err["type"] == "error" and "sample_rate" in err["detail"]


def test_closed_streams_leave_no_per_stream_state(served, speech_clip):
    """After streams end (normally, by a protocol error, by the client going away), the service holds nothing of
    them: no open-stream count, no session, no live predictor, no per-stream Streamer (only the template that
    feature streams clone)."""
    _needs_audio_streaming()
    import gc
    import time

    import soundfile as sf

    from affectflow.serve.model import StreamSession
    from affectflow.streaming.live import LivePredictor
    from affectflow.streaming.streamer import Streamer

    pcm, sr = sf.read(speech_clip, dtype="float32")
    data = pcm[: 3 * sr].astype("<f4").tobytes()
    chunk = int(0.5 * sr) * 4
    columns = {}

    def live() -> dict[str, int]:
        gc.collect()
        objs = [o for o in gc.get_objects() if o is not getattr(served, "_template", None)]
        kinds = [type(o) for o in objs]  # type(), not isinstance(): no lazy-module proxies touched
        return {"sessions": sum(issubclass(t, StreamSession) for t in kinds),
                "predictors": sum(issubclass(t, LivePredictor) for t in kinds),
                "streamers": sum(issubclass(t, Streamer) for t in kinds)}

    with TestClient(create_app(served, ServeSettings()), base_url="http://localhost") as c:
        svc = c.app.state.service
        for k in range(6):
            with c.websocket_connect("ws://localhost/stream") as ws:
                if k % 3 == 2:  # a feature stream, ended normally
                    ws.send_text(json.dumps({"type": "start", "input": "features"}))
                    ready = json.loads(ws.receive_text())
                    columns = ready["feature_sets"]
                    for _ in range(3):
                        ws.send_text(json.dumps({"type": "frame",
                                                 "features": {n: [0.0] * d for n, d in columns.items()}}))
                        assert json.loads(ws.receive_text())["type"] == "prediction"
                    ws.send_text(json.dumps({"type": "end"}))
                    while json.loads(ws.receive_text())["type"] != "end":
                        pass
                    continue
                ws.send_text(json.dumps({"type": "start", "input": "audio", "sample_rate": sr}))
                assert json.loads(ws.receive_text())["type"] == "ready"
                for i in range(0, len(data), chunk):
                    ws.send_bytes(data[i:i + chunk])
                if k % 3 == 0:  # ended normally
                    ws.send_text(json.dumps({"type": "end"}))
                    while json.loads(ws.receive_text())["type"] != "end":
                        pass
                else:  # a protocol error mid-stream: the server closes it
                    ws.send_bytes(b"\x00\x00\x00")
                    while json.loads(ws.receive_text())["type"] != "error":
                        pass
        # a client that goes away mid-stream without an 'end'
        with c.websocket_connect("ws://localhost/stream") as ws:
            ws.send_text(json.dumps({"type": "start", "input": "audio", "sample_rate": sr}))
            assert json.loads(ws.receive_text())["type"] == "ready"
            ws.send_bytes(data[:chunk])
        for _ in range(40):  # the server notices the disconnect asynchronously
            if svc.open_streams == 0 and live() == {"sessions": 0, "predictors": 0, "streamers": 0}:
                break
            time.sleep(0.1)
        assert svc.open_streams == 0
        assert live() == {"sessions": 0, "predictors": 0, "streamers": 0}
        assert c.get("/health").json()["streams"] == 0
