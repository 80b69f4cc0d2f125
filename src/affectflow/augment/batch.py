"""On-the-fly augmentation of training batches (``training.augment``): the MER-NOISE transforms per batch.

``affectflow augment`` writes augmented copies of the training media once; with backbone encoders over raw inputs
the same degradations can instead be drawn afresh for every training batch::

    training:
      augment:
        face_crops: {transforms: [brightness, blur, rotate, cutout], p: 0.5}     # image transforms
        logmel_patches: {noise: babble, snr: [5, 11], p: 0.5, n_speakers: 3}     # speech noise (or noise: DIR)

Keys are feature sets of ``data.features``; a set's block is an **image** block (``transforms``, ``p``) or an
**audio** block (``noise``, ``snr``, ``p``, ``n_speakers``).

Image blocks
    For a raw pixel set (``storage: uint8``: ``face_crops``, ``C = 3`` channels of ``size x size``), every present
    step's image of a training batch goes through :func:`affectflow.augment.image.augment_batch`: each transform
    is applied with probability ``p``, with parameters drawn per image (the table of :mod:`affectflow.augment.image`).
Audio blocks
    For a log-mel set (``logmel_patches`` or ``logmel``: values :math:`l = \\log(m + \\epsilon)` of a mel magnitude
    :math:`m`, :math:`\\epsilon` = the extractor's ``log_offset``), each window of the batch is, with probability
    ``p``, mixed with noise at an SNR drawn uniformly from ``snr: [low, high]`` dB (a single number: fixed). The
    mixture is computed in the mel domain, as the sum of the powers of uncorrelated sources:

    .. math:: m' = \\sqrt{m^2 + g^2 n^2}, \\qquad
              g^2 = \\frac{\\overline{m^2}}{\\overline{n^2}} 10^{-\\text{SNR}/10}

    (bars: means over the window's present steps and all values), so the window's speech-to-noise power ratio
    is the SNR, as :func:`affectflow.augment.audio.mix_at_snr` does on waveforms. ``noise: babble`` (default):
    :math:`n^2` is the sum of ``n_speakers`` other windows of the **same training batch** (other subjects where the
    batch has them; never devel or test audio), each circularly shifted by a random offset and scaled to unit mean
    power. ``noise: DIR``: audio files of a folder (e.g. MUSAN ``speech/``; at most ``max_files``, chosen with the
    run's seed) are turned into the set's own frames once, by the set's extractor with its stored parameters, and
    each window takes a random stretch of a random file (looped).

The values are un-normalised with the run's normaliser statistics (per subject in ``normalize: subject``) before
the transform and normalised again after it; a set with a PCA (``data.pca``) cannot be augmented (the projection
cannot be inverted). Only present steps (``feature_mask``) change; evaluation batches are never augmented.

Reproducible and resume-exact: every random draw of batch ``b`` of epoch ``e`` comes from its own
``torch.Generator`` seeded with ``SeedSequence([seed, e, b])``, independent of every other random state, so the same
seed gives the same augmented batches and a resumed run the same as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectflow.augment.audio import noise_files, parse_snr
from affectflow.augment.image import TRANSFORMS, augment_batch, check_transforms
from affectflow.errors import ConfigError
from affectflow.features import EXTRACTORS, MediaRecording

IMAGE_KEYS = ("transforms", "p")
AUDIO_KEYS = ("noise", "snr", "p", "n_speakers", "max_files")
AUDIO_EXTRACTORS = ("logmel_patches", "logmel")


def _extractor_of(info) -> tuple[str | None, dict[str, Any]]:
    params = info.params or {}
    return params.get("extractor"), dict(params.get("params") or {})


def check_batch_augment(spec: Any, features: list[str]) -> dict[str, dict[str, Any]]:
    """Validate ``training.augment`` (before any data is read); return it with defaults filled in."""
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise ConfigError("`training.augment` must map feature sets to {transforms: [...], p} (images) or "
                          f"{{noise: babble|DIR, snr: [low, high], p}} (log-mel), got {spec!r}.")
    out: dict[str, dict[str, Any]] = {}
    for name, block in spec.items():
        if name not in features:
            raise ConfigError(f"`training.augment.{name}`: {name!r} is not in `data.features` {features}.")
        if not isinstance(block, dict):
            raise ConfigError(f"`training.augment.{name}` must be a mapping, got {block!r}.")
        image = "transforms" in block or "noise" not in block
        valid = IMAGE_KEYS if image else AUDIO_KEYS
        unknown = sorted(set(block) - set(valid))
        if unknown:
            raise ConfigError(f"`training.augment.{name}` has unknown keys {unknown}; an "
                              f"{'image' if image else 'audio'} block takes {list(valid)}.")
        p = block.get("p", 0.5)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ConfigError(f"`training.augment.{name}.p` must be in [0, 1], got {p!r}.")
        if image:
            out[name] = {"kind": "image", "transforms": check_transforms(block.get("transforms", list(TRANSFORMS))),
                         "p": float(p)}
            continue
        snr = block.get("snr", [5, 11])
        if isinstance(snr, str):
            vals = parse_snr(snr)
            snr = [min(vals), max(vals)]
        snr = [snr] if isinstance(snr, (int, float)) and not isinstance(snr, bool) else snr
        if (not isinstance(snr, (list, tuple)) or len(snr) not in (1, 2)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in snr) or snr[0] > snr[-1]):
            raise ConfigError(f"`training.augment.{name}.snr` must be a number or [low, high] in dB, got {snr!r}.")
        n_sp, max_files = block.get("n_speakers", 3), block.get("max_files", 20)
        for key, v in (("n_speakers", n_sp), ("max_files", max_files)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"`training.augment.{name}.{key}` must be an integer >= 1, got {v!r}.")
        noise = block["noise"]
        if noise != "babble" and not (isinstance(noise, str) and Path(noise).is_dir()):
            raise ConfigError(f"`training.augment.{name}.noise` must be `babble` or a folder of noise audio files; "
                              f"{noise!r} is neither.")
        out[name] = {"kind": "audio", "noise": noise, "snr": (float(snr[0]), float(snr[-1])), "p": float(p),
                     "n_speakers": n_sp, "max_files": max_files}
    return out


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The generator of batch ``batch`` of ``epoch`` (seeded with ``SeedSequence([seed, epoch, batch])``)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(batch)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


class BatchAugmenter:
    """Applies ``training.augment`` to training batches (see the module docstring).

    Parameters
    ----------
    spec:
        The checked ``training.augment`` (:func:`check_batch_augment`).
    store:
        The training :class:`~affectflow.data.store.SequenceStore` (the batch's ``index`` points into it).
    normalizer:
        The fitted normaliser.
    seed:
        The training seed.
    """

    def __init__(self, spec: dict[str, dict[str, Any]], store, normalizer, seed: int) -> None:
        self.spec = spec
        self.store = store
        self.normalizer = normalizer
        self.seed = int(seed)
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self.log_offset: dict[str, float] = {}
        self.noise: dict[str, list[np.ndarray]] = {}
        for name, block in spec.items():
            if name in getattr(normalizer, "pca_", {}):
                raise ConfigError(f"`training.augment.{name}`: the set has a PCA (`data.pca`), so its normalised values "
                                  "cannot be turned back into pixels or log-mel values; drop one of the two.")
            info = store.infos[name]
            ex, params = _extractor_of(info)
            if block["kind"] == "image":
                if name not in store.uint8_sets:
                    raise ConfigError(f"`training.augment.{name}`: image transforms need a raw pixel set (storage "
                                      f"uint8, e.g. face_crops); {name!r} is made by {ex or 'an unknown extractor'}.")
                side = int(round((info.dim / 3) ** 0.5))
                if 3 * side * side != info.dim:
                    raise ConfigError(f"`training.augment.{name}`: {info.dim} columns are not a 3 x s x s image.")
                self.shapes[name] = (3, side, side)
            else:
                if ex not in AUDIO_EXTRACTORS:
                    raise ConfigError(f"`training.augment.{name}`: speech noise needs a log-mel set (extractor "
                                      f"{' or '.join(AUDIO_EXTRACTORS)}); {name!r} is made by "
                                      f"{ex or 'an unknown extractor'}.")
                self.log_offset[name] = float(params.get("log_offset", 0.01))
                if block["noise"] != "babble":
                    self.noise[name] = self._noise_frames(name, ex, params, block)

    # ---------------------------------------------------------------------------------------------- noise folder
    def _noise_frames(self, name: str, ex: str, params: dict, block: dict) -> list[np.ndarray]:
        files = noise_files(block["noise"])
        if len(files) > block["max_files"]:
            pick = np.random.default_rng([self.seed, 7919]).choice(len(files), block["max_files"], replace=False)
            files = [files[i] for i in sorted(pick)]
        extractor = EXTRACTORS.build(ex, params)
        out = []
        for f in files:
            frame = extractor.extract(MediaRecording(id=f.stem, audio=f))
            v = frame.drop(columns="time").to_numpy(np.float32)
            v = v[np.isfinite(v).all(1)]
            if len(v):
                out.append(v)
        if not out:
            raise ConfigError(f"`training.augment.{name}.noise`: no file of {block['noise']!r} gave any frames.")
        return out

    # ---------------------------------------------------------------------------------------------- batches
    def _stats(self, name: str, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1, D)`` mean and std of each window's subject."""
        means, stds = [], []
        for i in index.tolist():
            m, s = self.normalizer.stats(name, self.store.records[int(i)].subject)
            means.append(torch.from_numpy(np.asarray(m, np.float32)))
            stds.append(torch.from_numpy(np.asarray(s, np.float32)))
        return torch.stack(means)[:, None], torch.stack(stds)[:, None]

    def __call__(self, batch: dict, epoch: int, b: int) -> dict:
        """Augment ``batch`` (the collated CPU batch, changed in place and returned)."""
        gen = batch_generator(self.seed, epoch, b)
        for name, block in self.spec.items():
            x, fm = batch["x"][name], batch["feature_mask"][name]
            mean, std = self._stats(name, batch["index"])
            raw = x * std + mean
            if block["kind"] == "image":
                new = self._images(raw, fm, self.shapes[name], block, gen)
            else:
                subjects = [self.store.records[int(i)].subject for i in batch["index"].tolist()]
                new = self._audio(name, raw, fm, subjects, block, gen)
            batch["x"][name] = torch.where(fm.unsqueeze(-1), (new - mean) / std, x)
        return batch

    @staticmethod
    def _images(raw: torch.Tensor, fm: torch.Tensor, shape, block: dict, gen: torch.Generator) -> torch.Tensor:
        out = raw.clone()
        imgs = raw[fm].reshape(-1, *shape)
        out[fm] = augment_batch(imgs, block["transforms"], block["p"], generator=gen).reshape(imgs.shape[0], -1)
        return out

    def _audio(self, name: str, raw: torch.Tensor, fm: torch.Tensor, subjects: list[str], block: dict,
               gen: torch.Generator) -> torch.Tensor:
        bsz, t, _ = raw.shape
        off = self.log_offset[name]
        power = (raw.exp() - off).clamp(min=0) ** 2  # (B, T, D) mel power per value
        present = fm.unsqueeze(-1).to(power.dtype)
        n_present = present.sum((1, 2)).clamp(min=1) * power.shape[2]
        speech_pow = (power * present).sum((1, 2)) / n_present  # (B,)
        on = torch.rand(bsz, generator=gen) < block["p"]
        lo, hi = block["snr"]
        snr = lo + (hi - lo) * torch.rand(bsz, generator=gen)
        out = raw.clone()
        for j in range(bsz):
            if not on[j] or not bool(fm[j].any()) or speech_pow[j] <= 0:
                continue
            if block["noise"] == "babble":
                noise = self._babble(j, power, fm, subjects, block["n_speakers"], gen)
            else:
                noise = self._file_noise(name, t, gen)
            if noise is None:
                continue
            noise_pow = (noise * present[j]).sum() / n_present[j]
            if noise_pow <= 0:
                continue
            g2 = speech_pow[j] / noise_pow * 10.0 ** (-snr[j] / 10.0)
            mixed = (power[j] + g2 * noise).sqrt()
            out[j] = (mixed + off).log()
        return out

    def _babble(self, j: int, power: torch.Tensor, fm: torch.Tensor, subjects: list[str], n_speakers: int,
                gen: torch.Generator) -> torch.Tensor | None:
        others = [k for k in range(power.shape[0]) if k != j and subjects[k] != subjects[j] and bool(fm[k].any())]
        if not others:
            others = [k for k in range(power.shape[0]) if k != j and bool(fm[k].any())]
        if not others:
            return None
        order = torch.randperm(len(others), generator=gen)[:n_speakers].tolist()
        t = power.shape[1]
        noise = torch.zeros_like(power[j])
        for k in (others[i] for i in order):
            steps = fm[k].nonzero(as_tuple=True)[0]
            part = power[k, steps]  # (L_k, D)
            mean = part.mean()
            if mean <= 0:
                continue
            shift = int(torch.randint(0, len(steps), (1,), generator=gen))
            idx = (torch.arange(t) + shift) % len(steps)
            noise += part[idx] / mean
        return noise

    def _file_noise(self, name: str, t: int, gen: torch.Generator) -> torch.Tensor:
        files = self.noise[name]
        v = files[int(torch.randint(0, len(files), (1,), generator=gen))]
        start = int(torch.randint(0, len(v), (1,), generator=gen))
        idx = (np.arange(t) + start) % len(v)
        p = (np.exp(v[idx]) - self.log_offset[name]).clip(min=0) ** 2
        p = torch.from_numpy(p.astype(np.float32))
        mean = p.mean()
        return p / mean if mean > 0 else p
