"""`affectflow train --resume RUN`: a training process killed with SIGKILL after an epoch checkpoint is continued in
place, and the final numbers equal those of an uninterrupted run with the same seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from affectflow.cli.main import main
from affectflow.config import load_config
from affectflow.errors import RunError
from affectflow.experiment import evaluate, resume_training, train
from affectflow.runs import Run, load_checkpoint, run_status
from affectflow.synthetic.corpus import generate_corpus

# dropout and a plateau scheduler with lr_patience=0 make RNG and scheduler state matter
OVERRIDES = ["data.features=[acoustic,visual]", "data.window.size=20", "data.window.hop=10", "training.epochs=3",
             "training.patience=10", "training.lr_patience=0", "training.lr_factor=0.5", "training.seeds=[1,2]",
             "training.batch_size=8", "training.device=cpu", "training.num_threads=1", "model.d_model=16",
             "model.d_fc=8", "model.dropout=0.3", "training.lr=0.003",
             "training.stack_seeds=false"]  # one seed after another (stacked resume: test_stacked_seeds.py)

# Kills its own process with SIGKILL right after the epoch state of (seed, epoch) is on disk.
KILLER = """
import os, signal, sys
import torch
torch.set_num_threads(1)
import affectflow.experiment as E
from affectflow.config import load_config
seed, epoch = int(sys.argv[1]), int(sys.argv[2])
real = E.save_epoch_state
def save_then_die(path, state):
    real(path, state)
    if path.name == f"seed-{seed}.pt" and state["epoch"] == epoch:
        os.kill(os.getpid(), signal.SIGKILL)
E.save_epoch_state = save_then_die
E.train(load_config(None, sys.argv[3:]), progress=False)
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    corpus = generate_corpus(base / "c", n_subjects=5, duration_s=40.0, duration_jitter_s=5.0, seed=4, progress=False)
    args = [f"data.corpus={corpus.path}", *OVERRIDES]
    reference = train(load_config(None, [*args, f"output.runs_dir={base / 'ref'}"]), progress=False)
    return base, args, reference


def run_killer(seed: int, epoch: int, args: list[str], runs_dir: Path) -> subprocess.CompletedProcess:
    """Train ``args`` into ``runs_dir`` in a subprocess that :data:`KILLER` kills after (``seed``, ``epoch``)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", KILLER, str(seed), str(epoch), *args, f"output.runs_dir={runs_dir}"],
                          env=env, capture_output=True, text=True, timeout=600)


def _killed_run(base: Path, args: list[str], seed: int, epoch: int) -> Path:
    runs = base / f"killed-{seed}-{epoch}"
    proc = run_killer(seed, epoch, args, runs)
    assert proc.returncode == -9, proc.stderr[-2000:]
    (run,) = list(runs.iterdir())
    return run


def _metrics(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    m.pop("train_samples_per_s")  # wall-clock throughput
    m.pop("train_frames_per_s", None)
    return m


@pytest.mark.parametrize("seed,epoch", [(2, 2), (1, 1)])
def test_killed_training_resumes_to_the_same_numbers(setup, capsys, seed, epoch):
    base, args, reference = setup
    run = _killed_run(base, args, seed, epoch)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "running" and run_status(info) == "interrupted"
    assert (run / "resume" / f"seed-{seed}.pt").is_file()
    assert (run / "checkpoints" / "seed-1.pt").is_file() == (seed == 2)  # the finished seed is kept
    # the stale status is shown as interrupted
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "status: interrupted" in out and f"seed {seed}: epoch state after epoch {epoch}" in out
    with pytest.raises(RunError, match=r"was interrupted .*train --resume"):
        evaluate(run, progress=False)
    assert main(["evaluate", str(run), "-q"]) == 2
    assert "train --resume" in capsys.readouterr().err.replace("\n", " ")

    assert main(["train", "--resume", str(run), "-q"]) == 0
    assert Run(run).status == "finished" and not (run / "resume").exists()
    assert _metrics(run) == _metrics(reference)
    for f in sorted((reference / "predictions").rglob("*.csv")):
        assert (run / f.relative_to(reference)).read_bytes() == f.read_bytes(), f
    for s in (1, 2):
        a, b = load_checkpoint(run / "checkpoints" / f"seed-{s}.pt"), load_checkpoint(reference / "checkpoints" / f"seed-{s}.pt")
        assert a["best_epoch"] == b["best_epoch"] and a["devel_score"] == b["devel_score"]
        for k, v in b["state_dict"].items():
            assert torch.equal(a["state_dict"][k], v), k
        cols = ["epoch", "train_loss", "devel_score", "lr"]
        pd.testing.assert_frame_equal(pd.read_csv(run / "history" / f"seed-{s}.csv")[cols],
                                      pd.read_csv(reference / "history" / f"seed-{s}.csv")[cols])


def test_resume_refuses_finished_running_and_mixed_options(setup, tmp_path, capsys):
    base, args, reference = setup
    with pytest.raises(RunError, match="has finished; there is nothing to resume"):
        resume_training(reference, progress=False)
    info = json.loads((reference / "run.json").read_text())
    live = {**info, "status": "running", "pid": os.getpid(), "host": __import__("socket").gethostname()}
    live["pid_start"] = __import__("affectflow.runs", fromlist=["x"])._process_start(os.getpid())
    assert run_status(live) == "running"
    assert run_status({**live, "pid_start": "1"}) == "interrupted"  # the pid was reused by another process
    assert run_status({**live, "host": "elsewhere", "heartbeat_unix": 0}) == "interrupted"
    assert main(["train", "--resume", str(reference), "--set", "training.lr=1"]) == 2
    assert "cannot be combined" in capsys.readouterr().err
