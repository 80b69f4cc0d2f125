"""Prepared batches (data/batches.py) equal the DataLoader's, and training with them equals training without."""

import copy

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from affectflow.config import load_config
from affectflow.data import Normalizer, SequenceStore, WindowDataset
from affectflow.data.batches import PreparedBatches, prepare_batches
from affectflow.data.dataset import collate
from affectflow.models import MODELS
from affectflow.training import trainer
from affectflow.training.trainer import fit_seed

from ..conftest import SMALL_MODEL


def _dataset(corpus, size=40, hop=15):
    store = SequenceStore(corpus, ["acoustic", "visual", "physio"], ["arousal", "valence"],
                          corpus.recording_ids(["train"]))
    return WindowDataset(store, Normalizer().fit(store), size, hop, require_labels=True)


def _equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _equal(a[k], b[k])
        else:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            assert torch.equal(a[k], b[k]), k


def test_epoch_equals_the_dataloader_batches_and_random_draws(tiny_corpus):
    ds = _dataset(tiny_corpus)
    lengths = [e - s for _, s, e in ds.items]
    assert min(lengths) < max(lengths)  # short tail windows: batches are padded
    prep = PreparedBatches(ds)
    divisor = next(b for b in range(9, 1, -1) if len(ds) % b == 0)
    for bs in (7, divisor, len(ds), len(ds) + 3):  # a partial last batch, none, one batch, one short batch
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        torch.manual_seed(11)
        want = list(DataLoader(ds, batch_size=bs, sampler=RandomSampler(ds, generator=g1), collate_fn=collate))
        after_loader = (torch.rand(3), torch.randperm(50, generator=g1))
        torch.manual_seed(11)
        got = list(prep.epoch(bs, g2))
        after_prepared = (torch.rand(3), torch.randperm(50, generator=g2))
        assert len(got) == len(want) == prep.num_batches(bs)
        for a, b in zip(got, want):
            _equal(a, b)
        # the global stream (dropout) and the data-order generator are left where the DataLoader left them
        assert torch.equal(after_loader[0], after_prepared[0]) and torch.equal(after_loader[1], after_prepared[1])


def test_prepare_batches_falls_back_beyond_the_memory_budget(tiny_corpus):
    ds = _dataset(tiny_corpus)
    assert isinstance(prepare_batches(ds), PreparedBatches)
    assert prepare_batches(ds, max_bytes=1000) is None
    assert prepare_batches(copy.copy(ds).__class__.__new__(ds.__class__)) is None  # no items: not prepared


def test_training_with_prepared_batches_equals_the_dataloader_path(tiny_corpus, monkeypatch):
    ds = _dataset(tiny_corpus)
    cfg = load_config(None, [f"data.corpus={tiny_corpus.path}", *SMALL_MODEL, "model.dropout=0.2",
                             "training.epochs=2", "training.batch_size=16"])

    def run():
        torch.manual_seed(3)
        model = MODELS.build("gru", cfg.model.params, input_dims=ds.store.dims, targets=["arousal", "valence"])
        res = fit_seed(model, ds, lambda m: float(m.fc.weight.detach().sum()), cfg.training, 3, device=torch.device("cpu"),
                       progress=False)
        return model.state_dict(), res

    prepared_state, prepared_res = run()
    monkeypatch.setattr(trainer, "prepare_batches", lambda ds: None)
    loader_state, loader_res = run()
    for k in loader_state:
        assert torch.equal(prepared_state[k], loader_state[k]), k
    assert [h["train_loss"] for h in prepared_res.history] == [h["train_loss"] for h in loader_res.history]
    assert np.isfinite(prepared_res.history[-1]["train_loss"])
