"""Targets: what a model predicts, one :class:`TargetSpec` per target (a bottom module: numpy only).

A **regression** target has one output column; a **classification** target one logit per class, its classes in
index order (``classes[k]`` is the value of class index ``k``). Checkpoints and prediction folders store specs as
plain dicts (:func:`specs_to_state` / :func:`specs_from_state`). :mod:`affectflow.tasks` works out the specs from a
corpus; :mod:`affectflow.predictions` and :mod:`affectflow.scoring` only read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

KINDS = ("regression", "classification")


@dataclass
class TargetSpec:
    """One target: its name, ``kind`` and, for classification, the class values in index order."""

    name: str
    kind: str
    classes: list | None = None

    @property
    def n_outputs(self) -> int:
        """Model output columns for this target."""
        return len(self.classes) if self.kind == "classification" else 1


def specs_to_state(specs: list[TargetSpec]) -> list[dict]:
    """Plain dicts for checkpoints."""
    return [asdict(s) for s in specs]


def specs_from_state(state: list[dict]) -> list[TargetSpec]:
    """Inverse of :func:`specs_to_state`."""
    return [TargetSpec(**d) for d in state]


def split_columns(outputs: np.ndarray, specs: list[TargetSpec]) -> dict[str, np.ndarray]:
    """Per target: predicted class index (argmax of its logits) or value, shape ``(N,)``, from outputs
    ``(N, Σ n_outputs)``."""
    out, c = {}, 0
    for s in specs:
        part = outputs[:, c : c + s.n_outputs]
        out[s.name] = part.argmax(1) if s.kind == "classification" else part[:, 0]
        c += s.n_outputs
    return out
