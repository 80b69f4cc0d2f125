"""The MuSe-Sent multitask framework (Jiang et al., MuSe 2021, section III-D-2, Fig. 2, Eq. 9-13).

The two best (feature set, model) combinations of a dimension are joined: subtask ``τ`` (``τ = 0``: the main task,
``τ ≥ 1``: related tasks) runs its own early-fusion model (any ``composite``-based architecture with early fusion:
``way1`` … ``way6``, ``lstm``, ``sa_lstm``, ``gcnn_lstm``, ``transformer``, ``tcn``, ``mbconv``, ``composite``) over its
own feature sets up to its temporal encoder, ``h_τ = encoder_τ(fusion_τ(x_τ)) ∈ R^{T×H_τ}``. The subtasks'
hidden states are concatenated in the **shared hidden layers**

    z = ReLU([h_0; h_1; …] W_s + b_s) ∈ R^{T×S}        (S = ``shared``; ``shared_layers`` such layers)

and every subtask has its own classifier on ``z`` (Eq. 10-11: ``y'_τ = softmax(W_P z + b_P)``; any head of
:data:`~affectflow.models.heads.HEADS`, filled in from the data like every model's ``head``). All subtasks predict
the same targets; the loss sums their losses with learnt uncertainty weights (``training.multitask: sent2021``,
Eq. 13: ``Σ_τ L_τ / (2 δ_τ²) + log(1 + δ_τ)``; the ``η‖θ‖`` term is ``training.weight_decay``), see
:class:`affectflow.tasks.TaskLoss`. :meth:`SentMultitaskModel.forward` returns the **main** subtask's outputs (what
is scored, predicted and exported); :meth:`SentMultitaskModel.forward_subtasks` returns every subtask's outputs (what
is trained).

::

    data: {task: segment, features: [vggish, fau, bert, vggface], targets: [arousal]}
    model:
      type: sent_multitask
      branches:
        - {features: [vggish], model: {type: way5}}                          # main task
        - {features: [vggish, fau, bert, vggface], model: {type: way4}}      # related task
      shared: 64
    training: {multitask: sent2021, weight_decay: 1.0e-4}
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.models.base import MODELS, SequenceModel
from affectflow.models.composite import CompositeModel, block_choice, build_block, plain_value
from affectflow.models.heads import HEADS


@MODELS.register("sent_multitask")
class SentMultitaskModel(SequenceModel):
    """Subtask branches (existing early-fusion models up to their encoders) + shared hidden layers + one classifier
    per subtask (module docstring).

    Parameters
    ----------
    input_dims, targets:
        From the data (``data.features`` must hold every branch's feature sets).
    branches:
        List of ``{features: [sets], model: {type, ...hyperparameters}}``; the first is the main task. Default: one
        ``lstm`` branch per feature set.
    shared:
        Width ``S`` of the shared hidden layers.
    shared_layers:
        Number of shared ``Linear + ReLU`` layers (≥ 1).
    dropout:
        Dropout on the shared layers' output.
    head:
        The classifier of every subtask (``{type, ...}``; filled in from the data for classification targets).
    """

    name = "sent_multitask"

    def __init__(
        self,
        input_dims: dict[str, int],
        targets: list[str],
        *,
        branches: list[dict[str, Any]] | None = None,
        shared: int = 64,
        shared_layers: int = 1,
        dropout: float = 0.0,
        head: dict[str, Any] | None = None,
    ) -> None:
        branches = branches or [{"features": [n], "model": {"type": "lstm"}} for n in input_dims]
        super().__init__(input_dims, targets, **plain_value({"branches": branches, "shared": shared,
                                                        "shared_layers": shared_layers, "dropout": dropout,
                                                        "head": head}))
        if not isinstance(branches, list) or len(branches) < 1:
            raise ConfigError(f"sent_multitask: `branches` must be a non-empty list, got {branches!r}.")
        for name, v in (("shared", shared), ("shared_layers", shared_layers)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"sent_multitask: `{name}` must be an integer >= 1, got {v!r}.")
        if not 0 <= dropout < 1:
            raise ConfigError(f"sent_multitask: `dropout` must be in [0, 1), got {dropout!r}.")
        self.branch_sets: list[list[str]] = []
        mods = []
        for k, b in enumerate(branches):
            where = f"model.branches[{k}]"
            if not isinstance(b, dict) or set(b) - {"features", "model"} or "features" not in b:
                raise ConfigError(f"`{where}` must be {{features: [sets], model: {{type, ...}}}}, got {b!r}.")
            sets = [b["features"]] if isinstance(b["features"], str) else list(b["features"])
            bad = [s for s in sets if s not in input_dims]
            if not sets or bad:
                raise ConfigError(f"`{where}.features` names {bad or sets} not in `data.features` {list(input_dims)}; "
                                  "list every branch's feature sets in data.features.")
            kind, params = block_choice(f"{where}.model", b.get("model") or {"type": "lstm"}, MODELS, {"type": "lstm"})
            sub = build_block(f"{where}.model", MODELS, kind, params, input_dims={s: input_dims[s] for s in sets},
                         targets=self.targets)
            if not isinstance(sub, CompositeModel) or sub.stage != "early":
                raise ConfigError(f"`{where}.model`: {kind!r} is not an early-fusion composite architecture; use one "
                                  "of way1..way6, lstm, sa_lstm, gcnn_lstm, transformer, tcn, mbconv or composite "
                                  "with an early fusion.")
            del sub.head  # the branch keeps its fusion and encoder; the classifiers sit on the shared layers
            self.branch_sets.append(sets)
            mods.append(sub)
        self.branches = nn.ModuleList(mods)
        layers: list[nn.Module] = []
        width = sum(m.encoder.output_dim for m in mods)
        for _ in range(shared_layers):
            layers += [nn.Linear(width, shared), nn.ReLU()]
            width = shared
        self.shared = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        h_kind, h_params = block_choice("model.head", head, HEADS, {"type": "regression"})
        self.heads = nn.ModuleList([build_block(f"model.head (subtask {k})", HEADS, h_kind, h_params, input_dim=shared,
                                           targets=self.targets) for k in range(len(mods))])
        self.output_sizes = dict(self.heads[0].output_sizes)

    @property
    def causal(self) -> bool:
        """True when no output depends on later steps (every branch's fusion and encoder, and the heads)."""
        return all(m.fusion.causal and m.encoder.causal for m in self.branches) and all(h.causal for h in self.heads)

    def forward_subtasks(self, x: dict[str, torch.Tensor], mask: torch.Tensor,
                         feature_mask: dict[str, torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Every subtask's outputs, main first: a list of ``(B, T, K_out)``."""
        mask = mask.bool()
        fm = feature_mask or {}
        hs = []
        for sets, m in zip(self.branch_sets, self.branches):
            xg, fmg = m._modalities({s: x[s] for s in sets}, mask, {s: fm[s] for s in sets if s in fm})
            hs.append(m.encoder(m.fusion(xg, mask, fmg), mask))
        z = self.drop(self.shared(torch.cat(hs, dim=-1)))
        return [head(z, mask) for head in self.heads]

    def forward(self, x: dict[str, torch.Tensor], mask: torch.Tensor,
                feature_mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The main subtask's outputs ``(B, T, K_out)``."""
        return self.forward_subtasks(x, mask, feature_mask)[0]
