"""A synthetic corpus of **raw media** with known latent affect: speech, face video, ECG/respiration/EDA, words.

Every recording follows one latent trajectory from :func:`~affectflow.synthetic.latent.simulate_latent_affect`
(arousal ``a(t)`` and valence ``v(t)`` in (-1, 1), with a subject-specific baseline). From it:

Speech (``media/<id>.wav``, 16 kHz mono PCM-16)
    Utterances synthesised with the ``espeak-ng`` program (Debian package), separated by pauses of 0.35-1.1 s
    (shorter when aroused). At each utterance's start time ``t``:

    - pitch ``-p = 50 + 35 a(t)`` (+ a per-subject offset; espeak's 0-99 scale), speed ``-s = 165 + 60 a(t)``
      words/min, amplitude ``-a = 110 + 60 a(t)`` (0-200);
    - the sentence comes from a positive pool when ``v(t) > 0.2``, a negative pool when ``v(t) < -0.2``, a neutral
      one otherwise (lexically clear sentences, so word-level valence lexicons see the difference);
    - each subject speaks with one espeak voice variant (``en-us+m1``, ``+f2``, ...).

    Leading/trailing silence of each utterance is trimmed; white noise at ``noise_dbfs`` is added everywhere.

Transcript (``media/<id>.transcript.csv``: ``start, end`` (s), ``word``, ``utterance`` (0-based index))
    From the synthesis plan: each utterance's voiced span is shared among its words in proportion to their
    letter count + 2 (espeak does not report word times). Word boundaries are therefore approximate (about
    ±0.15 s); utterance boundaries are exact. Sentence-final punctuation stays on the last word.

Physiology (``media/<id>.physio.csv``: ``time`` (s), ``ecg`` (mV), ``resp`` (a.u.), ``eda`` (µS) at
``physio_rate_hz``)
    - ECG: NeuroKit2 ``ecg_simulate(method="simple")`` at a constant 60 bpm (one PQRST template per second), then
      **time-warped**: the output at time ``t`` is the source at ``phi(t) = ∫ HR/60 dt`` seconds, so beat ``k``
      falls where ``phi = k`` and the instantaneous heart rate is
      ``HR(t) = hr0 + 18 a(t) + 3 (1 - a/2) sin(breathing phase) + 1.5 sin(2π 0.1 t) + 1.5 jitter`` bpm
      (``hr0`` per subject, 62-76; respiratory sinus arrhythmia weaker when aroused; a 0.1 Hz Mayer wave; smooth
      unit-variance jitter changing every second). ECGSYN is not used: it is about 20x slower and its own heart-rate
      variability could not be tied to arousal. Small noise and 0.3 Hz baseline wander are added.
    - Respiration: NeuroKit2 ``rsp_simulate`` (breathmetrics) at 15 breaths/min, time-warped the same way to
      ``RR(t) = 14 + 5 a(t)`` breaths/min.
    - EDA: a tonic level ``scl0 + 0.8 ā(t)`` µS (``ā``: arousal smoothed over 4 s and delayed by 2 s) plus skin
      conductance responses (Bateman curves, rise 0.75 s / decay 2 s, 0.1-0.5 µS) at Poisson times whose rate is
      ``2 + 8 max(a + 0.3, 0)`` per minute, plus NeuroKit2 ``eda_simulate`` noise (no SCRs, no drift).

Face video (``media/<id>.mp4``: H.264, ``video_fps``, ``video_size`` square, no audio)
    The real face photograph ``skimage.data.astronaut()`` placed on a smooth wall. A virtual camera looks at the
    face with a zoom of ``0.85 + 0.1 a(t)`` (closer when aroused), sways by a few pixels (faster when aroused)
    and is lit with a gain of ``1 + 0.25 v(t)`` (brighter when positive) times a slowly moving horizontal light
    gradient. In ``face_absent_fraction`` of the time, in stretches of 2-5 s, the camera pans away (0.2 s ramps)
    and the frame shows only the wall; those fully face-free intervals are in the generation report.

Labels
    Label set ``continuous`` (``label_rate_hz``): the latent affect delayed by ``label_delay_s`` plus smooth
    annotation noise of standard deviation ``label_noise``; ``continuous_clean``: the same without noise.
    Partitions are by subject (``partitions`` fractions of train/devel/test, at least one devel and one test
    subject when there are 3 or more). ``recordings.csv``, ``media.csv`` and ``reports/generate_media.json``
    (configuration, and per recording: voice, utterances with their parameters, face-absent intervals,
    heart-rate baseline) are written too.

Everything is seeded: the same arguments give files with the same content (with the same espeak-ng, PyAV/libx264
and NeuroKit2 versions; ``workers`` does not matter). A 4 x 30 s corpus takes about 5 s of CPU time (video
encoding and imports dominate); 60 min of one recording about 3 minutes. espeak-ng must be on ``PATH``
(``apt-get install espeak-ng``); a recording without speech can be had with ``audio=False, transcript=False``.
"""

from __future__ import annotations

import functools
import io
import multiprocessing
import shutil
import subprocess
import wave
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from tqdm.auto import tqdm

from affectflow.corpus.corpus import TIME, Corpus, LabelSetInfo
from affectflow.corpus.media import write_media_table
from affectflow.errors import ConfigError
from affectflow.io.video import write_video
from affectflow.synthetic.latent import simulate_latent_affect

POSITIVE_SENTENCES = [
    "I feel wonderful and happy today.",
    "This is a great success and I love it.",
    "What a beautiful and joyful surprise.",
    "Everything went perfectly and I am delighted.",
    "My friends made me laugh all afternoon.",
    "I am proud of this excellent result.",
    "The sunshine makes me feel calm and glad.",
    "We won the prize and celebrated together.",
    "Thank you, that was a lovely gift.",
    "I am so excited about the holiday.",
    "The music was cheerful and fun.",
    "She smiled and gave me a warm hug.",
]
NEGATIVE_SENTENCES = [
    "I feel terrible and very sad today.",
    "This is a horrible failure and I hate it.",
    "The news made me angry and upset.",
    "Everything went wrong and I am miserable.",
    "I am afraid that something awful will happen.",
    "The pain was unbearable and frightening.",
    "I lost my wallet and I feel stupid.",
    "They were rude and cruel to me.",
    "I am tired, lonely and disappointed.",
    "The accident was a tragic disaster.",
    "I cannot stand this awful noise.",
    "My plan failed and I feel ashamed.",
]
NEUTRAL_SENTENCES = [
    "The meeting starts at ten in the morning.",
    "Please put the papers on the table.",
    "The train leaves from platform four.",
    "I walked to the office along the street.",
    "The report has twelve pages and a table.",
    "We need to buy bread and some milk.",
    "The window is next to the door.",
    "He opened the box and read the label.",
    "The building has three floors.",
    "I will call you after lunch.",
    "The car is parked near the station.",
    "The form asks for a name and a date.",
]
VOICES = ["en-us+m1", "en-us+f2", "en-us+m3", "en-us+f4", "en-us+m7", "en-us+f1", "en-us+m2", "en-us+f3"]
ESPEAK_RATE_HZ = 22050


@dataclass
class MediaSynthConfig:
    """Parameters of :func:`generate_media_corpus` (stored in ``corpus.json`` as ``generator``).

    Attributes
    ----------
    n_subjects, recordings_per_subject:
        Corpus size; every recording is ``duration_s`` long.
    duration_s:
        Recording length (s).
    seed:
        Seed of everything.
    label_rate_hz, label_delay_s, label_noise, label_noise_smooth_s:
        Label grid (Hz), annotator delay (s), annotation noise std and its smoothing (s).
    partitions:
        Fractions of subjects in train / devel / test.
    smoothness_s:
        Smoothness of the latent affect (s).
    audio, video, physio, transcript:
        Which media to write.
    audio_rate_hz:
        Sampling rate of the wav files.
    noise_dbfs:
        Level of the white background noise of the audio (dB re full scale).
    physio_rate_hz:
        Sampling rate of the physiology CSV.
    video_fps, video_size:
        Frame rate and frame side (pixels) of the face video.
    face_absent_fraction:
        Fraction of the time without a face in the frame.
    """

    n_subjects: int = 4
    recordings_per_subject: int = 1
    duration_s: float = 30.0
    seed: int = 0
    label_rate_hz: float = 2.0
    label_delay_s: float = 0.0
    label_noise: float = 0.1
    label_noise_smooth_s: float = 1.5
    partitions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    smoothness_s: float = 6.0
    audio: bool = True
    video: bool = True
    physio: bool = True
    transcript: bool = True
    audio_rate_hz: int = 16000
    noise_dbfs: float = -50.0
    physio_rate_hz: float = 250.0
    video_fps: int = 25
    video_size: int = 160
    face_absent_fraction: float = 0.12
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------- speech
def espeak_available() -> bool:
    """Whether the ``espeak-ng`` program is on ``PATH``."""
    return shutil.which("espeak-ng") is not None


def speech_params(arousal: float, pitch_offset: float = 0.0) -> dict[str, int]:
    """espeak-ng ``pitch`` (0-99), ``speed`` (words/min) and ``amplitude`` (0-200) for an arousal in [-1, 1]."""
    a = float(np.clip(arousal, -1.0, 1.0))
    return {
        "pitch": int(round(np.clip(50 + 35 * a + pitch_offset, 5, 95))),
        "speed": int(round(np.clip(165 + 60 * a, 90, 300))),
        "amplitude": int(round(np.clip(110 + 60 * a, 20, 200))),
    }


def espeak_synth(
    text: str, *, voice: str = "en-us", pitch: int = 50, speed: int = 165, amplitude: int = 100
) -> tuple[np.ndarray, int]:
    """Synthesise ``text`` with the espeak-ng program.

    Returns
    -------
    samples, rate
        float32 samples in [-1, 1] (mono) and their rate (22050 Hz).

    Raises
    ------
    ConfigError
        espeak-ng is not installed or fails.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError(
            "espeak-ng is not installed (apt-get install espeak-ng); it is needed to synthesise speech."
        )
    cmd = [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) < 44:
        raise ConfigError(
            f"espeak-ng failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[:300]}"
        )
    return _parse_wav_bytes(proc.stdout)


def _parse_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """PCM-16 wav bytes → float32 samples; tolerant of the unset chunk sizes of a wav written to a pipe."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, width, ch = w.getframerate(), w.getsampwidth(), w.getnchannels()
    except (wave.Error, EOFError):
        rate, width, ch = ESPEAK_RATE_HZ, 2, 1
    pos = data.find(b"data")
    if pos < 0:
        raise ConfigError("espeak-ng output has no wav data chunk")
    raw = data[pos + 8 :]
    raw = raw[: len(raw) // (width * ch) * (width * ch)]
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, rate


def _trim(x: np.ndarray, rel: float = 0.02) -> np.ndarray:
    if not len(x):
        return x
    thr = rel * float(np.max(np.abs(x)) or 1.0)
    idx = np.flatnonzero(np.abs(x) > thr)
    return x[idx[0] : idx[-1] + 1] if len(idx) else x[:0]


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst:
        return x
    from scipy.signal import resample_poly  # lazy: scipy.signal takes ~1.8 s to import

    g = Fraction(dst, src)
    return resample_poly(x, g.numerator, g.denominator).astype(np.float32)


def _word_times(words: list[str], start: float, end: float) -> list[tuple[float, float]]:
    w = np.array([sum(ch.isalnum() for ch in wd) + 2 for wd in words], dtype=float)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    out = []
    for i in range(len(words)):
        slot = edges[i + 1] - edges[i]
        out.append(
            (float(edges[i]), float(edges[i + 1] if i == len(words) - 1 else edges[i + 1] - 0.1 * slot))
        )
    return out


def _make_speech(
    cfg: MediaSynthConfig, affect, rng: np.random.Generator, voice: str, pitch_offset: float, duration: float
) -> tuple[np.ndarray, list[dict[str, Any]], list[dict[str, Any]]]:
    sr = cfg.audio_rate_hz
    n = int(round(duration * sr))
    y = np.zeros(n, dtype=np.float32)
    utterances: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    t = float(rng.uniform(0.3, 0.9))
    last = {"positive": -1, "negative": -1, "neutral": -1}
    while t < duration - 1.0:
        a, v = (float(z[0]) for z in affect(np.array([t])))
        kind = "positive" if v > 0.2 else ("negative" if v < -0.2 else "neutral")
        pool = {"positive": POSITIVE_SENTENCES, "negative": NEGATIVE_SENTENCES, "neutral": NEUTRAL_SENTENCES}[
            kind
        ]
        k = int(rng.integers(len(pool) - 1))
        k = k + 1 if k >= last[kind] >= 0 else k  # never the same sentence twice in a row
        last[kind] = k
        text = pool[k]
        p = speech_params(a, pitch_offset)
        x, xr = espeak_synth(text, voice=voice, **p)
        x = _resample(_trim(x), xr, sr) * 0.9
        i0 = int(round(t * sr))
        if i0 + len(x) > n:
            break
        y[i0 : i0 + len(x)] += x
        t_end = t + len(x) / sr
        toks = text.split()
        for wd, (ws, we) in zip(toks, _word_times(toks, t, t_end)):
            words.append(
                {"start": round(ws, 4), "end": round(we, 4), "word": wd, "utterance": len(utterances)}
            )
        utterances.append(
            {
                "start": round(t, 4),
                "end": round(t_end, 4),
                "text": text,
                "valence_class": kind,
                "arousal": round(a, 4),
                "valence": round(v, 4),
                **p,
            }
        )
        t = t_end + float(rng.uniform(0.35, 1.1)) * (1.0 - 0.35 * a)
    y += (10 ** (cfg.noise_dbfs / 20) * rng.standard_normal(n)).astype(np.float32)
    return np.clip(y, -1.0, 1.0), utterances, words


# ---------------------------------------------------------------------------------------------------- physiology
def _warp(source: np.ndarray, src_rate: float, speed: np.ndarray, out_rate: float) -> np.ndarray:
    """Resample ``source`` at the times ``phi(t) = ∫ speed dt`` (``speed`` sampled at ``out_rate``)."""
    phi = np.concatenate([[0.0], np.cumsum(speed[:-1]) / out_rate])
    return np.interp(phi * src_rate, np.arange(len(source)), source)


def _bateman(rate: float, tau_rise: float = 0.75, tau_decay: float = 2.0) -> np.ndarray:
    tt = np.arange(int(12 * tau_decay * rate)) / rate
    k = np.exp(-tt / tau_decay) - np.exp(-tt / tau_rise)
    return k / k.max()


def _make_physio(
    cfg: MediaSynthConfig,
    affect,
    rng: np.random.Generator,
    hr0: float,
    scl0: float,
    duration: float,
    seed: int,
) -> pd.DataFrame:
    import neurokit2 as nk

    fs = float(cfg.physio_rate_hz)
    n = int(round(duration * fs))
    t = np.arange(n) / fs
    a, _ = affect(t)
    # respiration: 15/min source, warped to RR(t) = 14 + 5 a(t) breaths/min
    rr = 14.0 + 5.0 * a
    need_r = float(np.sum(rr / 15.0) / fs) + 5.0
    rsp_src = np.asarray(
        nk.rsp_simulate(
            duration=int(np.ceil(need_r)),
            sampling_rate=int(fs),
            respiratory_rate=15,
            method="breathmetrics",
            random_state=seed + 1,
        ),
        dtype=np.float64,
    )
    resp = _warp(rsp_src, fs, rr / 15.0, fs)
    breath_phase = 2 * np.pi * np.concatenate([[0.0], np.cumsum(rr[:-1] / 60.0) / fs])
    # ECG: a 60 bpm source (one PQRST per second), warped to
    # HR(t) = hr0 + 18 a(t) + RSA (at the breathing rate, weaker when aroused) + 0.1 Hz Mayer wave + jitter
    n_beats = int(np.ceil(duration * 2.0)) + 4
    jitter = np.repeat(gaussian_filter1d(rng.standard_normal(n_beats), 0.7), int(fs))[:n]
    jitter = np.pad(jitter, (0, n - len(jitter)), mode="edge") if len(jitter) < n else jitter
    hr = (
        hr0
        + 18.0 * a
        + 3.0 * (1.0 - 0.5 * a) * np.sin(breath_phase)
        + 1.5 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 2 * np.pi))
        + 1.5 * jitter
    )
    need = float(np.sum(hr / 60.0) / fs) + 3.0
    src_rate = int(max(fs, 250))
    ecg_src = np.asarray(
        nk.ecg_simulate(
            duration=int(np.ceil(need)),
            sampling_rate=src_rate,
            heart_rate=60,
            method="simple",
            noise=0.0,
            random_state=seed,
        ),
        dtype=np.float64,
    )
    ecg = _warp(ecg_src, src_rate, hr / 60.0, fs)
    ecg += 0.01 * rng.standard_normal(n) + 0.05 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi))
    # EDA: tonic level following (smoothed, delayed) arousal + SCRs at an arousal-dependent Poisson rate + noise
    lag = int(round(2.0 * fs))
    a_slow = gaussian_filter1d(np.concatenate([np.full(lag, a[0]), a])[:n], 4.0 * fs, mode="nearest")
    tonic = scl0 + 0.8 * a_slow
    lam = (2.0 + 8.0 * np.maximum(a + 0.3, 0.0)) / 60.0 / fs  # SCR onsets per sample
    onsets = rng.random(n) < lam
    impulses = np.zeros(n)
    impulses[onsets] = rng.uniform(0.1, 0.5, int(onsets.sum()))
    phasic = np.convolve(impulses, _bateman(fs))[:n]
    eda_noise = np.asarray(
        nk.eda_simulate(
            duration=int(np.ceil(duration)) + 1,
            sampling_rate=int(fs),
            scr_number=0,
            drift=0.0,
            noise=0.01,
            random_state=seed + 2,
        ),
        dtype=np.float64,
    )[:n]
    eda = tonic + phasic + (eda_noise - eda_noise.mean())
    return pd.DataFrame({TIME: np.round(t, 6), "ecg": ecg, "resp": resp, "eda": eda})


# ---------------------------------------------------------------------------------------------------- video
@functools.lru_cache(maxsize=2)
def _world(size: int) -> tuple[np.ndarray, tuple[float, float], float]:
    """The scene: the astronaut photo on a smooth wall; returns (image, face centre (row, col), face size)."""
    from skimage import data

    img = data.astronaut().astype(np.float32)
    pad = 2 * size
    h, w = img.shape[:2]
    H, W = h + 2 * pad, w + 2 * pad
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    wall = np.stack(
        [
            150 + 30 * np.sin(xx / 97.0) + 10 * np.cos(yy / 61.0),
            140 + 25 * np.sin(xx / 83.0 + 1.0),
            120 + 20 * np.cos(yy / 71.0 + 0.5),
        ],
        axis=-1,
    )
    world = wall.copy()
    world[pad : pad + h, pad : pad + w] = img
    # the face of the astronaut: box (x, y, w, h) = (177, 66, 95, 95) in the original image
    world = np.clip(world, 0, 255).astype(np.uint8)
    world.setflags(write=False)
    return world, (pad + 66 + 47.5, pad + 177 + 47.5), 95.0


def _absent_intervals(
    rng: np.random.Generator, duration: float, fraction: float
) -> list[tuple[float, float]]:
    if fraction <= 0 or duration < 6:
        return []
    total = fraction * duration
    n = max(1, int(round(total / 3.5)))
    lengths = np.clip(rng.uniform(0.7, 1.3, n) * total / n, 2.0, 5.0)
    out: list[tuple[float, float]] = []
    slots = np.linspace(1.0, duration - 1.0, n + 1)
    for k in range(n):
        lo, hi = slots[k], slots[k + 1] - lengths[k]
        if hi <= lo:
            continue
        s = float(rng.uniform(lo, hi))
        out.append((round(s, 3), round(s + float(lengths[k]), 3)))
    return out


def _write_video(
    path: Path,
    cfg: MediaSynthConfig,
    affect,
    rng: np.random.Generator,
    duration: float,
    absent: list[tuple[float, float]],
) -> None:
    S, fps = int(cfg.video_size), int(cfg.video_fps)
    world_u8, (fr, fc), _ = _world(S)
    H, W = world_u8.shape[:2]
    n = int(round(duration * fps))
    t = np.arange(n) / fps
    a, v = affect(t)
    phase1, phase2, side = rng.uniform(0, 2 * np.pi, 3)
    sway = np.cumsum((1.0 + 0.8 * a) * 2 * np.pi / fps / 3.0)  # sway phase, faster when aroused
    dx = 8.0 * np.sin(sway + phase1) + 3.0 * np.sin(0.37 * sway + phase2)
    dy = 5.0 * np.sin(0.71 * sway + phase2)
    zoom = 0.85 + 0.10 * a
    # pans away from the face: offset ramps to 1.6 frame widths in 0.2 s
    away = np.zeros(n)
    ramp = 0.2
    for s, e in absent:
        up = np.clip((t - (s - ramp)) / ramp, 0, 1)
        down = np.clip(((e + ramp) - t) / ramp, 0, 1)
        away = np.maximum(away, np.minimum(up, down))
    direction = 1.0 if side > np.pi else -1.0
    dx = dx + direction * away * 1.6 * S / zoom
    gain = 1.0 + 0.25 * v
    light_phase = 2 * np.pi * t / 17.0 + phase1
    xs = np.linspace(-1.0, 1.0, S, dtype=np.float32)
    grid = np.arange(S, dtype=np.float64) - S / 2 + 0.5

    def frames():
        for i in range(n):
            rows = np.clip(np.round(fr + dy[i] + grid / zoom[i]).astype(np.intp), 0, H - 1)
            cols = np.clip(np.round(fc + dx[i] + grid / zoom[i]).astype(np.intp), 0, W - 1)
            light = np.round(128 * gain[i] * (1.0 + 0.15 * np.sin(light_phase[i]) * xs)).astype(np.uint16)
            r0, c0 = rows[0], cols[0]
            sub = world_u8[r0 : rows[-1] + 1, c0 : cols[-1] + 1]
            img = (sub[rows - r0][:, cols - c0].astype(np.uint16) * light[None, :, None]) >> 7
            yield np.minimum(img, 255).astype(np.uint8)

    write_video(path, frames(), fps, crf=23)


# ---------------------------------------------------------------------------------------------------- corpus
def _partitions(rng: np.random.Generator, n: int, fractions: tuple[float, float, float]) -> dict[int, str]:
    order = rng.permutation(n)
    if n >= 3:
        n_devel = max(1, int(round(fractions[1] * n)))
        n_test = max(1, int(round(fractions[2] * n)))
        n_train = max(1, n - n_devel - n_test)
        n_devel = n - n_train - n_test
    else:
        n_train, n_devel = n, 0
    return {
        int(s): ("train" if r < n_train else "devel" if r < n_train + n_devel else "test")
        for r, s in enumerate(order)
    }


def _generate_recording(cfg: MediaSynthConfig, s: int, k: int, media_dir: Path) -> dict[str, Any]:
    """Write the media of recording ``k`` of subject ``s``; return its labels, media row and ground truth."""
    subject = f"S{s:03d}"
    rid = f"{subject}_r{k}"
    srng = np.random.default_rng([cfg.seed, s])  # subject traits
    voice = VOICES[s % len(VOICES)]
    pitch_offset = float(srng.uniform(-8, 8))
    hr0 = float(srng.uniform(62, 76))
    scl0 = float(srng.uniform(2.0, 8.0))
    a_mean, v_mean = float(srng.normal(0, 0.3)), float(srng.normal(0, 0.3))

    def rec_rng(
        stream: int,
    ) -> np.random.Generator:  # independent streams: switching a modality off changes no other
        return np.random.default_rng([cfg.seed, s, k, stream])

    duration = cfg.duration_s
    delay = cfg.label_delay_s
    latent = simulate_latent_affect(
        duration + delay + 1.0,
        seed=rec_rng(0),
        arousal_mean=a_mean,
        valence_mean=v_mean,
        smoothness_s=cfg.smoothness_s,
    )

    def affect(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return latent.at(np.asarray(t, dtype=np.float64) + delay)

    truth: dict[str, Any] = {
        "subject": subject,
        "voice": voice,
        "pitch_offset": pitch_offset,
        "hr0_bpm": hr0,
        "scl0_uS": scl0,
        "arousal_mean": a_mean,
        "valence_mean": v_mean,
    }
    media_row: dict[str, Any] = {"id": rid}
    if cfg.audio or cfg.transcript:
        y, utts, words = _make_speech(cfg, affect, rec_rng(1), voice, pitch_offset, duration)
        truth["utterances"] = utts
        if cfg.audio:
            import soundfile as sf

            f = media_dir / f"{rid}.wav"
            sf.write(str(f), y, cfg.audio_rate_hz, subtype="PCM_16")
            media_row["audio"] = f
        if cfg.transcript:
            f = media_dir / f"{rid}.transcript.csv"
            pd.DataFrame(words, columns=["start", "end", "word", "utterance"]).to_csv(f, index=False)
            media_row["transcript"] = f
    if cfg.physio:
        prng = rec_rng(2)
        phys = _make_physio(cfg, affect, prng, hr0, scl0, duration, int(prng.integers(0, 2**31 - 1)))
        f = media_dir / f"{rid}.physio.csv"
        # time as fixed-point text (µs): "%.6g" would repeat stamps past 1000 s
        phys[TIME] = np.char.mod("%.6f", phys[TIME].to_numpy())
        phys.to_csv(f, index=False, float_format="%.6g")
        media_row["physio"] = f
    if cfg.video:
        vrng = rec_rng(3)
        absent = _absent_intervals(vrng, duration, cfg.face_absent_fraction)
        f = media_dir / f"{rid}.mp4"
        _write_video(f, cfg, affect, vrng, duration, absent)
        media_row["video"] = f
        truth["face_absent"] = [list(x) for x in absent]

    lt = np.arange(0.0, duration, 1.0 / cfg.label_rate_hz)
    clean_a, clean_v = latent.at(lt)  # label(t) = latent affect at t - delay
    lrng = rec_rng(4)
    sigma = cfg.label_noise_smooth_s * cfg.label_rate_hz

    def noise() -> np.ndarray:
        z = gaussian_filter1d(lrng.standard_normal(len(lt)), sigma, mode="reflect")
        return z / (z.std() + 1e-12) * cfg.label_noise

    return {
        "id": rid,
        "media": media_row,
        "truth": truth,
        "labels": pd.DataFrame({TIME: lt, "arousal": clean_a + noise(), "valence": clean_v + noise()}),
        "labels_clean": pd.DataFrame({TIME: lt, "arousal": clean_a, "valence": clean_v}),
    }


def generate_media_corpus(
    path: str | Path,
    *,
    n_subjects: int = 4,
    duration_s: float = 30.0,
    seed: int = 0,
    progress: bool = False,
    workers: int = 1,
    **options: Any,
) -> Corpus:
    """Write a synthetic raw-media corpus to ``path`` (missing or empty) and return it.

    Parameters
    ----------
    path:
        Corpus folder.
    n_subjects:
        Number of subjects (one voice and baseline each).
    duration_s:
        Length of each recording (s).
    seed:
        Seed; the same arguments give the same file contents.
    progress:
        Show a progress bar.
    workers:
        Processes generating recordings in parallel (the files do not depend on it).
    **options:
        Other fields of :class:`MediaSynthConfig` (``recordings_per_subject``, ``video_fps``, ``physio_rate_hz``,
        ``audio=False``...).

    Returns
    -------
    Corpus
        With ``recordings.csv``, ``media.csv``, label sets ``continuous`` and ``continuous_clean`` and the report
        ``reports/generate_media.json``.
    """
    valid = {f for f in MediaSynthConfig.__dataclass_fields__}
    bad = sorted(set(options) - valid)
    if bad:
        raise ConfigError(
            f"Unknown options {bad} for generate_media_corpus; valid: {sorted(valid - {'extra'})}."
        )
    cfg = MediaSynthConfig(n_subjects=n_subjects, duration_s=float(duration_s), seed=seed, **options)
    if cfg.n_subjects < 1 or cfg.recordings_per_subject < 1 or cfg.duration_s <= 2.0:
        raise ConfigError(
            "generate_media_corpus needs n_subjects >= 1, recordings_per_subject >= 1 and duration_s > 2."
        )
    if (cfg.audio or cfg.transcript) and not espeak_available():
        raise ConfigError(
            "espeak-ng is not installed (apt-get install espeak-ng); pass audio=False, transcript=False "
            "to generate a corpus without speech."
        )
    rng = np.random.default_rng(cfg.seed)
    corpus = Corpus.create(
        path,
        name="synthetic-media",
        label_rate_hz=cfg.label_rate_hz,
        description="Synthetic raw-media corpus with known latent affect (affectflow.synthetic.media).",
        generator=asdict(cfg),
    )
    dims = ["arousal", "valence"]
    corpus.write_label_set_info(
        LabelSetInfo("continuous", dims, cfg.label_rate_hz, "annotated (delayed + noisy)")
    )
    corpus.write_label_set_info(
        LabelSetInfo("continuous_clean", dims, cfg.label_rate_hz, "noise-free (delayed)")
    )
    # absolute: media.csv stores paths inside the corpus relative to the corpus, whatever the working directory
    media_dir = corpus.path.resolve() / "media"
    media_dir.mkdir(exist_ok=True)
    part_of = _partitions(rng, cfg.n_subjects, cfg.partitions)

    jobs = [(s, k) for s in range(cfg.n_subjects) for k in range(cfg.recordings_per_subject)]
    if workers > 1 and len(jobs) > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)), mp_context=multiprocessing.get_context(method)
        ) as pool:
            futures = [pool.submit(_generate_recording, cfg, s, k, media_dir) for s, k in jobs]
            outs = [
                f.result()
                for f in tqdm(futures, desc="generating media", unit="rec", disable=not progress, leave=False)
            ]
    else:
        outs = [
            _generate_recording(cfg, s, k, media_dir)
            for s, k in tqdm(jobs, desc="generating media", unit="rec", disable=not progress, leave=False)
        ]

    rows, media_rows, truth = [], [], {}
    for (s, _), out in zip(jobs, outs):
        rid = out["id"]
        corpus.write_labels(rid, out["labels"], "continuous")
        corpus.write_labels(rid, out["labels_clean"], "continuous_clean")
        rows.append(
            {
                "id": rid,
                "subject": out["truth"]["subject"],
                "partition": part_of[s],
                "duration": cfg.duration_s,
            }
        )
        media_rows.append(out["media"])
        truth[rid] = out["truth"]

    write_media_table(
        corpus, pd.DataFrame(media_rows, columns=["id", "audio", "video", "physio", "transcript"])
    )
    corpus.set_recordings(pd.DataFrame(rows))
    corpus.write_report("generate_media", {"config": asdict(cfg), "recordings": truth})
    return corpus
