"""Generated raters with a known truth, for testing and demonstrating rater fusion (:mod:`affectflow.raters`).

Rater ``r`` of a true trace ``x(t)`` (on a grid of step ``h``) reports::

    y_r(t) = a_r · x(t − ℓ_r) + b_r + σ_r · n_r(t)

with a reaction lag ``ℓ_r`` (steps, the first ``ℓ_r`` steps hold ``x(0)``), gain ``a_r``, offset ``b_r`` and smooth
unit-variance noise ``n_r`` (white noise low-passed with a Gaussian of ``noise_smooth`` steps) of level
``σ_r``. One rater can be made unreliable (large ``σ``).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def simulate_raters(
    truth: np.ndarray,
    *,
    n_raters: int = 4,
    lags: list[int] | None = None,
    noise: list[float] | None = None,
    gains: list[float] | None = None,
    offsets: list[float] | None = None,
    noise_smooth: float = 2.0,
    seed: int = 0,
) -> np.ndarray:
    """``(T, R)`` rater traces of ``truth`` ``(T,)`` (see the module docstring); defaults: lags 0, noise 0.3,
    gain 1, offset 0."""
    x = np.asarray(truth, float)
    rng = np.random.default_rng(seed)
    lags = lags or [0] * n_raters
    noise = noise or [0.3] * n_raters
    gains = gains or [1.0] * n_raters
    offsets = offsets or [0.0] * n_raters
    out = np.empty((len(x), n_raters))
    for r in range(n_raters):
        lag = int(lags[r])
        xs = np.concatenate([np.full(lag, x[0]), x[: len(x) - lag]]) if lag > 0 else x
        n = gaussian_filter1d(rng.standard_normal(len(x)), noise_smooth) if noise_smooth > 0 else rng.standard_normal(len(x))
        n = n / (n.std() + 1e-12)
        out[:, r] = gains[r] * xs + offsets[r] + noise[r] * n
    return out
