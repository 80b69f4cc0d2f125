"""PCA feature transform (data.pca): fitted on train only, stored with the run, applied identically by evaluate,
predict, streaming and ONNX export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA

from affectflow.config import load_config
from affectflow.corpus import Corpus
from affectflow.data.normalize import Normalizer, check_pca
from affectflow.data.store import SequenceStore
from affectflow.errors import ConfigError
from affectflow.experiment import evaluate, load_model, predict, train
from affectflow.streaming import Streamer
from tests.conftest import tiny_config

SETS = ["acoustic", "visual", "physio"]
PCA_SPEC = "data.pca={acoustic: {variance: 0.9}, visual: {components: 3}}"


@pytest.fixture(scope="module")
def pca_run(tiny_corpus, tmp_path_factory):
    cfg = tiny_config(tiny_corpus.path, tmp_path_factory.mktemp("pca_runs"), PCA_SPEC, "training.epochs=2",
                      "training.seeds=[1]", "output.plots=false")
    return train(cfg, progress=False)


def _train_zscores(corpus, name):
    """The train steps of ``name`` with a value, z-scored with train statistics (what the PCA must be fitted on)."""
    store = SequenceStore(corpus, [name], [], corpus.recording_ids(["train"]))
    rows = np.concatenate([store.read(i)[name] for i in range(len(store))])
    rows = rows[np.isfinite(rows).any(1)]
    mean, std = np.nanmean(rows, 0), np.nanstd(rows, 0)
    return np.where(np.isfinite(rows), (rows - mean) / std, 0.0)


def test_pca_is_fitted_on_train_only_with_the_asked_size(pca_run, tiny_corpus):
    _, norm, ck = load_model(pca_run)
    assert set(norm.pca_) == {"acoustic", "visual"}
    for name in ["acoustic", "visual"]:
        z = _train_zscores(Corpus(tiny_corpus.path), name)
        ref = PCA(svd_solver="full").fit(z)
        mean, comp = norm.pca_[name]
        k = 3 if name == "visual" else int(np.searchsorted(np.cumsum(ref.explained_variance_ratio_), 0.9) + 1)
        assert comp.shape == (k, z.shape[1])
        np.testing.assert_allclose(mean, ref.mean_, atol=1e-4)
        # the same axes up to sign
        np.testing.assert_allclose(np.abs(np.sum(comp * ref.components_[:k], 1)), 1.0, atol=1e-3)
    assert ck["data"]["model_input_dims"] == {"acoustic": norm.pca_["acoustic"][1].shape[0], "visual": 3,
                                              "physio": ck["data"]["input_dims"]["physio"]}
    # transform = z-score, then (z - mean) C^T
    x = np.random.default_rng(0).normal(size=(7, ck["data"]["input_dims"]["visual"])).astype(np.float32)
    z, _ = Normalizer(stats_=norm.stats_).transform("visual", x)
    np.testing.assert_allclose(norm.transform("visual", x)[0], (z - norm.pca_["visual"][0]) @ norm.pca_["visual"][1].T,
                               atol=1e-5)


def test_evaluate_and_predict_apply_the_stored_pca(pca_run, tiny_corpus, tmp_path):
    import json

    metrics = json.loads((pca_run / "metrics.json").read_text())
    _, ev = evaluate(pca_run, partitions=["test"], progress=False)
    assert ev["partitions"]["test"]["arousal"]["ccc"] == pytest.approx(metrics["best"]["test"]["arousal"]["ccc"],
                                                                       abs=1e-6)
    rid = tiny_corpus.recording_ids(["test"])[0]
    out = predict(pca_run, recordings=[rid], out=tmp_path / "p", progress=False)
    ref = pd.read_csv(out / f"{rid}.csv")[["arousal", "valence"]].to_numpy()
    # streaming: raw frames in, the PCA inside the streamer, equal to offline
    store = SequenceStore(Corpus(tiny_corpus.path), SETS, [], [rid])
    np.testing.assert_allclose(Streamer(pca_run).run_array(store.read(0)), ref, atol=1e-5)


def test_exported_graph_folds_the_pca_and_equals_offline(pca_run, tiny_corpus, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from affectflow.export import export_run

    out = export_run(pca_run, tmp_path / "exp")
    import json

    info = json.loads((out / "model.json").read_text())
    assert info["normalizer"]["pca"]["visual"]["components"] == 3
    model, norm, ck = load_model(pca_run)
    rid = tiny_corpus.recording_ids(["test"])[0]
    raw = SequenceStore(Corpus(tiny_corpus.path), SETS, [], [rid]).read(0)
    t = len(raw["acoustic"])
    feeds = {"mask": np.ones((1, t), bool)}
    x, fm = {}, {}
    for n in SETS:  # the ONNX input is the D-wide normalised set (model.json statistics), PCA in the graph
        st = info["normalizer"]["stats"][n]
        feeds[f"x.{n}"] = np.where(np.isfinite(raw[n]), (raw[n] - np.array(st["mean"])) / np.array(st["std"]),
                                   0.0).astype(np.float32)[None]
        feeds[f"feature_mask.{n}"] = np.isfinite(raw[n]).any(1)[None]
        a, m = norm.transform(n, raw[n])
        x[n], fm[n] = torch.from_numpy(a)[None], torch.from_numpy(m)[None]
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0][0]
    with torch.no_grad():
        ref = model(x, torch.ones(1, t, dtype=torch.bool), fm)[0].numpy()
    assert np.abs(got - ref).max() <= 1e-4


def test_pca_config_errors(tiny_corpus, tmp_path):
    assert check_pca({"all": {"variance": 0.5}}, SETS) == {n: {"variance": 0.5} for n in SETS}
    with pytest.raises(ConfigError, match="not in `data.features`"):
        check_pca({"bert": {"variance": 0.9}}, SETS)
    with pytest.raises(ConfigError, match="variance` must be in"):
        check_pca({"acoustic": {"variance": 1.5}}, SETS)
    with pytest.raises(ConfigError, match=r"\{variance: v\}"):
        check_pca({"acoustic": {"variance": 0.5, "components": 3}}, SETS)
    with pytest.raises(ConfigError, match="at most"):
        train(tiny_config(tiny_corpus.path, tmp_path / "r", "data.pca={physio: {components: 500}}", "training.epochs=1",
                          "training.seeds=[1]"), progress=False)
    assert not (tmp_path / "r").exists()  # refused before any run folder exists
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(None, [f"data.corpus={tiny_corpus.path}", "data.features=[acoustic]",
                           "data.pca={acoustic: {components: 0}}"]).validate()
