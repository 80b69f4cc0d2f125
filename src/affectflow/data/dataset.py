"""PyTorch datasets over a :class:`~affectflow.data.store.SequenceStore` and the batch layout.

A batch is a dict::

    x             {feature set: (B, T, D_set) float32}   normalised, missing values = 0
    feature_mask  {feature set: (B, T) bool}             True where the set had a value at that step
    mask          (B, T) bool                            True on real (unpadded) steps; a prefix of each row
    y             (B, T, K) float32                      labels, 0 where missing
    y_mask        (B, T, K) bool                         True where the label exists (and the step is real)
    index         (B,) long                              recording index in the store
    start         (B,) long                              first step of the window in the recording
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from affectflow.data.normalize import Normalizer
from affectflow.data.store import SequenceStore
from affectflow.data.windows import window_starts


class WindowDataset(Dataset):
    """Windows of ``size`` steps every ``hop`` steps over all recordings of a store (``size=None``: whole ones).

    Parameters
    ----------
    store:
        Aligned recordings.
    normalizer:
        Fitted normaliser.
    size, hop:
        Window size and hop in steps.
    require_labels:
        Skip windows without any label (for training).
    """

    def __init__(
        self,
        store: SequenceStore,
        normalizer: Normalizer,
        size: int | None,
        hop: int | None,
        *,
        require_labels: bool = False,
    ) -> None:
        self.store = store
        self.normalizer = normalizer
        self.items: list[tuple[int, int, int]] = []
        for i, rec in enumerate(store.records):
            starts = [0] if size is None else window_starts(rec.length, size, hop)
            for s in starts:
                e = rec.length if size is None else min(s + size, rec.length)
                if require_labels and (rec.y is None or not np.isfinite(rec.y[s:e]).any()):
                    continue
                self.items.append((i, s, e))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict:
        i, s, e = self.items[k]
        subject = self.store.records[i].subject
        raw = self.store.read(i, s, e)
        x, fm = {}, {}
        for name, arr in raw.items():
            x[name], fm[name] = self.normalizer.transform(name, arr, subject)
        y = self.store.labels(i, s, e)
        return {"x": x, "feature_mask": fm, "y": y, "index": i, "start": s}


def collate(items: list[dict]) -> dict:
    """Pad a list of dataset items to the longest one and stack them into a batch (layout in the module docstring)."""
    b = len(items)
    t = max(len(it["y"]) for it in items)
    names = list(items[0]["x"])
    k = items[0]["y"].shape[1]
    x = {n: torch.zeros(b, t, items[0]["x"][n].shape[1]) for n in names}
    fm = {n: torch.zeros(b, t, dtype=torch.bool) for n in names}
    mask = torch.zeros(b, t, dtype=torch.bool)
    y = torch.zeros(b, t, k)
    y_mask = torch.zeros(b, t, k, dtype=torch.bool)
    for j, it in enumerate(items):
        length = len(it["y"])
        mask[j, :length] = True
        for n in names:
            x[n][j, :length] = torch.from_numpy(it["x"][n])
            fm[n][j, :length] = torch.from_numpy(it["feature_mask"][n])
        yy = torch.from_numpy(np.ascontiguousarray(it["y"]))
        finite = torch.isfinite(yy)
        y[j, :length] = torch.where(finite, yy, torch.zeros(()))
        y_mask[j, :length] = finite
    return {
        "x": x,
        "feature_mask": fm,
        "mask": mask,
        "y": y,
        "y_mask": y_mask,
        "index": torch.tensor([it["index"] for it in items]),
        "start": torch.tensor([it["start"] for it in items]),
    }


def batch_to(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a batch to ``device``."""
    out = {}
    for key, v in batch.items():
        if isinstance(v, dict):
            out[key] = {n: t.to(device) for n, t in v.items()}
        elif isinstance(v, torch.Tensor):
            out[key] = v.to(device)
        else:
            out[key] = v
    return out
