"""Causal streaming equals the offline whole-recording prediction step for step; non-causal models are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectflow.corpus import Corpus
from affectflow.data.store import SequenceStore
from affectflow.experiment import load_model, predict
from affectflow.models.small import SMALL_SETTINGS
from affectflow.streaming import Streamer, StreamingError
from tests.deploy.helpers import fake_run, raw_frames

# causal variants of every small architecture that has one (name, extra params, expected strategy)
CAUSAL = [
    ("gru", {}, "state"),
    ("composite", {}, "state"),
    ("lstm", {}, "state"),
    ("late_average", {}, "state"),
    ("sa_lstm", {"causal": True}, "history"),
    ("gcnn_lstm", {"causal": True}, "history"),
    ("transformer", {"causal": True}, "history"),
    ("way1", {"causal": True}, "history"),
    ("mbconv", {"causal": True}, "history"),
    ("tcn", {}, "window"),
    ("leader_follower_tcn", {}, "window"),
    ("channel_attention_tcn", {}, "window"),
]
NON_CAUSAL = [("gru", {"bidirectional": True}, "bidirectional"), ("transformer", {}, "causal` parameter is false"),
              ("way2", {}, "look ahead"), ("late_fusion_bilstm", {}, "bidirectional")]


def _offline(run, frames):
    model, norm, _ = load_model(run)
    x, fm = {}, {}
    for n, v in frames.items():
        a, m = norm.transform(n, v)
        x[n], fm[n] = torch.from_numpy(a)[None], torch.from_numpy(m)[None]
    t = len(next(iter(frames.values())))
    with torch.no_grad():
        return model(x, torch.ones(1, t, dtype=torch.bool), fm)[0].numpy()


@pytest.mark.parametrize("name,extra,strategy", CAUSAL, ids=[c[0] for c in CAUSAL])
def test_streaming_equals_offline_causal_prediction(name, extra, strategy, tmp_path):
    run = fake_run(tmp_path / "run", name, {**SMALL_SETTINGS[name], **extra})
    frames = raw_frames(70, seed=1)  # with missing steps and missing values
    s = Streamer(run)
    assert s.strategy == strategy
    streamed = s.run_array(frames)
    np.testing.assert_allclose(streamed, _offline(run, frames), atol=1e-5, rtol=0)
    # reset starts a new stream; a clone is an independent stream
    s.reset()
    other = s.clone()
    np.testing.assert_allclose(s.run_array({k: v[:10] for k, v in frames.items()}), streamed[:10], atol=1e-6)
    np.testing.assert_allclose(other.run_array({k: v[:5] for k, v in frames.items()}), streamed[:5], atol=1e-6)


@pytest.mark.parametrize("name,extra,why", NON_CAUSAL, ids=[c[0] for c in NON_CAUSAL])
def test_non_causal_models_are_refused(name, extra, why, tmp_path):
    run = fake_run(tmp_path / "run", name, {**SMALL_SETTINGS[name], **extra})
    with pytest.raises(StreamingError, match="not causal") as e:
        Streamer(run)
    assert why in str(e.value)


def test_step_contract(tmp_path):
    run = fake_run(tmp_path / "run", "gru", SMALL_SETTINGS["gru"])
    s = Streamer(run)
    assert s.feature_sets == ["acoustic", "visual", "physio"] and s.targets == ["arousal", "valence"]
    assert s.columns["visual"] == ["visual0", "visual1", "visual2", "visual3"] and s.label_rate_hz == 2.0
    out = s.step({"acoustic": np.zeros(6), "visual": None})  # absent / None sets are missing
    assert set(out) == {"arousal", "valence"} and s.time == 0.5
    with pytest.raises(StreamingError, match="has 5 values, the run expects 6"):
        s.step({"acoustic": np.zeros(5)})
    with pytest.raises(StreamingError, match="Unknown feature sets"):
        s.step({"face": np.zeros(5)})


def test_streaming_a_trained_run_equals_its_offline_predictions(tiny_run, tiny_corpus, tmp_path):
    rid = tiny_corpus.recording_ids(["test"])[0]
    out = predict(tiny_run, recordings=[rid], out=tmp_path / "p", progress=False)
    import pandas as pd

    ref = pd.read_csv(out / f"{rid}.csv")[["arousal", "valence"]].to_numpy()
    store = SequenceStore(Corpus(tiny_corpus.path), ["acoustic", "visual", "physio"], [], [rid])
    np.testing.assert_allclose(Streamer(tiny_run).run_array(store.read(0)), ref, atol=1e-5)
