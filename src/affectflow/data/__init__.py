"""Alignment to the label grid, normalisation, windowing and datasets."""

from affectflow.data.align import align_to_grid, regular_grid
from affectflow.data.dataset import WindowDataset, batch_to, collate
from affectflow.data.normalize import Normalizer
from affectflow.data.store import SequenceStore
from affectflow.data.windows import window_starts

__all__ = [
    "Normalizer",
    "SequenceStore",
    "WindowDataset",
    "align_to_grid",
    "batch_to",
    "collate",
    "regular_grid",
    "window_starts",
]
