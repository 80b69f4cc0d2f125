"""Personalisation: the synthetic layout, vectorised = plain fine-tuning, the procedure and its error paths."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from affectflow.cli.main import main
from affectflow.corpus.corpus import Corpus
from affectflow.data.dataset import collate
from affectflow.errors import ConfigError, RunError
from affectflow.experiment import train
from affectflow.models import MODELS, build_model
from affectflow.predictions import Predictions, score
from affectflow.procedures.finetune import FineTuneSettings, JobData, finetune_loop, finetune_vectorised
from affectflow.procedures.personalise import load_report, personalise, personalised_predictions
from affectflow.runs import load_checkpoint
from affectflow.synthetic.corpus import generate_corpus

from ..conftest import tiny_config


@pytest.fixture(scope="module")
def pers_corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("pers") / "corpus", n_subjects=20, duration_s=200.0,
                           duration_jitter_s=20.0, layout="personalisation", seed=1, progress=False)


@pytest.fixture(scope="module")
def pers_run(pers_corpus, tmp_path_factory):
    cfg = tiny_config(pers_corpus.path, tmp_path_factory.mktemp("pers_runs"), "training.epochs=8",
                      "training.patience=8", "training.seeds=[1]")
    return train(cfg, progress=False)


def test_personalisation_layout_cuts_test_subjects_and_hides_the_subject_effect(pers_corpus, tmp_path):
    rec = pers_corpus.recordings.set_index("id")
    test_subjects = sorted(rec[rec["partition"] == "test"]["subject"])
    assert len(test_subjects) == 4 and all(f"{s}_test" in rec.index for s in test_subjects)
    s = test_subjects[0]
    assert rec.loc[f"{s}_train", "partition"] == "train" and rec.loc[f"{s}_devel", "partition"] == "devel"
    assert rec.loc[f"{s}_train", "duration"] == 60.0 and rec.loc[f"{s}_devel", "duration"] == 60.0
    assert set(rec[rec["subject"] == s].index) == {f"{s}_train", f"{s}_devel", f"{s}_test"}
    labels = pers_corpus.read_labels(f"{s}_devel")
    assert labels["time"].iloc[0] == 0.0 and labels["time"].iloc[-1] == pytest.approx(59.5)
    # the same seed in the plain layout: identical features (the pieces are cuts of them), other labels
    plain = generate_corpus(tmp_path / "plain", n_subjects=20, duration_s=200.0, duration_jitter_s=20.0, seed=1,
                            progress=False)
    whole = plain.read_features("acoustic", f"{s}_rec")
    piece = pers_corpus.read_features("acoustic", f"{s}_devel")
    cut = whole[(whole["time"] >= 60) & (whole["time"] < 120)].reset_index(drop=True)
    np.testing.assert_allclose(piece.drop(columns="time").to_numpy(), cut.drop(columns="time").to_numpy())
    np.testing.assert_allclose(piece["time"].to_numpy(), cut["time"].to_numpy() - 60)
    a = pers_corpus.read_labels(f"{s}_devel", "continuous_clean")
    b = plain.read_labels(f"{s}_rec", "continuous_clean")
    b = b[(b["time"] >= 60) & (b["time"] < 120)]
    # label = gain * latent + offset per subject and dimension: an exact affine map of the plain labels, not equal
    for dim in ("arousal", "valence"):
        gain, off = np.polyfit(b[dim], a[dim], 1)
        np.testing.assert_allclose(gain * b[dim].to_numpy() + off, a[dim].to_numpy(), atol=1e-6)
        assert abs(gain - 1) + abs(off) > 0.01
    with pytest.raises(ConfigError, match="longer than 120 s"):
        generate_corpus(tmp_path / "short", n_subjects=4, duration_s=100.0, layout="personalisation", progress=False)


def _items(rng, n, t, dims, k):
    out = []
    for i in range(n):
        length = t if i % 3 else t - 3
        x = {d: rng.standard_normal((length, w)).astype(np.float32) for d, w in dims.items()}
        y = np.tanh(x["a"][:, :k] + 0.1 * rng.standard_normal((length, k))).astype(np.float32)
        out.append({"x": x, "feature_mask": {d: rng.random(length) > 0.1 for d in dims}, "y": y, "index": 0,
                    "start": 0})
    return out


@pytest.mark.parametrize("kind,params", [
    ("gru", {"d_model": 8, "d_fc": 4, "dropout": 0.0}),
    ("gru", {"d_model": 6, "d_fc": 4, "bidirectional": True, "num_layers": 2, "dropout": 0.3}),  # own masks per job
    ("lstm", {"hidden_size": 6, "bidirectional": True, "dropout": 0.2}),
    ("tcn", {"channels": [6, 6], "dropout": 0.1}),
    # attention (no dropout: nn.MultiheadAttention drops inside its kernel); the softmax grows the rounding over
    # 8 epochs at lr 0.05 to about 2e-4 in single weights
    ("transformer", {"d_model": 8, "num_heads": 2, "num_layers": 1, "dim_feedforward": 16, "dropout": 0.0}),
])
def test_vectorised_finetuning_equals_the_plain_loop(kind, params):
    """Any registered model stacks (no keys known); dropout masks follow each job's seed as in the loop."""
    torch.manual_seed(0)
    dims = {"a": 5, "b": 3}
    base = MODELS.build(kind, params, input_dims=dims, targets=["arousal", "valence"])
    rng = np.random.default_rng(0)
    # subjects with 7, 12 and 5 windows: different numbers of batches per epoch, padded windows, 2 seeds each
    data = [JobData(collate(_items(rng, n, 10, dims, 2)), collate(_items(rng, 2, 30, dims, 2))) for n in (7, 12, 5)]
    jobs = [(d, s) for d in data for s in (1, 2)]
    # a high learning rate and patience 1: some jobs stop early (and leave the stack), others run all 8 epochs
    st = FineTuneSettings(epochs=8, patience=1, lr=0.05, batch_size=4, grad_clip=0.5, weight_decay=0.01)
    plain, vec = finetune_loop(base, jobs, st), finetune_vectorised(base, jobs, st, group_size=5)
    for a, b in zip(plain, vec):
        assert a.best_epoch == b.best_epoch and len(a.history) == len(b.history)
        np.testing.assert_allclose(a.history, b.history, atol=1e-4)
        for k in a.state_dict:
            torch.testing.assert_close(a.state_dict[k], b.state_dict[k], atol=1e-3 if kind == "transformer" else 1e-4,
                                       rtol=1e-3)
    lengths = [len(r.history) for r in plain]
    assert min(lengths) < 9 and max(lengths) == 9, lengths
    assert plain[0].history != plain[1].history  # seeds differ (data order)
    assert max(r.best_score for r in plain) > 0.5  # something was learnt
    bn = MODELS.build(kind, params, input_dims=dims, targets=["arousal", "valence"])
    bn.add_module("norm", torch.nn.BatchNorm1d(3))  # statistics a stacked call cannot write back
    with pytest.raises(ValueError, match="buffer 'norm.running_mean'"):
        finetune_vectorised(bn, jobs, st)


def test_personalise_improves_the_pooled_test_ccc_and_writes_everything(pers_run):
    out = personalise(pers_run, seeds=3, epochs=20, patience=5)
    assert out.parent == pers_run / "personalisation"
    rep = load_report(out)
    test = rep["partitions"]["test"]
    # measured: arousal 0.852 -> 0.892, valence 0.456 -> 0.778 (noise-free ceiling about 0.98)
    for t in ("arousal", "valence"):
        assert test["after"][t]["ccc"] > test["before"][t]["ccc"], test
    assert test["after"]["valence"]["ccc"] > test["before"]["valence"]["ccc"] + 0.1
    assert test["ceiling"]["valence"] > 0.9
    subjects = rep["subjects"]
    assert len(subjects) == 4 and all(s["status"] == "personalised" for s in subjects.values())
    s, info = next(iter(subjects.items()))
    assert set(info["per_seed"]) == {"1", "2", "3"} and info["seed"] in (1, 2, 3)
    assert info["devel_score"] == max(v["devel_score"] for v in info["per_seed"].values()) >= info["devel_score_base"]
    # checkpoints: state dict + config, weights_only, rebuild the model
    ck = load_checkpoint(out / "checkpoints" / f"{s}.pt")
    model = build_model(ck["model"])
    model.load_state_dict(ck["state_dict"])
    assert ck["subject"] == s and ck["seed"] == info["seed"] and ck["kind"] == "personalised"
    # the result is a Predictions value whose scores are the report's
    after = personalised_predictions(out, "test")
    assert score(after)["valence"]["ccc"] == pytest.approx(test["after"]["valence"]["ccc"])
    before = personalised_predictions(out, "test", base=True)
    after.check_same_layout(before)
    assert score(before)["arousal"]["ccc"] == pytest.approx(test["before"]["arousal"]["ccc"])
    run_preds = Predictions.load(pers_run / "predictions" / "test")
    np.testing.assert_allclose(before.flat_outputs(), run_preds.flat_outputs(), atol=1e-5)
    assert "| test | valence |" in (out / "results.md").read_text()
    # the folder is run-like for procedures over saved predictions: fusion takes it as a member
    from affectflow.procedures.fuse import fuse_runs

    fused = json.loads((fuse_runs([out, pers_run], method="mean") / "fusion.json").read_text())
    assert fused["scores"][out.name]["test"]["valence"]["ccc"] == pytest.approx(test["after"]["valence"]["ccc"])
    with pytest.raises(RunError, match="no personalised predictions"):
        personalised_predictions(out, "nope")


def test_a_personalisation_folder_is_a_run_that_predicts_and_evaluates(pers_corpus, pers_run):
    from affectflow.experiment import evaluate
    from affectflow.procedures.personalise import PersonalisedRun
    from affectflow.runs import Run

    subjects = sorted(set(pers_corpus.recordings.query("partition == 'test'")["subject"]))[:2]
    run = PersonalisedRun.fit(pers_run, seeds=1, epochs=2, implementation="loop", subjects=subjects)
    out = run.path  # the contract's fit is personalise()
    assert type(Run(out)) is PersonalisedRun
    saved = personalised_predictions(out, "test")
    again = run.predict(ids=saved.recordings, device="cpu")
    for a, b in zip(again.values, saved.values):
        np.testing.assert_allclose(a, b, atol=1e-5)
    _, ev = evaluate(out, partitions=["test"], device="cpu", progress=False)
    after = load_report(out)["partitions"]["test"]["after"]
    assert ev["partitions"]["test"]["arousal"]["ccc"] == pytest.approx(after["arousal"]["ccc"], abs=1e-5)
    # info(): the base model's size, the subjects with their own weights, the base run as its source
    info = run.info()
    assert info["kind"] == "personalisation" and info["sources"] == [
        {"role": "base", "path": str(pers_run), "kind": "trained", "exists": True}]
    assert info["model"]["subjects"] == subjects and info["model"]["checkpoints"] == 2
    assert info["model"]["parameters"] == Run(pers_run).info()["model"]["parameters"] > 0
    assert info["scores"]["test"] == after and info["selected_seed"] is None


def test_a_subject_without_own_devel_keeps_the_base_model(pers_corpus, pers_run, tmp_path):
    moved = tmp_path / "corpus"
    shutil.copytree(pers_corpus.path, moved)
    c = Corpus(moved)
    table = c.recordings.copy()
    s = sorted(table[table["partition"] == "test"]["subject"])[0]
    table.loc[table["id"] == f"{s}_devel", "partition"] = "extra"
    c.set_recordings(table)
    out = personalise(pers_run, seeds=2, epochs=2, corpus=moved, implementation="loop", subjects=[s, "S000"])
    rep = load_report(out)
    assert rep["subjects"][s]["status"] == "base model" and "no own devel" in rep["subjects"][s]["reason"]
    assert rep["subjects"]["S000"]["status"] == "base model"
    assert not (out / "checkpoints").exists()
    test = rep["partitions"]["test"]
    assert test["after"]["arousal"]["ccc"] == pytest.approx(test["before"]["arousal"]["ccc"])
    assert "base model: no own devel" in (out / "results.md").read_text()
    with pytest.raises(ConfigError, match="not in corpus"):
        personalise(pers_run, subjects=["nobody"], corpus=moved)


def test_a_run_whose_corpus_moved_and_other_bad_input(pers_corpus, pers_run, tmp_path, capsys):
    import yaml

    copy = tmp_path / "run"
    shutil.copytree(pers_run, copy, ignore=shutil.ignore_patterns("personalisation"))
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    cfg["data"]["corpus"] = str(tmp_path / "gone")
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(RunError, match=r"cannot be opened .* if it has moved, pass its new location"):
        personalise(copy, seeds=1)
    assert main(["personalise", str(copy), "--seeds", "1"]) == 2
    assert "has moved" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="implementation"):
        personalise(pers_run, implementation="gpu")
    with pytest.raises(ConfigError, match="no seed twice"):
        personalise(pers_run, seeds=[1, 1])
    rec = pers_corpus.recordings
    s = sorted(rec[rec["partition"] == "test"]["subject"])[0]
    assert main(["personalise", str(copy), "--corpus", str(pers_corpus.path), "--seed-list", "4", "--epochs", "1",
                 "--subjects", s, "-q"]) == 0
    out = capsys.readouterr().out
    assert "Pooled CCC over all subjects" in out and f"| {s} | personalised | 4 |" in out


def test_l2sp_vectorised_equals_loop_and_pulls_toward_the_base():
    torch.manual_seed(0)
    dims = {"a": 5, "b": 3}
    base = MODELS.build("gru", {"d_model": 8, "d_fc": 4, "dropout": 0.0}, input_dims=dims, targets=["arousal"])
    rng = np.random.default_rng(1)
    data = [JobData(collate(_items(rng, n, 10, dims, 1)), collate(_items(rng, 2, 30, dims, 1))) for n in (6, 9)]
    jobs = [(d, s) for d in data for s in (1, 2)]
    free = FineTuneSettings(epochs=4, patience=4, lr=0.05, batch_size=4, grad_clip=None)
    tied = FineTuneSettings(epochs=4, patience=4, lr=0.05, batch_size=4, grad_clip=None, l2sp=5.0)
    plain, vec = finetune_loop(base, jobs, tied), finetune_vectorised(base, jobs, tied, group_size=3)
    for a, b in zip(plain, vec):
        for k in a.state_dict:
            torch.testing.assert_close(a.state_dict[k], b.state_dict[k], atol=1e-4, rtol=1e-3)

    def dist(results):
        b0 = base.state_dict()
        return [sum(float(((r.state_dict[k] - b0[k]) ** 2).sum()) for k in b0) for r in results
                if r.best_epoch > 0]

    free_runs = finetune_loop(base, jobs, free)
    # same epochs, stronger pull: the tied models end nearer the base weights
    pairs = [(a, b) for a, b in zip(dist(plain), dist(free_runs))]
    assert pairs and all(a < b for a, b in pairs), pairs


def test_personalise_average_and_shrink(pers_run):
    sel = load_report(personalise(pers_run, seeds=2, epochs=3, patience=3))
    avg_dir = personalise(pers_run, seeds=2, epochs=3, patience=3, combine="average")
    avg = load_report(avg_dir)
    assert avg["options"]["combine"] == "average" and "average all seeds" in avg["protocol"]
    s = next(iter(avg["subjects"]))
    assert sorted(p.name for p in (avg_dir / "checkpoints").glob(f"{s}-seed*.pt")) == [f"{s}-seed1.pt",
                                                                                        f"{s}-seed2.pt"]
    # same fine-tuning, other combination: different personalised test predictions
    assert avg["partitions"]["test"]["after"] != sel["partitions"]["test"]["after"]
    # shrinking the update to almost nothing gives back (almost) the base model's predictions
    tiny = load_report(personalise(pers_run, seeds=2, epochs=3, patience=3, shrink=1e-6))
    for t in ("arousal", "valence"):
        assert tiny["partitions"]["test"]["after"][t]["ccc"] == pytest.approx(
            tiny["partitions"]["test"]["before"][t]["ccc"], abs=1e-4)
    for bad, msg in (({"combine": "vote"}, "`combine`"), ({"shrink": 0}, "`shrink`"), ({"l2sp": -1}, "`l2sp`")):
        with pytest.raises(ConfigError, match=msg):
            personalise(pers_run, seeds=1, **bad)


def test_forked_workers_give_the_same_personalisation(pers_run):
    from affectflow.execution.forked import fork_available

    if not fork_available():
        pytest.skip("needs the fork start method")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' one thread: same arithmetic as in this process
    try:
        here = load_report(personalise(pers_run, seeds=2, epochs=3, patience=5, group_size=3))
        forked = load_report(personalise(pers_run, seeds=2, epochs=3, patience=5, group_size=3, backend="forked",
                                         workers=2))
    finally:
        torch.set_num_threads(before)
    assert here["subjects"] == forked["subjects"]  # per subject and seed: histories, selected seeds, scores
    assert here["partitions"] == forked["partitions"]
