"""``affectflow tune``: the space file is validated up front; trials are ordinary runs; pruning hook; resuming;
best.yaml trains; plots; a seeded sampler repeats itself."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from affectflow.cli.main import main
from affectflow.config import load_config
from affectflow.errors import ConfigError, RunError
from affectflow.experiment import train
from affectflow.procedures.tune import load_space, run_tune
from affectflow.runs import Run
from affectflow.training.trainer import TrainingStopped

from ..conftest import tiny_config


def _space(tmp_path, corpus, space, name="sp", **extra):
    doc = {"name": name,
           "config": {"data": {"corpus": str(corpus), "features": ["acoustic"], "window": {"size": 40, "hop": 20}},
                      "model": {"d_model": 8, "d_fc": 8},
                      "training": {"epochs": 3, "patience": 3, "seeds": [1], "batch_size": 16, "device": "cpu"},
                      "output": {"runs_dir": str(tmp_path / "runs"), "plots": False}},
           "space": space, **extra}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


SPACE = {"training.lr": {"low": 1e-3, "high": 3e-2, "log": True}, "model.d_model": {"low": 4, "high": 12, "step": 4},
         "data.features": {"choices": [["acoustic"], ["acoustic", "physio"]]}}


@pytest.mark.parametrize("space, match", [
    ({"training.nope": {"low": 0, "high": 1}}, "Space key training.nope"),
    ({"training.lr": {"low": 0.0, "high": 0.1, "log": True}}, "log-scale range needs `low` > 0"),
    ({"training.lr": {"low": 0.1, "high": 0.01}}, "must be below"),
    ({"training.lr": {"low": 0.1}}, "needs `low` and `high`"),
    ({"training.lr": {"low": 0.001, "high": 0.1, "scale": "log"}}, "unknown field"),
    ({"data.features": {"choices": [["acoustic"], ["nope"]]}}, "Space key data.features = \\[nope\\]"),
    ({"model.d_model": {"low": 4, "high": 12, "step": 1.5}}, "integer `step`"),
    ({"training.epochs": {"low": 0, "high": 3}}, "training.epochs = 0"),
])
def test_space_is_validated_up_front(tmp_path, tiny_corpus, space, match):
    with pytest.raises(ConfigError, match=match):
        load_space(_space(tmp_path, tiny_corpus.path, space))


def test_space_types(tmp_path, tiny_corpus):
    spec = load_space(_space(tmp_path, tiny_corpus.path, SPACE, pruning=False))
    kinds = {p.key: p.kind for p in spec.params}
    assert kinds == {"training.lr": "float", "model.d_model": "int", "data.features": "categorical"}
    assert spec.pruning is None
    assert next(p for p in spec.params if p.key == "training.lr").log


def test_epoch_hook_stops_a_run(tmp_path, tiny_corpus):
    seen = []

    def hook(seed, row):
        seen.append((seed, row["epoch"], row["devel_score"]))
        if row["epoch"] == 2:
            raise TrainingStopped("pruned for the test")

    with pytest.raises(TrainingStopped):
        train(tiny_config(tiny_corpus.path, tmp_path, "training.seeds=[1]", "output.plots=false"), progress=False,
              on_epoch=hook)
    (run,) = [p for p in tmp_path.iterdir() if (p / "run.json").is_file()]
    assert Run(run).status == "stopped: pruned for the test"
    assert [s[:2] for s in seen] == [(1, 1), (1, 2)]


def test_tune_runs_resumes_and_writes_best(tmp_path, tiny_corpus):
    f = _space(tmp_path, tiny_corpus.path, SPACE, sampler={"startup_trials": 2},
               pruning={"startup_trials": 1, "warmup_epochs": 1})
    out = run_tune(f, trials=4, seed=3, backend="serial")
    df = pd.read_csv(out / "results.csv")
    assert list(df["trial"]) == [0, 1, 2, 3] and set(df["state"]) <= {"complete", "pruned"}
    assert (df["state"] == "complete").sum() >= 1
    for _, r in df.iterrows():  # every trial is an ordinary run folder
        status = Run(r["run"]).status
        assert status == "finished" if r["state"] == "complete" else status.startswith("stopped: pruned")
        if r["state"] == "complete":
            m = json.loads((Path(r["run"]) / "metrics.json").read_text())
            assert r["value"] == pytest.approx(m["selection"]["per_seed"]["1"], rel=1e-5)
    best = df[df["state"] == "complete"].sort_values("value").iloc[-1]
    cfg = load_config(out / "best.yaml")
    assert cfg.training.lr == pytest.approx(best["training.lr"], rel=1e-5)  # results.csv keeps 6 digits
    assert cfg.model.params["d_model"] == best["model.d_model"]
    assert (out / "plots" / "optimization_history.png").stat().st_size > 1000
    assert (out / "plots" / "param_importances.png").is_file() or (out / "plots" / "param_importances.txt").is_file()
    # resuming runs only the missing trials
    run_tune(f, trials=5, seed=3, backend="serial")
    assert len(pd.read_csv(out / "results.csv")) == 5
    # the same seed proposes the same first configurations
    again = run_tune(f, trials=2, seed=3, backend="serial", out=tmp_path / "again")
    cols = ["training.lr", "model.d_model", "data.features"]
    assert pd.read_csv(again / "results.csv")[cols].equals(df[cols].iloc[:2])
    # another space into the same folder is refused
    other = _space(tmp_path, tiny_corpus.path, {"training.lr": {"low": 1e-3, "high": 1e-2}}, name="other")
    with pytest.raises(RunError, match="holds another search"):
        run_tune(other, trials=1, out=out, backend="serial")


def test_cli_errors(tmp_path, tiny_corpus, capsys):
    bad = _space(tmp_path, tiny_corpus.path, {"training.lr": {"low": 0.1}})
    assert main(["tune", "--space", str(bad), "--trials", "2"]) == 2
    assert "needs `low` and `high`" in capsys.readouterr().err
    good = _space(tmp_path, tiny_corpus.path, SPACE, name="good")
    assert main(["tune", "--space", str(good), "--trials", "0"]) == 2
    assert "--trials must be a positive integer" in capsys.readouterr().err
