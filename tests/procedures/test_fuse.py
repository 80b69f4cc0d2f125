"""Decision fusion: never worse on devel than the best run, exact mean, posteriors, fused runs as runs, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from affectflow.cli.main import main
from affectflow.errors import CorpusError, RunError
from affectflow.experiment import evaluate, predict, train
from affectflow.predictions import Predictions, score, selection_score
from affectflow.procedures.fuse import align, fuse_runs, is_fusion_run, run_partition_predictions
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def three_runs(tiny_corpus, tmp_path_factory):
    runs = tmp_path_factory.mktemp("fuse_runs")
    out = []
    for feats in ["[acoustic]", "[visual]", "[physio]"]:
        cfg = tiny_config(tiny_corpus.path, runs, f"data.features={feats}", "training.epochs=3", "training.seeds=[1]",
                          "model.d_model=16", "model.d_fc=8", "output.plots=false")
        out.append(train(cfg, progress=False))
    return out


def test_weighted_fusion_of_three_runs_is_never_worse_on_devel(three_runs, tmp_path):
    fused = fuse_runs(three_runs, out=tmp_path / "f")
    assert is_fusion_run(fused)
    doc = json.loads((fused / "fusion.json").read_text())
    names = doc["names"]
    for t in ["arousal", "valence"]:
        w = doc["weights"][t]
        assert sum(w.values()) == pytest.approx(1.0) and min(w.values()) >= 0
        best_single = max(doc["scores"][n]["devel"][t]["ccc"] for n in names)
        assert doc["scores"]["fused"]["devel"][t]["ccc"] >= best_single - 1e-9
    best_sel = max(doc["selection_scores"][n]["devel"] for n in names)
    assert doc["selection_scores"]["fused"]["devel"] >= best_sel - 1e-9
    # members' scores are the runs' own scores (same predictions, same scoring path)
    m0 = json.loads((three_runs[0] / "metrics.json").read_text())
    assert doc["scores"][names[0]]["test"]["arousal"]["ccc"] == pytest.approx(m0["best"]["test"]["arousal"]["ccc"], abs=1e-5)
    # the fused predictions on disk are the weighted sums of the members' predictions
    fp = Predictions.load(fused / "predictions" / "test")
    members = [run_partition_predictions(r, "test") for r in three_runs]
    w = np.array([[doc["weights"][t][n] for t in ["arousal", "valence"]] for n in names])
    for r, rid in enumerate(fp.recordings):
        want = sum(w[i] * m.subset([rid]).values[0] for i, m in enumerate(members))
        np.testing.assert_allclose(fp.values[r], want, atol=1e-5)
    assert score(fp)["arousal"]["ccc"] == pytest.approx(doc["scores"]["fused"]["test"]["arousal"]["ccc"])
    md = (fused / "results.md").read_text()
    assert "**fused**" in md and "devel arousal ccc" in md and "test valence ccc" in md
    assert json.loads((fused / "metrics.json").read_text())["best"]["test"] == doc["scores"]["fused"]["test"]


def test_mean_fusion_refusion_and_fused_run_as_a_run(three_runs, tmp_path):
    mean = fuse_runs(three_runs[:2], method="mean", out=tmp_path / "mean")
    doc = json.loads((mean / "fusion.json").read_text())
    assert all(v == 0.5 for w in doc["weights"].values() for v in w.values())
    a, b = (run_partition_predictions(r, "devel") for r in three_runs[:2])
    f = Predictions.load(mean / "predictions" / "devel")
    np.testing.assert_allclose(f.values[0], (a.values[0] + b.values[0]) / 2, atol=1e-6)
    # evaluate recomputes the fused predictions through the members' predict path
    _, ev = evaluate(mean, partitions=["devel", "test"], device="cpu", progress=False)
    for part in ["devel", "test"]:
        for t in ["arousal", "valence"]:
            assert ev["partitions"][part][t]["ccc"] == pytest.approx(doc["scores"]["fused"][part][t]["ccc"], abs=1e-4)
    test_ids = f.recordings[:1]
    out = predict(mean, recordings=test_ids, out=tmp_path / "pred", device="cpu", progress=False)
    got = Predictions.load(out)
    np.testing.assert_allclose(got.values[0], f.subset(test_ids).values[0], atol=1e-4)
    # a fused run is fused again like any run
    again = fuse_runs([mean, three_runs[2]], out=tmp_path / "again")
    d2 = json.loads((again / "fusion.json").read_text())
    for t in ["arousal", "valence"]:
        assert d2["scores"]["fused"]["devel"][t]["ccc"] >= max(d2["scores"][n]["devel"][t]["ccc"] for n in d2["names"]) - 1e-9
    _, ev2 = evaluate(again, partitions=["test"], device="cpu", progress=False)
    assert ev2["partitions"]["test"]["valence"]["ccc"] == pytest.approx(d2["scores"]["fused"]["test"]["valence"]["ccc"], abs=1e-4)
    # one contract: Run(path) is the class of the folder's kind, and its saved predictions are the fused ones
    from affectflow.experiment import TrainedRun
    from affectflow.procedures.fuse import FusedRun
    from affectflow.runs import Run

    assert type(Run(mean)) is FusedRun and type(Run(three_runs[0])) is TrainedRun
    np.testing.assert_array_equal(Run(mean).saved_predictions("devel").values[0], f.values[0])


def test_fusion_refuses_runs_that_disagree(three_runs, tiny_corpus, tmp_path):
    one_target = train(tiny_config(tiny_corpus.path, tmp_path / "r", "data.features=[physio]", "data.targets=[arousal]",
                                   "training.epochs=1", "training.seeds=[1]", "output.plots=false"), progress=False)
    with pytest.raises(RunError, match="targets differ"):
        fuse_runs([three_runs[0], one_target], out=tmp_path / "x1")
    # a run whose devel partition holds other recordings (a partition map moved one devel recording to train)
    from affectflow.corpus.corpus import write_partition_map

    dev = tiny_corpus.recording_ids(["devel"])
    pmap = write_partition_map(tmp_path / "map.csv", {dev[0]: "train"})
    other = train(tiny_config(tiny_corpus.path, tmp_path / "r", "data.features=[physio]", "training.epochs=1",
                              "training.seeds=[1]", f"data.partitions={pmap}", "output.plots=false"), progress=False)
    with pytest.raises(RunError, match="recordings differ"):
        fuse_runs([three_runs[0], other], out=tmp_path / "x2")
    # label grids that differ
    p = run_partition_predictions(three_runs[0], "devel")
    q = run_partition_predictions(three_runs[1], "devel")
    q.times = [t * 2 for t in q.times]
    with pytest.raises(RunError, match="label grid of recording"):
        align([p, q], ["a", "b"])
    with pytest.raises(RunError, match="no saved predictions for partition 'nope'"):
        fuse_runs(three_runs[:2], partitions=["nope"], method="mean", out=tmp_path / "x3")
    assert main(["fuse", str(three_runs[0]), str(one_target)]) == 2


def test_fused_run_whose_member_or_corpus_moved(three_runs, tmp_path):
    members = [tmp_path / "m0", tmp_path / "m1"]
    for src, dst in zip(three_runs[:2], members):
        shutil.copytree(src, dst)
    fused = fuse_runs(members, method="mean", out=tmp_path / "f")
    cfg = yaml.safe_load((fused / "config.yaml").read_text())
    cfg["data"]["corpus"] = str(tmp_path / "moved_corpus")
    (fused / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CorpusError, match="does not exist"):
        evaluate(fused, device="cpu", progress=False)
    members[1].rename(tmp_path / "elsewhere")
    with pytest.raises(RunError, match="does not exist any more"):
        evaluate(fused, device="cpu", progress=False)


def test_clip_fusion_averages_class_posteriors(tiny_corpus, tmp_path):
    runs = []
    for feats, seed in [("[visual]", 1), ("[acoustic]", 2)]:
        cfg = tiny_config(tiny_corpus.path, tmp_path / "r", "data.task=clip", "data.targets=[discrete,valence]",
                          "model.type=lstm", "model.hidden_size=8", "training.epochs=3", f"training.seeds=[{seed}]",
                          "training.loss=mse", f"data.features={feats}")
        runs.append(train(cfg, progress=False))
    fused = fuse_runs(runs, out=tmp_path / "f", partitions=["devel", "test"])
    doc = json.loads((fused / "fusion.json").read_text())
    w = doc["weights"]["discrete"]
    members = [run_partition_predictions(r, "test") for r in runs]
    members = align(members, doc["names"])
    fp = Predictions.load(fused / "predictions" / "test")
    n_cls = len(fp.specs[0].classes)
    mix = sum(w[n] * m.posteriors()[:, :n_cls] for n, m in zip(doc["names"], members))
    np.testing.assert_allclose(fp.posteriors()[:, :n_cls], mix, atol=1e-5)
    sel = [selection_score(Predictions.load(r / "predictions" / "devel")) for r in runs]
    assert doc["selection_scores"]["fused"]["devel"] >= max(sel) - 1e-9
    assert "mer_score" in doc["scores"]["fused"]["test"]
