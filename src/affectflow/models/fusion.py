"""Fusion of several feature sets (modalities) into one sequence of hidden states.

Every fusion is an ``nn.Module`` registered in :data:`FUSIONS`, sized from ``input_dims`` (name → width; any
number of entries, never assumed to be two) and applied step by step::

    fuse = FUSIONS.build("leader_follower", {"leader": "visual"}, input_dims={"visual": 128, "acoustic": 32, "text": 32})
    h = fuse({"visual": hv, "acoustic": ha, "text": ht}, mask, feature_mask)   # each (B, T, D_m) -> (B, T, output_dim)

A fusion's ``stage`` says where it sits in a :class:`~affectflow.models.composite.CompositeModel`:

``early``
    on the feature sets themselves, before one shared temporal encoder;
``intermediate``
    on the outputs of one temporal encoder per modality;
``late``
    on per-modality *predictions* (each modality has its own encoder and output layer).
    ``produces_outputs`` fusions return the final predictions themselves.

=====================  =============  ===================================================================================
name                   stage          what
=====================  =============  ===================================================================================
``early``              early          ``F = Concat(f_1..f_M) W + b`` (MuSe 2023 personalisation paper, Eq. 1)
``afg``                early          attention-guided feature gathering, MER 2023 paper Eq. 1-3, three structures
``concat``             intermediate   concatenation of the per-modality encodings
``leader_follower``    intermediate   leader-follower attention (ABAW5 paper, LFAN)
``channel_attention``  intermediate   channel attention borrowed from End2You (ABAW5 paper, CAN), any number of modalities
``late_bilstm``        late           stacked unimodal predictions → BiLSTM (MuSe 2021 stress paper, Eq. 12-14 and 19)
``late_average``       late           learnt or fixed weighted average of the unimodal predictions
=====================  =============  ===================================================================================

None of these mixes time steps except ``late_bilstm``, so padded steps cannot leak; ``late_bilstm`` runs on
packed sequences.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.models.rnn import batch_first_rnn, run_rnn
from affectflow.registry import MODEL_PARAM_RULES, Registry

FUSIONS: Registry[nn.Module] = Registry("fusion", data_args=("input_dims",), param_rules=MODEL_PARAM_RULES)
"""All registered fusions (data-derived argument: ``input_dims``)."""

STAGES = ("early", "intermediate", "late")


def resolve_names(what: str, names: list[str] | str | None, available: list[str]) -> list[str]:
    """Map configured names to entries of ``available``.

    A name matches an entry exactly, or every entry ``"<name>.<k>"`` (the branches of one modality with several
    encoders). Unknown names raise :class:`ConfigError` listing the available ones.
    """
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for n in names:
        hits = [a for a in available if a == n or a.startswith(f"{n}.")]
        if not hits:
            raise ConfigError(f"{what}: {n!r} is not one of the fused inputs {available}.")
        out.extend(h for h in hits if h not in out)
    return out


class Fusion(nn.Module):
    """Base class: ``forward(x: {name: (B, T, D_name)}, mask (B, T), feature_mask {name: (B, T)} | None) -> (B, T, F)``."""

    name: str = ""
    stage: str = "early"
    produces_outputs: bool = False
    output_dim: int

    def _set_inputs(self, input_dims: dict[str, int]) -> None:
        if not input_dims:
            raise ConfigError(f"fusion {self.name!r} needs at least one input.")
        self.input_dims = {k: int(v) for k, v in input_dims.items()}
        self.names = list(self.input_dims)

    @property
    def causal(self) -> bool:
        """True when the output at step ``t`` depends on steps ``<= t`` only."""
        return True

    def forward(self, x, mask, feature_mask=None):  # pragma: no cover - interface
        raise NotImplementedError


# ---------------------------------------------------------------------------- early / concat
@FUSIONS.register
class EarlyFusion(Fusion):
    """Early fusion, MuSe 2023 personalisation paper Eq. 1: ``F_early = Concat(f_a, f_v, f_b) W + b``.

    Parameters
    ----------
    input_dims:
        Feature set → width; concatenated in this order (``N = Σ D_m``).
    d_model:
        Output width of the linear layer ``W ∈ R^{N × d_model}``; ``None`` = plain concatenation (width ``N``).
    dropout:
        Dropout on the fused features.
    """

    name = "early"
    stage = "early"

    def __init__(
        self, input_dims: dict[str, int], *, d_model: int | None = 256, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self._set_inputs(input_dims)
        n = sum(self.input_dims.values())
        if d_model is not None and (isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1):
            raise ConfigError(f"early: `d_model` must be a positive integer or null, got {d_model!r}.")
        self.linear = nn.Linear(n, d_model) if d_model is not None else None
        self.drop = nn.Dropout(dropout)
        self.output_dim = d_model if d_model is not None else n

    def forward(self, x, mask, feature_mask=None):
        h = torch.cat([x[n] for n in self.names], dim=-1)
        if self.linear is not None:
            h = self.linear(h)
        return self.drop(h)


@FUSIONS.register
class ConcatFusion(Fusion):
    """Concatenation of the per-modality encodings (intermediate fusion without parameters)."""

    name = "concat"
    stage = "intermediate"

    def __init__(self, input_dims: dict[str, int]) -> None:
        super().__init__()
        self._set_inputs(input_dims)
        self.output_dim = sum(self.input_dims.values())

    def forward(self, x, mask, feature_mask=None):
        return torch.cat([x[n] for n in self.names], dim=-1)


# ---------------------------------------------------------------------------- AFG (MER 2023)
class AFGUnit(nn.Module):
    """One attention-guided feature gathering module (MER 2023 paper, Eq. 1-3).

    For ``N`` aligned hidden states ``h^1..h^N ∈ R^D`` (``h = [h^1..h^N] ∈ R^{D×N}``, Eq. 1) the attention
    scores are ``α = Softmax(s)``, ``s_n = (h^n)^T W_α[:, n] + b_α[n]`` with ``W_α ∈ R^{D×N}``, ``b_α ∈ R^N``
    (Eq. 2: the diagonal of ``h^T W_α``, the only reading of Eq. 2 that gives ``α ∈ R^N``), and the fused state is
    the weighted average ``ĥ = h α = Σ_n α_n h^n ∈ R^D`` (Eq. 3). Items marked unavailable at a step (e.g. no face
    found) get no weight there unless none is available. With ``N = 1`` the unit is the identity (no parameters).

    ``scaled=True`` (default; ours, the paper is silent on the scores' scale) divides the scores by ``√D``, as
    scaled dot-product attention does: ``s_n = ((h^n)^T W_α[:, n]) / √D + b_α[n]``. Unscaled scores grow with the
    norm of the aligned features and the softmax saturates: on a 300-clip MER 2023 layout 43 % of the devel clips
    got one item's weight above 0.95 (the other modality dropped per clip) and the three AFG structures scored far
    below a linear model on the same features (README, "MER 2023: AFG vs the linear yardstick").
    """

    def __init__(self, n_items: int, d: int, scaled: bool = True) -> None:
        super().__init__()
        self.n = n_items
        self.score_scale = 1.0 / math.sqrt(d) if scaled else 1.0
        if n_items > 1:
            self.weight = nn.Parameter(torch.empty(d, n_items))
            self.bias = nn.Parameter(torch.zeros(n_items))
            nn.init.normal_(self.weight, std=1.0 / math.sqrt(d))

    def forward(self, items: list[torch.Tensor], avail: torch.Tensor | None = None) -> torch.Tensor:
        """``items``: N tensors ``(B, T, D)``; ``avail``: ``(B, T, N)`` bool or None. Returns ``(B, T, D)``."""
        if self.n == 1:
            return items[0]
        h = torch.stack(items, dim=-1)  # (B, T, D, N)
        scores = (h * self.weight).sum(-2) * self.score_scale + self.bias  # (B, T, N)
        if avail is not None:
            ok = avail | ~avail.any(-1, keepdim=True)
            scores = scores.masked_fill(~ok, float("-inf"))
        alpha = torch.softmax(scores, dim=-1)
        return (h * alpha.unsqueeze(-2)).sum(-1)


@FUSIONS.register
class AFGFusion(Fusion):
    """Attention-guided feature gathering (MER 2023 paper, Wang et al., Eq. 1-3) in its three structures.

    Every feature set is first aligned to width ``D`` by its own linear layer (the "dimension align matrix" of
    Fig. 2); then :class:`AFGUnit` modules gather them:

    ``parallel`` (structure 1)
        one AFG over all feature sets.
    ``pairwise`` (structure 2)
        each primary (acoustic) set is fused with all secondary (visual) sets by its own AFG, giving one
        audio-visual representation per primary set; these are fused by a final AFG.
    ``hierarchical`` (structure 3)
        intra-modal AFG over the primary sets (one unified acoustic representation), then inter-modal AFG over that
        and the secondary sets.

    Parameters
    ----------
    input_dims:
        Feature set → width.
    d_model:
        Aligned width ``D`` = output width. The paper does not state it; 256 is our choice.
    structure:
        ``parallel``, ``pairwise`` or ``hierarchical``.
    primary:
        The primary group (the paper's HuBERT layers): feature set names; all others are secondary (visual).
        ``None`` = the first feature set.
    use_feature_mask:
        Give no attention weight to a feature set at steps where it has no value.
    dropout:
        Dropout on the fused output.
    scaled_scores:
        Divide the attention scores by ``√D`` (:class:`AFGUnit`; default true).
    """

    name = "afg"
    stage = "early"
    structures = ("parallel", "pairwise", "hierarchical")

    def __init__(
        self,
        input_dims: dict[str, int],
        *,
        d_model: int = 256,
        structure: str = "parallel",
        primary: list[str] | None = None,
        use_feature_mask: bool = True,
        dropout: float = 0.0,
        scaled_scores: bool = True,
    ) -> None:
        super().__init__()
        self._set_inputs(input_dims)
        if structure not in self.structures:
            raise ConfigError(f"afg: `structure` must be one of {list(self.structures)}, got {structure!r}.")
        self.structure = structure
        self.primary = resolve_names("afg: `primary`", primary, self.names) or [self.names[0]]
        self.secondary = [n for n in self.names if n not in self.primary]
        self.align = nn.ModuleDict({n: nn.Linear(d, d_model) for n, d in self.input_dims.items()})
        p, s = len(self.primary), len(self.secondary)
        sc = bool(scaled_scores)
        if structure == "parallel":
            self.units = nn.ModuleList([AFGUnit(p + s, d_model, sc)])
        elif structure == "pairwise":
            self.units = nn.ModuleList([AFGUnit(1 + s, d_model, sc) for _ in range(p)] + [AFGUnit(p, d_model, sc)])
        else:
            self.units = nn.ModuleList([AFGUnit(p, d_model, sc), AFGUnit(1 + s, d_model, sc)])
        self.use_feature_mask = use_feature_mask
        self.drop = nn.Dropout(dropout)
        self.output_dim = d_model

    def forward(self, x, mask, feature_mask=None):
        a = {n: self.align[n](x[n]) for n in self.names}
        if self.use_feature_mask and feature_mask is not None:
            av = {n: feature_mask[n] for n in self.names}
        else:
            av = {n: torch.ones_like(mask) for n in self.names}

        def gather(unit, names_or_items):
            items = [a[n] if isinstance(n, str) else n[0] for n in names_or_items]
            avail = torch.stack([av[n] if isinstance(n, str) else n[1] for n in names_or_items], -1)
            out = unit(items, avail)
            return out, avail.any(-1)

        if self.structure == "parallel":
            h, _ = gather(self.units[0], self.primary + self.secondary)
        elif self.structure == "pairwise":
            reps = [gather(self.units[i], [p] + self.secondary) for i, p in enumerate(self.primary)]
            h, _ = gather(self.units[-1], reps)
        else:
            unified = gather(self.units[0], self.primary)
            h, _ = gather(self.units[1], [unified] + self.secondary)
        return self.drop(h)


# ---------------------------------------------------------------------------- ABAW5: leader-follower, channel attention
@FUSIONS.register
class LeaderFollowerFusion(Fusion):
    """Leader-follower attention (ABAW5 paper, Zhang et al.; the LFAN of their ABAW3 code), for any number ``M`` of modalities.

    Each modality ``i`` has its own linear layers giving ``Q_i, K_i, V_i ∈ R^{d_modal}`` per step, split into
    ``num_heads`` heads. At every step the modalities attend to each other (an ``M × M`` attention per head,
    ``softmax(Q K^T / sqrt(d_head)) V``), the values are added back (``+ V``), the ``M`` results are concatenated and
    projected (``M·d_modal → M·d_modal``), followed by dropout and layer norm: the *follower*. The output is the
    leader's own encoding concatenated with the follower: width ``D_leader + M · d_modal``.

    Parameters
    ----------
    input_dims:
        Modality → encoding width (from the per-modality temporal encoders).
    leader:
        The leading modality (ABAW5: the visual one); ``None`` = the first.
    d_modal:
        Per-modality attention width (the authors' code: 32).
    num_heads:
        Heads (the authors' code: 2); must divide ``d_modal``.
    dropout:
        Dropout before the layer norm (the authors' code: 0.1).
    """

    name = "leader_follower"
    stage = "intermediate"

    def __init__(
        self,
        input_dims: dict[str, int],
        *,
        leader: str | None = None,
        d_modal: int = 32,
        num_heads: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self._set_inputs(input_dims)
        if d_modal % num_heads:
            raise ConfigError(
                f"leader_follower: `d_modal` {d_modal} is not divisible by `num_heads` {num_heads}."
            )
        self.leader = (
            resolve_names("leader_follower: `leader`", leader, self.names)[0] if leader else self.names[0]
        )
        m = len(self.names)
        self.d_modal, self.num_heads = d_modal, num_heads
        # with one modality the attention is trivially 1 and queries/keys would get no gradient
        self.q = (
            nn.ModuleDict({n: nn.Linear(d, d_modal) for n, d in self.input_dims.items()}) if m > 1 else None
        )
        self.k = (
            nn.ModuleDict({n: nn.Linear(d, d_modal) for n, d in self.input_dims.items()}) if m > 1 else None
        )
        self.v = nn.ModuleDict({n: nn.Linear(d, d_modal) for n, d in self.input_dims.items()})
        self.out = nn.Linear(m * d_modal, m * d_modal)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(m * d_modal)
        self.output_dim = self.input_dims[self.leader] + m * d_modal

    def forward(self, x, mask, feature_mask=None):
        b, t = mask.shape
        dh = self.d_modal // self.num_heads

        def heads(proj):
            return torch.stack([proj[n](x[n]).view(b, t, self.num_heads, dh) for n in self.names], dim=3)

        v = heads(self.v)  # (B, T, heads, M, dh)
        if self.q is not None:
            q, k = heads(self.q), heads(self.k)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1)  # (B, T, heads, M, M)
            vals = att @ v + v
        else:
            vals = v + v
        follower = vals.permute(0, 1, 3, 2, 4).reshape(b, t, -1)  # (B, T, M·d_modal), modality-major
        follower = self.norm(self.drop(self.out(follower)))
        return torch.cat([x[self.leader], follower], dim=-1)


@FUSIONS.register
class ChannelAttentionFusion(Fusion):
    """Channel attention fusion borrowed from End2You (ABAW5 paper, CAN), for any number ``M`` of modalities.

    Each modality is projected to ``d_model`` channels, the projections are concatenated (``c ∈ R^{M·d_model}``),
    and ``out = softmax(W c + b) ⊙ c`` with ``W ∈ R^{(M·d_model) × (M·d_model)}`` sized from the number of
    modalities (End2You hard-codes ``2·d``, which breaks with three modalities).

    Parameters
    ----------
    input_dims:
        Modality → encoding width.
    d_model:
        Channels per modality (the paper does not state it; 256 is End2You's default).
    """

    name = "channel_attention"
    stage = "intermediate"

    def __init__(self, input_dims: dict[str, int], *, d_model: int = 256) -> None:
        super().__init__()
        self._set_inputs(input_dims)
        self.proj = nn.ModuleDict({n: nn.Linear(d, d_model) for n, d in self.input_dims.items()})
        width = d_model * len(self.names)
        self.weights = nn.Linear(width, width)
        self.output_dim = width

    def forward(self, x, mask, feature_mask=None):
        c = torch.cat([self.proj[n](x[n]) for n in self.names], dim=-1)
        return torch.softmax(self.weights(c), dim=-1) * c


# ---------------------------------------------------------------------------- late fusion
@FUSIONS.register
class LateBiLSTMFusion(Fusion):
    """Late fusion by a BiLSTM over the stacked unimodal predictions (MuSe 2021 stress paper, Eq. 12-14 and 19).

    ``Y^f = concat(Ŷ^a, Ŷ^v, Ŷ^B, ...)`` (Eq. 12/19), ``H^f = LSTM_4(Y^f)`` (Eq. 13); the composite model's head
    then gives ``Ŷ^f = H^f W^f + b^f`` (Eq. 14). The paper uses a Bi-LSTM layer with 32 cells.

    Parameters
    ----------
    input_dims:
        Branch → width of its predictions.
    hidden_size:
        LSTM cells per direction; output width ``hidden_size · (2 if bidirectional else 1)``.
    num_layers:
        LSTM layers.
    bidirectional:
        Bidirectional (paper) or causal.
    dropout:
        Dropout between LSTM layers.
    """

    name = "late_bilstm"
    stage = "late"

    def __init__(
        self,
        input_dims: dict[str, int],
        *,
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self._set_inputs(input_dims)
        self.rnn = batch_first_rnn(nn.LSTM, sum(self.input_dims.values()), hidden_size, num_layers=num_layers,
                                   bidirectional=bidirectional, dropout=dropout)
        self.output_dim = hidden_size * (2 if bidirectional else 1)

    @property
    def causal(self) -> bool:
        return not self.rnn.bidirectional

    def forward(self, x, mask, feature_mask=None):
        return run_rnn(self.rnn, torch.cat([x[n] for n in self.names], dim=-1), mask)


@FUSIONS.register
class LateAverageFusion(Fusion):
    """Weighted average of the unimodal predictions: ``ŷ = Σ_m w_m ŷ_m``, ``Σ_m w_m = 1``.

    Learnt weights are ``w = softmax(z)`` with ``z`` initialised to ``log`` of the initial weights (equal weights by
    default); fixed weights are the given ones normalised to sum 1.

    Parameters
    ----------
    input_dims:
        Branch → width of its predictions (all equal).
    weights:
        Branch (or modality) name → initial/fixed weight (positive); ``None`` = equal weights.
    learnable:
        Learn the weights (``False``: keep them fixed).
    """

    name = "late_average"
    stage = "late"
    produces_outputs = True

    def __init__(
        self, input_dims: dict[str, int], *, weights: dict[str, float] | None = None, learnable: bool = True
    ) -> None:
        super().__init__()
        self._set_inputs(input_dims)
        widths = set(self.input_dims.values())
        if len(widths) != 1:
            raise ConfigError(
                f"late_average: all predictions must have the same width, got {self.input_dims}."
            )
        w = torch.ones(len(self.names))
        if weights:
            w = torch.zeros(len(self.names))
            for key, val in weights.items():
                if not isinstance(val, (int, float)) or isinstance(val, bool) or val <= 0:
                    raise ConfigError(
                        f"late_average: weight of {key!r} must be a positive number, got {val!r}."
                    )
                for n in resolve_names("late_average: `weights`", key, self.names):
                    w[self.names.index(n)] = float(val)
            missing = [n for n, v in zip(self.names, w.tolist()) if v == 0]
            if missing:
                raise ConfigError(
                    f"late_average: `weights` gives no weight to {missing}; give one for each of "
                    f"{self.names}."
                )
        w = w / w.sum()
        self.learnable = learnable and len(self.names) > 1
        if self.learnable:
            self.logits = nn.Parameter(torch.log(w))
        else:
            self.register_buffer("fixed", w)
        self.output_dim = widths.pop()

    def weights(self) -> dict[str, float]:
        """Current weights per branch."""
        w = torch.softmax(self.logits, 0) if self.learnable else self.fixed
        return dict(zip(self.names, w.detach().cpu().tolist()))

    def forward(self, x, mask, feature_mask=None):
        w = torch.softmax(self.logits, 0) if self.learnable else self.fixed
        return sum(w[i] * x[n] for i, n in enumerate(self.names))


def fusion_stage(name: str) -> str:
    """The stage of fusion ``name`` (``early``, ``intermediate`` or ``late``)."""
    return FUSIONS.get(name).stage
