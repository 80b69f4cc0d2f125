"""``affectflow runs``: one table of all run folders, filters, sorting, CSV."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pandas as pd
import pytest
import yaml

from affectflow.cli.main import main
from affectflow.errors import ConfigError
from affectflow.procedures.sweep import run_sweep
from affectflow.runs_table import runs_frame, select_runs


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, tiny_corpus):
    root = tmp_path_factory.mktemp("table")
    doc = {"name": "t",
           "config": {"data": {"corpus": str(tiny_corpus.path), "window": {"size": 40, "hop": 20}},
                      "model": {"d_model": 8, "d_fc": 8},
                      "training": {"epochs": 1, "seeds": [1], "batch_size": 16, "device": "cpu"},
                      "output": {"runs_dir": str(root), "plots": False}},
           "grid": {"data.features": [["acoustic"], ["physio"]], "training.lr": [0.001, 0.01]}}
    (root / "s.yaml").write_text(yaml.safe_dump(doc))
    run_sweep(root / "s.yaml", out=root / "sweep-t", backend="serial")
    bad = root / "gru-broken-20260101-000000"
    bad.mkdir()
    (bad / "run.json").write_text(json.dumps({"status": "failed: ValueError: boom", "created": "2026-01-01T00:00:00+0000"}))
    (bad / "config.yaml").write_text(yaml.safe_dump({"model": {"type": "gru"}, "data": {"features": ["visual"]}}))
    return root


def test_table_rows_scores_and_status(runs_root):
    df = runs_frame(runs_root)
    assert len(df) == 5
    ok = df[df["status"] == "finished"]
    assert len(ok) == 4 and set(ok["features"]) == {"acoustic", "physio"} and set(ok["lr"]) == {0.001, 0.01}
    assert (ok["metric"] == "ccc").all() and ok["devel"].notna().all() and ok["test"].notna().all()
    # the per-target columns average to the devel column
    assert ok[["devel:arousal", "devel:valence"]].mean(axis=1).round(10).tolist() == ok["devel"].round(10).tolist()
    m = json.loads((runs_root / ok["run"].iloc[0] / "metrics.json").read_text())
    assert ok["test:arousal"].iloc[0] == m["best"]["test"]["arousal"]["ccc"]
    assert (ok["wall_s"] >= 0).all()
    assert df.loc[df["status"].str.startswith("failed"), "features"].item() == "visual"


def test_filters_and_sort(runs_root):
    df = runs_frame(runs_root)
    best = select_runs(df, filters=["status=finished"], sort="devel")
    assert best["devel"].is_monotonic_decreasing and len(best) == 4
    assert select_runs(df, filters=["status=finished"], sort="-devel")["devel"].is_monotonic_increasing
    only = select_runs(df, filters=["features=physio", "training.lr=0.01"], root=runs_root)
    assert len(only) == 1 and only["lr"].item() == 0.01
    with pytest.raises(ConfigError, match="Unknown filter key"):
        select_runs(df, filters=["nope=1"])
    with pytest.raises(ConfigError, match="Cannot sort by"):
        select_runs(df, sort="nope")


def test_cli_csv_and_errors(runs_root, capsys):
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["runs", str(runs_root), "--csv", "--filter", "model=gru", "--sort", "devel"]) == 0
    got = pd.read_csv(io.StringIO(buf.getvalue()))
    assert len(got) == 5 and got["status"].iloc[-1].startswith("failed")
    assert main(["runs", str(runs_root / "nothing-here")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["runs", str(runs_root), "--filter", "lr"]) == 2
