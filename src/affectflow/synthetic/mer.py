"""A synthetic dataset in the **MER 2023 layout**, with known answers.

:func:`generate_mer` writes::

    <out>/train-label.csv                 name,discrete,valence   (observed: noisy labels)
    <out>/test1-label.csv, test2-label.csv, test3-label.csv   same columns (test3: MER-SEMI, no valence scored)
    <out>/features/utt/<name>.npy         (C_utt,)   utterance-level, float32
    <out>/features/frames/<name>.npy      (T, C_fr)  frame-level at ``frame_rate_hz`` (T varies per clip)
    <out>/features/ssl_low|ssl_mid|ssl_high/<name>.npy   (C_utt,)  three layers of an SSL-like acoustic model
    <out>/ground_truth.csv                name,discrete,valence   noise-free truth of every clip
    <out>/generation.json                 configuration, per-set ceilings

Known answers
    Each clip has a true emotion ``e`` (one of the six MER 2023 classes, drawn with ``class_weights``) and a true
    valence ``v = μ_e + s · z`` (``μ``: neutral 0, angry -3, happy 3, sad -3, worried -2, surprise 1; ``s`` =
    ``valence_spread``; clipped to [-5, 5]). Observed labels flip the emotion to a uniformly drawn other class with
    probability ``label_flip`` and add Gaussian noise of std ``valence_noise`` to valence (clipped).
    Features: ``utt = P[e] + w_v · v / 5 · d + noise`` (class prototypes ``P``, a valence direction ``d``), and
    ``frames[t] = Q[e] + w_v · v / 5 · d' + frame_noise`` for ``t < T``, so mean-pooling recovers the signal.

Several acoustic sets (``acoustic_layers``, default on)
    Like the paper's HuBERT layers 18-20 (low, mid, high: front layers closer to the acoustics, back layers to the
    semantics), ``ssl_low``, ``ssl_mid`` and ``ssl_high`` each carry the emotion and the valence with different
    strengths and share a per-clip nuisance (speaker / content), so the sets are correlated but complementary:
    ``layer_j = a_j · R_j[e] + b_j · w_v · v / 5 · d_j + s · M_j u + feature_noise · n_j`` with
    ``(a_j, b_j)`` = (0.4, 1.6), (0.9, 0.9), (1.6, 0.4), their own class prototypes ``R_j`` and valence directions
    ``d_j``, a nuisance ``u ~ N(0, I)`` seen through ``M_j`` (``layer_nuisance`` = ``s``) and independent noise
    ``n_j``. They are drawn from a generator of their own (seeded by ``seed``), so ``utt`` and ``frames`` are the
    same as without them. Use them as the AFG's primary group (the ``mer2023`` recipe does); with one acoustic set
    the three AFG structures compute the same function.
    The ceiling of each test set is the MER score ``weighted F1 − 0.25 · MSE`` (and both parts) of the truth
    against the observed labels: what a perfect predictor of the truth scores.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affectflow.corpus.mer import MER_CLASSES
from affectflow.corpus.staging import staged_folder
from affectflow.errors import ConfigError
from affectflow.metrics import weighted_f1
from affectflow.progress import progress_bar

VALENCE_MEANS = {"neutral": 0.0, "angry": -3.0, "happy": 3.0, "sad": -3.0, "worried": -2.0, "surprise": 1.0}


@dataclass
class MerSynthConfig:
    """Parameters of :func:`generate_mer` (stored in ``generation.json``)."""

    n_train: int = 300
    n_test: tuple[int, int, int] = (100, 100, 100)
    class_weights: tuple[float, ...] = (0.3, 0.15, 0.2, 0.15, 0.1, 0.1)
    valence_spread: float = 0.8
    label_flip: float = 0.1
    valence_noise: float = 0.5
    utt_dim: int = 32
    frame_dim: int = 16
    frame_rate_hz: float = 5.0
    frames: tuple[int, int] = (10, 40)
    feature_noise: float = 1.0
    frame_noise: float = 2.0
    valence_weight: float = 1.5
    acoustic_layers: bool = True
    layer_nuisance: float = 0.8
    seed: int = 0


def clip_split(n: int) -> tuple[int, tuple[int, int, int]]:
    """``(n_train, (n_test1, n_test2, n_test3))`` for ``n`` clips in all: ``round(0.8 n)`` train (at least 12), the
    rest in three test sets as equal as possible (``generate-layout mer --clips N``)."""
    if n < 15:
        raise ConfigError(f"--clips must be at least 15 (12 train clips and one per test set), got {n}.")
    n_train = max(12, int(round(0.8 * n)))
    rest = n - n_train
    return n_train, (rest // 3 + (rest % 3 > 0), rest // 3 + (rest % 3 > 1), rest // 3)


def mer_ceiling(truth: pd.DataFrame, observed: pd.DataFrame) -> dict[str, float]:
    """MER 2023 scores of the truth against observed labels (rows matched by ``name``)."""
    m = observed.merge(truth, on="name", suffixes=("", "_true"))
    labs = {c: i for i, c in enumerate(sorted(set(m["discrete"]) | set(m["discrete_true"])))}
    f1 = weighted_f1(m["discrete"].map(labs).to_numpy(), m["discrete_true"].map(labs).to_numpy())
    mse = float(np.mean((m["valence"] - m["valence_true"]) ** 2))
    return {"weighted_f1": float(f1), "mse": mse, "mer_score": float(f1 - 0.25 * mse)}


def generate_mer(out: str | Path, *, progress: bool = False, **overrides) -> dict:
    """Write a synthetic MER 2023-layout dataset to the new folder ``out``; return the generation record
    (``progress``: one bar, or one line on a pipe, per partition: :mod:`affectflow.progress`)."""
    bad = sorted(set(overrides) - set(MerSynthConfig.__dataclass_fields__))
    if bad:
        raise ConfigError(f"Unknown generator options {bad}; valid: {sorted(MerSynthConfig.__dataclass_fields__)}.")
    cfg = MerSynthConfig(**overrides)
    if len(cfg.class_weights) != len(MER_CLASSES) or cfg.n_train < 12:
        raise ConfigError("class_weights needs one weight per MER class and n_train at least 12.")
    rng = np.random.default_rng(cfg.seed)
    P = rng.normal(0, 1, (len(MER_CLASSES), cfg.utt_dim)).astype(np.float32)
    Q = rng.normal(0, 1, (len(MER_CLASSES), cfg.frame_dim)).astype(np.float32)
    d = rng.normal(0, 1, cfg.utt_dim).astype(np.float32)
    dq = rng.normal(0, 1, cfg.frame_dim).astype(np.float32)
    w = np.asarray(cfg.class_weights, float) / np.sum(cfg.class_weights)
    layers = _layer_model(cfg) if cfg.acoustic_layers else None
    sets = [("train", "train-label.csv", cfg.n_train)] + [
        (f"test{k + 1}", f"test{k + 1}-label.csv", n) for k, n in enumerate(cfg.n_test) if n > 0
    ]
    truth_rows, record = [], {"layout": "mer2023", "config": asdict(cfg), "ceiling": {}, "sets": {},
                              "acoustic_sets": ["utt", *((layers or {}).get("names", []))]}
    with staged_folder(out, what="synthetic MER folder") as tmp:
        (tmp / "features" / "utt").mkdir(parents=True)
        (tmp / "features" / "frames").mkdir(parents=True)
        for name in (layers or {}).get("names", []):
            (tmp / "features" / name).mkdir(parents=True)
        k = 0
        for part, fname, n in sets:
            e = rng.choice(len(MER_CLASSES), size=n, p=w)
            v = np.clip(np.array([VALENCE_MEANS[MER_CLASSES[i]] for i in e]) + cfg.valence_spread * rng.standard_normal(n), -5, 5)
            flip = rng.random(n) < cfg.label_flip
            other = (e + rng.integers(1, len(MER_CLASSES), n)) % len(MER_CLASSES)
            e_obs = np.where(flip, other, e)
            v_obs = np.clip(v + cfg.valence_noise * rng.standard_normal(n), -5, 5)
            names = [f"sample_{k + i:05d}" for i in range(n)]
            k += n
            if layers is not None:
                for name, x in _layer_features(layers, e, v, cfg).items():
                    for i, nm in enumerate(names):
                        np.save(tmp / "features" / name / f"{nm}.npy", x[i])
            for i, nm in enumerate(progress_bar(names, desc=f"writing {part}", unit="clips", disable=not progress)):
                utt = P[e[i]] + cfg.valence_weight * v[i] / 5 * d + cfg.feature_noise * rng.standard_normal(cfg.utt_dim)
                np.save(tmp / "features" / "utt" / f"{nm}.npy", utt.astype(np.float32))
                T = int(rng.integers(cfg.frames[0], cfg.frames[1] + 1))
                fr = Q[e[i]] + cfg.valence_weight * v[i] / 5 * dq + cfg.frame_noise * rng.standard_normal((T, cfg.frame_dim))
                np.save(tmp / "features" / "frames" / f"{nm}.npy", fr.astype(np.float32))
            obs = pd.DataFrame({"name": names, "discrete": [MER_CLASSES[i] for i in e_obs], "valence": np.round(v_obs, 4)})
            obs.to_csv(tmp / fname, index=False)
            tru = pd.DataFrame({"name": names, "discrete": [MER_CLASSES[i] for i in e], "valence": np.round(v, 4)})
            truth_rows.append(tru)
            record["sets"][part] = n
            record["ceiling"][part] = mer_ceiling(tru, obs)
        pd.concat(truth_rows, ignore_index=True).to_csv(tmp / "ground_truth.csv", index=False)
        (tmp / "generation.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


LAYER_STRENGTHS = {"ssl_low": (0.4, 1.6), "ssl_mid": (0.9, 0.9), "ssl_high": (1.6, 0.4)}  # (emotion a_j, valence b_j)


def _layer_model(cfg: MerSynthConfig) -> dict:
    """The fixed parts of the SSL-like acoustic layers (module docstring), from their own generator."""
    rng = np.random.default_rng([cfg.seed, 2023])
    k, dim = len(MER_CLASSES), cfg.utt_dim
    return {"names": list(LAYER_STRENGTHS), "rng": rng,
            "R": {n: rng.normal(0, 1, (k, dim)) for n in LAYER_STRENGTHS},
            "d": {n: rng.normal(0, 1, dim) for n in LAYER_STRENGTHS},
            "M": {n: rng.normal(0, 1, (dim, dim)) / np.sqrt(dim) for n in LAYER_STRENGTHS}}


def _layer_features(layers: dict, e: np.ndarray, v: np.ndarray, cfg: MerSynthConfig) -> dict[str, np.ndarray]:
    """``(n, C_utt)`` float32 per layer for clips of true emotion ``e`` and valence ``v``."""
    rng, n, dim = layers["rng"], len(e), cfg.utt_dim
    u = rng.standard_normal((n, dim))
    out = {}
    for name, (a, b) in LAYER_STRENGTHS.items():
        x = (a * layers["R"][name][e] + b * cfg.valence_weight * (v / 5)[:, None] * layers["d"][name][None, :]
             + cfg.layer_nuisance * u @ layers["M"][name].T + cfg.feature_noise * rng.standard_normal((n, dim)))
        out[name] = x.astype(np.float32)
    return out
