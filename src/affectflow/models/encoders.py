"""Temporal encoders: ``(B, T, D)`` features plus a step mask → ``(B, T, H)`` hidden states.

Every encoder is an ``nn.Module`` registered in :data:`ENCODERS` and built from its input width plus keyword
hyperparameters::

    enc = ENCODERS.build("lstm", {"hidden_size": 64}, input_dim=123)
    h = enc(x, mask)          # x: (B, T, 123) float, mask: (B, T) bool (True on real steps, a prefix of each row)
    enc.output_dim            # H = 64
    enc.causal                # True: the output at step t depends on steps <= t only

Padded steps never leak into real ones: RNNs run on packed sequences (:func:`~affectflow.models.rnn.run_rnn`), padded steps are set to zero before every
convolution (so a padded step looks exactly like the convolution's own zero padding), attention uses a key padding
mask, and pooling (squeeze-excitation) and batch statistics are taken over real steps only. Outputs at padded
steps are unspecified. Attention layers are :class:`affectflow.models.attention.MultiheadAttention` (PyTorch's, with
an ONNX-exportable forward), so every encoder exports as it is (:mod:`affectflow.export.onnx`).

=====================  ==========================================================================================
name                   architecture
=====================  ==========================================================================================
``identity``           no temporal model (output = input); for clip-level or per-step models
``gru``                GRU (layers, bidirectional), packed sequences
``lstm``               LSTM (layers, bidirectional), packed sequences
``self_attention``     stacked multi-head self-attention, Eq. 1-2 of the MuSe 2021 stress paper (Ma et al.)
``sa_lstm``            self-attention then a unidirectional LSTM, MuSe 2021 stress paper 4.1 (Eq. 1-6)
``gated_conv``         stacked gated 1-D convolutions, Eq. 15 of the same paper (4.2)
``gcnn_lstm``          gated convolutions then an LSTM, same paper 4.2 (Eq. 15-18)
``transformer``        Transformer encoder (input projection, sinusoidal positions, key padding / causal mask)
``tcn``                temporal convolutional network (Bai et al. 2018) as in the ABAW5 paper (Zhang et al.)
``mbconv``             1-D EfficientNet-style stack: stem conv, MBConv blocks (expand, depthwise conv, SE, project,
                       residual); MuSe 2021 Sent paper (Jiang et al.) replaces EfficientNetV2's 2-D convs with 1-D
``way1`` … ``way6``    the six hybrid temporal models of the Sent paper (section III.D.1):
                       Way1 Transformer; Way2 Self-Attention + Bi-LSTM; Way3 Transformer + Bi-LSTM;
                       Way4 EfficientNet + Bi-LSTM; Way5 Self-Attention + EfficientNet + Bi-LSTM;
                       Way6 Transformer + EfficientNet + Bi-LSTM
``stack``              any sequence of the above, e.g. ``{type: stack, stages: [{type: tcn}, {type: lstm}]}``
=====================  ==========================================================================================

The ``causal`` flag: RNNs are causal unless bidirectional; attention, convolutions and squeeze-excitation take a
``causal`` argument (causal attention mask, left-only padding, running mean instead of the global mean). Batch
normalisation (MBConv) uses batch statistics in training mode, so causality holds at inference (``eval()``), which is
where streaming needs it.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.models.attention import MultiheadAttention
from affectflow.models.presets import Preset, preset_class
from affectflow.models.rnn import batch_first_rnn, run_rnn
from affectflow.registry import MODEL_PARAM_RULES, Registry

ENCODERS: Registry[nn.Module] = Registry("encoder", data_args=("input_dim",), param_rules=MODEL_PARAM_RULES)
"""All registered temporal encoders (data-derived argument: ``input_dim``)."""


# ---------------------------------------------------------------------------- mask helpers
def zero_padded(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, T, C)`` with every padded step (``mask`` False) set to zero."""
    return x * mask.unsqueeze(-1).to(x.dtype)


def _channels_first_zero(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, C, T)`` with padded steps set to zero."""
    return x * mask.unsqueeze(1).to(x.dtype)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """Mean of ``x`` ``(B, T, C)`` over real steps.

    Returns ``(B, 1, C)``; with ``causal`` a ``(B, T, C)`` running mean over real steps ``<= t``.
    """
    m = mask.unsqueeze(-1).to(x.dtype)
    if causal:
        return torch.cumsum(x * m, 1) / torch.cumsum(m, 1).clamp(min=1.0)
    return (x * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)


def last_valid(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, T, C)`` at each row's last real step: ``(B, 1, C)``."""
    idx = (mask.sum(1).clamp(min=1) - 1).long()
    return x[torch.arange(x.shape[0], device=x.device), idx].unsqueeze(1)


def key_padding_mask(mask: torch.Tensor) -> torch.Tensor:
    """Key padding mask for attention (True = ignore); the first key is always kept so no row is all masked."""
    kpm = ~mask
    kpm[:, 0] = False
    return kpm


def causal_attention_mask(t: int, device: torch.device) -> torch.Tensor:
    """``(T, T)`` bool mask, True above the diagonal (query ``i`` may not attend to key ``j > i``)."""
    return torch.triu(torch.ones(t, t, dtype=torch.bool, device=device), diagonal=1)


def sinusoidal_positions(t: int, d: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Vaswani et al. positional encoding ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(...)``: ``(T, d)``."""
    pos = torch.arange(t, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(t, d, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return pe.to(dtype)


def _check_positive(name: str, **values: Any) -> None:
    for k, v in values.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            if not v or any((not isinstance(i, int)) or i < 1 for i in v):
                raise ConfigError(f"{name}: `{k}` must be a non-empty list of positive integers, got {v!r}.")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ConfigError(f"{name}: `{k}` must be positive, got {v!r}.")


def _check_dropout(name: str, p: float) -> None:
    if not 0.0 <= float(p) < 1.0:
        raise ConfigError(f"{name}: `dropout` must be in [0, 1), got {p!r}.")


class Encoder(nn.Module):
    """Base class: ``forward(x (B, T, input_dim), mask (B, T)) -> (B, T, output_dim)``."""

    name: str = ""
    input_dim: int
    output_dim: int
    _causal: bool = False  # set by encoders with a ``causal`` argument

    @property
    def causal(self) -> bool:
        """True when the output at step ``t`` depends on steps ``<= t`` only (in ``eval()`` mode)."""
        return self._causal

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


# ---------------------------------------------------------------------------- identity
@ENCODERS.register
class IdentityEncoder(Encoder):
    """No temporal modelling: the output is the input (``H = D``). For clip-level models and per-step baselines."""

    name = "identity"

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.input_dim = self.output_dim = int(input_dim)

    @property
    def causal(self) -> bool:
        return True

    def forward(self, x, mask):
        return x


# ---------------------------------------------------------------------------- RNNs
class _RNNEncoder(Encoder):
    """A GRU/LSTM (``cell``) over the real steps (:func:`~affectflow.models.rnn.run_rnn`).

    Parameters
    ----------
    input_dim:
        Input width ``D``.
    hidden_size:
        Hidden width per direction; ``H = hidden_size · (2 if bidirectional else 1)``.
    num_layers:
        Stacked layers.
    bidirectional:
        Also run backwards, ``h_t = [→h_t; ←h_t]`` (not causal).
    dropout:
        Dropout between layers (``num_layers > 1`` only).
    """

    cell: type[nn.RNNBase]

    def __init__(
        self,
        input_dim: int,
        *,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_positive(self.name, hidden_size=hidden_size, num_layers=num_layers)
        _check_dropout(self.name, dropout)
        self.input_dim = int(input_dim)
        self.rnn = batch_first_rnn(self.cell, input_dim, hidden_size, num_layers=num_layers,
                                   bidirectional=bidirectional, dropout=dropout)
        self.output_dim = hidden_size * (2 if bidirectional else 1)

    @property
    def causal(self) -> bool:
        return not self.rnn.bidirectional

    def forward(self, x, mask):
        return run_rnn(self.rnn, x, mask)


@ENCODERS.register
class GRUEncoder(_RNNEncoder):
    """GRU over packed sequences (parameters: see :class:`_RNNEncoder`)."""

    name = "gru"
    cell = nn.GRU


@ENCODERS.register
class LSTMEncoder(_RNNEncoder):
    """LSTM over packed sequences (Eq. 4-5 of the MuSe 2021 stress paper; Eq. 5-8 of the Sent paper when bidirectional;
    parameters: see :class:`_RNNEncoder`)."""

    name = "lstm"
    cell = nn.LSTM


# ---------------------------------------------------------------------------- self-attention
@ENCODERS.register
class SelfAttentionEncoder(Encoder):
    """Stacked multi-head self-attention (MuSe 2021 stress paper, Eq. 1-2; Sent paper Eq. 2-4 with ``Q = K = V``).

    Each layer computes ``C = MH(X, X, X)``, ``MH = concat(head_1..head_h) W_h``,
    ``head_i = softmax(X W_i^Q (X W_i^K)^T / sqrt(d_k)) X W_i^V`` with ``d_k = d_attn / h``. As in the stress
    paper, by default the attention works at the input width (``d_attn = D``, which must then be divisible by
    ``num_heads``) and there is no residual connection or normalisation; ``residual``/``layer_norm`` add them.

    Parameters
    ----------
    input_dim:
        Input width ``D``.
    num_heads:
        Attention heads ``h`` (the stress paper uses 4 or 8; the Sent paper 4).
    num_layers:
        Stacked attention layers (stress paper: 1, 2 or 4).
    d_attn:
        Attention width; ``None`` = ``D``. Otherwise a linear layer first projects ``D → d_attn``
        (the Sent paper's self-attention has hidden size 64).
    dropout:
        Dropout on the attention weights.
    causal:
        Mask keys after the query step (no look-ahead).
    residual:
        Add the layer input to its output.
    layer_norm:
        Layer-normalise each layer's output.
    """

    name = "self_attention"

    def __init__(
        self,
        input_dim: int,
        *,
        num_heads: int = 4,
        num_layers: int = 1,
        d_attn: int | None = None,
        dropout: float = 0.0,
        causal: bool = False,
        residual: bool = False,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(self.name, num_heads=num_heads, num_layers=num_layers, d_attn=d_attn)
        _check_dropout(self.name, dropout)
        self.input_dim = int(input_dim)
        d = self.input_dim if d_attn is None else int(d_attn)
        if d % num_heads:
            raise ConfigError(
                f"{self.name}: the attention width {d} ({'the input width' if d_attn is None else '`d_attn`'}) is not "
                f"divisible by `num_heads` {num_heads}; set `d_attn` to a multiple of `num_heads` (e.g. "
                f"{num_heads * max(1, round(d / num_heads))})."
            )
        self.proj = nn.Linear(self.input_dim, d) if d_attn is not None else None
        self.layers = nn.ModuleList(
            [
                MultiheadAttention(d, num_heads, dropout=dropout, batch_first=True)
                for _ in range(num_layers)
            ]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(num_layers)]) if layer_norm else None
        self.residual = residual
        self._causal = causal
        self.output_dim = d

    def forward(self, x, mask):
        h = self.proj(x) if self.proj is not None else x
        kpm = key_padding_mask(mask)
        am = causal_attention_mask(x.shape[1], x.device) if self._causal else None
        for i, att in enumerate(self.layers):
            out, _ = att(h, h, h, key_padding_mask=kpm, attn_mask=am, need_weights=False)
            h = h + out if self.residual else out
            if self.norms is not None:
                h = self.norms[i](h)
        return h


# ---------------------------------------------------------------------------- convolutions
class _MaskedConv1d(nn.Module):
    """1-D convolution over ``(B, C, T)`` with padded steps zeroed first and causal (left) or centred padding."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        *,
        dilation: int = 1,
        groups: int = 1,
        causal: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation, groups=groups, bias=bias)
        total = (kernel_size - 1) * dilation
        self.pad = (total, 0) if causal else (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = _channels_first_zero(x, mask)
        return self.conv(nn.functional.pad(x, self.pad))


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """Batch normalisation over ``(B, C, T)`` whose batch statistics use real steps only.

    In training mode the mean and (biased) variance per channel are taken over the real steps of the batch and the
    running statistics are updated with the unbiased variance, as :class:`torch.nn.BatchNorm1d` does; in eval mode
    the running statistics are used. So extra padding changes nothing.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not self.training and self.track_running_stats:
            return super().forward(x)  # running statistics: no dependence on other steps
        m = mask.unsqueeze(1).to(x.dtype)
        n = m.sum().clamp(min=1.0)
        mean = (x * m).sum((0, 2)) / n
        var = (((x - mean[None, :, None]) ** 2) * m).sum((0, 2)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                mom = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * n / (n - 1).clamp(min=1.0)
                self.running_mean.mul_(1 - mom).add_(mom * mean)
                self.running_var.mul_(1 - mom).add_(mom * unbiased)
        y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None] + self.bias[None, :, None]
        return y


class _GatedConvBlock(nn.Module):
    """``G = conv(X, W) ⊙ sigmoid(conv(X, Z))`` (Eq. 15)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, causal: bool) -> None:
        super().__init__()
        self.value = _MaskedConv1d(c_in, c_out, kernel_size, causal=causal)
        self.gate = _MaskedConv1d(c_in, c_out, kernel_size, causal=causal)

    def forward(self, x, mask):
        return self.value(x, mask) * torch.sigmoid(self.gate(x, mask))


@ENCODERS.register
class GatedConvEncoder(Encoder):
    """Stacked gated 1-D convolutions (GCNN), MuSe 2021 stress paper 4.2, Eq. 15.

    ``G = conv(X, W) ⊙ sigm(conv(X, Z))`` per block, ``W, Z ∈ R^{k × d_in × d_n}``. The paper states neither the
    kernel size nor residual connections; we use ``kernel_size = 3`` and plain stacking (no residual).

    Parameters
    ----------
    input_dim:
        Input width ``D``.
    channels:
        Convolution channels ``d_n`` (paper: 64 or 128) = output width ``H``.
    kernel_size:
        Convolution kernel in steps.
    num_layers:
        Stacked gated blocks.
    dropout:
        Dropout after each block.
    causal:
        Left-only padding (no look-ahead).
    """

    name = "gated_conv"

    def __init__(
        self,
        input_dim: int,
        *,
        channels: int = 64,
        kernel_size: int = 3,
        num_layers: int = 1,
        dropout: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(self.name, channels=channels, kernel_size=kernel_size, num_layers=num_layers)
        _check_dropout(self.name, dropout)
        self.input_dim = int(input_dim)
        self.blocks = nn.ModuleList(
            [
                _GatedConvBlock(input_dim if i == 0 else channels, channels, kernel_size, causal)
                for i in range(num_layers)
            ]
        )
        self.drop = nn.Dropout(dropout)
        self._causal = causal
        self.output_dim = channels

    def forward(self, x, mask):
        h = x.transpose(1, 2)
        for block in self.blocks:
            h = self.drop(block(h, mask))
        return h.transpose(1, 2)


class _TemporalBlock(nn.Module):
    """TCN residual block: two dilated convolutions (weight norm, PReLU, dropout) plus a 1×1 residual projection."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        dilation: int,
        dropout: float,
        causal: bool,
        weight_norm: bool,
    ) -> None:
        super().__init__()
        self.conv1 = _MaskedConv1d(c_in, c_out, kernel_size, dilation=dilation, causal=causal)
        self.conv2 = _MaskedConv1d(c_out, c_out, kernel_size, dilation=dilation, causal=causal)
        for c in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(c.conv.weight, gain=math.sqrt(2.0))
            if weight_norm:
                nn.utils.parametrizations.weight_norm(c.conv)
        self.act1, self.act2, self.act = nn.PReLU(), nn.PReLU(), nn.PReLU()
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.downsample = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None
        if self.downsample is not None:
            nn.init.xavier_uniform_(self.downsample.weight, gain=math.sqrt(2.0))

    def forward(self, x, mask):
        h = self.drop1(self.act1(self.conv1(x, mask)))
        h = self.drop2(self.act2(self.conv2(h, mask)))
        res = x if self.downsample is None else self.downsample(x)
        return self.act(h + res)


@ENCODERS.register
class TCNEncoder(Encoder):
    """Temporal convolutional network (Bai et al. 2018), the temporal branch of the ABAW5 paper's LFAN and CAN.

    Level ``i`` (``i = 0..L-1``) is a residual block of two convolutions with dilation ``2^i``, weight
    normalisation, PReLU and dropout; a 1×1 convolution matches widths on the residual path. Causal padding is
    ``(k-1)·2^i`` steps on the left (the "chomp" of the reference implementation); non-causal padding is centred.
    Receptive field: ``1 + 2 (k-1) (2^L - 1)`` steps.

    Parameters
    ----------
    input_dim:
        Input width ``D``.
    channels:
        Output channels per level (the authors' code: ``[512, 256, 256, 128]`` for visual features,
        ``[32, 32, 32, 32]`` for audio ones); ``H = channels[-1]``.
    kernel_size:
        Kernel size ``k`` (the authors' code: 5).
    dropout:
        Dropout in each block (the authors' code: 0.1).
    causal:
        Left-only padding (no look-ahead). The ABAW code is causal.
    weight_norm:
        Weight-normalise the dilated convolutions.
    """

    name = "tcn"

    def __init__(
        self,
        input_dim: int,
        *,
        channels: list[int] = (64, 64, 64, 64),
        kernel_size: int = 5,
        dropout: float = 0.1,
        causal: bool = True,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        channels = list(channels)
        _check_positive(self.name, channels=channels, kernel_size=kernel_size)
        _check_dropout(self.name, dropout)
        self.input_dim = int(input_dim)
        self.blocks = nn.ModuleList(
            [
                _TemporalBlock(
                    input_dim if i == 0 else channels[i - 1],
                    c,
                    kernel_size,
                    2**i,
                    dropout,
                    causal,
                    weight_norm,
                )
                for i, c in enumerate(channels)
            ]
        )
        self._causal = causal
        self.output_dim = channels[-1]

    def forward(self, x, mask):
        h = x.transpose(1, 2)
        for block in self.blocks:
            h = block(h, mask)
        return h.transpose(1, 2)


class _SqueezeExcite(nn.Module):
    """Squeeze-excitation over time: ``x · sigmoid(W2 SiLU(W1 mean_t(x)))``; causal = running mean."""

    def __init__(self, channels: int, squeezed: int, causal: bool) -> None:
        super().__init__()
        self.reduce = nn.Linear(channels, squeezed)
        self.expand = nn.Linear(squeezed, channels)
        self.causal = causal

    def forward(self, x, mask):  # x: (B, C, T)
        s = masked_mean(x.transpose(1, 2), mask, causal=self.causal)  # (B, 1 or T, C)
        s = torch.sigmoid(self.expand(nn.functional.silu(self.reduce(s))))
        return x * s.transpose(1, 2)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck (EfficientNet): 1×1 expand → depthwise conv → SE → 1×1 project (+ residual)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        expand_ratio: int,
        kernel_size: int,
        se_ratio: float,
        dropout: float,
        causal: bool,
    ) -> None:
        super().__init__()
        hidden = c_in * expand_ratio
        self.expand = nn.Conv1d(c_in, hidden, 1, bias=False) if expand_ratio != 1 else None
        self.bn0 = MaskedBatchNorm1d(hidden) if expand_ratio != 1 else None
        self.depthwise = _MaskedConv1d(hidden, hidden, kernel_size, groups=hidden, causal=causal, bias=False)
        self.bn1 = MaskedBatchNorm1d(hidden)
        self.se = _SqueezeExcite(hidden, max(1, int(c_in * se_ratio)), causal) if se_ratio > 0 else None
        self.project = nn.Conv1d(hidden, c_out, 1, bias=False)
        self.bn2 = MaskedBatchNorm1d(c_out)
        self.drop = nn.Dropout(dropout)
        self.residual = c_in == c_out

    def forward(self, x, mask):
        h = x
        if self.expand is not None:
            h = nn.functional.silu(self.bn0(self.expand(h), mask))
        h = nn.functional.silu(self.bn1(self.depthwise(h, mask), mask))
        if self.se is not None:
            h = self.se(h, mask)
        h = self.bn2(self.project(h), mask)
        return x + self.drop(h) if self.residual else h


@ENCODERS.register
class MBConvEncoder(Encoder):
    """1-D EfficientNet-style stack (the "EfficientNet" of the MuSe 2021 Sent paper, 2-D convolutions made 1-D).

    Stem: ``conv_k(D → channels[0])`` + batch norm + SiLU. Then one MBConv block per entry of ``channels``: 1×1
    expansion by ``expand_ratio`` + BN + SiLU, depthwise ``conv_k`` + BN + SiLU, squeeze-excitation (mean over
    time → ``C_in · se_ratio`` → SiLU → sigmoid gates), 1×1 projection + BN, and a residual connection when input
    and output widths agree. Activation SiLU as stated in the Sent paper. The paper gives neither depth nor width of
    its 1-D EfficientNet; the defaults here (three 64-channel blocks, expansion 4, kernel 3, SE 0.25) are our choice.
    Batch norm statistics are over real steps only (:class:`MaskedBatchNorm1d`).

    Parameters
    ----------
    input_dim:
        Input width ``D``.
    channels:
        Output width of each MBConv block; ``H = channels[-1]``. The stem outputs ``channels[0]``.
    expand_ratio:
        Expansion factor of the inverted bottleneck.
    kernel_size:
        Kernel of the stem and the depthwise convolutions.
    se_ratio:
        Squeeze width relative to the block's input width (0 disables SE).
    dropout:
        Dropout on the residual branch.
    causal:
        Left-only padding and a running-mean SE (no look-ahead in ``eval()`` mode).
    """

    name = "mbconv"

    def __init__(
        self,
        input_dim: int,
        *,
        channels: list[int] = (64, 64, 64),
        expand_ratio: int = 4,
        kernel_size: int = 3,
        se_ratio: float = 0.25,
        dropout: float = 0.1,
        causal: bool = False,
    ) -> None:
        super().__init__()
        channels = list(channels)
        _check_positive(self.name, channels=channels, expand_ratio=expand_ratio, kernel_size=kernel_size)
        _check_dropout(self.name, dropout)
        if not 0 <= se_ratio <= 1:
            raise ConfigError(f"{self.name}: `se_ratio` must be in [0, 1], got {se_ratio!r}.")
        self.input_dim = int(input_dim)
        self.stem = _MaskedConv1d(input_dim, channels[0], kernel_size, causal=causal, bias=False)
        self.stem_bn = MaskedBatchNorm1d(channels[0])
        self.blocks = nn.ModuleList(
            [
                _MBConv(channels[max(i - 1, 0)], c, expand_ratio, kernel_size, se_ratio, dropout, causal)
                for i, c in enumerate(channels)
            ]
        )
        self._causal = causal
        self.output_dim = channels[-1]

    def forward(self, x, mask):
        h = nn.functional.silu(self.stem_bn(self.stem(x.transpose(1, 2), mask), mask))
        for block in self.blocks:
            h = block(h, mask)
        return h.transpose(1, 2)


# ---------------------------------------------------------------------------- transformer
@ENCODERS.register
class TransformerEncoder(Encoder):
    """Transformer encoder (Vaswani et al.): input projection, sinusoidal positions, post-norm layers.

    Each layer: multi-head self-attention (Eq. 2-4 of the Sent paper) and a position-wise feed-forward network
    (ReLU), each with a residual connection and layer norm. Padded keys are masked; ``causal`` also masks keys after
    the query step.

    Parameters
    ----------
    input_dim:
        Input width ``D`` (projected to ``d_model`` by a linear layer).
    d_model:
        Model width ``H``.
    num_heads:
        Attention heads.
    num_layers:
        Encoder layers.
    dim_feedforward:
        Hidden width of the feed-forward network.
    dropout:
        Dropout in attention and feed-forward sublayers.
    causal:
        No look-ahead.
    positional:
        Add sinusoidal positional encodings after the input projection.
    """

    name = "transformer"

    def __init__(
        self,
        input_dim: int,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        causal: bool = False,
        positional: bool = True,
    ) -> None:
        super().__init__()
        _check_positive(
            self.name,
            d_model=d_model,
            num_heads=num_heads,
            num_layers=num_layers,
            dim_feedforward=dim_feedforward,
        )
        _check_dropout(self.name, dropout)
        if d_model % num_heads:
            raise ConfigError(
                f"{self.name}: `d_model` {d_model} is not divisible by `num_heads` {num_heads}."
            )
        self.input_dim = int(input_dim)
        self.proj = nn.Linear(input_dim, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            num_heads,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation="relu",
            batch_first=True,
        )
        MultiheadAttention.adopt(layer.self_attn)  # exportable with dynamic axes; same module otherwise
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.positional = positional
        self._causal = causal
        self.output_dim = d_model

    def forward(self, x, mask):
        h = self.proj(x)
        if self.positional:
            h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device, h.dtype)
        am = causal_attention_mask(h.shape[1], h.device) if self._causal else None
        return self.encoder(h, mask=am, src_key_padding_mask=key_padding_mask(mask))


# ---------------------------------------------------------------------------- stacks
class _StackBase(Encoder):
    """Encoders applied one after the other."""

    def _set_stages(self, input_dim: int, stages: list[tuple[str, dict[str, Any]]]) -> None:
        self.input_dim = int(input_dim)
        mods = []
        d = self.input_dim
        for kind, params in stages:
            enc = ENCODERS.build(kind, params, input_dim=d)
            mods.append(enc)
            d = enc.output_dim
        self.stages = nn.ModuleList(mods)
        self.output_dim = d

    @property
    def causal(self) -> bool:
        return all(s.causal for s in self.stages)

    def forward(self, x, mask):
        for s in self.stages:
            x = s(x, mask)
        return x


@ENCODERS.register
class StackEncoder(_StackBase):
    """Any sequence of registered encoders, e.g. ``stages: [{type: gated_conv, channels: 64}, {type: lstm}]``.

    Parameters
    ----------
    input_dim:
        Input width of the first stage.
    stages:
        Encoder configs (``type`` plus that encoder's hyperparameters), applied in order.
    """

    name = "stack"

    def __init__(self, input_dim: int, *, stages: list[dict[str, Any]] = ({"type": "lstm"},)) -> None:
        super().__init__()
        stages = list(stages)
        if not stages:
            raise ConfigError("stack: `stages` is empty; give at least one encoder config.")
        parsed = []
        for i, st in enumerate(stages):
            if not isinstance(st, dict) or "type" not in st:
                raise ConfigError(
                    f"stack: `stages[{i}]` must be a mapping with a `type` key, got {st!r}; "
                    f"valid encoders: {ENCODERS.names()}."
                )
            params = {k: v for k, v in st.items() if k != "type"}
            parsed.append((st["type"], params))
        self._set_stages(input_dim, parsed)


# ---------------------------------------------------------------------------- named stacks (presets)
def _needs_unidirectional(name: str) -> Callable[[dict[str, Any]], None]:
    def check(hp: dict[str, Any]) -> None:
        if hp["causal"] and hp["bidirectional"]:
            raise ConfigError(f"{name}: `causal` needs `bidirectional: false` (a backward LSTM looks ahead).")

    return check


def _stack_preset(preset: Preset, class_name: str) -> type:
    """Register ``preset`` (``blocks(hp)`` → ``{"stages": [(type, params), ...]}``) as a stack encoder."""

    def build(self: _StackBase, input_dim: int, hp: dict[str, Any]) -> None:
        _StackBase.__init__(self)
        self._set_stages(input_dim, preset.blocks(hp)["stages"])

    return ENCODERS.register(preset_class(_StackBase, preset, ("input_dim",), build, class_name))


def _lstm_stage(hp: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("lstm", {"hidden_size": hp["hidden_size"], "num_layers": hp["lstm_layers"],
                     "bidirectional": hp["bidirectional"], "dropout": hp["dropout"]})


SelfAttentionLSTMEncoder = _stack_preset(Preset(
    name="sa_lstm",
    params={"num_heads": 4, "attn_layers": 1, "d_attn": None, "hidden_size": 128, "lstm_layers": 2,
            "bidirectional": False, "dropout": 0.0, "causal": False},
    blocks=lambda hp: {"stages": [
        ("self_attention", {"num_heads": hp["num_heads"], "num_layers": hp["attn_layers"], "d_attn": hp["d_attn"],
                            "dropout": hp["dropout"], "causal": hp["causal"]}),
        _lstm_stage(hp)]},
    check=_needs_unidirectional("sa_lstm"),
    doc="""Self-attention followed by an LSTM: the MuSe 2021 stress paper's "Self-Attn+LSTM" (4.1, Eq. 1-6).

    ``C = ATT(X)`` at the input width (Eq. 1-3), then ``H = LSTM(C)`` (Eq. 4-6). Paper setting: heads 4 or 8,
    attention layers 1, 2 or 4, a unidirectional LSTM of 2 or 4 layers with hidden size 64, 128 or 256. A preset of
    ``stack``: ``[self_attention, lstm]``.

    Parameters
    ----------
    input_dim:
        Input width ``D``.
    num_heads, attn_layers, d_attn:
        Self-attention heads, layers and width (``None`` = ``D``, see :class:`SelfAttentionEncoder`).
    hidden_size, lstm_layers, bidirectional:
        LSTM (unidirectional in the paper).
    dropout:
        Attention-weight dropout and dropout between LSTM layers.
    causal:
        Causal attention mask (requires ``bidirectional=False`` for a causal encoder).
    """), "SelfAttentionLSTMEncoder")

GatedConvLSTMEncoder = _stack_preset(Preset(
    name="gcnn_lstm",
    params={"channels": 64, "kernel_size": 3, "conv_layers": 1, "hidden_size": 128, "lstm_layers": 1,
            "bidirectional": False, "dropout": 0.0, "causal": False},
    blocks=lambda hp: {"stages": [
        ("gated_conv", {"channels": hp["channels"], "kernel_size": hp["kernel_size"], "num_layers": hp["conv_layers"],
                        "dropout": hp["dropout"], "causal": hp["causal"]}),
        _lstm_stage(hp)]},
    check=_needs_unidirectional("gcnn_lstm"),
    doc="""Gated convolutions followed by an LSTM: the MuSe 2021 stress paper's "GCNN+LSTM" (4.2, Eq. 15-18).

    Paper setting: 64 or 128 convolution channels, a unidirectional LSTM with hidden size 128, 256 or 1024. A
    preset of ``stack``: ``[gated_conv, lstm]``.

    Parameters
    ----------
    input_dim:
        Input width ``D``.
    channels, kernel_size, conv_layers:
        Gated convolution blocks (see :class:`GatedConvEncoder`).
    hidden_size, lstm_layers, bidirectional:
        LSTM.
    dropout:
        Dropout after the gated blocks and between LSTM layers.
    causal:
        Left-only convolution padding (requires ``bidirectional=False`` for a causal encoder).
    """), "GatedConvLSTMEncoder")


# ---------------------------------------------------------------------------- the six hybrids of the Sent paper
_WAY_DOC = """

    Hyperparameters stated in the paper (IV.B): hidden size 64 for the self-attention and the Bi-LSTM (per
    direction), Transformer feed-forward width 128 and 4 heads, SiLU in EfficientNet and ReLU elsewhere. The paper
    describes the Transformer encoder as six identical layers (III.D.1), hence ``transformer_layers = 6``. It is
    silent on dropout and the EfficientNet's depth and width: dropout 0.1 and three 64-channel MBConv blocks with
    expansion 4 and kernel 3 are our choice.
"""

#: The stages of the Sent paper's hybrids (section III.D.1): stage type → its hyperparameters (with defaults) and
#: how they map onto the stage's encoder.
_WAY_STAGES: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]]] = {
    "sa": ({"d_model": 64, "num_heads": 4},
           lambda hp: ("self_attention", {"num_heads": hp["num_heads"], "num_layers": 1, "d_attn": hp["d_model"],
                                          "dropout": hp["dropout"]})),
    "transformer": ({"d_model": 64, "num_heads": 4, "dim_feedforward": 128, "transformer_layers": 6},
                    lambda hp: ("transformer", {"d_model": hp["d_model"], "num_heads": hp["num_heads"],
                                                "num_layers": hp["transformer_layers"],
                                                "dim_feedforward": hp["dim_feedforward"], "dropout": hp["dropout"],
                                                "causal": hp.get("causal", False)})),
    "mbconv": ({"mbconv_channels": (64, 64, 64), "expand_ratio": 4, "kernel_size": 3},
               lambda hp: ("mbconv", {"channels": list(hp["mbconv_channels"]), "expand_ratio": hp["expand_ratio"],
                                      "kernel_size": hp["kernel_size"], "dropout": hp["dropout"]})),
    "bilstm": ({"lstm_hidden": 64, "lstm_layers": 1},
               lambda hp: ("lstm", {"hidden_size": hp["lstm_hidden"], "num_layers": hp["lstm_layers"],
                                    "bidirectional": True, "dropout": hp["dropout"]})),
}

#: Way n → (its stages, one line of description).
WAYS: dict[int, tuple[tuple[str, ...], str]] = {
    1: (("transformer",), "a Transformer encoder (``H = d_model``)"),
    2: (("sa", "bilstm"), "Self-Attention (width ``d_model``) + Bi-LSTM (``H = 2 · lstm_hidden``)"),
    3: (("transformer", "bilstm"), "Transformer + Bi-LSTM (``H = 2 · lstm_hidden``)"),
    4: (("mbconv", "bilstm"), "1-D EfficientNet (MBConv stack) + Bi-LSTM (``H = 2 · lstm_hidden``)"),
    5: (("sa", "mbconv", "bilstm"), "Self-Attention → 1-D EfficientNet → Bi-LSTM (``H = 2 · lstm_hidden``)"),
    6: (("transformer", "mbconv", "bilstm"), "Transformer → 1-D EfficientNet → Bi-LSTM (``H = 2 · lstm_hidden``)"),
}


def _way_preset(n: int) -> Preset:
    stages, what = WAYS[n]
    params: dict[str, Any] = {}
    for st in stages:
        params.update(_WAY_STAGES[st][0])
    params["dropout"] = 0.1
    if stages == ("transformer",):
        params["causal"] = False  # Way1 alone may be causal (no Bi-LSTM after it)
    return Preset(name=f"way{n}", params=params,
                  blocks=lambda hp: {"stages": [_WAY_STAGES[st][1](hp) for st in stages]},
                  doc=f"Way{n} of the Sent paper: {what}." + _WAY_DOC)


Way1Encoder, Way2Encoder, Way3Encoder, Way4Encoder, Way5Encoder, Way6Encoder = (
    _stack_preset(_way_preset(n), f"Way{n}Encoder") for n in WAYS)
