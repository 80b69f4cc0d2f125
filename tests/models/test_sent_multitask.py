"""The MuSe-Sent multitask framework (sent_multitask + training.multitask: sent2021): it learns a known answer, trains
every subtask with its own learnt weight, and the main subtask is what is scored."""

from __future__ import annotations

import json

import pytest
import torch

from affectflow.errors import ConfigError
from affectflow.experiment import evaluate, load_model, train
from affectflow.models import MODELS
from tests.conftest import tiny_config

BRANCHES = ("model.branches=[{features: [acoustic], model: {type: lstm, hidden_size: 16}}, "
            "{features: [visual, physio], model: {type: way2, d_model: 16, lstm_hidden: 16}}]")


def test_multitask_framework_learns_segment_classes(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus.path, tmp_path, "data.task=segment", "data.targets=[sentiment]",
                      "model.type=sent_multitask", BRANCHES, "model.shared=16", "training.multitask=sent2021",
                      "training.weight_decay=0.0001", "training.epochs=15", "training.patience=15", "training.lr=0.01",
                      "training.seeds=[1]", "output.plots=false")
    cfg.model.params = {k: v for k, v in cfg.model.params.items() if k in MODELS.param_names("sent_multitask")}
    run = train(cfg, progress=False)
    m = json.loads((run / "metrics.json").read_text())
    # 5 ordered classes from the valence trajectory: chance macro F1 is about 0.2
    assert m["best"]["devel"]["sentiment"]["macro_f1"] > 0.45, m["best"]["devel"]
    ck = torch.load(run / "checkpoints" / "seed-1.pt", weights_only=True)
    assert set(ck["multitask_weights"]) == {"sentiment", "sentiment#1"}  # one learnt weight per subtask (Eq. 13)
    assert ck["multitask_weights"]["sentiment"] != pytest.approx(0.5)      # moved from delta = 1
    model, _, _ = load_model(run)
    assert len(model.heads) == 2 and model.branch_sets == [["acoustic"], ["visual", "physio"]]
    _, ev = evaluate(run, partitions=["test"], progress=False)
    assert ev["partitions"]["test"]["sentiment"]["macro_f1"] == pytest.approx(
        m["best"]["test"]["sentiment"]["macro_f1"], abs=1e-9)


def test_branch_errors():
    dims = {"a": 3, "b": 2}
    with pytest.raises(ConfigError, match="not in `data.features`"):
        MODELS.build("sent_multitask", {"branches": [{"features": ["c"]}]}, input_dims=dims, targets=["y"])
    with pytest.raises(ConfigError, match="not an early-fusion composite"):
        MODELS.build("sent_multitask", {"branches": [{"features": ["a"], "model": {"type": "gru"}}]},
                     input_dims=dims, targets=["y"])
    m = MODELS.build("sent_multitask", {}, input_dims=dims, targets=["y"])
    assert [s for s in m.branch_sets] == [["a"], ["b"]] and m.output_sizes == {"y": 1}
