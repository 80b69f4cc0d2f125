"""The MuSe 2023 personalisation base model (Li et al., MuSe '23, section 3.2.1, Eq. 1-2).

Early fusion then a GRU::

    F = Concat(f_1, ..., f_M) W + b            (B, T, N) -> (B, T, d_model)        Eq. 1
    H = GRU(F)                                 (B, T, d_model · (2 if bidirectional else 1))
    M_k = fc_k(ReLU(fc(H)))                    one output layer per target k (optional tanh)   Eq. 2

With ``head`` set (a :data:`~affectflow.models.heads.HEADS` config such as ``{type: classification, n_classes: 5}``
or ``{type: jdev, n_classes: 6}``), ``H`` goes to that head instead of Eq. 2, so the same model serves
classification targets (segment task), joint emotion + valence (clip task) and pooled outputs. ``head: null`` (the
default) keeps Eq. 2 exactly, with the same parameter names as before (older checkpoints still load). A head
config without ``hidden``/``dropout`` gets ``d_fc`` and ``dropout`` (a ``regression`` head then equals Eq. 2 up to
parameter names).

``N`` is the sum of the feature widths, derived from the data. With ``mask_inputs`` each feature set's step mask
(1 where the set had a value, e.g. a face was found) is appended to the concatenation, so the model can tell a
missing value (0 after normalisation) from a real mean value. Variable lengths are packed, so padded steps change
nothing, also in the backward direction of a bidirectional GRU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.models.base import MODELS, SequenceModel
from affectflow.models.heads import HEADS
from affectflow.models.rnn import batch_first_rnn, run_rnn


def _build_head(head: Any, input_dim: int, targets: list[str], *, d_fc: int, dropout: float,
                tanh_output: bool) -> nn.Module:
    """Build ``model.head`` of the GRU (defaults from the GRU's own ``d_fc``, ``dropout``, ``tanh_output``)."""
    if not isinstance(head, dict) or "type" not in head:
        raise ConfigError(
            f"gru: `head` must be null or a mapping with a `type` (one of {HEADS.names()}), got {head!r}."
        )
    kind = head["type"]
    params = {k: v for k, v in head.items() if k != "type"}
    accepted = set(HEADS.param_names(kind))
    defaults = {"hidden": d_fc, "dropout": dropout, "tanh": tanh_output}
    for k, v in defaults.items():
        if k in accepted and k not in params:
            params[k] = v
    return HEADS.build(kind, params, input_dim=input_dim, targets=targets)


@MODELS.register("gru")
class EarlyFusionGRU(SequenceModel):
    """Early-fusion GRU regressor.

    Parameters
    ----------
    input_dims:
        Feature set → width (from the data).
    targets:
        Target names; one output per target.
    d_model:
        Width of the fusion layer and GRU hidden state (the paper uses 128 or 256).
    num_layers:
        GRU layers (the paper finds 1 best).
    bidirectional:
        Bidirectional GRU (not causal).
    d_fc:
        Width of the hidden fully connected layer.
    dropout:
        Dropout after the fusion layer and before the output layers.
    rnn_dropout:
        Dropout between GRU layers (only with ``num_layers > 1``).
    tanh_output:
        Squash outputs into (-1, 1).
    mask_inputs:
        Append each feature set's step mask to the fused input.
    head:
        ``None`` (Eq. 2) or an output head config ``{type, ...}`` from :data:`~affectflow.models.heads.HEADS`
        (``regression``, ``classification``, ``jdev``); the task code fills in class counts from the data.
    """

    name = "gru"

    def __init__(
        self,
        input_dims: dict[str, int],
        targets: list[str],
        *,
        d_model: int = 256,
        num_layers: int = 1,
        bidirectional: bool = False,
        d_fc: int = 64,
        dropout: float = 0.1,
        rnn_dropout: float = 0.0,
        tanh_output: bool = False,
        mask_inputs: bool = True,
        head: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            input_dims,
            targets,
            d_model=d_model,
            num_layers=num_layers,
            bidirectional=bidirectional,
            d_fc=d_fc,
            dropout=dropout,
            rnn_dropout=rnn_dropout,
            tanh_output=tanh_output,
            mask_inputs=mask_inputs,
            head=head,
        )
        self.sets = list(input_dims)
        self.mask_inputs = mask_inputs
        n_in = sum(input_dims.values()) + (len(self.sets) if mask_inputs else 0)
        self.fusion = nn.Linear(n_in, d_model)
        self.drop = nn.Dropout(dropout)
        self.gru = batch_first_rnn(nn.GRU, d_model, d_model, num_layers=num_layers, bidirectional=bidirectional,
                                   dropout=rnn_dropout)
        d_h = d_model * (2 if bidirectional else 1)
        self.tanh_output = tanh_output
        self.head = None
        if head is None:
            self.fc = nn.Linear(d_h, d_fc)
            self.heads = nn.ModuleList([nn.Linear(d_fc, 1) for _ in self.targets])
            self.output_sizes = {t: 1 for t in self.targets}
        else:
            self.head = _build_head(head, d_h, self.targets, d_fc=d_fc, dropout=dropout, tanh_output=tanh_output)
            self.output_sizes = dict(self.head.output_sizes)

    @property
    def causal(self) -> bool:
        """True when no output depends on later steps."""
        return not self.gru.bidirectional and (self.head is None or self.head.causal)

    def fuse(self, x: dict[str, torch.Tensor], feature_mask: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """Concatenate the feature sets (and masks) in a fixed order: ``(B, T, N)``."""
        parts = [x[n] for n in self.sets]
        if self.mask_inputs:
            b, t = parts[0].shape[:2]
            for n in self.sets:
                m = feature_mask[n] if feature_mask is not None else torch.ones(b, t, dtype=torch.bool, device=x[n].device)
                parts.append(m.unsqueeze(-1).to(parts[0].dtype))
        return torch.cat(parts, dim=-1)

    def forward(self, x, mask, feature_mask=None):
        h = self.drop(self.fusion(self.fuse(x, feature_mask)))
        out = run_rnn(self.gru, h, mask)
        if self.head is not None:
            return self.head(out, mask)
        z = self.drop(torch.relu(self.fc(out)))
        y = torch.cat([head(z) for head in self.heads], dim=-1)
        return torch.tanh(y) if self.tanh_output else y
