"""Staged training schedules: progressive unfreezing of parameter groups (ABAW5, Zhang et al. 2023, 3.4).

``training.schedule: progressive_unfreezing`` with ``training.unfreezing`` (defaults = the paper's numbers)::

    unfreezing:
      groups: [backbone.stage4, backbone.stage3, backbone.stage2]   # unfrozen in this order
      lr: 1.0e-5          # the rate each stage is warmed up to (and reset to at each unfreezing)
      min_lr: 1.0e-8      # ReduceLROnPlateau floor
      warmup_epochs: 5    # epochs of each stage with a linear warm-up within the epoch
      patience: 5         # ReduceLROnPlateau patience, and the epochs without a better devel CCC at min_lr
      factor: 0.1         # ReduceLROnPlateau factor
      reload_best: true   # load the best state so far at the end of every epoch

The procedure, for each stage ``s = 1 .. G`` (stage 1 starts at epoch 1 with ``groups[0]`` unfrozen):

1. at the stage's first epoch, ``groups[s-1]`` is unfrozen (``requires_grad``) and the learning rate is reset;
2. in each of the stage's first ``warmup_epochs`` epochs the rate rises linearly within the epoch,
   :math:`\\eta_b = \\eta \\cdot (b + 1) / n_b` for batch ``b`` of ``n_b``, ending at ``lr``;
3. afterwards a fresh ``ReduceLROnPlateau`` (mode max on the devel score, ``patience``, ``factor``,
   ``min_lr``) sets the rate after every epoch;
4. when the rate is at ``min_lr`` and ``patience`` consecutive epochs at that rate brought no better devel score
   (than the best of the whole run), the next group is unfrozen (step 1); after the last group, training stops.

Every parameter of a declared group (:func:`affectflow.models.backbones.model_param_groups`) is frozen at the start,
including groups not listed (they stay frozen); parameters outside all groups (temporal model, fusion, head) always
train. ``groups: []`` trains with the whole backbone frozen (the yardstick for fine-tuning). With ``reload_best``
the model is set back to the best state after every epoch that did not improve (the optimiser state is kept), as
the paper does to keep the training CCC from running away. ``training.epochs`` still caps the run;
``training.patience`` (early stopping) does not apply. :meth:`ProgressiveUnfreezing.state_dict` holds everything
(stage, counters, the plateau scheduler), so a resumed run continues the schedule exactly.

Each epoch's row in ``history/seed-N.csv`` gets ``stage``, ``unfrozen`` (the groups unfrozen at that epoch's start,
``;``-separated), ``phase`` (``warmup`` / ``plateau``), ``lr_start`` / ``lr_end`` (rate of the first and last
batch) and ``reloaded_best``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from affectflow.errors import ConfigError
from affectflow.models.backbones import model_param_groups
from affectflow.training.settings import SCHEDULES, UnfreezingConfig  # noqa: F401 - re-exported


class ProgressiveUnfreezing:
    """The schedule's state machine; :func:`affectflow.training.trainer.fit_seed` calls its hooks."""

    def __init__(self, cfg: UnfreezingConfig, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        cfg.validate()
        self.cfg = cfg
        self.opt = opt
        self.groups = model_param_groups(model)
        unknown = [g for g in cfg.groups if g not in self.groups]
        if unknown:
            raise ConfigError(
                f"`training.unfreezing.groups` names {unknown}, which the model does not declare; its parameter "
                f"groups: {sorted(self.groups) or 'none (add a backbone encoder)'}."
            )
        self.stage = 0  # number of groups unfrozen so far
        self.stage_epoch = 0  # epochs completed in the current stage
        self.bad_at_min = 0
        self.stopped = False
        self.just_unfrozen = ""
        self.plateau = self._new_plateau()
        for params in self.groups.values():
            for p in params:
                p.requires_grad_(False)
        self._unfreeze_next()

    def _new_plateau(self):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, mode="max", factor=self.cfg.factor,
                                                          patience=self.cfg.patience, min_lr=self.cfg.min_lr)

    def _set_lr(self, lr: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = lr

    def _unfreeze_next(self) -> str:
        name = ""
        if self.stage < len(self.cfg.groups):
            name = self.cfg.groups[self.stage]
            for p in self.groups[name]:
                p.requires_grad_(True)
        self.stage += 1
        self.just_unfrozen = name or "(none)"
        self.stage_epoch = 0
        self.bad_at_min = 0
        self.plateau = self._new_plateau()
        self._set_lr(self.cfg.lr)
        return name

    @property
    def warming_up(self) -> bool:
        return self.stage_epoch < self.cfg.warmup_epochs

    def start_epoch(self) -> dict[str, Any]:
        """Row fields known at the start of an epoch (``unfrozen``: the group unfrozen for this epoch, if any)."""
        row = {"stage": self.stage, "phase": "warmup" if self.warming_up else "plateau", "unfrozen": self.just_unfrozen}
        self.just_unfrozen = ""
        return row

    def batch_lr(self, b: int, n_batches: int) -> None:
        """Set the rate of batch ``b`` of ``n_batches`` (the warm-up ramp; unchanged after warm-up)."""
        if self.warming_up:
            self._set_lr(self.cfg.lr * (b + 1) / max(n_batches, 1))

    def end_epoch(self, score: float, improved: bool, model: torch.nn.Module, best_state: dict) -> dict[str, Any]:
        """After the devel score of an epoch: reload the best state, step the rate, unfreeze or stop.

        Returns the row field ``reloaded_best``.
        """
        reloaded = False
        if self.cfg.reload_best and not improved:
            model.load_state_dict(best_state)
            reloaded = True
        lr_now = self.opt.param_groups[0]["lr"]
        at_min = lr_now <= self.cfg.min_lr * (1 + 1e-6)
        was_warming = self.warming_up
        self.stage_epoch += 1
        if was_warming:
            if not self.warming_up:
                self._set_lr(self.cfg.lr)  # the plateau phase starts from the full rate
        else:
            self.plateau.step(score)
            self.bad_at_min = self.bad_at_min + 1 if (at_min and not improved) else 0
        if not was_warming and self.bad_at_min >= self.cfg.patience:
            if self.stage >= len(self.cfg.groups):
                self.stopped = True
            else:
                self._unfreeze_next()
        return {"reloaded_best": reloaded}

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """Plain values (loadable with ``weights_only=True``)."""
        return {"stage": self.stage, "stage_epoch": self.stage_epoch, "bad_at_min": self.bad_at_min,
                "stopped": self.stopped, "just_unfrozen": self.just_unfrozen, "plateau": self.plateau.state_dict(), "config": asdict(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`: the groups of the stages reached are unfrozen again."""
        self.stage = int(state["stage"])
        self.stage_epoch = int(state["stage_epoch"])
        self.bad_at_min = int(state["bad_at_min"])
        self.stopped = bool(state["stopped"])
        self.just_unfrozen = str(state["just_unfrozen"])
        for name in self.cfg.groups[: self.stage]:
            for p in self.groups[name]:
                p.requires_grad_(True)
        self.plateau = self._new_plateau()
        self.plateau.load_state_dict(state["plateau"])


def make_schedule(name: str | None, cfg: UnfreezingConfig, model, opt) -> ProgressiveUnfreezing | None:
    """The schedule object of ``training.schedule`` (``None``: the plain ReduceLROnPlateau + early stopping)."""
    if name is None:
        return None
    if name not in SCHEDULES:
        raise ConfigError(f"`training.schedule` must be null or one of {list(SCHEDULES)}, got {name!r}.")
    return ProgressiveUnfreezing(cfg, model, opt)
