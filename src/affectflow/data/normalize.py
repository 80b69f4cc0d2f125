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

**PCA** (``data.pca``, MuSe 2021 Sent paper, section III-C): for a feature set with a PCA spec, the normalised
``(L, D)`` values ``z`` (NaN → 0 as above) are projected onto the set's first ``k`` principal components,
``p = (z − μ_pca) Cᵀ`` with ``C ∈ R^{k×D}`` (rows: unit principal axes, largest variance first) and ``μ_pca`` the
mean of ``z``, both from scikit-learn's :class:`~sklearn.decomposition.PCA` (``svd_solver="full"``, deterministic)
fitted on the **train** recordings' steps where the set has any value (at most :data:`PCA_MAX_ROWS` steps, drawn
with a fixed seed when there are more). ``{variance: v}`` keeps the fewest components that explain at least the
fraction ``v`` of the train variance; ``{components: k}`` keeps ``k``. The model then sees ``k`` columns for the set
(:meth:`Normalizer.output_dims`); ``μ_pca`` and ``C`` are stored as tensors in the normaliser state of every
checkpoint, so evaluate, predict, streaming and export apply exactly the same map.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from affectflow.data.store import SequenceStore
from affectflow.errors import ConfigError

MODES = ("global", "subject", "none")
PCA_KEYS = ("variance", "components")
#: At most this many train steps per feature set are used to fit a PCA (a fixed-seed sample when there are more).
PCA_MAX_ROWS = 200_000


def check_pca(pca: dict, features: list[str]) -> dict[str, dict]:
    """Validate a ``data.pca`` mapping (feature set, or ``all``, → ``{variance: v}`` or ``{components: k}``) and
    return it per feature set."""
    if not pca:
        return {}
    if not isinstance(pca, dict):
        raise ConfigError(f"`data.pca` must map feature sets to {{variance: v}} or {{components: k}}, got {pca!r}.")
    unknown = [n for n in pca if n != "all" and n not in features]
    if unknown:
        raise ConfigError(f"`data.pca` names feature sets {unknown} that are not in `data.features` {features}.")
    out = {}
    for name, spec in pca.items():
        keys = sorted(spec) if isinstance(spec, dict) else []
        if len(keys) != 1 or keys[0] not in PCA_KEYS:
            raise ConfigError(f"`data.pca.{name}` must be {{variance: v}} (0 < v <= 1) or {{components: k}} (k >= 1), "
                              f"got {spec!r}.")
        v = spec[keys[0]]
        if keys[0] == "variance" and not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1):
            raise ConfigError(f"`data.pca.{name}.variance` must be in (0, 1], got {v!r}.")
        if keys[0] == "components" and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ConfigError(f"`data.pca.{name}.components` must be an integer >= 1, got {v!r}.")
    for n in features:
        spec = pca.get(n, pca.get("all"))
        if spec is not None:
            out[n] = dict(spec)
    return out


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
    pca:
        Feature set → ``{"variance": v}`` or ``{"components": k}`` (see the module docstring; validated by
        :func:`check_pca`).
    pca_:
        Feature set → ``(mean, components)`` of its fitted PCA, shapes ``(D,)`` and ``(k, D)``.
    stats_:
        Feature set → ``(mean, std)``, each shape ``(D,)``: the global train statistics.
    subject_stats_:
        Subject → feature set → ``(mean, std)`` (``mode="subject"`` only).
    """

    mode: str = "global"
    min_subject_steps: int = 20
    stats_: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    subject_stats_: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    pca: dict[str, dict] = field(default_factory=dict)
    pca_: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

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
        self.pca_ = {}
        if self.pca:
            self._fit_pca(train)
        return self

    def _fit_pca(self, train: SequenceStore) -> None:
        """Fit each configured set's PCA on the normalised train steps where the set has a value."""
        from sklearn.decomposition import PCA

        for name, spec in self.pca.items():
            if name not in train.dims:
                continue
            rows = []
            for i, rec in enumerate(train.records):
                for block in train.iter_blocks(i):
                    z, m = self._zscore(name, block[name], rec.subject)
                    rows.append(z[m])
            x = np.concatenate(rows) if rows else np.zeros((0, train.dims[name]), np.float32)
            if len(x) > PCA_MAX_ROWS:
                x = x[np.sort(np.random.default_rng(0).choice(len(x), PCA_MAX_ROWS, replace=False))]
            k = spec.get("components")
            if k is not None and k > min(x.shape):
                raise ConfigError(f"`data.pca.{name}.components` is {k}, but feature set {name!r} has {x.shape[1]} "
                                  f"columns and {len(x)} train steps with values; at most {min(x.shape)} components "
                                  "exist.")
            if len(x) < 2:
                raise ConfigError(f"PCA of feature set {name!r} needs at least 2 train steps with values; found {len(x)}.")
            n = k if k is not None else (float(spec["variance"]) if spec["variance"] < 1 else None)
            p = PCA(n_components=n, svd_solver="full").fit(x.astype(np.float64))
            self.pca_[name] = (p.mean_.astype(np.float32), p.components_.astype(np.float32))

    def output_dims(self, dims: dict[str, int]) -> dict[str, int]:
        """Columns per set after this normaliser (the PCA's ``k`` for sets with a fitted PCA, else ``D``)."""
        return {n: (int(self.pca_[n][1].shape[0]) if n in self.pca_ else int(d)) for n, d in dims.items()}

    def stats(self, name: str, subject: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` ``(D,)`` that :meth:`transform` uses for set ``name`` (and ``subject``); ``(0, 1)`` in
        mode ``none``."""
        if self.mode == "none":
            d = len(self.stats_[name][0]) if name in self.stats_ else 0
            return np.zeros(d, np.float32), np.ones(d, np.float32)
        return self._stats(name, subject)

    def _stats(self, name: str, subject: str | None) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "subject" and subject in self.subject_stats_ and name in self.subject_stats_[subject]:
            return self.subject_stats_[subject][name]
        return self.stats_[name]

    def transform(self, name: str, x: np.ndarray, subject: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Normalise ``x`` (``(L, D)``, NaN = missing) of set ``name``.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            The normalised ``(L, D)`` float32 array with missing values set to 0 (``(L, k)`` PCA scores for a set
            with a fitted PCA), and the ``(L,)`` bool step mask (True where the step had any finite value).
        """
        z, step_mask = self._zscore(name, x, subject)
        if name in self.pca_:
            mean, comp = self.pca_[name]
            z = ((z - mean) @ comp.T).astype(np.float32)
        return z, step_mask

    def _zscore(self, name: str, x: np.ndarray, subject: str | None) -> tuple[np.ndarray, np.ndarray]:
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
            "pca": {n: {"mean": torch.from_numpy(m), "components": torch.from_numpy(c), "spec": dict(self.pca[n])}
                    for n, (m, c) in self.pca_.items()},
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
            pca={n: dict(v["spec"]) for n, v in state.get("pca", {}).items()},
            pca_={n: (v["mean"].numpy(), v["components"].numpy()) for n, v in state.get("pca", {}).items()},
        )
