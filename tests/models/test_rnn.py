"""The RNN runner (packed and padded paths) and the attention subclass: the export-only forms equal the modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from affectflow.errors import ConfigError
from affectflow.models.attention import MultiheadAttention, attention_forward
from affectflow.models.rnn import (
    reverse_steps,
    reversed_steps_index,
    run_rnn,
    run_rnn_forward,
    run_rnn_packed,
    run_rnn_padded,
)


def test_reversed_steps_index_known_answer_and_involution():
    idx = reversed_steps_index(torch.tensor([3, 5, 1]), 5)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]]
    x = torch.arange(15.0).reshape(3, 5, 1)
    assert reverse_steps(x, idx)[0, :, 0].tolist() == [2.0, 1.0, 0.0, 3.0, 4.0]
    assert torch.equal(reverse_steps(reverse_steps(x, idx), idx), x)
    # any leading axes (e.g. models stacked along a job axis)
    lengths = torch.tensor([[2, 4], [4, 1]])
    assert reversed_steps_index(lengths, 4).shape == (2, 2, 4)
    assert reversed_steps_index(lengths, 4)[1, 0].tolist() == [3, 2, 1, 0]


def _mask() -> torch.Tensor:
    mask = torch.ones(4, 9, dtype=torch.bool)
    mask[0, 3:] = False  # lengths 3, 9, 7, 0: unsorted, one empty row
    mask[2, 7:] = False
    mask[3, :] = False
    return mask


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM, nn.RNN])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_padded_path_equals_packed(cell, bidirectional, layers):
    torch.manual_seed(0)
    rnn = cell(5, 6, num_layers=layers, bidirectional=bidirectional, batch_first=True).eval()
    x, mask = torch.randn(4, 9, 5), _mask()
    packed, padded = run_rnn_packed(rnn, x, mask), run_rnn_padded(rnn, x, mask)
    assert packed.shape == padded.shape == (4, 9, 6 * (2 if bidirectional else 1))
    torch.testing.assert_close(padded, packed, atol=1e-6, rtol=0)
    # padded steps are zero in both (rows run over max(length, 1) steps)
    assert padded[0, 3:].abs().max() == 0 and padded[3, 1:].abs().max() == 0
    # the reverse direction starts at each row's last real step: extra padding changes nothing
    longer = torch.cat([x, torch.randn(4, 3, 5)], 1)
    more = torch.cat([mask, torch.zeros(4, 3, dtype=torch.bool)], 1)
    torch.testing.assert_close(run_rnn_padded(rnn, longer, more)[:, :9], padded, atol=1e-6, rtol=0)


def test_padded_path_has_gradients_of_the_module_parameters():
    torch.manual_seed(0)
    rnn = nn.GRU(3, 4, bidirectional=True, batch_first=True)
    run_rnn_padded(rnn, torch.randn(2, 5, 3), torch.ones(2, 5, dtype=torch.bool)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rnn.parameters())


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM, nn.RNN])
def test_forward_path_equals_packed_values_and_gradients(cell):
    torch.manual_seed(0)
    rnn = cell(5, 6, num_layers=2, batch_first=True)
    x, mask = torch.randn(4, 9, 5), _mask()
    grads = []
    for path in (run_rnn_packed, run_rnn_forward):
        rnn.zero_grad()
        out = path(rnn, x, mask)
        (out ** 2).sum().backward()
        grads.append([p.grad.clone() for p in rnn.parameters()])
        if path is run_rnn_forward:
            torch.testing.assert_close(out, want, atol=1e-6, rtol=0)
            assert out[0, 3:].abs().max() == 0 and out[3, 1:].abs().max() == 0  # padded steps zero
        want = out.detach()
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_run_rnn_paths_outside_export_and_refuses_unsupported_rnns():
    torch.manual_seed(0)
    x, mask = torch.randn(2, 5, 3), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    uni, bi = nn.LSTM(3, 4, batch_first=True), nn.GRU(3, 4, bidirectional=True, batch_first=True)
    assert torch.equal(run_rnn(uni, x, mask), run_rnn_forward(uni, x, mask))  # no packing one way
    assert torch.equal(run_rnn(bi, x, mask), run_rnn_packed(bi, x, mask))  # packed both ways
    with pytest.raises(ConfigError, match="batch-first"):
        run_rnn_padded(nn.GRU(3, 4), x, mask)
    with pytest.raises(ConfigError, match="proj_size"):
        run_rnn_padded(nn.LSTM(3, 4, proj_size=2, batch_first=True), x, mask)


@pytest.mark.parametrize("batch_first", [True, False])
def test_attention_forward_equals_torch(batch_first):
    torch.manual_seed(0)
    mha = MultiheadAttention(8, 2, batch_first=batch_first).eval()
    ref = nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    ref.load_state_dict(mha.state_dict())  # same parameter names
    q = torch.randn(3, 5, 8) if batch_first else torch.randn(5, 3, 8)
    kpm = torch.zeros(3, 5, dtype=torch.bool)
    kpm[1, 3:] = True
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    for kw in ({}, {"key_padding_mask": kpm}, {"key_padding_mask": kpm, "attn_mask": causal},
               {"attn_mask": torch.randn(5, 5)}):
        with torch.no_grad():
            want = ref(q, q, q, need_weights=False, **kw)[0]
            torch.testing.assert_close(attention_forward(mha, q, q, q, **kw), want, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(mha(q, q, q, need_weights=False, **kw)[0], want, atol=0, rtol=0)


def test_adopt_keeps_the_module_and_its_weights():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    attn = layer.self_attn
    assert MultiheadAttention.adopt(attn) is attn and isinstance(layer.self_attn, MultiheadAttention)
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())
    with pytest.raises(TypeError):
        MultiheadAttention.adopt(nn.Linear(2, 2))
