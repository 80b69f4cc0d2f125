"""The default model (`gru`) serves every task type through its `head` parameter."""

from __future__ import annotations

import json

import pytest
import torch

from affectflow.config import load_config
from affectflow.errors import ConfigError
from affectflow.experiment import train
from affectflow.models import MODELS
from affectflow.synthetic.corpus import generate_corpus

DIMS = {"a": 5, "b": 3}


def _inputs(b=3, t=7):
    torch.manual_seed(0)
    x = {k: torch.randn(b, t, d) for k, d in DIMS.items()}
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, 4:] = False
    return x, mask


def test_gru_without_head_is_unchanged_eq2():
    m = MODELS.build("gru", {"d_model": 8, "d_fc": 4}, input_dims=DIMS, targets=["arousal", "valence"])
    assert m.output_sizes == {"arousal": 1, "valence": 1}
    assert {"fc.weight", "heads.0.weight", "heads.1.weight"} <= set(m.state_dict())  # old checkpoints still load
    x, mask = _inputs()
    assert m(x, mask).shape == (3, 7, 2)


@pytest.mark.parametrize(
    "head, targets, sizes",
    [
        ({"type": "classification", "n_classes": 5}, ["sentiment"], {"sentiment": 5}),
        ({"type": "jdev", "n_classes": 6, "emotion": "discrete", "valence": "valence"}, ["discrete", "valence"],
         {"discrete": 6, "valence": 1}),
        ({"type": "regression"}, ["arousal"], {"arousal": 1}),
    ],
)
def test_gru_head_output_layout_and_rebuild(head, targets, sizes):
    m = MODELS.build("gru", {"d_model": 8, "d_fc": 4, "head": head}, input_dims=DIMS, targets=targets)
    assert m.output_sizes == sizes
    x, mask = _inputs()
    out = m(x, mask)
    assert out.shape == (3, 7, sum(sizes.values()))
    # padded steps change nothing at real steps (packed GRU + per-step head)
    x2 = {k: v.clone() for k, v in x.items()}
    x2["a"][1, 5:] = 100.0
    m.eval()
    assert torch.allclose(m(x, mask)[1, :4], m(x2, mask)[1, :4], atol=1e-6)
    # the stored config rebuilds an identical model
    from affectflow.models.base import build_model

    m2 = build_model(m.config())
    m2.load_state_dict(m.state_dict())
    m2.eval()
    assert torch.allclose(m(x, mask), m2(x, mask))


def test_gru_head_defaults_come_from_the_gru():
    m = MODELS.build("gru", {"d_model": 8, "d_fc": 6, "head": {"type": "classification", "n_classes": 3}},
                     input_dims=DIMS, targets=["c"])
    assert m.head.trunk[0].out_features == 6  # hidden = d_fc


def test_gru_bad_head_is_a_config_error():
    with pytest.raises(ConfigError, match="`head` must be null or a mapping"):
        MODELS.build("gru", {"head": "classification"}, input_dims=DIMS, targets=["c"])
    with pytest.raises(ConfigError, match="Unknown head"):
        MODELS.build("gru", {"head": {"type": "nope"}}, input_dims=DIMS, targets=["c"])


@pytest.mark.parametrize("task", ["segment", "clip"])
def test_default_model_trains_on_classification_tasks(tmp_path, task):
    """The default config (model gru, no head) trains segment classification and MER-style clip targets."""
    corpus = generate_corpus(tmp_path / "c", n_subjects=8, duration_s=60.0, duration_jitter_s=0.0, segment_s=10.0,
                             seed=5, progress=False)
    targets = "[sentiment]" if task == "segment" else "[discrete,valence]"
    cfg = load_config(None, [f"data.corpus={corpus.path}", f"output.runs_dir={tmp_path / 'runs'}", f"data.task={task}",
                             f"data.targets={targets}", "data.features=[visual,acoustic]", "model.d_model=16",
                             "model.d_fc=8", "training.epochs=2", "training.seeds=[3]", "training.device=cpu"])
    assert cfg.model.type == "gru"
    run = train(cfg, progress=False)
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == task
    ckpt = torch.load(run / "checkpoints" / "seed-3.pt", weights_only=True)
    head = ckpt["model"]["params"]["head"]
    assert head["type"] == ("classification" if task == "segment" else "jdev")
