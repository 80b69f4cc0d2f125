import json

import numpy as np
import pandas as pd
import pytest

from affectflow.corpus.muse import import_muse, subject_of
from affectflow.errors import ImportFormatError
from affectflow.synthetic.corpus import generate_corpus
from affectflow.synthetic.muse import write_muse_task


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("src") / "c", n_subjects=4, duration_s=200.0,
                           duration_jitter_s=10.0, seed=11, progress=False)


def test_2023_personalisation_ids_map_to_subjects(source, tmp_path):
    task = write_muse_task(source, tmp_path / "task", style="2023", features=["acoustic", "physio"])
    corpus, report = import_muse(task, tmp_path / "out", progress=False)
    rec = corpus.recordings.set_index("id")
    assert rec.loc["0_train", "subject"] == "0" and rec.loc["0_test", "partition"] == "test"
    assert subject_of("S12_devel") == "S12" and subject_of("17") == "17"
    assert corpus.label_rate_hz == 2.0 and corpus.feature_set("acoustic").rate_hz == 2.0
    # values survive the round trip (ms -> s, float32)
    orig = source.read_labels(source.recording_ids()[0])
    got = corpus.read_labels("0_devel")
    sel = (orig["time"] >= 60) & (orig["time"] < 120)
    np.testing.assert_allclose(got["valence"], orig.loc[sel, "valence"], atol=1e-6)
    # physio has absent frames in the synthetic corpus: counted, not hidden
    assert report.feature_sets["physio"]["label_steps_unmatched"] > 0
    assert report.feature_sets["acoustic"]["label_steps_unmatched"] == 0
    assert json.loads((corpus.path / "reports" / "import.json").read_text())["recordings"] == 12


def test_join_is_by_timestamp_not_row_order_and_problems_are_reported(source, tmp_path):
    task = write_muse_task(source, tmp_path / "task", style="2022", features=["acoustic"])
    lab = task / "label_segments" / "arousal" / "0.csv"
    df = pd.read_csv(lab)
    shuffled = df.sample(frac=1.0, random_state=0)
    pd.concat([shuffled, shuffled.iloc[:3]]).to_csv(lab, index=False)  # unsorted + 3 duplicates
    feat = task / "feature_segments" / "acoustic" / "1.csv"
    fd = pd.read_csv(feat)
    fd.iloc[5:9, 3] = np.nan
    fd.to_csv(feat, index=False)
    (task / "label_segments" / "valence" / "2.csv").unlink()
    corpus, report = import_muse(task, tmp_path / "out", progress=False)
    got = corpus.read_labels("0")
    np.testing.assert_allclose(got["arousal"].to_numpy(), df["value"].to_numpy(), atol=1e-6)
    assert report.label_dims["arousal"]["duplicates"] == 3
    assert any("not sorted" in w and "0.csv" in w for w in report.warnings)
    assert report.feature_sets["acoustic"]["nan_rows"] == 4
    assert any(str(task / "label_segments" / "valence" / "2.csv") == f for f in report.missing_files)
    assert corpus.read_labels("2")["valence"].isna().all()  # missing dim -> NaN, arousal kept
    assert "duplicate timestamps" in report.summary()


def test_wrong_types_and_layout_errors_list_files(source, tmp_path):
    task = write_muse_task(source, tmp_path / "task", style="2022", features=["acoustic"])
    f = task / "feature_segments" / "acoustic" / "1.csv"
    fd = pd.read_csv(f)
    fd["acoustic_003"] = fd["acoustic_003"].astype(object)
    fd.loc[2, "acoustic_003"] = "0,5x"
    fd.to_csv(f, index=False)
    g = task / "feature_segments" / "acoustic" / "2.csv"
    pd.read_csv(g).drop(columns=["timestamp"]).to_csv(g, index=False)
    with pytest.raises(ImportFormatError) as e:
        import_muse(task, tmp_path / "out", progress=False)
    msg = str(e.value)
    assert "2 problem(s)" in msg and "1.csv: non-numeric values in columns ['acoustic_003']" in msg
    assert "2.csv: no 'timestamp' column" in msg
    assert not (tmp_path / "out").exists()
    with pytest.raises(ImportFormatError, match="metadata/partition.csv"):
        import_muse(tmp_path, tmp_path / "out2", progress=False)
    with pytest.raises(ImportFormatError, match=r"Feature sets \['nope'\] are not folders"):
        import_muse(task, tmp_path / "out3", features=["nope"], progress=False)


def test_sent_segment_labels(source, tmp_path):
    task = write_muse_task(source, tmp_path / "task", style="2021-sent", features=["acoustic"], segment_s=10.0)
    corpus, _ = import_muse(task, tmp_path / "out", progress=False)
    seg = corpus.segments()
    assert set(seg.columns) >= {"recording", "segment_id", "start", "end", "sentiment"}
    first = seg[(seg["recording"] == "0") & (seg["segment_id"] == 1)].iloc[0]
    assert first["start"] == pytest.approx(10.0) and first["end"] == pytest.approx(20.0)
    assert corpus.label_set().dims == ["arousal", "valence"]


def test_personalisation_corpus_exports_in_the_baseline_layout_and_round_trips(tmp_path):
    # the layout EIHW/MuSe-2023 reads: ids and partitions kept, labels under physio-arousal/ and valence/,
    # feature rows = label rows (the baseline joins them by row position)
    src = generate_corpus(tmp_path / "p", n_subjects=5, duration_s=130.0, duration_jitter_s=0.0,
                          layout="personalisation", seed=3, progress=False)
    task = write_muse_task(src, tmp_path / "task", features=["acoustic"], keep_ids=True,
                           dim_names={"arousal": "physio-arousal"})
    part = pd.read_csv(task / "metadata" / "partition.csv")
    rec = src.recordings
    assert dict(zip(part["Id"], part["Partition"])) == dict(zip(rec["id"], rec["partition"]))
    test_subjects = rec.loc[rec["partition"] == "test", "subject"].unique()
    assert len(test_subjects) >= 1
    s = test_subjects[0]
    assert {f"{s}_train", f"{s}_devel", f"{s}_test"} <= set(part["Id"])
    assert sorted(p.name for p in (task / "label_segments").iterdir()) == ["physio-arousal", "valence"]
    for rid in part["Id"]:
        feats = pd.read_csv(task / "feature_segments" / "acoustic" / f"{rid}.csv")
        labs = pd.read_csv(task / "label_segments" / "physio-arousal" / f"{rid}.csv")
        assert list(feats.columns[:2]) == ["timestamp", "segment_id"] and feats.shape[1] == 2 + 88
        np.testing.assert_array_equal(feats["timestamp"].to_numpy(), labs["timestamp"].to_numpy())
        np.testing.assert_allclose(labs["value"], src.read_labels(rid)["arousal"], atol=1e-12)
    corpus, _ = import_muse(task, tmp_path / "back", progress=False)
    got = corpus.recordings.set_index("id")
    assert got.loc[f"{s}_devel", "subject"] == s and got.loc[f"{s}_test", "partition"] == "test"
    rid = f"{s}_test"
    np.testing.assert_allclose(corpus.read_labels(rid)["physio-arousal"], src.read_labels(rid)["arousal"], atol=1e-6)
    np.testing.assert_allclose(corpus.read_features("acoustic", rid).drop(columns="time").to_numpy(),
                               src.read_features("acoustic", rid).drop(columns="time").to_numpy(), atol=1e-6)
