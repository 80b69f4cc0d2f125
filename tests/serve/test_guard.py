"""The service's doors and brakes: allowed hosts, the browser's Origin, the bearer token, no CDN docs page,
request-header and keep-alive time limits, and predictions in child processes that cancellation and the job time
limit kill within seconds (even inside a call that never reports progress)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from affectflow.errors import ConfigError
from affectflow.serve import ServeSettings, create_app
from affectflow.serve.model import ServedModel


class SleepyModel(ServedModel):
    """A picklable stand-in whose prediction blocks in one long call without reporting progress (as a native
    extractor on hours of audio would); ``seconds == 0`` answers at once. The child writes its pid to
    ``pid_file``."""

    def __init__(self, pid_file: Path, seconds: float = 60.0) -> None:
        self.name, self.targets, self.label_rate_hz = "sleepy", ["valence"], 2.0
        self.pid_file, self.seconds = str(pid_file), seconds

    def metadata(self):
        return {"name": self.name, "targets": self.targets, "label_rate_hz": 2.0, "stream_inputs": []}

    def probe(self, path, limit_s=None):
        return 1.0

    def predict_file(self, path, *, progress=None, workdir=None):
        Path(self.pid_file).write_text(str(os.getpid()))
        if workdir is not None:
            Path(workdir).mkdir(parents=True)
            (Path(workdir) / "partial.bin").write_bytes(b"x")
        time.sleep(self.seconds)
        return pd.DataFrame({"time": [0.0, 0.5], "valence": [0.1, 0.2]})


def _client(model, base="http://localhost", **settings):
    return TestClient(create_app(model, ServeSettings(**settings)), base_url=base)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def _gone_within(pid: int, timeout: float) -> bool:
    """Whether ``pid`` has exited within ``timeout`` s (a killed child is reaped in the background, so its exit is
    not synchronous with the job's status; under load it can take a moment)."""
    t0 = time.time()
    while _alive(pid):
        if time.time() - t0 > timeout:
            return False
        time.sleep(0.05)
    return True


def _wait_status(c, jid, statuses, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        j = c.get(f"/jobs/{jid}").json()
        if j["status"] in statuses:
            return j, time.time() - t0
        time.sleep(0.05)
    raise AssertionError(f"job {jid} not in {statuses} after {timeout} s: {j}")


def test_cancel_and_time_limit_kill_a_blocked_prediction_within_seconds(tmp_path):
    from affectflow.serve.isolation import warm_up

    warm_up()  # the forkserver's imports are not part of the time limit under test
    model = SleepyModel(tmp_path / "pid")
    with _client(model, job_timeout_s=1.5) as c:
        j = c.post("/jobs", files={"file": ("long.wav", b"x" * 10)}).json()
        _wait_status(c, j["id"], {"running"}, 30)
        t0 = time.time()
        while not (tmp_path / "pid").exists():
            assert time.time() - t0 < 30
            time.sleep(0.05)
        pid = int((tmp_path / "pid").read_text())
        assert _alive(pid)
        assert c.delete(f"/jobs/{j['id']}").status_code == 200
        done, waited = _wait_status(c, j["id"], {"cancelled", "failed", "done"}, 5)
        assert done["status"] == "cancelled" and "cancelled by the client" in done["error"] and waited < 2.0
        assert _gone_within(pid, 5.0)  # the blocked call is gone, not left running in a thread
        root = c.app.state.service.store.root
        assert list(root.iterdir()) == []  # the upload and the killed child's work folder are removed
        # the time limit acts inside the same blocked call
        (tmp_path / "pid").unlink()
        j = c.post("/jobs", files={"file": ("long.wav", b"x" * 10)}).json()
        done, waited = _wait_status(c, j["id"], {"cancelled", "failed", "done"}, 10)
        assert done["status"] == "cancelled" and "limit of 1.5 s" in done["error"]
        assert _gone_within(int((tmp_path / "pid").read_text()), 5.0)


def test_isolated_prediction_returns_the_child_result(tmp_path):
    with _client(SleepyModel(tmp_path / "pid", seconds=0.0)) as c:
        r = c.post("/predict", files={"file": ("a.wav", b"x" * 4)})
        assert r.status_code == 200, r.text
        assert r.json()["valence"] == pytest.approx([0.1, 0.2])
        first = int((tmp_path / "pid").read_text())
        assert first != os.getpid()
        assert c.post("/predict", files={"file": ("b.wav", b"x" * 4)}).status_code == 200
        assert int((tmp_path / "pid").read_text()) == first  # a warm worker serves the next job


def test_host_origin_and_docs(tmp_path):
    model = SleepyModel(tmp_path / "pid", seconds=0.0)
    with _client(model, base="http://evil.example:8000") as c:  # DNS rebinding: a foreign name, our address
        r = c.get("/health")
        assert r.status_code == 400 and r.json()["error"] == "bad_host" and "allowed_hosts" in r.json()["detail"]
        with pytest.raises(WebSocketDisconnect):
            with c.websocket_connect("ws://evil.example:8000/stream") as ws:
                ws.receive_json()
    with _client(model) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/health", headers={"Origin": "http://localhost"}).status_code == 200  # our own page
        for origin in ("http://evil.example", "null", "http://localhost.evil.example"):
            r = c.get("/health", headers={"Origin": origin})
            assert r.status_code == 403 and r.json()["error"] == "bad_origin", origin
        r = c.post("/jobs", files={"file": ("a.wav", b"xx")}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and list(c.app.state.service.store.root.iterdir()) == []
        with pytest.raises(WebSocketDisconnect):
            with c.websocket_connect("ws://localhost/stream", headers={"Origin": "http://evil.example"}) as ws:
                ws.receive_json()
        assert c.get("/docs").status_code == 404  # no Swagger UI fetched from a CDN
        assert c.get("/openapi.json").status_code == 200
    with _client(model, allowed_origins=["https://app.example.org"]) as c:
        assert c.get("/health", headers={"Origin": "https://app.example.org"}).status_code == 200
    with _client(model, base="http://myhost.lan", allowed_hosts=["myhost.lan"]) as c:
        assert c.get("/health").status_code == 200


def test_token_is_required_everywhere_but_the_page(tmp_path):
    tok = "s3cret-token-0123456789"
    f = tmp_path / "token"
    f.write_text(tok + "\n")
    model = SleepyModel(tmp_path / "pid", seconds=0.0)
    with _client(model, token_file=str(f)) as c:
        for path in ("/health", "/info", "/jobs/x", "/openapi.json"):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
        assert c.get("/health", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        assert c.get("/health", headers={"Authorization": f"Bearer {tok}"}).json()["limits"]["token_required"]
        r = c.post("/predict", files={"file": ("a.wav", b"xx")})
        assert r.status_code == 401 and list(c.app.state.service.store.root.iterdir()) == []
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        assert "Authorization" in c.get("/static/app.js").text  # the page sends the token
        with pytest.raises(WebSocketDisconnect):
            with c.websocket_connect("ws://localhost/stream") as ws:
                ws.receive_json()
        with c.websocket_connect(f"ws://localhost/stream?token={tok}") as ws:
            ws.send_json({"type": "start", "input": "audio", "sample_rate": 16000})
            assert ws.receive_json()["type"] == "error"  # in: the model itself cannot stream
    f.write_text("short")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        ServeSettings(token_file=str(f))
    with pytest.raises(ConfigError, match="cannot be read"):
        ServeSettings(token_file=str(tmp_path / "missing"))


def test_serve_cli_refuses_a_public_address_without_a_token(capsys):
    from affectflow.cli.main import main
    from affectflow.cli.serve import is_loopback

    assert main(["serve", "no-such-run", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--token-file" in err and "Traceback" not in err
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")


@pytest.mark.parametrize("key, value", [("header_timeout_s", float("nan")), ("keep_alive_timeout_s", 0),
                                        ("job_timeout_s", float("inf")), ("allowed_hosts", [""]),
                                        ("allowed_origins", ["evil.example"]), ("isolate_jobs", "maybe")])
def test_new_settings_are_checked(key, value):
    with pytest.raises(ConfigError, match=key):
        ServeSettings(**{key: value})


def test_slow_request_headers_are_cut_off(tmp_path):
    """A client that trickles its headers is disconnected after header_timeout_s; normal requests still work."""
    import threading

    import httpx
    import uvicorn

    from affectflow.serve.server import uvicorn_config
    from tests.serve.browser import free_port

    settings = ServeSettings(header_timeout_s=0.6, keep_alive_timeout_s=1, isolate_jobs=False)
    app = create_app(SleepyModel(tmp_path / "pid", seconds=0.0), settings)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, settings=settings, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    t0 = time.time()
    while not server.started:
        assert time.time() - t0 < 20
        time.sleep(0.02)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(5)
        t0 = time.time()
        closed_after = None
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
            for _ in range(40):  # one header byte every 0.1 s: never complete
                s.sendall(b"X")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.time() - t0
        if closed_after is None:
            assert s.recv(100) == b""
            closed_after = time.time() - t0
        assert closed_after < 2.0
        s.close()
        # an idle connection without a byte is closed too
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(5)
        t0 = time.time()
        assert s.recv(100) == b"" and time.time() - t0 < 2.0
        s.close()
        r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert r.status_code == 200
    finally:
        server.should_exit = True
        th.join(10)
