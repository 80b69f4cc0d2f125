"""The Ray executor backend on a real local Ray cluster: a sweep, a CV and an extraction equal the serial backend bit
for bit, and a worker killed mid-task is retried to the same result.

One cluster for the module (2 CPUs, private, in a loopback-only network namespace when the process may make one).
If Ray cannot start, these tests fail: they are never skipped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray  # a missing Ray is a failure, not a skip
import soundfile as sf
import torch
import yaml

import affectflow.procedures.sweep as sweep_mod
from affectflow.config import load_config
from affectflow.corpus.corpus import Corpus
from affectflow.corpus.media import import_media
from affectflow.errors import ConfigError, RunError
from affectflow.features.pipeline import extract
from affectflow.procedures.cv import run_cv
from affectflow.execution import execution_settings, get_executor
from affectflow.execution.ray_executor import TaskResources, loopback_only
from affectflow.procedures.sweep import load_cells, run_cell, run_sweep



@pytest.fixture(scope="module")
def ray_cluster():
    try:
        loopback_only()  # Ray's servers bind every interface: keep this test cluster off the network
    except RunError as e:
        warnings.warn(f"Ray test cluster runs without network isolation: {e}")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # this module's job functions travel by value
    yield
    ray.shutdown()


def _sweep_file(tmp_path, corpus, grid, name="s", seeds=(1,), epochs=2):
    doc = {
        "name": name,
        "config": {
            "data": {"corpus": str(corpus), "window": {"size": 40, "hop": 20}},
            "model": {"d_model": 8, "d_fc": 8, "dropout": 0.1},
            "training": {"epochs": epochs, "patience": 5, "seeds": list(seeds), "batch_size": 16, "device": "cpu"},
            "output": {"runs_dir": str(tmp_path / "runs"), "plots": False},
        },
        "grid": grid,
    }
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def _same_run(a: Path, b: Path) -> None:
    """Two run folders hold the same results: metrics (minus timing), checkpoint tensors and predictions."""
    ma, mb = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
    for m in (ma, mb):  # throughput figures are timings, not results
        for k in [k for k in m if k.endswith("_per_s")]:
            m.pop(k)
    assert ma == mb
    for ck in sorted((a / "checkpoints").glob("seed-*.pt")):
        ta = torch.load(ck, weights_only=True)["state_dict"]
        tb = torch.load(b / "checkpoints" / ck.name, weights_only=True)["state_dict"]
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    pa = sorted(p.relative_to(a) for p in (a / "predictions").rglob("*.csv"))
    assert pa and pa == sorted(p.relative_to(b) for p in (b / "predictions").rglob("*.csv"))
    for rel in pa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


def _cell_runs(sweep_dir: Path) -> list[Path]:
    _, cells = load_cells(sweep_dir)
    assert all(c.status == "finished" for c in cells), [c.error for c in cells]
    return [Path(c.run_dir) for c in cells]


def test_settings_and_resources():
    assert execution_settings({"backend": "ray", "address": "auto", "gpus": 0.5, "workers": 3}) == (
        "ray", 3, 1, {"address": "auto", "gpus": 0.5})
    assert execution_settings({"backend": "ray", "workers": 3}, backend="serial", workers=1, address="x")[:3] == (
        "serial", 1, 1)
    assert TaskResources(cpus=2, gpus=0.25, memory_gb=1.5, resources={"gpu_node": 1}).ray_options() == {
        "num_cpus": 2, "num_gpus": 0.25, "memory": int(1.5 * 2**30), "resources": {"gpu_node": 1}}
    with pytest.raises(ConfigError, match="Invalid Ray task resources"):
        TaskResources(gpus=-1)
    with pytest.raises(ConfigError, match="execution.backend"):
        load_config(None, ["data.corpus=x", "data.features=[a]", "execution.backend=spark"])


def test_sweep_on_ray_equals_serial(ray_cluster, tmp_path, tiny_corpus):
    grid = {"data.features": [["acoustic"], ["physio"], ["acoustic", "visual"]]}
    serial = run_sweep(_sweep_file(tmp_path, tiny_corpus.path, grid), out=tmp_path / "serial", backend="serial")
    on_ray = run_sweep(_sweep_file(tmp_path, tiny_corpus.path, grid), out=tmp_path / "ray", backend="ray",
                       workers=2)
    for a, b in zip(_cell_runs(serial), _cell_runs(on_ray)):
        _same_run(a, b)
    # the job ran in Ray worker processes, not here
    pids = {json.loads((r / "run.json").read_text())["pid"] for r in _cell_runs(on_ray)}
    assert os.getpid() not in pids


def test_cv_on_ray_equals_serial(ray_cluster, tmp_path, tiny_corpus):
    cfg = load_config(None, [f"data.corpus={tiny_corpus.path}", f"output.runs_dir={tmp_path}",
                             "data.features=[acoustic,physio]", "data.window.size=40", "data.window.hop=20",
                             "training.epochs=2", "training.seeds=[1]", "training.device=cpu", "model.d_model=8",
                             "model.d_fc=8", "output.plots=false"])
    a = run_cv(cfg, k=3, seed=0, out=tmp_path / "cv-serial", backend="serial")
    b = run_cv(cfg, k=3, seed=0, out=tmp_path / "cv-ray", backend="ray", workers=2)
    ia, ib = json.loads((a / "cv.json").read_text()), json.loads((b / "cv.json").read_text())
    assert ia["per_fold"] == ib["per_fold"] and ia["test_fold_average"] == ib["test_fold_average"]
    for fa, fb in zip(ia["folds"], ib["folds"]):
        _same_run(Path(fa["run"]), Path(fb["run"]))


def _media_corpus(root: Path) -> Corpus:
    raw = root / "raw"
    raw.mkdir(parents=True)
    sr = 16000
    for i in range(4):
        t = np.arange(int((3 + i) * sr)) / sr
        sig = 0.1 * (i + 1) * np.sin(2 * np.pi * 180 * (i + 1) * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
        sf.write(str(raw / f"rec{i}.wav"), sig, sr, subtype="PCM_16")
    rep = import_media(raw, root / "corpus")
    assert rep.ok, rep.format()
    return Corpus(root / "corpus")


def test_extraction_on_ray_equals_serial(ray_cluster, tmp_path):
    cfg = {"egemaps": {}, "logmel": {"n_mels": 16}}
    a, b = _media_corpus(tmp_path / "a"), _media_corpus(tmp_path / "b")
    sa = extract(a, cfg, progress=False, backend="serial")
    sb = extract(b, cfg, progress=False, backend="ray", workers=2)
    assert sa.ok and sb.ok and len(sb.results) == 8
    assert [(r.feature_set, r.recording, r.status) for r in sa.results] == \
        [(r.feature_set, r.recording, r.status) for r in sb.results]
    for name in cfg:
        for rid in a.recording_ids():
            pd.testing.assert_frame_equal(a.read_features(name, rid), b.read_features(name, rid), check_exact=True)
    again = extract(b, cfg, progress=False, backend="ray")  # finished outputs are skipped (idempotent)
    assert {r.status for r in again.results} == {"skipped"}


def run_cell_killed_once(job):
    """A sweep cell whose worker process kills itself after writing its second epoch state, the first time only."""
    marker = Path(job["run_dir"]).parent.parent / "killed-once"
    if not marker.exists():
        import affectflow.experiment as experiment

        save = experiment.save_epoch_state

        def save_then_die(path, state):
            save(path, state)
            if state["epoch"] == 2:
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)

        experiment.save_epoch_state = save_then_die
    return run_cell(job)


def test_killed_worker_is_retried_to_the_same_result(ray_cluster, tmp_path, tiny_corpus, monkeypatch):
    grid = {"data.features": [["acoustic", "physio"]]}
    serial = run_sweep(_sweep_file(tmp_path, tiny_corpus.path, grid, seeds=(1, 2), epochs=4), out=tmp_path / "a",
                       backend="serial")
    monkeypatch.setattr(sweep_mod, "run_cell", run_cell_killed_once)
    out = tmp_path / "b"
    on_ray = run_sweep(_sweep_file(tmp_path, tiny_corpus.path, grid, seeds=(1, 2), epochs=4), out=out,
                       backend="ray")
    killed = int((out / "killed-once").read_text())
    (run,) = _cell_runs(on_ray)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["pid"] != killed and len(info["resumed"]) == 1
    _same_run(_cell_runs(serial)[0], run)


def test_job_exception_is_reraised(ray_cluster):
    ex = get_executor("ray", workers=2, threads=1)
    try:
        assert sorted(ex.map(abs, [-1, 2])) == [(0, 1), (1, 2)]
        with pytest.raises(TypeError):
            list(ex.map(abs, ["x"]))
    finally:
        ex.close()
    assert ray.is_initialized()  # an executor leaves a cluster it did not start running


def _approx_equal(a, b, rel: float = 1e-6) -> bool:
    """Nested dicts/lists equal in structure and non-float values, floats equal within ``rel``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_approx_equal(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_approx_equal(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=rel, abs=1e-9, nan_ok=True)
    return a == b


def test_approx_equal_tells_rounding_from_differences():
    assert _approx_equal({"a": [1.0, "x"], "b": 0.6931761269}, {"a": [1.0, "x"], "b": 0.6931761359})
    assert not _approx_equal({"a": 0.69}, {"a": 0.70})
    assert not _approx_equal({"a": 1.0}, {"a": 1.0, "b": 2.0})
    assert not _approx_equal({"a": "x"}, {"a": "y"})


def test_personalisation_groups_on_ray_equal_in_process(ray_cluster, tmp_path):
    from affectflow.experiment import train
    from affectflow.procedures.personalise import personalise
    from affectflow.synthetic.corpus import generate_corpus

    from ..conftest import tiny_config

    c = generate_corpus(tmp_path / "pc", n_subjects=12, duration_s=150.0, duration_jitter_s=10.0,
                        layout="personalisation", seed=1, progress=False)
    run = train(tiny_config(c.path, tmp_path / "runs", "training.epochs=2", "training.seeds=[1]",
                            "output.plots=false"), progress=False)
    kw = dict(seeds=3, epochs=3, patience=3, group_size=2)
    a = personalise(run, **kw)
    b = personalise(run, **kw, backend="ray", workers=2)
    ra, rb = json.loads((a / "report.json").read_text()), json.loads((b / "report.json").read_text())
    # Equal up to float32 rounding: fine-tuning in another process can differ in the last bits (BLAS kernels
    # depend on buffer alignment), which moved a Pearson r by 1e-8 in one full-suite run.
    assert _approx_equal(ra["partitions"], rb["partitions"])
    assert _approx_equal({s: v.get("per_seed") for s, v in ra["subjects"].items()},
                         {s: v.get("per_seed") for s, v in rb["subjects"].items()})
    assert sum(v["status"] == "personalised" for v in ra["subjects"].values()) >= 2


def test_tune_on_ray_workers_share_the_study(ray_cluster, tmp_path, tiny_corpus):
    from affectflow.procedures.tune import run_tune

    doc = {"name": "rt", "space": {"training.lr": {"low": 1e-3, "high": 3e-2, "log": True}},
           "config": {"data": {"corpus": str(tiny_corpus.path), "features": ["acoustic"],
                               "window": {"size": 40, "hop": 20}},
                      "model": {"d_model": 8, "d_fc": 8},
                      "training": {"epochs": 2, "seeds": [1], "batch_size": 16, "device": "cpu"},
                      "output": {"runs_dir": str(tmp_path / "runs"), "plots": False}}}
    (tmp_path / "rt.yaml").write_text(yaml.safe_dump(doc))
    out = run_tune(tmp_path / "rt.yaml", trials=4, backend="ray", workers=2, seed=1)
    df = pd.read_csv(out / "results.csv")
    assert list(df["trial"]) == [0, 1, 2, 3] and (df["state"] == "complete").all()
    pids = {json.loads((Path(r) / "run.json").read_text())["pid"] for r in df["run"]}
    assert len(pids) == 2 and os.getpid() not in pids  # two Ray workers shared the SQLite study


def test_recipe_steps_on_ray_equal_serial(ray_cluster, tmp_path):
    from affectflow.recipes import run_recipe
    from affectflow.synthetic.corpus import generate_corpus

    c = generate_corpus(tmp_path / "rc", n_subjects=8, duration_s=90.0, duration_jitter_s=10.0, seed=4,
                        progress=False)
    ov = ["epochs=1", "hidden=4", "gcnn_channels=4", "fusion_hidden=4", "fusion_epochs=1", "crossfit_folds=2",
          "window={size: 20, hop: 10}"]
    kw = dict(corpus=c.path, budget="quick", overrides=ov, progress=False)
    a = run_recipe("muse2021-stress", out=tmp_path / "a", backend="serial", **kw)
    b = run_recipe("muse2021-stress", out=tmp_path / "b", backend="ray", workers=2, **kw)
    import re

    def cells(folder):  # every number of every table; run folder names (timestamps) differ
        tables = json.loads((folder / "recipe.json").read_text())["tables"]
        return [[[re.sub(r"pred_[^+ ]*", "pred_*", c) for c in r["cells"]] for r in t["rows"]] for t in tables]

    assert cells(a) == cells(b)
