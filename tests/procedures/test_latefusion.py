"""Staged late fusion: cross-fitted prediction features, then a BiLSTM fusion run through the ordinary train path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from affectflow.corpus.corpus import Corpus
from affectflow.errors import ConfigError, CorpusError, RunError
from affectflow.experiment import train
from affectflow.predictions import Predictions
from affectflow.procedures.latefusion import prediction_feature_name, staged_late_fusion
from affectflow.synthetic.corpus import generate_corpus
from tests.conftest import tiny_config


def test_staged_late_fusion(tmp_path):
    corpus = generate_corpus(tmp_path / "c", n_subjects=10, duration_s=100.0, duration_jitter_s=0.0, seed=7,
                             progress=False)
    runs = [train(tiny_config(corpus.path, tmp_path / "runs", f"data.features={f}", "training.epochs=3",
                              "training.seeds=[1]", "model.d_model=16", "model.d_fc=8", "output.plots=false"),
                  progress=False) for f in ["[acoustic]", "[visual]"]]
    fusion = staged_late_fusion(runs, folds=2, seed=3, overrides=["training.epochs=8", "training.patience=8",
                                                                  "output.plots=false"])
    names = [prediction_feature_name(r) for r in runs]
    c = Corpus(corpus.path)
    cfg = yaml.safe_load((fusion / "config.yaml").read_text())
    assert cfg["data"]["features"] == names
    assert cfg["model"]["type"] == "lstm" and cfg["model"]["bidirectional"] and cfg["model"]["d_model"] is None
    info = json.loads((fusion / "run.json").read_text())
    assert info["status"] == "finished" and info["late_fusion"]["features"] == names
    train_ids = c.recording_ids(["train"])
    subj = dict(zip(c.recordings["id"], c.recordings["subject"]))
    for run, name in zip(runs, names):
        fs = c.feature_set(name)
        assert fs.columns == ["arousal", "valence"] and fs.params["run"] == str(run.resolve())
        cross = json.loads((run / "crossfit" / "k2-seed3" / "crossfit.json").read_text())
        assert sorted(s for g in cross["groups"] for s in g) == sorted({subj[r] for r in train_ids})
        own_train = Predictions.load(run / "predictions" / "train")
        for fold_run, group in zip(cross["runs"], cross["groups"]):
            fcfg = yaml.safe_load((Path(fold_run) / "config.yaml").read_text())
            view = Corpus(fcfg["data"]["corpus"], partitions=fcfg["data"]["partitions"])
            held = view.recording_ids(["heldout"])
            # the fold model never saw the held-out subjects
            assert {subj[r] for r in held} == set(group)
            assert not {subj[r] for r in view.recording_ids(["train"])} & set(group)
            oof = Predictions.load(Path(fold_run) / "predictions" / "heldout")
            for rid in held:
                feat = c.read_features(name, rid)
                np.testing.assert_allclose(feat[["arousal", "valence"]].to_numpy(), oof.subset([rid]).values[0],
                                           atol=1e-5)
                # ... and differs from the in-sample predictions of the run trained on all of train
                assert not np.allclose(feat[["arousal", "valence"]].to_numpy(), own_train.subset([rid]).values[0],
                                       atol=1e-3)
        test = Predictions.load(run / "predictions" / "test")
        rid = test.recordings[0]
        np.testing.assert_allclose(c.read_features(name, rid)[["arousal", "valence"]].to_numpy(), test.values[0],
                                   atol=1e-5)
        np.testing.assert_allclose(c.read_features(name, rid)["time"].to_numpy(), test.times[0])
    m = json.loads((fusion / "metrics.json").read_text())
    assert m["best"]["devel"]["arousal"]["ccc"] > 0.3, m["best"]  # fusing predictions is easy to learn
    table = (fusion / "late_fusion.md").read_text()
    assert f"| {runs[0].name} |" in table and f"| {fusion.name} | {m['best']['devel']['arousal']['ccc']:.4f} |" in table

    # the prediction features are reused for the same run, folds and seed (no new cross-fitting runs) ...
    n_runs = len(list((runs[0] / "crossfit" / "k2-seed3" / "training" / "runs").iterdir()))
    again = staged_late_fusion(runs, folds=2, seed=3, overrides=["training.epochs=1", "output.plots=false"])
    assert again != fusion and len(list((runs[0] / "crossfit" / "k2-seed3" / "training" / "runs").iterdir())) == n_runs
    # ... and refused when the name is taken by other cross-fitting
    with pytest.raises(CorpusError, match="already has a feature set"):
        staged_late_fusion(runs, folds=3, seed=3)
    one = train(tiny_config(corpus.path, tmp_path / "runs", "data.features=[physio]", "data.targets=[arousal]",
                            "training.epochs=1", "training.seeds=[1]", "output.plots=false"), progress=False)
    with pytest.raises(RunError, match="differ in data.targets"):
        staged_late_fusion([runs[0], one], folds=2)
    with pytest.raises(ConfigError, match="at least two"):
        staged_late_fusion(runs[:1])
