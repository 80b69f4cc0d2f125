"""Run directories and checkpoints.

A run directory is self-describing and never overwritten::

    <runs_dir>/<name>-<YYYYmmdd-HHMMSS>[-N]/
      config.yaml                 the resolved configuration (defaults + file + overrides)
      run.json                    affectflow/torch/python versions, command, corpus, seeds, best seed, status
      train.log                   the training log
      history/seed-<s>.csv        per-epoch train loss, devel score, learning rate
      checkpoints/seed-<s>.pt     state dict + model config + normaliser + data spec (loads with weights_only=True)
      metrics.json                per partition / seed / target metrics, mean ± std over seeds, selection, ceiling
      predictions/<partition>/<recording>.csv   time, <target>_pred, <target>_label  (best seed)
      results.md                  the results table
      plots/                      learning curves and prediction plots
      evaluations/<timestamp>/    later `affectflow evaluate` outputs
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from affectflow import __version__
from affectflow.corpus.corpus import child_path, write_json
from affectflow.errors import CorpusError, RunError


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


class Run:
    """An existing run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not (self.path / "run.json").is_file():
            raise RunError(
                f"{str(self.path)!r} is not an affectflow run directory (run.json is missing). Run directories are "
                "made by `affectflow train`."
            )
        self.info = json.loads((self.path / "run.json").read_text())
        self.config_dict = yaml.safe_load((self.path / "config.yaml").read_text())

    @property
    def best_seed(self) -> int:
        """The seed selected on devel."""
        if self.info.get("best_seed") is None:
            raise RunError(f"Run {self.path} has no selected seed: its training did not finish (status {self.info.get('status')!r}).")
        return int(self.info["best_seed"])

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
