"""Metrics: CCC (population moments), Pearson r, RMSE, pooled or per recording."""

from affectflow.metrics.regression import METRICS, ccc, pearson, rmse, score_recordings

__all__ = ["METRICS", "ccc", "pearson", "rmse", "score_recordings"]
