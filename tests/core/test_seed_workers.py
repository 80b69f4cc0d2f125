"""Seeds trained side by side in forked worker processes (`training.seed_workers`, experiment.fit_in_workers): the
run equals training the seeds one by one with one thread, bit for bit; a killed worker fails the run with its seed
named, and the run resumes to the same numbers; bad values and impossible combinations are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from affectflow.config import load_config
from affectflow.errors import ConfigError
from affectflow.execution.forked import fork_available
from affectflow.experiment import resume_training, seed_worker_count, train
from affectflow.runs import Run, load_checkpoint
from affectflow.synthetic.corpus import generate_corpus
from tests.core.test_resume import OVERRIDES, run_killer  # run_killer: SIGKILL after the epoch state of (seed, epoch)

pytestmark = pytest.mark.skipif(not fork_available(), reason="needs the fork start method")

SEEDS = ["training.seeds=[1,2,3]"]  # 2 workers: seeds 1 and 2 side by side, then seed 3 in the parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("seedworkers")
    corpus = generate_corpus(base / "c", n_subjects=5, duration_s=40.0, duration_jitter_s=5.0, seed=4, progress=False)
    args = [f"data.corpus={corpus.path}", *OVERRIDES, *SEEDS]
    one = train(load_config(None, [*args, f"output.runs_dir={base / 'one'}"]), progress=False)
    par = train(load_config(None, [*args, "training.seed_workers=2", f"output.runs_dir={base / 'par'}"]),
                progress=False)
    return base, args, one, par


def _metrics(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    for k in ("train_samples_per_s", "train_frames_per_s"):  # wall-clock throughput
        m.pop(k, None)
    return m


def _assert_identical(a: Path, b: Path) -> None:
    assert _metrics(a) == _metrics(b)
    for seed in (1, 2, 3):
        ha, hb = (pd.read_csv(r / "history" / f"seed-{seed}.csv") for r in (a, b))
        cols = ["epoch", "train_loss", "devel_score", "lr"]
        pd.testing.assert_frame_equal(ha[cols], hb[cols])
        ca, cb = (load_checkpoint(r / "checkpoints" / f"seed-{seed}.pt") for r in (a, b))
        assert ca["best_epoch"] == cb["best_epoch"] and ca["devel_score"] == cb["devel_score"]
        for k, v in ca["state_dict"].items():
            assert torch.equal(v, cb["state_dict"][k]), (seed, k)
    for part in ("devel", "test"):
        pa, pb = (sorted((r / "predictions" / part).iterdir()) for r in (a, b))
        assert [p.name for p in pa] == [p.name for p in pb] and pa
        assert all(x.read_bytes() == y.read_bytes() for x, y in zip(pa, pb))


def test_seed_workers_equal_one_by_one_bit_for_bit(runs):
    _, _, one, par = runs
    _assert_identical(one, par)
    log = (par / "train.log").read_text()
    assert "training seeds [1, 2] in 2 worker processes (1 torch thread each), then [3] here" in log
    h = [pd.read_csv(par / "history" / f"seed-{s}.csv")["devel_score"] for s in (1, 2)]
    assert not h[0].equals(h[1])  # the seeds really differ


def test_killed_worker_fails_the_run_naming_its_seed_and_resume_gives_the_same_numbers(runs):
    base, args, one, _ = runs
    out = base / "killed"
    # the patched save_epoch_state is inherited by the workers: seed 2's worker kills itself after epoch 2
    proc = run_killer(2, 2, [*args, "training.seed_workers=2"], out)
    assert proc.returncode not in (0, -9), proc.stderr[-2000:]  # the parent lived and reported the failure
    assert "A worker process died (killed, or out of memory?) while running seed 1, seed 2" in proc.stderr
    (run,) = list(out.iterdir())
    assert Run(run).status.startswith("failed")
    assert not (run / "metrics.json").exists() and (run / "resume" / "seed-2.pt").is_file()
    resumed = resume_training(run, progress=False)  # the config still asks for 2 workers
    _assert_identical(one, resumed)


def test_worker_counts(runs):
    args = runs[1]
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    cfg = load_config(None, args)
    assert cfg.training.seed_workers == 1 and seed_worker_count(cfg, 3, cpu) == 1  # default: one by one
    two = load_config(None, [*args, "training.seed_workers=2"])
    assert seed_worker_count(two, 3, cpu) == 2
    assert seed_worker_count(two, 1, cpu) == 1  # one seed left: nothing to run side by side
    assert seed_worker_count(two, 3, cpu, per_epoch_callback=True) == 1  # tuning's pruning sees every epoch
    auto = load_config(None, [*args, "training.seed_workers=auto"])
    cpus = len(os.sched_getaffinity(0))
    assert seed_worker_count(auto, 3, cpu) == (3 if 3 < 2 * cpus else cpus)  # all seeds at once below 2 x CPUs
    assert seed_worker_count(auto, 2 * cpus, cpu) == cpus  # else one per CPU, in whole rounds
    assert seed_worker_count(auto, 1, cpu) == 1
    assert seed_worker_count(auto, 3, cuda) == 1
    with pytest.raises(ConfigError, match="device is 'cuda'; on a GPU use `training.stack_seeds: true`"):
        seed_worker_count(two, 3, cuda)


@pytest.mark.parametrize("value", [0, -2, "many", 1.5, True])
def test_bad_seed_workers_values_are_refused(runs, value):
    with pytest.raises(ConfigError, match="`training.seed_workers` must be an integer >= 1 or auto"):
        load_config(None, [*runs[1], f"training.seed_workers={value}"])


def test_seed_workers_and_stacking_exclude_each_other(runs):
    with pytest.raises(ConfigError, match="exclude each other"):
        load_config(None, [*runs[1], "training.seed_workers=2", "training.stack_seeds=true"])
