"""Appearance of aligned face crops without any model: a small grayscale thumbnail and the colour means.

Aff-Wild2 ships ``cropped_aligned/<video>/<00001>.jpg``: one face crop per video frame, already detected and
aligned, absent where no face was found. On such crops a model-free descriptor is a fast, dependency-free
baseline (and what the synthetic Aff-Wild2 layout of :mod:`affectflow.synthetic.affwild2` is learnable from):

``crop_pixels`` (modality ``video``, input ``MediaRecording.video``: an image folder or a video file)
    For each output frame, the image is converted to grayscale ``g = 0.299 R + 0.587 G + 0.114 B`` (values in
    [0, 1]), area-averaged to ``grid x grid`` cells (columns ``px00_00 .. px{grid-1}_{grid-1}``, row-major), plus the
    means of R, G and B in [0, 1] (``mean_r, mean_g, mean_b``): ``grid² + 3`` columns. Frames without an image
    (a missing crop) are NaN rows. On a full video frame (not a crop) it describes the whole scene.

Frames come from :func:`affectflow.io.video.iter_video_frames`: ``rate_hz: null`` (the default) gives every frame of
the video at ``i / fps``, which is the Aff-Wild2 label grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from affectflow.errors import ConfigError
from affectflow.features.base import EXTRACTORS, ExtractionError, Extractor, MediaRecording, feature_frame
from affectflow.io.video import iter_video_frames


def thumbnail(rgb: np.ndarray, grid: int) -> np.ndarray:
    """``(grid², )`` area-averaged grayscale cells of ``rgb`` ``(H, W, 3)`` uint8, in [0, 1], row-major."""
    g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    h, w = g.shape
    rows = np.linspace(0, h, grid + 1).round().astype(int)
    cols = np.linspace(0, w, grid + 1).round().astype(int)
    out = np.empty((grid, grid), np.float32)
    for i in range(grid):
        band = g[rows[i] : max(rows[i + 1], rows[i] + 1)]
        for j in range(grid):
            out[i, j] = band[:, cols[j] : max(cols[j + 1], cols[j] + 1)].mean()
    return out.ravel()


def _check_rate(name: str, rate_hz: float | None) -> None:
    if rate_hz is not None and not (isinstance(rate_hz, (int, float)) and rate_hz > 0):
        raise ConfigError(f"{name}: rate_hz must be a positive number or null, got {rate_hz!r}.")


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class CropPixels(Extractor):
    """Grayscale thumbnail + colour means of each frame (see the module docstring).

    Parameters
    ----------
    rate_hz:
        Output rate in Hz; ``None`` = every video frame at its own time (for image folders: ``i / video_fps``).
    grid:
        Thumbnail side in cells (``grid²`` columns), 1-32.
    """

    name = "crop_pixels"
    modality: ClassVar[str] = "video"
    inputs: ClassVar[tuple[str, ...]] = ("video",)

    rate_hz: float | None = None
    grid: int = 8

    def __post_init__(self) -> None:
        _check_rate("crop_pixels", self.rate_hz)
        g = self.grid
        if isinstance(g, bool) or not isinstance(g, int) or not 1 <= g <= 32:
            raise ConfigError(f"crop_pixels: grid must be an integer in 1..32, got {g!r}.")

    def columns(self) -> list[str]:
        """``px00_00 .. px{g-1}_{g-1}``, ``mean_r, mean_g, mean_b``."""
        g = self.grid
        return [f"px{i:02d}_{j:02d}" for i in range(g) for j in range(g)] + ["mean_r", "mean_g", "mean_b"]

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames of ``rec.video`` (``time`` + :meth:`columns`), NaN rows where an image-folder frame is missing."""
        if rec.video is None:
            raise ExtractionError(f"Recording {rec.id!r} has no video (file or image folder).")
        ncol = len(self.columns())
        times, rows = [], []
        for fr in iter_video_frames(rec.video, self.rate_hz, fps=rec.video_fps, duration=rec.duration):
            times.append(fr.time)
            if fr.image is None:
                rows.append(np.full(ncol, np.nan, np.float32))
            else:
                means = fr.image.reshape(-1, 3).mean(0).astype(np.float32) / 255.0
                rows.append(np.concatenate([thumbnail(fr.image, self.grid), means]))
        return feature_frame(times, np.vstack(rows) if rows else np.empty((0, ncol), np.float32), self.columns())


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class FaceCrops(Extractor):
    """The face crop itself, resized to ``size x size`` RGB: the raw input of an image backbone.

    For each output frame (as ``crop_pixels``: every video frame with ``rate_hz: null``), the image is resized with
    area interpolation (OpenCV ``INTER_AREA``) to ``size x size`` and stored channel-first, row-major: columns
    ``c0_00_00 .. c2_{size-1}_{size-1}`` (``3·size²`` columns), values ``v / 255`` for the uint8 pixel ``v``, so
    in [0, 1] on a 1/255 grid. A missing crop is a NaN row. The set is marked ``storage: uint8``: the aligned cache
    (:class:`affectflow.data.store.SequenceStore`) keeps it as uint8 (4x smaller than float32, exact), the
    normaliser leaves it in [0, 1] and the backbone encoder normalises it (``(v - 0.5) / 0.5``, ABAW5 3.4).

    Parameters
    ----------
    rate_hz:
        Output rate in Hz; ``None`` = every video frame at its own time.
    size:
        Side of the resized crop in pixels, 4-256 (the ABAW5 paper: 48).
    """

    name = "face_crops"
    modality: ClassVar[str] = "video"
    inputs: ClassVar[tuple[str, ...]] = ("video",)
    #: How the aligned cache stores this set (see :mod:`affectflow.data.store`).
    storage: ClassVar[str] = "uint8"

    rate_hz: float | None = None
    size: int = 48

    def __post_init__(self) -> None:
        _check_rate("face_crops", self.rate_hz)
        s = self.size
        if isinstance(s, bool) or not isinstance(s, int) or not 4 <= s <= 256:
            raise ConfigError(f"face_crops: size must be an integer in 4..256, got {s!r}.")

    def columns(self) -> list[str]:
        """``c{channel}_{row}_{col}``, channel-first (C, H, W) order."""
        s = self.size
        return [f"c{c}_{i:02d}_{j:02d}" for c in range(3) for i in range(s) for j in range(s)]

    def crop(self, rgb: np.ndarray) -> np.ndarray:
        """``(3·size²,)`` float32 in [0, 1] of one ``(H, W, 3)`` uint8 image (channel-first)."""
        import cv2

        small = cv2.resize(np.ascontiguousarray(rgb), (self.size, self.size), interpolation=cv2.INTER_AREA)
        return (small.transpose(2, 0, 1).reshape(-1).astype(np.float32)) / np.float32(255.0)

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames of ``rec.video`` (``time`` + :meth:`columns`), NaN rows where an image-folder frame is missing.

        The whole recording in one frame; :meth:`extract_blocks` gives the same rows in bounded memory."""
        blocks = list(self.extract_blocks(rec))
        if not blocks:
            return pd.DataFrame(columns=["time", *self.columns()], dtype=np.float32)
        return pd.concat(blocks, ignore_index=True) if len(blocks) > 1 else blocks[0]

    def extract_blocks(self, rec: MediaRecording, block: int = 1024):
        """The rows of :meth:`extract`, ``block`` frames at a time (DataFrames with ``time`` + :meth:`columns`):
        the extraction pipeline writes them one by one (:meth:`affectflow.corpus.corpus.Corpus.write_feature_blocks`),
        so a recording of any length is decoded and cropped with one block in memory."""
        if rec.video is None:
            raise ExtractionError(f"Recording {rec.id!r} has no video (file or image folder).")
        import cv2

        cols = self.columns()
        buf = np.zeros((block, len(cols)), np.uint8)  # 1 byte per value while decoding
        times, missing = [], []

        def flush() -> pd.DataFrame:
            n = len(times)
            data = buf[:n].astype(np.float32) / np.float32(255.0)
            data[np.asarray(missing, bool)] = np.nan
            df = feature_frame(times, data, cols)
            times.clear()
            missing.clear()
            return df

        for fr in iter_video_frames(rec.video, self.rate_hz, fps=rec.video_fps, duration=rec.duration):
            i = len(times)
            times.append(fr.time)
            missing.append(fr.image is None)
            if fr.image is None:
                buf[i] = 0
            else:
                small = cv2.resize(np.ascontiguousarray(fr.image), (self.size, self.size), interpolation=cv2.INTER_AREA)
                buf[i] = small.transpose(2, 0, 1).reshape(-1)
            if len(times) == block:
                yield flush()
        if times:
            yield flush()
