"""Classification metrics for segment- and clip-level tasks.

For classes :math:`c = 1..C` with precision :math:`P_c` and recall :math:`R_c`,
:math:`F1_c = 2 P_c R_c / (P_c + R_c)` (0 when both are 0).

- ``macro_f1``: :math:`\\frac{1}{C} \\sum_c F1_c` over the classes present in ``y_true`` or ``y_pred`` (or over
  ``labels`` when given): the MuSe-Sent score, pooled over all segments of all recordings.
- ``weighted_f1``: :math:`\\sum_c \\frac{n_c}{N} F1_c`, with :math:`n_c` the support of class :math:`c` in ``y_true``.
- ``mer_score``: weighted F1 of the discrete emotion :math:`- 0.25 \\times` MSE of valence (MER-MULTI, MER-NOISE).

The definitions match ``sklearn.metrics.f1_score`` with ``average="macro"`` / ``"weighted"`` and
``zero_division=0``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _f1_per_class(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f1 = np.zeros(len(labels))
    support = np.zeros(len(labels))
    for i, c in enumerate(labels):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        support[i] = tp + fn
        den = 2 * tp + fp + fn
        f1[i] = 2 * tp / den if den > 0 else 0.0
    return f1, support


def _labels(y_true, y_pred, labels):
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same length, got {y_true.shape[0]} and {y_pred.shape[0]}.")
    lab = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    return y_true, y_pred, lab


def macro_f1(y_true, y_pred, labels: Sequence | None = None) -> float:
    """Unweighted mean of per-class F1."""
    y_true, y_pred, lab = _labels(y_true, y_pred, labels)
    if len(y_true) == 0:
        return float("nan")
    f1, _ = _f1_per_class(y_true, y_pred, lab)
    return float(f1.mean())


def weighted_f1(y_true, y_pred, labels: Sequence | None = None) -> float:
    """Support-weighted mean of per-class F1."""
    y_true, y_pred, lab = _labels(y_true, y_pred, labels)
    if len(y_true) == 0:
        return float("nan")
    f1, support = _f1_per_class(y_true, y_pred, lab)
    return float((f1 * support).sum() / support.sum()) if support.sum() > 0 else 0.0


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches."""
    y_true, y_pred, _ = _labels(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def mer_score(emotion_true, emotion_pred, valence_true, valence_pred) -> float:
    """MER 2023 combined score: weighted F1 of the discrete emotion − 0.25 × MSE of valence."""
    vt = np.asarray(valence_true, np.float64)
    vp = np.asarray(valence_pred, np.float64)
    return weighted_f1(emotion_true, emotion_pred) - 0.25 * float(np.mean((vt - vp) ** 2))
