"""Live audio → eGeMAPS frames equal the offline extractor's; live predictions equal offline media predictions."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from affectflow.corpus.media import media_recordings
from affectflow.features.base import EXTRACTORS, MediaRecording
from affectflow.features.pipeline import load_builtin_extractors
from affectflow.inference.media import predict_media
from affectflow.models.small import SMALL_SETTINGS
from affectflow.streaming import AudioStreamPredictor, LivePredictor, StreamingError
from affectflow.streaming.live import _AudioSet
from affectflow.synthetic.media import espeak_available, generate_media_corpus
from tests.deploy.helpers import fake_run

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")

EGEMAPS = {"rate_hz": 2.0, "win_dur": 1.0}


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    c = generate_media_corpus(tmp_path_factory.mktemp("speech") / "c", n_subjects=1, duration_s=14.0, seed=5,
                              video=False, physio=False, transcript=False, workers=1, progress=False,
                              partitions=(1.0, 0.0, 0.0))
    return media_recordings(c)[0].audio


def _chunks(x, seed):
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(x):
        n = int(rng.integers(50, 12000))
        yield x[i:i + n]
        i += n


def _egemaps_run(path, model="gru", extra_sets=None):
    load_builtin_extractors()
    ex = EXTRACTORS.build("egemaps", EGEMAPS)
    dims = {"egemaps": len(ex.columns()), **(extra_sets or {})}
    run = fake_run(path, model, {**SMALL_SETTINGS[model]}, dims=dims)
    import torch

    ckpt = torch.load(run / "checkpoints" / "seed-1.pt", weights_only=True)
    ckpt["data"]["feature_sets"]["egemaps"].update(
        columns=ex.columns(), modality="audio",
        params={"extractor": "egemaps", "config_hash": ex.config_hash(), "params": ex.params()})
    torch.save(ckpt, run / "checkpoints" / "seed-1.pt")
    return run


def test_live_egemaps_frames_equal_the_offline_extractor(speech):
    load_builtin_extractors()
    ex = EXTRACTORS.build("egemaps", EGEMAPS)
    offline = ex.extract(MediaRecording(id="a", audio=speech))
    x, sr = sf.read(speech, dtype="float32")
    assert sr == 16000
    live = _AudioSet(ex)
    parts = [live.feed(c, False) for c in _chunks(x, 0)] + [live.feed(np.zeros(0, np.float32), True)]
    times = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    np.testing.assert_allclose(times, offline["time"].to_numpy())
    ref = offline[ex.columns()].to_numpy()
    np.testing.assert_allclose(values, ref, rtol=1e-5, atol=1e-5)


def test_audio_stream_predictions_equal_offline_media_prediction(speech, tmp_path):
    run = _egemaps_run(tmp_path / "run")
    offline = predict_media(run, {"audio": speech})
    x, sr = sf.read(speech, dtype="float32")
    live = AudioStreamPredictor(run)
    assert live.sample_rate == 16000 and live.targets == ["arousal", "valence"]
    steps, first_at = [], None
    pushed = 0
    for c in _chunks(x, 1):
        got = live.push(c, sr)
        pushed += len(c)
        if got and first_at is None:
            first_at = pushed / sr
        steps += got
    assert first_at is not None and first_at < 4.0  # steps come while audio is still arriving
    steps += live.flush()
    t = np.array([s["time"] for s in steps])
    np.testing.assert_allclose(t, offline["time"].to_numpy())
    for target in ("arousal", "valence"):
        np.testing.assert_allclose([s[target] for s in steps], offline[target].to_numpy(), atol=1e-5)
    with pytest.raises(StreamingError, match="has ended"):
        live.push(x[:100], sr)
    live.reset()
    again = live.push(x, sr) + live.flush()
    np.testing.assert_allclose([s["arousal"] for s in again], offline["arousal"].to_numpy(), atol=1e-5)
    # features computed in blocks of 3 frames: later, same values
    blocky = AudioStreamPredictor(run, block_frames=3)
    got = [s for c in _chunks(x, 2) for s in blocky.push(c, sr)] + blocky.flush()
    np.testing.assert_allclose([s["valence"] for s in got], offline["valence"].to_numpy(), atol=1e-5)
    with pytest.raises(StreamingError, match="block_frames"):
        AudioStreamPredictor(run, block_frames=0)


def test_audio_stream_refuses_what_it_cannot_compute(speech, tmp_path):
    run = _egemaps_run(tmp_path / "run", extra_sets={"visual": 4})
    with pytest.raises(StreamingError, match="live audio cannot give: visual"):
        AudioStreamPredictor(run)
    live = AudioStreamPredictor(run, allow_missing=True)
    x, sr = sf.read(speech, dtype="float32")
    out = live.push(x, sr) + live.flush()
    assert len(out) == 28 and np.isfinite([s["valence"] for s in out]).all()
    # the visual set can be pushed as frames instead
    lp = LivePredictor(run)
    assert lp.audio_sets == ["egemaps"] and lp.frame_sets == ["visual"]
    assert lp.push_audio(x[: 6 * sr], sr) == []  # waits for the visual frames
    got = lp.push_frames("visual", np.arange(0, 6, 0.2), np.zeros((30, 4)))
    assert [s["time"] for s in got][:2] == [0.0, 0.5]
    with pytest.raises(StreamingError, match="must increase"):
        lp.push_frames("visual", np.array([1.0]), np.zeros((1, 4)))
    bidi = fake_run(tmp_path / "bidi", "gru", {**SMALL_SETTINGS["gru"], "bidirectional": True})
    with pytest.raises(StreamingError, match="not causal"):
        AudioStreamPredictor(bidi)


def test_cli_stream_replays_a_file_and_matches_offline(speech, tmp_path, capsys):
    from affectflow.cli.main import main

    run = _egemaps_run(tmp_path / "run")
    offline = predict_media(run, {"audio": speech})
    out = tmp_path / "s.csv"
    assert main(["stream", str(run), "--input", str(speech), "--fast", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "    0.00 s  arousal=" in printed and "28 steps" in printed
    import pandas as pd

    df = pd.read_csv(out)
    np.testing.assert_allclose(df["valence"], offline["valence"], atol=1e-5)
    assert out.with_suffix(".png").is_file()
    bidi = fake_run(tmp_path / "bidi", "gru", {**SMALL_SETTINGS["gru"], "bidirectional": True})
    assert main(["stream", str(bidi), "--input", str(speech), "--fast"]) == 2
    assert "is not causal" in capsys.readouterr().err.replace("\n", " ")
    # the CLI only wraps the API: replay_file gives the same steps, and never writes over a file
    from affectflow.errors import AffectflowError
    from affectflow.streaming import replay_file

    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(_csv(replay_file(run, speech, fast=True),
                                                                      tmp_path / "api.csv")))
    before = out.read_bytes()
    with pytest.raises(AffectflowError, match="exists; choose a new file"):
        replay_file(run, speech, fast=True, out=out)
    assert out.read_bytes() == before
    with pytest.raises(AffectflowError, match="does not exist"):  # refused before the file is replayed
        replay_file(run, speech, fast=True, out=tmp_path / "no" / "s.csv")
    assert main(["stream", str(run), "--input", str(speech), "--fast", "--out", str(out)]) == 2


def _csv(df, path):
    from affectflow.predictions import write_prediction_csv

    return write_prediction_csv(path, df)


def test_live_audio_and_video_frames_equal_offline_media_prediction(tmp_path):
    from affectflow.io.video import iter_frames

    c = generate_media_corpus(tmp_path / "c", n_subjects=1, duration_s=6.0, seed=6, video_size=96, physio=False,
                              transcript=False, workers=1, progress=False, partitions=(1.0, 0.0, 0.0))
    rec = media_recordings(c)[0]
    run = _egemaps_run(tmp_path / "run", extra_sets={"fer": 7})
    import torch

    fer = EXTRACTORS.build("fer", {"rate_hz": 2.0})
    ckpt = torch.load(run / "checkpoints" / "seed-1.pt", weights_only=True)
    ckpt["data"]["feature_sets"]["fer"].update(columns=fer.columns(), modality="video", params={
        "extractor": "fer", "config_hash": fer.config_hash(), "params": fer.params()})
    torch.save(ckpt, run / "checkpoints" / "seed-1.pt")
    offline = predict_media(run, {"audio": rec.audio, "video": rec.video})
    live = LivePredictor(run)
    assert live.audio_sets == ["egemaps"] and live.video_sets == ["fer"] and live.frame_sets == []
    x, sr = sf.read(rec.audio, dtype="float32")
    steps, pos = [], 0
    for f in iter_frames(rec.video, None):  # every decoded frame, audio pushed up to the frame's time
        end = int(f.time * sr)
        if end > pos:
            steps += live.push_audio(x[pos:end], sr)
            pos = end
        steps += live.push_video(f.image, f.time)
    steps += live.push_audio(x[pos:], sr)
    steps += live.flush()
    assert len(steps) == len(offline)
    for target in ("arousal", "valence"):
        np.testing.assert_allclose([s[target] for s in steps], offline[target].to_numpy(), atol=1e-5)
