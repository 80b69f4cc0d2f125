import json

import numpy as np
import pandas as pd
import pytest
import torch

from affectflow.errors import RunError
from affectflow.experiment import evaluate, load_model, predict, train
from affectflow.runs import Run, load_checkpoint

from ..conftest import tiny_config


def test_run_directory_is_complete_and_self_describing(tiny_run):
    for f in ["config.yaml", "run.json", "train.log", "metrics.json", "results.md", "history/seed-1.csv",
              "checkpoints/seed-1.pt", "checkpoints/seed-2.pt", "plots/learning_curves.png", "plots/predictions_test.png"]:
        assert (tiny_run / f).is_file(), f
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["status"] == "finished" and info["best_seed"] in (1, 2) and info["affectflow"]
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert set(m["per_seed"]) == {"1", "2"}
    assert set(m["summary"]["test"]["arousal"]["ccc"]) == {"mean", "std"}
    assert "optimistic" in m["protocol"]
    pred = pd.read_csv(next((tiny_run / "predictions" / "test").glob("*.csv")))
    assert list(pred.columns) == ["time", "arousal", "valence", "arousal_label", "valence_label"]
    ck = load_checkpoint(tiny_run / "checkpoints" / "seed-1.pt")
    assert ck["model"]["type"] == "gru" and "state_dict" in ck


def test_model_learns_known_answer(tiny_run):
    m = json.loads((tiny_run / "metrics.json").read_text())
    for target in ("arousal", "valence"):
        assert m["best"]["test"][target]["ccc"] > 0.5, m["best"]["test"]
        assert m["best"]["test"][target]["ccc"] < m["ceiling"]["test"][target] + 1e-6


def test_best_weights_are_restored_before_scoring(tiny_run):
    m = json.loads((tiny_run / "metrics.json").read_text())
    best = m["selection"]["best_seed"]
    hist = pd.read_csv(tiny_run / "history" / f"seed-{best}.csv")
    devel = np.mean([m["best"]["devel"][t]["ccc"] for t in ("arousal", "valence")])
    assert devel == pytest.approx(hist["devel_score"].max(), abs=1e-6)
    assert m["selection"]["per_seed"][str(best)] == max(m["selection"]["per_seed"].values())


def test_evaluate_reloads_the_checkpoint_and_reproduces_the_scores(tiny_run):
    out, metrics = evaluate(tiny_run, partitions=["devel", "test"], device="cpu", progress=False)
    m = json.loads((tiny_run / "metrics.json").read_text())
    for part in ("devel", "test"):
        for t in ("arousal", "valence"):
            assert metrics["partitions"][part][t]["ccc"] == pytest.approx(m["best"][part][t]["ccc"], abs=1e-6)
    assert out.parent.name == "evaluations" and (out / "results.md").is_file()
    out2, _ = evaluate(tiny_run, partitions=["test"], device="cpu", progress=False)
    assert out2 != out  # never overwrites


def test_predict_new_folder_and_refuses_to_overwrite(tiny_run, tiny_corpus, tmp_path):
    rid = tiny_corpus.recording_ids(["test"])[0]
    out = predict(tiny_run, recordings=[rid], out=tmp_path / "p", device="cpu", progress=False)
    df = pd.read_csv(out / f"{rid}.csv")
    ref = pd.read_csv(tiny_run / "predictions" / "test" / f"{rid}.csv")
    np.testing.assert_allclose(df["arousal"], ref["arousal"], atol=1e-5)
    with pytest.raises(RunError, match="not empty"):
        predict(tiny_run, recordings=[rid], out=tmp_path / "p", device="cpu", progress=False)
    with pytest.raises(RunError, match="not an affectflow run"):
        Run(tmp_path)


def test_same_seed_gives_identical_predictions(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus.path, tmp_path, "training.seeds=[5]", "training.epochs=2")
    a = train(cfg, progress=False)
    b = train(cfg, progress=False)
    assert a != b  # a second run gets its own directory
    for f in (a / "predictions" / "test").glob("*.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(f), pd.read_csv(b / "predictions" / "test" / f.name))
    ma, _, _ = load_model(a)
    mb, _, _ = load_model(b)
    for (k, va), (_, vb) in zip(ma.state_dict().items(), mb.state_dict().items()):
        assert torch.equal(va, vb), k
