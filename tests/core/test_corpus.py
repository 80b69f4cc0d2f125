import json

import numpy as np
import pandas as pd
import pytest

from affectflow.corpus import Corpus, FeatureSetInfo, LabelSetInfo
from affectflow.errors import CorpusError


@pytest.fixture
def corpus(tmp_path):
    c = Corpus.create(tmp_path / "c", name="t", label_rate_hz=2.0)
    c.set_recordings(pd.DataFrame({"id": ["a", "b"], "subject": ["1", "2"], "partition": ["train", "test"],
                                   "duration": [2.0, 3.0]}))
    c.write_feature_set_info(FeatureSetInfo("f", "audio", ["x", "y"], 2.0))
    c.write_label_set_info(LabelSetInfo("continuous", ["arousal"], 2.0))
    return c


def test_round_trip(corpus):
    frame = pd.DataFrame({"time": [0.0, 0.5, 1.0], "x": [1.0, np.nan, 3.0], "y": [4.0, 5.0, 6.0]})
    corpus.write_features("f", "a", frame)
    back = Corpus(corpus.path).read_features("f", "a")
    assert list(back.columns) == ["time", "x", "y"]
    assert back["x"].dtype == np.float32 and back["time"].dtype == np.float64
    np.testing.assert_array_equal(back["y"].to_numpy(), [4, 5, 6])
    assert np.isnan(back["x"][1])
    corpus.write_labels("a", pd.DataFrame({"time": [0.0, 0.5], "arousal": [0.1, 0.2]}))
    assert corpus.read_labels("a")["arousal"].tolist() == pytest.approx([0.1, 0.2])
    assert corpus.read_labels("b") is None
    assert corpus.recording_ids(["train"]) == ["a"]
    assert not list(corpus.path.rglob("*.tmp"))
    assert "feature set f: audio, 2 dims, 2 Hz" in corpus.summary()


def test_errors_name_what_is_wrong(corpus, tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        Corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="corpus.json is missing"):
        Corpus(tmp_path / "empty")
    with pytest.raises(CorpusError, match=r"available: \['f'\]"):
        corpus.feature_set("g")
    with pytest.raises(CorpusError, match="declares"):
        corpus.write_features("f", "a", pd.DataFrame({"time": [0.0], "x": [1.0]}))
    with pytest.raises(CorpusError, match="strictly increasing"):
        corpus.write_features("f", "a", pd.DataFrame({"time": [0.5, 0.0], "x": [1.0, 2], "y": [1.0, 2]}))
    with pytest.raises(CorpusError, match="Invalid recording id"):
        corpus.write_features("f", "../evil", pd.DataFrame({"time": [0.0], "x": [1.0], "y": [1.0]}))
    with pytest.raises(CorpusError, match="Partitions"):
        corpus.recording_ids(["dev"])
    with pytest.raises(CorpusError, match="not empty"):
        Corpus.create(corpus.path, name="again", label_rate_hz=2.0)
    meta = json.loads((corpus.path / "corpus.json").read_text())
    meta["version"] = 99
    (corpus.path / "corpus.json").write_text(json.dumps(meta))
    with pytest.raises(CorpusError, match="Upgrade affectflow"):
        Corpus(corpus.path)


def test_feature_and_label_sets_list_only_described_folders(corpus):
    (corpus.path / "features" / "undeclared").mkdir()
    (corpus.path / "labels" / "stray.json").write_text("{}")
    assert list(corpus.feature_sets) == ["f"] and corpus.feature_set("f").columns == ["x", "y"]
    assert list(corpus.label_sets) == ["continuous"]
    with pytest.raises(CorpusError, match=r"^Label set 'other' is not in corpus .*; available: \['continuous'\]\.$"):
        corpus.label_set("other")
    with pytest.raises(CorpusError, match=r"^Feature set 'undeclared' is not in corpus .*; available: \['f'\]\.$"):
        corpus.feature_set("undeclared")
