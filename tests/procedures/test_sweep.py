"""Sweeps: grid expansion, validation up front, results table, resuming, executors."""

from __future__ import annotations

import json
import operator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from affectflow.cli.main import main
from affectflow.errors import ConfigError, RunError
from affectflow.execution import EXECUTORS, get_executor, register_executor
from affectflow.procedures.sweep import build_cells, load_sweep, results_frame, run_sweep


def _sweep_file(tmp_path, corpus, grid, name="s"):
    doc = {
        "name": name,
        "config": {
            "data": {"corpus": str(corpus), "window": {"size": 40, "hop": 20}},
            "model": {"d_model": 8, "d_fc": 8, "dropout": 0.0},
            "training": {"epochs": 1, "seeds": [1, 2], "batch_size": 16, "device": "cpu"},
            "output": {"runs_dir": str(tmp_path / "runs"), "plots": False},
        },
        "grid": grid,
    }
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_grid_cells_and_validation(tmp_path, tiny_corpus):
    f = _sweep_file(tmp_path, tiny_corpus.path, {"data.features": [["acoustic"], ["physio"]],
                                                  "data.window": [{"size": 20, "hop": 10}, {"size": 40, "hop": 20}]})
    spec = load_sweep(f, ["training.lr=0.01"])
    cells = build_cells(spec)
    assert [c.id for c in cells] == ["c000", "c001", "c002", "c003"]
    assert cells[1].config["data"]["features"] == ["acoustic"] and cells[1].config["data"]["window"]["size"] == 40
    assert cells[2].config["data"]["features"] == ["physio"] and cells[2].config["data"]["window"]["size"] == 20
    assert all(c.config["training"]["lr"] == 0.01 for c in cells)
    assert Path(cells[0].config["data"]["corpus"]).is_absolute()
    bad = _sweep_file(tmp_path, tiny_corpus.path, {"model.no_such_param": [1, 2]}, name="bad")
    with pytest.raises(ConfigError, match="Sweep cell 0"):
        run_sweep(bad)
    assert not (tmp_path / "runs" / "sweep-bad").exists()  # refused before anything ran
    missing = _sweep_file(tmp_path, tiny_corpus.path, {"data.features": [["acoustic"], ["nope"]]}, name="missing")
    with pytest.raises(ConfigError, match="Feature set 'nope'"):
        run_sweep(missing)
    with pytest.raises(ConfigError, match="non-empty list"):
        load_sweep(_sweep_file(tmp_path, tiny_corpus.path, {"training.lr": 0.1}, name="notalist"))


def test_sweep_runs_resumes_and_tabulates(tmp_path, tiny_corpus):
    f = _sweep_file(tmp_path, tiny_corpus.path, {"data.features": [["acoustic"], ["physio"]]})
    out = run_sweep(f, backend="serial")
    df = pd.read_csv(out / "results.csv")
    assert list(df["cell"]) == ["c000", "c001"] and set(df["status"]) == {"finished"}
    assert list(df["data.features"]) == ["[acoustic]", "[physio]"]
    for col in ["devel/arousal/ccc", "devel/arousal/ccc/mean", "devel/arousal/ccc/std", "test/valence/ccc"]:
        assert df[col].notna().all()
    # the table's numbers are the runs' own metrics
    m = json.loads((Path(df["run"][0]) / "metrics.json").read_text())
    assert df["test/valence/ccc"][0] == pytest.approx(m["best"]["test"]["valence"]["ccc"], abs=1e-5)
    assert df["devel/arousal/ccc/mean"][0] == pytest.approx(m["summary"]["devel"]["arousal"]["ccc"]["mean"], abs=1e-5)
    cfg = yaml.safe_load((Path(df["run"][1]) / "config.yaml").read_text())
    assert cfg["data"]["features"] == ["physio"]
    md = (out / "results.md").read_text()
    assert "| c001 | [physio] |" in md and md.count("**") == 4  # one best cell, two devel targets

    runs_before = sorted((out / "runs").iterdir())
    assert run_sweep(f, backend="serial") == out  # resumed: nothing re-runs
    assert sorted((out / "runs").iterdir()) == runs_before

    # a cell whose sweep process died after its run finished counts as finished; a failed one re-runs
    doc = json.loads((out / "sweep.json").read_text())
    doc["cells"][0]["status"] = "running"
    doc["cells"][1]["status"], doc["cells"][1]["error"] = "failed", "RuntimeError: killed"
    (out / "sweep.json").write_text(json.dumps(doc))
    info = json.loads((runs_before[1] / "run.json").read_text())
    (runs_before[1] / "run.json").write_text(json.dumps({**info, "status": "failed: RuntimeError: killed"}))
    run_sweep(f, backend="serial")
    doc = json.loads((out / "sweep.json").read_text())
    assert [c["status"] for c in doc["cells"]] == ["finished", "finished"]
    assert doc["cells"][0]["run_dir"] == str(runs_before[0]) and doc["cells"][0]["attempts"] == []
    assert doc["cells"][1]["attempts"] == [str(runs_before[1])] and doc["cells"][1]["run_dir"] != str(runs_before[1])
    assert len(list((out / "runs").iterdir())) == 3  # the failed attempt's folder is kept

    other = _sweep_file(tmp_path, tiny_corpus.path, {"data.features": [["acoustic"], ["visual"]]})
    with pytest.raises(RunError, match="holds a different sweep"):
        run_sweep(other)


def test_failed_cell_is_recorded_and_cli_exit_code(tmp_path, tiny_corpus, capsys):
    # a window larger than every recording trains fine; a bad label set fails inside train -> failed cell
    f = _sweep_file(tmp_path, tiny_corpus.path, {"data.label_set": ["continuous", "no_such_labels"]}, name="fail")
    rc = main(["sweep", str(f), "--backend", "serial", "--set", "data.features=[physio]"])
    out = capsys.readouterr().out
    assert rc == 1 and "1/2 cells finished" in out and "| c001 | no_such_labels |" in out
    df = results_frame(tmp_path / "runs" / "sweep-fail")
    assert list(df["status"]) == ["finished", "failed"] and df["error"][1].startswith("CorpusError: ")
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2


def test_executors(tmp_path):
    items = [3, -1, 2]
    ex = get_executor("local", workers=2, threads=1)
    try:
        got = dict(ex.map(operator.neg, items))
    finally:
        ex.close()
    assert got == {0: -3, 1: 1, 2: -2}
    assert type(get_executor("local", workers=1)).__name__ == "SerialExecutor"
    with pytest.raises(ConfigError, match="Unknown executor backend"):
        get_executor("no-such-backend")

    class Reversed:  # a plugged-in backend: completion order differs from submission order
        def __init__(self, workers, threads):
            pass

        def map(self, fn, items):
            for i in reversed(range(len(items))):
                yield i, fn(items[i])

        def close(self):
            pass

    register_executor("reversed", Reversed)
    try:
        assert list(get_executor("reversed").map(abs, items)) == [(2, 2), (1, 1), (0, 3)]
    finally:
        EXECUTORS.pop("reversed")


def test_old_executor_paths_still_work_for_one_release():
    import importlib
    import sys

    from affectflow.execution import ray_executor

    for old, new in [("affectflow.procedures.executor", None), ("affectflow.procedures.ray_executor", ray_executor)]:
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match="import from affectflow.execution"):
            mod = importlib.import_module(old)
        if new is None:
            assert mod.get_executor is get_executor and mod.EXECUTORS is EXECUTORS
            assert mod.register_executor is register_executor
        else:
            assert mod.RayExecutor is new.RayExecutor and mod.loopback_only is new.loopback_only


def test_forked_sweep_with_seed_workers_in_its_cells_equals_a_serial_sweep(tmp_path, tiny_corpus):
    from affectflow.execution.forked import fork_available

    if not fork_available():
        pytest.skip("needs the fork start method")
    grid = {"data.features": [["acoustic"], ["physio"]]}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    serial = run_sweep(_sweep_file(tmp_path / "a", tiny_corpus.path, grid), backend="serial")
    # cells in forked workers, each training its 2 seeds in forked workers of its own: 1 thread everywhere
    forked = run_sweep(_sweep_file(tmp_path / "b", tiny_corpus.path, grid), backend="forked", workers=2,
                       overrides=["training.seed_workers=2"])
    a, b = (pd.read_csv(out / "results.csv") for out in (serial, forked))
    assert set(b["status"]) == {"finished"}
    cols = [c for c in a.columns if c.startswith(("devel/", "test/"))]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert "in 2 worker processes" in (Path(b["run"][0]) / "train.log").read_text()
