"""`affectflow.execution.forked.forked_map`: jobs in forked 1-thread workers that inherit the parent's state."""

from __future__ import annotations

import os

import pytest
import torch

from affectflow.errors import ConfigError, ExecutionError
from affectflow.execution import forked
from affectflow.execution.forked import forked_map

pytestmark = pytest.mark.skipif(not forked.fork_available(), reason="needs the fork start method")


def test_results_come_back_with_their_index_from_inherited_closures():
    big = torch.arange(10_000.0)  # inherited by the workers, never pickled

    def job(k):
        return k, float(big[k * 1000]), torch.get_num_threads(), os.getpid()

    out = dict(forked_map(job, list(range(5)), workers=2))
    assert sorted(out) == [0, 1, 2, 3, 4]
    assert all(out[i][:3] == (i, i * 1000.0, 1) for i in out)  # one torch thread in every worker
    pids = {r[3] for r in out.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_an_error_in_a_job_is_raised_and_the_pool_is_released():
    def job(k):
        if k == 1:
            raise ValueError("job 1 is bad")
        return k

    with pytest.raises(ValueError, match="job 1 is bad"):
        list(forked_map(job, [0, 1, 2], workers=2))
    assert forked._JOB is None
    assert dict(forked_map(lambda k: k * 2, [1, 2], workers=2)) == {0: 2, 1: 4}  # usable again


def test_a_worker_that_dies_is_named():
    def job(k):
        if k == "b":
            os._exit(3)  # as a kill or the OOM killer would end it
        return k

    with pytest.raises(ExecutionError, match=r"worker process died \(killed, or out of memory\?\) while running item b"):
        list(forked_map(job, ["b"], workers=2, describe=lambda k: f"item {k}"))
    with pytest.raises(ExecutionError, match="while running .*item b"):
        list(forked_map(job, ["a", "b", "c"], workers=2, describe=lambda k: f"item {k}"))


def test_bad_worker_counts_and_nesting_are_refused():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="`workers` must be an integer >= 1"):
            list(forked_map(str, [1], workers=bad))
    assert list(forked_map(str, [], workers=2)) == []
    gen = forked_map(str, [1, 2], workers=1)
    next(gen)
    with pytest.raises(ConfigError, match="already running"):
        list(forked_map(str, [1], workers=1))
    gen.close()
    assert forked._JOB is None


def test_forked_backend_is_an_executor_with_one_thread_per_worker():
    from affectflow.execution import EXECUTORS, get_executor

    assert "forked" in EXECUTORS
    ex = get_executor("forked", workers=2, threads=1)
    try:
        assert dict(ex.map(lambda k: (k, torch.get_num_threads()), [3, 4])) == {0: (3, 1), 1: (4, 1)}
    finally:
        ex.close()
    with pytest.raises(ConfigError, match="one torch thread .* got threads=2; set threads to 1 or use the local"):
        get_executor("forked", workers=2, threads=2)


def test_a_job_may_run_forked_workers_of_its_own():
    def inner(k):
        return dict(forked_map(lambda j: (k, j, os.getpid()), [0, 1], workers=2))

    out = dict(forked_map(inner, [10, 20, 30], workers=2))  # a worker serves several jobs, each nesting a pool
    assert {i: sorted(v[:2] for v in r.values()) for i, r in out.items()} == {
        0: [(10, 0), (10, 1)], 1: [(20, 0), (20, 1)], 2: [(30, 0), (30, 1)]}
    assert forked._JOB is None
