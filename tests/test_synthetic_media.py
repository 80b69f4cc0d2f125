"""The synthetic raw-media corpus (affectflow.synthetic.media): files, labels, determinism, and that the media
really carry the latent affect (pitch and heart rate follow arousal, the face leaves the frame)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from affectflow.corpus.corpus import Corpus
from affectflow.corpus.media import media_recordings, probe_duration
from affectflow.errors import ConfigError
from affectflow.synthetic import media as sm

pytestmark = pytest.mark.skipif(not sm.espeak_available(), reason="espeak-ng is not installed")

DURATION = 30.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    return sm.generate_media_corpus(
        tmp_path_factory.mktemp("m") / "c", n_subjects=4, duration_s=DURATION, seed=0, workers=2
    )


@pytest.fixture(scope="module")
def truth(corpus) -> dict:
    return json.loads((corpus.path / "reports" / "generate_media.json").read_text())["recordings"]


def _f0_autocorr(x: np.ndarray, sr: int, fmin: float = 60.0, fmax: float = 400.0) -> float:
    """Median F0 (Hz) of the voiced 50 ms frames of ``x``: the lag of the highest normalised autocorrelation
    (computed by FFT) between ``sr / fmax`` and ``sr / fmin``, frames whose peak exceeds 0.6 counted as voiced."""
    n, hop = int(0.05 * sr), int(0.01 * sr)
    lo, hi = int(sr / fmax), int(sr / fmin)
    if len(x) < n:
        return float("nan")
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    w = np.hanning(n)
    frames = (frames - frames.mean(axis=1, keepdims=True)) * w
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * n, axis=1)) ** 2, axis=1)[:, : hi + 1]
    acw = np.fft.irfft(np.abs(np.fft.rfft(w, 2 * n)) ** 2)[: hi + 1]  # Boersma (1993): divide by the window's
    ok = ac[:, 0] > 1e-8
    r = (ac[ok, lo : hi + 1] / ac[ok, :1]) / (acw[lo : hi + 1] / acw[0])
    k = r.argmax(axis=1)
    voiced = r[np.arange(len(k)), k] > 0.6
    return float(np.median(sr / (lo + k[voiced]))) if voiced.any() else float("nan")


def test_files_recordings_and_durations(corpus: Corpus, truth: dict):
    rec = corpus.recordings
    assert rec["id"].tolist() == ["S000_r0", "S001_r0", "S002_r0", "S003_r0"]
    assert sorted(rec["partition"]) == ["devel", "test", "train", "train"]
    assert rec.groupby("subject")["partition"].nunique().max() == 1  # partitions by subject
    recs = media_recordings(corpus)
    assert len(recs) == 4
    for r in recs:
        assert r.duration == DURATION
        for p in (r.audio, r.video, r.physio, r.transcript):
            assert p is not None and p.is_file() and p.is_relative_to(corpus.path / "media")
        assert probe_duration(r.audio, "audio") == pytest.approx(DURATION, abs=1e-3)
        assert probe_duration(r.video, "video") == pytest.approx(DURATION, abs=0.05)
        assert probe_duration(r.physio, "physio") == pytest.approx(DURATION, abs=0.01)
        info = sf.info(str(r.audio))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        phys = pd.read_csv(r.physio)
        assert list(phys.columns) == ["time", "ecg", "resp", "eda"] and len(phys) == int(DURATION * 250)
        assert phys.notna().all().all() and phys["eda"].min() > 0
        words = pd.read_csv(r.transcript)
        assert list(words.columns) == ["start", "end", "word", "utterance"]
        assert (words["end"] > words["start"]).all() and words["end"].max() <= DURATION
        assert np.all(np.diff(words["start"]) > 0)
    assert corpus.meta["generator"]["seed"] == 0


def test_labels_on_the_grid(corpus: Corpus):
    assert corpus.label_set("continuous").rate_hz == 2.0
    for rid in corpus.recording_ids():
        noisy, clean = corpus.read_labels(rid, "continuous"), corpus.read_labels(rid, "continuous_clean")
        np.testing.assert_allclose(noisy["time"], np.arange(60) * 0.5)
        assert noisy["time"].tolist() == clean["time"].tolist()
        assert list(clean.columns) == ["time", "arousal", "valence"]
        assert clean[["arousal", "valence"]].abs().max().max() < 1.0
        diff = (noisy[["arousal", "valence"]] - clean[["arousal", "valence"]]).to_numpy()
        assert 0.05 < diff.std() < 0.15  # label_noise = 0.1


def test_transcript_follows_the_plan_and_valence(corpus: Corpus, truth: dict):
    pools = {
        "positive": sm.POSITIVE_SENTENCES,
        "negative": sm.NEGATIVE_SENTENCES,
        "neutral": sm.NEUTRAL_SENTENCES,
    }
    n_kinds = set()
    for r in media_recordings(corpus):
        words = pd.read_csv(r.transcript)
        utts = truth[r.id]["utterances"]
        assert words["utterance"].max() == len(utts) - 1
        for i, u in enumerate(utts):
            w = words[words["utterance"] == i]
            assert " ".join(w["word"]) == u["text"] and u["text"] in pools[u["valence_class"]]
            assert w["start"].min() == pytest.approx(u["start"], abs=1e-3) and w[
                "end"
            ].max() == pytest.approx(u["end"], abs=1e-3)
            expected = "positive" if u["valence"] > 0.2 else "negative" if u["valence"] < -0.2 else "neutral"
            assert u["valence_class"] == expected
            n_kinds.add(expected)
    assert len(n_kinds) >= 2


def test_pitch_follows_arousal(corpus: Corpus, truth: dict):
    # direct: the same sentence and voice at low and high arousal
    lo, sr = sm.espeak_synth("The window is next to the door.", voice="en-us+m1", **sm.speech_params(-0.8))
    hi, _ = sm.espeak_synth("The window is next to the door.", voice="en-us+m1", **sm.speech_params(0.8))
    f_lo, f_hi = _f0_autocorr(lo, sr), _f0_autocorr(hi, sr)
    assert f_hi > 1.3 * f_lo, (f_lo, f_hi)
    assert len(hi) < len(lo)  # faster speech when aroused
    # in the corpus: utterance F0 against arousal, within each recording (voices differ between subjects)
    xs, ys = [], []
    for r in media_recordings(corpus):
        y, sr = sf.read(str(r.audio))
        utts = truth[r.id]["utterances"]
        f0 = np.log([_f0_autocorr(y[int(u["start"] * sr) : int(u["end"] * sr)], sr) for u in utts])
        a = np.array([u["arousal"] for u in utts])
        xs.append(a - a.mean())
        ys.append(f0 - f0.mean())
    r = np.corrcoef(np.concatenate(xs), np.concatenate(ys))[0, 1]
    assert r > 0.8, r


def test_heart_rate_and_eda_follow_arousal(corpus: Corpus):
    import neurokit2 as nk

    for r in media_recordings(corpus):
        phys = pd.read_csv(r.physio)
        fs = 250
        _, info = nk.ecg_peaks(phys["ecg"].to_numpy(), sampling_rate=fs)
        tp = np.asarray(info["ECG_R_Peaks"]) / fs
        hr = 60.0 / np.diff(tp)
        assert 45 < hr.mean() < 110 and len(tp) > DURATION * 0.7
        lab = corpus.read_labels(r.id, "continuous_clean")
        hr_grid = np.interp(lab["time"], tp[1:], hr)
        assert np.corrcoef(hr_grid, lab["arousal"])[0, 1] > 0.8
        # EDA: the tonic level (a 4 s moving average) follows arousal
        eda = phys["eda"].rolling(fs * 4, center=True, min_periods=1).mean().to_numpy()
        eda_grid = np.interp(lab["time"], phys["time"], eda)
        assert np.corrcoef(eda_grid, lab["arousal"])[0, 1] > 0.5


def test_face_leaves_the_frame(corpus: Corpus, truth: dict):
    import av

    def sharpness(
        img: np.ndarray,
    ) -> float:  # mean absolute gradient: the photo has edges, the wall is smooth
        g = img.astype(np.float32).mean(axis=2)
        return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())

    r = media_recordings(corpus)[0]
    absent = truth[r.id]["face_absent"]
    assert absent and all(2.0 <= e - s <= 5.0 for s, e in absent)
    with av.open(str(r.video)) as c:
        st = c.streams.video[0]
        assert (st.codec_context.name, st.width, st.height) == ("h264", 160, 160)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == int(DURATION * 25)
    t = np.arange(len(frames)) / 25.0
    inside = np.zeros(len(frames), bool)
    for s, e in absent:
        inside |= (t >= s) & (t <= e)
    far = np.ones(len(frames), bool)  # frames at least 0.5 s away from any absent stretch show the face
    for s, e in absent:
        far &= (t < s - 0.5) | (t > e + 0.5)
    sh = np.array([sharpness(f) for f in frames])
    assert sh[inside].max() < 0.5 * sh[far].min(), (sh[inside].max(), sh[far].min())
    # lighting follows valence: frame brightness correlates with the latent valence
    lab = corpus.read_labels(r.id, "continuous_clean")
    bright = np.array([f.mean() for f in frames])
    ok = far & (t <= lab["time"].iloc[-1])
    assert np.corrcoef(bright[ok], np.interp(t[ok], lab["time"], lab["valence"]))[0, 1] > 0.6


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_files(tmp_path: Path):
    kw = dict(n_subjects=2, duration_s=8.0, seed=7, video_fps=10)
    a = sm.generate_media_corpus(tmp_path / "a", **kw)
    b = sm.generate_media_corpus(tmp_path / "b", workers=2, **kw)
    da, db = _digest(a.path), _digest(b.path)
    assert da.keys() == db.keys() and len([k for k in da if k.startswith("media/")]) == 8
    assert da == db
    c = sm.generate_media_corpus(tmp_path / "c", **{**kw, "seed": 8})
    assert _digest(c.path)["media/S000_r0.wav"] != da["media/S000_r0.wav"]
    # switching a modality off leaves the others unchanged
    d = sm.generate_media_corpus(tmp_path / "d", **kw, video=False)
    dd = _digest(d.path)
    assert "media/S000_r0.mp4" not in dd and dd["media/S001_r0.physio.csv"] == da["media/S001_r0.physio.csv"]
    assert dd["labels/continuous/S001_r0.parquet"] == da["labels/continuous/S001_r0.parquet"]


def test_bad_options(tmp_path: Path):
    with pytest.raises(ConfigError, match="Unknown options \\['fps'\\]"):
        sm.generate_media_corpus(tmp_path / "x", fps=3)
    with pytest.raises(ConfigError, match="duration_s > 2"):
        sm.generate_media_corpus(tmp_path / "y", duration_s=1.0)
