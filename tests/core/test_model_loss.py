import io

import numpy as np
import pytest
import torch

from affectflow.errors import ConfigError
from affectflow.metrics import ccc
from affectflow.models import MODELS, build_model
from affectflow.training.losses import ccc_loss, mse_loss

DIMS = {"a": 5, "b": 3}


def make_batch(b=3, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {n: torch.randn(b, t, d, generator=g) for n, d in DIMS.items()}
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, 8:] = False
    mask[2, 5:] = False
    fm = {n: torch.ones(b, t, dtype=torch.bool) for n in DIMS}
    return x, mask, fm


def test_ccc_loss_matches_metric_per_sequence_over_valid_steps():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(2, 20, 1, generator=g)
    p = y * 0.5 + torch.randn(2, 20, 1, generator=g) * 0.3
    valid = torch.ones(2, 20, 1, dtype=torch.bool)
    valid[1, 15:] = False
    p2 = p.clone()
    p2[1, 15:] = 100.0  # invalid steps must not matter
    expected = 1 - np.mean([ccc(y[0, :, 0], p[0, :, 0]), ccc(y[1, :15, 0], p[1, :15, 0])])
    assert float(ccc_loss(p2, y, valid)) == pytest.approx(expected, abs=1e-5)
    assert float(mse_loss(p2, y, valid)) == pytest.approx(float(((p - y)[valid] ** 2).mean()), rel=1e-5)
    p.requires_grad_(True)
    ccc_loss(p, y, valid).backward()
    assert p.grad.abs().sum() > 0


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_padding_changes_nothing_and_round_trips(bidirectional):
    torch.manual_seed(0)
    m = MODELS.build("gru", {"d_model": 16, "d_fc": 8, "bidirectional": bidirectional, "dropout": 0.0},
                     input_dims=DIMS, targets=["arousal", "valence"]).eval()
    x, mask, fm = make_batch()
    out = m(x, mask, fm)
    assert out.shape == (3, 12, 2)
    # garbage in padded steps changes nothing at real steps
    x2 = {n: v.clone() for n, v in x.items()}
    for n in x2:
        x2[n][~mask] = 1e3
    out2 = m(x2, mask, fm)
    torch.testing.assert_close(out[mask], out2[mask])
    # a sequence alone gives the same output as inside a padded batch
    alone = m({n: v[2:3, :5] for n, v in x.items()}, mask[2:3, :5], {n: v[2:3, :5] for n, v in fm.items()})
    torch.testing.assert_close(alone[0], out[2, :5], atol=1e-6, rtol=1e-5)
    # causal (unidirectional): future steps do not change the past
    if not bidirectional:
        x3 = {n: v.clone() for n, v in x.items()}
        x3["a"][0, 6:] += 5.0
        torch.testing.assert_close(m(x3, mask, fm)[0, :6], out[0, :6])
    assert m.causal is (not bidirectional)
    # state dict + config round trip, loaded with weights_only=True
    buf = io.BytesIO()
    torch.save({"model": m.config(), "state": m.state_dict()}, buf)
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    m2 = build_model(ck["model"])
    m2.load_state_dict(ck["state"])
    torch.testing.assert_close(m2.eval()(x, mask, fm), out)


def test_gradients_reach_every_parameter_and_masks_are_inputs():
    torch.manual_seed(0)
    m = MODELS.build("gru", {"d_model": 8, "d_fc": 4, "num_layers": 2, "tanh_output": True}, input_dims=DIMS, targets=["v"])
    x, mask, fm = make_batch()
    out = m(x, mask, fm)
    assert out.abs().max() < 1
    out[mask].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    assert m.fusion.in_features == 5 + 3 + 2


def test_registry_errors_list_valid_choices():
    with pytest.raises(ConfigError, match=r"valid models: \[.*'gru'"):
        MODELS.build("grux", {}, input_dims=DIMS, targets=["a"])
    with pytest.raises(ConfigError, match="valid parameters: .*d_model"):
        MODELS.build("gru", {"hidden": 3}, input_dims=DIMS, targets=["a"])


def test_ccc_loss_pools_the_batch_when_samples_have_one_label_each():
    """Segment / clip samples carry one label (last step): the CCC is taken over the batch, so it trains."""
    from affectflow.metrics import ccc

    torch.manual_seed(0)
    p = torch.randn(8, 3, 1, requires_grad=True)
    y = torch.randn(8, 3, 1)
    valid = torch.zeros(8, 3, 1, dtype=torch.bool)
    valid[:, -1] = True
    loss = ccc_loss(p, y, valid)
    expected = 1 - ccc(y[:, -1, 0].numpy(), p[:, -1, 0].detach().numpy())
    assert float(loss.detach()) == pytest.approx(expected, abs=1e-5)
    loss.backward()
    assert p.grad[:, -1].abs().sum() > 0 and p.grad[:, :-1].abs().sum() == 0
