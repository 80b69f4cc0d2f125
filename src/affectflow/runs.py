"""Run directories and checkpoints.

A run directory is self-describing and never overwritten::

    <runs_dir>/<name>-<YYYYmmdd-HHMMSS>[-N]/
      config.yaml                 the resolved configuration (defaults + file + overrides)
      run.json                    affectflow/torch/python versions, command, corpus, seeds, best seed, status
      train.log                   the training log
      history/seed-<s>.csv        per-epoch train loss, devel score, learning rate
      checkpoints/seed-<s>.pt     state dict + model config + normaliser + data spec (loads with weights_only=True);
                                  its presence marks seed <s> as finished
      resume/seed-<s>.pt          while seed <s> trains: its last epoch state (model, optimiser, scheduler, early
                                  stopping, RNG states), written atomically after every epoch, removed when the
                                  seed finishes; `affectflow train --resume RUN` continues from it
      metrics.json                per partition / seed / target metrics, mean ± std over seeds, selection, ceiling
      predictions/<partition>/<recording>.csv   time, <target>_pred, <target>_label  (best seed)
      results.md                  the results table
      plots/                      learning curves and prediction plots
      evaluations/<timestamp>/    later `affectflow evaluate` outputs

Status: ``run.json`` holds ``status`` (``running``, ``finished``, ``failed: ...``) and, while training, the ``pid``,
``host`` and process start time of the trainer plus a ``heartbeat`` time updated after every epoch.
:func:`run_status` reports a ``running`` run whose process is gone (killed, machine rebooted) as ``interrupted``.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from affectflow import __version__
from affectflow.errors import CorpusError, RunError
from affectflow.fsutil import child_path, write_json


def new_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create and return a new, empty run directory ``<root>/<name>-<timestamp>`` (a suffix avoids any clash)."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{name}-{stamp}"
    try:
        child_path(root, base, kind="run name")
    except CorpusError as e:
        raise RunError(str(e)) from None
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        p = root / (base if k == 0 else f"{base}-{k}")
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue
    raise RunError(f"Could not create a new run directory under {root} (too many runs named {base}).")


def new_subdir(parent: Path, prefix: str) -> Path:
    """A new timestamped folder under ``parent`` (never an existing one)."""
    return new_run_dir(parent, prefix)


def environment_info() -> dict[str, Any]:
    """Versions and host facts stored in ``run.json``."""
    return {
        "affectflow": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "command": " ".join(sys.argv),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save_checkpoint(path: Path, *, model: torch.nn.Module, normalizer_state: dict, data_spec: dict, extra: dict) -> None:
    """Save a state dict plus everything needed to rebuild and use the model (no pickled objects)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": "affectflow-checkpoint",
        "affectflow_version": __version__,
        "model": model.config(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "normalizer": normalizer_state,
        "data": data_spec,
        **extra,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain values only)."""
    p = Path(path)
    if not p.is_file():
        raise RunError(f"Checkpoint {str(p)!r} does not exist.")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        # torch's message advises re-running with weights_only=False, i.e. executing the file's code: never pass
        # that on. Say only what the file is and that it will not be loaded.
        raise RunError(
            f"{str(p)!r} is not an affectflow checkpoint and will not be loaded: it is not a readable torch file of "
            f"tensors and plain values ({type(e).__name__}). affectflow only loads its own checkpoints (state dict "
            "+ config), with weights_only=True; a file that needs more than that may run code when loaded."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "affectflow-checkpoint":
        raise RunError(f"{str(p)!r} is not an affectflow checkpoint (no 'format: affectflow-checkpoint' entry) and "
                       "will not be used.")
    return ckpt


# ---------------------------------------------------------------------------- epoch states (resume)
def epoch_state_path(run_dir: Path, seed: int) -> Path:
    """Where the epoch state of ``seed`` is kept while it trains (inside the run folder)."""
    return Path(run_dir) / "resume" / f"seed-{int(seed)}.pt"


def save_epoch_state(path: Path, state: dict[str, Any]) -> None:
    """Write an epoch state atomically (temporary file in the same folder, then rename); mode follows the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_epoch_state(path: Path) -> dict[str, Any]:
    """Load an epoch state with ``weights_only=True``; anything else is refused with a :class:`RunError`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise RunError(
            f"{str(path)!r} is not an affectflow epoch state and will not be loaded ({type(e).__name__}). Delete it to "
            "restart this seed from its first epoch."
        ) from None
    if not isinstance(state, dict) or state.get("format") != "affectflow-epoch-state":
        raise RunError(f"{str(path)!r} is not an affectflow epoch state; delete it to restart this seed.")
    return state


# ---------------------------------------------------------------------------- process identity and status
def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_identity() -> dict[str, Any]:
    """``pid``, ``host`` and ``pid_start`` of this process (stored in ``run.json`` while training)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _process_start(os.getpid())}


def _alive(pid: int, start: str | None) -> bool | None:
    """Whether process ``pid`` (started at ``start``) still runs on this host; ``None`` if it cannot be told."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return None
    now = _process_start(pid)
    if start is not None and now is not None:
        return now == start
    return True


#: A run on another host whose heartbeat is older than this (s) is reported as interrupted.
STALE_AFTER_S = 6 * 3600


def run_status(info: dict[str, Any]) -> str:
    """The effective status of a run from its ``run.json``: ``finished``, ``failed: ...``, ``running`` or
    ``interrupted`` (``running`` on record, but the trainer process is gone: on this host its pid is dead or
    reused; on another host its heartbeat is older than :data:`STALE_AFTER_S`)."""
    status = str(info.get("status", "unknown"))
    if status != "running":
        return status
    pid, host = info.get("pid"), info.get("host")
    if pid is None or host is None:
        return "interrupted"  # written by a version that recorded no process: it cannot still be running
    if host == socket.gethostname():
        alive = _alive(int(pid), info.get("pid_start"))
        if alive is False:
            return "interrupted"
        return "running"
    beat = info.get("heartbeat_unix")
    if beat is not None and time.time() - float(beat) > STALE_AFTER_S:
        return "interrupted"
    return "running"


class Run:
    """An existing run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not (self.path / "run.json").is_file():
            raise RunError(
                f"{str(self.path)!r} is not an affectflow run directory (run.json is missing). Run directories are "
                "made by `affectflow train`."
            )
        try:
            self.info = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
            self.config_dict = yaml.safe_load((self.path / "config.yaml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
            raise RunError(f"Run {str(self.path)!r} has an unreadable run.json or config.yaml ({type(e).__name__}: "
                           f"{e}).") from None
        if not isinstance(self.info, dict) or not isinstance(self.config_dict, dict):
            raise RunError(f"Run {str(self.path)!r}: run.json and config.yaml must each hold a mapping.")

    @property
    def status(self) -> str:
        """Effective status (:func:`run_status`): a killed run shows as ``interrupted``, not ``running``."""
        return run_status(self.info)

    @property
    def best_seed(self) -> int:
        """The seed selected on devel."""
        if self.info.get("best_seed") is None:
            status = self.status
            if status == "interrupted":
                raise RunError(
                    f"Run {self.path} was interrupted (run.json says 'running' but its process "
                    f"{self.info.get('pid', '?')} on {self.info.get('host', '?')} is gone) and has no selected seed. "
                    f"Continue it with `affectflow train --resume {self.path}`."
                )
            raise RunError(f"Run {self.path} has no selected seed: its training did not finish (status {status!r}).")
        return int(self.info["best_seed"])

    def summary(self) -> str:
        """A short description: status, seeds finished, best seed, corpus."""
        seeds = [int(s) for s in self.info.get("seeds", [])]
        done = [s for s in seeds if (self.path / "checkpoints" / f"seed-{s}.pt").is_file()]
        lines = [f"Run {self.path}", f"  status: {self.status}"]
        if self.status == "interrupted":
            lines.append(f"  (recorded as 'running' by process {self.info.get('pid', '?')} on "
                         f"{self.info.get('host', '?')}, which is gone; continue with `affectflow train --resume "
                         f"{self.path}`)")
        lines.append(f"  seeds: {seeds} (finished: {done})")
        partial = sorted(int(p.stem.split("-", 1)[1]) for p in (self.path / "resume").glob("seed-*.pt")) \
            if (self.path / "resume").is_dir() else []
        for s in partial:
            try:
                ep = load_epoch_state(epoch_state_path(self.path, s))["epoch"]
                lines.append(f"  seed {s}: epoch state after epoch {ep}")
            except RunError:
                lines.append(f"  seed {s}: unreadable epoch state")
        if self.info.get("best_seed") is not None:
            lines.append(f"  best seed: {self.info['best_seed']}")
        model = (self.config_dict.get("model") or {}).get("type")
        lines.append(f"  model: {model}; corpus: {self.info.get('corpus')}")
        return "\n".join(lines)

    def checkpoint_path(self, seed: int | None = None) -> Path:
        """Checkpoint of ``seed`` (default: the best seed)."""
        s = self.best_seed if seed is None else seed
        p = self.path / "checkpoints" / f"seed-{s}.pt"
        if not p.is_file():
            have = sorted(x.stem for x in (self.path / "checkpoints").glob("seed-*.pt"))
            raise RunError(f"Run {self.path} has no checkpoint for seed {s}; it has {have}.")
        return p

    def metrics(self) -> dict[str, Any]:
        """The training-time metrics.json."""
        return json.loads((self.path / "metrics.json").read_text())


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    """(Re)write run.json atomically."""
    write_json(run_dir / "run.json", info)
