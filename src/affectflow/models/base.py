"""What every model of the registry is.

A model is an ``nn.Module`` built from the data's feature widths and the targets plus keyword hyperparameters::

    model = MODELS.build("gru", {"d_model": 256}, input_dims={"egemaps": 88, "face": 20}, targets=["arousal"])
    out = model(x, mask, feature_mask)   # x: {set: (B, T, D_set)}, mask: (B, T) bool, feature_mask: {set: (B, T)}
    # out: (B, T, K) float, K = len(targets); values at padded steps are unspecified

Padded steps (``mask`` False) must not change the outputs at real steps. ``config()`` returns what is needed to
rebuild the model (stored in checkpoints next to the state dict).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.models.backbones import no_pretrained_weights, resolve_backbone_params
from affectflow.registry import MODEL_PARAM_RULES, Registry

MODELS: Registry[nn.Module] = Registry("model", data_args=("input_dims", "targets"), param_rules=MODEL_PARAM_RULES)
"""All registered models."""


class SequenceModel(nn.Module):
    """Base class: stores the data-derived arguments and the hyperparameters for :meth:`config`."""

    name: str = ""

    def __init__(self, input_dims: dict[str, int], targets: list[str], **hparams: Any) -> None:
        super().__init__()
        if not input_dims:
            raise ConfigError("A model needs at least one feature set (`data.features` is empty).")
        self.input_dims = dict(input_dims)
        self.targets = list(targets)
        self.hparams = dict(hparams)

    def config(self) -> dict[str, Any]:
        """``{"type", "params", "input_dims", "targets"}``: enough to rebuild the model with :func:`build_model`."""
        return {"type": self.name, "params": resolve_backbone_params(self.hparams), "input_dims": self.input_dims,
                "targets": self.targets}

    def forward(self, x: dict[str, torch.Tensor], mask: torch.Tensor, feature_mask: dict[str, torch.Tensor] | None = None):
        raise NotImplementedError


def build_model(config: dict[str, Any]) -> nn.Module:
    """Rebuild a model from :meth:`SequenceModel.config` output (backbone weights files are not read: the
    checkpoint's state dict follows)."""
    with no_pretrained_weights():
        return MODELS.build(config["type"], config["params"], input_dims=config["input_dims"],
                            targets=config["targets"])
