"""Raw-media paths work from any working directory (the `demo --media` bug: media.csv paths were stored relative
to the working directory but resolved relative to the corpus)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from affectflow.corpus.corpus import Corpus
from affectflow.corpus.media import media_recordings, read_media_table, write_media_table
from affectflow.features.pipeline import extract
from affectflow.synthetic.media import generate_media_corpus


def test_write_media_table_path_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = Corpus.create("rel/c", name="c", label_rate_hz=2.0)
    (c.path / "media").mkdir()
    write_media_table(c, pd.DataFrame({"id": ["a", "b", "c"],
                                       "audio": ["media/a.wav", (tmp_path / "rel/c/media/b.wav"), "/elsewhere/c.wav"]}))
    t = read_media_table(c)
    assert t["audio"].tolist() == ["media/a.wav", "media/b.wav", "/elsewhere/c.wav"]  # corpus-relative or absolute
    write_media_table(c, t)  # a table read back writes back unchanged
    assert read_media_table(c)["audio"].tolist() == t["audio"].tolist()
    recs = media_recordings(c)
    assert recs[0].audio == Path("rel/c/media/a.wav") and recs[2].audio == Path("/elsewhere/c.wav")


def test_media_corpus_made_and_extracted_from_a_relative_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = generate_media_corpus(Path("demo_media_out") / "corpus", n_subjects=1, duration_s=4.0, audio=False,
                                   transcript=False, video_fps=5, video_size=32, physio_rate_hz=100.0)
    table = read_media_table(corpus)
    assert table["video"].iloc[0] == "media/S000_r0.mp4"  # relative to the corpus, not to the working directory
    assert all(Path(r.video).is_file() and Path(r.physio).is_file() for r in media_recordings(corpus))
    cfg = tmp_path / "x.yaml"
    cfg.write_text("features:\n  crop_pixels: {type: crop_pixels, rate_hz: 2.0, grid: 2}\n"
                   "  physio_rates: {type: physio_rates}\n")
    summary = extract(Corpus("demo_media_out/corpus"), cfg, workers=1, progress=False)
    assert summary.ok, summary.format()
    # and from another working directory, through the corpus's relative path from there
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert all(Path(r.video).is_file() for r in media_recordings(Corpus("../demo_media_out/corpus")))
