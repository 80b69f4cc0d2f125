"""Regression metrics for continuous affect, and how they are pooled over recordings.

All functions take ``y_true`` and ``y_pred`` of shape ``(N,)`` and ignore positions where either is NaN.
Moments are **population** moments (divide by N), as in ``audmetric.concordance_cc``:

.. math::

    \\mathrm{CCC}(x, y) = \\frac{2\\,\\mathrm{cov}(x, y)}{\\mathrm{var}(x) + \\mathrm{var}(y) + (\\bar x - \\bar y)^2},
    \\qquad \\mathrm{cov}(x, y) = \\frac{1}{N}\\sum_i (x_i - \\bar x)(y_i - \\bar y).

Pearson :math:`r = \\mathrm{cov}(x, y) / \\sqrt{\\mathrm{var}(x)\\,\\mathrm{var}(y)}`;
:math:`\\mathrm{RMSE} = \\sqrt{\\frac{1}{N}\\sum_i (x_i - y_i)^2}`. Computations run in float64.

Degenerate inputs: with fewer than 2 valid points every metric is NaN; if the denominator of CCC or r is 0
(both series constant) the value is NaN, except CCC of two identical constant series, which is 1.

Pooling (:func:`score_recordings`):

- ``pooled``: one value over all recordings of a partition **concatenated** (the MuSe and ABAW challenge score);
- ``mean``: the mean over recordings of the per-recording values (recordings with NaN values are skipped).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def _valid(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64).ravel()
    b = np.asarray(y_pred, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same length, got {a.shape[0]} and {b.shape[0]}.")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def ccc(y_true, y_pred) -> float:
    """Concordance correlation coefficient with population moments (formula in the module docstring)."""
    a, b = _valid(y_true, y_pred)
    if len(a) < 2:
        return float("nan")
    ma, mb = a.mean(), b.mean()
    va, vb = ((a - ma) ** 2).mean(), ((b - mb) ** 2).mean()
    cov = ((a - ma) * (b - mb)).mean()
    den = va + vb + (ma - mb) ** 2
    if den == 0:
        return 1.0 if np.array_equal(a, b) else float("nan")
    return float(2 * cov / den)


def pearson(y_true, y_pred) -> float:
    """Pearson correlation coefficient (NaN if either series is constant)."""
    a, b = _valid(y_true, y_pred)
    if len(a) < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    den = np.sqrt((da * da).sum() * (db * db).sum())
    return float((da * db).sum() / den) if den > 0 else float("nan")


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    a, b = _valid(y_true, y_pred)
    if len(a) < 2:
        return float("nan")
    return float(np.sqrt(((a - b) ** 2).mean()))


METRICS: dict[str, Callable] = {"ccc": ccc, "pearson": pearson, "rmse": rmse}


def score_recordings(
    y_true: Sequence[np.ndarray],
    y_pred: Sequence[np.ndarray],
    *,
    metrics: Sequence[str] = ("ccc", "pearson", "rmse"),
) -> dict[str, float]:
    """Score a partition given per-recording series of one target.

    Parameters
    ----------
    y_true, y_pred:
        One ``(T_r,)`` array per recording (NaN = not annotated).
    metrics:
        Names from :data:`METRICS`.

    Returns
    -------
    dict
        ``{"<metric>": pooled value, "<metric>_mean": mean of per-recording values}`` for each metric.
    """
    if len(y_true) != len(y_pred):
        raise ValueError("`y_true` and `y_pred` must have one series per recording each.")
    out: dict[str, float] = {}
    if not len(y_true):
        return {m: float("nan") for m in metrics} | {f"{m}_mean": float("nan") for m in metrics}
    cat_t = np.concatenate([np.asarray(t, np.float64).ravel() for t in y_true])
    cat_p = np.concatenate([np.asarray(p, np.float64).ravel() for p in y_pred])
    for m in metrics:
        fn = METRICS[m]
        out[m] = fn(cat_t, cat_p)
        per = np.array([fn(t, p) for t, p in zip(y_true, y_pred)], dtype=np.float64)
        out[f"{m}_mean"] = float(np.nanmean(per)) if np.isfinite(per).any() else float("nan")
    return out
