"""Stacked multi-seed training (`training.stack_seeds`, affectflow/training/stacked.py): every seed's results equal
training the seeds one by one (up to float rounding: the stacked GRU is torch's decomposition instead of the fused
kernel), dropout masks and learning-rate schedules included; a killed stacked run resumes to the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from affectflow.config import load_config
from affectflow.experiment import resume_training, train
from affectflow.runs import load_checkpoint
from affectflow.synthetic.corpus import generate_corpus
from tests.core.test_resume import run_killer  # kills its process after the epoch state of (seed, epoch)

# dropout, and a plateau scheduler with lr_patience=0: per-seed RNG streams and schedules matter
OVERRIDES = ["data.features=[acoustic,visual]", "data.window.size=20", "data.window.hop=10", "training.epochs=3",
             "training.patience=10", "training.lr_patience=0", "training.lr_factor=0.5", "training.seeds=[1,2]",
             "training.batch_size=8", "training.device=cpu", "training.num_threads=1", "model.d_model=16",
             "model.d_fc=8", "model.dropout=0.3", "training.lr=0.003"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("stacked")
    corpus = generate_corpus(base / "c", n_subjects=5, duration_s=40.0, duration_jitter_s=5.0, seed=4, progress=False)
    args = [f"data.corpus={corpus.path}", *OVERRIDES]
    one = train(load_config(None, [*args, "training.stack_seeds=false", f"output.runs_dir={base / 'one'}"]),
                progress=False)
    stacked = train(load_config(None, [*args, "training.stack_seeds=true", f"output.runs_dir={base / 'st'}"]),
                    progress=False)
    return base, args, one, stacked


def _flat(d, prefix=""):
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}/"))
        return out
    return {prefix: d} if isinstance(d, (int, float)) else {}


def _assert_same_run(a: Path, b: Path, atol: float) -> None:
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (a, b))
    fa, fb = _flat(ma["per_seed"]), _flat(mb["per_seed"])
    assert fa.keys() == fb.keys() and fa
    for k in fa:
        assert fa[k] == pytest.approx(fb[k], abs=atol, nan_ok=True), k
    assert ma["selection"]["best_seed"] == mb["selection"]["best_seed"]
    for seed in (1, 2):
        ha, hb = (pd.read_csv(r / "history" / f"seed-{seed}.csv") for r in (a, b))
        assert list(ha["epoch"]) == list(hb["epoch"])
        np.testing.assert_allclose(ha["devel_score"], hb["devel_score"], atol=atol)
        np.testing.assert_allclose(ha["train_loss"], hb["train_loss"], atol=atol)
        assert list(ha["lr"]) == list(hb["lr"])  # the per-seed plateau schedule took the same steps
        ca, cb = (load_checkpoint(r / "checkpoints" / f"seed-{seed}.pt") for r in (a, b))
        assert ca["best_epoch"] == cb["best_epoch"]
        for k, v in ca["state_dict"].items():
            torch.testing.assert_close(v, cb["state_dict"][k], atol=atol, rtol=1e-3)


def test_stacked_seeds_equal_one_by_one(runs):
    _, _, one, stacked = runs
    # float rounding only (fused GRU kernel vs its decomposition under vmap), grown over 3 epochs of training
    _assert_same_run(one, stacked, atol=1e-4)
    h1, h2 = (pd.read_csv(stacked / "history" / f"seed-{s}.csv") for s in (1, 2))
    assert not np.allclose(h1["devel_score"], h2["devel_score"])  # the seeds really differ


def test_stacked_run_killed_then_resumed_equals_uninterrupted(runs):
    base, args, _, stacked = runs
    out = base / "killed"
    proc = run_killer(2, 2, [*args, "training.stack_seeds=true"], out)
    assert proc.returncode != 0  # killed
    run = next(out.iterdir())
    assert not (run / "metrics.json").exists() and (run / "resume" / "seed-1.pt").is_file()
    resumed = resume_training(run, progress=False)
    _assert_same_run(stacked, resumed, atol=0.0)  # same stacked computation: bit for bit


def test_bad_stack_seeds_value_is_refused_before_training(runs):
    from affectflow.errors import ConfigError

    with pytest.raises(ConfigError, match="stack_seeds` must be auto, true or false; got 'maybe'"):
        load_config(None, [*runs[1], "training.stack_seeds=maybe"])


def test_auto_trains_one_by_one_and_true_notes_where_stacking_does_not_apply(runs, caplog):
    from affectflow.training.stacked import fit_stacked_seeds

    cfg = load_config(None, runs[1])
    assert cfg.training.stack_seeds == "auto"  # one by one: stacking measured no faster (bench_stacking.py)
    built = []
    assert fit_stacked_seeds(cfg, [1, 2], built.append, None, None, device=torch.device("cpu")) == {}
    one = load_config(None, [*runs[1], "training.stack_seeds=true"])
    assert fit_stacked_seeds(one, [1], built.append, None, None, device=torch.device("cpu")) == {}  # one seed
    assert not built
    bn = load_config(None, [*runs[1], "training.stack_seeds=true", "training.schedule=progressive_unfreezing"])
    from affectflow.models import build_model

    def build(seed):
        return build_model({"type": "gru", "params": {"d_model": 4}, "input_dims": {"a": 2}, "targets": ["arousal"]})

    with caplog.at_level("WARNING", logger="affectflow"):
        assert fit_stacked_seeds(bn, [1, 2], build, None, None, device=torch.device("cpu")) == {}
    assert "not stacked: training.schedule 'progressive_unfreezing'" in caplog.text
