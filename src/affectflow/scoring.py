"""How predictions are scored, per task type, and the one selection score (no corpus, no model, no torch).

=================  =======================================================  ============================================
task type          :func:`score` (per target)                               :func:`selection_score` (higher is better)
=================  =======================================================  ============================================
``continuous``     CCC pooled over the concatenated recordings (``ccc``)    mean pooled CCC over targets (NaN if any
                   and per-recording mean (``ccc_mean``), Pearson, RMSE     target's is NaN)
``segment``        classification: macro F1 pooled over all segments,       mean over targets of macro F1
                   weighted F1, accuracy; regression: CCC, Pearson, RMSE,   (classification) / CCC (regression)
                   MSE
``clip``           as segments, plus ``mer_score`` = weighted F1 − 0.25 ×   mean weighted F1 (classification) − 0.25 ×
                   MSE with one classification and one regression target    mean MSE (regression)
=================  =======================================================  ============================================

Each rule is a class in :data:`SCORERS` (:class:`ContinuousScoring`, :class:`SegmentScoring`, :class:`ClipScoring`);
the task types of :mod:`affectflow.tasks` inherit them, so ``ContinuousTask.score`` is this module's rule. A new task
type registers its scoring here with :func:`register_scoring`. This module sits below :mod:`affectflow.predictions`
and :mod:`affectflow.tasks` (it imports neither), so a saved :class:`~affectflow.predictions.Predictions` is scored
without importing the training code.

>>> from affectflow.predictions import Predictions
>>> from affectflow.scoring import score, selection_score
>>> preds = Predictions.load("runs/gru-egemaps/predictions/devel")       # doctest: +SKIP
>>> score(preds)["arousal"]["ccc"], selection_score(preds)              # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from affectflow.errors import ConfigError
from affectflow.metrics import accuracy, ccc, macro_f1, pearson, rmse, score_recordings, weighted_f1
from affectflow.targets import TargetSpec, split_columns

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from affectflow.predictions import Predictions


class Scoring:
    """The scoring rule of one task type: :meth:`score` and :meth:`selection_score` (class methods)."""

    name: str = ""

    @classmethod
    def score(cls, preds: "Predictions") -> dict[str, Any]:
        """Metrics per target of ``preds`` against its labels."""
        raise NotImplementedError

    @classmethod
    def selection_score(cls, specs: list[TargetSpec], scores: dict[str, Any]) -> float:
        """One number to select epochs, seeds and fusion weights on (higher is better), from :meth:`score`'s
        result."""
        raise NotImplementedError


#: task type name → its :class:`Scoring` class.
SCORERS: dict[str, type[Scoring]] = {}


def register_scoring(cls: type[Scoring]) -> type[Scoring]:
    """Register ``cls`` as the scoring of task type ``cls.name`` (a class decorator)."""
    SCORERS[cls.name] = cls
    return cls


def get_scoring(task: str) -> type[Scoring]:
    """The :class:`Scoring` of task type ``task``."""
    try:
        return SCORERS[task]
    except KeyError:
        raise ConfigError(f"Unknown task type {task!r}; known: {sorted(SCORERS)}.") from None


def score(preds: "Predictions") -> dict[str, Any]:
    """Metrics per target of ``preds`` against its labels (the task type decides which; see the module table)."""
    return get_scoring(preds.task).score(preds)


def selection_score(preds: "Predictions", scores: dict[str, Any] | None = None) -> float:
    """The one number (higher is better) that selects epochs, seeds and fusion weights for ``preds`` (``scores``:
    :func:`score`'s result when already computed)."""
    return get_scoring(preds.task).selection_score(preds.specs, score(preds) if scores is None else scores)


def score_readout(task: str, specs: list[TargetSpec], labels: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
    """Metrics per target of segment / clip outputs ``(N, Σ outputs)`` against labels ``(N, K)`` (class index or
    value; NaN = no label)."""
    preds = split_columns(outputs, specs)
    scores: dict[str, Any] = {}
    for k, s in enumerate(specs):
        ok = np.isfinite(labels[:, k])
        yt, yp = labels[ok, k], preds[s.name][ok]
        if s.kind == "classification":
            labs = list(range(len(s.classes)))
            scores[s.name] = {"macro_f1": macro_f1(yt.astype(int), yp.astype(int), labs) if len(yt) else float("nan"),
                              "weighted_f1": weighted_f1(yt.astype(int), yp.astype(int)) if len(yt) else float("nan"),
                              "accuracy": accuracy(yt, yp) if len(yt) else float("nan"), "n": int(ok.sum())}
        else:
            scores[s.name] = {"ccc": ccc(yt, yp), "pearson": pearson(yt, yp), "rmse": rmse(yt, yp),
                              "mse": float(np.mean((yt - yp) ** 2)) if len(yt) else float("nan"), "n": int(ok.sum())}
    return scores


@register_scoring
class ContinuousScoring(Scoring):
    """Continuous: CCC pooled and per-recording mean, Pearson, RMSE; selection: mean pooled CCC over targets."""

    name = "continuous"

    @classmethod
    def score(cls, preds):
        labelled = [i for i, y in enumerate(preds.labels) if y is not None]
        return {t: score_recordings([preds.labels[i][:, k] for i in labelled], [preds.values[i][:, k] for i in labelled])
                for k, t in enumerate(preds.targets)}

    @classmethod
    def selection_score(cls, specs, scores):
        vals = [scores[s.name]["ccc"] for s in specs]
        return float(np.mean(vals)) if np.all(np.isfinite(vals)) else float("nan")


class ReadoutScoring(Scoring):
    """Segment and clip: one label vector per sample (:func:`score_readout`)."""

    @classmethod
    def score(cls, preds):
        return score_readout(cls.name, preds.specs, preds.label_matrix(), preds.outputs)


@register_scoring
class SegmentScoring(ReadoutScoring):
    """Segment: macro F1 pooled over all segments (MuSe-Sent) / CCC; selection: their mean over targets."""

    name = "segment"

    @classmethod
    def selection_score(cls, specs, scores):
        vals = [scores[s.name]["macro_f1" if s.kind == "classification" else "ccc"] for s in specs]
        return float(np.mean(vals))


@register_scoring
class ClipScoring(ReadoutScoring):
    """Clip: weighted F1 / MSE / CCC, plus ``mer_score`` (MER 2023); selection: mean weighted F1 − 0.25 × mean MSE."""

    name = "clip"

    @classmethod
    def score(cls, preds):
        scores = super().score(preds)
        cls_ = [s for s in preds.specs if s.kind == "classification"]
        reg = [s for s in preds.specs if s.kind == "regression"]
        if len(cls_) == 1 and len(reg) == 1:
            scores["mer_score"] = {"value": scores[cls_[0].name]["weighted_f1"] - 0.25 * scores[reg[0].name]["mse"]}
        return scores

    @classmethod
    def selection_score(cls, specs, scores):
        f1 = [scores[s.name]["weighted_f1"] for s in specs if s.kind == "classification"]
        mse = [scores[s.name]["mse"] for s in specs if s.kind == "regression"]
        return float((np.mean(f1) if f1 else 0.0) - 0.25 * (np.mean(mse) if mse else 0.0))
