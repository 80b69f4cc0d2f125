"""Training one model for one seed: Adam, ReduceLROnPlateau and early stopping on the devel CCC.

Per epoch: one pass over the shuffled training windows (order from a generator seeded with the seed), then the
devel partition is predicted with the shared inference path and scored with the pooled CCC averaged over targets.
The learning rate is reduced when that score stops improving; training stops after ``patience`` epochs without
improvement, and the **best** weights are restored before the function returns, so every score reported afterwards
comes from the selected epoch.

Resumable: after every epoch :func:`fit_seed` can hand an **epoch state** to a callback (model, optimiser, scheduler,
early-stopping state, history, and the RNG states of torch, CUDA, NumPy, Python and the data-order generator:
:func:`epoch_state`), and it continues from such a state (``resume_state``) exactly where it stopped: the remaining
epochs see the same data order, dropout masks and learning-rate schedule, so the result equals an uninterrupted
run bit for bit (on the same device and thread count).

``training.schedule: progressive_unfreezing`` replaces the plain plateau schedule and early stopping by the staged
schedule of :mod:`affectflow.training.schedules` (its state is part of the epoch state). Every history row has the
rate of the epoch's first and last batch (``lr_start``, ``lr_end``; ``lr`` is the rate after the epoch's scheduler
step) and ``frames_per_s`` (real time steps trained per second: video frames for a per-frame backbone). On CUDA the
forward pass and loss run under ``torch.autocast`` (bfloat16) unless ``training.amp: false``; on the CPU nothing
changes.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from affectflow.data.batches import prepare_batches
from affectflow.data.dataset import WindowDataset, batch_to, collate
from affectflow.errors import CorpusError
from affectflow.training.losses import get_loss
from affectflow.training.schedules import make_schedule
from affectflow.training.seeds import seed_everything
from affectflow.training.settings import TrainingConfig

log = logging.getLogger(__name__)


class TrainingStopped(Exception):
    """Raised by an epoch callback to end a run on purpose (e.g. a tuning trial pruned by Optuna); the run's status
    becomes ``stopped: <message>`` (see :func:`affectflow.experiment.train`)."""


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
    frames_per_s:
        Real (unpadded) time steps trained per second of training-loop time.
    """

    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    windows_per_s: float = float("nan")
    frames_per_s: float = float("nan")


def rng_state(gen: torch.Generator) -> dict:
    """The RNG states training depends on, as tensors and plain values (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "data_order": gen.get_state(),
        "numpy": {"name": str(np_state[0]), "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_state[0]), "state": [int(v) for v in py_state[1]], "gauss_next": py_state[2]},
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict, gen: torch.Generator) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    gen.set_state(state["data_order"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_state(*, epoch, model, opt, sched, gen, best_score, best_epoch, best_state, history, windows,
                train_time, frames=0, schedule=None) -> dict:
    """Everything needed to continue training after ``epoch`` (tensors and plain values only)."""
    return {
        "frames": int(frames),
        "schedule": None if schedule is None else schedule.state_dict(),
        "format": "affectflow-epoch-state",
        "epoch": int(epoch),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "best_score": float(best_score),
        "best_epoch": int(best_epoch),
        "best_state": {k: v.detach().cpu().clone() for k, v in best_state.items()},
        "history": [dict(h) for h in history],
        "windows": int(windows),
        "train_time": float(train_time),
        "rng": rng_state(gen),
    }


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
    resume_state: dict | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
    augment: Callable[[dict, int, int], dict] | None = None,
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
    resume_state:
        An :func:`epoch_state` of an earlier, interrupted call with the same arguments: training continues after
        its epoch (model, optimiser, scheduler, early stopping and RNG states restored).
    on_epoch_end:
        Called with the :func:`epoch_state` after every epoch (e.g. to write an epoch checkpoint).
    augment:
        ``(batch, epoch, batch number) -> batch``, applied to every collated training batch before it moves to
        the device (``training.augment``: :class:`affectflow.augment.batch.BatchAugmenter`, whose draws depend only
        on the seed, epoch and batch number, so a resumed run sees the same batches).
    """
    if len(train_ds) == 0:
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

    schedule = make_schedule(getattr(cfg, "schedule", None), getattr(cfg, "unfreezing", None), model, opt)
    amp = device.type == "cuda" and getattr(cfg, "amp", None) is not False
    # batches as contiguous tensors prepared once (same batches, order and random draws as the DataLoader);
    # worker processes asked for, or a training set too large for memory, read windows per batch instead
    prepared = prepare_batches(train_ds) if cfg.num_workers == 0 else None
    loader = None if prepared is not None else DataLoader(
        train_ds,
        batch_size=cfg.batch_size,
        sampler=RandomSampler(train_ds, generator=gen),
        collate_fn=collate,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
    )
    batches_per_epoch = prepared.num_batches(cfg.batch_size) if prepared is not None else len(loader)
    best_score, best_epoch, best_state = -math.inf, 0, copy.deepcopy(model.state_dict())
    history: list[dict] = []
    windows, frames, train_time = 0, 0, 0.0
    start = 1
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        opt.load_state_dict(resume_state["optimizer"])
        sched.load_state_dict(resume_state["scheduler"])
        best_score, best_epoch = float(resume_state["best_score"]), int(resume_state["best_epoch"])
        best_state = {k: v.to(device) for k, v in resume_state["best_state"].items()}
        history = [dict(h) for h in resume_state["history"]]
        windows, train_time = int(resume_state["windows"]), float(resume_state["train_time"])
        frames = int(resume_state.get("frames", 0))
        if schedule is not None:
            schedule.load_state_dict(resume_state["schedule"])
        start = int(resume_state["epoch"]) + 1
        set_rng_state(resume_state["rng"], gen)
        log.info("seed %d: resuming after epoch %d (best epoch %d, devel score %.4f)", seed, start - 1, best_epoch,
                 best_score)
        if schedule is None and start > 1 and start - 1 - best_epoch >= cfg.patience:
            start = cfg.epochs + 1  # it had already stopped early
        if schedule is not None and schedule.stopped:
            start = cfg.epochs + 1
    bar = tqdm(range(start, cfg.epochs + 1), desc=f"seed {seed}", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        losses = []
        row_start = schedule.start_epoch() if schedule is not None else {}
        n_batches = batches_per_epoch if max_batches is None else min(batches_per_epoch, max_batches)
        lr_start, ep_frames = None, 0
        epoch_batches = prepared.epoch(cfg.batch_size, gen) if prepared is not None else loader
        for nb, batch in enumerate(epoch_batches):
            if max_batches is not None and nb >= max_batches:
                break
            if schedule is not None:
                schedule.batch_lr(nb, n_batches)
            if lr_start is None:
                lr_start = opt.param_groups[0]["lr"]
            if augment is not None:
                batch = augment(batch, epoch, nb)
            b = batch_to(batch, device)
            if amp:
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                    loss = compute_loss(model, b)
            else:
                loss = compute_loss(model, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append(loss.detach())  # read once per epoch: no host synchronisation per batch
            windows += batch["mask"].shape[0]
            ep_frames += int(batch["mask"].sum())  # the batch on the host
        losses = torch.stack(losses).float().tolist() if losses else []
        lr_end = opt.param_groups[0]["lr"]
        epoch_time = time.perf_counter() - t0
        train_time += epoch_time
        score = float(score_devel(model))
        if not np.isfinite(score):
            score = -math.inf
        improved = score > best_score
        if improved:
            best_score, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        extra: dict = {}
        if schedule is None:
            sched.step(score)
        else:
            extra = schedule.end_epoch(score, improved, model, best_state)
        lr = opt.param_groups[0]["lr"]
        frames += ep_frames
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "devel_score": score,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
            "lr_start": lr_start if lr_start is not None else lr,
            "lr_end": lr_end,
            "best_devel_score": best_score,
            "frames_per_s": ep_frames / epoch_time if epoch_time > 0 else float("nan"),
            **row_start,
            **extra,
        }
        history.append(row)
        log.info("seed %d epoch %d: train loss %.4f, devel score %.4f, lr %.2e", seed, epoch, row["train_loss"], score, lr)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", devel=f"{score:.3f}", best=f"{best_score:.3f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch_state(epoch=epoch, model=model, opt=opt, sched=sched, gen=gen, best_score=best_score,
                                     best_epoch=best_epoch, best_state=best_state, history=history, windows=windows,
                                     train_time=train_time, frames=frames, schedule=schedule))
        if schedule is not None:
            if schedule.stopped:
                log.info("seed %d: progressive unfreezing finished at epoch %d (best epoch %d)", seed, epoch,
                         best_epoch)
                break
            continue
        if epoch - best_epoch >= cfg.patience:
            log.info("seed %d: early stop at epoch %d (best epoch %d)", seed, epoch, best_epoch)
            break
    model.load_state_dict(best_state)
    if schedule is not None:  # leave the model trainable as it was built
        for p in model.parameters():
            p.requires_grad_(True)
    nan = float("nan")
    return FitResult(best_epoch, best_score, history, windows / train_time if train_time > 0 else nan,
                     frames / train_time if train_time > 0 else nan)
