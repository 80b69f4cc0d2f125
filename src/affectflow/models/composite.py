"""Models assembled from a fusion, temporal encoder(s) and a head, and named architectures of the five papers.

``composite`` builds any combination from config; every size is derived from the data's feature widths::

    model:
      type: composite
      groups: {bio: [ecg, resp, bpm]}            # optional: feature sets concatenated into one modality (Eq. 9)
      fusion: {type: leader_follower, leader: visual}
      encoder: {type: tcn, channels: [32, 32, 32, 32]}
      encoders: {visual: {type: tcn, channels: [512, 256, 256, 128]}}   # optional per-modality override(s)
      head: {type: regression}

How the blocks are wired depends on the fusion's stage (:mod:`affectflow.models.fusion`):

``early`` (``early``, ``afg``)
    ``head(encoder(fusion(modalities)))``: one encoder on the fused features.
``intermediate`` (``concat``, ``leader_follower``, ``channel_attention``)
    ``head(fusion({m: encoder_m(modality m)}))``: one encoder per modality (``encoders`` may give a modality its own
    encoder, or a list of several: each becomes a branch named ``<modality>.<k>``).
``late`` (``late_bilstm``, ``late_average``)
    every branch gets its own encoder and its own copy of the head (unimodal predictions, stress paper Eq. 7, 8, 11);
    the fusion combines the predictions; ``late_bilstm`` is followed by another copy of the head (Eq. 14).

A modality is a feature set, or a ``groups`` entry (its sets concatenated in the given order). With ``mask_inputs``
each set's step mask (True where the set had a value) is appended to its modality's features, so a missing value
(0 after normalisation) can be told from a real mean value. Block configs are validated when the model is built:
an unknown ``type`` or key fails with the list of valid ones.

Named architectures (flat hyperparameters; each is a ``composite`` with fixed blocks, see each class):

==========================  =======================================================================================
type                        architecture (paper)
==========================  =======================================================================================
``composite``               any fusion + encoder + head
``gru``                     early fusion + GRU (MuSe 2023 personalisation paper; :mod:`affectflow.models.gru`)
``lstm``                    early fusion + LSTM (the LSTM baseline of the MuSe 2021 stress paper)
``sa_lstm``                 early fusion + self-attention + LSTM (MuSe 2021 stress paper 4.1)
``gcnn_lstm``               early fusion + gated CNN + LSTM (MuSe 2021 stress paper 4.2)
``transformer``             early fusion + Transformer encoder
``tcn``                     early fusion + TCN
``mbconv``                  early fusion + 1-D EfficientNet (MBConv) stack
``way1`` … ``way6``         early fusion + the Sent paper's hybrid temporal models (Way1-Way6)
``late_fusion_bilstm``      per-modality encoders + unimodal predictions + BiLSTM late fusion (stress paper, Eq. 12-14, 19)
``late_average``            per-modality encoders + unimodal predictions + learnt/fixed weighted average
``leader_follower_tcn``     per-modality TCNs + leader-follower attention (ABAW5 LFAN)
``channel_attention_tcn``   per-modality TCNs + channel attention (ABAW5 CAN)
``afg_jdev``                AFG fusion (three structures) + optional encoder + JDEV head (MER 2023)
==========================  =======================================================================================

Every model returns ``(B, T, K_out)`` (``K_out = Σ output_sizes``; ``len(targets)`` for regression heads), has a
``causal`` property, and ``config()`` rebuilds it with :func:`~affectflow.models.base.build_model`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.models.base import MODELS, SequenceModel
from affectflow.models.encoders import ENCODERS, WAYS
from affectflow.models.fusion import FUSIONS
from affectflow.models.heads import HEADS
from affectflow.models.presets import Preset, preset_class
from affectflow.registry import Registry


def plain_value(v: Any) -> Any:
    """Tuples → lists, recursively (so hyperparameters dump to YAML/JSON unchanged)."""
    if isinstance(v, (list, tuple)):
        return [plain_value(i) for i in v]
    if isinstance(v, dict):
        return {k: plain_value(i) for k, i in v.items()}
    return v


def block_choice(where: str, cfg: Any, registry: Registry, default: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Parse a ``{type: ..., **params}`` block config; errors name the config key and list the valid choices."""
    cfg = default if cfg is None else cfg
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(
            f"`{where}` must be a mapping with a `type` key, got {cfg!r}; valid types: {registry.names()}."
        )
    kind = cfg["type"]
    params = {k: v for k, v in cfg.items() if k != "type"}
    try:
        registry.get(kind)
        registry.check_params(kind, params)
    except ConfigError as e:
        raise ConfigError(f"`{where}`: {e}") from e
    return kind, params


def build_block(where: str, registry: Registry, kind: str, params: dict[str, Any], **data: Any) -> nn.Module:
    """``registry.build(kind, params, **data)``; a ConfigError names the config key ``where``."""
    try:
        return registry.build(kind, params, **data)
    except ConfigError as e:
        raise ConfigError(f"`{where}`: {e}") from e


@MODELS.register("composite")
class CompositeModel(SequenceModel):
    """A fusion, temporal encoder(s) and a head, wired by the fusion's stage (see the module docstring).

    Parameters
    ----------
    input_dims:
        Feature set → width (from the data).
    targets:
        Target names.
    fusion:
        Fusion block ``{type, ...}`` (:data:`~affectflow.models.fusion.FUSIONS`); default ``{type: early, d_model: 128}``.
    encoder:
        Temporal encoder ``{type, ...}`` (:data:`~affectflow.models.encoders.ENCODERS`); default ``{type: lstm}``.
        For intermediate/late fusion it is built once per modality.
    encoders:
        Modality → encoder config, or a list of configs (several branches): overrides ``encoder`` for that modality
        (intermediate/late fusion only).
    head:
        Output head ``{type, ...}`` (:data:`~affectflow.models.heads.HEADS`); default ``{type: regression}``.
    groups:
        Modality name → feature sets concatenated into it; sets not listed are modalities of their own.
    mask_inputs:
        Append each feature set's step mask to its modality's features.
    """

    name = "composite"

    def __init__(
        self,
        input_dims: dict[str, int],
        targets: list[str],
        *,
        fusion: dict[str, Any] | None = None,
        encoder: dict[str, Any] | None = None,
        encoders: dict[str, Any] | None = None,
        head: dict[str, Any] | None = None,
        groups: dict[str, list[str]] | None = None,
        mask_inputs: bool = True,
    ) -> None:
        super().__init__(
            input_dims,
            targets,
            **plain_value(
                {
                    "fusion": fusion,
                    "encoder": encoder,
                    "encoders": encoders,
                    "head": head,
                    "groups": groups,
                    "mask_inputs": mask_inputs,
                }
            ),
        )
        self._assemble(
            fusion=fusion,
            encoder=encoder,
            encoders=encoders,
            head=head,
            groups=groups,
            mask_inputs=mask_inputs,
        )

    # ------------------------------------------------------------------ assembly
    def _assemble(self, *, fusion, encoder, encoders, head, groups, mask_inputs) -> None:
        if not self.targets:
            raise ConfigError("A model needs at least one target (`data.targets` is empty).")
        self.mask_inputs = bool(mask_inputs)
        self.groups = self._groups(groups)
        widths = {
            g: sum(self.input_dims[s] for s in sets) + (len(sets) if self.mask_inputs else 0)
            for g, sets in self.groups.items()
        }
        f_kind, f_params = block_choice("model.fusion", fusion, FUSIONS, {"type": "early", "d_model": 128})
        e_kind, e_params = block_choice("model.encoder", encoder, ENCODERS, {"type": "lstm"})
        h_kind, h_params = block_choice("model.head", head, HEADS, {"type": "regression"})
        self.stage = FUSIONS.get(f_kind).stage

        def make_head(where, d):
            return build_block(where, HEADS, h_kind, h_params, input_dim=d, targets=self.targets)

        if self.stage == "early":
            if encoders:
                raise ConfigError(
                    f"`model.encoders` applies to intermediate and late fusion; fusion {f_kind!r} is "
                    "early (one encoder on the fused features): use `model.encoder`."
                )
            self.fusion = build_block("model.fusion", FUSIONS, f_kind, f_params, input_dims=widths)
            self.encoder = build_block(
                "model.encoder", ENCODERS, e_kind, e_params, input_dim=self.fusion.output_dim
            )
            self.head = make_head("model.head", self.encoder.output_dim)
            self.output_sizes = dict(self.head.output_sizes)
            return

        per_group = self._per_group_encoders(encoders, (e_kind, e_params))
        self.branches: list[tuple[str, str]] = []
        mods = []
        for g, cfgs in per_group.items():
            for k, (kind, params) in enumerate(cfgs):
                bname = g if len(cfgs) == 1 else f"{g}.{k}"
                self.branches.append((bname, g))
                mods.append(build_block(f"model.encoders.{bname}", ENCODERS, kind, params, input_dim=widths[g]))
        self.branch_encoders = nn.ModuleList(mods)
        if self.stage == "intermediate":
            dims = {b: enc.output_dim for (b, _), enc in zip(self.branches, self.branch_encoders)}
            self.fusion = build_block("model.fusion", FUSIONS, f_kind, f_params, input_dims=dims)
            self.head = make_head("model.head", self.fusion.output_dim)
            self.output_sizes = dict(self.head.output_sizes)
            return
        self.branch_heads = nn.ModuleList(
            [
                make_head(f"model.head ({b})", enc.output_dim)
                for (b, _), enc in zip(self.branches, self.branch_encoders)
            ]
        )
        dims = {b: h.output_dim for (b, _), h in zip(self.branches, self.branch_heads)}
        self.fusion = build_block("model.fusion", FUSIONS, f_kind, f_params, input_dims=dims)
        self.output_sizes = dict(self.branch_heads[0].output_sizes)
        self.head = None if self.fusion.produces_outputs else make_head("model.head", self.fusion.output_dim)

    def _groups(self, groups: dict[str, list[str]] | None) -> dict[str, list[str]]:
        sets = list(self.input_dims)
        groups = dict(groups or {})
        owner: dict[str, str] = {}
        for g, members in groups.items():
            if isinstance(members, str):
                members = [members]
            if not isinstance(members, list) or not members:
                raise ConfigError(
                    f"`model.groups.{g}` must be a non-empty list of feature sets, got {members!r}."
                )
            for s in members:
                if s not in self.input_dims:
                    raise ConfigError(
                        f"`model.groups.{g}` names feature set {s!r}, which is not in the data; "
                        f"feature sets: {sets}."
                    )
                if s in owner:
                    raise ConfigError(f"Feature set {s!r} is in two groups, {owner[s]!r} and {g!r}.")
                owner[s] = g
            if g in self.input_dims and g not in members:
                raise ConfigError(f"Group name {g!r} is also a feature set name; choose another name.")
        out: dict[str, list[str]] = {}
        for s in sets:  # modalities in the order of their first feature set
            g = owner.get(s, s)
            if g not in out:
                out[g] = list(groups[g]) if g in groups else [s]
        return out

    def _per_group_encoders(self, encoders, default) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        encoders = dict(encoders or {})
        unknown = sorted(set(encoders) - set(self.groups))
        if unknown:
            raise ConfigError(
                f"`model.encoders` has entries {unknown} that are not modalities; modalities: "
                f"{list(self.groups)}."
            )
        out = {}
        for g in self.groups:
            cfg = encoders.get(g)
            if cfg is None:
                out[g] = [default]
                continue
            cfgs = cfg if isinstance(cfg, list) else [cfg]
            if not cfgs:
                raise ConfigError(f"`model.encoders.{g}` is an empty list; give at least one encoder config.")
            out[g] = [block_choice(f"model.encoders.{g}", c, ENCODERS, {}) for c in cfgs]
        return out

    # ------------------------------------------------------------------ properties
    @property
    def causal(self) -> bool:
        """True when no output depends on later steps (in ``eval()`` mode)."""
        parts: list[Any] = [self.fusion]
        parts += [self.encoder] if self.stage == "early" else list(self.branch_encoders)
        if self.stage == "late":
            parts += list(self.branch_heads)
        if self.head is not None:
            parts.append(self.head)
        return all(p.causal for p in parts)

    @property
    def modalities(self) -> dict[str, list[str]]:
        """Modality → feature sets (after ``groups``)."""
        return {g: list(s) for g, s in self.groups.items()}

    # ------------------------------------------------------------------ forward
    def _modalities(self, x, mask, feature_mask):
        xg, fmg = {}, {}
        fm = feature_mask or {}
        for g, sets in self.groups.items():
            parts = [x[s] for s in sets]
            ms = [fm[s].bool() if s in fm else torch.ones_like(mask) for s in sets]
            if self.mask_inputs:
                parts += [m.unsqueeze(-1).to(parts[0].dtype) for m in ms]
            xg[g] = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
            fmg[g] = torch.stack(ms, 0).any(0)
        return xg, fmg

    def forward(
        self,
        x: dict[str, torch.Tensor],
        mask: torch.Tensor,
        feature_mask: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``x``: ``{set: (B, T, D_set)}``, ``mask``: ``(B, T)`` bool → ``(B, T, K_out)``."""
        mask = mask.bool()
        xg, fmg = self._modalities(x, mask, feature_mask)
        if self.stage == "early":
            return self.head(self.encoder(self.fusion(xg, mask, fmg), mask), mask)
        hs, fmb = {}, {}
        for (b, g), enc in zip(self.branches, self.branch_encoders):
            hs[b] = enc(xg[g], mask)
            fmb[b] = fmg[g]
        if self.stage == "intermediate":
            return self.head(self.fusion(hs, mask, fmb), mask)
        preds = {b: head(hs[b], mask) for (b, _), head in zip(self.branches, self.branch_heads)}
        out = self.fusion(preds, mask, fmb)
        return out if self.head is None else self.head(out, mask)


# ---------------------------------------------------------------------------- named architectures (presets)
#: The output-head hyperparameters shared by the early-fusion presets.
HEAD_PARAMS: dict[str, Any] = {"d_fc": None, "tanh_output": False, "mask_inputs": True, "head": None}

_HEAD_DOC = """
    d_fc:
        Hidden layer of the head (``None`` = one linear layer).
    tanh_output:
        Squash outputs into (-1, 1).
    mask_inputs:
        Append feature-set step masks to the inputs.
    head:
        Replace the regression head by this head config (e.g. ``{type: classification, n_classes: 5}``).
"""


def _regression(hp: dict[str, Any], dropout: float | None = None) -> dict[str, Any]:
    """The head block: ``hp["head"]`` if given, else a regression head from ``d_fc``/``tanh_output``."""
    if hp["head"] is not None:
        return hp["head"]
    return {"type": "regression", "hidden": hp.get("d_fc"), "tanh": hp["tanh_output"],
            "dropout": hp["dropout"] if dropout is None else dropout}


def _named(preset: Preset, class_name: str) -> type:
    """Register ``preset`` (``blocks(hp)`` → :class:`CompositeModel` keyword arguments) as a model."""

    def build(self: CompositeModel, input_dims: dict[str, int], targets: list[str], hp: dict[str, Any]) -> None:
        SequenceModel.__init__(self, input_dims, targets, **plain_value(hp))
        self._assemble(**{"encoders": None, "groups": None, **preset.blocks(hp)})

    return MODELS.register(preset_class(CompositeModel, preset, ("input_dims", "targets"), build, class_name))


def early_preset(name: str, encoder: str, doc: str, *, defaults: dict[str, Any] | None = None,
                 fusion_width: bool = False) -> Preset:
    """Early fusion (concatenation) + the ``encoder`` + a regression head, with the encoder's hyperparameters
    (defaults from the encoder, overridden by ``defaults``) followed by :data:`HEAD_PARAMS`; ``fusion_width`` adds
    ``d_model`` first, the width of a linear fusion layer (``None`` = plain concatenation)."""
    enc = {**ENCODERS.defaults(encoder), **(defaults or {})}
    params = {**({"d_model": None} if fusion_width else {}), **enc, **HEAD_PARAMS}

    def blocks(hp: dict[str, Any]) -> dict[str, Any]:
        return {"fusion": {"type": "early", "d_model": hp["d_model"] if fusion_width else None, "dropout": 0.0},
                "mask_inputs": hp["mask_inputs"],
                "encoder": {"type": encoder, **plain_value({k: hp[k] for k in enc})},
                "head": _regression(hp)}

    return Preset(name=name, params=params, blocks=blocks, doc=doc + _HEAD_DOC)


LSTMModel = _named(early_preset("lstm", "lstm", fusion_width=True, defaults={"dropout": 0.1}, doc="""\
Early fusion + LSTM + regression head (the "LSTM" baseline of the MuSe 2021 stress paper).

    Parameters
    ----------
    d_model:
        Width of the early-fusion linear layer (Eq. 1); ``None`` = plain concatenation.
    hidden_size, num_layers, bidirectional:
        LSTM.
    dropout:
        Dropout between LSTM layers and in the head."""), "LSTMModel")

SALSTMModel = _named(early_preset("sa_lstm", "sa_lstm", defaults={"d_attn": 64}, doc="""\
Early fusion + self-attention + LSTM + linear output: "Self-Attn+LSTM" of the MuSe 2021 stress paper (4.1).

    One stream over the concatenated feature sets (the paper runs one such model per modality; see
    ``late_fusion_bilstm`` for the full system). ``d_attn: null`` reproduces the paper's attention at the input
    width, which must then be divisible by ``num_heads`` (e.g. eGeMAPS 88 with ``mask_inputs: false``); the default
    64 projects first so any input works.

    Parameters
    ----------
    num_heads, attn_layers, d_attn:
        Self-attention (paper: 4 or 8 heads; 1, 2 or 4 layers).
    hidden_size, lstm_layers, bidirectional:
        LSTM (paper: unidirectional, 2 or 4 layers, 64/128/256 cells).
    dropout:
        Attention and inter-layer dropout (the paper does not state it).
    causal:
        Causal attention (no look-ahead; needs ``bidirectional: false``)."""), "SALSTMModel")

GCNNLSTMModel = _named(early_preset("gcnn_lstm", "gcnn_lstm", doc="""\
Early fusion + gated CNN + LSTM + linear output: "GCNN+LSTM" of the MuSe 2021 stress paper (4.2, Eq. 15-18).

    Parameters
    ----------
    channels, kernel_size, conv_layers:
        Gated convolutions (paper: 64 or 128 channels; kernel size not stated, 3 is our choice).
    hidden_size, lstm_layers, bidirectional:
        LSTM (paper: unidirectional, 128/256/1024 cells).
    dropout:
        Dropout after the convolutions and in the head.
    causal:
        Left-only convolution padding (needs ``bidirectional: false``)."""), "GCNNLSTMModel")

TransformerModel = _named(early_preset("transformer", "transformer", doc="""\
Early fusion + Transformer encoder + regression head.

    Parameters
    ----------
    d_model, num_heads, num_layers, dim_feedforward, dropout, causal, positional:
        Transformer encoder (:class:`~affectflow.models.encoders.TransformerEncoder`)."""), "TransformerModel")

TCNModel = _named(early_preset("tcn", "tcn", doc="""\
Early fusion + TCN + regression head (the ABAW5 temporal branch on the fused features).

    Parameters
    ----------
    channels, kernel_size, dropout, causal, weight_norm:
        TCN (:class:`~affectflow.models.encoders.TCNEncoder`)."""), "TCNModel")

MBConvModel = _named(early_preset("mbconv", "mbconv", doc="""\
Early fusion + 1-D EfficientNet-style MBConv stack + regression head.

    Parameters
    ----------
    channels, expand_ratio, kernel_size, se_ratio, dropout, causal:
        MBConv stack (:class:`~affectflow.models.encoders.MBConvEncoder`)."""), "MBConvModel")

_WAY_MODEL_DOC = """\
Way{n} of the MuSe 2021 Sent paper: early fusion + {what} + regression head.

    Early fusion is plain concatenation (the Sent paper's early fusion strategy). The paper's task is 5-class
    classification per segment: use ``head: {{type: classification, n_classes: 5}}``; the default head is a
    regression head so that the model also serves continuous targets.

    Parameters
    ----------
    {params}:
        The ``way{n}`` encoder's (:mod:`affectflow.models.encoders`, paper values as defaults); ``dropout`` also in
        the head."""

Way1Model, Way2Model, Way3Model, Way4Model, Way5Model, Way6Model = (
    _named(early_preset(f"way{n}", f"way{n}", doc=_WAY_MODEL_DOC.format(
        n=n, what=WAYS[n][1], params=", ".join(ENCODERS.param_names(f"way{n}")))), f"Way{n}Model")
    for n in WAYS)

_LATE_DOC = """
    groups:
        Modality → feature sets.
    tanh_output:
        Squash the unimodal and final predictions.
    mask_inputs:
        Append feature-set step masks.
    head:
        Head config used for the unimodal predictions and after the fusion (default: linear regression).
"""


def _late(fusion: Callable[[dict[str, Any]], dict[str, Any]], encoder: dict[str, Any]) -> Callable:
    def blocks(hp: dict[str, Any]) -> dict[str, Any]:
        return {"fusion": fusion(hp), "encoder": hp["encoder"] or encoder, "encoders": hp["encoders"],
                "groups": hp["groups"], "mask_inputs": hp["mask_inputs"], "head": _regression(hp, 0.0)}

    return blocks


LateFusionBiLSTMModel = _named(Preset(
    name="late_fusion_bilstm",
    params={"encoder": None, "encoders": None, "groups": None, "hidden_size": 32, "bidirectional": True,
            "tanh_output": False, "mask_inputs": True, "head": None},
    blocks=_late(lambda hp: {"type": "late_bilstm", "hidden_size": hp["hidden_size"],
                             "bidirectional": hp["bidirectional"]}, {"type": "sa_lstm", "d_attn": 64}),
    doc="""Per-modality encoders, unimodal predictions, BiLSTM late fusion (MuSe 2021 stress paper, Fig. 1-2).

    Stress sub-challenge (4.1): self-attention + LSTM for the audio and the visual features, an LSTM for the
    concatenated bio-signals (``groups: {bio: [ecg, resp, bpm]}``, Eq. 9-11); each gives a prediction (Eq. 7, 8, 11)
    and the stacked predictions go through a Bi-LSTM with 32 cells and a linear layer (Eq. 12-14). Physio
    sub-challenge (4.2, Eq. 19): audio and video each get both an SA-LSTM and a GCNN-LSTM branch
    (``encoders: {audio: [{type: sa_lstm}, {type: gcnn_lstm}], ...}``). The whole model trains end to end here (the
    paper trains the unimodal models first, then the fusion model on their predictions).

    Parameters
    ----------
    encoder:
        Default encoder per modality (default ``{type: sa_lstm, d_attn: 64}``).
    encoders:
        Modality → encoder config or list of configs (extra branches).
    hidden_size:
        Fusion LSTM cells per direction (paper: 32).
    bidirectional:
        Bidirectional fusion LSTM (paper) or causal.""" + _LATE_DOC), "LateFusionBiLSTMModel")

LateAverageModel = _named(Preset(
    name="late_average",
    params={"encoder": None, "encoders": None, "groups": None, "weights": None, "learnable": True,
            "tanh_output": False, "mask_inputs": True, "head": None},
    blocks=_late(lambda hp: {"type": "late_average", "weights": hp["weights"], "learnable": hp["learnable"]},
                 {"type": "lstm"}),
    doc="""Per-modality encoders and unimodal predictions, combined by a learnt or fixed weighted average.

    Parameters
    ----------
    encoder, encoders:
        As for ``late_fusion_bilstm`` (default encoder: ``{type: lstm}``).
    weights:
        Modality (or branch) → initial/fixed weight; ``None`` = equal.
    learnable:
        Learn the weights (softmax-normalised).""" + _LATE_DOC), "LateAverageModel")


def _tcn_blocks(fusion: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable:
    """Blocks of the ABAW5 models: one TCN per modality (``channels`` a list, or modality → list with a
    ``default``), the ``fusion``, a regression head."""

    def blocks(hp: dict[str, Any]) -> dict[str, Any]:
        base = {"type": "tcn", "kernel_size": hp["kernel_size"], "dropout": hp["dropout"], "causal": hp["causal"]}
        channels, per = hp["channels"], None
        if isinstance(channels, dict):
            per = {g: {**base, "channels": list(c)} for g, c in channels.items() if g != "default"} or None
            channels = channels.get("default", [64, 64, 64, 64])
        return {"fusion": fusion(hp), "encoder": {**base, "channels": list(channels)}, "encoders": per,
                "groups": hp["groups"], "mask_inputs": hp["mask_inputs"], "head": _regression(hp, 0.0)}

    return blocks


_TCN_PARAMS = {"channels": (32, 32, 32, 32), "kernel_size": 5, "dropout": 0.1, "causal": True}
_TAIL_PARAMS = {"groups": None, "tanh_output": False, "mask_inputs": True, "head": None}

LeaderFollowerTCNModel = _named(Preset(
    name="leader_follower_tcn",
    params={"leader": None, **_TCN_PARAMS, "d_modal": 32, "num_heads": 2, **_TAIL_PARAMS},
    blocks=_tcn_blocks(lambda hp: {"type": "leader_follower", "leader": hp["leader"], "d_modal": hp["d_modal"],
                                   "num_heads": hp["num_heads"], "dropout": hp["dropout"]}),
    doc="""ABAW5 LFAN: one TCN per modality, leader-follower attention, linear regressor.

    Parameters
    ----------
    leader:
        The leading modality (ABAW5: video); ``None`` = the first.
    channels:
        TCN channels, one list for all modalities, or modality → list (key ``default`` for the rest). The authors'
        code: ``[512, 256, 256, 128]`` for the visual branch, ``[32, 32, 32, 32]`` for audio features.
    kernel_size, dropout, causal:
        TCN (the authors' code: 5, 0.1, causal).
    d_modal, num_heads:
        Attention (the authors' code: 32, 2).""" + _LATE_DOC), "LeaderFollowerTCNModel")

ChannelAttentionTCNModel = _named(Preset(
    name="channel_attention_tcn",
    params={**_TCN_PARAMS, "d_model": 256, **_TAIL_PARAMS},
    blocks=_tcn_blocks(lambda hp: {"type": "channel_attention", "d_model": hp["d_model"]}),
    doc="""ABAW5 CAN: one TCN per modality, End2You channel attention (any number of modalities), linear regressor.

    Parameters
    ----------
    channels, kernel_size, dropout, causal:
        As for ``leader_follower_tcn``.
    d_model:
        Channels per modality in the attention (paper silent; 256 is End2You's default).""" + _LATE_DOC),
    "ChannelAttentionTCNModel")

AFGJDEVModel = _named(Preset(
    name="afg_jdev",
    params={"structure": "parallel", "d_model": 256, "primary": None, "encoder": None, "n_classes": 6,
            "emotion": None, "valence": None, "pool": "none", "dropout": 0.0, "mask_inputs": True, "head": None,
            "scaled_scores": True},
    blocks=lambda hp: {
        "fusion": {"type": "afg", "d_model": hp["d_model"], "structure": hp["structure"], "primary": hp["primary"],
                   "dropout": hp["dropout"], "scaled_scores": hp["scaled_scores"]},
        "encoder": hp["encoder"] or {"type": "identity"},
        "mask_inputs": hp["mask_inputs"],
        "head": hp["head"] or {"type": "jdev", "n_classes": hp["n_classes"], "emotion": hp["emotion"],
                               "valence": hp["valence"], "pool": hp["pool"]}},
    doc="""MER 2023 system: AFG feature fusion (three structures) + joint decoding of emotion and valence (JDEV).

    Targets: exactly two, the emotion class and valence (``emotion``/``valence`` say which; default first/second).
    Output columns: ``n_classes`` emotion logits and one valence value, in target order. MER 2023 works on clips:
    with ``data.task: clip`` the data layer mean-pools each clip's features into one step (keep ``pool: none``);
    on sequences, ``pool: mean`` pools inside the model and ``pool: none`` gives a frame-level classifier/regressor.
    Train it with :class:`affectflow.training.multitask.MultitaskLoss` (``training.multitask: mer2023``: CE + MSE,
    Eq. 9).

    Parameters
    ----------
    structure:
        ``parallel``, ``pairwise`` or ``hierarchical`` (the paper's structures 1-3).
    d_model:
        Aligned width ``D`` (paper silent; 256 is our choice).
    primary:
        The acoustic feature sets (the rest are visual); ``None`` = the first set.
    encoder:
        Temporal encoder after the fusion (default ``{type: identity}``: none, as in the paper).
    n_classes, emotion, valence, pool:
        JDEV head.
    dropout:
        Dropout on the fused features.
    mask_inputs:
        Append feature-set step masks.
    head:
        A complete head config replacing the JDEV head built from ``n_classes``, ``emotion``, ``valence`` and
        ``pool`` (the data layer fills one in from the targets' classes).
    scaled_scores:
        AFG attention scores divided by ``√D`` (:class:`~affectflow.models.fusion.AFGUnit`; default true).
    """), "AFGJDEVModel")
