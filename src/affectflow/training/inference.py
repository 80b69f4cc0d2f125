"""The one inference path: whole recordings, or overlapping windows averaged per step.

Used for early stopping, evaluation and prediction alike, so a score during training and after reloading a
checkpoint come from the same code.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from affectflow.data.dataset import WindowDataset, batch_to, collate
from affectflow.data.normalize import Normalizer
from affectflow.data.store import SequenceStore


@torch.no_grad()
def predict_store(
    model: torch.nn.Module,
    store: SequenceStore,
    normalizer: Normalizer,
    *,
    window: int | None = None,
    hop: int | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> list[np.ndarray]:
    """Predict every recording of ``store``.

    Parameters
    ----------
    window, hop:
        ``None``: each recording in one pass. Otherwise windows of ``window`` steps every ``hop`` steps; where
        windows overlap, the outputs are averaged per step.
    batch_size:
        Recordings (or windows) per forward pass.

    Returns
    -------
    list of numpy.ndarray
        One ``(T_r, K_out)`` float32 array per recording, in store order (``K_out`` = the model's output columns:
        one per regression target, one per class of a classification target).
    """
    was_training = model.training
    model.eval()
    device = torch.device(device)
    width = sum(getattr(model, "output_sizes", {t: 1 for t in model.targets}).values())
    sums = [np.zeros((r.length, width), np.float64) for r in store.records]
    counts = [np.zeros((r.length, 1), np.float64) for r in store.records]
    ds = WindowDataset(store, normalizer, window, hop)
    # longest first keeps padding low and the order deterministic
    order = sorted(range(len(ds)), key=lambda k: -(ds.items[k][2] - ds.items[k][1]))
    loader = DataLoader(torch.utils.data.Subset(ds, order), batch_size=batch_size, shuffle=False, collate_fn=collate)
    for batch in loader:
        b = batch_to(batch, device)
        out = model(b["x"], b["mask"], b["feature_mask"]).float().cpu().numpy()
        lengths = batch["mask"].sum(1).numpy()
        for j in range(out.shape[0]):
            i, s, n = int(batch["index"][j]), int(batch["start"][j]), int(lengths[j])
            sums[i][s : s + n] += out[j, :n]
            counts[i][s : s + n] += 1
    model.train(was_training)
    return [(s / np.maximum(c, 1)).astype(np.float32) for s, c in zip(sums, counts)]
