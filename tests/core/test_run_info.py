"""``Run.info()``: the plain-JSON description of every kind of run (trained, yardstick, fused, late fusion) and
``affectflow info RUN [--json]`` (the personalised kind is tested with its procedure, tests/procedures/)."""

from __future__ import annotations

import copy
import json
import pickle
import shutil

import pytest

from affectflow.cli.main import main
from affectflow.config import load_config
from affectflow.procedures.fuse import FusedRun
from affectflow.procedures.yardstick import YardstickRun
from affectflow.runs import Run


@pytest.fixture(scope="module")
def yardstick(tiny_corpus, tmp_path_factory):
    runs = tmp_path_factory.mktemp("info_runs")
    cfg = load_config(None, [f"data.corpus={tiny_corpus.path}", f"output.runs_dir={runs}",
                             "data.features=[acoustic,visual,physio]"])
    run = YardstickRun.fit(cfg, out=runs / "ys")  # the contract's fit (= run_yardstick)
    assert type(run) is YardstickRun and run.path == runs / "ys"
    return run.path


def test_a_trained_run_describes_itself_from_what_it_stores(tiny_run, capsys):
    run = Run(tiny_run)
    info = run.info()
    assert json.loads(json.dumps(info, allow_nan=False)) == info  # plain JSON
    metrics = run.metrics()
    assert info["kind"] == "trained" and info["id"] == tiny_run.name and info["status"] == "finished"
    assert info["task"] == "continuous" and info["targets"] == ["arousal", "valence"]
    assert info["features"] == ["acoustic", "visual", "physio"] and info["label_set"] == "continuous"
    assert info["seeds"] == [1, 2] and info["selected_seed"] == metrics["selection"]["best_seed"]
    assert info["scores"] == metrics["best"] and set(info["scores"]) >= {"devel", "test"}
    assert info["affectflow"] == run.record["affectflow"] and info["created"] == run.record["created"]
    assert info["sources"] == []
    # the parameter count is the selected seed's model's
    module = run.model().module
    assert info["model"]["type"] == "gru" and info["model"]["seed"] == info["selected_seed"]
    assert info["model"]["parameters"] == sum(p.numel() for p in module.parameters()) > 1000
    # run.info is still run.json's mapping for code written against earlier versions; copies are plain dicts
    assert run.info["status"] == "finished" and run.info.get("best_seed") == info["selected_seed"]
    assert type(copy.deepcopy(run.info)) is dict and pickle.loads(pickle.dumps(run.info)) == dict(run.record)
    # the CLI: the earlier text plus the description; --json prints exactly info()
    assert main(["info", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "status: finished" in out and f"best seed: {info['selected_seed']}" in out
    assert f"model size: {info['model']['parameters']:,} parameters" in out
    assert f"test: arousal ccc {metrics['best']['test']['arousal']['ccc']:.4f}" in out
    assert main(["info", str(tiny_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == info


def test_a_damaged_or_unfinished_run_still_describes_itself(tiny_run, tiny_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoints", "plots", "metrics.json"))
    rec = json.loads((run / "run.json").read_text())
    rec.update(status="running", best_seed=None, pid=2 ** 22 + 7, host="elsewhere",
               late_fusion={"members": [str(tiny_run), str(tmp_path / "gone")]})
    (run / "run.json").write_text(json.dumps(rec))
    info = Run(run).info()
    assert info["model"] == {"type": "gru", "parameters": None} and info["scores"] is None
    assert info["selected_seed"] is None and info["status"] in ("running", "interrupted")
    assert info["sources"] == [
        {"role": "late fusion member", "path": str(tiny_run), "kind": "trained", "exists": True},
        {"role": "late fusion member", "path": str(tmp_path / "gone"), "kind": None, "exists": False}]
    assert main(["info", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"] == info["sources"]
    assert main(["info", str(tiny_corpus.path), "--json"]) == 2
    assert "--json describes a run folder" in capsys.readouterr().err


def test_yardstick_and_fused_runs_describe_their_model_and_sources(tiny_run, tiny_corpus, yardstick, tmp_path,
                                                                   capsys):
    info = Run(yardstick).info()
    dims = sum(len(tiny_corpus.feature_set(n).columns) for n in ["acoustic", "visual", "physio"])
    # per target: W (1, 2D) over the current step and the past-context mean, and b (1,)
    assert info["kind"] == "yardstick" and info["model"]["parameters"] == 2 * (2 * dims + 1)
    assert info["model"]["context"] == 10 and set(info["model"]["strength"]) == {"arousal", "valence"}
    assert info["seeds"] is None and info["selected_seed"] is None
    assert info["scores"] == Run(yardstick).metrics()["best"]

    run = FusedRun.fit([tiny_run, yardstick], out=tmp_path / "fused")  # the contract's fit (= fuse_runs)
    fused = run.path
    doc = json.loads((fused / "fusion.json").read_text())
    info = run.info()
    assert info["kind"] == "fusion" and info["model"]["parameters"] is None
    assert info["model"]["method"] == "weighted" and info["model"]["weights"] == doc["weights"]
    assert info["scores"] == doc["scores"]["fused"] and info["targets"] == ["arousal", "valence"]
    assert [(s["role"], s["kind"], s["exists"]) for s in info["sources"]] == [
        ("member", "trained", True), ("member", "yardstick", True)]
    assert [s["path"] for s in info["sources"]] == doc["members"]
    assert main(["info", str(fused)]) == 0
    assert f"member: {doc['members'][1]}" in capsys.readouterr().out
