"""Training batches prepared once as contiguous tensors: no per-batch reading, normalising, padding or Python loops.

:class:`PreparedBatches` reads every item of a dataset once (``ds[k]``, the item layout of
:mod:`affectflow.data.dataset`: :class:`~affectflow.data.dataset.WindowDataset` and the segment / clip readout
datasets) into padded tensors::

    x[set]             (N, T_max, D_set) float32      normalised, 0 where missing or padded
    feature_mask[set]  (N, T_max) bool
    y                  (N, T_max, K) float32           0 where missing
    y_mask             (N, T_max, K) bool
    lengths            (N,) long                       steps of each item

:meth:`PreparedBatches.batch` gathers the rows of a batch with one ``index_select`` per tensor and cuts them to
the batch's longest item, so a batch **equals** ``collate([ds[k] for k in idx])`` (same values, shapes and dtypes;
``tests/core/test_batches.py``). :meth:`PreparedBatches.epoch` yields one epoch in the order of
``DataLoader(ds, batch_size, sampler=RandomSampler(ds, generator=gen))`` and consumes the same random numbers (the
permutation from ``gen``, and the one draw from torch's global generator that every DataLoader iterator takes for
its worker seeds), so training with prepared batches gives the same results bit for bit.

Memory: ``N · T_max · (Σ D_set + n_sets + 2K)`` 4-byte values (overlapping windows are stored once per window).
:func:`prepare_batches` prepares only when that fits ``max_bytes`` (:data:`MAX_PREPARED_BYTES`, 1 GiB); larger
training sets (e.g. frame-level face crops, the 12 GB corpus of ``benchmarks/bench_training.py --only large``)
keep reading windows from disk per batch through the DataLoader, in bounded memory.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

#: Largest prepared training set (bytes) :func:`prepare_batches` builds; beyond it batches are read per step.
MAX_PREPARED_BYTES = 1 << 30


def dataloader_seed_draw() -> None:
    """Take the one value that ``iter(DataLoader(...))`` draws from torch's global generator (its workers' base
    seed), so code that replaces a DataLoader leaves the global random stream (dropout masks, ...) where it was."""
    torch.empty((), dtype=torch.int64).random_()


def _item_lengths(ds) -> np.ndarray | None:
    """Steps of every item from the dataset's ``items`` ``(recording, start, stop, ...)`` without reading data."""
    items = getattr(ds, "items", None)
    if not isinstance(items, list) or not items or not isinstance(items[0], tuple) or len(items[0]) < 3:
        return None
    if getattr(ds, "task", None) == "clip":
        return np.ones(len(items), np.int64)
    return np.fromiter((it[2] - it[1] for it in items), np.int64, len(items))


def prepared_bytes(ds) -> int | None:
    """Bytes :class:`PreparedBatches` would take for ``ds`` (``None``: not a dataset of the standard layout)."""
    lengths = _item_lengths(ds)
    if lengths is None or len(lengths) == 0:
        return None
    first = ds[0]
    width = sum(v.shape[1] + 1 for v in first["x"].values()) + 2 * first["y"].shape[1]
    return int(len(lengths) * int(lengths.max()) * width * 4)


class PreparedBatches:
    """Every item of ``ds`` as padded, contiguous tensors (layout in the module docstring).

    Parameters
    ----------
    ds:
        A dataset whose items have the :mod:`affectflow.data.dataset` layout.
    """

    def __init__(self, ds) -> None:
        n = len(ds)
        items = [ds[k] for k in range(n)]
        lengths = [len(it["y"]) for it in items]
        t = max(lengths)
        names = list(items[0]["x"])
        k = items[0]["y"].shape[1]
        self.x = {m: torch.zeros(n, t, items[0]["x"][m].shape[1]) for m in names}
        self.feature_mask = {m: torch.zeros(n, t, dtype=torch.bool) for m in names}
        self.y = torch.zeros(n, t, k)
        self.y_mask = torch.zeros(n, t, k, dtype=torch.bool)
        for j, it in enumerate(items):
            length = lengths[j]
            for m in names:
                self.x[m][j, :length] = torch.from_numpy(it["x"][m])
                self.feature_mask[m][j, :length] = torch.from_numpy(it["feature_mask"][m])
            yy = torch.from_numpy(np.ascontiguousarray(it["y"]))
            finite = torch.isfinite(yy)
            self.y[j, :length] = torch.where(finite, yy, torch.zeros(()))
            self.y_mask[j, :length] = finite
        self.lengths = torch.tensor(lengths, dtype=torch.long)
        self.index = torch.tensor([it["index"] for it in items])
        self.start = torch.tensor([it["start"] for it in items])
        self._steps = torch.arange(t)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx: torch.Tensor) -> dict:
        """The batch of items ``idx`` ``(B,)`` long, as :func:`~affectflow.data.dataset.collate` builds it."""
        lengths = self.lengths.index_select(0, idx)
        t = int(lengths.max())

        def rows(v: torch.Tensor) -> torch.Tensor:
            out = v.index_select(0, idx)
            return out if t == v.shape[1] else out[:, :t].contiguous()

        return {
            "x": {m: rows(v) for m, v in self.x.items()},
            "feature_mask": {m: rows(v) for m, v in self.feature_mask.items()},
            "mask": self._steps[:t].unsqueeze(0) < lengths.unsqueeze(1),
            "y": rows(self.y),
            "y_mask": rows(self.y_mask),
            "index": self.index.index_select(0, idx),
            "start": self.start.index_select(0, idx),
        }

    def num_batches(self, batch_size: int) -> int:
        """Batches per epoch (the last one may be smaller)."""
        return math.ceil(len(self) / batch_size)

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[dict]:
        """One shuffled epoch, in the order and with the random draws of a DataLoader with a seeded RandomSampler
        (see the module docstring)."""
        dataloader_seed_draw()
        n = len(self)
        order = torch.randperm(n, generator=generator)
        for s in range(0, n, batch_size):
            if s + batch_size > n:  # RandomSampler runs dry (a second, unused permutation) filling the last batch
                torch.randperm(n, generator=generator)
            yield self.batch(order[s : s + batch_size])
        if n % batch_size == 0:  # ... or when the loader asks for the batch after the last full one
            torch.randperm(n, generator=generator)


def prepare_batches(ds, *, max_bytes: int = MAX_PREPARED_BYTES) -> PreparedBatches | None:
    """:class:`PreparedBatches` of ``ds`` when it has the standard item layout and fits ``max_bytes``, else ``None``
    (the caller then reads batches through a DataLoader)."""
    size = prepared_bytes(ds)
    if size is None or size > max_bytes:
        return None
    return PreparedBatches(ds)
