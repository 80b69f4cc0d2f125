"""The named paper models are presets of the composite blocks: same hyperparameters, same parameter names and the
same function as the classes they replace (a fixture saved by main 7b00f2f, before the change, loads and predicts
identically)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from affectflow.errors import ConfigError
from affectflow.models import ENCODERS, MODELS, build_model
from affectflow.models.composite import CompositeModel, plain_value
from affectflow.models.encoders import StackEncoder

FIXTURE = Path(__file__).parent / "fixtures" / "named_models_7b00f2f.json"


@pytest.fixture(scope="module")
def saved():
    """What main 7b00f2f (before the presets) built: each model's config, its initial state dict under
    ``torch.manual_seed(0)`` (names, shapes, dtypes and a sha256 prefix of every tensor's bytes: no weights are
    stored) and its output on a fixed padded batch."""
    d = json.loads(FIXTURE.read_text())
    inp = d["inputs"]
    d["inputs"] = {"x": {k: torch.tensor(v, dtype=torch.float32) for k, v in inp["x"].items()},
                   "mask": torch.tensor(inp["mask"], dtype=torch.bool),
                   "feature_mask": {k: torch.tensor(v, dtype=torch.bool) for k, v in inp["feature_mask"].items()}}
    return d


def _digest(t: torch.Tensor) -> list:
    return [list(t.shape), str(t.dtype), hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]]


def test_hyperparameters_and_defaults_unchanged(saved):
    for name, params in saved["model_params"].items():
        assert MODELS.param_names(name) == params, name
        assert plain_value(MODELS.defaults(name)) == saved["model_defaults"][name], name
    for name, params in saved["encoder_params"].items():
        assert ENCODERS.param_names(name) == params, name
        assert plain_value(ENCODERS.defaults(name)) == saved["encoder_defaults"][name], name


def test_checkpoints_saved_before_load_and_predict_identically(saved):
    # built with the same seed, every preset draws bit for bit the state dict the class it replaces drew (same
    # names, order, shapes and values), so a checkpoint saved before loads strictly; and it computes the same
    inp = saved["inputs"]
    assert len(saved["models"]) == 18  # the 17 named models and a 2-layer bidirectional early-fusion GRU
    for name, rec in saved["models"].items():
        torch.manual_seed(0)
        model = build_model(rec["model"]).eval()
        assert isinstance(model, CompositeModel) == (name != "gru") and model.name == name
        sd = model.state_dict()
        assert {k: _digest(v) for k, v in sd.items()} == rec["state_dict"], name
        assert list(sd) == list(rec["state_dict"]), name
        model.load_state_dict(sd, strict=True)
        with torch.no_grad():
            y = model(inp["x"], inp["mask"], inp["feature_mask"])
        ref = torch.tensor(rec["output"], dtype=y.dtype)
        assert (y - ref).abs().max() <= 1e-6, (name, (y - ref).abs().max())
        assert model.config() == rec["model"], name


def test_the_fixture_check_would_see_a_changed_weight(saved):
    rec = saved["models"]["sa_lstm"]
    torch.manual_seed(0)
    sd = build_model(rec["model"]).state_dict()
    k = next(iter(sd))
    sd[k] = sd[k].clone()
    sd[k].view(-1)[0] += 1e-7
    assert _digest(sd[k]) != rec["state_dict"][k]


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
