import numpy as np
import pandas as pd

from affectflow.metrics import ccc
from affectflow.synthetic.corpus import generate_corpus


def test_same_seed_same_corpus_and_structure(tmp_path):
    a = generate_corpus(tmp_path / "a", n_subjects=5, duration_s=60, seed=7, progress=False)
    b = generate_corpus(tmp_path / "b", n_subjects=5, duration_s=60, seed=7, progress=False)
    c = generate_corpus(tmp_path / "c", n_subjects=5, duration_s=60, seed=8, progress=False)
    rid = a.recording_ids()[0]
    pd.testing.assert_frame_equal(a.read_features("visual", rid), b.read_features("visual", rid))
    pd.testing.assert_frame_equal(a.read_labels(rid), b.read_labels(rid))
    assert not a.read_labels(rid).equals(c.read_labels(rid))
    assert set(a.feature_sets) == {"acoustic", "visual", "embedding", "physio", "noise"}
    assert a.feature_set("embedding").dim == 256 and a.feature_set("visual").rate_hz == 5.0
    assert set(a.recordings["partition"]) == {"train", "devel", "test"}
    # missing frames: NaN rows in visual; absent rows in physio
    assert any(a.read_features("visual", r).iloc[:, 1:].isna().all(axis=1).any() for r in a.recording_ids())
    dur = a.recordings.set_index("id")["duration"]
    assert all(len(a.read_features("physio", r)) < np.ceil(dur[r] * 2) for r in a.recording_ids())
    assert a.segments()["sentiment"].between(0, 4).all() and len(a.clips()) == 5


def test_labels_are_delayed_noisy_versions_of_the_clean_labels(tmp_path):
    c = generate_corpus(tmp_path / "c", n_subjects=4, duration_s=120, seed=1, label_delay_s=2.0, progress=False)
    rid = c.recording_ids()[0]
    noisy, clean = c.read_labels(rid), c.read_labels(rid, "continuous_clean")
    assert 0.85 < ccc(clean["arousal"], noisy["arousal"]) < 0.999
    # the acoustic features carry arousal at the frame time: best lag is the label delay (4 steps at 2 Hz)
    x = c.read_features("acoustic", rid).iloc[:, 1:].to_numpy()
    pc1 = (x - x.mean(0)) @ np.linalg.svd(x - x.mean(0), full_matrices=False)[2][0]
    a = clean["arousal"].to_numpy()
    n = min(len(a), len(pc1))
    lags = range(0, 9)
    corr = [abs(np.corrcoef(a[lag:n], pc1[: n - lag])[0, 1]) for lag in lags]
    assert int(np.argmax(corr)) == 4
