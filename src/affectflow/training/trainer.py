"""Training one model for one seed: Adam, ReduceLROnPlateau and early stopping on the devel CCC.

Per epoch: one pass over the shuffled training windows (order from a generator seeded with the seed), then the
devel partition is predicted with the shared inference path and scored with the pooled CCC averaged over targets.
The learning rate is reduced when that score stops improving; training stops after ``patience`` epochs without
improvement, and the **best** weights are restored before the function returns, so every score reported afterwards
comes from the selected epoch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from affectflow.config import TrainingConfig
from affectflow.data.dataset import WindowDataset, batch_to, collate
from affectflow.training.losses import get_loss
from affectflow.training.seeds import seed_everything

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """Outcome of :func:`fit_seed`.

    Attributes
    ----------
    best_epoch:
        1-based epoch whose weights were kept.
    best_score:
        Devel score of that epoch (pooled CCC averaged over targets).
    history:
        One dict per epoch: epoch, train_loss, devel_score, lr, seconds.
    windows_per_s:
        Training throughput (windows per second of training-loop time).
    """

    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    windows_per_s: float = float("nan")


def fit_seed(
    model: torch.nn.Module,
    train_ds: WindowDataset,
    score_devel: Callable[[torch.nn.Module], float],
    cfg: TrainingConfig,
    seed: int,
    *,
    device: torch.device,
    progress: bool = True,
    max_batches: int | None = None,
    compute_loss: Callable[[torch.nn.Module, dict], torch.Tensor] | None = None,
) -> FitResult:
    """Train ``model`` in place and restore its best weights.

    Parameters
    ----------
    model:
        A freshly built model (already seeded by the caller).
    train_ds:
        Training windows.
    score_devel:
        Returns the devel score of the model (higher is better).
    cfg:
        Training configuration.
    seed:
        Seed of the data order and dropout.
    device:
        Where to train.
    progress:
        Show a progress bar over epochs.
    max_batches:
        Stop each epoch after this many batches (benchmarks only).
    compute_loss:
        ``(model, batch on device) -> scalar loss``; default: ``cfg.loss`` on the model's ``(B, T, K)`` output
        against ``batch["y"]`` over ``batch["y_mask"]``. Tasks with other outputs (classification, multitask with
        learnt weights) pass their own; parameters of a loss module must then be part of ``model``.
    """
    if len(train_ds) == 0:
        from affectflow.errors import CorpusError

        raise CorpusError("There are no labelled training windows: check `data.train_partitions` and the labels.")
    gen = seed_everything(seed)
    model.to(device)
    if compute_loss is None:
        loss_fn = get_loss(cfg.loss)

        def compute_loss(m, b):
            return loss_fn(m(b["x"], b["mask"], b["feature_mask"]), b["y"], b["y_mask"])

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
    )
    loader = DataLoader(
        train_ds,
        batch_size=cfg.batch_size,
        sampler=RandomSampler(train_ds, generator=gen),
        collate_fn=collate,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
    )
    best_score, best_epoch, best_state = -math.inf, 0, copy.deepcopy(model.state_dict())
    history: list[dict] = []
    windows, train_time = 0, 0.0
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"seed {seed}", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        losses = []
        for nb, batch in enumerate(loader):
            if max_batches is not None and nb >= max_batches:
                break
            b = batch_to(batch, device)
            loss = compute_loss(model, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append(float(loss.detach()))
            windows += batch["mask"].shape[0]
        train_time += time.perf_counter() - t0
        score = float(score_devel(model))
        if not np.isfinite(score):
            score = -math.inf
        sched.step(score)
        lr = opt.param_groups[0]["lr"]
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "devel_score": score,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        log.info("seed %d epoch %d: train loss %.4f, devel score %.4f, lr %.2e", seed, epoch, row["train_loss"], score, lr)
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", devel=f"{score:.3f}", best=f"{best_score:.3f}")
        if epoch - best_epoch >= cfg.patience:
            log.info("seed %d: early stop at epoch %d (best epoch %d)", seed, epoch, best_epoch)
            break
    model.load_state_dict(best_state)
    return FitResult(best_epoch, best_score, history, windows / train_time if train_time > 0 else float("nan"))
