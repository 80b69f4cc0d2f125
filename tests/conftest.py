"""Shared fixtures: a tiny synthetic corpus and a tiny trained run, made once per test session."""

from __future__ import annotations

import pytest
import torch

from affectflow.config import load_config
from affectflow.experiment import train
from affectflow.synthetic.corpus import generate_corpus

# One intra-op thread: deterministic timing and no OpenMP spin-wait collapse when the machine is busy.
torch.set_num_threads(1)

SMALL_MODEL = ["model.d_model=32", "model.d_fc=16", "model.dropout=0.0"]


def tiny_config(corpus, runs, *extra):
    """A fast config for tests: small GRU, short windows, few epochs, two seeds."""
    return load_config(
        None,
        [
            f"data.corpus={corpus}",
            f"output.runs_dir={runs}",
            "data.features=[acoustic,visual,physio]",
            "data.window.size=40",
            "data.window.hop=20",
            "training.epochs=6",
            "training.patience=6",
            "training.seeds=[1,2]",
            "training.batch_size=16",
            "training.device=cpu",
            "training.lr=0.003",
            *SMALL_MODEL,
            *extra,
        ],
    )


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "corpus"
    return generate_corpus(path, n_subjects=10, duration_s=150.0, duration_jitter_s=20.0, seed=3, progress=False)


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return train(tiny_config(tiny_corpus.path, runs), progress=False)
