"""Prediction from media files with a run trained on extracted features, and on corpora without labels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from affectflow.cli.main import main
from affectflow.config import load_config
from affectflow.corpus import Corpus
from affectflow.corpus.media import media_recordings
from affectflow.experiment import predict, train
from affectflow.features.pipeline import extract
from affectflow.inference.media import (
    MediaInputError,
    UnsupportedRunError,
    predict_media,
    predict_media_folder,
    required_inputs,
    run_info,
)
from affectflow.synthetic.media import espeak_available, generate_media_corpus

media = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def media_run(tmp_path_factory):
    """A tiny run on egemaps (audio) + fer (video) features extracted from a generated media corpus."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    root = tmp_path_factory.mktemp("media")
    c = generate_media_corpus(root / "c", n_subjects=4, duration_s=20.0, seed=4, video_size=96, physio=False,
                              transcript=False, workers=1, progress=False)
    s = extract(c, {"defaults": {"rate_hz": 2.0}, "features": {"egemaps": {}, "fer": {}}}, workers=1, progress=False)
    assert s.ok, s.format()
    cfg = load_config(None, [f"data.corpus={c.path}", f"output.runs_dir={root / 'runs'}",
                             "data.features=[egemaps,fer]", "data.window.size=20", "data.window.hop=10",
                             "model.d_model=16", "model.d_fc=8", "training.epochs=2", "training.seeds=[1]",
                             "training.device=cpu"])
    run = train(cfg, progress=False)
    new = generate_media_corpus(root / "new", n_subjects=1, duration_s=12.0, seed=9, video_size=96, physio=False,
                                transcript=False, workers=1, progress=False, partitions=(1.0, 0.0, 0.0))
    return run, c, media_recordings(new)[0]


@media
def test_predict_media_matches_predicting_the_same_files_as_a_corpus(media_run, tmp_path):
    run, _, rec = media_run
    assert required_inputs(run) == {"audio": ["egemaps"], "video": ["fer"]}
    calls = []
    df = predict_media(run, {"video": rec.video, "audio": rec.audio}, progress=lambda f, m: calls.append(f))
    assert list(df.columns) == ["time", "arousal", "valence"]
    # the run's label grid (2 Hz) over the 12 s recording
    np.testing.assert_allclose(df["time"].to_numpy(), np.arange(24) / 2.0)
    assert np.isfinite(df[["arousal", "valence"]].to_numpy()).all()
    assert calls[0] == 0.0 and calls[-1] == 1.0 and calls == sorted(calls)
    # the same files extracted into a corpus and predicted the ordinary way give the same numbers
    shutil.copytree(rec.video.parent.parent, tmp_path / "copy")
    c = Corpus(tmp_path / "copy")
    extract(c, {"defaults": {"rate_hz": 2.0}, "features": {"egemaps": {}, "fer": {}}}, workers=1, progress=False)
    out = predict(run, corpus=c.path, recordings=[rec.id], out=tmp_path / "p", progress=False)
    ref = pd.read_csv(out / f"{rec.id}.csv")
    np.testing.assert_allclose(df["arousal"].to_numpy(), ref["arousal"].to_numpy(), atol=1e-5)
    info = run_info(run)
    assert info["media_supported"] and info["streamable"] and info["label_rate_hz"] == 2.0
    assert info["feature_sets"]["egemaps"]["extractor"] == "egemaps"


@media
def test_predict_media_errors_are_clear(media_run, tmp_path, tiny_run):
    run, _, rec = media_run
    with pytest.raises(MediaInputError, match="needs video for feature sets \\['fer'\\]"):
        predict_media(run, {"audio": rec.audio})
    with pytest.raises(MediaInputError, match="does not exist"):
        predict_media(run, {"video": tmp_path / "nope.mp4", "audio": rec.audio})
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaInputError, match="could not be read"):
        predict_media(run, {"video": bad, "audio": rec.audio})
    with pytest.raises(UnsupportedRunError, match="not made by affectflow's extractors"):
        predict_media(tiny_run, {"video": rec.video})


@media
def test_cli_predict_media_writes_csv_and_plot_per_recording(media_run, tmp_path, capsys):
    run, _, rec = media_run
    out = tmp_path / "pred"
    code = main(["predict", str(run), "--media", str(rec.video), "--audio", str(rec.audio),
                 "--media", str(rec.video), "--audio", str(rec.audio), "--out", str(out), "-q"])
    assert code == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"{rec.id}-1.csv", f"{rec.id}-1.png", f"{rec.id}-2.csv", f"{rec.id}-2.png"]
    a, b = pd.read_csv(out / files[0]), pd.read_csv(out / files[2])
    assert list(a.columns) == ["time", "arousal", "valence"] and a.equals(b)
    # a missing modality is a one-paragraph error with exit code 2
    assert main(["predict", str(run), "--media", str(rec.audio), "--out", str(tmp_path / "x")]) == 2
    assert "needs video" in capsys.readouterr().err


def test_predict_media_folder_is_the_api_behind_the_cli(media_run, tmp_path):
    """The CLI's per-recording loop is the API's: same CSV, ids checked first, no file written over."""
    run, _, rec = media_run
    files = {"video": rec.video, "audio": rec.audio}
    with pytest.raises(MediaInputError, match=r"\['a b', 'x'\] are not safe, distinct"):
        list(predict_media_folder(run, [("a b", files), ("x", files), ("x", files)], tmp_path))
    with pytest.raises(MediaInputError, match="does not exist or is not a folder"):
        list(predict_media_folder(run, [("one", files)], tmp_path / "missing"))
    seen = []
    out = list(predict_media_folder(run, [("one", files)], tmp_path, progress=lambda rid: seen.append(rid)))
    assert [r.id for r in out] == ["one"] and seen == ["one"]
    df = pd.read_csv(out[0].csv)
    assert out[0].csv == tmp_path / "one.csv" and (tmp_path / "one.png").is_file() and out[0].steps == len(df)
    pd.testing.assert_frame_equal(df, pd.read_csv(_written(predict_media(run, files), tmp_path / "ref.csv")))
    with pytest.raises(MediaInputError, match="never written over"):
        list(predict_media_folder(run, [("one", files)], tmp_path))


def _written(df, path):
    from affectflow.predictions import write_prediction_csv

    return write_prediction_csv(path, df)


def test_predict_corpus_without_any_labels_uses_the_runs_label_rate(tiny_run, tiny_corpus, tmp_path):
    src = tiny_corpus.path
    dst = tmp_path / "unlabelled"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cache", "labels"))
    meta = json.loads((dst / "corpus.json").read_text())
    meta["label_rate_hz"] = None  # nothing in the corpus tells the grid: the run's rate must be used
    (dst / "corpus.json").write_text(json.dumps(meta))
    rid = Corpus(dst).recording_ids(["test"])[0]
    out = predict(tiny_run, corpus=dst, recordings=[rid], out=tmp_path / "p", progress=False)
    df = pd.read_csv(out / f"{rid}.csv")
    assert list(df.columns) == ["time", "arousal", "valence"]  # no label columns: no labels
    dur = float(Corpus(dst).recording(rid)["duration"])
    np.testing.assert_allclose(df["time"].to_numpy(), np.arange(int(np.floor(dur * 2.0 + 1e-6))) / 2.0)
    # the same recording in the labelled corpus: same predictions on the same grid
    ref = pd.read_csv(predict(tiny_run, recordings=[rid], out=tmp_path / "q", progress=False) / f"{rid}.csv")
    n = min(len(ref), len(df))
    np.testing.assert_allclose(df["arousal"][:n], ref["arousal"][:n], atol=1e-5)


@media
def test_a_video_without_sound_fails_before_extraction_and_suggests_audio(media_run, tmp_path):
    from affectflow.io.audio import audio_info

    run, _, rec = media_run
    try:
        audio_info(rec.video)
        pytest.skip("the synthetic video carries a sound track")
    except Exception:  # noqa: BLE001 - no sound track: the case under test
        pass
    calls = []
    with pytest.raises(MediaInputError, match="has no usable sound track.*--audio FILE"):
        predict_media(run, {"video": rec.video}, progress=lambda f, m: calls.append(m))
    assert calls == []  # refused before "checking media", let alone extraction


def test_media_names_that_collide_after_sanitising_get_distinct_ids(tmp_path):
    from affectflow.cli.deploy import unique_recording_ids

    recs = [("a b", {"audio": tmp_path / "a b.wav"}), ("a_b", {"audio": tmp_path / "a_b.wav"}),
            ("x\n", {"audio": tmp_path / "x\n.wav"}), ("ok", {"audio": tmp_path / "ok.wav"})]
    out, notes = unique_recording_ids(recs)
    assert [r for r, _ in out] == ["a_b-1", "a_b-2", "x_", "ok"]
    assert len(notes) == 3 and "'a_b-2'" in notes[1]
