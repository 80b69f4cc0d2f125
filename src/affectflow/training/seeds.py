"""Seeding and devices."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from affectflow.errors import ConfigError


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch generator seeded with ``seed`` for data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA if available else CPU; ``"cpu"``; ``"cuda"`` / ``"cuda:N"`` (error if unavailable)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"`training.device` is {name!r} but CUDA is not available here; use 'auto' or 'cpu'.")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"`training.device` {name!r} is not a device name (use 'auto', 'cpu' or 'cuda').") from e
