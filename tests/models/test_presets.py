"""The named paper models are presets of the composite blocks: same hyperparameters, same parameter names and the
same function as the classes they replace (a fixture saved by main 7b00f2f, before the change, loads and predicts
identically)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from affectflow.errors import ConfigError
from affectflow.models import ENCODERS, MODELS, build_model
from affectflow.models.composite import CompositeModel, _plain
from affectflow.models.encoders import StackEncoder

FIXTURE = Path(__file__).parent / "fixtures" / "named_models_7b00f2f.pt"


@pytest.fixture(scope="module")
def saved():
    return torch.load(FIXTURE, weights_only=True)


def test_hyperparameters_and_defaults_unchanged(saved):
    for name, params in saved["model_params"].items():
        assert MODELS.param_names(name) == params, name
        assert _plain(MODELS.defaults(name)) == saved["model_defaults"][name], name
    for name, params in saved["encoder_params"].items():
        assert ENCODERS.param_names(name) == params, name
        assert _plain(ENCODERS.defaults(name)) == saved["encoder_defaults"][name], name


def test_checkpoints_saved_before_load_and_predict_identically(saved):
    inp = saved["inputs"]
    assert len(saved["models"]) == 18  # the 17 named models and a 2-layer bidirectional early-fusion GRU
    for name, rec in saved["models"].items():
        model = build_model(rec["model"]).eval()
        assert isinstance(model, CompositeModel) == (name != "gru") and model.name == name
        model.load_state_dict(rec["state_dict"], strict=True)  # the same parameter names
        with torch.no_grad():
            y = model(inp["x"], inp["mask"], inp["feature_mask"])
        assert (y - rec["output"]).abs().max() <= 1e-6, (name, (y - rec["output"]).abs().max())
        assert model.config() == rec["model"], name


def test_same_random_initialisation(saved):
    # built with the same seed, a preset draws the same initial weights as the class it replaces
    for name in ("sa_lstm", "way6", "leader_follower_tcn"):
        rec = saved["models"][name]
        torch.manual_seed(0)
        model = build_model(rec["model"])
        assert all(torch.equal(model.state_dict()[k], v) for k, v in rec["state_dict"].items()), name


def test_a_preset_is_the_composite_it_names():
    dims, targets = {"a": 3, "b": 2}, ["arousal"]
    torch.manual_seed(0)
    named = MODELS.build("way2", {"d_model": 4, "num_heads": 2, "lstm_hidden": 3}, input_dims=dims, targets=targets)
    torch.manual_seed(0)
    plain = MODELS.build("composite", {
        "fusion": {"type": "early", "d_model": None, "dropout": 0.0},
        "encoder": {"type": "stack", "stages": [
            {"type": "self_attention", "num_heads": 2, "num_layers": 1, "d_attn": 4, "dropout": 0.1},
            {"type": "lstm", "hidden_size": 3, "num_layers": 1, "bidirectional": True, "dropout": 0.1}]},
        "head": {"type": "regression", "hidden": None, "tanh": False, "dropout": 0.1}}, input_dims=dims,
        targets=targets)
    assert isinstance(named.encoder, StackEncoder.__mro__[1])
    sd, ref = named.state_dict(), plain.state_dict()
    assert list(sd) == list(ref) and all(torch.equal(sd[k], ref[k]) for k in sd)


def test_preset_errors_name_the_parameters():
    with pytest.raises(ConfigError, match="valid parameters"):
        MODELS.build("way1", {"lstm_hidden": 3}, input_dims={"a": 2}, targets=["v"])
    with pytest.raises(ConfigError, match="bidirectional: false"):
        MODELS.build("sa_lstm", {"causal": True, "bidirectional": True}, input_dims={"a": 2}, targets=["v"])
    with pytest.raises(ConfigError, match="dropout"):
        MODELS.build("tcn", {"dropout": 1.5}, input_dims={"a": 2}, targets=["v"])
