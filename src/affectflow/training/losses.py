"""Training losses over valid steps.

``ccc_loss``: for every sequence ``b`` and target ``k`` with at least two valid steps, the CCC (population moments,
as :func:`affectflow.metrics.ccc`) over the valid steps; the loss is ``1 - mean`` over those (b, k) pairs, the
MuSe baseline convention (per-sequence CCC averaged over the batch). ``mse_loss``: mean squared error over all
valid (step, target) entries.
"""

from __future__ import annotations

import torch

from affectflow.errors import ConfigError


def masked_ccc(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """CCC along ``dim`` over entries where ``valid``; returns ``(ccc, ok)`` with ``ok`` = at least 2 valid entries."""
    w = valid.to(pred.dtype)
    n = w.sum(dim, keepdim=True)
    safe_n = n.clamp(min=1)
    mp = (pred * w).sum(dim, keepdim=True) / safe_n
    mt = (target * w).sum(dim, keepdim=True) / safe_n
    dp, dt = (pred - mp) * w, (target - mt) * w
    vp = (dp * dp).sum(dim, keepdim=True) / safe_n
    vt = (dt * dt).sum(dim, keepdim=True) / safe_n
    cov = (dp * dt).sum(dim, keepdim=True) / safe_n
    ccc = 2 * cov / (vp + vt + (mp - mt) ** 2 + 1e-8)
    return ccc.squeeze(dim), (n.squeeze(dim) >= 2)


def ccc_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``1 - mean CCC`` over sequences and targets; tensors ``(B, T, K)``, ``valid`` bool ``(B, T, K)``.

    Sequences with fewer than 2 valid steps have no CCC of their own. When **no** sequence of the batch has 2
    (segment and clip samples carry one label each, at their last step), the CCC is computed over the valid
    entries of the whole batch pooled, per target (the batch-level CCC loss of clip-level regression), so such
    targets are still trained instead of getting a zero loss.
    """
    c, ok = masked_ccc(pred, target, valid, dim=1)
    if not ok.any():
        k = pred.shape[-1]
        c, ok = masked_ccc(pred.reshape(1, -1, k), target.reshape(1, -1, k), valid.reshape(1, -1, k), dim=1)
        if not ok.any():
            return pred.sum() * 0.0
    return 1.0 - c[ok].mean()


def mse_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error over valid entries; tensors ``(B, T, K)``."""
    w = valid.to(pred.dtype)
    return ((pred - target) ** 2 * w).sum() / w.sum().clamp(min=1)


LOSSES = {"ccc": ccc_loss, "mse": mse_loss}


def get_loss(name: str):
    """The loss function called ``name``."""
    if name not in LOSSES:
        raise ConfigError(f"Unknown loss {name!r}; valid losses: {sorted(LOSSES)}.")
    return LOSSES[name]
