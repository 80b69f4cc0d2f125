"""Bring a feature set's frames onto the label time grid.

The alignment rule
------------------
Let the label grid be times :math:`t_0 < t_1 < \\dots` with step :math:`h` (the median spacing), and let the
feature set have frames at times :math:`s_j` with period :math:`p` (``1 / rate_hz``, or the median spacing of its
timestamps when it has no fixed rate). Grid step :math:`g` owns the interval :math:`[t_g - h/2,\\ t_g + h/2)`.

1. **Denser or equal features** (frames fall into the interval): the value at :math:`t_g` is the mean of the frames
   in the interval, column by column, ignoring NaN.
2. **Sparser features, or a gap** (no frame in the interval): the nearest frame is used if it lies within
   :math:`p/2` of :math:`t_g` (a hold of the last/next frame); otherwise the step is **missing** (NaN).

So features at the label rate join exactly by timestamp; faster features are averaged per label step; slower
features are held; missing frames stay missing (they are never filled with zeros here: the mask is derived from
NaN, and normalisation fills them afterwards).
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-9


def grid_step(times: np.ndarray, default: float = 1.0) -> float:
    """Median spacing of ``times`` (``default`` if there are fewer than two)."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2:
        return float(default)
    return float(np.median(np.diff(times)))


def regular_grid(duration: float, rate_hz: float, start: float = 0.0) -> np.ndarray:
    """Times ``start + k / rate_hz`` for k = 0, 1, ... strictly before ``duration`` (s)."""
    n = max(int(np.floor((duration - start) * rate_hz + 1e-6)), 1)
    return start + np.arange(n, dtype=np.float64) / rate_hz


def align_to_grid(
    frame_times: np.ndarray,
    values: np.ndarray,
    grid: np.ndarray,
    *,
    frame_period: float | None = None,
    grid_period: float | None = None,
) -> np.ndarray:
    """Align frames to a time grid with the rule in the module docstring.

    Parameters
    ----------
    frame_times:
        Shape ``(N,)``, seconds, strictly increasing.
    values:
        Shape ``(N, D)``; NaN marks missing values.
    grid:
        Shape ``(G,)``, seconds, increasing (the label times).
    frame_period:
        Feature period :math:`p` in s; default: median spacing of ``frame_times``.
    grid_period:
        Grid step :math:`h` in s; default: median spacing of ``grid``.

    Returns
    -------
    numpy.ndarray
        Shape ``(G, D)``, float32, NaN where the step is missing.
    """
    values = np.asarray(values, dtype=np.float32)
    return align_many(frame_times, values[None], grid, frame_period=frame_period, grid_period=grid_period)[0]


def align_many(
    frame_times: np.ndarray,
    values: np.ndarray,
    grid: np.ndarray,
    *,
    frame_period: float | None = None,
    grid_period: float | None = None,
) -> np.ndarray:
    """:func:`align_to_grid` for ``R`` recordings that share the same frame times and the same grid.

    ``values`` has shape ``(R, N, D)``; the result ``(R, G, D)`` equals ``align_to_grid(frame_times, values[r], grid)``
    for every ``r`` (:func:`align_to_grid` is this function with ``R = 1``): the index work, which depends only on
    the times, is done once. Used for packed clip sets, where thousands of clips share
    one frame count and grid.
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float32)
    grid = np.asarray(grid, dtype=np.float64)
    r, n, d = values.shape
    out = np.full((r, len(grid), d), np.nan, dtype=np.float32)
    if n == 0 or len(grid) == 0 or r == 0:
        return out
    h = grid_period if grid_period is not None else grid_step(grid, default=grid_step(frame_times))
    p = frame_period if frame_period is not None else grid_step(frame_times, default=h)
    g_of = np.searchsorted(grid - h / 2 - _EPS, frame_times, side="right") - 1
    nearest = np.clip(g_of, 0, len(grid) - 1)
    inside = (g_of >= 0) & (frame_times < grid[nearest] + h / 2 - _EPS)
    filled = np.zeros(len(grid), dtype=bool)
    # 1. bin frames into the grid interval they fall in (latest start <= frame time), mean per bin ignoring NaN
    if inside.any():
        idx = nearest[inside]
        vals = values[:, inside]
        finite = np.isfinite(vals)
        starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
        sums = np.add.reduceat(np.where(finite, vals, 0.0).astype(np.float64), starts, axis=1)
        counts = np.add.reduceat(finite.astype(np.int64), starts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        bins = idx[starts]
        out[:, bins] = means.astype(np.float32)
        filled[bins] = True
    # 2. steps with no frame inside: hold the nearest frame if it is within p/2
    empty = np.flatnonzero(~filled)
    if len(empty):
        g = grid[empty]
        pos = np.searchsorted(frame_times, g)
        lo = np.clip(pos - 1, 0, n - 1)
        hi = np.clip(pos, 0, n - 1)
        j = np.where(np.abs(g - frame_times[lo]) <= np.abs(frame_times[hi] - g), lo, hi)
        ok = np.abs(frame_times[j] - g) <= p / 2 + _EPS
        out[:, empty[ok]] = values[:, j[ok]]
    return out
