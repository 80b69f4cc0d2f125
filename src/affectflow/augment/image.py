"""Image transforms of the MER 2023 MER-NOISE augmentation: brightness (and solarize), blur, rotation, cutout.

Each transform draws its parameters once per image (per recording for ``affectflow augment``, which makes a
steady degradation of a whole copy; per step image for on-the-fly augmentation in a backbone):

==============  =====================================================================================================
name            what it does to an image with values in [0, 1] (side ``s`` = the smaller of H and W)
==============  =====================================================================================================
``brightness``  ``v ← clip(f · v)``, ``f ~ U(1 − 0.5, 1 + 0.5)``
``solarize``    ``v ← 1 − v`` where ``v > θ``, ``θ ~ U(0.5, 0.9)``
``blur``        Gaussian blur with ``σ ~ U(0.02, 0.06) · s`` pixels
``rotate``      rotation about the centre by ``α ~ U(−20°, 20°)``, zero (black) outside the image
``cutout``      a square of side ``U(0.2, 0.4) · s`` at a uniform position set to 0
==============  =====================================================================================================

:func:`draw_params` + :func:`apply_uint8` act on ``(H, W, 3)`` uint8 frames (NumPy RNG, OpenCV), and
:func:`augment_batch` on ``(N, C, H, W)`` float tensors (torch RNG: seeded and resumed with training).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from affectflow.errors import ConfigError

TRANSFORMS = ("brightness", "solarize", "blur", "rotate", "cutout")
BRIGHTNESS = 0.5
SOLARIZE = (0.5, 0.9)
BLUR_SIGMA = (0.02, 0.06)
ROTATE_DEG = 20.0
CUTOUT = (0.2, 0.4)


def check_transforms(names: list[str]) -> list[str]:
    """``names`` if every one is a known transform, else :class:`ConfigError` listing the valid ones."""
    names = list(names)
    bad = [n for n in names if n not in TRANSFORMS]
    if bad or not names:
        raise ConfigError(f"Unknown or no image transforms {bad or names}; valid: {list(TRANSFORMS)} (comma-separated).")
    return names


def check_augment(cfg: dict[str, Any]) -> None:
    """Validate an on-the-fly ``augment`` block: ``{transforms: [...], p: 0.5}``."""
    unknown = sorted(set(cfg) - {"transforms", "p"})
    if unknown:
        raise ConfigError(f"Backbone `augment` has unknown keys {unknown}; valid: ['transforms', 'p'].")
    check_transforms(cfg.get("transforms", list(TRANSFORMS)))
    p = cfg.get("p", 0.5)
    if not (isinstance(p, (int, float)) and 0 <= p <= 1):
        raise ConfigError(f"Backbone `augment.p` must be in [0, 1], got {p!r}.")


# ---------------------------------------------------------------------------------------------------- files (uint8)
def draw_params(rng: np.random.Generator, names: list[str]) -> dict[str, Any]:
    """Random parameters of ``names`` (see the module docstring), in relative units."""
    out: dict[str, Any] = {}
    for n in names:
        if n == "brightness":
            out[n] = float(rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS))
        elif n == "solarize":
            out[n] = float(rng.uniform(*SOLARIZE))
        elif n == "blur":
            out[n] = float(rng.uniform(*BLUR_SIGMA))
        elif n == "rotate":
            out[n] = float(rng.uniform(-ROTATE_DEG, ROTATE_DEG))
        elif n == "cutout":
            out[n] = (float(rng.uniform(*CUTOUT)), float(rng.uniform()), float(rng.uniform()))
    return out


def apply_uint8(img: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Apply drawn ``params`` to one ``(H, W, 3)`` uint8 image (in the order of the module table)."""
    import cv2

    x = img.astype(np.float32) / 255.0
    h, w = x.shape[:2]
    s = min(h, w)
    if "brightness" in params:
        x = np.clip(x * params["brightness"], 0.0, 1.0)
    if "solarize" in params:
        x = np.where(x > params["solarize"], 1.0 - x, x)
    if "blur" in params:
        sigma = max(params["blur"] * s, 0.1)
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    if "rotate" in params:
        m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), params["rotate"], 1.0)
        x = cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if "cutout" in params:
        frac, fy, fx = params["cutout"]
        side = max(1, int(round(frac * s)))
        y0, x0 = int(fy * (h - side)), int(fx * (w - side))
        x = x.copy()
        x[y0:y0 + side, x0:x0 + side] = 0.0
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------- batches (torch)
def _uniform(n: int, lo: float, hi: float, like: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * (hi - lo) + lo).to(like.device, like.dtype)


def augment_batch(img: torch.Tensor, transforms: list[str] = TRANSFORMS, p: float = 0.5, *,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Transform each image of ``(N, C, H, W)`` (values in [0, 1]) with probability ``p`` per transform.

    Parameters are drawn from ``generator`` (a CPU ``torch.Generator``; ``None``: the global torch RNG), so training
    stays seeded and resumable.
    """
    gen = generator
    n, c, h, w = img.shape
    if n == 0:
        return img
    s = min(h, w)
    x = img
    for name in transforms:
        on = (torch.rand(n, generator=gen) < p).to(x.device)
        if name == "brightness":
            f = _uniform(n, 1 - BRIGHTNESS, 1 + BRIGHTNESS, x, gen)
            y = (x * f.view(n, 1, 1, 1)).clamp(0, 1)
        elif name == "solarize":
            th = _uniform(n, *SOLARIZE, x, gen).view(n, 1, 1, 1)
            y = torch.where(x > th, 1 - x, x)
        elif name == "blur":
            sig = _uniform(n, *BLUR_SIGMA, x, gen) * s
            r = max(1, int(math.ceil(3 * BLUR_SIGMA[1] * s)))
            t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
            k = torch.exp(-0.5 * (t.view(1, -1) / sig.clamp(min=0.1).view(-1, 1)) ** 2)
            k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N*C, 2r+1)
            z = x.reshape(1, n * c, h, w)
            z = F.conv2d(F.pad(z, (r, r, 0, 0), mode="reflect" if w > r else "replicate"), k.view(n * c, 1, 1, -1),
                         groups=n * c)
            z = F.conv2d(F.pad(z, (0, 0, r, r), mode="reflect" if h > r else "replicate"), k.view(n * c, 1, -1, 1),
                         groups=n * c)
            y = z.reshape(n, c, h, w)
        elif name == "rotate":
            a = _uniform(n, -ROTATE_DEG, ROTATE_DEG, x, gen) * (math.pi / 180.0)
            theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
            theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a) * h / w
            theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a) * w / h, torch.cos(a)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        elif name == "cutout":
            side = (_uniform(n, *CUTOUT, x, gen) * s).round().clamp(min=1)
            y0 = (torch.rand(n, generator=gen).to(x.device, x.dtype) * (h - side)).floor()
            x0 = (torch.rand(n, generator=gen).to(x.device, x.dtype) * (w - side)).floor()
            rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
            cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
            box = ((rows >= y0.view(n, 1, 1)) & (rows < (y0 + side).view(n, 1, 1))
                   & (cols >= x0.view(n, 1, 1)) & (cols < (x0 + side).view(n, 1, 1)))
            y = x.masked_fill(box.unsqueeze(1), 0.0)
        else:
            raise ConfigError(f"Unknown image transform {name!r}; valid: {list(TRANSFORMS)}.")
        x = torch.where(on.view(n, 1, 1, 1), y, x)
    return x
