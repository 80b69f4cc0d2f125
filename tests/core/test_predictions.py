"""The Predictions value and the task objects: save/load round trips, scoring from a value, old folders."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from affectflow.errors import ConfigError, RunError
from affectflow.experiment import train
from affectflow.predictions import Predictions, score, selection_score
from affectflow.tasks import TASK_TYPES, ClipTask, ContinuousTask, SegmentTask, get_task

from ..conftest import tiny_config


def test_task_types_are_registered_by_name():
    assert TASK_TYPES.names() == ["clip", "continuous", "segment"]
    assert get_task("continuous") is ContinuousTask and get_task("segment") is SegmentTask and get_task("clip") is ClipTask
    with pytest.raises(ConfigError, match="Unknown task 'frame'"):
        get_task("frame")


def test_continuous_predictions_round_trip_and_score_like_the_run(tiny_run, tmp_path):
    m = json.loads((tiny_run / "metrics.json").read_text())
    folder = tiny_run / "predictions" / "test"
    preds = Predictions.load(folder)
    assert preds.task == "continuous" and preds.targets == ["arousal", "valence"]
    assert sorted(preds.recordings) == sorted(p.stem for p in folder.glob("*.csv"))
    assert all(v.shape == (len(t), 2) for t, v in zip(preds.times, preds.values))
    s = score(preds)
    for t in preds.targets:
        assert s[t]["ccc"] == pytest.approx(m["best"]["test"][t]["ccc"], abs=1e-9)
        assert s[t]["ccc_mean"] == pytest.approx(m["best"]["test"][t]["ccc_mean"], abs=1e-9)
    assert selection_score(preds) == pytest.approx(np.mean([s[t]["ccc"] for t in preds.targets]))
    # save writes the same CSV files as before plus the exact arrays; load gives back the same value
    again = Predictions.load(preds.save(tmp_path / "again"))
    for a, b in zip(preds.values, again.values):
        np.testing.assert_array_equal(a, b)
    first = pd.read_csv(folder / f"{preds.recordings[0]}.csv")
    assert list(first.columns) == ["time", "arousal", "valence", "arousal_label", "valence_label"]
    pd.testing.assert_frame_equal(first, pd.read_csv(tmp_path / "again" / f"{preds.recordings[0]}.csv"))
    # an older folder of CSV files only still loads (values rounded to 6 significant digits)
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    (old / "predictions.json").unlink()
    (old / "predictions.npz").unlink()
    legacy = Predictions.load(old)
    assert set(legacy.recordings) == set(preds.recordings)
    assert score(legacy)["arousal"]["ccc"] == pytest.approx(s["arousal"]["ccc"], abs=1e-4)


def test_subset_and_concat_are_inverse(tiny_run):
    preds = Predictions.load(tiny_run / "predictions" / "devel")
    a, b = preds.recordings[:1], preds.recordings[1:]
    both = Predictions.concat([preds.subset(a), preds.subset(b)])
    assert both.recordings == preds.recordings
    assert score(both)["valence"]["ccc"] == pytest.approx(score(preds)["valence"]["ccc"])
    with pytest.raises(RunError, match="same recording twice"):
        Predictions.concat([preds, preds.subset(a)])
    with pytest.raises(RunError, match="not in these predictions"):
        preds.subset(["nobody"])


def test_missing_or_damaged_prediction_folders_are_clear_errors(tmp_path, tiny_run):
    with pytest.raises(RunError, match="does not exist"):
        Predictions.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no prediction files"):
        Predictions.load(tmp_path / "empty")
    bad = tmp_path / "bad"
    shutil.copytree(tiny_run / "predictions" / "devel", bad)
    (bad / "predictions.npz").write_bytes(b"not an npz")
    with pytest.raises(RunError, match="damaged"):
        Predictions.load(bad)


def test_clip_predictions_keep_raw_outputs_and_score_like_the_run(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus.path, tmp_path, "data.task=clip", "data.targets=[discrete,valence]", "model.type=lstm",
                      "model.hidden_size=8", "training.epochs=1", "training.seeds=[1]", "training.loss=mse")
    run = train(cfg, progress=False)
    m = json.loads((run / "metrics.json").read_text())
    preds = Predictions.load(run / "predictions" / "test")
    assert preds.task == "clip" and preds.outputs.shape == (len(preds.keys), preds.specs[0].n_outputs + 1)
    post = preds.posteriors()
    np.testing.assert_allclose(post[:, : preds.specs[0].n_outputs].sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(post[:, -1], preds.outputs[:, -1])  # regression columns stay values
    s = score(preds)
    assert s["mer_score"]["value"] == pytest.approx(m["best"]["test"]["mer_score"]["value"])
    assert s["discrete"]["weighted_f1"] == pytest.approx(m["best"]["test"]["discrete"]["weighted_f1"])
    df = pd.read_csv(run / "predictions" / "test" / "clips.csv")
    assert list(df.columns) == ["recording", "discrete", "valence", "discrete_label", "valence_label"]
    # an older clips.csv alone: the predicted classes survive (as one-hot outputs), so the F1 is the same
    old = tmp_path / "old"
    shutil.copytree(run / "predictions" / "test", old)
    (old / "predictions.json").unlink()
    legacy = Predictions.load(old)
    assert score(legacy)["discrete"]["weighted_f1"] == pytest.approx(s["discrete"]["weighted_f1"])
    # ... and one in the format of earlier versions (<target>_pred columns, interleaved with the labels)
    df.rename(columns={"discrete": "discrete_pred", "valence": "valence_pred"})[
        ["recording", "discrete_pred", "discrete_label", "valence_pred", "valence_label"]].to_csv(old / "clips.csv",
                                                                                                 index=False)
    legacy = Predictions.load(old)
    assert legacy.targets == ["discrete", "valence"]
    assert score(legacy)["discrete"]["weighted_f1"] == pytest.approx(s["discrete"]["weighted_f1"])
    assert score(legacy)["valence"]["mse"] == pytest.approx(s["valence"]["mse"], rel=1e-4)
    sub = preds.subset(preds.recordings[:2])
    assert sub.keys == preds.keys[:2]


def test_run_predictions_is_the_predict_path_and_layouts_are_checked(tiny_run):
    from affectflow.experiment import run_predictions

    saved = Predictions.load(tiny_run / "predictions" / "devel")
    fresh = run_predictions(tiny_run, partitions=["devel"], device="cpu")
    fresh.check_same_layout(saved)
    np.testing.assert_allclose(fresh.flat_outputs(), saved.flat_outputs(), atol=1e-6)
    half = saved.with_flat_outputs(saved.flat_outputs() * 0.5)
    assert [len(v) for v in half.values] == [len(v) for v in saved.values]
    np.testing.assert_allclose(half.values[-1], saved.values[-1] * 0.5)
    with pytest.raises(RunError, match="disagree on the recordings"):
        saved.check_same_layout(saved.subset(saved.recordings[:1]))
    shifted = Predictions.concat([saved.subset([r]) for r in saved.recordings])
    shifted.times[0] = shifted.times[0] + 0.25
    with pytest.raises(RunError, match="label grid of recording"):
        saved.check_same_layout(shifted)
    other = Predictions(saved.task, saved.specs[:1], saved.recordings, times=saved.times,
                        values=[v[:, :1] for v in saved.values], labels=saved.labels)
    with pytest.raises(RunError, match="disagree on the targets"):
        saved.check_same_layout(other)


def test_scoring_is_defined_once_and_the_tasks_use_it():
    from affectflow import predictions, scoring, tasks

    assert predictions.score is scoring.score and predictions.selection_score is scoring.selection_score
    for name in ("continuous", "segment", "clip"):
        rule = scoring.get_scoring(name)
        assert get_task(name).selection_score.__func__ is rule.selection_score.__func__
        assert get_task(name).score.__func__ is rule.score.__func__
    specs = [tasks.TargetSpec("emo", "classification", ["a", "b"]), tasks.TargetSpec("v", "regression")]
    scores = {"emo": {"weighted_f1": 0.5, "macro_f1": 0.4}, "v": {"mse": 2.0, "ccc": 0.3}}
    assert scoring.get_scoring("clip").selection_score(specs, scores) == pytest.approx(0.5 - 0.25 * 2.0)
    assert scoring.get_scoring("segment").selection_score(specs, scores) == pytest.approx((0.4 + 0.3) / 2)
    with pytest.warns(DeprecationWarning, match="scoring.selection_score"):
        assert tasks.selection_score("clip", specs, scores) == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="Unknown task type 'frame'"):
        scoring.get_scoring("frame")


def test_one_prediction_format_and_old_folders_still_read(tmp_path):
    """Every writer writes time + one column per target (+ <target>_label where labels exist); folders of the
    earlier <target>_pred format (a fixture written by hand) load to the same values."""
    from affectflow.predictions import prediction_frame, read_prediction_csv, write_prediction_csv
    from affectflow.targets import TargetSpec

    t = np.arange(4) / 2.0
    v = np.array([[0.1, -0.2], [0.3, 0.4], [0.5, 0.6], [0.7, -0.8]], np.float32)
    y = np.array([[0.0, 0.1], [np.nan, 0.2], [0.3, 0.3], [0.4, np.nan]], np.float32)
    specs = [TargetSpec("arousal", "regression"), TargetSpec("valence", "regression")]
    preds = Predictions("continuous", specs, ["S1", "S2"], times=[t, t], values=[v, v * 2], labels=[y, None])
    folder = preds.save(tmp_path / "new")
    assert list(pd.read_csv(folder / "S1.csv").columns) == ["time", "arousal", "valence", "arousal_label",
                                                            "valence_label"]
    assert list(pd.read_csv(folder / "S2.csv").columns) == ["time", "arousal", "valence"]  # unlabelled: no labels
    pd.testing.assert_frame_equal(preds.frame("S2"), prediction_frame(t, v * 2, ["arousal", "valence"]))
    # the earlier format, as older runs wrote it: <target>_pred and <target>_label interleaved, CSV files only
    old = tmp_path / "old"
    old.mkdir()
    pd.DataFrame({"time": t, "arousal_pred": v[:, 0], "arousal_label": y[:, 0], "valence_pred": v[:, 1],
                  "valence_label": y[:, 1]}).to_csv(old / "S1.csv", index=False)
    pd.DataFrame({"time": t, "arousal_pred": 2 * v[:, 0], "valence_pred": 2 * v[:, 1]}).to_csv(old / "S2.csv",
                                                                                            index=False)
    for loaded in (Predictions.load(old), Predictions.load(folder)):
        assert loaded.targets == ["arousal", "valence"] and loaded.recordings == ["S1", "S2"]
        np.testing.assert_allclose(loaded.values[0], v, rtol=1e-6)
        np.testing.assert_allclose(loaded.labels[0], y, rtol=1e-6)
        assert loaded.labels[1] is None
        assert score(loaded)["arousal"]["ccc"] == pytest.approx(score(preds)["arousal"]["ccc"], rel=1e-5)
    # a CSV-only folder in the new format (e.g. written by predict --media) reads the same
    (folder / "predictions.json").unlink()
    np.testing.assert_allclose(Predictions.load(folder).values[1], 2 * v, rtol=1e-6)
    # a target whose name ends in _label is still a prediction column when no other column is its stem
    write_prediction_csv(tmp_path / "odd.csv", pd.DataFrame({"time": t, "x_label": v[:, 0]}))
    names, _, values, labels = read_prediction_csv(tmp_path / "odd.csv")
    assert names == ["x_label"] and labels is None
    pd.DataFrame({"value": [1.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(RunError, match="no `time` column"):
        read_prediction_csv(tmp_path / "bad.csv")
