"""Speech noise at a chosen signal-to-noise ratio (MER 2023 MER-NOISE: MUSAN speech at 5 to 11 dB).

:func:`mix_at_snr` scales the noise so that

.. math:: 10 \\log_{10} \\frac{\\sum_n s_n^2}{\\sum_n (g\\, w_n)^2} = \\text{SNR}_{dB},
   \\qquad g = \\sqrt{\\frac{\\sum s^2}{\\sum w^2} \\, 10^{-\\text{SNR}/10}}

over the whole recording (``w`` = the noise, looped or cut to the speech's length from a random offset) and adds
it. :func:`babble` makes the noise from other speakers: the sum of ``n_speakers`` recordings (each cut from a
random offset, looped if short, scaled to unit RMS). Every random choice comes from the ``numpy`` generator passed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectflow.corpus.media import AUDIO_EXTS
from affectflow.errors import ConfigError


def parse_snr(text: str) -> list[float]:
    """``"5:11"`` → ``[5, 6, ..., 11]`` (1 dB steps, the paper's 7 ratios), ``"8"`` → ``[8]``, ``"5:11:2"`` → step 2."""
    try:
        parts = [float(p) for p in str(text).split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        return parts
    if len(parts) in (2, 3) and parts[0] <= parts[1] and (len(parts) == 2 or parts[2] > 0):
        step = parts[2] if len(parts) == 3 else 1.0
        return [float(v) for v in np.arange(parts[0], parts[1] + step / 2, step)]
    raise ConfigError(f"--snr must be a value in dB or LOW:HIGH[:STEP] (e.g. 5:11), got {text!r}.")


def _crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of ``x`` from a random offset, looping ``x`` if it is shorter."""
    if len(x) == 0:
        return np.zeros(n, np.float32)
    start = int(rng.integers(0, len(x)))
    reps = int(np.ceil((start + n) / len(x)))
    return np.tile(x, reps)[start:start + n]


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``speech`` + the noise scaled to ``snr_db`` (see the module docstring); float32, same length."""
    w = _crop(np.asarray(noise, np.float64), len(speech), rng)
    ps, pn = float(np.sum(np.square(speech, dtype=np.float64))), float(np.sum(w * w))
    if pn <= 0 or ps <= 0:
        return np.asarray(speech, np.float32)
    g = np.sqrt(ps / pn * 10.0 ** (-snr_db / 10.0))
    return (np.asarray(speech, np.float64) + g * w).astype(np.float32)


def babble(sources: list[np.ndarray], n: int, rng: np.random.Generator, n_speakers: int = 3) -> np.ndarray:
    """Babble of ``n`` samples: the sum of ``n_speakers`` of ``sources`` (chosen without replacement when there
    are enough), each cut from a random offset and scaled to unit RMS."""
    if not sources:
        raise ConfigError("Babble needs audio of at least one other training speaker.")
    pick = rng.choice(len(sources), size=min(n_speakers, len(sources)), replace=False)
    out = np.zeros(n, np.float64)
    for i in pick:
        part = _crop(np.asarray(sources[i], np.float64), n, rng)
        rms = np.sqrt(np.mean(part * part)) if n else 0.0
        out += part / rms if rms > 0 else part
    return out.astype(np.float32)


def noise_files(folder: str | Path) -> list[Path]:
    """The audio files under ``folder`` (recursively, sorted), e.g. MUSAN's ``speech/``."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--audio-noise {str(root)!r} is neither `babble` nor a folder of noise audio files.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTS and p.is_file())
    if not files:
        raise ConfigError(f"Noise folder {str(root)!r} has no audio files ({', '.join(AUDIO_EXTS)}).")
    return files
