"""The linear yardstick: known answers, fitted on train only, scored like a run, usable as a run (evaluate, fuse)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from affectflow.cli.main import main
from affectflow.config import load_config
from affectflow.corpus.corpus import TIME, Corpus, FeatureSetInfo, LabelSetInfo
from affectflow.experiment import evaluate, run_predictions
from affectflow.procedures.fuse import fuse_runs
from affectflow.procedures.yardstick import fit_yardstick, past_context, run_yardstick

W = np.array([0.8, -0.5, 0.3, 0.0])


def linear_corpus(path, *, n=30, steps=40, seed=0):
    """Labels that are exact linear maps of the features: arousal = x W, valence = the past-5-step mean of x W;
    clips (those with |mean x W| > 0.15): discrete = sign of the clip's mean x W, valence = that mean."""
    rng = np.random.default_rng(seed)
    c = Corpus.create(path, name="linear", label_rate_hz=2.0)
    c.write_feature_set_info(FeatureSetInfo("f", "x", [f"f{j}" for j in range(len(W))], 2.0))
    c.write_label_set_info(LabelSetInfo("continuous", ["arousal", "valence"], 2.0))
    rows, clips = [], []
    for r in range(n):
        rid = f"R{r:02d}"
        t = np.arange(steps) / 2.0
        x = rng.standard_normal((steps, len(W))) + rng.normal(0, 0.5)
        a = x @ W
        v = past_context(a[:, None].astype(np.float32), 5)[:, 1]
        c.write_features("f", rid, pd.DataFrame({TIME: t, **{f"f{j}": x[:, j] for j in range(len(W))}}))
        c.write_labels(rid, pd.DataFrame({TIME: t, "arousal": a, "valence": v}))
        m = float(a.mean())
        if abs(m) > 0.15:  # a margin: the classes are linearly separable
            clips.append({"recording": rid, "discrete": "pos" if m > 0 else "neg", "valence": m})
        part = "train" if r < n * 0.6 else ("devel" if r < n * 0.8 else "test")
        rows.append({"id": rid, "subject": rid, "partition": part, "duration": steps / 2.0})
    c.set_recordings(pd.DataFrame(rows))
    c.write_clips(pd.DataFrame(clips))
    return c


def _cfg(corpus, runs, *extra):
    return load_config(None, [f"data.corpus={corpus}", f"output.runs_dir={runs}", "data.features=[f]", *extra])


def test_past_context_is_a_causal_running_mean():
    x = np.arange(10, dtype=np.float32)[:, None]
    z = past_context(x, 3)
    np.testing.assert_allclose(z[:, 0], x[:, 0])
    np.testing.assert_allclose(z[:, 1], [0, 0.5, 1, 2, 3, 4, 5, 6, 7, 8])
    assert past_context(x, 1) is x


def test_linear_data_gives_a_near_perfect_score(tmp_path):
    c = linear_corpus(tmp_path / "c")
    out, metrics = run_yardstick(_cfg(c.path, tmp_path / "runs"), context=5)
    for t in ["arousal", "valence"]:  # valence needs the past-context mean: it is exactly linear in it
        assert metrics["best"]["test"][t]["ccc"] > 0.999, (t, metrics["best"]["test"][t])
    # without the past context valence is not a linear map of the current step alone
    _, m1 = run_yardstick(_cfg(c.path, tmp_path / "runs"), context=1)
    assert m1["best"]["test"]["valence"]["ccc"] < 0.9 < m1["best"]["test"]["arousal"]["ccc"]
    sel = metrics["selection"]["per_target"]["arousal"]
    assert sel["param"] == "alpha" and len(sel["grid"]) == 8 and sel["train_samples"] == 18 * 40


def test_clip_task_logistic_and_ridge_known_answer(tmp_path):
    c = linear_corpus(tmp_path / "c", n=80, steps=12)
    _, m = run_yardstick(_cfg(c.path, tmp_path / "runs", "data.task=clip", "data.targets=[discrete,valence]"))
    test = m["best"]["test"]
    assert test["discrete"]["weighted_f1"] > 0.95 and test["valence"]["ccc"] > 0.99
    assert test["mer_score"]["value"] == pytest.approx(test["discrete"]["weighted_f1"] - 0.25 * test["valence"]["mse"])
    assert m["selection"]["per_target"]["discrete"]["param"] == "C"


def test_fitted_on_train_only(tmp_path):
    c = linear_corpus(tmp_path / "c")
    shutil.copytree(c.path, tmp_path / "d")
    d = Corpus(tmp_path / "d")
    rng = np.random.default_rng(5)
    for rid in d.recording_ids(["devel", "test"]):  # scramble everything outside train
        x = d.read_features("f", rid)
        x[[f"f{j}" for j in range(len(W))]] = rng.standard_normal((len(x), len(W))) * 7 + 3
        d.write_features("f", rid, x)
        y = d.read_labels(rid)
        y[["arousal", "valence"]] = rng.standard_normal((len(y), 2))
        d.write_labels(rid, y)
    fits = [fit_yardstick(_cfg(p, tmp_path / "runs"), alphas=(1.0,)) for p in (c.path, d.path)]
    for t in ["arousal", "valence"]:
        np.testing.assert_array_equal(fits[0][0].params[t]["W"], fits[1][0].params[t]["W"])
    np.testing.assert_array_equal(fits[0][1].stats_["f"][0], fits[1][1].stats_["f"][0])
    # ... and the train scores are the same, the test scores are not
    assert fits[0][2]["train"].values[0].tolist() == fits[1][2]["train"].values[0].tolist()


def test_a_yardstick_folder_is_a_run_for_evaluate_predict_and_fuse(tiny_corpus, tiny_run, tmp_path):
    out, metrics = run_yardstick(_cfg(tiny_corpus.path, tmp_path, "data.features=[acoustic,visual,physio]"))
    _, ev = evaluate(out, partitions=["devel", "test"])
    for p in ["devel", "test"]:
        for t in ["arousal", "valence"]:
            assert ev["partitions"][p][t]["ccc"] == pytest.approx(metrics["best"][p][t]["ccc"], abs=1e-6)
    preds = run_predictions(out, partitions=["test"])
    assert preds.recordings == tiny_corpus.recording_ids(["test"])
    fused = fuse_runs([tiny_run, out], out=tmp_path / "fused")
    doc = json.loads((fused / "fusion.json").read_text())
    assert doc["scores"][out.name]["test"]["arousal"]["ccc"] == pytest.approx(metrics["best"]["test"]["arousal"]["ccc"],
                                                                               abs=1e-5)


def test_cli_yardstick_and_its_errors(tiny_corpus, tiny_run, tmp_path, capsys):
    rc = main(["yardstick", "--run", str(tiny_run), "--runs-dir", str(tmp_path), "--context", "4", "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| test | arousal | ccc |" in out and "past 4 steps" in out
    assert main(["yardstick", "--corpus", str(tiny_corpus.path), "--set", "data.features=[acoustic]",
                 "--context", "0", "--runs-dir", str(tmp_path)]) == 2
    assert "past context must be at least 1" in capsys.readouterr().err
    assert main(["yardstick", "--corpus", str(tiny_corpus.path), "--set", "data.features=[acoustic]",
                 "--alphas", "1,x"]) == 2
    assert "--alphas must be comma-separated numbers" in capsys.readouterr().err
