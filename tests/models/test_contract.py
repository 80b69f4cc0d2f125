"""Contract tests generated over the model, encoder, fusion and head registries, plus the multitask loss.

Every registered model (small settings) with 1, 2 and 3 feature sets, and a composite model around every encoder,
fusion and head: output shapes, padded steps change nothing, gradients reach every parameter, save/load and
``build_model(config())`` give identical outputs, causal models do not look ahead, the same seed gives the same
model, and bad configs fail with the list of valid names.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import yaml

import affectflow
from affectflow.config import _merge, config_from_dict, default_config_dict
from affectflow.errors import ConfigError
from affectflow.models import ENCODERS, FUSIONS, HEADS, MODELS, build_model
from affectflow.models.encoders import MaskedBatchNorm1d
from affectflow.models.fusion import AFGUnit
from affectflow.models.heads import split_outputs
from affectflow.tasks import TargetSpec, check_outputs, configure_model_params
from affectflow.training.multitask import ModelWithLoss, MultitaskLoss, masked_cross_entropy


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest and avoids spinning threads on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


DIMS = {"acoustic": 12, "visual": 7, "physio": 3}
B, T = 3, 16
LENGTHS = [16, 11, 5]

# small settings per registered model (anything not listed is built with its defaults)
SMALL: dict[str, dict] = {
    "gru": {"d_model": 16, "d_fc": 8},
    "composite": {"fusion": {"type": "early", "d_model": 16}, "encoder": {"type": "lstm", "hidden_size": 16}},
    "lstm": {"hidden_size": 16},
    "sa_lstm": {"d_attn": 16, "hidden_size": 16, "lstm_layers": 1},
    "gcnn_lstm": {"channels": 8, "hidden_size": 16},
    "transformer": {"d_model": 16, "dim_feedforward": 32, "num_layers": 1},
    "tcn": {"channels": [8, 8]},
    "mbconv": {"channels": [8, 8], "expand_ratio": 2},
    "way1": {"d_model": 16, "dim_feedforward": 32, "transformer_layers": 1},
    "way2": {"d_model": 16, "lstm_hidden": 8},
    "way3": {"d_model": 16, "dim_feedforward": 32, "transformer_layers": 1, "lstm_hidden": 8},
    "way4": {"mbconv_channels": [8, 8], "expand_ratio": 2, "lstm_hidden": 8},
    "way5": {"d_model": 16, "mbconv_channels": [8], "expand_ratio": 2, "lstm_hidden": 8},
    "way6": {
        "d_model": 16,
        "dim_feedforward": 32,
        "transformer_layers": 1,
        "mbconv_channels": [8],
        "expand_ratio": 2,
        "lstm_hidden": 8,
    },
    "late_fusion_bilstm": {
        "encoder": {"type": "sa_lstm", "d_attn": 8, "hidden_size": 8, "lstm_layers": 1},
        "hidden_size": 8,
    },
    "late_average": {"encoder": {"type": "lstm", "hidden_size": 8}},
    "leader_follower_tcn": {"channels": [8, 8], "d_modal": 8},
    "channel_attention_tcn": {"channels": [8, 8], "d_model": 8},
    "afg_jdev": {"d_model": 16, "n_classes": 4},
    "sent_multitask": {"shared": 8},  # default branches: one lstm per modality
}
# settings that make a model causal (streaming); the test checks the flag and that there is no look-ahead
CAUSAL: dict[str, dict] = {
    "gru": {},
    "composite": {},
    "lstm": {},
    "sa_lstm": {"causal": True},
    "gcnn_lstm": {"causal": True},
    "transformer": {"causal": True},
    "tcn": {},
    "mbconv": {"causal": True},
    "way1": {"causal": True},
    "late_fusion_bilstm": {
        "bidirectional": False,
        "encoder": {"type": "sa_lstm", "d_attn": 8, "hidden_size": 8, "lstm_layers": 1, "causal": True},
    },
    "late_average": {},
    "leader_follower_tcn": {},
    "channel_attention_tcn": {},
    "afg_jdev": {},
}
TARGETS = {"afg_jdev": ["emotion", "valence"]}

SMALL_ENCODERS: dict[str, dict] = {
    "gru": {"hidden_size": 8},
    "lstm": {"hidden_size": 8, "bidirectional": True},
    "self_attention": {"d_attn": 8, "num_heads": 2, "num_layers": 2},
    "sa_lstm": {"d_attn": 8, "hidden_size": 8, "lstm_layers": 1},
    "gated_conv": {"channels": 8, "num_layers": 2},
    "gcnn_lstm": {"channels": 8, "hidden_size": 8},
    "transformer": {"d_model": 8, "num_heads": 2, "dim_feedforward": 16, "num_layers": 1},
    "tcn": {"channels": [8, 8], "causal": False},
    "mbconv": {"channels": [8, 8], "expand_ratio": 2},
    "way1": {"d_model": 8, "dim_feedforward": 16, "transformer_layers": 1},
    "way2": {"d_model": 8, "lstm_hidden": 8},
    "way3": {"d_model": 8, "dim_feedforward": 16, "transformer_layers": 1, "lstm_hidden": 8},
    "way4": {"mbconv_channels": [8], "expand_ratio": 2, "lstm_hidden": 8},
    "way5": {"d_model": 8, "mbconv_channels": [8], "expand_ratio": 2, "lstm_hidden": 8},
    "way6": {
        "d_model": 8,
        "dim_feedforward": 16,
        "transformer_layers": 1,
        "mbconv_channels": [8],
        "expand_ratio": 2,
        "lstm_hidden": 8,
    },
    "stack": {
        "stages": [{"type": "gated_conv", "channels": 8, "causal": True}, {"type": "gru", "hidden_size": 8}]
    },
    "backbone": {"input_shape": [1, 2, 4], "widths": [4, 4, 4, 4], "pixel_norm": None},
}
SMALL_FUSIONS: dict[str, dict] = {
    "early": {"d_model": 8},
    "afg": {"d_model": 8, "structure": "pairwise"},
    "leader_follower": {"d_modal": 8, "leader": "visual"},
    "channel_attention": {"d_model": 8},
    "late_bilstm": {"hidden_size": 8},
    "late_average": {"weights": {"acoustic": 2.0, "visual": 1.0, "physio": 1.0}},
}
SMALL_HEADS: dict[str, dict] = {
    "regression": {"hidden": 8, "tanh": True},
    "classification": {"n_classes": 3, "pool": "last"},
    "jdev": {"n_classes": 3, "pool": "mean"},
}
HEAD_TARGETS = {"jdev": ["emotion", "valence"]}


def dims_of(n: int) -> dict[str, int]:
    return dict(list(DIMS.items())[:n])


def make_batch(dims: dict[str, int], lengths=LENGTHS, t: int = T, seed: int = 0, garbage: bool = True):
    """Inputs with random finite garbage at padded steps (it must not matter)."""
    g = torch.Generator().manual_seed(seed)
    b = len(lengths)
    mask = torch.zeros(b, t, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    x = {k: torch.randn(b, t, d, generator=g) for k, d in dims.items()}
    fm = {k: torch.rand(b, t, generator=g) > 0.2 for k in dims}
    if not garbage:
        for k in dims:
            x[k] = x[k] * mask.unsqueeze(-1)
    return x, mask, fm


def with_padding(x, mask, fm, extra: int, seed: int = 5):
    """The same batch padded by ``extra`` more steps of garbage."""
    g = torch.Generator().manual_seed(seed)
    b, _t = mask.shape
    x2 = {k: torch.cat([v, 10 * torch.randn(b, extra, v.shape[-1], generator=g)], 1) for k, v in x.items()}
    m2 = torch.cat([mask, torch.zeros(b, extra, dtype=torch.bool)], 1)
    fm2 = {k: torch.cat([v, torch.ones(b, extra, dtype=torch.bool)], 1) for k, v in fm.items()}
    pad = ~m2  # scramble the already padded steps too
    x2 = {k: torch.where(pad.unsqueeze(-1), 3 * torch.randn(v.shape, generator=g), v) for k, v in x2.items()}
    return x2, m2, fm2


# ---------------------------------------------------------------------------- the variants under test
def _model_variants():
    out = []
    for name in MODELS.names():
        for n in (1, 2, 3):
            out.append(pytest.param(("model", name, SMALL.get(name, {}), n), id=f"{name}-{n}mod"))
    for name in ENCODERS.names():
        params = {
            "fusion": {"type": "early", "d_model": 8},
            "encoder": {"type": name, **SMALL_ENCODERS.get(name, {})},
        }
        out.append(pytest.param(("composite", f"encoder:{name}", params, 3), id=f"encoder-{name}"))
    for name in FUSIONS.names():
        params = {
            "fusion": {"type": name, **SMALL_FUSIONS.get(name, {})},
            "encoder": {"type": "gru", "hidden_size": 8},
        }
        for n in (1, 3) if name not in ("leader_follower", "late_average") else (3,):
            out.append(pytest.param(("composite", f"fusion:{name}", params, n), id=f"fusion-{name}-{n}mod"))
    for name in HEADS.names():
        params = {
            "fusion": {"type": "early", "d_model": 8},
            "encoder": {"type": "gru", "hidden_size": 8},
            "head": {"type": name, **SMALL_HEADS.get(name, {})},
        }
        out.append(pytest.param(("composite", f"head:{name}", params, 3), id=f"head-{name}"))
    return out


VARIANTS = _model_variants()


def targets_for(kind: str, label: str) -> list[str]:
    if kind == "model":
        return TARGETS.get(label, ["arousal", "valence"])
    if label.startswith("head:"):
        return HEAD_TARGETS.get(label[5:], ["arousal", "valence"])
    return ["arousal", "valence"]


def build(variant, seed: int = 0, extra: dict | None = None):
    kind, label, params, n = variant
    torch.manual_seed(seed)
    mtype = label if kind == "model" else "composite"
    params = {**copy.deepcopy(params), **(extra or {})}
    return MODELS.build(mtype, params, input_dims=dims_of(n), targets=targets_for(kind, label))


def n_outputs(model) -> int:
    return sum(model.output_sizes.values()) if hasattr(model, "output_sizes") else len(model.targets)


def test_every_registered_model_has_small_and_causal_settings_listed():
    # a new registration must be added here so that it is tested with small settings and, if it can be, causal
    assert sorted(SMALL) == MODELS.names()
    assert set(CAUSAL) <= set(MODELS.names())
    assert sorted(SMALL_ENCODERS) == sorted(set(ENCODERS.names()) - {"identity"})


# ---------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("variant", VARIANTS)
def test_output_shape_and_padding_changes_nothing(variant):
    model = build(variant).eval()
    dims = dims_of(variant[3])
    x, mask, fm = make_batch(dims)
    with torch.no_grad():
        out = model(x, mask, fm)
        assert out.shape == (B, T, n_outputs(model))
        assert torch.isfinite(out[mask]).all()
        # longer padding with different garbage: identical outputs at real steps
        x2, m2, fm2 = with_padding(x, mask, fm, extra=7)
        out2 = model(x2, m2, fm2)
        torch.testing.assert_close(out2[:, :T][mask], out[mask], atol=2e-5, rtol=1e-4)
        # each sequence alone at its exact length (its partners were longer)
        for i, n in enumerate(LENGTHS):
            alone = model(
                {k: v[i : i + 1, :n] for k, v in x.items()},
                mask[i : i + 1, :n],
                {k: v[i : i + 1, :n] for k, v in fm.items()},
            )
            torch.testing.assert_close(alone[0], out[i, :n], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_parameter(variant):
    model = build(variant).train()
    x, mask, fm = make_batch(dims_of(variant[3]))
    # models trained through several subtask outputs (sent_multitask) are checked on all of them
    outs = model.forward_subtasks(x, mask, fm) if hasattr(model, "forward_subtasks") else [model(x, mask, fm)]
    w = torch.randn(outs[0].shape, generator=torch.Generator().manual_seed(1))
    sum((out * w)[mask].sum() for out in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    dead = [
        n
        for n, p in model.named_parameters()
        if not (torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0)
    ]
    assert not dead, f"zero or non-finite gradient for {dead}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_load_and_config_round_trip(variant, tmp_path):
    model = build(variant, seed=0).eval()
    cfg = model.config()
    # the config is plain data (YAML/JSON serialisable) and rebuilds the same architecture
    assert yaml.safe_load(yaml.safe_dump(cfg)) == cfg
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    torch.manual_seed(123)  # a different init, overwritten by the loaded weights
    clone = build_model(cfg).eval()
    clone.load_state_dict(torch.load(path, weights_only=True))
    x, mask, fm = make_batch(dims_of(variant[3]))
    with torch.no_grad():
        torch.testing.assert_close(clone(x, mask, fm)[mask], model(x, mask, fm)[mask], atol=0, rtol=0)
    assert clone.config() == cfg


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_seed_same_model_and_outputs(variant):
    a, b, c = build(variant, seed=7).eval(), build(variant, seed=7).eval(), build(variant, seed=8).eval()
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    x, mask, fm = make_batch(dims_of(variant[3]))
    with torch.no_grad():
        assert torch.equal(a(x, mask, fm), b(x, mask, fm))


def _looks_ahead(model, dims, t0: int = 9) -> bool:
    x, mask, fm = make_batch(dims, lengths=[T, T, T])
    x2 = {k: v.clone() for k, v in x.items()}
    fm2 = {k: v.clone() for k, v in fm.items()}
    g = torch.Generator().manual_seed(3)
    for k, v in x2.items():
        v[:, t0:] = 5 * torch.randn(v[:, t0:].shape, generator=g)
        fm2[k][:, t0:] = ~fm2[k][:, t0:]
    with torch.no_grad():
        a, b = model(x, mask, fm), model(x2, mask, fm2)
    return not torch.allclose(a[:, :t0], b[:, :t0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_causal_flag_is_honest(variant):
    model = build(variant).eval()
    dims = dims_of(variant[3])
    assert _looks_ahead(model, dims) != model.causal


@pytest.mark.parametrize("name", sorted(CAUSAL))
@pytest.mark.parametrize("n", [1, 3])
def test_causal_variants_do_not_look_ahead(name, n):
    params = {**SMALL[name], **CAUSAL[name]}
    model = build(("model", name, params, n)).eval()
    assert model.causal
    assert not _looks_ahead(model, dims_of(n))


def test_masked_batch_norm_ignores_padding_in_training_mode():
    torch.manual_seed(0)
    enc = ENCODERS.build("mbconv", {"channels": [8, 8], "dropout": 0.0}, input_dim=5).train()
    x, mask, _ = make_batch({"a": 5})
    x2, m2, _ = with_padding(x, mask, {"a": mask}, extra=4)
    enc2 = copy.deepcopy(enc)
    out, out2 = enc(x["a"], mask), enc2(x2["a"], m2)
    torch.testing.assert_close(out2[:, :T][mask], out[mask], atol=1e-5, rtol=1e-4)
    for m1, m2_ in zip(enc.modules(), enc2.modules()):
        if isinstance(m1, MaskedBatchNorm1d):
            torch.testing.assert_close(m1.running_mean, m2_.running_mean)
            torch.testing.assert_close(m1.running_var, m2_.running_var)
    # the batch statistics are those of the real steps: normalised stem output has mean 0 over real steps
    bn = MaskedBatchNorm1d(4, affine=False).train()
    z = torch.randn(2, 4, 10)
    zm = torch.ones(2, 10, dtype=torch.bool)
    zm[1, 6:] = False
    y = bn(torch.where(zm.unsqueeze(1), z, torch.full_like(z, 1e3)), zm)
    real = y.transpose(1, 2)[zm]
    torch.testing.assert_close(real.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(real.var(0, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


# ---------------------------------------------------------------------------- sizes from the data, any number of modalities
@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_attention_fusions_size_themselves_for_any_number_of_modalities(m):
    dims = {f"mod{i}": 3 + 5 * i for i in range(m)}
    x, mask, fm = make_batch(dims)
    lf = FUSIONS.build("leader_follower", {"d_modal": 8, "num_heads": 2, "leader": "mod0"}, input_dims=dims)
    ca = FUSIONS.build("channel_attention", {"d_model": 6}, input_dims=dims)
    assert lf.output_dim == dims["mod0"] + m * 8 and lf(x, mask, fm).shape == (B, T, lf.output_dim)
    assert ca.output_dim == m * 6 and ca(x, mask, fm).shape == (B, T, m * 6)
    for structure in ("parallel", "pairwise", "hierarchical"):
        afg = FUSIONS.build(
            "afg",
            {"d_model": 5, "structure": structure, "primary": ["mod0", "mod1"][: max(1, m - 1)]},
            input_dims=dims,
        )
        assert afg(x, mask, fm).shape == (B, T, 5)
    # channel attention weights are a softmax over all M·d channels
    c = torch.cat([ca.proj[n](x[n]) for n in dims], -1)
    torch.testing.assert_close(ca(x, mask, fm) / c, torch.softmax(ca.weights(c), -1), atol=1e-5, rtol=1e-4)


def test_afg_unit_is_a_softmax_weighted_average_that_skips_missing_items():
    torch.manual_seed(0)
    unit = AFGUnit(3, 4)
    items = [torch.randn(2, 5, 4) for _ in range(3)]
    # scores scaled by 1/sqrt(D) (scaled_scores, the default)
    scores = torch.stack([(items[n] * unit.weight[:, n]).sum(-1) / 2.0 + unit.bias[n] for n in range(3)], -1)
    alpha = torch.softmax(scores, -1)
    expected = sum(alpha[..., n : n + 1] * items[n] for n in range(3))
    torch.testing.assert_close(unit(items), expected)
    avail = torch.ones(2, 5, 3, dtype=torch.bool)
    avail[0, :, 1] = False  # item 1 missing in the first sequence
    avail[1, 2, :] = False  # nothing available at one step: all items count
    out = unit(items, avail)
    a01 = torch.softmax(scores[0][:, [0, 2]], -1)
    torch.testing.assert_close(out[0], a01[:, :1] * items[0][0] + a01[:, 1:] * items[2][0])
    torch.testing.assert_close(out[1], expected[1])


def test_afg_structures_wire_the_groups_as_the_paper_describes():
    dims = {"hl18": 4, "hl19": 4, "rf": 3, "mr": 3}
    p1 = FUSIONS.build(
        "afg", {"d_model": 6, "structure": "parallel", "primary": ["hl18", "hl19"]}, input_dims=dims
    )
    p2 = FUSIONS.build(
        "afg", {"d_model": 6, "structure": "pairwise", "primary": ["hl18", "hl19"]}, input_dims=dims
    )
    p3 = FUSIONS.build(
        "afg", {"d_model": 6, "structure": "hierarchical", "primary": ["hl18", "hl19"]}, input_dims=dims
    )
    assert [u.n for u in p1.units] == [4]  # all four features in parallel
    assert [u.n for u in p2.units] == [
        3,
        3,
        2,
    ]  # each HuBERT layer with both visual features, then the two AV reps
    assert [u.n for u in p3.units] == [2, 3]  # intra-acoustic, then acoustic + two visual
    assert p2.secondary == ["rf", "mr"]


def test_late_average_fixed_weights_and_learnt_weights():
    dims = {"a": 1, "b": 1, "c": 1}
    fixed = FUSIONS.build(
        "late_average", {"weights": {"a": 2, "b": 1, "c": 1}, "learnable": False}, input_dims=dims
    )
    x, mask, fm = make_batch(dims)
    torch.testing.assert_close(fixed(x, mask, fm), 0.5 * x["a"] + 0.25 * x["b"] + 0.25 * x["c"])
    assert list(fixed.parameters()) == []
    learnt = FUSIONS.build("late_average", {}, input_dims=dims)
    assert learnt.weights() == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    opt = torch.optim.SGD(learnt.parameters(), lr=1.0)
    for _ in range(20):  # "a" is the target: its weight must grow
        loss = ((learnt(x, mask, fm) - x["a"]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = learnt.weights()
    assert w["a"] > 0.6 and sum(w.values()) == pytest.approx(1.0)


def test_leader_follower_output_starts_with_the_leader_encoding():
    dims = {"audio": 5, "video": 9, "text": 4}
    lf = FUSIONS.build("leader_follower", {"leader": "video", "d_modal": 8}, input_dims=dims)
    x, mask, fm = make_batch(dims)
    out = lf(x, mask, fm)
    assert out.shape[-1] == 9 + 3 * 8
    torch.testing.assert_close(out[..., :9], x["video"])


# ---------------------------------------------------------------------------- heads
def test_jdev_head_follows_equations_5_to_8():
    torch.manual_seed(0)
    head = HEADS.build(
        "jdev", {"n_classes": 4, "emotion": "emo", "valence": "val"}, input_dim=6, targets=["val", "emo"]
    )
    assert head.output_sizes == {"val": 1, "emo": 4}
    h = torch.randn(2, 5, 6)
    mask = torch.ones(2, 5, dtype=torch.bool)
    parts = split_outputs(head(h, mask), head.output_sizes)
    e_logits = h @ head.emo.weight.T + head.emo.bias  # Eq. 5 (before the softmax)
    v_tilde = h @ head.val.weight.T + head.val.bias  # Eq. 7
    v_e = torch.tanh(torch.softmax(e_logits, -1) @ head.emo_val.weight.T + head.emo_val.bias)  # Eq. 8
    v_hat = torch.cat([v_tilde, v_e], -1) @ head.joint.weight.T + head.joint.bias  # Eq. 6
    torch.testing.assert_close(parts["emo"], e_logits)
    torch.testing.assert_close(parts["val"], v_hat)


def test_pooled_heads_repeat_the_pooled_prediction_over_real_steps():
    torch.manual_seed(0)
    h = torch.randn(2, 6, 4)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 3:] = False
    mean_head = HEADS.build("regression", {"pool": "mean"}, input_dim=4, targets=["v"])
    last_head = HEADS.build("classification", {"pool": "last", "n_classes": 3}, input_dim=4, targets=["c"])
    out = mean_head(h, mask)
    torch.testing.assert_close(out[1, :3], mean_head.out(h[1, :3].mean(0)).expand(3, 1))
    out = last_head(h, mask)
    torch.testing.assert_close(out[1, :3], last_head.out(h[1, 2]).expand(3, 3))
    assert not mean_head.causal and HEADS.build("regression", {}, input_dim=4, targets=["v"]).causal


# ---------------------------------------------------------------------------- configuration errors
def test_unknown_names_and_keys_list_the_valid_ones():
    dims, tg = dims_of(3), ["arousal", "valence"]
    with pytest.raises(ConfigError, match=r"Unknown model 'lsmt'; valid models: \[.*'lstm'.*\]"):
        MODELS.build("lsmt", {}, input_dims=dims, targets=tg)
    with pytest.raises(
        ConfigError, match=r"no parameters \['hiden_size'\]; valid parameters: \[.*'hidden_size'"
    ):
        MODELS.build("lstm", {"hiden_size": 8}, input_dims=dims, targets=tg)
    with pytest.raises(
        ConfigError, match=r"`model.encoder`: Unknown encoder 'lsmt'; valid encoders: \[.*'way6'"
    ):
        MODELS.build("composite", {"encoder": {"type": "lsmt"}}, input_dims=dims, targets=tg)
    with pytest.raises(
        ConfigError,
        match=r"`model.fusion`: .*'afg' has no parameters \['structur'\]; valid param.*'structure'",
    ):
        MODELS.build("composite", {"fusion": {"type": "afg", "structur": "x"}}, input_dims=dims, targets=tg)
    with pytest.raises(
        ConfigError, match=r"`model.head`: Unknown head 'regresion'; valid heads: \['classification'"
    ):
        MODELS.build("composite", {"head": {"type": "regresion"}}, input_dims=dims, targets=tg)
    with pytest.raises(
        ConfigError, match=r"`model.fusion` must be a mapping with a `type` key.*valid types: \["
    ):
        MODELS.build("composite", {"fusion": "early"}, input_dims=dims, targets=tg)
    with pytest.raises(
        ConfigError, match=r"`structure` must be one of \['parallel', 'pairwise', 'hierarchical'\]"
    ):
        MODELS.build("afg_jdev", {"structure": "serial"}, input_dims=dims, targets=["e", "v"])
    with pytest.raises(
        ConfigError, match=r"'face' is not one of the fused inputs \['acoustic', 'visual', 'physio'\]"
    ):
        MODELS.build("leader_follower_tcn", {"leader": "face"}, input_dims=dims, targets=tg)
    with pytest.raises(
        ConfigError, match=r"`model.encoders` has entries \['face'\].*modalities: \['acoustic'"
    ):
        MODELS.build("late_average", {"encoders": {"face": {"type": "gru"}}}, input_dims=dims, targets=tg)
    with pytest.raises(ConfigError, match=r"`model.encoders.visual`: Unknown encoder 'cnn'; valid encoders"):
        MODELS.build(
            "late_average",
            {"encoders": {"visual": [{"type": "gru"}, {"type": "cnn"}]}},
            input_dims=dims,
            targets=tg,
        )
    with pytest.raises(
        ConfigError, match=r"names feature set 'ecg'.*feature sets: \['acoustic', 'visual', 'physio'\]"
    ):
        MODELS.build("late_average", {"groups": {"bio": ["ecg"]}}, input_dims=dims, targets=tg)
    with pytest.raises(ConfigError, match=r"applies to intermediate and late fusion"):
        MODELS.build("composite", {"encoders": {"visual": {"type": "gru"}}}, input_dims=dims, targets=tg)
    with pytest.raises(
        ConfigError, match=r"stack: `stages\[1\]` must be a mapping with a `type` key.*valid encoders"
    ):
        ENCODERS.build("stack", {"stages": [{"type": "gru"}, "lstm"]}, input_dim=4)
    with pytest.raises(ConfigError, match=r"not divisible by `num_heads` 4; set `d_attn`"):
        ENCODERS.build("self_attention", {}, input_dim=10)
    with pytest.raises(ConfigError, match=r"jdev: needs exactly two targets"):
        HEADS.build("jdev", {}, input_dim=4, targets=["a"])


def test_groups_concatenate_feature_sets_into_one_modality():
    dims = {"egemaps": 5, "ecg": 1, "resp": 1, "bpm": 1}
    model = MODELS.build(
        "late_fusion_bilstm",
        {
            "groups": {"bio": ["ecg", "resp", "bpm"]},
            "encoder": {"type": "gru", "hidden_size": 4},
            "encoders": {"bio": {"type": "lstm", "hidden_size": 3}},
        },
        input_dims=dims,
        targets=["arousal"],
    )
    assert model.modalities == {"egemaps": ["egemaps"], "bio": ["ecg", "resp", "bpm"]}
    assert [b for b, _ in model.branches] == ["egemaps", "bio"]
    assert model.branch_encoders[1].input_dim == 3 + 3  # three 1-d sets + their masks
    x, mask, fm = make_batch(dims)
    assert model(x, mask, fm).shape == (B, T, 1)


def test_several_encoders_per_modality_become_branches():
    # MuSe-Physio (Eq. 19): audio and video each through SA-LSTM and GCNN-LSTM, bio through an LSTM
    dims = {"vggish": 8, "vggface": 8, "bio": 3}
    enc2 = [
        {"type": "sa_lstm", "d_attn": 8, "hidden_size": 4, "lstm_layers": 1},
        {"type": "gcnn_lstm", "channels": 4, "hidden_size": 4},
    ]
    model = MODELS.build(
        "late_fusion_bilstm",
        {
            "encoders": {"vggish": enc2, "vggface": enc2, "bio": {"type": "lstm", "hidden_size": 4}},
            "mask_inputs": False,
        },
        input_dims=dims,
        targets=["anno12_EDA"],
    )
    assert [b for b, _ in model.branches] == ["vggish.0", "vggish.1", "vggface.0", "vggface.1", "bio"]
    assert (
        model.fusion.rnn.input_size == 5
        and model.fusion.rnn.hidden_size == 32
        and model.fusion.rnn.bidirectional
    )


# ---------------------------------------------------------------------------- presets
PRESETS = sorted((Path(affectflow.__file__).parent / "configs" / "presets").glob("*.yaml"))


def test_there_is_a_preset_for_each_paper():
    names = [p.stem for p in PRESETS]
    for paper in ("muse2023", "muse2021stress", "muse2021physio", "muse2021sent", "abaw5", "mer2023"):
        assert any(n.startswith(paper + "-") for n in names), paper


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_parse_validate_and_build(path):
    raw = yaml.safe_load(path.read_text())
    assert raw["data"]["corpus"] == ""
    # a full experiment config: valid once a corpus is given
    cfg = config_from_dict(_merge(default_config_dict(), {**raw, "data": {**raw["data"], "corpus": "x"}}))
    cfg.validate()
    # the model as the experiment builds it: classification heads sized from the data's classes
    specs = [TargetSpec(t, "regression") for t in cfg.data.targets]
    if cfg.data.task == "segment":
        specs = [TargetSpec(t, "classification", list(range(5))) for t in cfg.data.targets]
    elif cfg.data.task == "clip":
        specs = [
            TargetSpec(cfg.data.targets[0], "classification", list(range(6))),
            TargetSpec(cfg.data.targets[1], "regression"),
        ]
    params = configure_model_params(cfg.model.type, cfg.model.params, specs)
    dims = {f: 8 for f in cfg.data.features}
    dims.update({f: 88 for f in cfg.data.features if f == "egemaps"})
    dims.update({f: 512 for f in cfg.data.features if f == "vggface"})
    dims.update({f: 128 for f in cfg.data.features if f == "vggish"})
    dims.update({f: 3 * 48 * 48 for f in cfg.data.features if f == "face_crops"})
    dims.update({f: 96 * 64 for f in cfg.data.features if f == "logmel_patches"})
    model = MODELS.build(cfg.model.type, params, input_dims=dims, targets=cfg.data.targets)
    check_outputs(model, specs)
    x, mask, fm = make_batch(dims, lengths=[6, 4], t=6)
    with torch.no_grad():
        assert model.eval()(x, mask, fm).shape == (2, 6, n_outputs(model))


# ---------------------------------------------------------------------------- multitask loss
def test_masked_cross_entropy_uses_valid_steps_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 3)
    y = torch.randint(0, 3, (2, 5)).float()
    valid = torch.ones(2, 5, dtype=torch.bool)
    valid[1, 3:] = False
    y[1, 3:] = 99  # not a class: ignored at invalid steps
    expected = torch.nn.functional.cross_entropy(logits[valid], y[valid].long())
    torch.testing.assert_close(masked_cross_entropy(logits, y, valid), expected)


@pytest.mark.parametrize(
    "form,factors,reg",
    [
        ("kendall", {"emo": 1.0, "val": 0.5, "aro": 0.5}, lambda d: math.log(d)),
        ("sent2021", {"emo": 0.5, "val": 0.5, "aro": 0.5}, lambda d: math.log1p(d)),
        ("mer2023", {"emo": 1.0, "val": 0.5, "aro": 0.5}, lambda d: math.log1p(d)),
    ],
)
def test_multitask_loss_forms_match_their_equations(form, factors, reg):
    loss = MultitaskLoss(
        {"emo": "ce", "val": "mse", "aro": "ccc"}, form=form, output_sizes={"emo": 3, "val": 1, "aro": 1}
    )
    with torch.no_grad():
        loss.log_var.copy_(torch.tensor([0.4, -0.3, 0.1]))
    torch.manual_seed(0)
    out = torch.randn(2, 7, 5)
    y = torch.stack([torch.randint(0, 3, (2, 7)).float(), torch.randn(2, 7), torch.randn(2, 7)], -1)
    ym = torch.ones(2, 7, 3, dtype=torch.bool)
    parts = loss.task_losses(out, y, ym)
    total = loss(out, y, ym)
    expected = 0.0
    for i, t in enumerate(["emo", "val", "aro"]):
        delta = math.exp(0.5 * loss.log_var[i].item())
        expected += factors[t] / delta**2 * parts[t].item() + reg(delta)
    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert loss.weights() == pytest.approx(
        {t: factors[t] / math.exp(loss.log_var[i].item()) for i, t in enumerate(["emo", "val", "aro"])}
    )


@pytest.mark.parametrize("form", ["kendall", "mer2023"])
def test_multitask_weights_are_learnt_towards_the_optimum_and_logged(form, caplog):
    # fixed task losses L_e = 2.0, L_v = 0.25: minimise over s only; the optimum weight is known in closed form
    loss = MultitaskLoss({"emo": "ce", "val": "mse"}, form=form, output_sizes={"emo": 2, "val": 1})
    before = loss.weights()
    opt = torch.optim.Adam(loss.parameters(), lr=0.05)
    lt = {"emo": torch.tensor(2.0), "val": torch.tensor(0.25)}
    for _ in range(1500):
        opt.zero_grad()
        loss.combine(lt).backward()
        opt.step()
    w = loss.weights()
    assert w != before
    for t, c in (("emo", 1.0), ("val", 0.5)):
        # d/ds [c e^{-s} L + r(s)] = 0  ->  c e^{-s} L = r'(s)
        d = loss.deltas()[t]
        rprime = 0.5 if form == "kendall" else 0.5 * d / (1 + d)
        assert w[t] * lt[t].item() == pytest.approx(rprime, rel=1e-3)
    assert w["val"] > w["emo"]  # the task with the smaller loss gets the larger weight
    with caplog.at_level("INFO"):
        logged = loss.log_weights(prefix="epoch 3: ")
    assert logged == w and "multitask weights" in caplog.text and "emo" in caplog.text


def test_model_with_loss_trains_model_and_loss_weights_together():
    torch.manual_seed(0)
    model = MODELS.build(
        "afg_jdev", {"d_model": 8, "n_classes": 3}, input_dims=dims_of(2), targets=["emo", "val"]
    )
    loss = MultitaskLoss(
        {"emo": "ce", "val": "mse"}, form="mer2023", output_sizes=model.output_sizes, targets=model.targets
    )
    wrapped = ModelWithLoss(model, loss)
    assert {id(p) for p in loss.parameters()} <= {id(p) for p in wrapped.parameters()}
    x, mask, fm = make_batch(dims_of(2))
    y = torch.stack([torch.randint(0, 3, (B, T)).float(), torch.randn(B, T)], -1)
    batch = {"x": x, "mask": mask, "feature_mask": fm, "y": y, "y_mask": mask.unsqueeze(-1).expand(B, T, 2)}
    opt = torch.optim.Adam(wrapped.parameters(), lr=0.01)
    before = loss.weights()
    for _ in range(3):
        opt.zero_grad()
        ModelWithLoss.compute_loss(wrapped, batch).backward()
        opt.step()
    assert loss.weights() != before
    with pytest.raises(ConfigError, match=r"valid forms: \['kendall', 'sent2021', 'mer2023'\]"):
        MultitaskLoss({"emo": "ce"}, form="gradnorm")
    with pytest.raises(ConfigError, match=r"valid task losses: \['ce', 'ccc', 'mse'\]"):
        MultitaskLoss({"emo": "focal"})
