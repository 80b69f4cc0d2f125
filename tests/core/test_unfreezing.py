"""Progressive unfreezing (ABAW5 3.4): the learning-rate trace, unfreezing epochs and devel curve in history.csv
match the procedure; frozen groups do not move; a killed run resumes to the same numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from affectflow.config import load_config
from affectflow.errors import ConfigError
from affectflow.experiment import resume_training, train
from affectflow.models import MODELS
from affectflow.models.backbones import model_param_groups
from affectflow.runs import load_checkpoint
from affectflow.synthetic.corpus import generate_corpus

LR, MIN_LR, FACTOR, WARMUP, PATIENCE = 0.01, 1e-4, 0.1, 2, 1
GROUPS = ["backbone.stage4", "backbone.stage3"]
MODEL = ("model={type: composite, fusion: {type: early, d_model: null}, encoder: {type: stack, stages: ["
         "{type: backbone, input_shape: [1, 1, 4], widths: [2, 2, 2, 2], pixel_norm: null}, "
         "{type: gru, hidden_size: 8}]}}")
ARGS = ["data.features=[acoustic]", "data.window.size=20", "data.window.hop=10", "training.epochs=40",
        "training.seeds=[1]", "training.batch_size=8", "training.device=cpu", "training.num_threads=1",
        "training.schedule=progressive_unfreezing", f"training.unfreezing.groups=[{','.join(GROUPS)}]",
        f"training.unfreezing.lr={LR}", f"training.unfreezing.min_lr={MIN_LR}",
        f"training.unfreezing.factor={FACTOR}", f"training.unfreezing.warmup_epochs={WARMUP}",
        f"training.unfreezing.patience={PATIENCE}", "output.plots=true", MODEL]

KILLER = """
import os, signal, sys
import torch
torch.set_num_threads(1)
import affectflow.experiment as E
from affectflow.config import load_config
epoch = int(sys.argv[1])
real = E.save_epoch_state
def save_then_die(path, state):
    real(path, state)
    if state["epoch"] == epoch:
        os.kill(os.getpid(), signal.SIGKILL)
E.save_epoch_state = save_then_die
E.train(load_config(None, sys.argv[2:]), progress=False)
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("unfreeze")
    corpus = generate_corpus(base / "c", n_subjects=5, duration_s=40.0, duration_jitter_s=5.0, seed=4, progress=False)
    args = [f"data.corpus={corpus.path}", *ARGS]
    run = train(load_config(None, [*args, f"output.runs_dir={base / 'ref'}"]), progress=False)
    return base, args, run


def test_history_trace_matches_the_procedure(setup):
    _, _, run = setup
    h = pd.read_csv(run / "history" / "seed-1.csv", keep_default_na=False)
    n = len(h)
    assert n < 40, "the schedule ends after the last group's stage"
    unfrozen = [(int(e), g) for e, g in zip(h["epoch"], h["unfrozen"]) if g]
    assert [g for _, g in unfrozen] == GROUPS and unfrozen[0][0] == 1
    starts = [e for e, _ in unfrozen]
    best = -np.inf
    for i, r in h.iterrows():
        e = int(r["epoch"])
        stage_start = max(s for s in starts if s <= e)
        in_warmup = e - stage_start < WARMUP
        assert r["stage"] == starts.index(stage_start) + 1
        assert r["phase"] == ("warmup" if in_warmup else "plateau")
        if in_warmup:  # linear warm-up within the epoch, ending at lr
            assert r["lr_end"] == pytest.approx(LR) and r["lr_start"] < LR
        else:  # the rate is constant within an epoch and a power of the factor, never below min_lr
            assert r["lr_start"] == r["lr_end"]
            k = np.log(r["lr_end"] / LR) / np.log(FACTOR)
            assert abs(k - round(k)) < 1e-6 and r["lr_end"] >= MIN_LR * (1 - 1e-9)
        improved = r["devel_score"] > best
        best = max(best, r["devel_score"])
        assert r["best_devel_score"] == pytest.approx(best)
        assert bool(r["reloaded_best"]) == (not improved)  # the best state is reloaded after every other epoch
        assert r["frames_per_s"] > 0
    # each later unfreezing (and the end) follows PATIENCE epochs at min_lr without a better devel score
    for e in [*starts[1:], n + 1]:
        prev = h[(h["epoch"] >= e - PATIENCE) & (h["epoch"] < e)]
        assert (prev["lr_end"] <= MIN_LR * (1 + 1e-6)).all() and (prev["phase"] == "plateau").all()
        assert (prev["devel_score"] <= h[h["epoch"] < e - PATIENCE]["devel_score"].max()).all()
    # a reset to the full rate at each unfreezing
    for e in starts[1:]:
        assert h[h["epoch"] == e]["lr_end"].item() == pytest.approx(LR)
    assert (run / "plots" / "learning_curves.png").is_file()
    ck = load_checkpoint(run / "checkpoints" / "seed-1.pt")
    assert ck["frames_per_s"] > 0 and ck["best_epoch"] == int(h["devel_score"].idxmax()) + 1


def _backbone_params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "stages.0.net" in n}


def test_groups_not_unfrozen_never_move(setup, tmp_path):
    base, args, run = setup
    torch.manual_seed(1)  # the trainer seeds with the seed before building: same initial weights
    from affectflow.experiment import load_model

    model, _, _ = load_model(run)
    from affectflow.training.seeds import seed_everything

    seed_everything(1)
    ck = load_checkpoint(run / "checkpoints" / "seed-1.pt")
    init = MODELS.build("composite", ck["model"]["params"], input_dims=ck["model"]["input_dims"],
                        targets=ck["model"]["targets"])
    groups = model_param_groups(model)
    ids = {id(p): n for n, p in model.named_parameters()}
    a, b = dict(model.named_parameters()), dict(init.named_parameters())
    for g, params in groups.items():
        moved = any(not torch.equal(a[ids[id(p)]], b[ids[id(p)]]) for p in params)
        if g not in GROUPS or g == GROUPS[0]:  # never unfrozen: unchanged; the first group trains from epoch 1
            assert moved == (g in GROUPS), g
    frozen = train(load_config(None, [*args, "training.unfreezing.groups=[]", f"output.runs_dir={tmp_path}"]),
                   progress=False)
    f_model, _, _ = load_model(frozen)
    fa = dict(f_model.named_parameters())
    assert all(torch.equal(fa[ids[id(p)]], b[ids[id(p)]]) for ps in groups.values() for p in ps)
    # frozen groups keep their BatchNorm statistics too: the never-unfrozen stem and stages 1-2 in the staged run,
    # every group in the frozen run
    bi, bs, bf = (dict(m.named_buffers()) for m in (init, model, f_model))
    stats = [n for n in bi if "running" in n]
    assert stats and all(torch.equal(bf[n], bi[n]) for n in stats)
    kept = [n for n in stats if ".stem." in n or ".stage1." in n or ".stage2." in n]
    assert kept and all(torch.equal(bs[n], bi[n]) for n in kept)
    assert not all(torch.equal(bs[n], bi[n]) for n in stats if ".stage4." in n)
    assert not torch.equal(fa["head.out.weight"] if "head.out.weight" in fa else list(fa.values())[-1],
                           list(b.values())[-1])


def test_unknown_group_is_a_config_error(setup, tmp_path):
    base, args, _ = setup
    with pytest.raises(ConfigError, match=r"backbone\.stage9.*backbone\.stage4"):
        train(load_config(None, [*args, "training.unfreezing.groups=[backbone.stage9]",
                                 f"output.runs_dir={tmp_path}"]), progress=False)


def test_killed_run_resumes_to_the_same_trace(setup):
    base, args, reference = setup
    h_ref = pd.read_csv(reference / "history" / "seed-1.csv", keep_default_na=False)
    kill_at = int(h_ref[h_ref["unfrozen"] == GROUPS[1]]["epoch"].item())  # right after the first stage ended
    runs = base / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(kill_at - 1), *args, f"output.runs_dir={runs}"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    (run,) = list(runs.iterdir())
    resume_training(run, progress=False)
    h = pd.read_csv(run / "history" / "seed-1.csv", keep_default_na=False)
    cols = ["epoch", "train_loss", "devel_score", "lr", "lr_start", "lr_end", "stage", "unfrozen", "phase",
            "reloaded_best"]
    pd.testing.assert_frame_equal(h[cols], h_ref[cols])
    a, b = load_checkpoint(run / "checkpoints" / "seed-1.pt"), load_checkpoint(reference / "checkpoints" / "seed-1.pt")
    assert all(torch.equal(a["state_dict"][k], v) for k, v in b["state_dict"].items())
