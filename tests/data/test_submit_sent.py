"""MuSe 2021 Sent submission files: one ``segment_id,class_id`` file per recording and dimension, the predicted
classes of the run, read back by the MuSe importer as segment labels."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from affectflow.errors import RunError


@pytest.fixture(scope="module")
def sent_run(tmp_path_factory):
    from affectflow.config import load_config
    from affectflow.corpus.muse import import_muse
    from affectflow.experiment import train
    from affectflow.synthetic.corpus import generate_corpus
    from affectflow.synthetic.muse import write_muse_task

    root = tmp_path_factory.mktemp("sent")
    src = generate_corpus(root / "src", n_subjects=6, duration_s=60.0, duration_jitter_s=0.0, seed=3, progress=False)
    task = write_muse_task(src, root / "task", style="2021-sent", features=["acoustic"], segment_s=10.0)
    corpus, _ = import_muse(task, root / "corpus", progress=False)
    run = train(load_config(None, [f"data.corpus={corpus.path}", f"output.runs_dir={root / 'runs'}",
                                   "data.task=segment", "data.targets=[sentiment]", "data.features=[acoustic]",
                                   "training.epochs=1", "training.seeds=[1]", "model.d_model=8",
                                   "training.device=cpu", "output.plots=false"]), progress=False)
    return run, task, corpus


def test_sent_submission_holds_the_predicted_classes_and_round_trips(sent_run, tmp_path):
    from affectflow.corpus.muse import import_muse
    from affectflow.predictions import Predictions
    from affectflow.submit import submit

    run, task, corpus = sent_run
    out = submit(run, "muse2021-sent", out=tmp_path / "sub", partitions=["devel", "test"])
    part = pd.read_csv(out / "metadata" / "partition.csv", dtype=str)
    assert list(part.columns) == ["Id", "Partition"] and set(part["Partition"]) == {"devel", "test"}
    assert sorted(part["Id"]) == sorted(corpus.recording_ids(["devel", "test"]))
    saved = Predictions.load(run / "predictions" / "test")
    want = {(str(k[0]), int(k[1])): saved.specs[0].classes[int(c)]
            for k, c in zip(saved.keys, saved.predicted()["sentiment"])}
    got = {}
    for f in (out / "label_segments" / "sentiment").glob("*.csv"):
        df = pd.read_csv(f)
        assert list(df.columns) == ["segment_id", "class_id"] and df["segment_id"].is_monotonic_increasing
        got.update({(f.stem, int(s)): int(c) for s, c in zip(df["segment_id"], df["class_id"])})
    assert {k: v for k, v in got.items() if k in want} == want and len(want) > 3
    # the submission is the MuSe-Sent label layout: with the features beside it, the importer reads it back
    shutil.copytree(task / "feature_segments", out / "feature_segments")
    back, _ = import_muse(out, tmp_path / "back", progress=False)
    seg = back.segments()
    read = {(str(r), int(s)): int(c) for r, s, c in zip(seg["recording"], seg["segment_id"], seg["sentiment"])}
    assert read == got


def test_sent_format_refuses_other_tasks(sent_run, tiny_run, tmp_path):
    from affectflow.submit import submit

    with pytest.raises(RunError, match="'muse2021-sent' is for 'segment' runs"):
        submit(tiny_run, "muse2021-sent", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
