"""The extraction runner (affectflow.features.pipeline), raw-media import (corpus.media) and their CLI."""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from affectflow.corpus.corpus import Corpus
from affectflow.corpus.media import (
    ProbeError,
    import_media,
    media_recordings,
    probe_duration,
    read_media_table,
    scan_media_folder,
)
from affectflow.errors import ConfigError, CorpusError, ImportFormatError
from affectflow.features.base import EXTRACTORS, ExtractionError, Extractor, MediaRecording
from affectflow.features.pipeline import (
    InvalidOutput,
    build_extractors,
    extract,
    is_current,
    read_record,
    validate_frame,
)
from affectflow.registry import Registry

SR = 8000


# ---------------------------------------------------------------------------------------------------- fakes
class RmsExtractor(Extractor):
    """Frame RMS and peak of the audio, centred windows of 1 / rate_hz s (a stand-in for a real extractor)."""

    name = "tst_rms"
    modality = "audio"
    inputs = ("audio",)

    def __init__(self, *, rate_hz: float = 2.0, gain: float = 1.0, kill_ids: tuple = ()):
        self.rate_hz = rate_hz
        self.gain = gain
        self.kill_ids = kill_ids

    def columns(self) -> list[str]:
        return ["rms", "peak"]

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        if rec.id in self.kill_ids:
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-job
        if rec.id in os.environ.get("TST_CRASH_WRITE_IDS", "").split(
            ","
        ):  # not a parameter: same config hash
            # die in the middle of writing the parquet: half the bytes reach the (temporary) file, then SIGKILL
            real = pd.DataFrame.to_parquet

            def half_then_die(df, path, *a, **k):
                real(df, path, *a, **k)
                data = Path(path).read_bytes()
                Path(path).write_bytes(data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)

            pd.DataFrame.to_parquet = half_then_die
        try:
            x, sr = sf.read(str(rec.audio_source()), dtype="float64")
        except Exception as e:  # noqa: BLE001
            raise ExtractionError(f"{rec.audio_source()}: cannot read audio ({e})") from e
        hop = int(sr / self.rate_hz)
        n = int(np.ceil(len(x) / hop))
        rows = []
        for k in range(n):
            seg = x[max(0, k * hop - hop // 2) : k * hop + hop // 2]
            rows.append(
                (k / self.rate_hz, self.gain * np.sqrt(np.mean(seg**2)), self.gain * np.max(np.abs(seg)))
            )
        return pd.DataFrame(rows, columns=["time", "rms", "peak"])


class NanExtractor(RmsExtractor):
    name = "tst_nan"

    def extract(self, rec):
        f = super().extract(rec)
        f[["rms", "peak"]] = np.nan
        return f


class BadShapeExtractor(RmsExtractor):
    name = "tst_badshape"

    def extract(self, rec):
        return super().extract(rec).drop(columns=["peak"])


class BoomExtractor(RmsExtractor):
    name = "tst_boom"

    def __init__(self, *, rate_hz: float = 2.0, fail_ids: tuple = ()):
        super().__init__(rate_hz=rate_hz)
        self.fail_ids = fail_ids

    def extract(self, rec):
        if rec.id in self.fail_ids:
            raise RuntimeError("unexpected bug in the extractor")
        return super().extract(rec)


class PhysioMeanExtractor(Extractor):
    name = "tst_physmean"
    modality = "physio"
    inputs = ("physio",)

    def __init__(self, *, rate_hz: float = 2.0):
        self.rate_hz = rate_hz

    def columns(self):
        return ["mean"]

    def extract(self, rec):
        df = pd.read_csv(rec.physio)
        t = np.arange(0, df["time"].iloc[-1], 1 / self.rate_hz)
        return pd.DataFrame({"time": t, "mean": np.interp(t, df["time"], df["ecg"])})


REG = Registry("extractor")
for _cls in (RmsExtractor, NanExtractor, BadShapeExtractor, BoomExtractor, PhysioMeanExtractor):
    REG.register(_cls)
    if _cls.name not in EXTRACTORS.names():  # the CLI looks names up in the global registry
        EXTRACTORS.register(_cls)


# ---------------------------------------------------------------------------------------------------- data
def _tone(path: Path, seconds: float, freq: float, amp: float) -> None:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), amp * np.sin(2 * np.pi * freq * t), SR, subtype="PCM_16")


def _physio(path: Path, seconds: float, rate: float = 50.0) -> None:
    t = np.arange(int(seconds * rate)) / rate
    pd.DataFrame({"time": t, "ecg": np.sin(2 * np.pi * 1.2 * t)}).to_csv(path, index=False)


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    d = tmp_path / "raw"
    d.mkdir()
    for i in range(5):
        _tone(d / f"rec{i}.wav", 3.0 + i, 220.0 * (i + 1), 0.1 * (i + 1))
    _physio(d / "rec0.physio.csv", 3.0)
    _physio(d / "rec1.csv", 4.0)
    return d


@pytest.fixture
def corpus(media_dir: Path, tmp_path: Path) -> Corpus:
    rep = import_media(media_dir, tmp_path / "corpus")
    assert rep.ok, rep.format()
    return Corpus(tmp_path / "corpus")


def _frames(c: Corpus, name: str) -> dict[str, pd.DataFrame]:
    return {rid: c.read_features(name, rid) for rid in c.recording_ids() if c.has_features(name, rid)}


# ---------------------------------------------------------------------------------------------------- import
def test_import_folder_builds_recordings_and_media(corpus: Corpus, media_dir: Path):
    rec = corpus.recordings.set_index("id")
    assert list(rec.index) == [f"rec{i}" for i in range(5)]
    np.testing.assert_allclose(rec["duration"].to_numpy(), [3.0, 4.0, 5.0, 6.0, 7.0], atol=1e-6)
    assert set(rec["partition"]) == {"train"} and rec.loc["rec2", "subject"] == "rec2"
    recs = {r.id: r for r in media_recordings(corpus)}
    assert recs["rec0"].physio == (media_dir / "rec0.physio.csv").resolve()
    assert recs["rec1"].physio == (media_dir / "rec1.csv").resolve()
    assert recs["rec2"].physio is None and recs["rec2"].video is None
    assert recs["rec3"].audio.is_file() and recs["rec3"].duration == pytest.approx(6.0)


def test_scan_rule_and_ambiguity(tmp_path: Path):
    d = tmp_path / "scan"
    d.mkdir()
    for name in [
        "a.wav",
        "a.mp4",
        "a.transcript.json",
        "a.physio.csv",
        "b.flac",
        "b.mp3",
        "c.words.csv",
        "c.edf",
        "notes.md",
        "c.dat",
    ]:
        (d / name).write_bytes(b"x")
    found, ignored, problems = scan_media_folder(d)
    assert found["a"] == {
        "audio": d / "a.wav",
        "video": d / "a.mp4",
        "transcript": d / "a.transcript.json",
        "physio": d / "a.physio.csv",
    }
    assert "b" not in found and problems[0]["id"] == "b" and "2 audio files" in problems[0]["message"]
    assert found["c"] == {"transcript": d / "c.words.csv", "physio": d / "c.edf"}
    assert sorted(Path(p).name for p in ignored) == ["c.dat", "notes.md"]


def test_import_reports_missing_and_corrupt_files(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _tone(raw / "good.wav", 2.0, 300, 0.2)
    (raw / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wav file at all" * 3)
    (raw / "empty.mp4").write_bytes(b"")
    _physio(raw / "p.csv", 5.0)
    manifest = tmp_path / "m.csv"
    pd.DataFrame(
        {
            "id": ["r1", "r2", "r3", "r4"],
            "subject": ["s1", "s1", "s2", ""],
            "partition": ["train", "devel", "", "test"],
            "audio": ["raw/good.wav", "raw/corrupt.wav", "raw/missing.wav", ""],
            "video": ["", "", "raw/empty.mp4", ""],
            "physio": ["", "raw/p.csv", "", ""],
        }
    ).to_csv(manifest, index=False)
    rep = import_media(manifest, tmp_path / "c", partition="test")
    assert not rep.ok
    by_file = {Path(f["file"]).name: f for f in rep.failures if f["file"]}
    assert "corrupt.wav" in by_file and by_file["corrupt.wav"]["id"] == "r2"
    assert by_file["missing.wav"]["message"] == "file not found"
    assert "empty" in by_file["empty.mp4"]["message"]
    # r3 has no readable file: not imported; r4 names no file at all
    assert any(f["id"] == "r3" and "not imported" in f["message"] for f in rep.failures)
    c = Corpus(tmp_path / "c")
    rec = c.recordings.set_index("id")
    assert sorted(rec.index) == ["r1", "r2"]
    assert rec.loc["r2", "duration"] == pytest.approx(5.0)  # from the physiology, the audio being corrupt
    assert rec.loc["r2", "partition"] == "devel" and rec.loc["r1", "subject"] == "s1"
    m = read_media_table(c).set_index("id")
    assert m.loc["r2", "audio"] == "" and m.loc["r2", "physio"].endswith("p.csv")
    report = json.loads((c.path / "reports" / "import_media.json").read_text())
    assert len(report["failures"]) == len(rep.failures)
    # importing again without overwrite: ids already present are reported, nothing replaced
    rep2 = import_media(manifest, tmp_path / "c")
    assert rep2.added == [] and any("already in the corpus" in f["message"] for f in rep2.failures)


def test_probe_durations_edf_wfdb_and_errors(tmp_path: Path):
    import pyedflib
    import wfdb

    sig = np.sin(np.linspace(0, 20, 2000))[:, None]
    edf = tmp_path / "x.edf"
    with pyedflib.EdfWriter(str(edf), 1, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders([{"label": "ECG", "dimension": "mV", "sample_frequency": 100, "physical_min": -2,
                             "physical_max": 2, "digital_min": -32768, "digital_max": 32767}])
        w.writeSamples([sig[:, 0]])
    assert probe_duration(edf, "physio") == pytest.approx(20.0)
    wfdb.wrsamp("y", fs=100, units=["mV"], sig_name=["ECG"], p_signal=sig, fmt=["16"], write_dir=str(tmp_path))
    assert probe_duration(tmp_path / "y.hea", "physio") == pytest.approx(20.0)
    fake = tmp_path / "fake.edf"
    fake.write_bytes(b" " * 256 + b"\0" * 256)
    with pytest.raises(ProbeError, match="fake.edf"):
        probe_duration(fake, "physio")
    nocol = tmp_path / "z.csv"
    pd.DataFrame({"ecg": np.zeros(500)}).to_csv(nocol, index=False)
    with pytest.raises(ProbeError, match="no time column found.*sampling_rate"):
        probe_duration(nocol, "physio")
    assert probe_duration(nocol, "physio", physio_rate_hz=100) == pytest.approx(5.0)
    tr = tmp_path / "t.json"
    tr.write_text(
        json.dumps([{"start": 0.1, "end": 0.5, "word": "hi"}, {"start": 0.6, "end": 1.75, "word": "there"}])
    )
    assert probe_duration(tr, "transcript") == pytest.approx(1.75)


def test_import_errors_are_clear(tmp_path: Path):
    from affectflow.errors import ImportFormatError

    with pytest.raises(ImportFormatError, match="does not exist"):
        import_media(tmp_path / "nope", tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportFormatError, match="No recordings found"):
        import_media(tmp_path / "empty", tmp_path / "c")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"name": ["a"], "audio": ["a.wav"]}).to_csv(bad, index=False)
    with pytest.raises(ImportFormatError, match="no 'id' column"):
        import_media(bad, tmp_path / "c")


# ---------------------------------------------------------------------------------------------------- runner
def test_serial_and_parallel_give_identical_outputs(corpus: Corpus, tmp_path: Path):
    s1 = extract(corpus, {"rms": RmsExtractor(), "phys": PhysioMeanExtractor()}, workers=1, progress=False)
    assert s1.ok and s1.workers == 1
    serial = _frames(corpus, "rms")
    s2 = extract(
        corpus,
        {"rms": RmsExtractor(), "phys": PhysioMeanExtractor()},
        workers=2,
        overwrite=True,
        progress=False,
    )
    assert s2.ok and s2.workers == 2
    counts = s2.counts().set_index("feature_set")
    assert (
        counts.loc["rms", "done"] == 5
        and counts.loc["phys", "done"] == 2
        and counts.loc["phys", "no_input"] == 3
    )
    parallel = _frames(corpus, "rms")
    assert serial.keys() == parallel.keys() and len(serial) == 5
    for rid in serial:
        pd.testing.assert_frame_equal(serial[rid], parallel[rid])
    # the frames are right: rec2 is a 0.3-amplitude tone of 5 s -> RMS 0.3/sqrt(2) in full windows
    f = serial["rec2"]
    assert f["time"].tolist() == [k * 0.5 for k in range(10)]
    np.testing.assert_allclose(f["rms"].iloc[1:-1], 0.3 / np.sqrt(2), rtol=1e-2)
    assert f["rms"].dtype == np.float32


def test_resume_skips_and_config_change_recomputes(corpus: Corpus):
    s1 = extract(corpus, {"rms": RmsExtractor()}, progress=False)
    assert [r.status for r in s1.results] == ["done"] * 5
    f = corpus.feature_file("rms", "rec0")
    mtime = f.stat().st_mtime_ns
    rec0 = read_record(corpus, "rms", "rec0")
    assert rec0["config_hash"] == RmsExtractor().config_hash() and rec0["params"]["gain"] == 1.0
    s2 = extract(corpus, {"rms": RmsExtractor()}, workers=2, progress=False)
    assert [r.status for r in s2.results] == ["skipped"] * 5
    assert f.stat().st_mtime_ns == mtime
    # a record whose hash does not match (or is missing) makes that output recompute
    corpus.path.joinpath("features/rms/.extract/rec3.json").unlink()
    s3 = extract(corpus, {"rms": RmsExtractor()}, progress=False)
    assert {r.recording: r.status for r in s3.results}["rec3"] == "done"
    assert sum(r.status == "skipped" for r in s3.results) == 4
    # changed configuration: everything recomputed, values follow, the feature set declares the new params
    before = corpus.read_features("rms", "rec1")
    s4 = extract(corpus, {"rms": RmsExtractor(gain=2.0)}, workers=2, progress=False)
    assert [r.status for r in s4.results] == ["done"] * 5
    after = corpus.read_features("rms", "rec1")
    np.testing.assert_allclose(after["rms"], 2 * before["rms"], rtol=1e-6)
    info = corpus.feature_set("rms")
    assert info.params["extractor"] == "tst_rms" and info.params["params"]["gain"] == 2.0
    assert info.params["config_hash"] == RmsExtractor(gain=2.0).config_hash() != RmsExtractor().config_hash()
    assert info.rate_hz == 2.0 and info.modality == "audio" and info.columns == ["rms", "peak"]
    assert is_current(corpus, "rms", "rec1", RmsExtractor(gain=2.0).config_hash())


def test_feature_set_name_differs_from_extractor_and_config_files(corpus: Corpus, tmp_path: Path):
    cfg = tmp_path / "x.yaml"
    cfg.write_text(
        "defaults:\n  rate_hz: 4.0\nfeatures:\n  loud:\n    type: tst_rms\n    gain: 3.0\n  tst_rms: {}\n"
    )
    ex = build_extractors(cfg, REG)
    assert list(ex) == ["loud", "tst_rms"] and ex["loud"].gain == 3.0 and ex["loud"].rate_hz == 4.0
    s = extract(corpus, cfg, registry=REG, recordings=["rec1", "rec0"], progress=False)
    assert s.ok and [r.recording for r in s.results[:2]] == ["rec1", "rec0"]
    assert corpus.feature_set("loud").params["extractor"] == "tst_rms"
    np.testing.assert_allclose(
        corpus.read_features("loud", "rec1")["rms"],
        3 * corpus.read_features("tst_rms", "rec1")["rms"],
        rtol=1e-5,
    )
    assert not corpus.has_features("loud", "rec2")
    with pytest.raises(ConfigError, match="Unknown extractor 'nope'"):
        build_extractors({"x": {"type": "nope"}}, REG)
    with pytest.raises(ConfigError, match="no parameters \\['win'\\]"):
        build_extractors({"tst_rms": {"win": 1}}, REG)
    with pytest.raises(ConfigError, match="Invalid feature set name"):
        build_extractors({"bad/name": {"type": "tst_rms"}}, REG)
    with pytest.raises(CorpusError, match="have no raw media"):
        extract(corpus, {"rms": RmsExtractor()}, recordings=["nope"], progress=False)


def test_failures_are_reported_per_file_and_others_continue(corpus: Corpus, media_dir: Path):
    (media_dir / "rec3.wav").write_bytes(b"RIFF garbage" * 10)  # corrupted after import
    s = extract(
        corpus,
        {
            "rms": RmsExtractor(),
            "boom": BoomExtractor(fail_ids=("rec1",)),
            "nan": NanExtractor(),
            "shape": BadShapeExtractor(),
        },
        workers=2,
        progress=False,
    )
    assert not s.ok
    c = s.counts().set_index("feature_set")
    assert (c.loc["rms", "done"], c.loc["rms", "failed"]) == (4, 1)
    assert (c.loc["boom", "done"], c.loc["boom", "failed"]) == (3, 2)
    assert c.loc["nan", "failed"] == 5 and c.loc["shape", "failed"] == 5
    fail = {(r.feature_set, r.recording): r for r in s.failures}
    r = fail[("rms", "rec3")]
    assert r.message.startswith("ExtractionError") and "rec3.wav" in r.message and r.file.endswith("rec3.wav")
    assert (
        "RuntimeError: unexpected bug" in fail[("boom", "rec1")].message
        and "Traceback" in fail[("boom", "rec1")].traceback
    )
    assert "every value is NaN" in fail[("nan", "rec0")].message
    assert "wrong shape" in fail[("shape", "rec0")].message
    # no file for failed jobs, never an all-NaN or wrong-shape parquet
    assert not corpus.has_features("rms", "rec3") and not corpus.has_features("nan", "rec0")
    assert not list((corpus.path / "features" / "shape").glob("*.parquet"))
    text = s.format()
    assert "Failures (" in text and "rec3.wav" in text and "rms" in text
    report = json.loads(Path(s.report_path).read_text())
    assert report["ok"] is False and len(report["failures"]) == len(s.failures)
    assert {(f["feature_set"], f["recording"]) for f in report["failures"]} == set(fail)


def test_failed_recompute_removes_stale_output(corpus: Corpus, media_dir: Path):
    extract(corpus, {"rms": RmsExtractor()}, progress=False)
    assert corpus.has_features("rms", "rec4")
    (media_dir / "rec4.wav").write_bytes(b"")
    s = extract(corpus, {"rms": RmsExtractor(gain=5.0)}, progress=False)
    assert [r.recording for r in s.failures] == ["rec4"]
    assert not corpus.has_features("rms", "rec4") and read_record(corpus, "rms", "rec4") is None


def test_killed_worker_fails_only_its_job(corpus: Corpus):
    s = extract(corpus, {"rms": RmsExtractor(kill_ids=("rec2",))}, workers=2, progress=False)
    st = {r.recording: r for r in s.results}
    assert st["rec2"].status == "failed" and "worker process died" in st["rec2"].message
    assert all(st[f"rec{i}"].status == "done" for i in (0, 1, 3, 4))
    assert not corpus.has_features("rms", "rec2")


def test_crash_during_write_leaves_no_partial_parquet(corpus: Corpus, monkeypatch):
    folder = corpus.path / "features" / "rms"
    monkeypatch.setenv("TST_CRASH_WRITE_IDS", "rec1")
    s = extract(corpus, {"rms": RmsExtractor()}, workers=2, progress=False)
    st = {r.recording: r.status for r in s.results}
    assert st["rec1"] == "failed" and [st[f"rec{i}"] for i in (0, 2, 3, 4)] == ["done"] * 4
    assert not (folder / "rec1.parquet").exists()
    leftovers = list(folder.glob(".rec1.parquet.*.tmp"))
    assert leftovers, "the kill should have left the half-written temporary file"
    for p in folder.glob("*.parquet"):  # every parquet that exists is complete and readable
        assert len(pd.read_parquet(p)) > 0
    # the next run recomputes rec1, skips the others, and removes the temporary file
    monkeypatch.delenv("TST_CRASH_WRITE_IDS")
    s2 = extract(corpus, {"rms": RmsExtractor()}, progress=False)
    st2 = {r.recording: r.status for r in s2.results}
    assert st2["rec1"] == "done" and list(st2.values()).count("skipped") == 4
    assert not list(folder.glob(".*.tmp"))


def test_validate_frame_rules():
    cols = ["a", "b"]
    good = pd.DataFrame({"time": [0.0, 0.5, 1.0], "b": [1.0, 2, 3], "a": [np.inf, 0, 1]})
    out, warns = validate_frame(good, cols, duration=1.2, rate_hz=2.0)
    assert list(out.columns) == ["time", "a", "b"] and np.isnan(out["a"].iloc[0]) and "infinite" in warns[0]
    with pytest.raises(InvalidOutput, match="empty"):
        validate_frame(good.iloc[:0], cols)
    with pytest.raises(InvalidOutput, match="strictly increasing"):
        validate_frame(good.assign(time=[0.0, 0.0, 1.0]), cols)
    with pytest.raises(InvalidOutput, match="not a pandas DataFrame"):
        validate_frame(np.zeros((3, 3)), cols)
    with pytest.raises(InvalidOutput, match="no 'time' column"):
        validate_frame(good.drop(columns="time"), cols)
    _, warns = validate_frame(pd.DataFrame({"time": [0.0, 0.5], "a": [0.0, 0.0], "b": [0.0, np.nan]}), cols)
    assert any("0" in w for w in warns)
    _, warns = validate_frame(
        pd.DataFrame({"time": [0.0, 0.5], "a": [1.0, 1.0], "b": [1.0, 1.0]}), cols, duration=60.0, rate_hz=2.0
    )
    assert any("cover" in w for w in warns)


def test_no_input_is_not_a_failure(corpus: Corpus):
    s = extract(corpus, {"phys": PhysioMeanExtractor()}, progress=False)
    assert s.ok
    st = {r.recording: r for r in s.results}
    assert st["rec2"].status == "no_input" and st["rec2"].message == "no physio input"
    assert st["rec0"].status == "done"


# ---------------------------------------------------------------------------------------------------- CLI
def _parser():
    from affectflow.cli.extract import register

    p = argparse.ArgumentParser(prog="affectflow")
    register(p.add_subparsers(dest="command"))
    return p


def test_cli_import_and_extract_exit_codes(media_dir: Path, tmp_path: Path, capsys):
    p = _parser()
    cpath = tmp_path / "cli_corpus"
    args = p.parse_args(["import-media", str(media_dir), str(cpath), "--subject-regex", r"rec(\d)"])
    assert args.func(args) == 0
    assert Corpus(cpath).recordings["subject"].tolist() == ["0", "1", "2", "3", "4"]
    args = p.parse_args(
        [
            "extract",
            str(cpath),
            "--features",
            "tst_rms,tst_physmean",
            "--set",
            "tst_rms.gain=2.0",
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "tst_rms" in out and "tst_physmean" in out
    assert Corpus(cpath).feature_set("tst_rms").params["params"]["gain"] == 2.0
    # a corrupt file: exit code 1 and the file named in the output
    (media_dir / "rec0.wav").write_bytes(b"junk")
    args = p.parse_args(
        [
            "extract",
            str(cpath),
            "--features",
            "tst_rms",
            "--recordings",
            "rec0,rec1",
            "--overwrite",
            "--no-progress",
        ]
    )
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "rec0.wav" in out and "Failures (1)" in out
    # bad input raises the errors the entry point prints as one paragraph
    with pytest.raises(ConfigError, match="SET.PARAM=VALUE"):
        a = p.parse_args(["extract", str(cpath), "--features", "tst_rms", "--set", "gain=2"])
        a.func(a)
    with pytest.raises(ConfigError, match="not being extracted"):
        a = p.parse_args(["extract", str(cpath), "--features", "tst_rms", "--set", "other.gain=2"])
        a.func(a)
    with pytest.raises(CorpusError):
        a = p.parse_args(["extract", str(tmp_path / "missing"), "--features", "tst_rms"])
        a.func(a)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.wav").write_bytes(b"not audio")
    a = p.parse_args(["import-media", str(bad), str(tmp_path / "c2")])
    with pytest.raises(ImportFormatError, match="x.wav"):  # nothing importable: no (empty) corpus is created
        a.func(a)
    assert not (tmp_path / "c2").exists()


def test_default_config_names_the_default_pipeline():
    from affectflow.cli.extract import resolve_config

    cfg = resolve_config(None, None, [])
    names = {spec.get("type", n) for n, spec in cfg["features"].items()}
    assert {"egemaps", "face_landmarks", "fer", "word_vad", "sentence_embedding"} <= names
    assert names & {"hrv", "phys"} and cfg["defaults"]["rate_hz"] == 2.0
    cfg = resolve_config(None, "egemaps,newthing", ["egemaps.win_dur=2.0", "newthing.layers=[1, 2]"])
    assert cfg["features"]["egemaps"]["win_dur"] == 2.0 and cfg["features"]["newthing"] == {
        "type": "newthing",
        "layers": [1, 2],
    }
