"""Tests of the physio reader, the vectorised HRV and the physio extractors (all inputs generated here)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

nk = pytest.importorskip("neurokit2")
pyedflib = pytest.importorskip("pyedflib")
wfdb = pytest.importorskip("wfdb")

from affectflow.errors import ConfigError
from affectflow.features import EXTRACTORS, ExtractionError, MediaRecording
from affectflow.features import physio as P
from affectflow.features.hrv import (
    HRV_COLUMNS,
    HRV_FEATURES,
    frame_samples,
    frame_times,
    hrv_time_windows,
    hrv_time_windows_reference,
    sliding_hrv_time,
    window_bounds,
)
from affectflow.io.physio import normalise_channel_name, open_physio, read_physio

FS = 1000
DUR = 60


@pytest.fixture(scope="module")
def signals() -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "ECG": nk.ecg_simulate(
                duration=DUR, sampling_rate=FS, heart_rate=70, heart_rate_std=5, random_state=3
            ),
            "RSP": nk.rsp_simulate(duration=DUR, sampling_rate=FS, respiratory_rate=15, random_state=3),
            "EDA": nk.eda_simulate(duration=DUR, sampling_rate=FS, scr_number=3, random_state=3),
        }


def _write_edf(path, channels: dict[str, np.ndarray], rates: dict[str, float]) -> None:
    headers = [
        pyedflib.highlevel.make_signal_header(
            name,
            sample_frequency=rates[name],
            physical_min=float(np.floor(np.min(x))) - 1,
            physical_max=float(np.ceil(np.max(x))) + 1,
        )
        for name, x in channels.items()
    ]
    pyedflib.highlevel.write_edf(str(path), list(channels.values()), headers)


@pytest.fixture(scope="module")
def edf_rec(tmp_path_factory, signals) -> MediaRecording:
    path = tmp_path_factory.mktemp("edf") / "rec.edf"
    # file names of the channels as a device might write them: normalised to ECG/RSP/EDA
    _write_edf(
        path,
        {"EKG": signals["ECG"], "Resp": signals["RSP"], "GSR": signals["EDA"]},
        {"EKG": FS, "Resp": FS, "GSR": FS},
    )
    return MediaRecording(id="rec", physio=path)


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        rel = np.where(same, 0.0, np.abs(a - b) / np.abs(b))
    return float(np.nanmax(rel)) if rel.size else 0.0


# ------------------------------------------------------------------------------------------------ HRV
@pytest.mark.parametrize("edge", ["shift", "truncate"])
def test_hrv_equals_neurokit_on_simulated_ecg(signals, edge):
    ecg = signals["ECG"][: 20 * FS]
    peaks = P.detect_rpeaks(ecg, FS)
    assert 20 <= peaks.size <= 27
    times = frame_times(ecg.size, FS, 2.0)
    assert times.size == 40
    starts, ends = window_bounds(frame_samples(times, FS), ecg.size, 4 * FS, edge)
    ours = hrv_time_windows(peaks, FS, starts, ends)
    ref = hrv_time_windows_reference(peaks, FS, starts, ends)
    assert ours.shape == (40, 18)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert _rel_err(ours, ref) <= 1e-6
    rmssd = ours[:, HRV_FEATURES.index("RMSSD")]
    # shifted windows always hold 4 s of beats; truncated ones at the very ends may hold too few for RMSSD
    assert np.isfinite(rmssd if edge == "shift" else rmssd[4:-4]).all()


def test_hrv_equals_neurokit_on_corner_cases():
    # 256 Hz, irregular beats, runs of identical intervals (SDNN = 0 -> ratios inf/NaN), intervals of exactly
    # 1000 ms and 250 ms (= histogram bin edges), and windows holding 0, 1, 2 or 3 beats.
    fs = 256.0
    rr = np.array(
        [256, 256, 256, 256, 64, 300, 190, 256, 256, 128, 400, 512, 512, 64, 64, 64, 70, 700, 90, 256]
    )
    peaks = np.cumsum(np.concatenate([[10], rr])).astype(np.int64)
    n = int(peaks[-1] + 3 * fs)
    for win_s, rate in [(4.0, 2.0), (1.0, 4.0), (2.5, 1.0)]:
        times = frame_times(n, fs, rate)
        for edge in ("shift", "truncate"):
            starts, ends = window_bounds(frame_samples(times, fs), n, int(win_s * fs), edge)
            ours = hrv_time_windows(peaks, fs, starts, ends)
            ref = hrv_time_windows_reference(peaks, fs, starts, ends)
            assert np.array_equal(np.isnan(ours), np.isnan(ref))
            assert np.array_equal(np.isinf(ours), np.isinf(ref))
            assert _rel_err(ours, ref) <= 1e-6
    assert HRV_COLUMNS == tuple("HRV_" + f for f in HRV_FEATURES) and len(HRV_COLUMNS) == 18
    assert not {"HRV_TINN", "HRV_SDANN1", "HRV_SDNNI5"} & set(HRV_COLUMNS)


def test_hrv_known_values():
    fs = 1000.0
    peaks = np.array([0, 800, 1600, 2500, 3300])  # RR 800, 800, 900, 800 ms
    v = hrv_time_windows(peaks, fs, np.array([0]), np.array([4000]))[0]
    f = dict(zip(HRV_FEATURES, v))
    assert f["MeanNN"] == pytest.approx(825.0)
    assert f["SDNN"] == pytest.approx(50.0)
    assert f["RMSSD"] == pytest.approx(np.sqrt((0 + 100**2 + 100**2) / 3))
    assert f["pNN50"] == pytest.approx(2 / 4 * 100)  # NeuroKit2 divides by the number of intervals
    assert f["MedianNN"] == 800 and f["MadNN"] == 0 and f["MinNN"] == 800 and f["MaxNN"] == 900
    assert f["HTI"] == pytest.approx(4 / 3)
    # fewer than two beats: NaN row (NeuroKit2 raises)
    assert np.isnan(hrv_time_windows(peaks, fs, np.array([0, 5000]), np.array([500, 6000]))).all()


def test_window_bounds_edge_padding():
    n, w = 10_000, 4000
    centres = np.array([0, 1000, 2000, 5000, 8000, 9999])
    s, e = window_bounds(centres, n, w, "shift")
    assert s.tolist() == [0, 0, 0, 3000, 6000, 6000] and (e - s == w).all()
    s, e = window_bounds(centres, n, w, "truncate")
    assert s.tolist() == [0, 0, 0, 3000, 6000, 7999] and e.tolist() == [2000, 3000, 4000, 7000, 10000, 10000]
    s, e = window_bounds(np.array([0, 1500]), 3000, w, "shift")  # recording shorter than the window
    assert s.tolist() == [0, 0] and e.tolist() == [3000, 3000]
    with pytest.raises(ValueError):
        window_bounds(centres, n, w, "reflect")


def test_sliding_hrv_edges_use_neighbouring_data(signals):
    ecg = signals["ECG"][: 12 * FS]
    peaks = P.detect_rpeaks(ecg, FS)
    shift = sliding_hrv_time(peaks, FS, ecg.size, rate_hz=2.0, win_dur=4.0, edge="shift")
    trunc = sliding_hrv_time(peaks, FS, ecg.size, rate_hz=2.0, win_dur=4.0, edge="truncate")
    assert shift["time"].tolist() == [k / 2 for k in range(24)]
    v = shift[list(HRV_COLUMNS)].to_numpy()
    # frames within 2 s of either end all use the first / last full 4 s window
    for k in range(1, 5):
        np.testing.assert_array_equal(v[k], v[0])
    np.testing.assert_array_equal(v[-1], v[-4])
    centre = frame_samples(np.array([6.0]), FS)
    s, e = window_bounds(centre, ecg.size, 4 * FS)
    np.testing.assert_allclose(v[12], hrv_time_windows(peaks, FS, s, e)[0].astype(np.float32))
    # truncation keeps fewer beats at t = 0: MeanNN comes from a 2 s window
    n_beats0 = np.sum(peaks < 2 * FS) - 1
    assert trunc["HRV_MeanNN"].iloc[0] == pytest.approx(np.mean(np.diff(peaks[: n_beats0 + 1])), rel=1e-6)
    np.testing.assert_array_equal(trunc[list(HRV_COLUMNS)].to_numpy()[12], v[12])


# ------------------------------------------------------------------------------------------ extractors
def test_extractors_columns_shapes_and_grid(edf_rec, signals):
    out = {}
    for name, ncol in [("hrv", 18), ("physio_rates", 4), ("physio_raw", 4), ("phys", 21)]:
        ex = EXTRACTORS.build(name, {})
        assert ex.inputs == ("physio",) and ex.modality == "physio" and ex.can_process(edf_rec)
        assert len(ex.columns()) == ncol
        json.dumps(ex.params())
        frame = ex.extract(edf_rec)
        assert list(frame.columns) == ["time"] + ex.columns()
        assert frame["time"].dtype == np.float64
        assert all(frame[c].dtype == np.float32 for c in ex.columns())
        np.testing.assert_array_equal(frame["time"].to_numpy(), np.arange(2 * DUR) / 2.0)
        out[name] = frame
    hrv = out["hrv"]
    assert np.isfinite(hrv.to_numpy()).all()
    assert hrv["HRV_MeanNN"].median() == pytest.approx(60000 / 70, rel=0.05)
    rates = out["physio_rates"]
    assert rates["ECG_Rate"].median() == pytest.approx(70, abs=4)
    assert rates["RSP_Rate"].median() == pytest.approx(15, abs=3)
    assert np.isfinite(rates[["EDA_Tonic", "EDA_Phasic"]].to_numpy()).all()
    phys = out["phys"]
    assert phys.columns[-3:].tolist() == ["ECG", "RSP", "BPM"]
    np.testing.assert_array_equal(phys[list(HRV_COLUMNS)].to_numpy(), hrv[list(HRV_COLUMNS)].to_numpy())
    assert phys["BPM"].median() == pytest.approx(70, abs=4)  # no BPM channel: heart rate from the R-peaks
    assert out["physio_raw"]["BPM"].isna().all()  # physio_raw does not invent BPM


def test_raw_equals_savgol_then_sampling(tmp_path, signals):
    from scipy.signal import savgol_filter

    x = signals["RSP"][: 20 * FS] + 0.01 * signals["ECG"][: 20 * FS]
    path = tmp_path / "r.csv"
    pd.DataFrame({"time_ms": np.arange(x.size), "resp": x}).to_csv(path, index=False)
    ex = EXTRACTORS.build(
        "physio_raw", {"channels": ["RSP"], "block_dur": 3.0, "sg_window": 1.0, "sg_polyorder": 2}
    )
    frame = ex.extract(MediaRecording(id="r", physio=path))
    ref = savgol_filter(x, 1001, 2)[frame_samples(frame["time"].to_numpy(), FS)]
    np.testing.assert_allclose(frame["RSP"].to_numpy(), ref, rtol=1e-5, atol=1e-6)
    assert frame.shape == (40, 2)


def test_streaming_rpeaks_equal_whole_signal(edf_rec, signals):
    whole = P.detect_rpeaks(signals["ECG"], FS)
    with open_physio(edf_rec.physio) as reader:
        ps = P._PhysioPass(reader, rate_hz=2.0, block_dur=7.0, peaks_channel="ECG").run()
    assert ps.peaks.size == whole.size
    assert np.abs(ps.peaks - whole).max() <= 1  # EDF 16-bit quantisation may move a peak by one sample


def test_missing_channel_gives_nan_column(tmp_path, signals):
    path = tmp_path / "ecg_only.csv"
    n = 30 * FS
    pd.DataFrame({"timestamp": np.arange(n), "ECG": signals["ECG"][:n]}).to_csv(path, index=False)
    rec = MediaRecording(id="e", physio=path)
    rates = EXTRACTORS.build("physio_rates", {}).extract(rec)
    assert rates.shape == (60, 5)
    assert rates[["RSP_Rate", "EDA_Tonic", "EDA_Phasic"]].isna().all().all()
    assert rates["ECG_Rate"].notna().all()
    phys = EXTRACTORS.build("phys", {"bpm_from_ecg": False}).extract(rec)
    assert phys["RSP"].isna().all() and phys["BPM"].isna().all() and phys["ECG"].notna().all()
    with pytest.raises(ExtractionError, match=r"none of the channels \['RSP', 'EDA'\]"):
        EXTRACTORS.build("physio_raw", {"channels": ["RSP", "EDA"]}).extract(rec)


def test_frames_before_the_recording_start_are_nan(tmp_path, signals):
    path = tmp_path / "late.csv"
    n = 20 * FS
    pd.DataFrame({"time": 5.0 + np.arange(n) / FS, "ECG": signals["ECG"][:n]}).to_csv(path, index=False)
    frame = EXTRACTORS.build("hrv", {}).extract(MediaRecording(id="l", physio=path))
    assert frame["time"].iloc[-1] == pytest.approx(24.5)
    assert frame.iloc[:10, 1:].isna().all().all()  # t < 5 s
    assert frame.iloc[10:, 1:].notna().all().all()


def test_extractor_config_errors():
    with pytest.raises(ConfigError):
        EXTRACTORS.build("hrv", {"edge": "mirror"})
    with pytest.raises(ConfigError):
        EXTRACTORS.build("phys", {"rate_hz": 0})
    with pytest.raises(ConfigError):
        EXTRACTORS.build("physio_raw", {"channels": []})
    with pytest.raises(ConfigError):
        EXTRACTORS.build("hrv", {"window": 4})


# ------------------------------------------------------------------------------------------------ reader
def test_channel_name_normalisation():
    cases = {
        "ecg": "ECG",
        "EKG": "ECG",
        "ECG1": "ECG",
        "ecg_raw": "ECG",
        "Resp": "RSP",
        "respiration": "RSP",
        "RSP": "RSP",
        "GSR": "EDA",
        "eda": "EDA",
        "SCL": "EDA",
        "BPM": "BPM",
        "heart_rate": "BPM",
        "HR": "BPM",
        "Temp ": "Temp",
        "resp_rate": "resp_rate",
    }
    assert {k: normalise_channel_name(k) for k in cases} == cases


def test_csv_ms_time_column_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 4))
    path = tmp_path / "ms.csv"
    pd.DataFrame(
        {"timestamp": np.arange(1000) * 4, "ekg": x[:, 0], "Resp": x[:, 1], "gsr": x[:, 2], "HR": x[:, 3]}
    ).to_csv(path, index=False)
    frame, fs = read_physio(path)
    assert fs == 250.0
    assert list(frame.columns) == ["ECG", "RSP", "EDA", "BPM"]
    assert frame.attrs["source_channels"]["ECG"] == "ekg" and frame.attrs["start_time"] == 0.0
    np.testing.assert_allclose(frame.to_numpy(), x, rtol=1e-12)
    with open_physio(path) as r:  # block reading gives the same samples
        blocks = list(r.blocks(["RSP"], block_samples=300))
    assert [s for s, _ in blocks] == [0, 300, 600, 900]
    np.testing.assert_allclose(np.concatenate([b for _, b in blocks])[:, 0], x[:, 1])


def test_csv_seconds_time_column_and_explicit_rate(tmp_path):
    x = np.sin(np.arange(512) / 10)
    path = tmp_path / "s.csv"
    pd.DataFrame({"Time (s)": 2.5 + np.round(np.arange(512) / 256, 6), "ECG": x}).to_csv(path, index=False)
    frame, fs = read_physio(path)
    assert fs == 256.0 and frame.attrs["start_time"] == 2.5
    np.testing.assert_allclose(frame["ECG"].to_numpy(), x)
    path2 = tmp_path / "norate.tsv"
    pd.DataFrame({"ECG": x, "resp": -x}).to_csv(path2, index=False, sep="\t")
    with pytest.raises(ExtractionError, match="norate.tsv.*sampling_rate"):
        read_physio(path2)
    frame, fs = read_physio(path2, sampling_rate=128)
    assert fs == 128.0 and list(frame.columns) == ["ECG", "RSP"]
    np.testing.assert_allclose(frame["RSP"].to_numpy(), -x)
    # date-time stamps: rejected without a rate, ignored with one
    path4 = tmp_path / "dt.csv"
    stamps = pd.date_range("2024-01-01 10:00", periods=512, freq="10ms").strftime("%Y-%m-%d %H:%M:%S.%f")
    pd.DataFrame({"timestamp": stamps, "gsr": x}).to_csv(path4, index=False)
    with pytest.raises(ExtractionError, match="dt.csv.*non-numeric"):
        read_physio(path4)
    frame, fs = read_physio(path4, sampling_rate=100)
    assert fs == 100.0 and list(frame.columns) == ["EDA"] and frame.attrs["start_time"] == 0.0
    # the time unit can be forced: 0..511 read as seconds -> 1 Hz
    path3 = tmp_path / "u.csv"
    pd.DataFrame({"t": np.arange(512), "ECG": x}).to_csv(path3, index=False)
    assert read_physio(path3)[1] == 1000.0
    assert read_physio(path3, time_unit="s")[1] == 1.0


def test_edf_round_trip_with_mixed_rates(tmp_path):
    t = np.arange(2560) / 256
    ecg = np.sin(2 * np.pi * 1.2 * t)
    resp = np.cos(2 * np.pi * 0.25 * t[::4])  # 64 Hz
    path = tmp_path / "m.edf"
    _write_edf(path, {"ECG": ecg, "Respiration": resp}, {"ECG": 256, "Respiration": 64})
    frame, fs = read_physio(path)
    assert fs == 256.0 and list(frame.columns) == ["ECG", "RSP"] and len(frame) == 2560
    q = 4 / 65535  # 16-bit quantisation over the physical range
    np.testing.assert_allclose(frame["ECG"].to_numpy(), ecg, atol=q)
    u = np.arange(2560) / 4
    np.testing.assert_allclose(frame["RSP"].to_numpy(), np.interp(u, np.arange(resp.size), resp), atol=q)


def test_wfdb_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(size=(3000, 2)), 3)
    wfdb.wrsamp(
        "rec",
        fs=500,
        units=["mV", "NU"],
        sig_name=["ECG", "resp"],
        p_signal=x,
        fmt=["16", "16"],
        adc_gain=[1000, 1000],
        baseline=[0, 0],
        write_dir=str(tmp_path),
    )
    frame, fs = read_physio(tmp_path / "rec.hea")
    assert fs == 500.0 and list(frame.columns) == ["ECG", "RSP"]
    np.testing.assert_allclose(frame.to_numpy(), x, atol=1e-9)
    with open_physio(tmp_path / "rec.dat") as r:  # the .dat path finds its header
        assert r.info.n_samples == 3000 and r.info.format == "wfdb"


def test_reader_errors_name_file_and_problem(tmp_path):
    def err(path, **kw) -> str:
        with pytest.raises(ExtractionError) as e:
            read_physio(path, **kw)
        assert path.name in str(e.value)
        return str(e.value)

    (tmp_path / "empty.csv").write_text("")
    assert "empty" in err(tmp_path / "empty.csv")
    (tmp_path / "head.csv").write_text("time,ECG\n")
    assert "no samples" in err(tmp_path / "head.csv")
    (tmp_path / "text.csv").write_text("time,ECG\n0,1\n1,2\n2,abc\n3,4\n")
    assert "non-numeric" in err(tmp_path / "text.csv")
    gap = np.r_[np.arange(100), np.arange(150, 250)]
    pd.DataFrame({"time_ms": gap, "ECG": np.zeros(gap.size)}).to_csv(tmp_path / "gap.csv", index=False)
    assert "irregular" in err(tmp_path / "gap.csv")
    pd.DataFrame({"time_ms": [0, 1, 1, 2], "ECG": [0, 1, 2, 3]}).to_csv(tmp_path / "dup.csv", index=False)
    assert "not strictly increasing" in err(tmp_path / "dup.csv")
    assert "unsupported" in err(tmp_path / "sound.mp3")
    assert "does not exist" in err(tmp_path / "absent.edf")
    (tmp_path / "zero.edf").write_bytes(b"")
    assert "empty" in err(tmp_path / "zero.edf")
    (tmp_path / "junk.edf").write_bytes(np.random.default_rng(0).bytes(4000))
    assert "not a readable EDF" in err(tmp_path / "junk.edf")
    _write_edf(tmp_path / "ok.edf", {"ECG": np.sin(np.arange(2560) / 9)}, {"ECG": 256})
    data = (tmp_path / "ok.edf").read_bytes()
    (tmp_path / "cut.edf").write_bytes(data[: len(data) // 2])
    assert "corrupt or truncated" in err(tmp_path / "cut.edf")
    (tmp_path / "bad.hea").write_text("this is not a header\n")
    assert "malformed WFDB header" in err(tmp_path / "bad.hea")
    wfdb.wrsamp(
        "nodat",
        fs=100,
        units=["mV"],
        sig_name=["ECG"],
        p_signal=np.zeros((50, 1)),
        fmt=["16"],
        write_dir=str(tmp_path),
    )
    (tmp_path / "nodat.dat").unlink()
    assert "missing" in err(tmp_path / "nodat.hea")
    # the extractors surface the same errors
    with pytest.raises(ExtractionError, match="junk.edf"):
        EXTRACTORS.build("hrv", {}).extract(MediaRecording(id="j", physio=tmp_path / "junk.edf"))


def test_signal_verb_equals_the_file_path(tmp_path, signals):
    """process_signal (samples in memory, the live path) computes exactly what extract computes from a file."""
    n = 30 * FS
    x = np.stack([signals["ECG"][:n], signals["RSP"][:n], signals["EDA"][:n]], axis=1)
    path = tmp_path / "s.csv"
    pd.DataFrame({"time": 2.0 + np.arange(n) / FS, "ECG": x[:, 0], "RSP": x[:, 1], "EDA": x[:, 2]}).to_csv(
        path, index=False, float_format="%.17g")
    for name, params in [("hrv", {}), ("physio_rates", {}), ("physio_raw", {"channels": ["RSP", "EDA"]})]:
        ex = EXTRACTORS.build(name, params)
        assert isinstance(ex, P.PhysioExtractor) and P._PhysioExtractor is P.PhysioExtractor
        from_file = ex.extract(MediaRecording(id="s", physio=path))
        from_signal = ex.process_signal(x, ["ECG", "RSP", "EDA"], FS, start_time=2.0)
        pd.testing.assert_frame_equal(from_signal, from_file, rtol=1e-6, atol=1e-9)
    with pytest.raises(ExtractionError, match=r"shape \(10, 2\)"):
        EXTRACTORS.build("hrv", {}).process_signal(np.zeros((10, 2)), ["ECG"], FS)
