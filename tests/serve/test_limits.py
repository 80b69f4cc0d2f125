"""Service mechanics that do not depend on the model: uploads, limits, the job queue, timeouts, errors.

These use a stand-in :class:`ServedModel` whose prediction is a known function of the upload (and can be made to
block), so that queueing and time limits can be tested exactly; the model path is tested in test_service.py.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from affectflow.errors import ConfigError
from affectflow.serve import ServeSettings, create_app
from affectflow.serve.jobs import JobManager
from affectflow.serve.model import MediaError, ServedModel
from affectflow.serve.uploads import UploadError, display_name, media_extension


class KnownModel(ServedModel):
    """Predicts ``valence = time / 10`` and ``arousal = -time / 10`` for ``n`` steps at 2 Hz, where ``n`` is the
    upload's size in bytes; a file starting with ``BAD`` is bad media; ``gate`` (an Event) can hold predictions."""

    def __init__(self) -> None:  # no run directory: the model's own path is tested elsewhere
        self.name = "known"
        self.targets = ["valence", "arousal"]
        self.label_rate_hz = 2.0
        self.gate = threading.Event()
        self.gate.set()
        self.seen_paths: list = []

    def metadata(self):
        return {"name": self.name, "targets": self.targets, "label_rate_hz": 2.0, "feature_sets": ["x"],
                "causal": True, "stream_inputs": [], "stream_refusal": "no"}

    def probe(self, path, limit_s=None):
        data = path.read_bytes()
        if data.startswith(b"BAD"):
            raise MediaError("not media")
        return len(data) / 2.0

    def predict_file(self, path, *, progress=None, workdir=None):
        self.seen_paths.append(path)
        n = path.stat().st_size
        for k in range(20):
            if progress:
                progress(k / 20, "waiting")
            if self.gate.wait(0.05):
                break
        while not self.gate.is_set():
            if progress:
                progress(0.5, "held")
            time.sleep(0.02)
        t = np.arange(n) / 2.0
        return pd.DataFrame({"time": t, "valence": t / 10, "arousal": -t / 10})


def client(model=None, **settings):
    """The app around ``model`` (predictions in threads: the stand-in's gate is not picklable)."""
    settings.setdefault("isolate_jobs", False)
    return TestClient(create_app(model or KnownModel(), ServeSettings(**settings)), base_url="http://localhost")


def test_display_name_and_extension_never_carry_a_path():
    assert display_name("../../etc/passwd.wav") == "passwd.wav"
    assert display_name("C:\\Users\\x\\clip.WAV") == "clip.WAV"
    assert display_name("a/b/\x00evil;rm -rf.mp3") == "_evil_rm -rf.mp3"
    assert display_name("") == "upload" and display_name("..") == "upload"
    assert media_extension("dir/clip.WAV") == ".wav"
    with pytest.raises(UploadError) as e:
        media_extension("notes.txt")
    assert e.value.status == 415 and ".txt" in e.value.message
    with pytest.raises(UploadError) as e:
        media_extension("noext")
    assert e.value.status == 415 and "no extension" in e.value.message


def test_settings_validate_and_parse_overrides():
    s = ServeSettings.from_overrides(["max_upload_mb=5", "max_concurrent_jobs=3"])
    assert s.max_upload_bytes == 5 * 1024 * 1024 and s.max_concurrent_jobs == 3
    with pytest.raises(ConfigError, match="max_concurrent_jobs"):
        ServeSettings(max_concurrent_jobs=0)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        ServeSettings.from_overrides(["nope=1"])
    with pytest.raises(ConfigError, match="tmp_dir"):
        ServeSettings(tmp_dir="/does/not/exist")


def test_predict_answers_known_series_as_json_and_csv():
    with client() as c:
        r = c.post("/predict", files={"file": ("clip.wav", b"x" * 6)})
        assert r.status_code == 200, r.text
        j = r.json()
        assert j["time"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
        assert j["valence"] == pytest.approx([0, 0.05, 0.1, 0.15, 0.2, 0.25])
        assert j["arousal"] == pytest.approx([-0, -0.05, -0.1, -0.15, -0.2, -0.25])
        assert j["targets"] == ["valence", "arousal"] and j["n_steps"] == 6 and j["name"] == "clip.wav"
        r = c.post("/predict?format=csv", files={"file": ("clip.wav", b"x" * 3)})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.text.splitlines() == ["time,valence,arousal", "0,0,-0", "0.5,0.05,-0.05", "1,0.1,-0.1"]
        assert 'filename="clip-prediction.csv"' in r.headers["content-disposition"]
        # the raw body with ?filename= is the same upload
        r = c.post("/predict?filename=raw.flac", content=b"y" * 4)
        assert r.status_code == 200 and r.json()["n_steps"] == 4 and r.json()["name"] == "raw.flac"


def test_uploads_get_server_names_in_a_private_folder_and_are_removed():
    model = KnownModel()
    with client(model) as c:
        store = c.app.state.service.store
        assert oct(store.root.stat().st_mode & 0o777) == "0o700"
        r = c.post("/predict", files={"file": ("../../../../tmp/evil.wav", b"x" * 2)})
        assert r.status_code == 200 and r.json()["name"] == "evil.wav"
        (p,) = model.seen_paths
        assert p.parent == store.root and p.suffix == ".wav" and len(p.stem) == 32 and "evil" not in p.name
        assert list(store.root.iterdir()) == []  # removed after the job
        root = store.root
    assert not root.exists()  # the folder goes with the app


@pytest.mark.parametrize("files, query, status, words", [
    ({"file": ("notes.txt", b"hello")}, "", 415, "extension '.txt'"),
    ({"file": ("clip.wav", b"")}, "", 400, "empty"),
    ({"file": ("clip.wav", b"BAD bytes")}, "", 422, "not media"),
    ({"other": ("clip.wav", b"xx")}, "", 400, "field 'file'"),
    ({"note": (None, "hi")}, "", 400, "has no file"),
    (None, "?filename=x.exe", 415, "'.exe'"),
    ({"file": ("clip.wav", b"x")}, "&format=xml", 400, "format='xml'"),
])
def test_bad_uploads_are_4xx_with_one_clear_json_message(files, query, status, words):
    with client() as c:
        if files is None:
            r = c.post("/predict" + query, content=b"MZ...")
        else:
            r = c.post("/predict" + ("?x=1" + query if query else ""), files=files)
        assert r.status_code == status, r.text
        body = r.json()
        assert words in body["detail"] and "Traceback" not in r.text
        assert list(c.app.state.service.store.root.iterdir()) == []


def test_oversized_uploads_are_refused_declared_or_streamed():
    with client(max_upload_mb=0.001) as c:  # 1048 bytes
        r = c.post("/predict", files={"file": ("big.wav", b"x" * 5000)})
        assert r.status_code == 413 and "limit of 0.001 MiB" in r.json()["detail"]

        def chunks():  # no Content-Length: counted while it streams
            for _ in range(10):
                yield b"x" * 500

        r = c.post("/predict?filename=big.wav", content=chunks())
        assert r.status_code == 413, r.text
        assert list(c.app.state.service.store.root.iterdir()) == []
        assert c.post("/predict", files={"file": ("ok.wav", b"x" * 100)}).status_code == 200


def test_slow_uploads_time_out_with_408():
    import httpx

    from tests.serve.browser import running_server

    def slow():  # a real server: TestClient would read the whole body before the app sees it
        for _ in range(8):
            time.sleep(0.15)
            yield b"x" * 10

    app = create_app(KnownModel(), ServeSettings(upload_timeout_s=0.4, isolate_jobs=False))
    with running_server(app) as url:
        r = httpx.post(url + "/predict?filename=slow.wav", content=slow(), timeout=10)
        assert r.status_code == 408 and "within the service's limit of 0.4 s" in r.json()["detail"]
        assert list(app.state.service.store.root.iterdir()) == []
        assert httpx.post(url + "/predict?filename=fast.wav", content=b"x" * 4, timeout=10).status_code == 200


def test_long_media_become_jobs_and_too_long_media_are_refused():
    with client(sync_max_duration_s=2.0, max_duration_s=10.0) as c:
        r = c.post("/predict", files={"file": ("long.wav", b"x" * 6)})  # 3 s > 2 s: a job at once
        assert r.status_code == 202 and r.headers["location"] == f"/jobs/{r.json()['id']}"
        job = _wait(c, r.json()["id"])
        assert job["status"] == "done" and job["result"]["n_steps"] == 6 and job["progress"] == 1.0
        r = c.post("/predict", files={"file": ("huge.wav", b"x" * 30)})  # 15 s > 10 s
        assert r.status_code == 413 and "up to 10 s" in r.json()["detail"]


def test_request_timeout_hands_over_to_the_job_and_progress_is_polled():
    model = KnownModel()
    model.gate.clear()
    with client(model, request_timeout_s=0.3) as c:
        r = c.post("/predict", files={"file": ("slow.wav", b"x" * 4)})
        assert r.status_code == 202, r.text
        jid = r.json()["id"]
        j = c.get(f"/jobs/{jid}").json()
        assert j["status"] == "running" and 0 < j["progress"] < 1 and j["message"] in ("waiting", "held")
        assert c.get(f"/jobs/{jid}/result").status_code == 409
        model.gate.set()
        assert _wait(c, jid)["status"] == "done"
        r = c.get(f"/jobs/{jid}/result?format=csv")
        assert r.status_code == 200 and r.text.count("\n") == 5


def test_concurrency_and_queue_limits_give_503_then_recover():
    model = KnownModel()
    model.gate.clear()
    with client(model, max_concurrent_jobs=1, max_queued_jobs=1) as c:
        a = c.post("/jobs", files={"file": ("a.wav", b"x" * 2)}).json()
        b = c.post("/jobs", files={"file": ("b.wav", b"x" * 2)}).json()
        _until(lambda: c.get(f"/jobs/{a['id']}").json()["status"] == "running")
        assert c.get(f"/jobs/{b['id']}").json()["status"] == "queued"
        r = c.post("/jobs", files={"file": ("c.wav", b"x" * 2)})
        assert r.status_code == 503 and r.headers["retry-after"] == "5" and "busy" in r.json()["detail"]
        assert c.get("/health").json()["jobs"] == {"running": 1, "queued": 1}
        model.gate.set()
        assert _wait(c, a["id"])["status"] == "done" and _wait(c, b["id"])["status"] == "done"
        assert c.post("/jobs", files={"file": ("c.wav", b"x" * 2)}).status_code == 202


def test_jobs_can_be_cancelled_time_out_and_expire():
    model = KnownModel()
    model.gate.clear()
    with client(model, job_timeout_s=0.4, job_ttl_s=0.5) as c:
        j = c.post("/jobs", files={"file": ("a.wav", b"x" * 2)}).json()
        done = _wait(c, j["id"])
        assert done["status"] == "cancelled" and "limit of 0.4 s" in done["error"]
        r = c.get(f"/jobs/{j['id']}/result")
        assert r.status_code == 409 and r.json()["error"] == "cancelled"
        time.sleep(0.6)
        r = c.get(f"/jobs/{j['id']}")
        assert r.status_code == 404 and "expired" in r.json()["detail"]
    model.gate.clear()
    with client(model) as c:
        j = c.post("/jobs", files={"file": ("a.wav", b"x" * 2)}).json()
        assert c.delete(f"/jobs/{j['id']}").status_code == 200
        done = _wait(c, j["id"])
        assert done["status"] == "cancelled" and "cancelled by the client" in done["error"]
        assert c.get("/jobs/nope").status_code == 404


def test_internal_errors_are_500_without_a_traceback():
    class Broken(KnownModel):
        def predict_file(self, path, *, progress=None, workdir=None):
            raise RuntimeError("secret internal detail")

    with client(Broken()) as c:
        r = c.post("/predict", files={"file": ("a.wav", b"xx")})
        assert r.status_code == 500
        assert "internal error" in r.json()["detail"] and "secret" not in r.text and "Traceback" not in r.text


def test_page_and_static_files_are_served_from_the_package():
    with client() as c:
        r = c.get("/")
        assert r.status_code == 200 and "/static/vendor/chart.umd.min.js" in r.text and "/static/app.js" in r.text
        js = c.get("/static/vendor/chart.umd.min.js")
        assert js.status_code == 200 and "Chart.js v4.6.1" in js.text[:200]
        assert c.get("/static/app.js").status_code == 200
        assert c.get("/static/../settings.py").status_code == 404
        h = c.get("/health").json()
        assert h["status"] == "ok" and h["limits"]["max_concurrent_jobs"] == 2 and "tmp_dir" not in h["limits"]


def test_job_manager_runs_at_most_max_concurrent():
    jm = JobManager(2, 10, 60, 60)
    running, peak, lock = [0], [0], threading.Lock()

    def fn(job):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return 1

    jobs = [jm.submit(str(i), fn) for i in range(6)]
    for j in jobs:
        j.future.result(5)
    assert peak[0] == 2 and all(j.status == "done" for j in jobs)
    jm.shutdown()


def _until(cond, timeout=10.0):
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.02)


def _wait(c, jid, timeout=10.0):
    out = {}

    def done():
        out.update(c.get(f"/jobs/{jid}").json())
        return out["status"] in ("done", "failed", "cancelled")

    _until(done, timeout)
    return out
