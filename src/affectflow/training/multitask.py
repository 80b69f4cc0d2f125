"""Uncertainty-weighted multitask loss with learnt task weights.

For tasks ``τ`` with losses ``L_τ`` (cross-entropy, ``1 - CCC`` or MSE over valid steps) and learnt uncertainties
``δ_τ > 0``, the combined loss is

.. math::

    \\mathcal{L} = \\sum_\\tau c_\\tau\\, \\delta_\\tau^{-2}\\, \\mathcal{L}_\\tau + r(\\delta_\\tau)

with three forms:

``kendall`` (Kendall, Gal and Cipolla 2018)
    ``c = 1`` for classification, ``1/2`` for regression; ``r(δ) = log δ``.
``sent2021`` (MuSe 2021 Sent paper, Jiang et al., Eq. 13)
    ``c = 1/2`` for every task; ``r(δ) = log(1 + δ)``. The paper's ``η‖θ‖`` L2 term is the optimiser's
    ``weight_decay`` here.
``mer2023`` (MER 2023 paper, Wang et al., Eq. 9)
    ``c = 1`` for classification (``L_e``), ``1/2`` for regression (``L_v``); ``r(δ) = log(1 + δ)``.

The learnt parameters are the log-variances ``s_τ = log δ_τ²`` (``δ_τ = exp(s_τ / 2)`` stays positive, so
``log(1 + δ)`` is always defined); they start at 0, i.e. ``δ_τ = 1`` as in the Sent paper. :meth:`MultitaskLoss.weights`
gives the effective weights ``c_τ / δ_τ²`` for logging.

Usage with :func:`affectflow.training.trainer.fit_seed` (the loss parameters must be optimised with the model)::

    loss = MultitaskLoss({"emotion": "ce", "valence": "mse"}, form="mer2023", output_sizes=model.output_sizes)
    wrapped = ModelWithLoss(model, loss)
    fit_seed(wrapped, train_ds, score_devel, cfg, seed, device=dev, compute_loss=ModelWithLoss.compute_loss)
    loss.weights()    # {"emotion": 0.93, "valence": 0.61}
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.training.losses import ccc_loss, mse_loss

log = logging.getLogger(__name__)

FORMS = ("kendall", "sent2021", "mer2023")
TASK_LOSSES = ("ce", "ccc", "mse")


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over valid steps.

    Parameters
    ----------
    logits:
        ``(B, T, C)`` class logits.
    target:
        ``(B, T)`` class indices (any numeric dtype; values at invalid steps are ignored).
    valid:
        ``(B, T)`` bool.

    Returns
    -------
    torch.Tensor
        Scalar; 0 (with a gradient path) when no step is valid.
    """
    if not valid.any():
        return logits.sum() * 0.0
    c = logits.shape[-1]
    idx = torch.where(valid, target, torch.zeros_like(target)).long()
    if (idx < 0).any() or (idx >= c).any():
        raise ValueError(
            f"class labels must be in [0, {c - 1}], got values from {int(idx.min())} to {int(idx.max())}."
        )
    ce = nn.functional.cross_entropy(logits.reshape(-1, c), idx.reshape(-1), reduction="none")
    w = valid.reshape(-1).to(logits.dtype)
    return (ce * w).sum() / w.sum()


class MultitaskLoss(nn.Module):
    """Uncertainty-weighted sum of per-target losses (formula and forms in the module docstring).

    Parameters
    ----------
    tasks:
        Target name → loss: ``ce`` (cross-entropy on class logits), ``ccc`` (``1 - CCC``, per-sequence CCC
        averaged as :func:`~affectflow.training.losses.ccc_loss`) or ``mse``.
    form:
        ``kendall``, ``sent2021`` or ``mer2023``.
    output_sizes:
        The model's output layout, target → number of columns in target order (``model.output_sizes``); default
        one column per task, in the order of ``tasks``.
    targets:
        Order of the label columns of ``y`` (default: the keys of ``output_sizes``, else of ``tasks``).
    """

    def __init__(
        self,
        tasks: dict[str, str],
        *,
        form: str = "kendall",
        output_sizes: dict[str, int] | None = None,
        targets: list[str] | None = None,
    ) -> None:
        super().__init__()
        if not tasks:
            raise ConfigError("MultitaskLoss needs at least one task.")
        if form not in FORMS:
            raise ConfigError(f"Unknown multitask loss form {form!r}; valid forms: {list(FORMS)}.")
        for t, kind in tasks.items():
            if kind not in TASK_LOSSES:
                raise ConfigError(
                    f"Task {t!r}: unknown loss {kind!r}; valid task losses: {list(TASK_LOSSES)}."
                )
        self.tasks = dict(tasks)
        self.form = form
        self.output_sizes = dict(output_sizes) if output_sizes is not None else {t: 1 for t in tasks}
        self.targets = list(targets) if targets is not None else list(self.output_sizes)
        for t in self.tasks:
            if t not in self.output_sizes or t not in self.targets:
                raise ConfigError(
                    f"Task {t!r} is not a model output/target; outputs: {list(self.output_sizes)}, "
                    f"targets: {self.targets}."
                )
            if self.tasks[t] != "ce" and self.output_sizes[t] != 1:
                raise ConfigError(
                    f"Task {t!r} uses {self.tasks[t]!r} but the model gives it "
                    f"{self.output_sizes[t]} columns; regression tasks need 1."
                )
        self.names = list(self.tasks)
        self.log_var = nn.Parameter(torch.zeros(len(self.names)))
        self.register_buffer(
            "factor",
            torch.tensor([0.5 if (form == "sent2021" or self.tasks[t] != "ce") else 1.0 for t in self.names]),
            persistent=False,
        )
        self.last_losses: dict[str, float] = {}

    # ------------------------------------------------------------------ pieces
    def task_losses(
        self, out: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Unweighted loss per task.

        Parameters
        ----------
        out:
            ``(B, T, Σ output_sizes)`` model outputs.
        y:
            ``(B, T, len(targets))`` labels (class indices for ``ce`` tasks).
        y_mask:
            ``(B, T, len(targets))`` bool, True where the label exists.
        """
        parts = dict(zip(self.output_sizes, torch.split(out, list(self.output_sizes.values()), dim=-1)))
        losses = {}
        for t in self.names:
            k = self.targets.index(t)
            kind = self.tasks[t]
            if kind == "ce":
                losses[t] = masked_cross_entropy(parts[t], y[..., k], y_mask[..., k])
            elif kind == "ccc":
                losses[t] = ccc_loss(parts[t], y[..., k : k + 1], y_mask[..., k : k + 1])
            else:
                losses[t] = mse_loss(parts[t], y[..., k : k + 1], y_mask[..., k : k + 1])
        return losses

    def _regulariser(self) -> torch.Tensor:
        if self.form == "kendall":
            return 0.5 * self.log_var  # log δ
        return torch.log1p(torch.exp(0.5 * self.log_var))  # log(1 + δ)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """``Σ_τ c_τ exp(-s_τ) L_τ + r(δ_τ)`` for per-task losses in the order of ``tasks``."""
        stacked = torch.stack([losses[t] for t in self.names])
        return (self.factor * torch.exp(-self.log_var) * stacked + self._regulariser()).sum()

    def forward(self, out: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        """The combined scalar loss (shapes as :meth:`task_losses`)."""
        losses = self.task_losses(out, y, y_mask)
        self.last_losses = {t: float(v.detach()) for t, v in losses.items()}
        return self.combine(losses)

    # ------------------------------------------------------------------ logging
    def deltas(self) -> dict[str, float]:
        """Current ``δ_τ = exp(s_τ / 2)`` per task."""
        return dict(zip(self.names, torch.exp(0.5 * self.log_var.detach()).cpu().tolist()))

    def weights(self) -> dict[str, float]:
        """Current effective weights ``c_τ / δ_τ²`` per task (what multiplies each task loss)."""
        w = self.factor * torch.exp(-self.log_var.detach())
        return dict(zip(self.names, w.cpu().tolist()))

    def log_weights(self, logger: logging.Logger | None = None, prefix: str = "") -> dict[str, float]:
        """Log (INFO) and return the current effective weights."""
        w = self.weights()
        (logger or log).info(
            "%smultitask weights (%s): %s; last task losses: %s",
            prefix,
            self.form,
            {k: round(v, 4) for k, v in w.items()},
            {k: round(v, 4) for k, v in self.last_losses.items()},
        )
        return w


class ModelWithLoss(nn.Module):
    """A model and a loss module trained together (so the optimiser also updates the loss's parameters).

    ``forward`` is the model's; :meth:`compute_loss` has the ``(model, batch) -> loss`` signature of
    :func:`~affectflow.training.trainer.fit_seed`'s ``compute_loss``. Save ``wrapped.model`` as the checkpoint.
    """

    def __init__(self, model: nn.Module, loss: MultitaskLoss) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.targets = getattr(model, "targets", loss.targets)

    def forward(self, x, mask, feature_mask=None):
        return self.model(x, mask, feature_mask)

    @staticmethod
    def compute_loss(wrapped: ModelWithLoss, batch: dict) -> torch.Tensor:
        """Loss of a batch (as moved to the device by the trainer)."""
        out = wrapped.model(batch["x"], batch["mask"], batch["feature_mask"])
        return wrapped.loss(out, batch["y"], batch["y_mask"])
