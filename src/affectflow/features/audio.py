"""Audio feature extractors: eGeMAPS functionals and LLDs, log-mel, self-supervised embeddings, voice activity

All extractors read the recording's audio (``rec.audio``, else the audio track of ``rec.video``) through
:mod:`affectflow.io.audio` (mono = mean of the channels, soxr resampling) and return frames on the grid

.. math::  t_k = k / r, \\qquad k = 0, 1, \\dots, K - 1, \\qquad K = \\lfloor D \\, r \\rfloor + 1,

where :math:`r` is ``rate_hz`` and :math:`D` the duration of the decoded audio: every grid instant inside
:math:`[0, D]`, so the last frame is at most one hop before the end. ``time`` is the centre of the frame's
window. In sample units (16 kHz unless said otherwise) frame :math:`k` sits at :math:`s_k =
\\mathrm{round}(k\\,f_s/r)`.

Registered names
----------------
``egemaps``
    The 88 eGeMAPSv02 functionals over a sliding window of ``win_dur`` seconds centred on each :math:`t_k`.
``egemaps_lld``
    The 25 eGeMAPSv02 low-level descriptors (10 ms frames) averaged over each output frame's window.
``logmel``
    One log-mel spectrum per frame (VGGish style), hop = 1 / ``rate_hz``.
``ssl``
    Hidden states of a local wav2vec2 / HuBERT / WavLM model, pooled to the rate.
``vad``
    Silero-VAD speech probability and a 0/1 speech flag.

Edges. Windows that reach past either end of the recording are filled by **mirror reflection** of the signal
at the edge (``numpy.pad(mode="reflect")``; for recordings shorter than the pad the reflection repeats) for
``egemaps``, ``egemaps_lld`` and ``logmel``: the frame at :math:`t_0 = 0` then summarises the first half
window seen twice, which keeps statistics such as means and percentiles close to those of the available audio,
whereas zero padding would add digital silence (loudness 0, no pitch) to the edge windows. ``ssl`` and ``vad``
do not pad: their edge frames pool only the model frames that exist.

Streaming. Long recordings are processed in blocks of about :attr:`_AudioExtractor.block_s` seconds of frames
(a class attribute, not part of the configuration), each read with enough context before and after that the
frames come out **identical** to a single pass over the whole file for ``egemaps``, ``egemaps_lld``,
``logmel`` and ``vad`` (tested; the one exception, jitter/shimmer in voiced stretches longer than 2 s, is
described at :class:`EGeMAPSFunctionals`). For ``ssl`` the blocks are the model's input chunks (``chunk_s``
plus ``context_s`` on each side), and because self-attention sees the whole chunk the result depends slightly
on ``chunk_s``. Memory use is bounded by the block length, not by the recording length.

Example
-------
>>> ext = EXTRACTORS.build("egemaps", {"rate_hz": 2.0, "win_dur": 1.0})      # doctest: +SKIP
>>> frame = ext.extract(MediaRecording(id="r1", audio=Path("r1.wav")))        # doctest: +SKIP
>>> list(frame.columns[:3])                                                    # doctest: +SKIP
['time', 'F0semitoneFrom27.5Hz_sma3nz_amean', 'F0semitoneFrom27.5Hz_sma3nz_stddevNorm']
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
import weakref
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from affectflow.errors import ConfigError
from affectflow.features.base import EXTRACTORS, ExtractionError, Extractor, MediaRecording, feature_frame
from affectflow.fsutil import pid_tempdir
from affectflow.io.audio import AudioSignal, iter_audio_blocks

TIME = "time"
#: Sampling rate every extractor but ``logmel``/``ssl`` works at.
SR = 16000
#: openSMILE's LLD hop for eGeMAPS: 10 ms = 160 samples at 16 kHz.
_LLD_HOP = 160


# =========================================================================================== grid and blocks
def frame_count(n_samples: int, sample_rate: float, rate_hz: float) -> int:
    """Number of grid frames :math:`K = \\lfloor D r \\rfloor + 1` for ``n_samples`` at ``sample_rate``.

    Parameters
    ----------
    n_samples:
        Length of the recording in samples (>= 1).
    sample_rate:
        Hz.
    rate_hz:
        Output frame rate :math:`r` in Hz.

    Returns
    -------
    int
        :math:`K`; frames :math:`t_k = k/r` for :math:`k < K` lie in :math:`[0, D]`, :math:`D` = n_samples /
        sample_rate.
    """
    return int(math.floor(n_samples / sample_rate * rate_hz + 1e-9)) + 1


def _positions(k0: int, k1: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """Sample positions :math:`s_k = \\mathrm{round}(k f_s / r)` of frames ``k0 .. k1-1`` (int64)."""
    return np.round(np.arange(k0, k1, dtype=np.float64) * (sample_rate / rate_hz)).astype(np.int64)


def _reflect(idx: np.ndarray, n: int | None) -> np.ndarray:
    """Map indices outside ``[0, n)`` into it by mirror reflection (``numpy.pad(mode="reflect")``, repeated).

    With ``n=None`` (end not known yet) only negative indices are reflected (``-i``).
    """
    if n is None:
        return np.abs(idx)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.mod(idx, period)
    return np.where(m >= n, period - m, m)


@dataclass
class _Block:
    """Frames ``k0 .. k1-1`` and the signal ``seg`` = samples ``[start, start + len(seg))`` they need."""

    k0: int
    k1: int
    seg: np.ndarray
    start: int
    positions: np.ndarray  # s_k of the block's frames, in samples of the whole recording


class AudioFramer:
    """Push-based framing of a signal into blocks of grid frames, each with the samples ``[s_k - left, s_k +
    right)`` it needs (the engine of :func:`_frame_blocks`, usable on live audio).

    Feed the signal in chunks of any size with :meth:`feed`; each call returns the blocks whose frames have all
    their samples (``is_last=True`` on the final chunk also returns the frames of the end, with the right edge
    reflected). The block's first sample is floored to a multiple of ``align`` (so frame-based analyses such as
    openSMILE's 10 ms LLDs fall on the same global grid in every block). With ``pad="reflect"`` samples outside
    the recording are mirror reflections; with ``pad="none"`` the segment is clipped to the recording. Memory
    holds one block. ``greedy`` emits every complete frame at once (live use) instead of waiting for
    ``frames_per_block`` of them (or ``min_block``: fewer blocks re-analyse less context, at the price of delay);
    the values do not depend on the block boundaries.
    """

    def __init__(self, *, sample_rate: int, rate_hz: float, left: int, right: int, frames_per_block: int,
                 pad: str, align: int = 1, greedy: bool = False, min_block: int = 1) -> None:
        self.sample_rate, self.rate_hz, self.left, self.right = sample_rate, rate_hz, left, right
        self.frames_per_block, self.pad, self.align, self.greedy = frames_per_block, pad, align, greedy
        self.min_block = max(1, int(min_block))
        self.buf = np.zeros(0, np.float32)
        self.buf_start = 0  # index of buf[0] in the recording
        self.head: np.ndarray | None = None  # the first samples, kept for the left reflection
        self.n_head = left + align + 2
        self.n_known = 0
        self.k = 0
        self.ended = False

    def feed(self, samples: np.ndarray, is_last: bool = False) -> list[_Block]:
        """Append ``samples`` (float32 mono at ``sample_rate``) and return the blocks that are now complete."""
        if self.ended:
            raise ValueError("AudioFramer: the signal has ended")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        sample_rate, rate_hz, left, right, align = self.sample_rate, self.rate_hz, self.left, self.right, self.align
        self.buf = np.concatenate([self.buf, samples]) if self.buf.size else samples.copy()
        self.n_known += samples.size
        n_known = self.n_known
        ended = self.ended = bool(is_last)
        if self.head is None and (n_known >= self.n_head or ended):
            self.head = self.buf[: min(self.n_head, self.buf.size)].copy()
        out: list[_Block] = []
        while True:
            k, buf, buf_start, head = self.k, self.buf, self.buf_start, self.head
            if ended:
                k_end = frame_count(n_known, sample_rate, rate_hz)
            elif head is None or n_known < right:
                break
            else:  # frames whose whole span is already read: s_k + right <= n_known
                k_end = int(math.floor((n_known - right) * rate_hz / sample_rate)) + 2
                while k_end > 0 and _positions(k_end - 1, k_end, sample_rate, rate_hz)[0] + right > n_known:
                    k_end -= 1
            wanted = min(self.min_block, self.frames_per_block) if self.greedy else self.frames_per_block
            if k >= k_end or (not ended and k_end - k < wanted):
                break
            k1 = min(k + self.frames_per_block, k_end)
            pos = _positions(k, k1, sample_rate, rate_hz)
            a = align * math.floor((int(pos[0]) - left) / align)
            b = int(pos[-1]) + right
            if self.pad == "none":
                a, b = max(a, 0), min(b, n_known)
            n_total = n_known if ended else None
            if a >= 0 and b <= n_known:
                seg = buf[a - buf_start : b - buf_start].copy()
            else:
                idx = _reflect(np.arange(a, b), n_total)
                src = np.where(idx >= buf_start, idx - buf_start, 0)
                seg = buf[np.minimum(src, buf.size - 1)] if buf.size else np.zeros(b - a, np.float32)
                before = idx < buf_start
                if before.any():
                    seg[before] = head[idx[before]]  # type: ignore[index]
            out.append(_Block(k, k1, seg, a, pos))
            self.k = k = k1
            # drop what no later frame can need (keep the tail for the right reflection)
            nxt = align * math.floor((int(_positions(k, k + 1, sample_rate, rate_hz)[0]) - left) / align)
            keep_from = max(0, min(nxt, n_known - right - 2))
            if keep_from > buf_start:
                self.buf = buf[keep_from - buf_start :]
                self.buf_start = keep_from
        return out


def _frame_blocks(
    path: Path | AudioSignal,
    *,
    sample_rate: int,
    rate_hz: float,
    left: int,
    right: int,
    frames_per_block: int,
    pad: str,
    align: int = 1,
    read_s: float = 10.0,
) -> Iterator[_Block]:
    """Stream a file (or a signal) as blocks of grid frames (see :class:`AudioFramer`)."""
    framer = AudioFramer(sample_rate=sample_rate, rate_hz=rate_hz, left=left, right=right,
                         frames_per_block=frames_per_block, pad=pad, align=align)
    for blk in iter_audio_blocks(path, sample_rate, read_s):
        yield from framer.feed(blk.samples, blk.is_last)
        if blk.is_last:
            return


def _pool_mean(values: np.ndarray, centres: np.ndarray, positions: np.ndarray, half: float) -> np.ndarray:
    """NaN-aware mean of the rows of ``values`` whose centre lies in ``[p - half, p + half)``, per position.

    Parameters
    ----------
    values:
        ``(n, d)`` frame values (NaN = missing).
    centres:
        ``(n,)`` increasing frame centres (samples).
    positions:
        ``(K,)`` output positions (samples).
    half:
        Half window (samples).

    Returns
    -------
    numpy.ndarray
        ``(K, d)`` float64; NaN where a window holds no non-NaN value.
    """
    eps = 1e-6
    lo = np.searchsorted(centres, positions - half - eps, side="left")
    hi = np.searchsorted(centres, positions + half - eps, side="left")
    ok = ~np.isnan(values)
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(np.where(ok, values, 0.0), axis=0)])
    ccnt = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(ok, axis=0)])
    cnt = ccnt[hi] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (csum[hi] - csum[lo]) / np.maximum(cnt, 1), np.nan)


# =========================================================================================== base class
class _AudioExtractor(Extractor):
    """Shared plumbing: input file, validation, block loop and output frame."""

    modality: ClassVar[str] = "audio"
    inputs: ClassVar[tuple[str, ...]] = ("audio",)
    #: Seconds of output frames per processing block (runtime only: results do not depend on it).
    block_s: float = 60.0

    rate_hz: float
    #: Lazily built runtime objects (models, openSMILE instances): dropped when pickled, rebuilt on first use.
    _RUNTIME: ClassVar[tuple[str, ...]] = ("_smile", "_tmp", "_model", "_fe", "_torch_device")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._RUNTIME}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for k in self._RUNTIME:
            setattr(self, k, None)

    def _check_rate(self) -> None:
        if not (isinstance(self.rate_hz, (int, float)) and self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise ConfigError(
                f"Extractor {self.name!r}: `rate_hz` must be a positive number, got {self.rate_hz!r}."
            )

    def _positive(self, key: str, allow_none: bool = False) -> None:
        v = getattr(self, key)
        if v is None and allow_none:
            return
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and math.isfinite(v)):
            raise ConfigError(f"Extractor {self.name!r}: `{key}` must be a positive number, got {v!r}.")

    def _source(self, rec: MediaRecording) -> Path:
        src = rec.audio_source()
        if src is None:
            raise ExtractionError(
                f"Recording {rec.id!r} has neither an audio nor a video file to read audio from."
            )
        return Path(src)

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames of this set for ``rec``'s audio file (see the class docstring): :meth:`process_source` of it."""
        return self.process_source(self._source(rec))

    def process_signal(self, samples: np.ndarray, sampling_rate: int, *, name: str = "signal") -> pd.DataFrame:
        """Frames of this set for audio samples in memory: the frames :meth:`extract` gives for a float WAV file of
        them (see the module docstring).

        Parameters
        ----------
        samples:
            ``(n,)`` or ``(n, channels)`` samples; float (nominally in [-1, 1]), int16 or int32.
        sampling_rate:
            Their rate in Hz (resampled to the extractor's rate as a file would be).
        name:
            How error messages name the signal.

        Returns
        -------
        pandas.DataFrame
            ``time`` (s) plus :meth:`columns`, one row per grid frame.
        """
        return self.process_source(AudioSignal(samples, sampling_rate, name))

    @abstractmethod
    def process_source(self, source: Path | AudioSignal) -> pd.DataFrame:
        """Frames of this set for an audio file path or an :class:`AudioSignal` (what both verbs call)."""

    def block_spec(self) -> dict[str, Any]:
        """``{"compute", "sample_rate", "left", "right", "pad", "align"}``: the function from a :class:`_Block` to
        its ``(k1 - k0, D)`` frame values and the samples it needs around each frame, for extractors whose frames
        depend only on a bounded stretch of audio (``egemaps``, ``egemaps_lld``, ``logmel``). The offline
        :meth:`extract` and the live :class:`AudioFramer` (:mod:`affectflow.streaming.live`) both run it, so live
        frames equal offline ones. Others raise ``NotImplementedError``."""
        raise NotImplementedError(f"extractor {self.name!r} has no bounded-context block computation")

    def _frames_per_block(self) -> int:
        return max(1, int(round(self.block_s * self.rate_hz)))

    def _run(
        self,
        source: Path | AudioSignal,
        compute: Callable[[_Block], np.ndarray],
        *,
        sample_rate: int,
        left: int,
        right: int,
        pad: str,
        align: int = 1,
        frames_per_block: int | None = None,
    ) -> pd.DataFrame:
        parts: list[np.ndarray] = []
        k_total = 0
        ncol = len(self.columns())
        for blk in _frame_blocks(
            source,
            sample_rate=sample_rate,
            rate_hz=self.rate_hz,
            left=left,
            right=right,
            frames_per_block=frames_per_block or self._frames_per_block(),
            pad=pad,
            align=align,
        ):
            v = compute(blk)
            assert v.shape == (blk.k1 - blk.k0, ncol), (v.shape, blk.k0, blk.k1)
            parts.append(v.astype(np.float32, copy=False))
            k_total = blk.k1
        values = np.concatenate(parts) if parts else np.zeros((0, ncol), np.float32)
        return feature_frame(np.arange(k_total) / self.rate_hz, values, self.columns())


def _silero():
    """The ``silero_vad`` module; its import calls ``torch.set_num_threads(1)`` process-wide: undo that."""
    import torch  # lazy: only the neural extractors need torch

    n = torch.get_num_threads()
    import silero_vad

    torch.set_num_threads(n)
    return silero_vad


def _opensmile_step(rate_hz: float) -> float:
    """openSMILE frame step: the hop 1/rate when it is a whole number of 10 ms LLD frames, else 10 ms."""
    hop = 1.0 / rate_hz
    n = round(hop * 100)
    return n / 100 if n >= 1 and abs(hop * 100 - n) < 1e-6 else 0.01


def _to_opensmile(seg: np.ndarray) -> np.ndarray:
    """Clip to int16 range: openSMILE's Python API computes ``int16(x * 32768)``, so loud peaks would wrap."""
    return np.clip(seg, -1.0, 32767 / 32768).astype(np.float32, copy=False)


# =========================================================================================== egemaps
@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class EGeMAPSFunctionals(_AudioExtractor):
    """eGeMAPSv02 functionals (88) on sliding windows, in one native openSMILE pass per block.

    Frame :math:`k` summarises the LLD frames (10 ms hop) that start in :math:`[t_k - w/2, t_k + w/2)`, with
    :math:`w` = ``win_dur`` (the 20-60 ms analysis windows of those LLD frames reach up to 50 ms further
    right). openSMILE computes all windows in one run by replacing its ``FrameModeFunctionals.conf.inc`` with
    ``frameMode = fixed``, ``frameSize = w``, ``frameStep = 1/r``. When :math:`1/r` is not a multiple of 10 ms
    (e.g. 30 Hz) the step is 10 ms and each frame takes the window whose start is nearest to :math:`t_k - w/2`
    (within 5 ms). Window starts are snapped to the global 10 ms LLD grid. Edges: mirror reflection (module
    doc).

    Streaming: each block is analysed with 2 s of extra audio on both sides, on the same global LLD grid, so
    the values equal those of one pass over the file, with one exception: openSMILE tracks glottal periods for
    jitter and shimmer from the onset of each voiced stretch, so when a block's extra audio starts inside a
    voiced stretch longer than 2 s (a sustained vowel or tone, rare in speech) the four jitter/shimmer
    functionals of the frames in that stretch differ slightly (noise-level values: a few percent of
    ``jitterLocal``/``shimmerLocaldB``).

    Parameters
    ----------
    rate_hz:
        Output frame rate :math:`r` in Hz.
    win_dur:
        Window length :math:`w` in seconds (rounded by openSMILE to whole 10 ms LLD frames).

    Output
    ------
    ``time`` then the 88 eGeMAPSv02 functional names as openSMILE gives them (e.g. ``Loudness_sma3_amean``),
    ``(K, 1 + 88)``. Audio is read at 16 kHz.
    """

    name = "egemaps"
    _context_s: ClassVar[float] = 2.0  # audio read around each block (see "Streaming" in the class docstring)
    _columns: ClassVar[list[str] | None] = None

    rate_hz: float = 2.0
    win_dur: float = 1.0

    def __post_init__(self) -> None:
        self._check_rate()
        self._positive("win_dur")
        if self.win_dur < 0.1:
            raise ConfigError(
                f"Extractor 'egemaps': `win_dur` must be at least 0.1 s (10 LLD frames), got {self.win_dur}."
            )
        self._smile = None
        self._tmp: Path | None = None

    def columns(self) -> list[str]:
        if EGeMAPSFunctionals._columns is None:
            import opensmile

            EGeMAPSFunctionals._columns = list(
                opensmile.Smile(
                    feature_set=opensmile.FeatureSet.eGeMAPSv02,
                    feature_level=opensmile.FeatureLevel.Functionals,
                ).feature_names
            )
        return list(EGeMAPSFunctionals._columns)

    def _smile_windows(self):
        if self._smile is None:
            import opensmile

            step = _opensmile_step(self.rate_hz)
            # the frame settings go into a config file that openSMILE reads at every call: a private folder named
            # by our pid, removed when the extractor is collected or at exit, and by the next extractor when this
            # process was killed (fsutil.pid_tempdir), so killed workers leave nothing behind in the temp folder
            self._tmp = pid_tempdir(None, "affectflow-egemaps-")
            weakref.finalize(self, shutil.rmtree, str(self._tmp), True)
            conf = self._tmp / "FrameModeFunctionals.conf.inc"
            conf.write_text(
                f"frameMode = fixed\nframeSize = {float(self.win_dur)!r}\nframeStep = {step!r}\n"
                "frameCenterSpecial = left\n"
            )
            self._smile = opensmile.Smile(
                feature_set=opensmile.FeatureSet.eGeMAPSv02,
                feature_level=opensmile.FeatureLevel.Functionals,
                options={"frameModeFunctionalsConf": str(conf)},
            )
        return self._smile

    def process_source(self, source: Path | AudioSignal) -> pd.DataFrame:
        """eGeMAPS functionals of ``source`` on the grid (see the class docstring)."""
        return self._run(source, **self.block_spec())

    def block_spec(self) -> dict[str, Any]:
        """The block computation and the audio context it needs (see :meth:`_AudioExtractor.block_spec`)."""
        step = _opensmile_step(self.rate_hz)
        step_n = int(round(step * SR))
        half_n = int(round(self.win_dur * SR)) // 2
        ctx_n = int(round(step * math.ceil(self._context_s / step - 1e-9) * SR))
        win_n = int(round(self.win_dur * SR))
        smile = self._smile_windows()
        ncol = len(self.columns())

        def compute(blk: _Block) -> np.ndarray:
            df = smile.process_signal(_to_opensmile(blk.seg), SR)
            starts = np.round(df.index.get_level_values("start").total_seconds().to_numpy() * SR).astype(
                np.int64
            )
            vals = df.to_numpy(dtype=np.float64)
            want = blk.positions - half_n - blk.start  # window start of each frame, in samples of the segment
            i = np.round(want / step_n).astype(np.int64)
            out = np.full((len(want), ncol), np.nan)
            ok = (i >= 0) & (i < len(starts))
            ok[ok] &= np.abs(starts[i[ok]] - i[ok] * step_n) <= 1
            out[ok] = vals[i[ok]]
            return out

        return dict(
            compute=compute,
            sample_rate=SR,
            left=half_n + ctx_n,
            right=win_n - half_n + ctx_n + SR // 10,
            pad="reflect",
            align=_LLD_HOP,
        )


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class EGeMAPSLLD(_AudioExtractor):
    """The 25 eGeMAPSv02 low-level descriptors averaged to the output rate.

    openSMILE computes the LLDs every 10 ms (frame :math:`i` stands for its 20 ms frame's centre, :math:`i
    \\cdot 10\\,\\mathrm{ms} + 10\\,\\mathrm{ms}`); output frame :math:`k` is the mean of the LLD frames whose
    centre lies in :math:`[t_k - h/2, t_k + h/2)`, :math:`h` = ``win_dur`` (default the hop :math:`1/r`).

    Parameters
    ----------
    rate_hz:
        Output frame rate :math:`r` in Hz.
    win_dur:
        Pooling window :math:`h` in seconds; ``None`` means :math:`1/r` (never less than 10 ms).
    voiced_only:
        The LLDs named ``*_sma3nz`` (F0, jitter, shimmer, HNR, H1-H2, H1-A3, formants) are defined on voiced
        frames and 0 elsewhere. With ``True`` they are averaged over their voiced (non-zero) frames only, as
        the eGeMAPS functionals do, and a window without a voiced frame gets NaN in those columns; with
        ``False`` the zeros are averaged in.

    Output
    ------
    ``time`` then the 25 LLD names (e.g. ``Loudness_sma3``, ``F0semitoneFrom27.5Hz_sma3nz``), ``(K, 1 + 25)``.
    Audio is read at 16 kHz; edges: mirror reflection. Streaming as for ``egemaps`` (exact, except
    ``jitterLocal_sma3nz``/``shimmerLocaldB_sma3nz`` inside voiced stretches longer than 2 s that cross a
    block).
    """

    name = "egemaps_lld"
    _context_s: ClassVar[float] = 2.0  # as for egemaps
    _columns: ClassVar[list[str] | None] = None

    rate_hz: float = 2.0
    win_dur: float | None = None
    voiced_only: bool = True

    def __post_init__(self) -> None:
        self._check_rate()
        self._positive("win_dur", allow_none=True)
        self._smile = None

    def columns(self) -> list[str]:
        if EGeMAPSLLD._columns is None:
            EGeMAPSLLD._columns = list(self._lld().feature_names)
        return list(EGeMAPSLLD._columns)

    def _lld(self):
        if self._smile is None:
            import opensmile

            self._smile = opensmile.Smile(
                feature_set=opensmile.FeatureSet.eGeMAPSv02,
                feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
            )
        return self._smile

    def process_source(self, source: Path | AudioSignal) -> pd.DataFrame:
        """Pooled eGeMAPS LLDs of ``source`` on the grid (see the class docstring)."""
        return self._run(source, **self.block_spec())

    def block_spec(self) -> dict[str, Any]:
        """The block computation and the audio context it needs (see :meth:`_AudioExtractor.block_spec`)."""
        h_n = max(_LLD_HOP, int(round((self.win_dur or 1.0 / self.rate_hz) * SR)))
        ctx_n = int(round(self._context_s * SR))
        smile = self._lld()
        nz = np.array([c.endswith("nz") for c in self.columns()])

        def compute(blk: _Block) -> np.ndarray:
            df = smile.process_signal(_to_opensmile(blk.seg), SR)
            vals = df.to_numpy(dtype=np.float64)
            starts = np.round(df.index.get_level_values("start").total_seconds().to_numpy() * SR)
            centres = blk.start + starts + _LLD_HOP  # centre of each 20 ms frame, samples of the recording
            if self.voiced_only:
                vals[:, nz] = np.where(vals[:, nz] == 0.0, np.nan, vals[:, nz])
            return _pool_mean(vals, centres, blk.positions.astype(np.float64), h_n / 2)

        half = h_n // 2 + ctx_n
        return dict(compute=compute, sample_rate=SR, left=half, right=half + SR // 10, pad="reflect", align=_LLD_HOP)


# =========================================================================================== logmel
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular filters equally spaced on the HTK mel scale :math:`m(f) = 2595 \\log_{10}(1 + f/700)`.

    Filter :math:`i` rises linearly (in Hz) from edge :math:`f_i` to :math:`f_{i+1}` and falls to
    :math:`f_{i+2}`, where :math:`f_0 .. f_{n+1}` are ``n_mels + 2`` points equally spaced in mel between
    ``fmin`` and ``fmax``; peak weight 1, no area normalisation (as ``librosa.filters.mel(htk=True,
    norm=None)`` and VGGish).

    Returns
    -------
    numpy.ndarray
        ``(n_mels, n_fft // 2 + 1)`` weights for the rfft bins :math:`b \\cdot f_s / n_{fft}`.
    """

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)

    hz = 700.0 * (10.0 ** (np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2) / 2595.0) - 1.0)
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    ramps = hz[:, None] - bins[None, :]
    fdiff = np.diff(hz)
    rising = -ramps[:-2] / fdiff[:-1, None]
    falling = ramps[2:] / fdiff[1:, None]
    return np.maximum(0.0, np.minimum(rising, falling))


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class LogMel(_AudioExtractor):
    """Log-mel spectrum per frame, VGGish style, hop = 1/``rate_hz``.

    Frame :math:`k`: the ``win_dur`` window centred on :math:`s_k` (periodic Hann), zero-padded to ``n_fft``,
    magnitude spectrum :math:`|X|`, HTK-scale mel filterbank :math:`M` (:func:`mel_filterbank`, ``n_mels``
    bands from ``fmin`` to ``fmax``), then :math:`\\log(M|X| + \\epsilon)` with
    :math:`\\epsilon` = ``log_offset`` (0.01 as VGGish). At low rates (2 Hz) each frame is a 25 ms snapshot
    every 500 ms; raise ``win_dur`` to summarise more of each hop. Edges: mirror reflection.

    Parameters
    ----------
    rate_hz:
        Output frame rate (the hop) in Hz.
    n_mels:
        Number of mel bands.
    win_dur:
        Analysis window in seconds.
    n_fft:
        FFT size; ``None`` means the next power of two >= the window length.
    fmin, fmax:
        Filterbank range in Hz (``fmax`` is capped at the Nyquist frequency).
    sample_rate:
        Rate the audio is resampled to, Hz.
    log_offset:
        :math:`\\epsilon` added before the natural log.

    Output
    ------
    ``time`` then ``logmel_0`` ... ``logmel_{n_mels-1}`` (low to high frequency), ``(K, 1 + n_mels)``.
    """

    name = "logmel"

    rate_hz: float = 2.0
    n_mels: int = 64
    win_dur: float = 0.025
    n_fft: int | None = None
    fmin: float = 125.0
    fmax: float = 7500.0
    sample_rate: int = 16000
    log_offset: float = 0.01

    def __post_init__(self) -> None:
        self._check_rate()
        for key in ("n_mels", "win_dur", "sample_rate", "log_offset"):
            self._positive(key)
        self._positive("n_fft", allow_none=True)
        if not 0 <= self.fmin < min(self.fmax, self.sample_rate / 2):
            raise ConfigError(
                f"Extractor 'logmel': need 0 <= fmin < min(fmax, sample_rate/2); got fmin={self.fmin}, "
                f"fmax={self.fmax}, sample_rate={self.sample_rate}."
            )
        win_n = int(round(self.win_dur * self.sample_rate))
        if self.n_fft is not None and self.n_fft < win_n:
            raise ConfigError(
                f"Extractor 'logmel': `n_fft` ({self.n_fft}) is shorter than the window ({win_n} samples)."
            )

    def columns(self) -> list[str]:
        return [f"logmel_{i}" for i in range(int(self.n_mels))]

    def process_source(self, source: Path | AudioSignal) -> pd.DataFrame:
        """Log-mel frames of ``source`` on the grid (see the class docstring)."""
        return self._run(source, **self.block_spec())

    def block_spec(self) -> dict[str, Any]:
        """The block computation and the audio context it needs (see :meth:`_AudioExtractor.block_spec`)."""
        sr = int(self.sample_rate)
        win_n = int(round(self.win_dur * sr))
        n_fft = int(self.n_fft or 1 << max(0, (win_n - 1).bit_length()))
        window = np.hanning(win_n + 1)[:-1]  # periodic Hann
        mel = mel_filterbank(sr, n_fft, int(self.n_mels), float(self.fmin), float(min(self.fmax, sr / 2)))
        offs = np.arange(win_n)

        def compute(blk: _Block) -> np.ndarray:
            idx = (blk.positions - win_n // 2 - blk.start)[:, None] + offs
            mag = np.abs(np.fft.rfft(blk.seg[idx].astype(np.float64) * window, n=n_fft, axis=1))
            return np.log(mag @ mel.T + self.log_offset)

        return dict(compute=compute, sample_rate=sr, left=win_n // 2, right=win_n - win_n // 2, pad="reflect")


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class LogMelPatches(LogMel):
    """A log-mel patch per output frame: the raw input of an audio backbone (VGGish takes 96 x 64 patches).

    Output frame :math:`k` (time :math:`k / \\text{rate\\_hz}`) holds ``n_frames`` log-mel frames (computed exactly
    as ``logmel``: window ``win_dur``, ``n_mels`` bands) whose centres are ``frame_hop`` seconds apart and centred
    on the output time: :math:`t_k + (j - \\lfloor n/2 \\rfloor) \\cdot \\text{frame\\_hop}`, ``j = 0 .. n-1``;
    mirror reflection at the edges. Columns ``m{j:03d}_{band:02d}`` frame-major, i.e. a ``(1, n_frames, n_mels)``
    image per step (time down, frequency across). The defaults are VGGish's: 96 frames of 25 ms every 10 ms, 64
    bands from 125 to 7500 Hz. Causal streaming is possible (bounded context) with a delay of half a patch.

    Parameters
    ----------
    rate_hz, n_mels, win_dur, n_fft, fmin, fmax, sample_rate, log_offset:
        As ``logmel`` (``rate_hz``: one patch per label step; the ABAW5 paper uses the video frame rate).
    n_frames:
        Log-mel frames per patch.
    frame_hop:
        Seconds between the patch's frames.
    """

    name = "logmel_patches"

    n_frames: int = 96
    frame_hop: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("frame_hop")
        n = self.n_frames
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024:
            raise ConfigError(f"Extractor 'logmel_patches': `n_frames` must be an integer in 1..1024, got {n!r}.")

    def columns(self) -> list[str]:
        return [f"m{j:03d}_{b:02d}" for j in range(int(self.n_frames)) for b in range(int(self.n_mels))]

    def block_spec(self) -> dict[str, Any]:
        """As ``logmel``'s, with every frame replaced by its patch of ``n_frames`` frames."""
        spec = super().block_spec()
        sr = spec["sample_rate"]
        inner = spec["compute"]
        hop_n = int(round(self.frame_hop * sr))
        shifts = (np.arange(int(self.n_frames)) - int(self.n_frames) // 2) * hop_n
        n_mels = int(self.n_mels)

        def compute(blk: _Block) -> np.ndarray:
            pos = (blk.positions[:, None] + shifts[None, :]).reshape(-1)
            sub = _Block(blk.k0, blk.k1, blk.seg, blk.start, pos)
            return inner(sub).reshape(len(blk.positions), int(self.n_frames) * n_mels)

        return dict(spec, compute=compute, left=spec["left"] + max(0, -int(shifts[0])),
                    right=spec["right"] + max(0, int(shifts[-1])))


# =========================================================================================== ssl
@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class SSLEmbeddings(_AudioExtractor):
    """Hidden states of a self-supervised speech model (wav2vec2, HuBERT, WavLM, data2vec-audio), pooled.

    The model is loaded with ``transformers.AutoModel.from_pretrained(model_dir, local_files_only=True)`` (and
    ``AutoFeatureExtractor`` when ``model_dir`` has a ``preprocessor_config.json``; otherwise the raw waveform
    is fed); nothing is downloaded. ``hidden_states[0]`` is the transformer's input (projected CNN features),
    ``hidden_states[i]`` the output of transformer layer ``i`` (1 ... ``num_hidden_layers``).

    Model frame :math:`j` of an input chunk starting at sample :math:`c` covers
    :math:`[c + S j, c + S j + R)` (stride :math:`S` = product of ``conv_stride``, 320 = 20 ms at 16 kHz;
    receptive field :math:`R`, 400) and stands for its centre. Output frame :math:`k` is the mean of the model
    frames whose centre lies in :math:`[t_k - h/2, t_k + h/2)`, :math:`h = \\max(` ``win_dur`` or :math:`1/r`,
    :math:`S/f_s)` (so every window holds at least one model frame).

    Long audio is cut into chunks of ``chunk_s`` seconds of output frames, each fed with ``context_s`` seconds
    of extra audio on both sides (clipped at the recording's ends); frames are taken from the chunk's centre
    part only. Feature-extractor normalisation (``do_normalize``) is per chunk.

    Parameters
    ----------
    model_dir:
        Local folder written by ``save_pretrained`` (``config.json`` + weights). Required.
    rate_hz:
        Output frame rate in Hz.
    layers:
        ``"last"`` or a list of ``hidden_states`` indices (negative counts from the end).
    layer_pooling:
        ``"mean"``: average the selected layers (:math:`D` = hidden size); ``"concat"``: concatenate them
        (:math:`D` = hidden size × number of layers).
    win_dur:
        Pooling window in seconds; ``None`` means :math:`1/r`.
    chunk_s:
        Seconds of output frames per model call.
    context_s:
        Seconds of audio added on each side of a chunk.
    device:
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"`` or ``"cuda"``.

    Output
    ------
    ``time`` then ``ssl_0`` ... ``ssl_{D-1}`` (``"mean"`` or ``"last"``) or ``ssl_l{layer}_{i}``
    (``"concat"``; ``layer`` as a non-negative index), ``(K, 1 + D)``. Frames of a recording shorter than one
    receptive field are NaN.
    """

    name = "ssl"

    model_dir: str | None = None
    rate_hz: float = 2.0
    layers: str | list[int] = "last"
    layer_pooling: str = "mean"
    win_dur: float | None = None
    chunk_s: float = 20.0
    context_s: float = 1.0
    device: str = "auto"

    def __post_init__(self) -> None:
        self._check_rate()
        if self.model_dir is None or str(self.model_dir) == "":
            raise ConfigError(
                "Extractor 'ssl' needs `model_dir`: a local folder holding a wav2vec2/HuBERT/WavLM model "
                "written with save_pretrained (config.json and weights). Nothing is downloaded."
            )
        if not (
            self.layers == "last"
            or (
                isinstance(self.layers, (list, tuple))
                and self.layers
                and all(isinstance(i, int) and not isinstance(i, bool) for i in self.layers)
            )
        ):
            raise ConfigError(
                f"Extractor 'ssl': `layers` must be 'last' or a non-empty list of ints, got {self.layers!r}."
            )
        if self.layer_pooling not in ("mean", "concat"):
            raise ConfigError(
                f"Extractor 'ssl': `layer_pooling` must be 'mean' or 'concat', got {self.layer_pooling!r}."
            )
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"Extractor 'ssl': `device` must be 'auto', 'cpu' or 'cuda', got {self.device!r}.")
        self._positive("win_dur", allow_none=True)
        self._positive("chunk_s")
        if not (isinstance(self.context_s, (int, float)) and self.context_s >= 0):
            raise ConfigError(f"Extractor 'ssl': `context_s` must be >= 0, got {self.context_s!r}.")
        self._model: Any = None
        self._fe: Any = None
        self._torch_device: Any = None

    # ------------------------------------------------------------------ model description (no torch needed)
    def _config(self) -> dict[str, Any]:
        cfg = Path(str(self.model_dir)) / "config.json"
        if not cfg.is_file():
            raise ConfigError(
                f"Extractor 'ssl': {str(cfg)!r} not found; `model_dir` must be a folder written by "
                "save_pretrained."
            )
        c = json.loads(cfg.read_text())
        if "conv_stride" not in c or "hidden_size" not in c:
            raise ConfigError(
                f"Extractor 'ssl': model type {c.get('model_type')!r} in {str(self.model_dir)!r} is not a "
                "wav2vec2-style speech model (its config has no conv_stride/hidden_size)."
            )
        return c

    def _layer_indices(self) -> list[int]:
        n = int(self._config()["num_hidden_layers"]) + 1
        if self.layers == "last":
            return [n - 1]
        out = []
        for i in self.layers:
            j = i + n if i < 0 else i
            if not 0 <= j < n:
                raise ConfigError(
                    f"Extractor 'ssl': layer {i} does not exist; the model has hidden_states 0..{n - 1} "
                    f"(or {-n}..-1)."
                )
            out.append(j)
        return out

    def columns(self) -> list[str]:
        d = int(self._config()["hidden_size"])
        if self.layer_pooling == "concat":
            return [f"ssl_l{li}_{i}" for li in self._layer_indices() for i in range(d)]
        self._layer_indices()  # validate
        return [f"ssl_{i}" for i in range(d)]

    def _geometry(self) -> tuple[int, int]:
        """(stride S, receptive field R) of the CNN feature encoder, in samples."""
        c = self._config()
        stride, rf = 1, 1
        for k, s in zip(c["conv_kernel"], c["conv_stride"], strict=True):
            rf += (k - 1) * stride
            stride *= s
        return stride, rf

    # ------------------------------------------------------------------ model
    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch  # lazy: only the neural extractors need torch
        from transformers import AutoFeatureExtractor, AutoModel

        d = Path(str(self.model_dir))
        self._config()
        dev = self.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        elif str(dev).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("Extractor 'ssl': `device` is 'cuda' but torch sees no CUDA device.")
        self._torch_device = torch.device(dev)
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar per worker
        try:
            self._model = (
                AutoModel.from_pretrained(str(d), local_files_only=True).eval().to(self._torch_device)
            )
        except (OSError, ValueError) as e:
            raise ConfigError(f"Extractor 'ssl': cannot load a model from {str(d)!r}: {e}") from e
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        if (d / "preprocessor_config.json").is_file():
            self._fe = AutoFeatureExtractor.from_pretrained(str(d), local_files_only=True)

    def _sample_rate(self) -> int:
        return int(getattr(self._fe, "sampling_rate", None) or SR)

    def hidden_states(self, x: np.ndarray) -> list[np.ndarray]:
        """All hidden states of the model for one mono chunk ``x`` (at the model's rate).

        Parameters
        ----------
        x:
            ``(n,)`` float32 samples.

        Returns
        -------
        list of numpy.ndarray
            ``num_hidden_layers + 1`` arrays of shape ``(T, hidden_size)``, ``T = (n - R) // S + 1``.
        """
        import torch  # lazy: only the neural extractors need torch

        self._load()
        if self._fe is not None:
            iv = self._fe(x, sampling_rate=self._sample_rate(), return_tensors="pt").input_values
        else:
            iv = torch.from_numpy(np.asarray(x, np.float32))[None]
        with torch.inference_mode():
            out = self._model(iv.to(self._torch_device), output_hidden_states=True)
        return [h[0].float().cpu().numpy() for h in out.hidden_states]

    def process_source(self, source: Path | AudioSignal) -> pd.DataFrame:
        """Pooled SSL embeddings of ``source`` on the grid (see the class docstring)."""
        self._load()
        sr = self._sample_rate()
        stride, rf = self._geometry()
        idx = self._layer_indices()
        h_n = max(stride, int(round((self.win_dur or 1.0 / self.rate_hz) * sr)))
        ctx_n = int(round(self.context_s * sr))
        ncol = len(self.columns())

        def compute(blk: _Block) -> np.ndarray:
            if blk.seg.size < rf:
                return np.full((blk.k1 - blk.k0, ncol), np.nan)
            hs = self.hidden_states(blk.seg)
            sel = [hs[i] for i in idx]
            feats = np.mean(sel, axis=0) if self.layer_pooling == "mean" else np.concatenate(sel, axis=1)
            centres = blk.start + stride * np.arange(feats.shape[0]) + rf / 2
            return _pool_mean(feats.astype(np.float64), centres, blk.positions.astype(np.float64), h_n / 2)

        half = h_n // 2 + rf // 2 + 1  # model frames centred up to h/2 away need R/2 samples beyond
        return self._run(
            source,
            compute,
            sample_rate=sr,
            left=half + ctx_n,
            right=half + ctx_n,
            pad="none",
            frames_per_block=max(1, int(round(self.chunk_s * self.rate_hz))),
        )


# =========================================================================================== vad
@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class SileroVAD(_AudioExtractor):
    """Voice activity from Silero VAD (the TorchScript model in the ``silero-vad`` wheel, loaded locally).

    Silero gives a speech probability :math:`p_i` for each 32 ms window (512 samples at 16 kHz, stateful
    across windows, so streaming equals one pass). Its hysteresis post-processing
    (``get_speech_timestamps_from_probs``: enter speech at ``threshold``, leave below ``threshold - 0.15``,
    drop segments shorter than ``min_speech_s``, bridge pauses shorter than ``min_silence_s``, pad by
    ``speech_pad_s``) turns them into speech segments.

    Output columns, ``(K, 3)``:

    - ``speech_prob``: mean of :math:`p_i` over the windows whose centre lies in :math:`[t_k - h/2, t_k +
      h/2)`, :math:`h = \\max(` ``win_dur`` or :math:`1/r`, 32 ms :math:`)`.
    - ``speech``: 1.0 if at least half of those windows lie inside a speech segment, else 0.0.

    As a mask: the frames share the grid of every other extractor at the same ``rate_hz``, so
    ``feats.merge(vad, on="time")`` aligns them; ``feats.loc[vad["speech"].to_numpy() == 0, cols] = np.nan``
    turns non-speech frames of a voice feature (F0, SSL embeddings) into missing values, or ``speech`` can be
    passed on as the ``(B, T)`` mask of a model batch / loss so that silent frames do not count.

    Parameters
    ----------
    rate_hz:
        Output frame rate in Hz.
    threshold:
        Speech threshold on :math:`p_i`.
    min_speech_s, min_silence_s, speech_pad_s:
        Post-processing durations in seconds (silero's defaults).
    win_dur:
        Pooling window in seconds; ``None`` means :math:`1/r`.
    """

    name = "vad"
    _WIN = 512

    rate_hz: float = 2.0
    threshold: float = 0.5
    min_speech_s: float = 0.25
    min_silence_s: float = 0.1
    speech_pad_s: float = 0.03
    win_dur: float | None = None

    def __post_init__(self) -> None:
        self._check_rate()
        if not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise ConfigError(f"Extractor 'vad': `threshold` must be in (0, 1), got {self.threshold!r}.")
        for key in ("min_speech_s", "min_silence_s", "speech_pad_s"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ConfigError(f"Extractor 'vad': `{key}` must be >= 0, got {v!r}.")
        self._positive("win_dur", allow_none=True)
        self._model: Any = None

    def columns(self) -> list[str]:
        return ["speech_prob", "speech"]

    def _load(self):
        if self._model is None:
            with warnings.catch_warnings():  # silero's loader uses deprecated importlib/torch.jit calls
                warnings.simplefilter("ignore", DeprecationWarning)
                self._model = _silero().load_silero_vad(onnx=False)
        return self._model

    def probabilities(self, path: str | os.PathLike | AudioSignal) -> tuple[np.ndarray, int]:
        """Silero speech probability of every 32 ms window of a file (or an :class:`AudioSignal`), streamed.

        Returns
        -------
        (numpy.ndarray, int)
            ``(M,)`` float64 probabilities of windows ``[512 i, 512 i + 512)`` at 16 kHz (the last one
            zero-padded), and the number of samples.
        """
        import torch  # lazy: only the neural extractors need torch

        model = self._load()
        model.reset_states()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # 512-sample steps: more threads only add overhead (13x slower with 2 here)
        try:
            probs, n = self._step(model, path)
        finally:
            torch.set_num_threads(threads)
        return np.asarray(probs, np.float64), n

    def _step(self, model: Any, path: str | os.PathLike | AudioSignal) -> tuple[list[float], int]:
        import torch  # lazy: only the neural extractors need torch

        probs: list[float] = []
        rest = np.zeros(0, np.float32)
        n = 0
        with torch.inference_mode():
            for blk in iter_audio_blocks(path, SR, 10.0):
                n = blk.start + blk.samples.size
                x = np.concatenate([rest, blk.samples])
                m = x.size // self._WIN * self._WIN
                for i in range(0, m, self._WIN):
                    probs.append(model(torch.from_numpy(x[i : i + self._WIN]), SR).item())
                rest = x[m:]
            if rest.size:
                last = np.zeros(self._WIN, np.float32)
                last[: rest.size] = rest
                probs.append(model(torch.from_numpy(last), SR).item())
        return probs, n

    def process_source(self, source: Path | AudioSignal) -> pd.DataFrame:
        """Speech probability and flag of ``source`` on the grid (see the class docstring)."""
        probs, n = self.probabilities(source)
        segs = _silero().get_speech_timestamps_from_probs(
            list(probs),
            sampling_rate=SR,
            threshold=float(self.threshold),
            min_speech_duration_ms=int(round(self.min_speech_s * 1000)),
            min_silence_duration_ms=int(round(self.min_silence_s * 1000)),
            speech_pad_ms=int(round(self.speech_pad_s * 1000)),
            audio_length_samples=n,
        )
        centres = self._WIN * np.arange(probs.size) + self._WIN / 2
        starts = np.array([s["start"] for s in segs], np.float64)
        ends = np.array([s["end"] for s in segs], np.float64)
        inside = np.zeros(probs.size)
        if segs:  # segments are sorted and disjoint: look up the last one starting at or before each centre
            j = np.searchsorted(starts, centres, side="right") - 1
            inside = ((j >= 0) & (centres < ends[np.maximum(j, 0)])).astype(np.float64)
        k = frame_count(n, SR, self.rate_hz)
        pos = _positions(0, k, SR, self.rate_hz).astype(np.float64)
        h = max(self._WIN, int(round((self.win_dur or 1.0 / self.rate_hz) * SR)))
        pooled = _pool_mean(np.stack([probs, inside], axis=1), centres, pos, h / 2)
        pooled[:, 1] = (pooled[:, 1] >= 0.5).astype(np.float64)
        return feature_frame(np.arange(k) / self.rate_hz, pooled, self.columns())
