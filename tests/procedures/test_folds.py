"""Partition maps and subject-disjoint folds."""

from __future__ import annotations

import pandas as pd
import pytest

from affectflow.config import load_config
from affectflow.corpus.corpus import Corpus, read_partition_map, write_partition_map
from affectflow.errors import ConfigError, CorpusError
from affectflow.procedures.folds import cv_folds, subject_groups


def test_partition_map_is_a_view_of_the_corpus(tmp_path, tiny_corpus):
    ids = tiny_corpus.recording_ids(["train"])
    p = write_partition_map(tmp_path / "m.csv", {ids[0]: "devel", ids[1]: "heldout"})
    c = Corpus(tiny_corpus.path, partitions=p)
    assert c.recording(ids[0])["partition"] == "devel" and c.recording(ids[1])["partition"] == "heldout"
    assert c.recording_ids(["heldout"]) == [ids[1]]
    assert set(c.recording_ids(["train"])) == set(ids[2:])  # unlisted recordings keep their partition
    assert tiny_corpus.recording(ids[0])["partition"] == "train"  # the corpus itself is unchanged
    with pytest.raises(CorpusError, match="partition map"):
        c.set_recordings(c.recordings)
    with pytest.raises(CorpusError, match="does not exist"):
        Corpus(tiny_corpus.path, partitions=tmp_path / "missing.csv").recordings
    write_partition_map(tmp_path / "other.csv", {"NOPE_rec": "train"})
    with pytest.raises(CorpusError, match="another corpus"):
        Corpus(tiny_corpus.path, partitions=tmp_path / "other.csv").recordings
    (tmp_path / "bad.csv").write_text("rec,part\na,b\n")
    with pytest.raises(CorpusError, match="columns id, partition"):
        read_partition_map(tmp_path / "bad.csv")
    cfg = load_config(None, [f"data.corpus={tiny_corpus.path}", f"data.partitions={p}"])
    assert cfg.data.partitions == str(p)


def _sides(corpus, fold):
    subj = dict(zip(corpus.recordings["id"], corpus.recordings["subject"]))
    dev = {subj[r] for r, part in fold.mapping.items() if part == "devel"}
    tr = {subj[r] for r, part in fold.mapping.items() if part != "devel"}
    return dev, tr


def test_cv_folds_are_subject_disjoint_reproducible_and_cover_everyone(tiny_corpus):
    rec = tiny_corpus.recordings
    pool = set(rec.loc[rec["partition"].isin(["train", "devel"]), "subject"])
    folds = cv_folds(tiny_corpus, 4, seed=5)
    assert len(folds) == 4
    # fold 0 is the corpus's own split
    assert set(folds[0].devel_subjects) == set(rec.loc[rec["partition"] == "devel", "subject"])
    assert all(folds[0].mapping[r] == p for r, p in zip(rec["id"], rec["partition"]) if p != "test")
    devels = []
    for f in folds:
        dev, tr = _sides(tiny_corpus, f)
        assert dev and tr and not dev & tr  # never one subject on both sides
        assert dev | tr == pool
        assert not set(f.mapping) & set(tiny_corpus.recording_ids(["test"]))  # test is never re-assigned
        devels.append(dev)
    assert set().union(*devels) == pool and sum(len(d) for d in devels) == len(pool)  # each subject devel once
    assert max(len(d) for d in devels[1:]) - min(len(d) for d in devels[1:]) <= 1  # even split
    again = cv_folds(tiny_corpus, 4, seed=5)
    assert [f.mapping for f in again] == [f.mapping for f in folds]
    assert [f.mapping for f in cv_folds(tiny_corpus, 4, seed=6)] != [f.mapping for f in folds]


def test_loso_and_resplit_and_errors(tmp_path, tiny_corpus):
    rec = tiny_corpus.recordings
    pool = sorted(set(rec.loc[rec["partition"].isin(["train", "devel"]), "subject"]))
    loso = cv_folds(tiny_corpus, 0, loso=True)
    assert [f.devel_subjects for f in loso] == [[s] for s in pool]
    for f in loso:
        dev, tr = _sides(tiny_corpus, f)
        assert not dev & tr and len(tr) == len(pool) - 1
    re = cv_folds(tiny_corpus, 3, seed=1, keep_original=False)
    assert sorted(s for f in re for s in f.devel_subjects) == pool
    with pytest.raises(ConfigError, match="subject-disjoint groups"):
        subject_groups(pool, len(pool) + 1, 0)
    # a corpus whose own split shares a subject between train and devel cannot be fold 0
    table = rec.copy()
    dev_id = table.loc[table["partition"] == "devel", "id"].iloc[0]
    tr_subject = table.loc[table["partition"] == "train", "subject"].iloc[0]
    table.loc[table["id"] == dev_id, "subject"] = tr_subject
    leaky = Corpus.create(tmp_path / "leaky", name="leaky", label_rate_hz=2.0)
    leaky.set_recordings(table)
    with pytest.raises(CorpusError, match="not subject-disjoint"):
        cv_folds(leaky, 3)
    assert cv_folds(leaky, 3, keep_original=False)  # re-splitting by subject works
    pd.testing.assert_frame_equal(tiny_corpus.recordings, rec)
