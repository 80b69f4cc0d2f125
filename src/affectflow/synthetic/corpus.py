"""A TSST-like synthetic feature corpus with known latent affect and a known accuracy ceiling.

Each subject has one recording (about ``duration_s`` long) whose latent arousal and valence come from
:func:`~affectflow.synthetic.latent.simulate_latent_affect` with a subject-specific baseline. Feature sets are
functions of the latent affect **at the frame time**, plus a subject-specific offset and gain and frame noise:

=============  =====  =======  ============================================================================
set            dims   rate     content
=============  =====  =======  ============================================================================
``acoustic``   88     2 Hz     linear in arousal (strong) and valence (weak); eGeMAPS-like
``visual``     32     5 Hz     nonlinear in valence (strong) and arousal; frame times offset by 0.1 s;
                               stretches where the face is lost are NaN rows
``embedding``  256    2 Hz     nonlinear (sin/tanh of projections) in both, high noise
``physio``     3      2 Hz     heart rate, respiration, EDA-like: smoothed arousal; random frames absent
``noise``      16     2 Hz     no information
=============  =====  =======  ============================================================================

Labels (label set ``continuous``, ``label_rate_hz``) are the latent affect **delayed** by ``label_delay_s``
(annotator reaction lag) plus smooth annotation noise of standard deviation ``label_noise``; the noise-free
delayed latent is written as label set ``continuous_clean``. The pooled CCC between the two is the ceiling a
perfect model can reach. Segment labels (5 sentiment classes from the segment's mean valence) and clip labels
(mean valence, and a discrete class from the arousal/valence quadrant) are written too.

Layouts (``layout``):

``tsst`` (default)
    one recording ``S<nnn>_rec`` per subject, subjects split into train / devel / test by ``partitions``.
``personalisation``
    the MuSe 2023 personalisation layout (formats.md): train and devel subjects keep one whole recording
    (``S<nnn>_rec``); every **test** subject's recording is cut into ``S<nnn>_train`` (the first ``own_train_s``
    seconds, partition train), ``S<nnn>_devel`` (the next ``own_devel_s`` seconds, partition devel) and
    ``S<nnn>_test`` (the rest, partition test), each piece's times starting at 0. Every subject's labels carry a
    **subject effect the features cannot reveal**: ``label = g_s · latent + b_s`` per dimension, with offset
    ``b_s ~ N(0, subject_label_offset²)`` and gain ``g_s = clip(1 + N(0, subject_label_gain²), 0.3, 1.7)`` drawn
    from a stream of their own (features are made from the latent alone), so a subject-independent model cannot
    predict them and fine-tuning on a subject's own first minute can. ``continuous_clean`` holds
    ``g_s · latent + b_s`` without annotation noise (the ceiling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d

from affectflow.corpus.corpus import TIME, Corpus, FeatureSetInfo, LabelSetInfo
from affectflow.errors import ConfigError
from affectflow.progress import progress_bar
from affectflow.synthetic.latent import simulate_latent_affect


@dataclass
class FeatureSpec:
    """How one synthetic feature set is made.

    ``arousal``/``valence`` weight the information about each dimension; ``kind`` is ``linear`` or
    ``nonlinear``; ``noise`` is the frame noise std; ``missing`` is the fraction of time in NaN stretches;
    ``drop`` is the fraction of frames absent from the file; ``smooth_s`` low-passes the latent first.
    """

    name: str
    modality: str
    dim: int
    rate_hz: float = 2.0
    arousal: float = 1.0
    valence: float = 0.0
    kind: str = "linear"
    noise: float = 0.5
    missing: float = 0.0
    drop: float = 0.0
    time_offset_s: float = 0.0
    smooth_s: float = 0.0
    subject_offset: float = 0.5


DEFAULT_SPECS = [
    FeatureSpec("acoustic", "audio", 88, 2.0, arousal=1.0, valence=0.35, kind="linear", noise=0.8),
    FeatureSpec("visual", "video", 32, 5.0, arousal=0.4, valence=1.0, kind="nonlinear", noise=0.6, missing=0.12,
                time_offset_s=0.1),
    FeatureSpec("embedding", "audio", 256, 2.0, arousal=0.6, valence=0.6, kind="nonlinear", noise=1.5),
    FeatureSpec("physio", "physio", 3, 2.0, arousal=1.0, valence=0.1, kind="linear", noise=0.4, drop=0.05,
                smooth_s=3.0),
    FeatureSpec("noise", "other", 16, 2.0, arousal=0.0, valence=0.0, noise=1.0),
]


@dataclass
class SyntheticConfig:
    """Parameters of :func:`generate_corpus` (stored in the corpus as ``generator``)."""

    n_subjects: int = 40
    duration_s: float = 300.0
    duration_jitter_s: float = 60.0
    label_rate_hz: float = 2.0
    label_delay_s: float = 2.0
    label_noise: float = 0.12
    label_noise_smooth_s: float = 1.5
    partitions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    segment_s: float = 20.0
    seed: int = 0
    layout: str = "tsst"
    own_train_s: float = 60.0
    own_devel_s: float = 60.0
    subject_label_offset: float = 0.35
    subject_label_gain: float = 0.3
    features: list[FeatureSpec] = field(default_factory=lambda: list(DEFAULT_SPECS))


LAYOUTS = ("tsst", "personalisation")


def _projections(rng: np.random.Generator, spec: FeatureSpec) -> dict[str, np.ndarray]:
    return {
        "w": rng.standard_normal((2, spec.dim)) / np.sqrt(2),
        "w2": rng.standard_normal((2, spec.dim)) * 1.5,
        "phase": rng.uniform(0, 2 * np.pi, spec.dim),
    }


def _feature_values(spec: FeatureSpec, proj: dict, a: np.ndarray, v: np.ndarray, rng: np.random.Generator,
                    subj_offset: np.ndarray, subj_gain: float) -> np.ndarray:
    z = np.stack([spec.arousal * a, spec.valence * v], axis=1)  # (N, 2)
    if spec.kind == "linear":
        x = z @ proj["w"]
    else:
        x = np.tanh(z @ proj["w2"]) + 0.5 * np.sin(z @ proj["w2"] + proj["phase"])
    x = subj_gain * x + subj_offset + spec.noise * rng.standard_normal(x.shape)
    return x.astype(np.float32)


def generate_corpus(path: str | Path, config: SyntheticConfig | None = None, *, progress: bool = True, **overrides) -> Corpus:
    """Write a synthetic corpus to ``path`` (must not exist or be empty) and return it.

    ``overrides`` set fields of :class:`SyntheticConfig` (e.g. ``n_subjects=8``). The same seed gives the same
    files' content.
    """
    cfg = config or SyntheticConfig()
    cfg = SyntheticConfig(**{**asdict(cfg), "features": cfg.features, **overrides})
    if cfg.layout not in LAYOUTS:
        raise ConfigError(f"Unknown synthetic layout {cfg.layout!r}; valid layouts: {list(LAYOUTS)}.")
    personal = cfg.layout == "personalisation"
    if personal and cfg.duration_s - cfg.duration_jitter_s / 2 <= cfg.own_train_s + cfg.own_devel_s:
        raise ConfigError(
            f"The personalisation layout cuts each test subject's recording into {cfg.own_train_s:g} s own-train, "
            f"{cfg.own_devel_s:g} s own-devel and the rest as test, so recordings must be longer than "
            f"{cfg.own_train_s + cfg.own_devel_s:g} s; got duration {cfg.duration_s:g} s ± {cfg.duration_jitter_s / 2:g} s."
        )
    rng = np.random.default_rng(cfg.seed)
    corpus = Corpus.create(
        path,
        name="synthetic-tsst" if not personal else "synthetic-personalisation",
        label_rate_hz=cfg.label_rate_hz,
        description="Synthetic TSST-like corpus with known latent affect (affectflow.synthetic.corpus).",
        generator={**asdict(cfg), "features": [asdict(s) for s in cfg.features]},
    )
    for spec in cfg.features:
        corpus.write_feature_set_info(
            FeatureSetInfo(spec.name, spec.modality, [f"{spec.name}_{j:03d}" for j in range(spec.dim)], spec.rate_hz,
                           params={"synthetic": asdict(spec)})
        )
    dims = ["arousal", "valence"]
    corpus.write_label_set_info(LabelSetInfo("continuous", dims, cfg.label_rate_hz, "annotated (delayed + noisy)"))
    corpus.write_label_set_info(LabelSetInfo("continuous_clean", dims, cfg.label_rate_hz, "noise-free (delayed)"))
    projections = {s.name: _projections(rng, s) for s in cfg.features}

    n = cfg.n_subjects
    order = rng.permutation(n)
    n_train = int(round(cfg.partitions[0] * n))
    n_devel = int(round(cfg.partitions[1] * n))
    part_of = {}
    for rank, s in enumerate(order):
        part_of[s] = "train" if rank < n_train else ("devel" if rank < n_train + n_devel else "test")

    rows, segments, clips = [], [], []
    for s in progress_bar(range(n), desc="generating", unit="rec", disable=not progress):
        srng = np.random.default_rng([cfg.seed, s])
        subject = f"S{s:03d}"
        rid = f"{subject}_rec"
        duration = float(cfg.duration_s + srng.uniform(-cfg.duration_jitter_s, cfg.duration_jitter_s) / 2)
        latent = simulate_latent_affect(
            duration + cfg.label_delay_s, seed=srng, arousal_mean=srng.normal(0, 0.3), valence_mean=srng.normal(0, 0.3)
        )
        # latent time axis: index 0 corresponds to t = -label_delay_s, so labels can look back from t = 0.
        shift = cfg.label_delay_s

        def latent_at(t, shift=shift, latent=latent):
            return latent.at(np.asarray(t) + shift)

        frames: dict[str, pd.DataFrame] = {}
        for spec in cfg.features:
            t = np.arange(spec.time_offset_s, duration, 1.0 / spec.rate_hz)
            a, v = latent_at(t)
            if spec.smooth_s > 0:
                sig = spec.smooth_s * spec.rate_hz
                a, v = gaussian_filter1d(a, sig, mode="nearest"), gaussian_filter1d(v, sig, mode="nearest")
            offset = spec.subject_offset * srng.standard_normal(spec.dim)
            gain = float(1.0 + 0.15 * srng.standard_normal())
            x = _feature_values(spec, projections[spec.name], a, v, srng, offset, gain)
            if spec.missing > 0:
                miss = np.zeros(len(t), dtype=bool)
                n_gaps = max(1, int(spec.missing * duration / 8.0))
                for _ in range(n_gaps):
                    start = srng.uniform(0, duration)
                    miss |= (t >= start) & (t < start + srng.uniform(4.0, 12.0))
                x[miss] = np.nan
            keep = srng.random(len(t)) >= spec.drop
            frame = pd.DataFrame(x[keep], columns=[f"{spec.name}_{j:03d}" for j in range(spec.dim)])
            frame.insert(0, TIME, t[keep])
            frames[spec.name] = frame

        lt = np.arange(0, duration, 1.0 / cfg.label_rate_hz)
        clean_a, clean_v = latent.at(lt)  # latent index shifted: label(t) = latent(t - delay)
        if personal:  # the subject's label effect, from its own stream (features never see it)
            erng = np.random.default_rng([cfg.seed, s, 7])
            off = erng.normal(0.0, cfg.subject_label_offset, 2)
            gain = np.clip(1.0 + erng.normal(0.0, cfg.subject_label_gain, 2), 0.3, 1.7)
            clean_a, clean_v = gain[0] * clean_a + off[0], gain[1] * clean_v + off[1]
        sigma = cfg.label_noise_smooth_s * cfg.label_rate_hz

        def noise(sigma=sigma, n=len(lt), srng=srng):
            z = gaussian_filter1d(srng.standard_normal(n), sigma, mode="reflect")
            return z / (z.std() + 1e-12) * cfg.label_noise

        noisy = pd.DataFrame({TIME: lt, "arousal": clean_a + noise(), "valence": clean_v + noise()})
        clean = pd.DataFrame({TIME: lt, "arousal": clean_a, "valence": clean_v})
        if personal and part_of[s] == "test":
            cuts = [0.0, cfg.own_train_s, cfg.own_train_s + cfg.own_devel_s, np.inf]
            pieces = [(f"{subject}_train", "train"), (f"{subject}_devel", "devel"), (f"{subject}_test", "test")]
        else:
            cuts, pieces = [0.0, np.inf], [(rid, part_of[s])]
        for (pid, part), lo, hi in zip(pieces, cuts[:-1], cuts[1:]):
            def cut(df, lo=lo, hi=hi):
                out = df[(df[TIME] >= lo) & (df[TIME] < hi)].copy()
                out[TIME] = out[TIME] - lo
                return out.reset_index(drop=True)

            for name, frame in frames.items():
                corpus.write_features(name, pid, cut(frame))
            p_noisy = cut(noisy)
            corpus.write_labels(pid, p_noisy, "continuous")
            corpus.write_labels(pid, cut(clean), "continuous_clean")
            p_dur = float(min(hi, duration) - lo)
            edges = np.arange(0, p_dur, cfg.segment_s)
            for k, st in enumerate(edges):
                en = min(st + cfg.segment_s, p_dur)
                sel = (p_noisy[TIME] >= st) & (p_noisy[TIME] < en)
                mv = float(p_noisy["valence"][sel].mean())
                segments.append({"recording": pid, "segment_id": k, "start": st, "end": en,
                                 "sentiment": int(np.digitize(mv, [-0.45, -0.15, 0.15, 0.45]))})
            ma, mv = float(p_noisy["arousal"].mean()), float(p_noisy["valence"].mean())
            quadrant = (["sad", "angry", "neutral", "happy"][(ma > 0) + 2 * (mv > 0)] if abs(ma) + abs(mv) > 0.15
                        else "neutral")
            clips.append({"recording": pid, "discrete": quadrant, "valence": mv})
            rows.append({"id": pid, "subject": subject, "partition": part, "duration": p_dur})

    corpus.set_recordings(pd.DataFrame(rows))
    corpus.write_segments(pd.DataFrame(segments))
    corpus.write_clips(pd.DataFrame(clips))
    return corpus
