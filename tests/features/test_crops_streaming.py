"""Raw pixel sets in bounded memory: face_crops extracted block by block into the feature file, and the uint8
aligned cache built block by block, both equal to the one-pass results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affectflow.corpus.corpus import Corpus, FeatureSetInfo
from affectflow.data import store as store_mod
from affectflow.data.align import align_to_grid
from affectflow.data.store import SequenceStore, _to_uint8
from affectflow.features import EXTRACTORS, MediaRecording
from affectflow.features.pipeline import extract
from affectflow.synthetic.media import generate_media_corpus


def _corpus(path, times, values, rate, label_rate):
    cols = [f"c{i}" for i in range(values.shape[1])]
    c = Corpus.create(path, name="c", label_rate_hz=label_rate)
    dur = float(times[-1]) + 0.5
    c.set_recordings(pd.DataFrame({"id": ["r"], "subject": ["s"], "partition": ["train"], "duration": [dur]}))
    c.write_feature_set_info(FeatureSetInfo("px", "video", cols, rate, {"extractor": "face_crops", "params": {},
                                                                           "storage": "uint8"}))
    blocks = [pd.DataFrame(values[s:s + 7], columns=cols).assign(time=times[s:s + 7])[["time", *cols]]
              for s in range(0, len(times), 7)]  # several row groups
    assert c.write_feature_blocks("px", "r", blocks) == len(times)
    pd.testing.assert_frame_equal(c.read_features("px", "r").reset_index(drop=True),
                                  pd.DataFrame(values, columns=cols).astype(np.float32).assign(time=times)[
                                      ["time", *cols]])
    return c, dur


@pytest.mark.parametrize("rate,label_rate,gaps", [(30.0, 30.0, False), (30.0, 7.0, True), (10.0, 25.0, True),
                                                  (None, 30.0, True)])
def test_blockwise_uint8_alignment_equals_the_one_pass_alignment(tmp_path, monkeypatch, rate, label_rate, gaps):
    rng = np.random.default_rng(0)
    n = 200
    step = 1 / (rate or 29.97)
    times = np.arange(n) * step + (rng.uniform(-0.2, 0.2, n) * step if rate is None else 0)
    if gaps:  # a stretch without frames and missing crops
        times = np.delete(times, np.s_[60:90])
    values = np.rint(rng.uniform(0, 255, (len(times), 12))) / 255
    values[rng.random(len(times)) < 0.1] = np.nan
    c, dur = _corpus(tmp_path / "c", times, values.astype(np.float32), rate, label_rate)
    monkeypatch.setattr(store_mod, "ALIGN_BLOCK", 16)
    monkeypatch.setattr(SequenceStore._align_uint8_blocks, "__defaults__", (16,))
    s = SequenceStore(c, ["px"], [], ["r"], grid_rate_hz=label_rate)
    grid = s.records[0].times
    want = _to_uint8(align_to_grid(times, values.astype(np.float32), grid,
                                   frame_period=(1 / rate) if rate else None))
    got = np.load(s.records[0].arrays["px"], mmap_mode="r")
    np.testing.assert_array_equal(got, want)


def test_face_crops_extraction_streams_blocks_into_the_same_file(tmp_path):
    c = generate_media_corpus(tmp_path / "mc", n_subjects=3, duration_s=4.0, seed=0, audio=False, physio=False,
                              transcript=False, video_size=24, video_fps=10)
    rep = extract(c.path, {"face_crops": {"size": 6, "rate_hz": None}}, progress=False)
    assert rep.ok
    ex = EXTRACTORS.build("face_crops", {"size": 6})
    rid = c.recording_ids()[0]
    video = c.path / "media" / f"{rid}.mp4"
    whole = ex.extract(MediaRecording(id=rid, video=video))
    blocks = list(ex.extract_blocks(MediaRecording(id=rid, video=video), block=7))
    assert len(blocks) == -(-len(whole) // 7) and all(len(b) == 7 for b in blocks[:-1])
    stored = c.read_features("face_crops", rid)
    pd.testing.assert_frame_equal(stored, whole)
    pd.testing.assert_frame_equal(pd.concat(blocks, ignore_index=True), whole)
    assert len(whole) == 40


def test_block_writer_refuses_bad_blocks_and_leaves_nothing(tmp_path):
    c, _ = _corpus(tmp_path / "c", np.arange(5) / 10, np.zeros((5, 2), np.float32), 10.0, 10.0)
    bad = [pd.DataFrame({"time": [0.0, 0.1], "c0": [0.0, 0.0], "c1": [0.0, 0.0]}),
           pd.DataFrame({"time": [0.1, 0.2], "c0": [0.0, 0.0], "c1": [0.0, 0.0]})]
    from affectflow.errors import CorpusError

    with pytest.raises(CorpusError, match="strictly increasing"):
        c.write_feature_blocks("px", "r2", bad)
    with pytest.raises(CorpusError, match="other columns"):
        c.write_feature_blocks("px", "r2", [pd.DataFrame({"time": [0.0], "c0": [0.0]})])
    assert not c.feature_file("px", "r2").exists()
