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


PHYSIO_SETS = {"hrv": {"rate_hz": 2.0}, "physio_rates": {"rate_hz": 2.0}, "physio_raw": {"rate_hz": 2.0},
               "phys": {"rate_hz": 2.0}}
"""The physio-extractor sets of :func:`physio_run` (extractor name = set name)."""


def ccc(a: np.ndarray, b: np.ndarray) -> float:
    """Concordance correlation coefficient over the steps where both are finite."""
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    return float(2 * np.cov(a, b, bias=True)[0, 1] / (a.var() + b.var() + (a.mean() - b.mean()) ** 2))


def physio_run(path: Path, sets=PHYSIO_SETS) -> Path:
    """A fake GRU run over physio-extractor sets, with the extractor parameters stored as extraction does."""
    from affectflow.features.base import EXTRACTORS
    from affectflow.features.pipeline import load_builtin_extractors
    from affectflow.models.small import SMALL_SETTINGS

    load_builtin_extractors()
    exs = {n: EXTRACTORS.build(n, p) for n, p in sets.items()}
    run = fake_run(path, "gru", {**SMALL_SETTINGS["gru"]}, dims={n: len(e.columns()) for n, e in exs.items()})
    ckpt = torch.load(run / "checkpoints" / "seed-1.pt", weights_only=True)
    for n, ex in exs.items():
        ckpt["data"]["feature_sets"][n].update(columns=ex.columns(), modality="physio", params={
            "extractor": n, "config_hash": ex.config_hash(), "params": ex.params()})
    torch.save(ckpt, run / "checkpoints" / "seed-1.pt")
    return run


def physio_recording(root: Path, duration: float, seed: int = 3) -> Path:
    """A synthetic NeuroKit2 ECG/respiration/EDA CSV (250 Hz) of ``duration`` s."""
    from affectflow.corpus.media import media_recordings
    from affectflow.synthetic.media import generate_media_corpus

    c = generate_media_corpus(root / "c", n_subjects=1, duration_s=duration, seed=seed, audio=False, video=False,
                              transcript=False, workers=1, progress=False, partitions=(1.0, 0.0, 0.0))
    return media_recordings(c)[0].physio


def stream(live, df, fs: float, seed: int = 0) -> list:
    """Push a physio CSV's raw samples to ``live.push_physio`` in random chunks, then flush; the steps."""
    rng = np.random.default_rng(seed)
    cols = {"ECG": df["ecg"].to_numpy(), "RSP": df["resp"].to_numpy(), "EDA": df["eda"].to_numpy()}
    steps, i, n = [], 0, len(df)
    while i < n:
        k = int(rng.integers(10, int(fs)))
        steps += live.push_physio({c: x[i:i + k] for c, x in cols.items()}, fs)
        i += k
    return steps + live.flush()
