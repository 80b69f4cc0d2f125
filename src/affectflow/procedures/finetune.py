"""Fine-tuning many copies of one model at once: the plain loop (reference) and the vectorised path.

Both implement the same procedure for every *job* ``m`` (a subject's data and a seed), starting from the same base
weights:

- the job's training windows are shuffled once per epoch with ``torch.randperm(n, generator=g)``,
  ``g = torch.Generator().manual_seed(seed)``, and cut into batches of ``batch_size`` windows;
- per batch: the loss (:func:`affectflow.training.losses.get_loss`; CCC: ``1 -`` mean per-window CCC) plus, with
  ``l2sp = α > 0``, the L2-SP penalty ``α · Σ_p ‖θ_p − θ⁰_p‖²`` toward the base weights ``θ⁰`` (Li et al., ICML 2018,
  "Explicit inductive bias for transfer learning"; it keeps a subject's model near the base model), gradients,
  the gradient norm of the job's parameters clipped to ``grad_clip`` (as ``torch.nn.utils.clip_grad_norm_``), one
  Adam step (``lr``, ``weight_decay`` as L2, betas 0.9/0.999, eps 1e-8; the job's own moments and step count);
- after every epoch the job's own devel recordings are predicted whole (eval mode) and scored with the pooled CCC
  averaged over targets; **epoch 0 is the base model itself**, so a job whose fine-tuning never beats the base
  model on its devel data keeps the base weights; the best epoch's weights are kept (strictly better score);
- a job stops after ``patience`` epochs without improvement, or after ``epochs``.

:func:`finetune_loop` runs the jobs one after another on ordinary ``nn.Module`` copies (any registered model).
:func:`finetune_vectorised` runs the same procedure with the jobs' forward and backward passes stacked into one
call per step (:class:`affectflow.training.stacked.StackedModels`: ``torch.func.stack_module_state`` /
``functional_call`` / ``vmap`` over the module itself, any model without a
:func:`~affectflow.training.stacked.stack_blocker`); each job keeps its own module, ``torch.optim.Adam``, gradient
clipping, batch schedule (jobs with fewer batches sit out the extra steps), early stopping and best weights, and
draws its dropout masks from its own stream seeded with its seed, as the loop does. The two paths give the same
weights up to float rounding (the stacked RNN is torch's decomposition instead of the fused kernel, and packed
sequences are masked instead; tested, also with dropout).

Speed: stacking removes the per-job Python and dispatch overhead and batches the matrix products, so the gain is
largest for small models; at the paper's hidden 256 on a CPU the arithmetic dominates (``benchmarks/
bench_stacking.py`` and ``benchmarks/bench_personalise.py`` print the measured ratios), so
:func:`affectflow.procedures.personalise.personalise` stacks 8 models per group by default.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from affectflow.data.dataset import collate
from affectflow.training.losses import get_loss
from affectflow.training.seeds import seed_everything
from affectflow.training.stacked import RngStreams, StackedModels, stack_blocker


@dataclass
class FineTuneSettings:
    """Optimisation settings of one fine-tuning job (see the module docstring for the procedure)."""

    epochs: int = 20
    patience: int = 5
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    loss: str = "ccc"
    l2sp: float = 0.0  # α of the L2-SP penalty toward the base weights (0 = off)


@dataclass
class JobData:
    """One subject's fine-tuning data: collated training windows and whole devel recordings (batch layout of
    :func:`affectflow.data.dataset.collate`; ``devel`` labels are scored pooled over its recordings)."""

    train: dict
    devel: dict


@dataclass
class JobResult:
    """Outcome of one job: its best weights, the epoch they come from (0 = base model) and the devel scores."""

    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float
    history: list[float] = field(default_factory=list)  # devel score after epoch 0, 1, 2, ...


def collate_items(items: list[dict]) -> dict:
    """Collate dataset items into one batch (all windows of a job)."""
    return collate(items)


def _take(batch: dict, idx: torch.Tensor) -> dict:
    return {"x": {n: t[idx] for n, t in batch["x"].items()},
            "feature_mask": {n: t[idx] for n, t in batch["feature_mask"].items()},
            "mask": batch["mask"][idx], "y": batch["y"][idx], "y_mask": batch["y_mask"][idx]}


def pooled_score(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> float:
    """Mean over targets of the CCC pooled over all valid steps; ``out``/``y``/``valid`` ``(R, T, K)``."""
    vals = []
    for k in range(out.shape[-1]):
        v = valid[..., k]
        a, b = y[..., k][v].double(), out[..., k][v].double()
        if len(a) < 2:
            return float("nan")
        ma, mb = a.mean(), b.mean()
        den = ((a - ma) ** 2).mean() + ((b - mb) ** 2).mean() + (ma - mb) ** 2
        vals.append(float(2 * ((a - ma) * (b - mb)).mean() / den) if den > 0 else float("nan"))
    return float(np.mean(vals)) if np.all(np.isfinite(vals)) else float("nan")


# ---------------------------------------------------------------------------- plain loop (reference)
def finetune_loop(base: torch.nn.Module, jobs: list[tuple[JobData, int]], settings: FineTuneSettings, *,
                  on_job: Callable[[int], None] | None = None) -> list[JobResult]:
    """Fine-tune a copy of ``base`` for every ``(data, seed)`` job, one after another (the reference)."""
    loss_fn = get_loss(settings.loss)
    results = []
    for j, (data, seed) in enumerate(jobs):
        seed_everything(seed)
        model = copy.deepcopy(base)
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        n = data.train["mask"].shape[0]
        anchor = [p.detach().clone() for p in model.parameters()] if settings.l2sp else None

        def devel_score() -> float:
            model.eval()
            with torch.no_grad():
                d = data.devel
                out = model(d["x"], d["mask"], d["feature_mask"])
            model.train()
            return pooled_score(out, d["y"], d["y_mask"])

        best, best_epoch = devel_score(), 0
        best = best if np.isfinite(best) else -math.inf
        history = [best]
        best_state = copy.deepcopy(model.state_dict())
        model.train()
        for epoch in range(1, settings.epochs + 1):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, settings.batch_size):
                b = _take(data.train, perm[s : s + settings.batch_size])
                loss = loss_fn(model(b["x"], b["mask"], b["feature_mask"]), b["y"], b["y_mask"])
                if anchor is not None:
                    loss = loss + settings.l2sp * sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if settings.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                opt.step()
            score = devel_score()
            history.append(score)
            if np.isfinite(score) and score > best:
                best, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
            if epoch - best_epoch >= settings.patience:
                break
        results.append(JobResult(best_state, best_epoch, best, history))
        if on_job:
            on_job(j)
    return results


# ---------------------------------------------------------------------------- vectorised path
def supports_vectorised(model: torch.nn.Module) -> bool:
    """Whether :func:`finetune_vectorised` can train ``model``: any model without a
    :func:`~affectflow.training.stacked.stack_blocker` (and without a loss it cannot stack)."""
    return stack_blocker(model) is None


def finetune_vectorised(base: torch.nn.Module, jobs: list[tuple[JobData, int]], settings: FineTuneSettings, *,
                        group_size: int | None = None, on_job: Callable[[int], None] | None = None) -> list[JobResult]:
    """Fine-tune all jobs together as stacked models (``group_size`` jobs at a time; default all). Same procedure and
    results as :func:`finetune_loop` (see the module docstring); needs :func:`supports_vectorised`."""
    reason = stack_blocker(base)
    if reason is not None:
        raise ValueError(f"finetune_vectorised cannot stack this model: {reason}. Use finetune_loop.")
    size = group_size or len(jobs)
    results: list[JobResult] = []
    for start in range(0, len(jobs), size):
        results += _finetune_group(base, jobs[start : start + size], settings)
        if on_job:
            for j in range(start, min(start + size, len(jobs))):
                on_job(j)
    return results


def _finetune_group(base: torch.nn.Module, jobs: list[tuple[JobData, int]], settings: FineTuneSettings) -> list[JobResult]:
    m = len(jobs)
    base = copy.deepcopy(base).cpu()
    stacked = StackedModels(base, settings.loss)
    streams = RngStreams.seeded([seed for _, seed in jobs])  # each job's dropout masks, as seed_everything(seed)
    models = [copy.deepcopy(base) for _ in range(m)]
    opts = [torch.optim.Adam(mod.parameters(), lr=settings.lr, weight_decay=settings.weight_decay) for mod in models]
    gens = [torch.Generator().manual_seed(seed) for _, seed in jobs]
    anchor = [p.detach().clone() for p in base.parameters()] if settings.l2sp else None

    def devel_score(j: int) -> float:
        mod, d = models[j], jobs[j][0].devel
        mod.eval()
        with torch.no_grad():
            out = mod(d["x"], d["mask"], d["feature_mask"])
        mod.train()
        return pooled_score(out, d["y"], d["y_mask"])

    best = [devel_score(j) for j in range(m)]
    best = [b if np.isfinite(b) else -math.inf for b in best]
    history = [[b] for b in best]
    best_epoch = [0] * m
    best_state = [copy.deepcopy(mod.state_dict()) for mod in models]
    for mod in models:
        mod.train()
    live = list(range(m))
    bs = settings.batch_size
    for epoch in range(1, settings.epochs + 1):
        n = {j: jobs[j][0].train["mask"].shape[0] for j in live}
        perms = {j: torch.randperm(n[j], generator=gens[j]) for j in live}
        for start in range(0, max(n.values()), bs):
            on = [j for j in live if start < n[j]]
            batches = [_take(jobs[j][0].train, perms[j][start : start + bs]) for j in on]
            for j in on:
                models[j].zero_grad(set_to_none=True)
            stacked.backward([models[j] for j in on], batches, streams=streams, members=on)
            for j in on:
                params = list(models[j].parameters())
                if anchor is not None:  # gradient of α·Σ‖θ−θ⁰‖²
                    for p, a in zip(params, anchor):
                        p.grad.add_(p.detach() - a, alpha=2.0 * settings.l2sp)
                if settings.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                opts[j].step()
        for j in list(live):
            score = devel_score(j)
            history[j].append(score)
            if np.isfinite(score) and score > best[j]:
                best[j], best_epoch[j], best_state[j] = score, epoch, copy.deepcopy(models[j].state_dict())
            if epoch - best_epoch[j] >= settings.patience:
                live.remove(j)
        if not live:
            break
    return [JobResult(best_state[j], best_epoch[j], best[j], history[j]) for j in range(m)]
