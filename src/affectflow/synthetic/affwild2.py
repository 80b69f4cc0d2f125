"""A synthetic dataset in the **Aff-Wild2 / ABAW valence-arousal layout**, with known answers.

:func:`generate_affwild2` writes what an ABAW participant has on disk (see ``formats.md``)::

    <out>/VA_Estimation_Challenge/Train_Set/<name>.txt        "valence,arousal", then one line per video frame;
    <out>/VA_Estimation_Challenge/Validation_Set/<name>.txt   -5,-5 on frames that are not annotated
    <out>/videos/<video>.mp4                                  H.264 at the video's own frame rate
    <out>/cropped_aligned/<name>/<00001>.jpg                  face crop per frame; absent where "no face"
    <out>/test_set.txt                                        names of the test videos, one per line (no labels)
    <out>/ground_truth/<name>.txt                             noise-free labels of every name (incl. test),
                                                              same format, never -5 (for ceilings)
    <out>/withheld_test_labels/<name>.txt                     the test names' annotated labels (what the
                                                              organisers score submissions against)
    <out>/generation.json                                     configuration and per-name fps, frames, partition

``<name>`` is the video name, or ``<video>_left`` / ``<video>_right`` for a video with two people (one
annotation file and one crop folder per person, one video file with both side by side).

Known answers
    Each person has a latent affect ``a(t), v(t)`` (:func:`~affectflow.synthetic.latent.simulate_latent_affect`).
    The noise-free label of frame ``i`` (1-based line ``i + 1``) is ``(v, a)`` at ``t = i / fps``; the annotated
    label adds smooth Gaussian noise of std ``label_noise`` and is clipped to [-1, 1]; a fraction
    ``unannotated_fraction`` of the frames, in stretches, is ``-5`` (not annotated). Some annotation files end a
    few frames before the video (``short_annotation_every``), as in the real data.
    The face crop (``crop_size`` pixels, the astronaut photo of ``skimage.data``) is zoomed by ``1 + 0.35 a(t)`` and
    lit with gain ``1 + 0.35 v(t)``, so a model-free descriptor (``crop_pixels``) carries both dimensions. In
    stretches totalling ``missing_crop_fraction`` of the frames the crop file is absent.
    The CCC between the noise-free and the annotated labels (over annotated frames) is the ceiling: the
    importer reads ``ground_truth/`` as label set ``continuous_clean`` with ``--reference-labels``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from affectflow.corpus.staging import staged_folder
from affectflow.errors import ConfigError
from affectflow.io.video import write_video
from affectflow.progress import progress_bar
from affectflow.synthetic.latent import simulate_latent_affect

TRAIN_DIR = "Train_Set"
DEVEL_DIR = "Validation_Set"


@dataclass
class AffWild2SynthConfig:
    """Parameters of :func:`generate_affwild2` (stored in ``generation.json``)."""

    n_videos: int = 12
    duration_s: float = 30.0
    duration_jitter_s: float = 10.0
    fps_choices: tuple[float, ...] = (25.0, 30.0, 30000 / 1001)
    two_person_every: int = 4
    short_annotation_every: int = 3
    partitions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    label_noise: float = 0.1
    label_noise_smooth_s: float = 0.5
    unannotated_fraction: float = 0.05
    missing_crop_fraction: float = 0.06
    smoothness_s: float = 2.0
    crop_size: int = 48
    videos: bool = True
    seed: int = 0


def _face(size: int) -> np.ndarray:
    """The astronaut's face with a margin, as float32 RGB, about 2 x ``size`` pixels square."""
    from PIL import Image
    from skimage import data

    img = data.astronaut()
    box = (177 - 30, 66 - 30, 177 + 95 + 30, 66 + 95 + 30)  # face box (x, y, w=95, h=95) + margin
    face = Image.fromarray(img).crop(box).resize((2 * size, 2 * size), Image.BILINEAR)
    return np.asarray(face, dtype=np.float32)


def render_crop(face: np.ndarray, size: int, arousal: float, valence: float) -> np.ndarray:
    """The ``size`` x ``size`` uint8 crop for one frame: zoom ``1 + 0.35 a``, gain ``1 + 0.35 v``."""
    big = face.shape[0]
    zoom = 1.0 + 0.35 * float(arousal)
    half = big / 2 / (1.3 * zoom)
    c = big / 2
    idx = np.clip(np.round(c - half + (np.arange(size) + 0.5) * (2 * half / size)).astype(int), 0, big - 1)
    img = face[idx][:, idx] * (1.0 + 0.35 * float(valence))
    return np.clip(img, 0, 255).astype(np.uint8)


def _stretches(rng: np.random.Generator, n: int, fraction: float, mean_len: int) -> np.ndarray:
    """Boolean mask of ``n`` frames with about ``fraction`` of them in stretches of ~``mean_len`` frames."""
    out = np.zeros(n, bool)
    if fraction <= 0 or n < 4:
        return out
    k = max(1, int(round(fraction * n / mean_len)))
    for _ in range(k):
        length = max(1, int(rng.integers(mean_len // 2, mean_len * 3 // 2 + 1)))
        s = int(rng.integers(0, max(1, n - length)))
        out[s : s + length] = True
    return out


def _write_video(path: Path, crops: list[list[np.ndarray]], fps: float) -> None:
    """The face crops of each frame side by side, as an H.264 video at ``fps``."""
    write_video(path, (np.concatenate(parts, axis=1) for parts in crops), Fraction(fps).limit_denominator(1001),
                crf=28)


def _write_labels(path: Path, valence: np.ndarray, arousal: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["valence,arousal"] + [
        ("-5,-5" if v == -5 else f"{v:.4f},{a:.4f}") for v, a in zip(valence.tolist(), arousal.tolist())
    ]
    path.write_text("\n".join(lines) + "\n")


def generate_affwild2(out: str | Path, *, progress: bool = False, **overrides) -> dict:
    """Write a synthetic Aff-Wild2-layout dataset to the new folder ``out``; return the generation record.

    Parameters
    ----------
    out:
        New folder (must not exist or be empty); written all-or-nothing.
    overrides:
        Fields of :class:`AffWild2SynthConfig` (``n_videos``, ``duration_s``, ``fps_choices``, ``seed``, ...).

    Returns
    -------
    dict
        ``{"config": ..., "names": {name: {"video", "fps", "frames", "annotated_frames", "partition"}}}``, also
        written to ``generation.json``.
    """
    from PIL import Image

    bad = sorted(set(overrides) - set(AffWild2SynthConfig.__dataclass_fields__))
    if bad:
        raise ConfigError(f"Unknown generator options {bad}; valid: {sorted(AffWild2SynthConfig.__dataclass_fields__)}.")
    cfg = AffWild2SynthConfig(**overrides)
    if cfg.n_videos < 3:
        raise ConfigError(f"n_videos must be at least 3 (train, validation and test), got {cfg.n_videos}.")
    rng = np.random.default_rng(cfg.seed)
    face = _face(cfg.crop_size)
    n_train = max(1, int(round(cfg.partitions[0] * cfg.n_videos)))
    n_devel = max(1, int(round(cfg.partitions[1] * cfg.n_videos)))
    order = rng.permutation(cfg.n_videos)
    part_of = {int(v): ("train" if i < n_train else "devel" if i < n_train + n_devel else "test")
               for i, v in enumerate(order)}
    if "test" not in part_of.values():
        part_of[int(order[-1])] = "test"
    names: dict[str, dict] = {}
    with staged_folder(out, what="synthetic Aff-Wild2 folder") as tmp:
        for k in progress_bar(range(cfg.n_videos), desc="videos", disable=not progress):
            vrng = np.random.default_rng([cfg.seed, k])
            fps = float(cfg.fps_choices[k % len(cfg.fps_choices)])
            duration = max(4.0, cfg.duration_s + float(vrng.uniform(-1, 1)) * cfg.duration_jitter_s)
            n = int(round(duration * fps))
            t = np.arange(n) / fps
            video = f"vid{k:03d}"
            people = ["_left", "_right"] if cfg.two_person_every and k % cfg.two_person_every == 1 else [""]
            crops_per_frame: list[list[np.ndarray]] = [[] for _ in range(n)]
            for p, suffix in enumerate(people):
                name = video + suffix
                prng = np.random.default_rng([cfg.seed, k, p])
                latent = simulate_latent_affect(duration + 1.0, seed=prng, smoothness_s=cfg.smoothness_s,
                                                arousal_mean=float(prng.normal(0, 0.3)),
                                                valence_mean=float(prng.normal(0, 0.3)), stress_response=0.0)
                a, v = latent.at(t)
                sig = max(cfg.label_noise_smooth_s * fps, 1e-3)
                noise = [gaussian_filter1d(prng.standard_normal(n), sig) for _ in range(2)]
                noise = [x / (x.std() + 1e-12) * cfg.label_noise for x in noise]
                obs_v = np.clip(v + noise[0], -1, 1)
                obs_a = np.clip(a + noise[1], -1, 1)
                unann = _stretches(prng, n, cfg.unannotated_fraction, max(2, int(fps)))
                obs_v[unann], obs_a[unann] = -5, -5
                n_lab = n - (3 if cfg.short_annotation_every and k % cfg.short_annotation_every == 2 else 0)
                part = part_of[k]
                folder = {"train": TRAIN_DIR, "devel": DEVEL_DIR}.get(part)
                if folder is not None:
                    _write_labels(tmp / "VA_Estimation_Challenge" / folder / f"{name}.txt", obs_v[:n_lab], obs_a[:n_lab])
                else:
                    _write_labels(tmp / "withheld_test_labels" / f"{name}.txt", obs_v[:n_lab], obs_a[:n_lab])
                _write_labels(tmp / "ground_truth" / f"{name}.txt", v, a)
                missing = _stretches(prng, n, cfg.missing_crop_fraction, max(2, int(fps // 2)))
                cdir = tmp / "cropped_aligned" / name
                cdir.mkdir(parents=True)
                for i in range(n):
                    img = render_crop(face, cfg.crop_size, a[i], v[i])
                    crops_per_frame[i].append(img)
                    if not missing[i]:
                        Image.fromarray(img).save(cdir / f"{i + 1:05d}.jpg", quality=90)
                names[name] = {"video": video, "fps": fps, "frames": n, "annotation_lines": n_lab,
                               "unannotated": int(unann[:n_lab].sum()), "missing_crops": int(missing.sum()),
                               "partition": part}
            if cfg.videos:
                (tmp / "videos").mkdir(exist_ok=True)
                _write_video(tmp / "videos" / f"{video}.mp4", crops_per_frame, fps)
        tests = [nm for nm, r in names.items() if r["partition"] == "test"]
        (tmp / "test_set.txt").write_text("\n".join(tests) + "\n")
        record = {"layout": "affwild2", "config": asdict(cfg), "names": names}
        (tmp / "generation.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
