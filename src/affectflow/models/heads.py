"""Output heads: hidden states ``(B, T, H)`` → outputs ``(B, T, K_out)``.

Every head is registered in :data:`HEADS`, built from the hidden width and the target names, and says how many
output columns each target gets (``output_sizes``; columns are laid out in target order)::

    head = HEADS.build("classification", {"n_classes": 5}, input_dim=128, targets=["arousal", "valence"])
    head.output_sizes            # {"arousal": 5, "valence": 5}  -> K_out = 10 logits per step
    parts = split_outputs(head(h, mask), head.output_sizes)   # {"arousal": (B, T, 5), "valence": (B, T, 5)}

==================  ===============================================================================================
name                outputs per target
==================  ===============================================================================================
``regression``      1 value (optional hidden layer, Eq. 2 of the MuSe 2023 paper; optional tanh)
``classification``  ``n_classes`` logits (softmax / cross-entropy outside the model)
``jdev``            joint decoding of a discrete emotion (``C`` logits) and valence (1 value), MER 2023 Eq. 5-8
==================  ===============================================================================================

``pool``: ``none`` predicts per step; ``mean`` (mean over real steps) and ``last`` (last real step) pool the hidden
states first and repeat the pooled prediction at every step, for segment- or clip-level tasks.
"""

from __future__ import annotations

import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.models.encoders import last_valid, masked_mean
from affectflow.registry import MODEL_PARAM_RULES, Registry

HEADS: Registry[nn.Module] = Registry("head", data_args=("input_dim", "targets"), param_rules=MODEL_PARAM_RULES)
"""All registered heads (data-derived arguments: ``input_dim``, ``targets``)."""

POOLS = ("none", "mean", "last")


def split_outputs(out: torch.Tensor, output_sizes: dict[str, int]) -> dict[str, torch.Tensor]:
    """Split ``(B, T, Σ sizes)`` outputs into ``{target: (B, T, size)}`` in the order of ``output_sizes``."""
    parts = torch.split(out, list(output_sizes.values()), dim=-1)
    return dict(zip(output_sizes, parts))


def pool_hidden(h: torch.Tensor, mask: torch.Tensor, pool: str) -> torch.Tensor:
    """``h`` ``(B, T, H)`` pooled over real steps and repeated at every step (``pool`` in ``none|mean|last``)."""
    if pool == "none":
        return h
    p = masked_mean(h, mask) if pool == "mean" else last_valid(h, mask)
    return p.expand(-1, h.shape[1], -1)


class Head(nn.Module):
    """Base class: ``forward(h (B, T, H), mask (B, T)) -> (B, T, Σ output_sizes)``."""

    name: str = ""
    output_sizes: dict[str, int]

    def _common(self, targets: list[str], pool: str, dropout: float) -> None:
        if not targets:
            raise ConfigError(f"head {self.name!r} needs at least one target.")
        if pool not in POOLS:
            raise ConfigError(f"{self.name}: `pool` must be one of {list(POOLS)}, got {pool!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"{self.name}: `dropout` must be in [0, 1), got {dropout!r}.")
        self.targets = list(targets)
        self.pool = pool
        self.drop = nn.Dropout(dropout)

    @property
    def causal(self) -> bool:
        """Pooling over the whole sequence looks ahead."""
        return self.pool == "none"

    @property
    def output_dim(self) -> int:
        """Total number of output columns."""
        return sum(self.output_sizes.values())


def _trunk(input_dim: int, hidden: int | None) -> tuple[nn.Module, int]:
    if hidden is None:
        return nn.Identity(), input_dim
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ConfigError(f"`hidden` must be a positive integer or null, got {hidden!r}.")
    return nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU()), hidden


@HEADS.register
class RegressionHead(Head):
    """One continuous output per target: ``ŷ = fc(σ(fc(H)))`` (MuSe 2023 Eq. 2) or ``ŷ = H W + b`` (stress Eq. 7).

    Parameters
    ----------
    input_dim:
        Hidden width ``H``.
    targets:
        Target names (one output each).
    hidden:
        Width of a hidden ReLU layer; ``None`` = a single linear layer.
    dropout:
        Dropout before each linear layer.
    tanh:
        Squash outputs into (-1, 1).
    pool:
        ``none``, ``mean`` or ``last`` (see the module docstring).
    """

    name = "regression"

    def __init__(
        self,
        input_dim: int,
        targets: list[str],
        *,
        hidden: int | None = None,
        dropout: float = 0.0,
        tanh: bool = False,
        pool: str = "none",
    ) -> None:
        super().__init__()
        self._common(targets, pool, dropout)
        self.trunk, d = _trunk(input_dim, hidden)
        self.out = nn.Linear(d, len(self.targets))
        self.tanh = tanh
        self.output_sizes = {t: 1 for t in self.targets}

    def forward(self, h, mask):
        h = pool_hidden(h, mask, self.pool)
        y = self.out(self.drop(self.trunk(self.drop(h))))
        return torch.tanh(y) if self.tanh else y


@HEADS.register
class ClassificationHead(Head):
    """Class logits per target, ``y'_τ = W_P h_τ + b_P`` (Sent paper Eq. 10, before the softmax).

    Parameters
    ----------
    input_dim:
        Hidden width ``H``.
    targets:
        Target names.
    n_classes:
        Classes per target: one number for all, or target → number.
    hidden:
        Width of a hidden ReLU layer; ``None`` = a single linear layer.
    dropout:
        Dropout before each linear layer.
    pool:
        ``none``, ``mean`` or ``last``.
    """

    name = "classification"

    def __init__(
        self,
        input_dim: int,
        targets: list[str],
        *,
        n_classes: int | dict[str, int] = 5,
        hidden: int | None = None,
        dropout: float = 0.0,
        pool: str = "none",
    ) -> None:
        super().__init__()
        self._common(targets, pool, dropout)
        if isinstance(n_classes, dict):
            bad = sorted(set(n_classes) ^ set(self.targets))
            if bad:
                raise ConfigError(
                    f"classification: `n_classes` must give a number for each target {self.targets}; "
                    f"mismatched keys {bad}."
                )
            sizes = {t: n_classes[t] for t in self.targets}
        else:
            sizes = {t: n_classes for t in self.targets}
        for t, c in sizes.items():
            if isinstance(c, bool) or not isinstance(c, int) or c < 2:
                raise ConfigError(
                    f"classification: `n_classes` for {t!r} must be an integer >= 2, got {c!r}."
                )
        self.trunk, d = _trunk(input_dim, hidden)
        self.out = nn.Linear(d, sum(sizes.values()))
        self.output_sizes = sizes

    def forward(self, h, mask):
        h = pool_hidden(h, mask, self.pool)
        return self.out(self.drop(self.trunk(self.drop(h))))


@HEADS.register
class JDEVHead(Head):
    """Joint decoding of a discrete emotion and valence (JDEV, MER 2023 paper, Wang et al., Eq. 5-8).

    For the fused hidden state ``ĥ``::

        ẽ = ĥ W_e + b_e,            ê = Softmax(ẽ)                 (Eq. 5)
        ṽ = ĥ W_v + b_v                                            (Eq. 7)
        ṽ^e = Tanh(ê W_ev + b_ev)                                  (Eq. 8)
        v̂ = Concat(ṽ, ṽ^e) W_vv + b_vv                             (Eq. 6)

    The valence branch thus also reads the emotion posterior (Eq. 4: ``P(v) = Σ_k p(v | e = k) p(e = k)``).
    Outputs, in target order: the emotion target gets the ``C`` logits ``ẽ`` (train with cross-entropy), the valence
    target gets ``v̂``.

    Parameters
    ----------
    input_dim:
        Hidden width ``D``.
    targets:
        Exactly two targets: the emotion class and valence.
    n_classes:
        Number of discrete emotions ``C`` (MER 2023: 6).
    emotion, valence:
        Which target is which; default: the first is the emotion, the second valence.
    dropout:
        Dropout on ``ĥ``.
    pool:
        ``none``, ``mean`` or ``last`` (MER 2023 is clip-level: ``mean``).
    """

    name = "jdev"

    def __init__(
        self,
        input_dim: int,
        targets: list[str],
        *,
        n_classes: int = 6,
        emotion: str | None = None,
        valence: str | None = None,
        dropout: float = 0.0,
        pool: str = "none",
    ) -> None:
        super().__init__()
        self._common(targets, pool, dropout)
        if len(self.targets) != 2:
            raise ConfigError(
                f"jdev: needs exactly two targets (emotion class, valence), got {self.targets}."
            )
        emotion = emotion or next(t for t in self.targets if t != valence)
        valence = valence or next(t for t in self.targets if t != emotion)
        for key, val in (("emotion", emotion), ("valence", valence)):
            if val not in self.targets:
                raise ConfigError(f"jdev: `{key}` {val!r} is not one of the targets {self.targets}.")
        if emotion == valence:
            raise ConfigError(
                f"jdev: `emotion` and `valence` must be different targets, both are {emotion!r}."
            )
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ConfigError(f"jdev: `n_classes` must be an integer >= 2, got {n_classes!r}.")
        self.emotion, self.valence = emotion, valence
        self.emo = nn.Linear(input_dim, n_classes)  # W_e, b_e
        self.val = nn.Linear(input_dim, 1)  # W_v, b_v
        self.emo_val = nn.Linear(n_classes, 1)  # W_ev, b_ev
        self.joint = nn.Linear(2, 1)  # W_vv, b_vv
        self.output_sizes = {t: (n_classes if t == emotion else 1) for t in self.targets}

    def forward(self, h, mask):
        h = self.drop(pool_hidden(h, mask, self.pool))
        e_logits = self.emo(h)
        v_tilde = self.val(h)
        v_e = torch.tanh(self.emo_val(torch.softmax(e_logits, dim=-1)))
        v_hat = self.joint(torch.cat([v_tilde, v_e], dim=-1))
        parts = {self.emotion: e_logits, self.valence: v_hat}
        return torch.cat([parts[t] for t in self.targets], dim=-1)
