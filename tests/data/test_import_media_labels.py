"""import-media: labels (per-recording label files, MuSe per-dimension CSVs, a manifest column) and the
per-recording folder layout <id>/<kind>.<ext>."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from affectflow.cli.main import main
from affectflow.corpus.corpus import Corpus
from affectflow.corpus.media import import_media, read_media_table, scan_media_folder


def _wav(path: Path, seconds: float = 3.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(16000 * seconds), np.float32), 16000)
    return path


def _labels(path: Path, dims=("arousal", "valence"), n=6, ms=False) -> pd.DataFrame:
    t = np.arange(n) * 0.5
    df = pd.DataFrame({"timestamp" if ms else "time": (t * 1000).astype(int) if ms else t})
    for k, d in enumerate(dims):
        df[d] = np.linspace(-0.5, 0.5, n) * (k + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return df


def test_scan_per_recording_folders(tmp_path):
    src = tmp_path / "rec"
    _wav(src / "S01" / "audio.wav")
    (src / "S01" / "transcript.csv").write_text("start,end,word\n0.1,0.4,hello\n0.5,0.9,world\n")
    _labels(src / "S01" / "labels.csv")
    _wav(src / "S02" / "S02.wav")
    (src / "S02" / "notes.wav").write_bytes(b"")  # another recording's name inside S02/: not S02's
    _wav(src / "S03.wav")
    (src / "transcript.csv").write_text("start,end,word\n0,1,x\n")  # names no recording
    found, ignored, problems = scan_media_folder(src)
    assert found["S01"] == {"audio": src / "S01" / "audio.wav", "transcript": src / "S01" / "transcript.csv",
                            "labels": src / "S01" / "labels.csv"}
    assert found["S02"] == {"audio": src / "S02" / "S02.wav"} and found["S03"] == {"audio": src / "S03.wav"}
    assert "transcript" not in found and str(src / "transcript.csv") in ignored
    assert str(src / "S02" / "notes.wav") in ignored and not problems


def test_import_media_with_labels_in_all_three_forms(tmp_path):
    src = tmp_path / "rec"
    _wav(src / "S01" / "audio.wav")
    lab1 = _labels(src / "S01" / "labels.csv")
    _wav(src / "S02.wav")
    lab2 = _labels(src / "S02.labels.csv", n=4)
    _wav(src / "S03.wav")
    muse = tmp_path / "muse"
    for d in ("arousal", "valence"):
        _labels(muse / d / "S03.csv", dims=("value",), ms=True)
    rep = import_media(src, tmp_path / "c", labels=muse)
    assert rep.ok, rep.format()
    c = Corpus(tmp_path / "c")
    assert c.label_set().dims == ["arousal", "valence"] and c.label_set().rate_hz == 2.0
    np.testing.assert_allclose(c.read_labels("S01")["valence"], lab1["valence"])
    assert len(c.read_labels("S02")) == 4
    s3 = c.read_labels("S03")
    np.testing.assert_allclose(s3["time"], np.arange(6) * 0.5)  # ms -> s
    np.testing.assert_allclose(s3["arousal"], np.linspace(-0.5, 0.5, 6), rtol=1e-6)
    assert read_media_table(c).set_index("id").loc["S01", "audio"].endswith("S01/audio.wav")


def test_manifest_labels_column_and_bad_label_file(tmp_path, capsys):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "b.wav")
    _labels(tmp_path / "a_labels.csv")
    (tmp_path / "b_labels.csv").write_text("time,arousal\n0,0.1\n0,0.2\n")  # times not increasing
    pd.DataFrame({"id": ["a", "b"], "audio": ["a.wav", "b.wav"],
                  "labels": ["a_labels.csv", "b_labels.csv"]}).to_csv(tmp_path / "m.csv", index=False)
    assert main(["import-media", str(tmp_path / "m.csv"), str(tmp_path / "c"), "-q"]) == 1  # a problem: exit 1
    out = capsys.readouterr().out
    assert "b [labels]" in out and "strictly increasing" in out
    c = Corpus(tmp_path / "c")
    assert set(c.recordings["id"]) == {"a", "b"}  # b is imported, without labels
    assert c.read_labels("a") is not None and c.read_labels("b") is None


def test_folder_scan_says_what_it_assumed_and_takes_a_recording_map(tmp_path, capsys):
    _wav(tmp_path / "src" / "S01.wav")
    _wav(tmp_path / "src" / "S02.wav")
    assert main(["import-media", str(tmp_path / "src"), str(tmp_path / "c1"), "-q"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "all are in partition 'train' with subject = recording id" in out and "--map FILE" in out
    pd.DataFrame({"id": ["S01", "S02", "S09"], "partition": ["train", "devel", "test"],
                  "subject": ["alice", "bob", "carol"]}).to_csv(tmp_path / "map.csv", index=False)
    assert main(["import-media", str(tmp_path / "src"), str(tmp_path / "c2"), "--map", str(tmp_path / "map.csv"),
                 "-q"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 id(s) name no recording found here: ['S09']" in out and "subject = recording id" not in out
    rec = Corpus(tmp_path / "c2").recordings.set_index("id")
    assert rec.loc["S02", "partition"] == "devel" and rec.loc["S01", "subject"] == "alice"
    pd.DataFrame({"id": ["S01", "S02\n"], "partition": ["train", "../x"]}).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["import-media", str(tmp_path / "src"), str(tmp_path / "c3"), "--map", str(tmp_path / "bad.csv")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "invalid recording id" in err and not (tmp_path / "c3").exists()
