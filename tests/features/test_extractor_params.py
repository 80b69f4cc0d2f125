"""Extractors as keyword-only dataclasses (every built-in one): parameters, defaults and params() are declared once,
and the stored parameters and config hashes are those of the earlier hand-written constructors, so features
extracted before the change are reused, not extracted again."""

import dataclasses

import pytest

from affectflow.errors import ConfigError
from affectflow.features.base import EXTRACTORS
from affectflow.features.pipeline import extract, load_builtin_extractors, read_record

from .test_pipeline import corpus, media_dir  # noqa: F401 - fixtures

load_builtin_extractors()

#: name → [(constructor arguments, config hash written by the constructors before this change)]; params() of the
#: defaults were recorded too and are checked below by their hash (json of name + params).
BEFORE = {
    "hrv": [({}, "96b293a57ef8f718"), ({"rate_hz": 4.0, "edge": "truncate"}, "0fc70985e47dd6a1")],
    "physio_rates": [({}, "00b7c4cd5c74d4c0"), ({"eda_channel": "GSR"}, "8ee26dc2d0360d74")],
    "physio_raw": [({}, "f1bec49594c4ac3e"), ({"channels": ["ECG"], "sg_window": 1.0}, "3f389618c2f57bb7"),
                   ({"channels": ["ECG"]}, "ad8612dc76b5d109")],
    "phys": [({}, "367be741d673b8af"), ({"bpm_from_ecg": False, "win_dur": 6.0}, "19ac6688cd844a17")],
    "word_vad": [({}, "248b30115ccecfe4"), ({"lemmatize": False}, "2c438c708cf2d903")],
    "sentence_embedding": [({}, "0f0cb23e303db804"), ({"batch_size": 8}, "32aad4f6a8af955e")],
    "word_embedding": [({}, "71a69bd1dc48377f"), ({"layers": [-1]}, "59117e72957f561b")],
    "face_landmarks": [({}, "5af9ca5db7ed0ba2"), ({"landmarks": True}, "4bff981e114bfc2a")],
    "head_pose": [({}, "0f3031a6eab309a0"), ({"rate_hz": None}, "fc2d6754ec9f9100")],
    "fer": [({}, "678b89c37749d783")],
    "face_embedding": [({}, "e548f5bd0b4ea13a")],
    "egemaps": [({}, "431fd06d1ab6d9fc"), ({"win_dur": 2.0}, "d536a56888664f98")],
    "egemaps_lld": [({}, "9ba72f3488613ad2"), ({"voiced_only": False}, "957d42b1257c95de")],
    "ssl": [({"model_dir": "/m"}, "bbfa5c05b2d579b0"), ({"model_dir": "/m", "layers": [1, 2]}, "7107257ff70bfd30")],
    "vad": [({}, "972e9839a18ded26"), ({"threshold": 0.6}, "3552a35b6c6a2990")],
    # converted later (hashes recorded with their hand-written constructors on main 1404853)
    "logmel": [({}, "9aac88cd982c3551"), ({"n_mels": 32}, "f532530d59a2dcce"),
               ({"rate_hz": 25.0, "n_mels": 40, "n_fft": 1024, "fmax": 8000.0}, "26fa214151f365b5")],
    "logmel_patches": [({}, "8ed2712e14bdf979"), ({"n_frames": 48}, "c85498b82d215548"),
                       ({"rate_hz": 5, "n_frames": 32, "frame_hop": 0.02, "win_dur": 0.05}, "0adf43b0c3adabb1")],
    "crop_pixels": [({}, "c95c41c75adf53f9"), ({"grid": 4}, "b5d32acf77b71879"),
                    ({"rate_hz": 10.0, "grid": 4}, "37251ccdcfa90775")],
    "face_crops": [({}, "29d7c59e81a83b3a"), ({"size": 32}, "73dbd3950dbacd57"),
                   ({"rate_hz": 30, "size": 112}, "c97195bbcc7d808c")],
}

#: params() of the defaults as the hand-written constructors gave them (the same values; logmel_patches now lists
#: its own two parameters after logmel's, a dataclass subclass's order: the hash sorts the keys, so it is unmoved).
HAND_WRITTEN_DEFAULTS = {
    "logmel": {"rate_hz": 2.0, "n_mels": 64, "win_dur": 0.025, "n_fft": None, "fmin": 125.0, "fmax": 7500.0,
               "sample_rate": 16000, "log_offset": 0.01},
    "logmel_patches": {"rate_hz": 2.0, "n_frames": 96, "frame_hop": 0.01, "n_mels": 64, "win_dur": 0.025,
                       "n_fft": None, "fmin": 125.0, "fmax": 7500.0, "sample_rate": 16000, "log_offset": 0.01},
    "crop_pixels": {"rate_hz": None, "grid": 8},
    "face_crops": {"rate_hz": None, "size": 48},
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_dataclass_extractors_keep_their_params_and_hashes(name):
    cls = EXTRACTORS.get(name)
    assert dataclasses.is_dataclass(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    assert all(f.kw_only for f in fields)
    for kwargs, old_hash in BEFORE[name]:
        ex = EXTRACTORS.build(name, kwargs)
        assert list(ex.params()) == [f.name for f in fields]  # params() is the declared fields, in order
        assert ex.config_hash() == old_hash, (name, kwargs, ex.params())
    with pytest.raises(TypeError):
        cls(2.0)  # keyword-only


def test_every_builtin_extractor_is_a_keyword_only_dataclass():
    builtin = [n for n in EXTRACTORS.names() if EXTRACTORS.get(n).__module__.startswith("affectflow.")]
    assert sorted(builtin) == sorted(BEFORE)  # a new extractor: add its hashes above
    assert all(dataclasses.is_dataclass(EXTRACTORS.get(n)) for n in builtin)


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN_DEFAULTS))
def test_converted_extractors_keep_their_params(name):
    assert EXTRACTORS.build(name, {}).params() == HAND_WRITTEN_DEFAULTS[name]


def test_dataclass_extractors_still_validate():
    with pytest.raises(ConfigError, match="non-empty list of distinct names"):
        EXTRACTORS.build("physio_raw", {"channels": []})
    with pytest.raises(ConfigError, match="edge must be one of"):
        EXTRACTORS.build("hrv", {"edge": "wrap"})
    with pytest.raises(ConfigError, match="needs `model_dir`"):
        EXTRACTORS.build("ssl", {})
    with pytest.raises(ConfigError, match="at least 0.1 s"):
        EXTRACTORS.build("egemaps", {"win_dur": 0.05})
    with pytest.raises(ConfigError, match="crop_margin"):
        EXTRACTORS.build("fer", {"crop_margin": 2.0})
    with pytest.raises(ConfigError, match="unknown|Unknown|not a parameter|valid"):
        EXTRACTORS.build("hrv", {"rate": 2.0})
    with pytest.raises(ConfigError, match=r"need 0 <= fmin < min\(fmax, sample_rate/2\); got fmin=9000"):
        EXTRACTORS.build("logmel", {"fmin": 9000.0})
    with pytest.raises(ConfigError, match=r"`n_fft` \(256\) is shorter than the window \(800 samples\)"):
        EXTRACTORS.build("logmel_patches", {"win_dur": 0.05, "n_fft": 256})
    with pytest.raises(ConfigError, match="`n_frames` must be an integer in 1..1024"):
        EXTRACTORS.build("logmel_patches", {"n_frames": 0})
    with pytest.raises(ConfigError, match="crop_pixels: grid must be an integer in 1..32"):
        EXTRACTORS.build("crop_pixels", {"grid": 33})
    with pytest.raises(ConfigError, match="face_crops: rate_hz must be a positive number or null"):
        EXTRACTORS.build("face_crops", {"rate_hz": -1})


def test_features_extracted_with_the_earlier_constructors_are_reused(corpus):  # noqa: F811 - fixture
    params = {"channels": ["ECG"]}
    first = extract(corpus, {"raw": EXTRACTORS.build("physio_raw", params)}, progress=False)
    done = {r.recording for r in first.results if r.status == "done"}
    assert done == {"rec0", "rec1"}
    # the stored record carries the hash the earlier constructor gave these parameters ...
    assert {read_record(corpus, "raw", r)["config_hash"] for r in done} == {"ad8612dc76b5d109"}
    # ... so a corpus extracted before the change is current: nothing is extracted again
    again = extract(corpus, {"raw": EXTRACTORS.build("physio_raw", params)}, progress=False)
    assert {r.recording: r.status for r in again.results if r.recording in done} == {"rec0": "skipped",
                                                                                        "rec1": "skipped"}


def test_feature_frame_is_time_float64_then_the_columns_float32():
    import numpy as np

    from affectflow.features.base import feature_frame

    f = feature_frame([0.0, 0.5], np.array([[1.0, np.nan], [3.0, 4.0]]), ("a", "b"))
    assert list(f.columns) == ["time", "a", "b"] and f["time"].tolist() == [0.0, 0.5]
    assert f["time"].dtype == np.float64 and f["a"].dtype == np.float32 and np.isnan(f["b"][0])
    empty = feature_frame([], np.empty((0, 2)), ["a", "b"])
    assert len(empty) == 0 and list(empty.columns) == ["time", "a", "b"] and empty["b"].dtype == np.float32
