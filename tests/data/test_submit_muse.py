"""MuSe 2023 submission files: the label layout in ms, read back by the MuSe importer; format/task checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affectflow.corpus.muse import import_muse
from affectflow.errors import RunError
from affectflow.submit import submit


def test_muse2023_submission_round_trips_through_the_importer(tiny_run, tmp_path):
    out = submit(tiny_run, "muse2023", out=tmp_path / "sub", partitions=["devel", "test"])
    part = pd.read_csv(out / "metadata" / "partition.csv", dtype=str)
    assert list(part.columns) == ["Id", "Partition"] and set(part["Partition"]) == {"devel", "test"}
    rid = part["Id"].iloc[0]
    f = pd.read_csv(out / "label_segments" / "arousal" / f"{rid}.csv")
    assert list(f.columns) == ["timestamp", "value"] and f["timestamp"].dtype.kind == "i"
    assert np.all(np.diff(f["timestamp"]) == 500)  # 2 Hz grid in milliseconds
    # add a feature folder (the importer needs one) and read the submission back as labels
    for r in part["Id"]:
        ts = pd.read_csv(out / "label_segments" / "arousal" / f"{r}.csv")["timestamp"]
        d = out / "feature_segments" / "dummy"
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": ts, "segment_id": 0, "x": 0.0}).to_csv(d / f"{r}.csv", index=False)
    corpus, _ = import_muse(out, tmp_path / "back", progress=False)
    back = corpus.read_labels(rid)
    from affectflow.experiment import predict

    pred = pd.read_csv(predict(tiny_run, recordings=[rid], out=tmp_path / "p", progress=False) / f"{rid}.csv")
    np.testing.assert_allclose(back["time"], pred["time"], atol=5e-4)
    for t in ("arousal", "valence"):
        np.testing.assert_allclose(back[t], pred[t], atol=1e-5)


def test_submit_refuses_formats_that_do_not_fit_the_run(tiny_run, tmp_path):
    with pytest.raises(RunError, match="'mer2023' is for 'clip' runs"):
        submit(tiny_run, "mer2023", out=tmp_path / "x")
    with pytest.raises(RunError, match="Unknown submission format"):
        submit(tiny_run, "kaggle", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_submit_a_fused_run(tmp_path):
    """A fused run (affectflow fuse) submits like a trained one: its members predict, its weights combine."""
    from affectflow.config import load_config
    from affectflow.experiment import run_predictions, train
    from affectflow.procedures.fuse import fuse_runs
    from affectflow.synthetic.corpus import generate_corpus

    c = generate_corpus(tmp_path / "c", n_subjects=6, duration_s=40.0, duration_jitter_s=0.0, seed=1, progress=False)
    runs = [train(load_config(None, [f"data.corpus={c.path}", f"output.runs_dir={tmp_path / 'runs'}",
                                     f"data.features=[{f}]", "training.epochs=1", "training.seeds=[1]",
                                     "model.d_model=8", "data.window.size=20", "data.window.hop=10",
                                     "training.device=cpu"]), progress=False)
            for f in ("acoustic", "visual")]
    fused = fuse_runs(runs, method="mean", out=tmp_path / "fused")
    out = submit(fused, "muse2023", out=tmp_path / "sub")
    rid = c.recording_ids(["test"])[0]
    sub = pd.read_csv(out / "label_segments" / "valence" / f"{rid}.csv")
    members = [run_predictions(r, recordings=[rid]) for r in runs]
    mean = (members[0].values[0][:, 1] + members[1].values[0][:, 1]) / 2  # targets: arousal, valence
    np.testing.assert_allclose(sub["value"], mean, atol=1e-5)
    assert len(sub) == len(members[0].times[0])
