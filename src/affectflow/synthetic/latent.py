"""Smooth latent affect trajectories: the ground truth every synthetic corpus is built from.

A trajectory is white Gaussian noise low-pass filtered with a Gaussian kernel of standard deviation
``smoothness_s`` seconds, scaled to unit variance, shifted by a per-recording mean, plus a slow stress response
(TSST-like: arousal rises after the task starts and decays), and squashed into (-1, 1) with ``tanh``. It is sampled
on a fine internal grid and evaluated at any times by linear interpolation, so audio, video frames, physiology
samples and labels of one recording all follow the same affect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d


@dataclass
class LatentAffect:
    """Arousal and valence of one recording, in (-1, 1), sampled at ``times`` (s)."""

    times: np.ndarray
    arousal: np.ndarray
    valence: np.ndarray

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return float(self.times[-1])

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arousal and valence at times ``t`` (s), linearly interpolated (held constant outside the range)."""
        t = np.asarray(t, dtype=np.float64)
        return np.interp(t, self.times, self.arousal), np.interp(t, self.times, self.valence)


def _smooth_unit(rng: np.random.Generator, n: int, sigma_steps: float) -> np.ndarray:
    pad = int(4 * sigma_steps) + 1
    x = gaussian_filter1d(rng.standard_normal(n + 2 * pad), sigma_steps, mode="reflect")[pad:-pad]
    return (x - x.mean()) / (x.std() + 1e-12)


def simulate_latent_affect(
    duration: float,
    *,
    seed: int | np.random.Generator,
    smoothness_s: float = 6.0,
    grid_rate_hz: float = 10.0,
    arousal_mean: float = 0.0,
    valence_mean: float = 0.0,
    scale: float = 0.6,
    stress_response: float = 0.4,
) -> LatentAffect:
    """Simulate one recording's latent affect.

    Parameters
    ----------
    duration:
        Length in seconds.
    seed:
        Seed or generator; the same seed gives the same trajectory.
    smoothness_s:
        Standard deviation (s) of the Gaussian smoothing kernel; larger is smoother.
    grid_rate_hz:
        Rate of the internal grid the trajectory is sampled on.
    arousal_mean, valence_mean:
        Offsets (before ``tanh``), e.g. a subject's baseline.
    scale:
        Amplitude of the fluctuations (before ``tanh``).
    stress_response:
        Height of the slow arousal rise after 20 % of the recording (TSST task start), decaying after 60 %.

    Returns
    -------
    LatentAffect
        ``arousal = tanh(arousal_mean + scale * z_a + stress(t))`` and ``valence = tanh(valence_mean + scale * z_v)``,
        with ``z_a``, ``z_v`` smooth unit-variance processes.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = int(np.ceil(duration * grid_rate_hz)) + 1
    t = np.arange(n) / grid_rate_hz
    sigma = smoothness_s * grid_rate_hz
    za = _smooth_unit(rng, n, sigma)
    zv = _smooth_unit(rng, n, sigma)
    onset, offset = 0.2 * duration, 0.6 * duration
    rise = 1.0 / (1.0 + np.exp(-(t - onset) / 8.0))
    decay = np.where(t > offset, np.exp(-(t - offset) / 40.0), 1.0)
    stress = stress_response * (rise * decay - 0.5)
    arousal = np.tanh(arousal_mean + scale * za + stress)
    valence = np.tanh(valence_mean + scale * zv)
    return LatentAffect(times=t, arousal=arousal, valence=valence)
