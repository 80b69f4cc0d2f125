"""Multi-head attention that also exports to ONNX with dynamic batch and time axes.

:class:`MultiheadAttention` **is** ``torch.nn.MultiheadAttention`` (same constructor, parameters, state-dict names
and, outside an ONNX export, the same forward). The encoders use it for their attention layers (the
self-attention encoder's layers and the Transformer encoder's ``self_attn``), so an export traces the modules the
model trains with.

Why a subclass
    PyTorch's attention folds the batch and head axes into one with sizes that the TorchScript-based ONNX exporter
    records as constants, so the exported graph fails for another batch size or sequence length. While
    ``torch.onnx.is_in_onnx_export()`` is true, :meth:`MultiheadAttention.forward` computes the same softmax
    attention with shape-generic operators instead (:func:`attention_forward`: per-head split by a reshape with
    ``-1``)::

        head_i = softmax(Q_i K_iᵀ / √d_h + mask) V_i,    d_h = embed_dim / num_heads
        out    = concat(head_1 .. head_h) W_o + b_o

    Masks as PyTorch: a bool mask is True where attention is **not** allowed, a float mask is added to the scores;
    ``is_causal`` without a mask is the upper-triangular mask. Attention-weight dropout is off (exports are of
    ``eval()`` models). ``tests/models/test_attention.py`` checks it equals ``nn.MultiheadAttention``.
"""

from __future__ import annotations

import torch
from torch import nn


def attention_forward(mha: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      key_padding_mask: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                      is_causal: bool = False) -> torch.Tensor:
    """The attention output of ``mha`` (its own weights, no dropout) with shape-generic operators.

    ``query``/``key``/``value``: ``(B, L, E)`` / ``(B, S, E)`` when ``mha.batch_first``, else ``(L, B, E)`` /
    ``(S, B, E)``; ``key_padding_mask`` ``(B, S)``; ``attn_mask`` ``(L, S)`` or ``(B·h, L, S)``. Returns the output
    in the query's layout.
    """
    if not mha.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    e, h = mha.embed_dim, mha.num_heads
    if mha._qkv_same_embed_dim:
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    else:
        w_q, w_k, w_v = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
    b_q = b_k = b_v = None
    if mha.in_proj_bias is not None:
        b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    hd = e // h

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], -1, h, hd).transpose(1, 2)  # (B, h, L, hd)

    q = split(nn.functional.linear(query, w_q, b_q))
    k = split(nn.functional.linear(key, w_k, b_k))
    v = split(nn.functional.linear(value, w_v, b_v))
    scores = torch.matmul(q, k.transpose(-2, -1)) / float(hd) ** 0.5  # (B, h, L, S)
    if attn_mask is None and is_causal:
        attn_mask = torch.triu(torch.ones(scores.shape[-2], scores.shape[-1], dtype=torch.bool,
                                          device=scores.device), diagonal=1)
    if attn_mask is not None:
        am = attn_mask if attn_mask.dim() == 2 else attn_mask.reshape(scores.shape[0], h, *attn_mask.shape[-2:])
        scores = scores.masked_fill(am, float("-inf")) if am.dtype == torch.bool else scores + am
    if key_padding_mask is not None:
        kpm = key_padding_mask[:, None, None, :]
        scores = scores.masked_fill(kpm, float("-inf")) if kpm.dtype == torch.bool else scores + kpm
    out = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2)
    out = mha.out_proj(out.reshape(out.shape[0], out.shape[1], e))
    return out if mha.batch_first else out.transpose(0, 1)


class MultiheadAttention(nn.MultiheadAttention):
    """``torch.nn.MultiheadAttention`` whose ONNX export has dynamic batch and time axes (see the module docstring).

    Outside an export the forward is the parent's. During an export the attention weights are not computed
    (the second output is ``None``).
    """

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,  # noqa: ANN001
                average_attn_weights=True, is_causal=False):
        if torch.onnx.is_in_onnx_export():
            return attention_forward(self, query, key, value, key_padding_mask, attn_mask, is_causal), None
        return super().forward(query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights,
                               attn_mask=attn_mask, average_attn_weights=average_attn_weights, is_causal=is_causal)

    @classmethod
    def adopt(cls, mha: nn.MultiheadAttention) -> "MultiheadAttention":
        """Make an existing ``nn.MultiheadAttention`` (e.g. a ``TransformerEncoderLayer``'s ``self_attn``) this
        class in place: same object, parameters and random initialisation; returns it."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"expected an nn.MultiheadAttention, got {type(mha).__name__}")
        mha.__class__ = cls
        return mha
