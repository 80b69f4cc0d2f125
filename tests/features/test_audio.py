"""Tests of the audio reader (affectflow.io.audio) and the audio extractors (affectflow.features.audio).

All inputs are made here: harmonic tones with a little noise, near-silence, stereo 44.1 kHz wavs, an mp4 with
an AAC track and an mp3 written with PyAV, a tiny random wav2vec2/HuBERT saved with save_pretrained, and (only
if espeak-ng is installed) synthetic speech for the VAD.
"""

from __future__ import annotations

import fractions
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pandas import testing as pd_testing

sf = pytest.importorskip("soundfile")
av = pytest.importorskip("av")
pytest.importorskip("soxr")

import affectflow.features.audio as A  # noqa: E402  (importing it registers the extractors)
from affectflow.errors import ConfigError  # noqa: E402
from affectflow.features.base import EXTRACTORS, ExtractionError, MediaRecording  # noqa: E402
from affectflow.io.audio import audio_duration, audio_info, iter_audio_blocks, read_audio  # noqa: E402

SR = 16000
F0 = 220.0
F0_SEMITONES = 12 * np.log2(F0 / 27.5)  # eGeMAPS F0 unit: semitones above 27.5 Hz -> 36.0
TONE_S, QUIET_S = 5.0, 5.3
DURATION = TONE_S + QUIET_S


# --------------------------------------------------------------------------------------------------- signals
def harmonic(dur: float, sr: int = SR, f0: float = F0, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """A voiced-like tone: 6 harmonics of f0 with 1/k amplitudes, slight vibrato, plus noise at -50 dB."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(dur * sr))) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.002 * np.sin(2 * np.pi * 5 * t))) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 7))
    return (amp * x / np.abs(x).max() + 1e-3 * rng.standard_normal(t.size)).astype(np.float32)


def syllables(dur: float, sr: int = SR, seed: int = 2) -> np.ndarray:
    """Speech-like rhythm: 0.25 s voiced syllables (f0 150-250 Hz) separated by 0.1 s pauses."""
    rng = np.random.default_rng(seed)
    parts, n = [], int(round(dur * sr))
    while sum(p.size for p in parts) < n:
        s = harmonic(0.25, sr, f0=float(rng.uniform(150, 250)), seed=int(rng.integers(1 << 30)))
        parts += [
            s * np.hanning(s.size).astype(np.float32) ** 0.3,
            quiet(0.1, sr, seed=int(rng.integers(1 << 30))),
        ]
    return np.concatenate(parts)[:n]


def quiet(dur: float, sr: int = SR, seed: int = 1) -> np.ndarray:
    """Near-silence: white noise at about -80 dBFS."""
    return (1e-4 * np.random.default_rng(seed).standard_normal(int(round(dur * sr)))).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * sr / x.size)


def write_mp4(path: Path, x: np.ndarray, sr: int, *, audio: bool = True, video: bool = True) -> Path:
    """An mp4 with a tiny H.264 video track and/or a stereo AAC track (right channel = half the left)."""
    c = av.open(str(path), "w")
    dur = x.size / sr
    if video:  # every stream must exist before the first packet is muxed
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
    if audio:
        a = c.add_stream("aac", rate=sr, layout="stereo")
    if video:
        for i in range(int(dur * 25)):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), (7 * i) % 255, np.uint8), format="rgb24")
            for p in vs.encode(frame):
                c.mux(p)
    if audio:
        data = np.stack([x, 0.5 * x]).astype(np.float32)
        for i in range(0, x.size, 1024):
            fr = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data[:, i : i + 1024]), format="fltp", layout="stereo"
            )
            fr.sample_rate, fr.pts, fr.time_base = sr, i, fractions.Fraction(1, sr)
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    if video:
        for p in vs.encode(None):
            c.mux(p)
    c.close()
    return path


def write_mp3(path: Path, x: np.ndarray, sr: int) -> Path:
    c = av.open(str(path), "w")
    a = c.add_stream("mp3", rate=sr, layout="mono")
    for i in range(0, x.size, 1152):
        fr = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x[None, i : i + 1152]), format="fltp", layout="mono"
        )
        fr.sample_rate, fr.pts, fr.time_base = sr, i, fractions.Fraction(1, sr)
        for p in a.encode(fr):
            c.mux(p)
    for p in a.encode(None):
        c.mux(p)
    c.close()
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio")
    out = {}
    # 5 s harmonic tone then 5.3 s near-silence, 16 kHz mono
    out["tone"] = d / "tone_quiet.wav"
    sf.write(out["tone"], np.concatenate([harmonic(TONE_S), quiet(QUIET_S)]), SR, subtype="FLOAT")
    out["syllables"] = d / "syllables.wav"
    sf.write(out["syllables"], syllables(DURATION), SR, subtype="FLOAT")
    # stereo 44.1 kHz: left 440 Hz sine (amplitude 0.5), right silent -> mono = 0.25 * sine
    t = np.arange(int(2.0 * 44100)) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    out["stereo"] = d / "stereo44k.wav"
    sf.write(out["stereo"], np.stack([left, np.zeros_like(left)], 1), 44100, subtype="PCM_24")
    out["stereo_flac"] = d / "stereo44k.flac"
    sf.write(out["stereo_flac"], np.stack([left, np.zeros_like(left)], 1), 44100, subtype="PCM_24")
    x44 = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(3.0 * 44100)) / 44100)).astype(np.float32)
    out["mp4"] = write_mp4(d / "clip.mp4", x44, 44100)
    out["mp3"] = write_mp3(d / "clip.mp3", x44, 44100)
    out["video_only"] = write_mp4(d / "video_only.mp4", x44, 44100, audio=False)
    out["short"] = d / "short.wav"
    sf.write(out["short"], harmonic(0.3), SR)
    return out


def rec(path: Path) -> MediaRecording:
    return MediaRecording(id=path.stem, audio=path)


# ---------------------------------------------------------------------------------------------------- reader
def test_reader_resamples_and_mixes_down(media):
    x = read_audio(media["stereo"], 16000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(x.size - 2.0 * 16000) <= 1
    assert peak_hz(x, 16000) == pytest.approx(440, abs=1.0)
    # mono = mean of channels: 0.5 * sine and 0 -> amplitude 0.25, RMS 0.25 / sqrt(2)
    assert np.sqrt(np.mean(x[1000:-1000] ** 2)) == pytest.approx(0.25 / np.sqrt(2), rel=0.01)
    native = read_audio(media["stereo"], None)
    assert native.size == 2 * 44100
    np.testing.assert_allclose(
        read_audio(media["stereo_flac"], 16000), x, atol=1e-6
    )  # lossless: same samples
    assert audio_duration(media["stereo"]) == pytest.approx(2.0)
    info = audio_info(media["stereo"])
    assert (info.sample_rate, info.channels, info.backend) == (44100, 2, "soundfile")


def test_reader_video_audio_track_and_mp3(media):
    for key in ("mp4", "mp3"):
        x = read_audio(media[key], 16000)
        assert abs(x.size / 16000 - 3.0) < 0.01, key  # AAC priming/padding removed
        assert audio_duration(media[key]) == pytest.approx(3.0, abs=0.01)
        assert peak_hz(x[4000:-4000], 16000) == pytest.approx(440, abs=1.5)
    x = read_audio(media["mp4"], 16000)
    # stereo track (L = s, R = s/2) -> mono amplitude 0.75 * 0.3
    assert np.sqrt(np.mean(x[4000:-4000] ** 2)) == pytest.approx(0.225 / np.sqrt(2), rel=0.05)
    info = audio_info(media["mp4"])
    assert (info.backend, info.codec, info.channels) == ("pyav", "aac", 2)
    # an extractor given only the video reads its audio track
    ext = EXTRACTORS.build("logmel", {"rate_hz": 25.0})
    df = ext.extract(MediaRecording(id="v", video=media["mp4"]))
    assert len(df) == 3 * 25 + 1
    mel = A.mel_filterbank(SR, 512, 64, 125.0, 7500.0)
    band = int(np.argmax(mel[:, round(440 * 512 / SR)]))
    assert np.median(df[ext.columns()].to_numpy()[5:-5].argmax(axis=1)) == pytest.approx(band, abs=1)


def test_iter_audio_blocks_reassembles_read_audio(media):
    whole = read_audio(media["mp4"], 16000)
    blocks = list(iter_audio_blocks(media["mp4"], 16000, block_s=1.0, overlap_s=0.25))
    hop = 12000
    assert [b.start for b in blocks] == [i * hop for i in range(len(blocks))]
    assert [b.is_last for b in blocks] == [False] * (len(blocks) - 1) + [True]
    assert all(b.samples.size == 16000 for b in blocks[:-1])
    np.testing.assert_array_equal(blocks[1].samples[:4000], blocks[0].samples[-4000:])
    rebuilt = np.concatenate([b.samples[:hop] for b in blocks[:-1]] + [blocks[-1].samples])
    np.testing.assert_array_equal(rebuilt, whole)
    with pytest.raises(ValueError, match="overlap_s"):
        next(iter_audio_blocks(media["mp4"], 16000, block_s=1.0, overlap_s=1.0))


def _corrupt_files(d: Path, media) -> dict[str, tuple[Path, str]]:
    wav = d / "good.wav"
    sf.write(wav, harmonic(2.0), SR, subtype="PCM_16")
    raw = wav.read_bytes()
    cases = {}
    (d / "empty.wav").write_bytes(b"")
    cases["empty"] = (d / "empty.wav", "empty")
    (d / "missing.wav").unlink(missing_ok=True)
    cases["missing"] = (d / "missing.wav", "does not exist")
    (d / "garbage.wav").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    cases["garbage"] = (d / "garbage.wav", "unsupported format or corrupt")
    (d / "trunc.wav").write_bytes(raw[: len(raw) // 2])
    cases["truncated wav"] = (d / "trunc.wav", "truncated: its header declares 32000 samples")
    (d / "header_only.wav").write_bytes(raw[:44])
    cases["header only"] = (d / "header_only.wav", "truncated")
    mp4 = media["mp4"].read_bytes()
    (d / "trunc.mp4").write_bytes(mp4[: len(mp4) // 2])
    cases["truncated mp4"] = (d / "trunc.mp4", "corrupt|truncated")
    (d / "notes.mp3").write_text("this is not audio\n" * 20)
    cases["text as mp3"] = (d / "notes.mp3", "unsupported format")
    cases["no audio track"] = (media["video_only"], "no audio stream")
    return cases


def test_errors_name_the_file(tmp_path, media):
    for what, (path, msg) in _corrupt_files(tmp_path, media).items():
        with pytest.raises(ExtractionError, match=msg) as ei:
            read_audio(path, 16000)
        assert path.name in str(ei.value), what
        with pytest.raises(ExtractionError, match=path.name):
            EXTRACTORS.build("logmel").extract(rec(path))
    with pytest.raises(ExtractionError, match="neither an audio nor a video"):
        EXTRACTORS.build("egemaps").extract(MediaRecording(id="nothing"))


# ----------------------------------------------------------------------------------------------- ssl fixture
@pytest.fixture(scope="module")
def ssl_models(tmp_path_factory) -> dict[str, Path]:
    torch = pytest.importorskip("torch")
    tr = pytest.importorskip("transformers")
    small = dict(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    out = {}
    torch.manual_seed(0)
    for kind, cfg, cls in [
        ("wav2vec2", tr.Wav2Vec2Config, tr.Wav2Vec2Model),
        ("hubert", tr.HubertConfig, tr.HubertModel),
    ]:
        d = tmp_path_factory.mktemp(kind)
        cls(cfg(**small)).eval().save_pretrained(d)
        if kind == "wav2vec2":
            tr.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(d)
        out[kind] = d
    return out


def _build(name: str, rate: float, ssl_models=None, **kw):
    if name == "ssl":
        kw.setdefault("model_dir", str(ssl_models["wav2vec2"]))
    return EXTRACTORS.build(name, {"rate_hz": rate, **kw})


NAMES = ["egemaps", "egemaps_lld", "logmel", "ssl", "vad"]
DIMS = {"egemaps": 88, "egemaps_lld": 25, "logmel": 64, "ssl": 32, "vad": 2}


# -------------------------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("rate", [2.0, 25.0])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_columns_and_grid(name, rate, media, request):
    if name == "vad":
        pytest.importorskip("silero_vad")
    if name.startswith("egemaps"):
        pytest.importorskip("opensmile")
    models = request.getfixturevalue("ssl_models") if name == "ssl" else None
    ext = _build(name, rate, models)
    assert (ext.modality, ext.inputs) == ("audio", ("audio",))
    df = ext.extract(rec(media["tone"]))
    k = int(np.floor(DURATION * rate + 1e-9)) + 1  # grid points k / rate inside [0, D]
    assert df.shape == (k, 1 + DIMS[name])
    assert list(df.columns) == ["time", *ext.columns()]
    assert df["time"].dtype == np.float64
    assert all(df[c].dtype == np.float32 for c in ext.columns())
    np.testing.assert_array_equal(df["time"].to_numpy(), np.arange(k) / rate)
    values = df[ext.columns()].to_numpy()
    assert np.isfinite(values[: int(TONE_S * rate)]).any(axis=1).all()  # no empty frame while the tone plays
    json.dumps(ext.params())
    assert pickle.loads(pickle.dumps(ext)).params() == ext.params()


@pytest.mark.parametrize("name", NAMES)
def test_process_signal_equals_extract_of_the_file(name, media, request):
    """The signal verb gives the frames extract gives for a file of the same samples: bit for bit at the file's
    rate and, through the same chunked soxr stream, when resampling a 44.1 kHz stereo signal."""
    if name == "vad":
        pytest.importorskip("silero_vad")
    if name.startswith("egemaps"):
        pytest.importorskip("opensmile")
    models = request.getfixturevalue("ssl_models") if name == "ssl" else None
    for key in ("tone", "stereo"):
        x, sr = sf.read(media[key], dtype="float32", always_2d=True)
        on_file = _build(name, 5.0, models).extract(rec(media[key]))
        in_memory = _build(name, 5.0, models).process_signal(x, sr)
        pd_testing.assert_frame_equal(in_memory, on_file, check_exact=True)


def test_process_signal_scales_integers_and_refuses_bad_input(tmp_path):
    pytest.importorskip("opensmile")
    ext = _build("logmel", 10.0)
    x = (0.4 * np.sin(2 * np.pi * 300 * np.arange(SR) / SR) * 32767).astype(np.int16)
    as_float = ext.process_signal(x.astype(np.float32) / 32768.0, SR)
    pd_testing.assert_frame_equal(ext.process_signal(x, SR), as_float, check_exact=True)
    f = tmp_path / "pcm16.wav"
    sf.write(f, x, SR, subtype="PCM_16")  # soundfile reads int16 files scaled by 1 / 32768, as the verb does
    pd_testing.assert_frame_equal(ext.extract(rec(f)), as_float, check_exact=True)
    for bad, msg in [(np.zeros(0, np.float32), "contains no audio samples"),
                     (np.array([0.0, np.nan], np.float32), "NaN or infinite"),
                     (np.zeros((2, 2, 2), np.float32), "shape"),
                     (np.zeros(10, np.uint8), "dtype")]:
        with pytest.raises(ExtractionError, match=msg) as e:
            ext.process_signal(bad, SR, name="mic")
        assert "'mic'" in str(e.value)
    with pytest.raises(ExtractionError, match="sampling_rate"):
        ext.process_signal(np.zeros(100, np.float32), 0)


def _one_pass_and_streamed(name: str, rate: float, path: Path, block_s: float = 1.3):
    one = _build(name, rate).extract(rec(path))
    ext = _build(name, rate)
    ext.block_s = block_s  # ~8 blocks over the 10.3 s file, each read with its own context
    return one, ext.extract(rec(path))


@pytest.mark.parametrize("rate", [2.0, 25.0])
@pytest.mark.parametrize("name", ["egemaps", "egemaps_lld", "logmel", "vad"])
def test_streaming_equals_one_pass(name, rate, media):
    pytest.importorskip("opensmile" if name.startswith("egemaps") else "numpy")
    if name == "vad":
        pytest.importorskip("silero_vad")
    one, streamed = _one_pass_and_streamed(name, rate, media["syllables"])
    np.testing.assert_array_equal(streamed.to_numpy(), one.to_numpy())


@pytest.mark.parametrize("name", ["egemaps", "egemaps_lld"])
def test_streaming_through_a_5s_sustained_tone(name, media):
    """Exact except jitter/shimmer, which openSMILE tracks through a voiced stretch from its onset."""
    pytest.importorskip("opensmile")
    one, streamed = _one_pass_and_streamed(name, 2.0, media["tone"])
    exact = [c for c in one.columns if not c.startswith(("jitterLocal", "shimmerLocal"))]
    assert len(one.columns) - len(exact) == (4 if name == "egemaps" else 2)
    np.testing.assert_array_equal(streamed[exact].to_numpy(), one[exact].to_numpy())
    for c in ("jitterLocal_sma3nz" + ("_amean" if name == "egemaps" else ""),):
        np.testing.assert_allclose(streamed[c], one[c], rtol=0.2, atol=1e-4)


def test_egemaps_streaming_at_a_rate_off_the_10ms_grid(media):
    pytest.importorskip("opensmile")
    one, streamed = _one_pass_and_streamed("egemaps", 30.0, media["syllables"], block_s=2.0)
    np.testing.assert_array_equal(
        streamed.to_numpy(), one.to_numpy()
    )  # hop 33.3 ms: 10 ms step, nearest window
    assert len(one) == int(DURATION * 30) + 1


# ---------------------------------------------------------------------------------------------------- values
def test_egemaps_known_answers_and_window_centring(media):
    pytest.importorskip("opensmile")
    df = _build("egemaps", 2.0).extract(rec(media["tone"])).set_index("time")
    f0 = df["F0semitoneFrom27.5Hz_sma3nz_amean"]
    loud = df["loudness_sma3_amean"]
    tone = [1.0, 2.0, 3.0, 4.0, 4.5]  # windows [t - 0.5, t + 0.5) inside the tone (0-5 s)
    np.testing.assert_allclose(f0.loc[tone], F0_SEMITONES, atol=0.5)
    assert (f0.loc[[5.5, 6.0, 8.0, 9.5]] == 0).all()  # no voiced frame in the quiet part
    # the window is centred on `time`: 4.5 s (all tone) is as loud as 3 s; 5.0 s is half tone; 5.5 s none
    assert loud.loc[4.5] == pytest.approx(loud.loc[3.0], rel=0.1)
    assert 0.3 * loud.loc[3.0] < loud.loc[5.0] < 0.8 * loud.loc[3.0]
    assert loud.loc[5.5] < 0.05 * loud.loc[3.0]
    # edge frames (reflection padding) look like their neighbours, not like silence
    assert loud.loc[0.0] == pytest.approx(loud.loc[1.0], rel=0.15)
    # a longer window at 25 Hz gives the same F0 inside the tone
    df25 = _build("egemaps", 25.0, win_dur=2.0).extract(rec(media["tone"]))
    mid = df25[(df25.time >= 1.0) & (df25.time <= 4.0)]
    np.testing.assert_allclose(mid["F0semitoneFrom27.5Hz_sma3nz_amean"], F0_SEMITONES, atol=0.5)


def test_egemaps_lld_pooling(media):
    pytest.importorskip("opensmile")
    f0 = "F0semitoneFrom27.5Hz_sma3nz"
    df = _build("egemaps_lld", 2.0).extract(rec(media["tone"])).set_index("time")
    np.testing.assert_allclose(df.loc[1.0:4.5, f0], F0_SEMITONES, atol=0.5)
    assert df.loc[5.5:, f0].isna().all()  # voiced-only LLDs are missing where nothing is voiced
    assert df.loc[5.5:, "Loudness_sma3"].notna().all()  # other LLDs still there
    zeros = _build("egemaps_lld", 2.0, voiced_only=False).extract(rec(media["tone"])).set_index("time")
    assert (zeros.loc[5.5:, f0] == 0).all()
    # the pooled mean equals the mean of openSMILE's own LLD frames in [t - 0.25, t + 0.25)
    import opensmile

    lld = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
    ).process_signal(read_audio(media["tone"], SR), SR)
    centre = lld.index.get_level_values("start").total_seconds().to_numpy() + 0.01
    for t in (2.0, 7.0):
        sel = (centre >= t - 0.25) & (centre < t + 0.25)
        assert df.loc[t, "Loudness_sma3"] == pytest.approx(
            lld["Loudness_sma3"].to_numpy()[sel].mean(), rel=1e-5
        )


def test_logmel_band_of_a_sine(tmp_path):
    f = 1000.0
    path = tmp_path / "sine1k.wav"
    t = np.arange(3 * SR) / SR
    sf.write(path, (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32), SR)
    ext = _build("logmel", 25.0, n_mels=40)
    df = ext.extract(rec(path))
    mel = A.mel_filterbank(SR, 512, 40, 125.0, 7500.0)
    expected = int(np.argmax(mel[:, int(round(f * 512 / SR))]))
    assert (df[ext.columns()].to_numpy().argmax(axis=1) == expected).all()
    # VGGish-style: log(mel(|X|) + 0.01); the peak of a 0.5-amplitude sine is far above the floor log(0.01)
    assert df[ext.columns()[expected]].min() > np.log(0.01) + 5
    assert mel.max() == pytest.approx(1.0, abs=0.05) and (mel >= 0).all()


def test_short_recording_gives_one_frame(media):
    pytest.importorskip("opensmile")
    for name in ("egemaps", "egemaps_lld", "logmel"):
        df = _build(name, 2.0).extract(rec(media["short"]))
        assert df["time"].tolist() == [0.0]
        assert np.isfinite(df.iloc[0, 1:].to_numpy(dtype=float)).sum() > 0, name


# ------------------------------------------------------------------------------------------------------- ssl
def _manual_pool(hidden: np.ndarray, n: int, rate: float, stride: int = 320, rf: int = 400) -> np.ndarray:
    """Mean of the model frames whose centre lies in each output frame's hop window."""
    centres = stride * np.arange(hidden.shape[0]) + rf / 2
    k = int(np.floor(n / SR * rate + 1e-9)) + 1
    half = max(stride, round(SR / rate)) / 2
    rows = []
    for s in np.round(np.arange(k) * SR / rate):
        sel = (centres >= s - half - 1e-6) & (centres < s + half - 1e-6)
        rows.append(hidden[sel].mean(axis=0))
    return np.array(rows)


def test_ssl_layer_selection_and_pooling(ssl_models, media):
    torch = pytest.importorskip("torch")
    from transformers import AutoModel

    d = ssl_models["wav2vec2"]
    mean = _build("ssl", 2.0, ssl_models, layers=[1, 3], layer_pooling="mean").extract(rec(media["tone"]))
    cat = _build("ssl", 2.0, ssl_models, layers=[1, 3], layer_pooling="concat").extract(rec(media["tone"]))
    assert cat.columns[1] == "ssl_l1_0" and cat.columns[-1] == "ssl_l3_31" and cat.shape[1] == 1 + 64
    c = cat.iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(mean.iloc[:, 1:].to_numpy(), (c[:, :32] + c[:, 32:]) / 2, atol=1e-5)
    # against the model run by hand on the whole (normalised) signal: one chunk covers the 10.3 s file
    x = read_audio(media["tone"], SR)
    xn = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    with torch.inference_mode():
        hs = (
            AutoModel.from_pretrained(str(d))
            .eval()(torch.from_numpy(xn)[None], output_hidden_states=True)
            .hidden_states
        )
    manual = (_manual_pool(hs[1][0].numpy(), x.size, 2.0) + _manual_pool(hs[3][0].numpy(), x.size, 2.0)) / 2
    np.testing.assert_allclose(mean.iloc[:, 1:].to_numpy(), manual, atol=1e-4)
    last = _build("ssl", 2.0, ssl_models, layers="last").extract(rec(media["tone"]))
    minus1 = _build("ssl", 2.0, ssl_models, layers=[-1]).extract(rec(media["tone"]))
    np.testing.assert_array_equal(last.to_numpy(), minus1.to_numpy())
    np.testing.assert_allclose(
        last.iloc[:, 1:].to_numpy(), _manual_pool(hs[3][0].numpy(), x.size, 2.0), atol=1e-4
    )


def test_ssl_chunking_hubert_and_config_errors(ssl_models, media):
    pytest.importorskip("torch")
    ext = _build(
        "ssl",
        25.0,
        ssl_models,
        model_dir=str(ssl_models["hubert"]),
        layers=[0, 2],
        chunk_s=3.0,
        context_s=0.5,
        device="cpu",
    )
    df = ext.extract(rec(media["tone"]))
    assert df.shape == (int(DURATION * 25) + 1, 33) and not df.iloc[:, 1:].isna().any().any()
    with pytest.raises(ConfigError, match="model_dir"):
        EXTRACTORS.build("ssl", {})
    with pytest.raises(ConfigError, match="layer 7 does not exist"):
        _build("ssl", 2.0, ssl_models, layers=[7]).columns()
    with pytest.raises(ConfigError, match="layer_pooling"):
        _build("ssl", 2.0, ssl_models, layer_pooling="max")
    with pytest.raises(ConfigError, match="config.json"):
        EXTRACTORS.build("ssl", {"model_dir": str(media["tone"].parent / "nope")}).columns()


# ------------------------------------------------------------------------------------------------------- vad
def test_vad_reports_no_speech_in_noise_and_tone(media):
    pytest.importorskip("silero_vad")
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    df = _build("vad", 2.0).extract(rec(media["tone"]))
    assert torch.get_num_threads() == threads  # silero's import-time set_num_threads(1) is undone
    assert (df["speech"] == 0).all()
    assert df["speech_prob"].max() < 0.5 and df["speech_prob"].min() >= 0


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)
def test_vad_finds_espeak_speech(tmp_path):
    pytest.importorskip("silero_vad")
    sp = tmp_path / "speech.wav"
    text = "The quick brown fox jumps over the lazy dog. I cannot believe how wonderful this day has been."
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(sp), text], check=True, capture_output=True
    )
    speech, sr = sf.read(sp, dtype="float32")
    pause = quiet(3.0, sr)
    path = tmp_path / "pause_speech_pause.wav"
    sf.write(path, np.concatenate([pause, speech, pause]), sr)
    df = _build("vad", 2.0).extract(rec(path)).set_index("time")
    end = 3.0 + speech.size / sr
    assert df.loc[3.5 : end - 0.5, "speech"].mean() > 0.7
    assert df.loc[:2.5, "speech"].sum() == 0 and df.loc[end + 0.5 :, "speech"].sum() == 0
    assert df.loc[3.5 : end - 0.5, "speech_prob"].mean() > 0.6 > df.loc[:2.5, "speech_prob"].max()


# ---------------------------------------------------------------------------------------------------- config
def test_registry_and_config_validation():
    assert set(NAMES) <= set(EXTRACTORS.names())
    with pytest.raises(ConfigError, match="rate_hz"):
        EXTRACTORS.build("egemaps", {"rate_hz": 0})
    with pytest.raises(ConfigError, match="win_dur"):
        EXTRACTORS.build("logmel", {"win_dur": -1})
    with pytest.raises(ConfigError, match="threshold"):
        EXTRACTORS.build("vad", {"threshold": 1.5})
    with pytest.raises(ConfigError, match="no parameters"):
        EXTRACTORS.build("egemaps", {"hop": 0.5})
    assert (
        EXTRACTORS.build("egemaps", {"rate_hz": 2.0}).config_hash()
        != EXTRACTORS.build("egemaps", {"rate_hz": 2.0, "win_dur": 2.0}).config_hash()
    )


def test_import_is_cheap():
    code = (
        "import sys, affectflow.features.audio, affectflow.io.audio; "
        "print([m for m in ('opensmile', 'torch', 'transformers', 'av', 'soundfile', 'silero_vad') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_egemaps_config_folder_is_removed_and_a_killed_process_s_is_cleaned(tmp_path, monkeypatch):
    # the frame-settings file openSMILE reads lives in a pid-named private folder: removed when the extractor is
    # collected, and a folder left by a killed process is removed by the next extractor
    pytest.importorskip("opensmile")
    import gc
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"affectflow-egemaps-{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / "FrameModeFunctionals.conf.inc").write_text("frameMode = fixed\n")
    ex = _build("egemaps", 2.0)
    ex._smile_windows()
    mine = ex._tmp
    assert not stale.exists() and mine.is_dir() and mine.parent == tmp_path
    assert mine.name.startswith(f"affectflow-egemaps-{__import__('os').getpid()}-")
    del ex
    gc.collect()
    assert not mine.exists() and list(tmp_path.iterdir()) == []
