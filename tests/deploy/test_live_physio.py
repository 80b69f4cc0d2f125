"""Live physiology (LivePredictor.push_physio) ≈ offline physio extraction and prediction.

push_physio runs the offline extractors over a trailing window of raw samples, so it is approximate; the
tolerances come from ``benchmarks/bench_live_physio.py --duration 60 --warmup 10`` on the same synthetic recording
(60 s, 250 Hz; defaults: 30 s context, 5 s lookahead): physio_raw exact; HRV/phys 98 % of frames exact after 10 s
(the others differ by a beat detected differently: pNN20 by 50); ECG_Rate max |d| 0.18 bpm; EDA tonic/phasic max
|d| 0.06 µS; RSP_Rate mean |d| 1.7 breaths/min, NaN until ~18.5 s; a random GRU's predictions CCC 0.9996 / 0.994
(0.966-0.9998 on 120-300 s recordings, hence the 0.95 bound).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affectflow.features.base import EXTRACTORS, MediaRecording
from affectflow.inference.media import predict_media
from affectflow.models.small import SMALL_SETTINGS
from affectflow.streaming import LivePredictor, StreamingError
from tests.deploy.helpers import PHYSIO_SETS as SETS
from tests.deploy.helpers import ccc, fake_run, physio_recording, physio_run, stream

pytest.importorskip("neurokit2")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    root = tmp_path_factory.mktemp("physio")
    return physio_recording(root, 60.0), physio_run(root / "run")


def test_live_physio_agrees_with_offline_extraction_and_prediction(recording):
    physio, run = recording
    df = pd.read_csv(physio)
    live = LivePredictor(run)
    assert live.physio_sets == list(SETS) and live.frame_sets == [] and live.physio_lookahead == 5.0
    assert live.physio_channels == ["BPM", "ECG", "EDA", "RSP"]
    frames: dict[str, list] = {}
    orig = live._append
    live._append = lambda n, t, v: (frames.setdefault(n, []).append((t, v)), orig(n, t, v))
    first = live.push_physio({"ecg": df["ecg"][:2500], "resp": df["resp"][:2500], "eda": df["eda"][:2500]}, 250)
    assert [s["time"] for s in first] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]  # 10 s in: steps < 5 s
    assert live._ph_start == 0
    live.reset()
    frames.clear()
    steps = stream(live, df, 250.0)
    assert live._ph_buf.shape[0] <= (30 + 5 + 1.5) * 250  # bounded buffer: context + lookahead + a chunk
    offline = predict_media(run, {"physio": physio}, device="cpu")
    np.testing.assert_allclose([s["time"] for s in steps], offline["time"])
    for target in ("arousal", "valence"):
        assert ccc(np.array([s[target] for s in steps]), offline[target].to_numpy()) > 0.95
    got = {}
    for n, p in SETS.items():
        ex = EXTRACTORS.build(n, p)
        off = ex.extract(MediaRecording(id="x", physio=physio))
        t = np.concatenate([f[0] for f in frames[n]])
        np.testing.assert_allclose(t, off["time"])
        got[n] = (np.concatenate([f[1] for f in frames[n]])[t >= 10], off[ex.columns()].to_numpy()[t >= 10])
    v, ref = got["physio_raw"]
    np.testing.assert_allclose(v, ref, rtol=1e-5, atol=1e-6)  # Savitzky-Golay needs only its own window
    for n in ("hrv", "phys"):
        v, ref = got[n]
        same = np.all(np.isclose(v, ref, rtol=1e-4, atol=1e-4, equal_nan=True), axis=1)
        assert same.mean() >= 0.9, (n, same.mean())
    v, ref = got["physio_rates"]
    assert np.nanmax(np.abs(v[:, 0] - ref[:, 0])) < 1.0  # ECG_Rate, bpm
    assert np.nanmax(np.abs(v[:, 2:] - ref[:, 2:])) < 0.25  # EDA tonic / phasic, µS
    late = slice(20, None)  # RSP_Rate: finite after ~20 s; NeuroKit2's rate between troughs needs later breaths
    assert np.isfinite(v[late, 1]).all() and np.nanmean(np.abs(v[late, 1] - ref[late, 1])) < 3.0


def test_push_physio_refuses_unknown_channels_rate_changes_and_runs_without_physio(recording, tmp_path):
    _, run = recording
    live = LivePredictor(run)
    x = np.zeros(250)
    with pytest.raises(StreamingError, match=r"Unknown physio channel\(s\) \['PPG'\]"):
        live.push_physio({"ECG": x, "PPG": x}, 250)
    with pytest.raises(StreamingError, match="equal length"):
        live.push_physio({"ECG": x, "RSP": x[:10]}, 250)
    live.push_physio({"ECG": x, "RSP": x}, 250)
    with pytest.raises(StreamingError, match="sample rate changed from 250 to 500 Hz"):
        live.push_physio({"ECG": x, "RSP": x}, 500)
    with pytest.raises(StreamingError, match="channels changed"):
        live.push_physio({"ECG": x}, 250)
    live.reset()
    live.push_physio({"ECG": x}, 500)  # a new stream may use another rate
    with pytest.raises(StreamingError, match="physio_context"):
        LivePredictor(run, physio_context=0)
    frames_only = LivePredictor(run, physio=False)
    assert frames_only.physio_sets == [] and frames_only.frame_sets == list(SETS)
    with pytest.raises(StreamingError, match="no feature set made by a physio extractor"):
        frames_only.push_physio({"ECG": x}, 250)
    plain = LivePredictor(fake_run(tmp_path / "plain", "gru", {**SMALL_SETTINGS["gru"]}), audio=False)
    assert plain.physio_sets == [] and "physio" in plain.frame_sets
    from affectflow.errors import AffectflowWarning

    with pytest.warns(AffectflowWarning, match="ECG sampled at 50 Hz"):
        LivePredictor(run).push_physio({"ECG": np.zeros(50)}, 50)
