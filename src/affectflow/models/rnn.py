"""Recurrent layers on padded, masked batches: the one place where a GRU/LSTM meets variable lengths.

::

    out = run_rnn(rnn, x, mask)     # rnn: batch-first nn.GRU/nn.LSTM; x (B, T, D); mask (B, T) bool, a prefix per row
    out                             # (B, T, H·dirs); zero at padded steps

Three paths compute the same function of the real steps:

Forward only (unidirectional RNNs in training and inference; :func:`run_rnn_forward`)
    The module itself over the padded batch, padded output steps zeroed: a forward direction cannot see trailing
    padding, so no packing is needed. Equal to the packed path up to float rounding (the products are grouped
    differently: ≤ 1e-6 here), and much faster on the CPU: packing runs every step as its own slice of the batch,
    and its backward pass was 2.2× slower (4-layer GRU-256, 256 windows × 50 steps, forward + backward; README,
    "Performance").
Packed (bidirectional RNNs in training and inference)
    ``pack_padded_sequence`` → the module → ``pad_packed_sequence``. Each row runs over its own length only, so a
    backward direction starts at the row's last **real** step.
Padded (``torch.export``, hence the ONNX exporter with ``dynamo=True``; :func:`run_rnn_padded`)
    Packing has data-dependent shapes, which ``torch.export`` cannot trace. Instead each layer and direction runs the
    module's **own parameters** over the padded batch through the same ATen operator the module calls
    (``aten::gru`` / ``aten::lstm``, one layer and one direction at a time, exported as the ONNX ``GRU``/``LSTM``
    operators): the forward direction runs over the padded batch (trailing padding cannot change earlier steps); the
    backward direction runs over each row **reversed within its own length** (:func:`reverse_steps`, a gather by
    ``len − 1 − t``), and its output is reversed back. Padded output steps are zeroed, as ``pad_packed_sequence``
    does. Equal at real steps to the packed path (``tests/models/test_rnn.py``: ≤ 1e-6).

:func:`run_rnn` picks the padded path only while ``torch.compiler.is_exporting()`` is true, so the modules that own
the RNNs (:mod:`affectflow.models.encoders`, :mod:`affectflow.models.gru`, :mod:`affectflow.models.fusion`) are
exported as they are, without substitutes or patches.

The per-row reversal (:func:`reversed_steps_index`) is also what a vectorised re-implementation of a bidirectional
RNN needs (e.g. several models stacked along a leading axis): its index has any leading axes.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from affectflow.errors import ConfigError


def batch_first_rnn(cell: type[nn.RNNBase], input_size: int, hidden_size: int, *, num_layers: int = 1,
                    bidirectional: bool = False, dropout: float = 0.0) -> nn.RNNBase:
    """A batch-first ``cell`` (``nn.GRU``, ``nn.LSTM``, ``nn.RNN``) whose inter-layer ``dropout`` applies only with
    ``num_layers > 1`` (PyTorch warns otherwise); output width ``hidden_size · (2 if bidirectional else 1)``."""
    return cell(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                dropout=dropout if num_layers > 1 else 0.0)


def step_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Real steps per row of a ``(..., T)`` step mask, at least 1 (an empty row runs over its first step)."""
    return mask.sum(-1).clamp(min=1)


def reversed_steps_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``(..., T)`` long index that reverses each row within its own length.

    ``idx[..., t] = len − 1 − t`` for ``t < len`` and ``t`` otherwise, for ``lengths`` of any shape ``(...)``: padded
    steps stay in place, and the index is its own inverse (gathering twice gives the input back).
    """
    ar = torch.arange(steps, device=lengths.device)
    n = lengths.to(ar.dtype).unsqueeze(-1)
    return torch.where(ar < n, n - 1 - ar, ar)


def reverse_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x`` ``(..., T, C)`` with its steps gathered by ``index`` ``(..., T)`` (from :func:`reversed_steps_index`)."""
    return torch.gather(x, index.dim() - 1, index.unsqueeze(-1).expand(*index.shape, x.shape[-1]))


def run_rnn_packed(rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run a batch-first RNN on the packed real steps; padded steps of the output are zero."""
    lengths = step_lengths(mask).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


def _direction(rnn: nn.RNNBase, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    """One layer, one direction of ``rnn`` (its own parameters) over ``x`` ``(B, T, D)`` from a zero state."""
    names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
    if rnn.bias:
        names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
    params = [getattr(rnn, n) for n in names]
    h0 = x.new_zeros(1, x.shape[0], rnn.hidden_size)
    if isinstance(rnn, nn.LSTM):
        return torch.ops.aten.lstm.input(x, [h0, h0], params, rnn.bias, 1, 0.0, False, False, True)[0]
    if isinstance(rnn, nn.GRU):
        return torch.ops.aten.gru.input(x, h0, params, rnn.bias, 1, 0.0, False, False, True)[0]
    op = torch.ops.aten.rnn_tanh if rnn.nonlinearity == "tanh" else torch.ops.aten.rnn_relu
    return op.input(x, h0, params, rnn.bias, 1, 0.0, False, False, True)[0]


def run_rnn_padded(rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:func:`run_rnn_packed` without packing (see the module docstring): same values at real steps, zero at padded
    steps, traceable by ``torch.export`` with dynamic batch and time axes.

    Dropout between layers is applied as the module does (training mode and ``num_layers > 1`` only).

    Raises
    ------
    ConfigError
        ``rnn`` is not batch-first, or an LSTM with ``proj_size``.
    """
    if not rnn.batch_first:
        raise ConfigError("run_rnn_padded supports batch-first RNNs only")
    if getattr(rnn, "proj_size", 0):
        raise ConfigError("run_rnn_padded does not support LSTMs with `proj_size`")
    lengths = step_lengths(mask)
    rev = reversed_steps_index(lengths, x.shape[1]) if rnn.bidirectional else None
    h = x
    for layer in range(rnn.num_layers):
        if layer and rnn.training and rnn.dropout > 0:
            h = nn.functional.dropout(h, rnn.dropout, training=True)
        out = _direction(rnn, h, layer, "").contiguous()  # under vmap: the layout one model's own output has
        if rev is not None:
            back = reverse_steps(_direction(rnn, reverse_steps(h, rev), layer, "_reverse"), rev)
            out = torch.cat([out, back], dim=-1)
        h = out
    valid = torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(-1)
    return h * valid.unsqueeze(-1).to(h.dtype)


def run_rnn_forward(rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A unidirectional batch-first RNN over the padded batch in one call of the module; output steps beyond each
    row's length (at least 1, as in :func:`run_rnn_packed`) are zero. See the module docstring."""
    out, _ = rnn(x)
    valid = torch.arange(x.shape[1], device=x.device) < step_lengths(mask).unsqueeze(-1)
    return out * valid.unsqueeze(-1).to(out.dtype)


_PACKING = contextvars.ContextVar("affectflow_rnn_packing", default=True)


@contextlib.contextmanager
def unpacked_sequences() -> Iterator[None]:
    """Inside this block :func:`run_rnn` takes the padded path (:func:`run_rnn_padded`): what ``torch.func.vmap``
    needs (packing sorts rows by data-dependent lengths), used by :mod:`affectflow.training.stacked`."""
    token = _PACKING.set(False)
    try:
        yield
    finally:
        _PACKING.reset(token)


def run_rnn(rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run a batch-first RNN over the real steps of ``x`` ``(B, T, D)`` → ``(B, T, H·dirs)``, zero at padded steps.

    :func:`run_rnn_forward` for a unidirectional RNN, packed sequences for a bidirectional one;
    :func:`run_rnn_padded` while ``torch.export`` traces (ONNX export) and inside :func:`unpacked_sequences`
    (stacked models under ``vmap``).
    """
    if torch.compiler.is_exporting() or not _PACKING.get():
        return run_rnn_padded(rnn, x, mask)
    if not rnn.bidirectional and rnn.batch_first:
        return run_rnn_forward(rnn, x, mask)
    return run_rnn_packed(rnn, x, mask)
