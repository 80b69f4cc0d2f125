"""MLflow tracking: runs, sweep cells (nested under the sweep), personalisation; read back with the MLflow client;
off by default and then MLflow is never imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from affectflow.cli.main import main
from affectflow.procedures.sweep import _load_cells, run_sweep

from ..conftest import tiny_config

MlflowClient = pytest.importorskip("mlflow.tracking").MlflowClient


def _runs(uri):
    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name("affectflow")
    return c, c.search_runs([exp.experiment_id], max_results=1000)


def test_sweep_cells_nested_under_the_sweep(tmp_path, tiny_corpus):
    uri = f"sqlite:///{tmp_path / 'ml' / 'mlflow.db'}"
    doc = {"name": "tr",
           "config": {"data": {"corpus": str(tiny_corpus.path), "window": {"size": 40, "hop": 20}},
                      "model": {"d_model": 8, "d_fc": 8},
                      "training": {"epochs": 2, "seeds": [1], "batch_size": 16, "device": "cpu"},
                      "output": {"runs_dir": str(tmp_path / "runs"), "plots": True},
                      "tracking": {"mlflow": uri}},
           "grid": {"data.features": [["acoustic"], ["physio"]]}}
    (tmp_path / "tr.yaml").write_text(yaml.safe_dump(doc))
    out = run_sweep(tmp_path / "tr.yaml", backend="serial")
    c, runs = _runs(uri)
    parent = [r for r in runs if r.data.tags.get("affectflow.kind") == "sweep"]
    cells = [r for r in runs if r.data.tags.get("affectflow.kind") == "run"]
    assert len(parent) == 1 and len(cells) == 2 and len(runs) == 3
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {parent[0].info.run_id}
    assert parent[0].info.status == "FINISHED"
    _, sweep_cells = _load_cells(out)
    for r in cells:
        run_dir = Path(r.data.tags["affectflow.run_dir"])
        assert str(run_dir) in {c_.run_dir for c_ in sweep_cells}
        assert r.data.params["training.lr"] == "0.001" and r.data.params["model.d_model"] == "8"
        assert json.loads(r.data.params["data.features"]) in (["acoustic"], ["physio"])
        m = json.loads((run_dir / "metrics.json").read_text())
        assert r.data.metrics["devel/arousal/ccc"] == pytest.approx(m["best"]["devel"]["arousal"]["ccc"])
        hist = pd.read_csv(run_dir / "history" / "seed-1.csv")
        got = c.get_metric_history(r.info.run_id, "seed1/devel_score")
        assert [(x.step, x.value) for x in sorted(got, key=lambda x: x.step)] == \
            list(zip(hist["epoch"], hist["devel_score"]))
        names = {a.path for a in c.list_artifacts(r.info.run_id)}
        assert {"results.md", "config.yaml", "metrics.json", "plots"} <= names
        assert c.list_artifacts(r.info.run_id, "plots")
    assert "results.md" in {a.path for a in c.list_artifacts(parent[0].info.run_id)}
    run_sweep(tmp_path / "tr.yaml", backend="serial")  # resumed: nothing new, nothing logged twice
    assert len(_runs(uri)[1]) == 3


def test_train_cli_flag_and_personalisation_nested(tmp_path, tiny_corpus):
    from affectflow.synthetic.corpus import generate_corpus

    pc = generate_corpus(tmp_path / "pc", n_subjects=8, duration_s=150.0, duration_jitter_s=10.0,
                         layout="personalisation", seed=2, progress=False)
    runs = tmp_path / "runs"
    args = ["train", "--corpus", str(pc.path), "--runs-dir", str(runs), "--mlflow", "-q",
            "--set", "data.features=[acoustic,physio]", "--set", "training.epochs=2", "--set", "training.seeds=[1]",
            "--set", "model.d_model=8", "--set", "data.window.size=40", "--set", "data.window.hop=20",
            "--set", "output.plots=false", "--set", "training.device=cpu"]
    assert main(args) == 0
    uri = f"sqlite:///{(runs / 'mlflow.db').resolve()}"  # --mlflow without a URI: next to the runs
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and (p / "run.json").is_file()]
    assert main(["personalise", str(run_dir), "--seeds", "2", "--epochs", "2", "-q"]) == 0  # URI from the run
    c, got = _runs(uri)
    base = [r for r in got if r.data.tags["affectflow.kind"] == "run"]
    pers = [r for r in got if r.data.tags["affectflow.kind"] == "personalisation"]
    assert len(base) == 1 and len(pers) == 1
    assert pers[0].data.tags["mlflow.parentRunId"] == base[0].info.run_id
    assert any(k.endswith("/seed1/devel") for k in pers[0].data.metrics)
    assert "test/arousal/ccc" in pers[0].data.metrics


def test_tracking_off_never_imports_mlflow(tmp_path, tiny_corpus):
    code = f"""
import sys
from affectflow.experiment import train
from affectflow.procedures.sweep import run_sweep
from tests.conftest import tiny_config
train(tiny_config({str(tiny_corpus.path)!r}, {str(tmp_path)!r}, "training.epochs=1", "training.seeds=[1]",
                  "output.plots=false"), progress=False)
assert "mlflow" not in sys.modules, "mlflow was imported"
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]


def test_tune_and_cv_nesting(tmp_path, tiny_corpus):
    from affectflow.config import load_config
    from affectflow.procedures.cv import run_cv
    from affectflow.procedures.tune import run_tune

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    doc = {"name": "tt", "space": {"training.lr": {"low": 1e-3, "high": 1e-2, "log": True}},
           "config": {"data": {"corpus": str(tiny_corpus.path), "features": ["acoustic"],
                               "window": {"size": 40, "hop": 20}},
                      "model": {"d_model": 8, "d_fc": 8},
                      "training": {"epochs": 1, "seeds": [1], "batch_size": 16, "device": "cpu"},
                      "output": {"runs_dir": str(tmp_path / "runs"), "plots": False}, "tracking": {"mlflow": uri}}}
    (tmp_path / "tt.yaml").write_text(yaml.safe_dump(doc))
    run_tune(tmp_path / "tt.yaml", trials=2, backend="serial")
    cfg = load_config(None, [f"data.corpus={tiny_corpus.path}", f"output.runs_dir={tmp_path / 'runs'}",
                             "data.features=[acoustic]", "data.window.size=40", "data.window.hop=20",
                             "training.epochs=1", "training.seeds=[1]", "model.d_model=8", "output.plots=false",
                             f"tracking.mlflow={uri}"])
    run_cv(cfg, k=3, backend="serial")
    c, got = _runs(uri)
    by_kind: dict[str, list] = {}
    for r in got:
        by_kind.setdefault(r.data.tags["affectflow.kind"], []).append(r)
    (tune,), (cv,), (sweep,) = by_kind["tune"], by_kind["cv"], by_kind["sweep"]
    trials = [r for r in by_kind["run"] if r.data.tags.get("mlflow.parentRunId") == tune.info.run_id]
    folds = [r for r in by_kind["run"] if r.data.tags.get("mlflow.parentRunId") == sweep.info.run_id]
    assert len(trials) == 2 and all("tune/value" in r.data.metrics for r in trials)
    assert {"best.yaml", "results.md"} <= {a.path for a in c.list_artifacts(tune.info.run_id)}
    assert sweep.data.tags["mlflow.parentRunId"] == cv.info.run_id and len(folds) == 3
    assert any(r.data.tags.get("mlflow.parentRunId") == cv.info.run_id and r.data.tags["affectflow.kind"] == "fusion"
               for r in got)  # the fold average


def test_recipe_steps_nested_under_the_recipe(tmp_path):
    from affectflow.recipes import run_recipe
    from affectflow.synthetic.corpus import generate_corpus

    c = generate_corpus(tmp_path / "rc", n_subjects=8, duration_s=90.0, duration_jitter_s=10.0, seed=4,
                        progress=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ov = ["epochs=1", "hidden=4", "gcnn_channels=4", "fusion_hidden=4", "fusion_epochs=1", "crossfit_folds=2",
          "window={size: 20, hop: 10}"]
    folder = run_recipe("muse2021-stress", corpus=c.path, out=tmp_path / "r", budget="quick", backend="serial",
                        overrides=ov, progress=False, tracking=uri)
    cl, got = _runs(uri)
    (recipe,) = [r for r in got if r.data.tags["affectflow.kind"] == "recipe"]
    steps = [r for r in got if r.data.tags.get("mlflow.parentRunId") == recipe.info.run_id]
    assert recipe.info.status == "FINISHED" and len(steps) >= 3
    runs_under_steps = [r for r in got if r.data.tags.get("mlflow.parentRunId") in {s.info.run_id for s in steps}]
    assert runs_under_steps and all(r.data.tags["affectflow.kind"] != "recipe" for r in runs_under_steps)
    assert "recipe.md" in {a.path for a in cl.list_artifacts(recipe.info.run_id)} and (folder / "recipe.md").is_file()
