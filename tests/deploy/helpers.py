"""A run directory made directly from a model (no training), for streaming and export tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from affectflow.data.normalize import Normalizer
from affectflow.models import MODELS
from affectflow.runs import save_checkpoint, write_run_info

DIMS = {"acoustic": 6, "visual": 4, "physio": 3}
TARGETS = ["arousal", "valence"]


def fake_run(path: Path, model_type: str, params: dict, *, seed: int = 0, dims=DIMS, targets=TARGETS,
             label_rate_hz: float = 2.0) -> Path:
    """A run folder with random weights of ``model_type`` and a normaliser with known statistics."""
    torch.manual_seed(seed)
    model = MODELS.build(model_type, params, input_dims=dims, targets=targets).eval()
    rng = np.random.default_rng(seed)
    norm = Normalizer(stats_={n: (rng.normal(size=d).astype(np.float32), rng.uniform(0.5, 2, d).astype(np.float32))
                              for n, d in dims.items()})
    path.mkdir(parents=True)
    data_spec = {"task": "continuous", "features": list(dims), "targets": list(targets),
                 "target_specs": [{"name": t, "kind": "regression", "classes": None} for t in targets],
                 "label_set": "continuous", "eval_window": {"size": None, "hop": None}, "input_dims": dict(dims),
                 "label_rate_hz": label_rate_hz,
                 "feature_sets": {n: {"name": n, "modality": "test", "columns": [f"{n}{j}" for j in range(d)],
                                      "rate_hz": label_rate_hz, "params": {}, "description": ""}
                                  for n, d in dims.items()}}
    save_checkpoint(path / "checkpoints" / "seed-1.pt", model=model, normalizer_state=norm.state_dict(),
                    data_spec=data_spec, extra={"seed": 1})
    write_run_info(path, {"status": "finished", "best_seed": 1, "corpus": "none"})
    (path / "config.yaml").write_text(yaml.safe_dump({"data": {"corpus": str(path / "no-corpus")},
                                                     "model": {"type": model_type, "params": params}}))
    return path


def raw_frames(steps: int, *, seed: int = 0, dims=DIMS, missing: float = 0.1) -> dict[str, np.ndarray]:
    """Raw feature arrays ``(steps, D)`` with NaN gaps: whole missing steps and single missing values."""
    rng = np.random.default_rng(seed)
    out = {}
    for n, d in dims.items():
        x = rng.normal(size=(steps, d)).astype(np.float32) * 2
        x[rng.random(steps) < missing] = np.nan
        x[rng.random((steps, d)) < 0.05] = np.nan
        out[n] = x
    return out
