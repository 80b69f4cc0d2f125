"""Z-normalisation of features with statistics from the training partition only.

For every feature column :math:`j` of every feature set, :math:`\\hat x_{tj} = (x_{tj} - \\mu_j) / \\sigma_j`, with
:math:`\\mu_j, \\sigma_j` (population standard deviation) accumulated over the finite values of the **train**
recordings in one streaming pass (float64 sums, so memory does not depend on corpus size). Columns with
:math:`\\sigma_j < 10^{-8}` are only centred. After normalisation, missing values (NaN) become 0, i.e. the training
mean, and a per-set step mask records which steps had any finite value.

``mode="subject"`` uses, for each subject, statistics over all that subject's recordings (features only, never
labels; this is transductive for devel/test subjects, as speaker normalisation usually is); subjects with fewer
than ``min_subject_steps`` finite steps fall back to the global train statistics. ``mode="none"`` only fills NaN.

Raw pixel sets (``storage: uint8``, e.g. ``face_crops``) are never z-scored: their statistics are fixed to
:math:`\\mu = 0, \\sigma = 1` (no pass over the pixels), so they reach the model in [0, 1] (missing = 0) and the
backbone encoder normalises them itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from affectflow.data.store import SequenceStore
from affectflow.errors import ConfigError

MODES = ("global", "subject", "none")


@dataclass
class _Moments:
    n: np.ndarray
    s: np.ndarray
    ss: np.ndarray

    @classmethod
    def zeros(cls, d: int) -> "_Moments":
        return cls(np.zeros(d), np.zeros(d), np.zeros(d))

    def add(self, x: np.ndarray) -> None:
        f = np.isfinite(x)
        x64 = np.where(f, x, 0.0).astype(np.float64)
        self.n += f.sum(0)
        self.s += x64.sum(0)
        self.ss += (x64 * x64).sum(0)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        n = np.maximum(self.n, 1)
        mean = self.s / n
        var = np.maximum(self.ss / n - mean * mean, 0.0)
        std = np.sqrt(var)
        std = np.where(std < 1e-8, 1.0, std)
        mean = np.where(self.n > 0, mean, 0.0)
        return mean.astype(np.float32), std.astype(np.float32)


@dataclass
class Normalizer:
    """Per-column z-normalisation (see the module docstring).

    Attributes
    ----------
    mode:
        ``"global"``, ``"subject"`` or ``"none"``.
    stats_:
        Feature set → ``(mean, std)``, each shape ``(D,)``: the global train statistics.
    subject_stats_:
        Subject → feature set → ``(mean, std)`` (``mode="subject"`` only).
    """

    mode: str = "global"
    min_subject_steps: int = 20
    stats_: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    subject_stats_: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"`normalize` must be one of {list(MODES)}, got {self.mode!r}.")

    def fit(self, train: SequenceStore, others: list[SequenceStore] = ()) -> "Normalizer":
        """Accumulate train statistics (and per-subject ones over ``train`` + ``others`` if ``mode="subject"``)."""
        raw = set(getattr(train, "uint8_sets", ()))
        moments = {n: _Moments.zeros(d) for n, d in train.dims.items() if n not in raw}
        if moments:
            for i in range(len(train)):
                for block in train.iter_blocks(i):
                    for n, x in block.items():
                        if n in moments:
                            moments[n].add(x)
        self.stats_ = {n: m.mean_std() for n, m in moments.items()}
        for n in raw:
            d = train.dims[n]
            self.stats_[n] = (np.zeros(d, np.float32), np.ones(d, np.float32))
        self.subject_stats_ = {}
        if self.mode == "subject":
            per: dict[str, dict[str, _Moments]] = {}
            for store in [train, *others]:
                for i, rec in enumerate(store.records):
                    acc = per.setdefault(rec.subject, {n: _Moments.zeros(d) for n, d in store.dims.items()})
                    for block in store.iter_blocks(i):
                        for n, x in block.items():
                            if n not in raw:
                                acc[n].add(x)
            for subj, acc in per.items():
                self.subject_stats_[subj] = {
                    n: m.mean_std() for n, m in acc.items() if n not in raw and np.median(m.n) >= self.min_subject_steps
                }
        return self

    def _stats(self, name: str, subject: str | None) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "subject" and subject in self.subject_stats_ and name in self.subject_stats_[subject]:
            return self.subject_stats_[subject][name]
        return self.stats_[name]

    def transform(self, name: str, x: np.ndarray, subject: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Normalise ``x`` (``(L, D)``, NaN = missing) of set ``name``.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            The normalised ``(L, D)`` float32 array with missing values set to 0, and the ``(L,)`` bool step mask
            (True where the step had any finite value).
        """
        finite = np.isfinite(x)
        step_mask = finite.any(axis=1)
        if self.mode != "none":
            if name not in self.stats_:
                raise ConfigError(f"Normalizer was not fitted on feature set {name!r} (fitted: {sorted(self.stats_)}).")
            mean, std = self._stats(name, subject)
            x = (x - mean) / std
        return np.where(finite, x, 0.0).astype(np.float32), step_mask

    # ------------------------------------------------------------------ checkpoint (de)serialisation
    def state_dict(self) -> dict:
        """Tensors and plain values only, so checkpoints load with ``weights_only=True``."""

        def enc(stats):
            return {n: {"mean": torch.from_numpy(m), "std": torch.from_numpy(s)} for n, (m, s) in stats.items()}

        return {
            "mode": self.mode,
            "min_subject_steps": self.min_subject_steps,
            "stats": enc(self.stats_),
            "subject_stats": {k: enc(v) for k, v in self.subject_stats_.items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> "Normalizer":
        """Inverse of :meth:`state_dict`."""

        def dec(stats):
            return {n: (v["mean"].numpy(), v["std"].numpy()) for n, v in stats.items()}

        return cls(
            mode=state["mode"],
            min_subject_steps=state["min_subject_steps"],
            stats_=dec(state["stats"]),
            subject_stats_={k: dec(v) for k, v in state["subject_stats"].items()},
        )
