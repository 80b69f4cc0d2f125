"""`affectflow augment`: noise at the asked SNR, babble only from other training speakers, copies that keep
their source's subject and labels, reproducible, refused twice, kept with their source by the folds."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import affectflow.augment.audio as aug_audio
import affectflow.augment.corpus as aug_corpus
from affectflow.augment.audio import mix_at_snr, parse_snr
from affectflow.augment.corpus import augment_corpus
from affectflow.augment.image import apply_uint8, augment_batch
from affectflow.cli.main import main
from affectflow.corpus.corpus import Corpus
from affectflow.errors import ConfigError
from affectflow.features.pipeline import extract
from affectflow.io.audio import read_audio
from affectflow.procedures.folds import cv_folds
from affectflow.synthetic.media import generate_media_corpus


@pytest.fixture(scope="module")
def media_corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("aug")
    generate_media_corpus(base / "mc", n_subjects=6, duration_s=6.0, seed=1, physio=False, transcript=False,
                          video_size=32, video_fps=10)
    return base


def test_snr_is_exact_and_parsed():
    rng = np.random.default_rng(0)
    s, w = rng.normal(size=8000).astype(np.float32), rng.normal(size=3000)
    for snr in (5.0, 11.0):
        y = mix_at_snr(s, w, snr, np.random.default_rng(1))
        noise = y.astype(np.float64) - s
        assert 10 * np.log10(np.sum(s.astype(np.float64) ** 2) / np.sum(noise ** 2)) == pytest.approx(snr, abs=1e-3)
    assert parse_snr("5:11") == [5, 6, 7, 8, 9, 10, 11] and parse_snr("8") == [8]
    with pytest.raises(ConfigError, match="LOW:HIGH"):
        parse_snr("11:5")


def test_image_transforms_known_answers():
    img = np.full((20, 20, 3), 100, np.uint8)
    assert (apply_uint8(img, {"brightness": 1.5}) == 150).all()
    cut = apply_uint8(img, {"cutout": (0.25, 0.0, 0.0)})
    assert (cut[:5, :5] == 0).all() and (cut[5:, :] == 100).all()
    assert (apply_uint8(img, {"solarize": 0.3}) == 155).all()  # 100/255 > 0.3 → 1 − v
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    a = augment_batch(x, p=1.0)
    torch.manual_seed(0)
    assert torch.equal(a, augment_batch(x, p=1.0)) and not torch.equal(a, x)  # seeded by the torch RNG
    assert torch.equal(augment_batch(x, p=0.0), x)


def test_augmented_copies(media_corpus, monkeypatch):
    base = media_corpus
    work = base / "a"
    shutil.copytree(base / "mc", work)
    c = Corpus(work)
    before = c.recordings.copy()
    train = before[before["partition"] == "train"]
    seen = []
    real = aug_audio.babble

    def spy(sources, n, rng, n_speakers=3):
        seen.append([np.asarray(s) for s in sources])
        return real(sources, n, rng, n_speakers)

    monkeypatch.setattr(aug_corpus, "babble", spy)  # the name augment_corpus calls
    rep = augment_corpus(work, audio_noise="babble", video=["brightness", "blur", "rotate", "cutout"], copies=2,
                         seed=7)
    recs = Corpus(work).recordings
    new = recs[recs["augmented_from"].fillna("") != ""]
    assert len(new) == 2 * len(train) == len(rep.added)
    for _, r in new.iterrows():
        src = before[before["id"] == r["augmented_from"]].iloc[0]
        assert (r["subject"], r["partition"], r["duration"]) == (src["subject"], "train", src["duration"])
        pd.testing.assert_frame_equal(c.read_labels(r["id"]), c.read_labels(src["id"]))
    # babble only from other training subjects: every source array is the audio of one of them
    train_audio = {rid: read_audio(work / "media" / f"{rid}.wav", 16000) for rid in train["id"]}
    first_src = train["id"].iloc[0]
    others = [rid for rid in train["id"] if train.set_index("id").loc[rid, "subject"]
              != train.set_index("id").loc[first_src, "subject"]]
    assert len(seen[0]) == len(others)
    for arr in seen[0]:
        assert any(np.array_equal(arr, train_audio[o]) for o in others)
    # the noise really is at the drawn SNR
    table = pd.read_csv(work / "media" / "augmented" / "seed7" / "augment.csv")
    row = table.iloc[0]
    y = read_audio(work / "media" / "augmented" / "seed7" / row["id"] / "audio.wav", None)
    x = train_audio[row["augmented_from"]]
    n = min(len(x), len(y))
    snr = 10 * np.log10(np.sum(x[:n].astype(np.float64) ** 2) / np.sum((y[:n] - x[:n]).astype(np.float64) ** 2))
    assert float(row["snr_db"]) in range(5, 12) and snr == pytest.approx(float(row["snr_db"]), abs=0.05)
    # subject-disjoint folds keep every copy with its source
    for fold in cv_folds(Corpus(work), k=3, seed=0):
        for _, r in new.iterrows():
            assert fold.mapping[r["id"]] == fold.mapping[r["augmented_from"]]
    # ordinary extraction computes their features
    extract(work, {"logmel": {"rate_hz": 2.0, "n_mels": 8}}, progress=False)
    assert all(Corpus(work).has_features("logmel", rid) for rid in new["id"])
    # same seed on a fresh copy: the same files; the same seed twice on one corpus: refused
    again = base / "b"
    shutil.copytree(base / "mc", again)
    augment_corpus(again, audio_noise="babble", video=["brightness", "blur", "rotate", "cutout"], copies=2, seed=7)
    rid = rep.added[3]
    a, b = work / "media/augmented/seed7" / rid, again / "media/augmented/seed7" / rid
    assert np.array_equal(read_audio(a / "audio.wav", None), read_audio(b / "audio.wav", None))  # (the WAV header
    assert (a / "video.mp4").read_bytes() == (b / "video.mp4").read_bytes()                     # has a time stamp)
    with pytest.raises(ConfigError, match="exist already"):
        augment_corpus(work, audio_noise="babble", seed=7)


def test_cli_errors(media_corpus, capsys):
    assert main(["augment", str(media_corpus / "mc"), "--video", "sparkle"]) == 2
    assert "sparkle" in capsys.readouterr().err
    assert main(["augment", str(media_corpus / "mc")]) == 2
    assert "Nothing to augment" in capsys.readouterr().err


def test_crop_folders_are_transformed_frame_by_frame(tmp_path):
    from affectflow.corpus.affwild2 import import_affwild2
    from affectflow.synthetic.affwild2 import generate_affwild2

    generate_affwild2(tmp_path / "aw", n_videos=4, duration_s=2.0, duration_jitter_s=0.0, crop_size=16,
                      two_person_every=0, missing_crop_fraction=0.2, seed=1)
    corpus, _ = import_affwild2(tmp_path / "aw", tmp_path / "c", progress=False)
    rep = augment_corpus(corpus.path, video=["blur", "cutout"], copies=1, seed=2)
    recs = Corpus(corpus.path).recordings
    for new in rep.added:
        row = recs[recs["id"] == new].iloc[0]
        src = recs[recs["id"] == row["augmented_from"]].iloc[0]
        assert row["label_rate_hz"] == src["label_rate_hz"]  # the per-video frame rate is kept
        out = corpus.path / "media" / "augmented" / "seed2" / new / "video"
        orig = corpus.path.parent / "aw" / "cropped_aligned" / row["augmented_from"]
        assert sorted(int(f.stem) for f in out.iterdir()) == sorted(int(f.stem) for f in orig.iterdir())
    extract(corpus.path, {"crop_pixels": {"grid": 4}}, progress=False)
    assert all(Corpus(corpus.path).has_features("crop_pixels", rid) for rid in rep.added)
