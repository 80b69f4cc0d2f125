"""Two job lanes: background jobs (``POST /jobs``, long media) never take an interactive prediction's turn, and
their worker processes run at a lower CPU priority."""

from __future__ import annotations

import os
import threading

import pytest

from affectflow.errors import ConfigError
from affectflow.serve import ServeSettings
from affectflow.serve.isolation import run_isolated, shutdown
from affectflow.serve.jobs import JobManager, QueueFull
from tests.serve.test_limits import KnownModel, _until, _wait, client


class HoldModel(KnownModel):
    """As :class:`KnownModel`, but only uploads starting with ``HOLD`` wait for ``gate``."""

    def predict_file(self, path, *, progress=None, workdir=None):
        if path.read_bytes().startswith(b"HOLD"):
            return super().predict_file(path, progress=progress, workdir=workdir)
        gate, self.gate = self.gate, threading.Event()
        self.gate.set()
        try:
            return super().predict_file(path, progress=progress, workdir=workdir)
        finally:
            self.gate = gate


class Niceness:
    """A picklable stand-in model whose 'prediction' is the worker process's CPU priority offset."""

    def predict_file(self, path, *, progress=None, workdir=None):
        return os.nice(0)


def test_a_running_background_job_does_not_delay_an_interactive_prediction():
    model = HoldModel()
    model.gate.clear()
    with client(model, max_concurrent_jobs=1, max_background_jobs=1, max_queued_jobs=1,
                sync_max_duration_s=3.0) as c:
        held = c.post("/jobs", files={"file": ("long.wav", b"HOLD")}).json()
        _until(lambda: c.get(f"/jobs/{held['id']}").json()["status"] == "running")
        assert c.get(f"/jobs/{held['id']}").json()["lane"] == "background"
        # the only interactive worker is free: a short prediction answers at once
        r = c.post("/predict", files={"file": ("short.wav", b"xxxx")})
        assert r.status_code == 200 and r.json()["n_steps"] == 4
        # long media go to the background lane, whose worker is busy: queued there, then its queue is full
        r = c.post("/predict", files={"file": ("long2.wav", b"x" * 8)})  # 4 s > 3 s
        assert r.status_code == 202
        queued = r.json()["id"]
        assert c.get(f"/jobs/{queued}").json()["status"] == "queued"
        r = c.post("/jobs", files={"file": ("c.wav", b"xx")})
        assert r.status_code == 503 and "background jobs" in r.json()["detail"]
        assert c.post("/predict", files={"file": ("short2.wav", b"xx")}).status_code == 200
        model.gate.set()
        assert _wait(c, held["id"])["status"] == "done" and _wait(c, queued)["status"] == "done"


def test_job_manager_lanes_have_separate_limits():
    jm = JobManager(1, 0, 60, 60, max_background=1)
    hold = threading.Event()
    a = jm.submit("a", lambda job: hold.wait(5), background=True)
    _until(lambda: a.status == "running")
    b = jm.submit("b", lambda job: 1)  # interactive lane: not blocked by a
    assert b.future.result(5) is None and b.status == "done"
    with pytest.raises(QueueFull, match="background jobs"):
        jm.submit("c", lambda job: 1, background=True)
    hold.set()
    a.future.result(5)
    jm.shutdown()


def test_background_workers_run_at_the_lower_priority(tmp_path):
    f = tmp_path / "x.wav"
    f.write_bytes(b"x")
    base = os.nice(0)
    try:
        assert run_isolated(Niceness(), f, nice=0) == base
        assert run_isolated(Niceness(), f, nice=7) == min(base + 7, 19)
        assert run_isolated(Niceness(), f, nice=0) == base  # workers are kept per priority, never mixed
    finally:
        shutdown()


@pytest.mark.parametrize("value", [-1, 20, 1.5, True])
def test_background_nice_is_checked(value):
    with pytest.raises(ConfigError, match="background_nice"):
        ServeSettings(background_nice=value)
