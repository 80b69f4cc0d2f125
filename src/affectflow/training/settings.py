"""The training loop's own settings: the ``training:`` section of an experiment config.

Plain dataclasses, defined here (next to the loop that reads them, :func:`affectflow.training.trainer.fit_seed`)
rather than in :mod:`affectflow.config`, which includes them in :class:`~affectflow.config.ExperimentConfig` and
re-exports them (``from affectflow.config import TrainingConfig`` keeps working): the config sits above the layers
whose names it checks, the training loop below it. Defaults are those of ``configs/default.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from affectflow.errors import ConfigError

SCHEDULES = ("progressive_unfreezing",)


@dataclass(kw_only=True)
class UnfreezingConfig:
    """Progressive unfreezing (:mod:`affectflow.training.schedules`); defaults are the ABAW5 paper's."""

    groups: list[str] = field(default_factory=lambda: ["backbone.stage4", "backbone.stage3", "backbone.stage2"])
    lr: float = 1e-5
    min_lr: float = 1e-8
    warmup_epochs: int = 5
    patience: int = 5
    factor: float = 0.1
    reload_best: bool = True

    def validate(self) -> None:
        """Raise :class:`ConfigError` on out-of-range values."""
        if not self.lr > 0 or not 0 <= self.min_lr < self.lr:
            raise ConfigError(f"`training.unfreezing`: need lr > 0 and 0 <= min_lr < lr, got lr={self.lr}, "
                              f"min_lr={self.min_lr}.")
        if self.warmup_epochs < 0 or self.patience < 1 or not 0 < self.factor < 1:
            raise ConfigError("`training.unfreezing`: need warmup_epochs >= 0, patience >= 1 and factor in (0, 1); got "
                              f"{self.warmup_epochs}, {self.patience}, {self.factor}.")
        if len(set(self.groups)) != len(self.groups):
            raise ConfigError(f"`training.unfreezing.groups` lists a group twice: {self.groups}.")


@dataclass(kw_only=True)
class TrainingConfig:
    """Optimisation, early stopping and seeds."""

    loss: str = "ccc"
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 60
    patience: int = 10
    lr_patience: int = 4
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    grad_clip: float | None = 1.0
    seeds: list[int] = field(default_factory=lambda: [101, 102, 103])
    device: str = "auto"
    num_workers: int = 0
    num_threads: int | None = None
    multitask: str | None = None
    schedule: str | None = None
    unfreezing: UnfreezingConfig = field(default_factory=UnfreezingConfig)
    amp: bool | None = None
    augment: dict[str, dict] = field(default_factory=dict)
    stack_seeds: Any = "auto"  # auto | true | false: all seeds as one stacked model (training/stacked.py)
    seed_workers: Any = 1  # 1 | n | auto: seeds trained side by side in forked 1-thread processes (CPU only)
