"""Metrics: CCC (population moments), Pearson r, RMSE, pooled or per recording."""

from affectflow.metrics.classification import accuracy, macro_f1, mer_score, weighted_f1
from affectflow.metrics.regression import METRICS, ccc, pearson, rmse, score_recordings

__all__ = ["accuracy", "macro_f1", "mer_score", "weighted_f1", "METRICS", "ccc", "pearson", "rmse", "score_recordings"]
