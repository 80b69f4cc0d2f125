import numpy as np
import pandas as pd
import pytest
import torch

from affectflow.corpus import Corpus
from affectflow.data import Normalizer, SequenceStore, WindowDataset, align_to_grid, collate
from affectflow.errors import ConfigError, CorpusError


def test_store_reads_windows_equal_to_full_alignment(tiny_corpus):
    rid = tiny_corpus.recording_ids(["train"])[0]
    store = SequenceStore(tiny_corpus, ["visual", "physio"], ["arousal"], [rid])
    fr = tiny_corpus.read_features("visual", rid)
    labels = tiny_corpus.read_labels(rid)
    full = align_to_grid(fr["time"].to_numpy(), fr.iloc[:, 1:].to_numpy(), labels["time"].to_numpy(), frame_period=0.2)
    part = store.read(0, 10, 50)["visual"]
    np.testing.assert_array_equal(part, full[10:50])
    assert store.records[0].length == len(labels)
    np.testing.assert_array_equal(store.labels(0, 0, 5)[:, 0], labels["arousal"].to_numpy(np.float32)[:5])
    with pytest.raises(CorpusError, match="Targets"):
        SequenceStore(tiny_corpus, ["visual"], ["dominance"], [rid])


def test_cache_is_recomputed_when_the_source_changes(tmp_path, tiny_corpus):
    import shutil

    c = Corpus(shutil.copytree(tiny_corpus.path, tmp_path / "c"))
    rid = c.recording_ids()[0]
    before = SequenceStore(c, ["physio"], ["arousal"], [rid]).read(0)["physio"]
    fr = c.read_features("physio", rid)
    fr.iloc[:, 1:] = fr.iloc[:, 1:] + 100.0
    c.write_features("physio", rid, fr)
    after = SequenceStore(c, ["physio"], ["arousal"], [rid]).read(0)["physio"]
    np.testing.assert_allclose(after[np.isfinite(after)], before[np.isfinite(before)] + 100.0, rtol=1e-5)
    assert len(list((c.path / "cache" / "aligned" / "physio").glob(f"{rid}.*.npy"))) == 1


def test_unlabelled_recording_gets_a_regular_grid(tmp_path, tiny_corpus):
    import shutil

    c = Corpus(shutil.copytree(tiny_corpus.path, tmp_path / "c"))
    rid = c.recording_ids(["test"])[0]
    c.label_file(rid).unlink()
    store = SequenceStore(c, ["acoustic"], ["arousal"], [rid])
    dur = float(c.recording(rid)["duration"])
    assert store.records[0].y is None and store.records[0].length == int(np.floor(dur * 2 + 1e-6))
    assert np.isnan(store.labels(0)).all()


def test_normalizer_uses_train_statistics_only(tiny_corpus):
    train = SequenceStore(tiny_corpus, ["acoustic"], ["arousal"], tiny_corpus.recording_ids(["train"]))
    test = SequenceStore(tiny_corpus, ["acoustic"], ["arousal"], tiny_corpus.recording_ids(["test"]))
    norm = Normalizer("global").fit(train, [test])
    allx = np.concatenate([train.read(i)["acoustic"] for i in range(len(train))])
    mean, std = norm.stats_["acoustic"]
    np.testing.assert_allclose(mean, np.nanmean(allx, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(std, np.nanstd(allx, 0), rtol=1e-4)
    x, m = norm.transform("acoustic", test.read(0)["acoustic"])
    assert x.dtype == np.float32 and m.all()
    # round trip through the checkpoint form
    back = Normalizer.from_state_dict(norm.state_dict())
    np.testing.assert_array_equal(back.transform("acoustic", test.read(0)["acoustic"])[0], x)
    with pytest.raises(ConfigError, match="normalize"):
        Normalizer("zscore")


def test_per_subject_normalisation_centres_each_subject(tiny_corpus):
    train = SequenceStore(tiny_corpus, ["acoustic"], ["arousal"], tiny_corpus.recording_ids(["train"]))
    test = SequenceStore(tiny_corpus, ["acoustic"], ["arousal"], tiny_corpus.recording_ids(["test"]))
    norm = Normalizer("subject").fit(train, [test])
    rec = test.records[0]
    x, _ = norm.transform("acoustic", test.read(0)["acoustic"], rec.subject)
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(0), 1.0, atol=1e-3)


def test_missing_values_become_zero_with_a_mask_and_batches_pad(tiny_corpus):
    ids = tiny_corpus.recording_ids(["train"])
    store = SequenceStore(tiny_corpus, ["visual"], ["arousal", "valence"], ids)
    norm = Normalizer().fit(store)
    ds = WindowDataset(store, norm, 40, 20)
    items = [ds[k] for k in range(len(ds))]
    gaps = [it for it in items if not it["feature_mask"]["visual"].all()]
    assert gaps, "the synthetic visual set has stretches without a face"
    it = gaps[0]
    assert (it["x"]["visual"][~it["feature_mask"]["visual"]] == 0).all()
    # last window of a recording is shorter; collate pads it with a False mask
    last = max(range(len(ds)), key=lambda k: ds.items[k][1] if ds.items[k][0] == 0 else -1)
    b = collate([ds[0], ds[last]])
    n_last = ds.items[last][2] - ds.items[last][1]
    assert b["x"]["visual"].shape == (2, 40, 32) and b["y"].shape == (2, 40, 2)
    assert b["mask"][1].sum() == n_last and not b["mask"][1, n_last:].any()
    assert not b["y_mask"][1, n_last:].any()
    assert b["y_mask"].dtype == torch.bool
