"""The ``ray`` executor backend: a procedure's jobs as Ray tasks, on a local or an existing Ray cluster.

::

    from affectflow.execution import get_executor

    ex = get_executor("ray", workers=4, threads=1, address="auto", gpus=0.25, memory_gb=2)
    try:
        for i, result in ex.map(run_one, jobs):     # completion order, like every backend
            record(i, result)
    finally:
        ex.close()

Connection (``address``)
    ``None``: start a private local cluster of ``workers × cpus`` CPUs in this process (shut down by :meth:`close`);
    ``"auto"``: the cluster already running on this machine (``ray start --head`` / a Ray node); ``"ray://host:10001"``:
    a remote cluster through the Ray client. When Ray is already initialised in this process (a notebook, a test
    fixture), that connection is used and left open.

Resources (one request per task, so a mixed cluster places each kind of job on the right nodes)
    ``cpus`` (default ``threads``: a training job's torch threads; 1 for an extraction job), ``gpus`` (a fraction is
    allowed: ``0.25`` packs four training jobs on one GPU; 0 = CPU only), ``memory_gb`` (reserved memory, None = no
    reservation), ``resources`` (custom node resources, e.g. ``{"extract_node": 1}`` for nodes started with
    ``ray start --resources='{"extract_node": 8}'``). Ray only starts a task on a node that has what it asks for.

Faults
    ``max_retries`` (default 3): a task whose worker process dies (killed, out of memory, node lost) is run again by
    Ray. affectflow's jobs are idempotent: they write atomically into their own run / feature folder and skip or
    continue what is already finished (a sweep cell resumes its run from the last epoch state), so a retried job
    gives the same result as an undisturbed one. An exception raised *by* the job is not retried: it is re-raised
    by :meth:`RayExecutor.map` (affectflow's jobs return their errors instead of raising).

Storage
    Jobs read the corpus and write run folders by path: every node must see the same paths (a shared filesystem
    such as NFS, or the same mount on every node). Only small results (status dicts) travel back through Ray.

Ray's telemetry is switched off (``RAY_USAGE_STATS_ENABLED=0``) and the dashboard is not started. Ray's gRPC
servers listen on all interfaces; :func:`loopback_only` keeps a single-machine cluster (tests, benchmarks) off the
network.
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from affectflow.errors import ConfigError, RunError

#: Environment every Ray process of affectflow gets: no usage statistics, no dashboard metrics export.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}


def _ray():
    for k, v in RAY_ENV.items():
        os.environ.setdefault(k, v)
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is pinned in requirements/scale.txt
        raise ConfigError("The `ray` backend needs the `ray` package: install requirements/scale.txt "
                          "(pip install -c constraints.txt -r requirements/scale.txt).") from None
    return ray


@dataclass(kw_only=True)
class TaskResources:
    """What one task asks the Ray scheduler for.

    Attributes
    ----------
    cpus:
        Logical CPUs (a training job's torch threads).
    gpus:
        GPUs; a fraction shares one GPU between ``1 / gpus`` tasks; 0 = the task never needs a GPU node.
    memory_gb:
        Memory reserved on the node (GiB); ``None``: no reservation.
    resources:
        Custom node resources, ``{name: amount}``.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float | None = None
    resources: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [f"{k}={v!r}" for k, v in (("cpus", self.cpus), ("gpus", self.gpus)) if
               isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0]
        if self.memory_gb is not None and (not isinstance(self.memory_gb, (int, float)) or self.memory_gb <= 0):
            bad.append(f"memory_gb={self.memory_gb!r}")
        if not isinstance(self.resources, dict) or any(
                not isinstance(k, str) or not isinstance(v, (int, float)) or v < 0 for k, v in self.resources.items()):
            bad.append(f"resources={self.resources!r}")
        if self.cpus == 0 and self.gpus == 0 and not self.resources:
            bad.append("cpus=0 with no gpus or resources")
        if bad:
            raise ConfigError(f"Invalid Ray task resources: {', '.join(bad)}; cpus and gpus are numbers >= 0 (a "
                              "fraction of a GPU is allowed), memory_gb a positive number or null, resources a "
                              "mapping of names to amounts >= 0.")

    def ray_options(self) -> dict[str, Any]:
        """Keyword arguments of ``ray.remote(...).options``."""
        out: dict[str, Any] = {"num_cpus": self.cpus, "num_gpus": self.gpus}
        if self.memory_gb:
            out["memory"] = int(self.memory_gb * 2**30)
        if self.resources:
            out["resources"] = dict(self.resources)
        return out


def _run_task(fn: Callable[[Any], Any], item: Any, threads: int) -> Any:
    """Body of every Ray task: limit the worker's torch threads, then run the job."""
    import torch  # lazy: runs in the Ray worker; this module loads without torch

    torch.set_num_threads(int(threads))
    return fn(item)


def connect(address: str | None = None, *, num_cpus: float | None = None, num_gpus: float | None = None) -> bool:
    """Initialise Ray unless it already is; return True when this call started it (then :func:`ray.shutdown` it).

    ``address=None`` starts a private local cluster (``num_cpus`` / ``num_gpus``, default: the machine's) unless
    ``RAY_ADDRESS`` is set; ``"auto"`` or ``"ray://host:port"`` connects to a running cluster.

    Raises
    ------
    RunError
        No cluster at ``address``.
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None  # Ray's own variable names a running cluster
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False,
                              "configure_logging": True}
    if address is None:
        kwargs.update(num_cpus=None if num_cpus is None else max(1, int(num_cpus)), num_gpus=num_gpus)
    else:
        kwargs.pop("include_dashboard")
        if address.startswith("ray://"):
            kwargs = {"logging_level": logging.WARNING}
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RunError(f"Cannot connect to a Ray cluster at {address!r}: {type(e).__name__}: {e}. Start one with "
                       "`ray start --head` (then use --address auto), give its client address ray://HOST:10001, or "
                       "leave --address out to start a local cluster.") from None
    return True


class RayExecutor:
    """Jobs as Ray tasks (see the module docstring); ``workers`` sizes a local cluster started here."""

    def __init__(self, workers: int = 1, threads: int = 1, *, address: str | None = None, cpus: float | None = None,
                 gpus: float = 0.0, memory_gb: float | None = None, resources: dict[str, float] | None = None,
                 max_retries: int = 3) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"`max_retries` must be an integer >= 0, got {max_retries!r}.")
        self.threads = int(threads)
        self.task = TaskResources(cpus=float(threads if cpus is None else cpus), gpus=float(gpus or 0.0),
                                  memory_gb=memory_gb, resources=dict(resources or {}))
        self.max_retries = max_retries
        self._started = connect(address, num_cpus=workers * max(self.task.cpus, 1.0))
        self._pending: dict[Any, int] = {}

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Submit every item as a task; yield ``(index, result)`` as tasks finish."""
        if not items:
            return
        ray = _ray()
        remote = ray.remote(_run_task).options(max_retries=self.max_retries, retry_exceptions=False,
                                               **self.task.ray_options())
        pending = {remote.remote(fn, item, self.threads): i for i, item in enumerate(items)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:  # the job raised: re-raise its own exception
                        raise e.as_instanceof_cause() from None
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                            ray.exceptions.OutOfMemoryError) as e:
                        raise RunError(f"Job {i} was lost {self.max_retries + 1} time(s) (its Ray worker died: "
                                       f"{type(e).__name__}); the finished jobs are kept, run the command again "
                                       "to retry it.") from None
                    yield i, result
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Shut down the local cluster this executor started (a cluster it only connected to is left running)."""
        if self._started:
            _ray().shutdown()
            self._started = False

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def loopback_only() -> None:
    """Move this process (and what it starts later, e.g. a local Ray cluster) into a new network namespace that has
    only the loopback interface, so servers it starts cannot be reached from, nor reach, other machines.

    For tests and single-machine benchmarks (Ray's gRPC servers bind every interface). Linux only, needs
    ``CAP_SYS_ADMIN`` (root in a container); call it before Ray starts and before threads that use the network.

    Raises
    ------
    RunError
        The namespace cannot be made (no privilege, not Linux).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newnet = 0x40000000
    if libc.unshare(clone_newnet) != 0:
        err = ctypes.get_errno()
        raise RunError(f"Cannot make a loopback-only network namespace (unshare: {os.strerror(err)}); it needs "
                       "Linux and CAP_SYS_ADMIN.")
    res = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if res.returncode != 0:
        raise RunError(f"Cannot bring up the loopback interface in the new namespace: {res.stderr.strip()}")
