"""Live prediction from raw input (audio chunks, video frames, physiology samples, feature frames) → the run's
features → label grid → model.

::

    from affectflow.streaming import AudioStreamPredictor
    live = AudioStreamPredictor("runs/gru-egemaps-...")
    for chunk in microphone():                       # float32 mono, any length, any (fixed) sample rate
        for step in live.push(chunk, 48000):
            print(step)                              # {"time": 12.5, "arousal": 0.31, "valence": -0.02}
    live.flush()                                     # end of stream: the last steps

Features. Every feature set of the run that an affectflow audio extractor with a bounded context made
(``egemaps``, ``egemaps_lld``, ``logmel``; see :meth:`~affectflow.features.audio._AudioExtractor.block_spec`) is
computed from the pushed audio with the run's stored extractor parameters, by the **same** block computation and
framing (:class:`~affectflow.features.audio.AudioFramer`) as offline extraction: a frame is computed once the
audio its window and context need has arrived, so live frames equal the offline extractor's on the same audio
(with the right edge reflected at :meth:`LivePredictor.flush`, as offline). Audio at another sample rate is
resampled with a streaming soxr resampler (offline reads resample the whole file with soxr: values then agree to
resampling precision, not exactly). Sets made by the face extractors (``fer``, ``face_landmarks``, ``head_pose``,
``face_embedding``) are computed from decoded video frames given to :meth:`LivePredictor.push_video` with the
offline frame selection and face tracking (:class:`~affectflow.features.face.FaceFrameStream`), so they equal
offline too. Sets made by the physio extractors (``hrv``, ``physio_rates``, ``physio_raw``, ``phys``) are
computed from raw ECG / respiration / EDA samples given to :meth:`LivePredictor.push_physio` by running the offline extractor over a bounded trailing
window of samples: **approximately** equal to offline (NeuroKit2's filters and peak detection do not see the
future; see :meth:`LivePredictor.push_physio`). Other feature sets (text, or any set computed elsewhere) are
pushed as frames with :meth:`LivePredictor.push_frames` (times in s, raw values), or treated as missing at every
step (``missing=[...]``).

Alignment. Label step ``g`` (time ``t_g = g / r``, ``r`` the run's label rate, ``h = 1/r``) is computed with the
offline rule (:mod:`affectflow.data.align`) from the frames near it, as soon as every live set has a frame at or
after ``t_g + h/2`` (so no later frame can change it), or at :meth:`LivePredictor.flush`, which emits the steps
``t_g < D`` (``D`` = the stream's duration, from the audio pushed or given). Each step goes through a
:class:`~affectflow.streaming.streamer.Streamer`, so the predictions equal the offline prediction of the same
audio.

Latency. With eGeMAPS (``win_dur`` ``w``) a frame at ``t`` needs audio up to ``t + w/2 + 2.1 s`` (its window, and
the 2 s of context that makes block-wise openSMILE equal a whole-file pass), so a label step is emitted about
``w/2 + 2.1 s + h/2`` after its time.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any, Iterable

import numpy as np

from affectflow.data.align import align_to_grid
from affectflow.errors import AffectflowError, AffectflowWarning
from affectflow.features.audio import AudioFramer
from affectflow.features.base import EXTRACTORS
from affectflow.features.face import FaceExtractor, FaceFrameStream
from affectflow.features.physio import MIN_ECG_RATE, PhysioExtractor
from affectflow.features.pipeline import load_builtin_extractors
from affectflow.io.physio import normalise_channel_name
from affectflow.io.video import frame_time
from affectflow.runs import Run
from affectflow.streaming.streamer import Streamer, StreamingError


def _audio_sets(run: Run, streamer: Streamer) -> tuple[dict[str, Any], dict[str, str]]:
    """Set → extractor instance for the sets computable from live audio, and set → reason for the others."""
    load_builtin_extractors()
    infos = streamer.trained.feature_sets()
    live, other = {}, {}
    for name in streamer.feature_sets:
        p = infos[name].get("params") or {}
        ex_name = p.get("extractor") if isinstance(p, dict) else None
        if not isinstance(ex_name, str):
            other[name] = "not made by an affectflow extractor"
            continue
        try:
            ex = EXTRACTORS.build(ex_name, dict(p.get("params") or {}))
        except AffectflowError as e:
            other[name] = f"extractor {ex_name!r} cannot be rebuilt: {e}"
            continue
        if tuple(getattr(ex, "inputs", ())) != ("audio",):
            other[name] = f"extractor {ex_name!r} reads {list(ex.inputs)}, not audio"
            continue
        try:
            ex.block_spec()
        except (NotImplementedError, AttributeError):
            other[name] = f"audio extractor {ex_name!r} has no live implementation (live: egemaps, egemaps_lld, logmel)"
            continue
        live[name] = ex
    return live, other


def _sets_made_by(run: Run, streamer: Streamer, names: Iterable[str], base: type) -> dict[str, Any]:
    """Set → extractor instance, rebuilt with the run's stored parameters, for the sets among ``names`` whose
    extractor is an instance of ``base``."""
    infos = streamer.trained.feature_sets()
    out = {}
    for name in names:
        p = infos[name].get("params") or {}
        ex_name = p.get("extractor") if isinstance(p, dict) else None
        if not isinstance(ex_name, str):
            continue
        try:
            ex = EXTRACTORS.build(ex_name, dict(p.get("params") or {}))
        except AffectflowError:
            continue
        if isinstance(ex, base):
            out[name] = ex
    return out


def _video_sets(run: Run, streamer: Streamer, names: Iterable[str]) -> dict[str, Any]:
    """Set → face extractor instance for the sets among ``names`` made by affectflow's face extractors."""
    return _sets_made_by(run, streamer, names, FaceExtractor)


def _physio_sets(run: Run, streamer: Streamer, names: Iterable[str]) -> dict[str, Any]:
    """Set → physio extractor instance (``hrv``, ``physio_rates``, ``physio_raw``, ``phys``) for the sets among
    ``names`` made by affectflow's physiology extractors, rebuilt with the run's stored parameters."""
    return _sets_made_by(run, streamer, names, PhysioExtractor)


def _physio_channels(ex: Any) -> set[str]:
    """Normalised channel names a physio extractor reads."""
    chans = {getattr(ex, a) for a in ("ecg_channel", "rsp_channel", "eda_channel", "bpm_channel")
             if isinstance(getattr(ex, a, None), str)}
    chans |= set(getattr(ex, "channels", None) or ())
    return chans


def _physio_lookahead(ex: Any) -> float:
    """Seconds of signal after a frame's instant that its offline value reads directly (its analysis window)."""
    need = 0.5 / ex.rate_hz  # physio_rates: the frame's averaging window [t - h/2, t + h/2)
    if hasattr(ex, "win_dur"):
        need = max(need, ex.win_dur / 2)  # hrv / phys: the HRV window centred on t
    if hasattr(ex, "sg_window"):
        sg = ex.sg_window if ex.sg_window is not None else 2.0 / ex.rate_hz
        need = max(need, sg / 2)  # physio_raw / phys: the Savitzky-Golay window centred on t
    return need


PHYSIO_MARGIN_S = 3.0
"""Default seconds of physio signal awaited beyond a frame's analysis window before the frame is computed live."""


class _PhysioSet:
    """One feature set computed from live physiology samples by re-running the offline extractor on a bounded
    trailing window of raw samples (approximate: see :meth:`LivePredictor.push_physio`)."""

    def __init__(self, ex: Any, context_s: float, lookahead_s: float) -> None:
        self.ex = copy.copy(ex)
        self.rate = float(ex.rate_hz)
        self.lookahead = float(lookahead_s)
        self.context = float(context_s)
        self.k = 0  # next frame to give

    def frames(self, buf: np.ndarray, buf_start: int, n_total: int, channels: list[str], fs: float,
               last: bool) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``k >= self.k`` that are complete (instant + lookahead <= last sample, or all at the end)."""
        d = len(self.ex.columns())
        t_last = (n_total - 1) / fs
        if n_total == 0:
            return np.zeros(0), np.zeros((0, d), np.float32)
        k_end = int(np.floor(t_last * self.rate + 1e-9)) + 1 if last \
            else int(np.floor((t_last - self.lookahead) * self.rate + 1e-9)) + 1
        if k_end <= self.k:
            return np.zeros(0), np.zeros((0, d), np.float32)
        # trailing context: from `context` s before the first frame wanted to the last sample
        lo = max(buf_start, int(np.floor((self.k / self.rate - self.context) * fs)))
        data = buf[lo - buf_start:]
        # local clock shifted by a whole number of frames so that local frame j is global frame j + k0
        k0 = int(np.floor(lo / fs * self.rate))
        ex = self.ex
        with warnings.catch_warnings():  # the offline extractor's code, over the in-memory window (signal verb)
            warnings.simplefilter("ignore", AffectflowWarning)
            df = ex.process_signal(data, channels, fs, start_time=lo / fs - k0 / self.rate)
        j = np.arange(self.k, k_end) - k0
        vals = np.full((len(j), d), np.nan, np.float32)
        ok = (j >= 0) & (j < len(df))
        vals[ok] = df[ex.columns()].to_numpy(np.float32)[j[ok]]
        times = np.arange(self.k, k_end) / self.rate
        self.k = k_end
        return times, vals


class _FaceGroup(FaceFrameStream):
    """Face extractors sharing an output rate and a face tracker, fed one decoded video frame at a time, with the
    names of the feature sets they make.

    :class:`~affectflow.features.face.FaceFrameStream`: the frame selection of
    :func:`affectflow.io.video.iter_frames` (:class:`~affectflow.io.video.NearestFrames`) and the face tracking of
    :func:`~affectflow.features.face.extract_face_features` (:class:`~affectflow.features.face.FaceFeatureRows`),
    so the values equal offline extraction on the same frames; at :meth:`finish` the last frame serves every
    ``t_k < t_last + median frame step``.
    """

    def __init__(self, names: list[str], exts: list[Any], rate_hz: float | None, min_confidence: float) -> None:
        super().__init__(exts, rate_hz=rate_hz, min_confidence=min_confidence)
        self.names = names


class _AudioSet:
    """One feature set computed from live audio."""

    def __init__(self, ex: Any, block_frames: int = 1) -> None:
        spec = ex.block_spec()
        self.ex = ex
        self.compute = spec["compute"]
        self.sample_rate = int(spec["sample_rate"])
        self.framer = AudioFramer(sample_rate=self.sample_rate, rate_hz=ex.rate_hz, left=spec["left"],
                                  right=spec["right"], frames_per_block=max(1, int(round(60 * ex.rate_hz))),
                                  pad=spec["pad"], align=spec.get("align", 1), greedy=True,
                                  min_block=block_frames)

    def feed(self, samples: np.ndarray, last: bool) -> tuple[np.ndarray, np.ndarray]:
        times, vals = [], []
        for blk in self.framer.feed(samples, last):
            v = np.asarray(self.compute(blk), dtype=np.float32)
            times.append(np.arange(blk.k0, blk.k1) / self.ex.rate_hz)
            vals.append(v)
        if not times:
            return np.zeros(0), np.zeros((0, len(self.ex.columns())), np.float32)
        return np.concatenate(times), np.concatenate(vals)


class LivePredictor:
    """Live prediction from audio chunks, video frames, physiology samples and feature frames (module docstring).

    Parameters
    ----------
    run:
        A causal continuous-task run.
    seed, device:
        As for :class:`~affectflow.streaming.streamer.Streamer`.
    missing:
        Feature sets to treat as missing at every step (neither computed from audio nor pushed).
    audio:
        Compute the run's audio-extractable sets from :meth:`push_audio` (default). With ``False`` every set that
        is not ``missing`` is expected from :meth:`push_frames`.
    video:
        Compute the run's face-extractor sets (``fer``, ``face_landmarks``, ``head_pose``, ``face_embedding``) from
        decoded frames given to :meth:`push_video` (default); with ``False`` they are pushed as frames.
    physio:
        Compute the run's physiology-extractor sets (``hrv``, ``physio_rates``, ``physio_raw``, ``phys``) from raw
        samples given to :meth:`push_physio` (default; approximate, see there); with ``False`` they are pushed
        as frames.
    block_frames:
        Compute audio features in blocks of this many frames (1: each frame as soon as its audio is there).
        Larger blocks re-analyse less context per frame (eGeMAPS reads 2 s of context on each side of a block)
        and cost less CPU, but delay each step by up to ``block_frames - 1`` frames. Values do not change.
    physio_context:
        Seconds of raw physiology kept before the next frame to compute (the trailing window the extractors run
        on; default 30).
    physio_lookahead:
        Seconds of physiology awaited after a frame's instant before computing it (default: the longest analysis
        half-window of the run's physio sets + 3 s). Larger: closer to offline values, later steps.

    Raises
    ------
    StreamingError
        Non-causal model, or a feature set that can be neither computed from audio nor pushed is not ``missing``
        (never raised for push-able sets: any set can be pushed as frames).
    """

    def __init__(self, run: Run | str | os.PathLike, *, seed: int | None = None, device: str = "cpu",
                 missing: Iterable[str] = (), audio: bool = True, video: bool = True, physio: bool = True,
                 block_frames: int = 1, physio_context: float = 30.0,
                 physio_lookahead: float | None = None) -> None:
        run = run if isinstance(run, Run) else Run(run)
        self.streamer = Streamer(run, seed=seed, device=device)
        self.run = run
        self.targets = self.streamer.targets
        self.label_rate_hz = self.streamer.label_rate_hz
        self.missing = set(missing)
        if isinstance(block_frames, bool) or not isinstance(block_frames, int) or block_frames < 1:
            raise StreamingError(f"block_frames must be a positive integer; got {block_frames!r}.")
        self.block_frames = block_frames
        unknown = self.missing - set(self.streamer.feature_sets)
        if unknown:
            raise StreamingError(f"`missing` names {sorted(unknown)}, which are not feature sets of the run "
                                 f"({self.streamer.feature_sets}).")
        live, other = _audio_sets(run, self.streamer) if audio else ({}, {})
        self._audio_ex = {n: ex for n, ex in live.items() if n not in self.missing}
        self.audio_sets = list(self._audio_ex)
        rest = [n for n in self.streamer.feature_sets if n not in self._audio_ex and n not in self.missing]
        self._video_ex = _video_sets(run, self.streamer, rest) if video else {}
        self.video_sets = list(self._video_ex)
        rest = [n for n in rest if n not in self._video_ex]
        self._physio_ex = _physio_sets(run, self.streamer, rest) if physio else {}
        self.physio_sets = list(self._physio_ex)
        self.physio_channels = sorted(set().union(*(_physio_channels(e) for e in self._physio_ex.values())))
        if not (isinstance(physio_context, (int, float)) and physio_context > 0):
            raise StreamingError(f"physio_context must be a positive number of seconds; got {physio_context!r}.")
        if physio_lookahead is not None and not (isinstance(physio_lookahead, (int, float))
                                                 and physio_lookahead >= 0):
            raise StreamingError(f"physio_lookahead must be None or >= 0 s; got {physio_lookahead!r}.")
        self.physio_context = float(physio_context)
        self.physio_lookahead = (float(physio_lookahead) if physio_lookahead is not None else
                                 max((_physio_lookahead(e) for e in self._physio_ex.values()), default=0.0)
                                 + PHYSIO_MARGIN_S)
        self.frame_sets = [n for n in rest if n not in self._physio_ex]
        self._why_not_audio = other
        self._rates = {}
        infos = self.streamer.trained.feature_sets()
        for n in self.streamer.feature_sets:
            self._rates[n] = infos[n].get("rate_hz")
        self.reset()

    @property
    def _sets(self) -> list[str]:
        return self.audio_sets + self.video_sets + self.physio_sets + self.frame_sets

    @property
    def sample_rate(self) -> int:
        """Rate (Hz) the audio features are computed at (16000 for eGeMAPS)."""
        rates = {s.sample_rate for s in self._audio.values()}
        return rates.pop() if len(rates) == 1 else 16000

    def reset(self) -> None:
        """Start a new stream."""
        self.streamer.reset()
        self._audio = {n: _AudioSet(ex, self.block_frames) for n, ex in self._audio_ex.items()}
        for g in getattr(self, "_video", []):
            g.close()
        groups: dict[tuple, list[str]] = {}
        for n, ex in self._video_ex.items():
            groups.setdefault((ex.rate_hz, ex.min_confidence), []).append(n)
        self._video = [_FaceGroup(ns, [self._video_ex[n] for n in ns], r, c) for (r, c), ns in groups.items()]
        self._video_t = None  # time of the last video frame pushed (exact, s)
        self._physio = {n: _PhysioSet(ex, self.physio_context, self.physio_lookahead)
                        for n, ex in self._physio_ex.items()}
        self._ph_rate: float | None = None
        self._ph_channels: list[str] | None = None
        self._ph_buf = np.zeros((0, 0))
        self._ph_start = 0
        self._ph_n = 0
        self._resamplers: dict[int, Any] = {}
        self._in_rate: int | None = None
        self._n_in = 0
        self._frames = {n: (np.zeros(0), np.zeros((0, self.streamer.dims[n]), np.float32))
                        for n in self._sets}
        self._next = 0
        self._ended = False

    # ------------------------------------------------------------------ input
    def push_audio(self, samples: np.ndarray, sample_rate: int) -> list[dict[str, float]]:
        """Append an audio chunk (1-D float32 mono in [-1, 1]); return the label steps it completes."""
        if not self.audio_sets:
            raise StreamingError(
                f"Run {self.run.path} has no feature set computable from live audio: "
                + "; ".join(f"{n}: {why}" for n, why in self._why_not_audio.items())
            )
        self._check_open()
        sr = int(sample_rate)
        if self._in_rate is None:
            self._in_rate = sr
        elif sr != self._in_rate:
            raise StreamingError(f"The sample rate changed from {self._in_rate} to {sr} Hz within one stream.")
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise StreamingError(f"Audio chunks must be 1-D mono float32 arrays; got shape {x.shape}.")
        self._n_in += x.size
        self._feed_audio(x, last=False)
        return self._emit()

    def _feed_audio(self, x: np.ndarray, last: bool) -> None:
        for name, s in self._audio.items():
            y = self._resample(x, s.sample_rate, last)
            t, v = s.feed(y, last)
            self._append(name, t, v)

    def _resample(self, x: np.ndarray, rate: int, last: bool) -> np.ndarray:
        if self._in_rate is None or self._in_rate == rate:
            return x
        if rate not in self._resamplers:
            import soxr  # optional (requirements/audio.txt): only for a pushed rate other than the model's

            self._resamplers[rate] = soxr.ResampleStream(self._in_rate, rate, 1, dtype="float32", quality="HQ")
        return self._resamplers[rate].resample_chunk(x, last=last)

    def push_video(self, image: np.ndarray, time_s: float) -> list[dict[str, float]]:
        """Append one decoded video frame (``uint8`` RGB ``(H, W, 3)``, at ``time_s`` s, increasing; every frame of
        the video, as decoded) and return the label steps it completes."""
        if not self.video_sets:
            raise StreamingError(f"Run {self.run.path} has no feature set computed from video frames "
                                 f"(feature sets: {self.streamer.feature_sets}).")
        self._check_open()
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise StreamingError(f"Video frames must be uint8 RGB arrays (H, W, 3); got {img.dtype} {img.shape}.")
        t = frame_time(float(time_s))
        if self._video_t is not None and t <= self._video_t:
            raise StreamingError(f"Video frame times must increase; got {float(t)} s after {float(self._video_t)} s.")
        self._video_t = t
        for g in self._video:
            self._append_group(g, g.push(t, img))
        return self._emit()

    def _append_group(self, g: _FaceGroup, rows: list) -> None:
        if not rows:
            return
        t = np.array([r[0] for r in rows])
        for j, n in enumerate(g.names):
            self._append(n, t, np.stack([r[1][j] for r in rows]))

    def push_physio(self, samples: dict[str, np.ndarray], sample_rate: float) -> list[dict[str, float]]:
        """Append raw physiology samples and return the label steps they complete.

        ``samples`` maps channel → 1-D array of the new samples (e.g. ``{"ECG": ..., "RSP": ..., "EDA": ...}``;
        names as in a physio file, normalised with :func:`~affectflow.io.physio.normalise_channel_name`), all
        channels of equal length, at ``sample_rate`` Hz; the same channels and rate for the whole stream (a
        channel never given is a NaN column, as a file without it). The first sample pushed is at time 0.

        The run's physio sets (``hrv``, ``physio_rates``, ``physio_raw``, ``phys``, with the run's stored
        extractor parameters) are computed by running the **offline extractor code** (NeuroKit2 ECG cleaning and
        R-peak detection, respiration troughs and rate, EDA tonic/phasic split, Savitzky-Golay, windowed HRV) over
        a bounded trailing window of raw samples: from ``physio_context`` s (default 30) before the first frame
        still to compute up to the newest sample. A frame at ``t`` is computed once the samples reach
        ``t + physio_lookahead`` (default: the longest analysis half-window of the run's physio sets, e.g.
        ``win_dur/2`` = 2 s for HRV, plus :data:`PHYSIO_MARGIN_S` = 3 s), so a label step comes about
        ``physio_lookahead + h/2`` after its time, and memory and CPU per frame are bounded (one extractor pass
        over ``physio_context + physio_lookahead`` s per push that completes frames).

        **Approximate**, not equal to offline extraction: the filters, R-peak and breath detection see only this
        trailing window, not the whole recording (offline R-peak detection reads 10 s after each block, RSP and EDA
        are filtered whole). Where they agree the values are the same; they differ where a beat near the window's
        right edge is detected differently (HRV statistics of that window then jump, e.g. pNN20 by 100/n),
        for ``RSP_Rate`` (NeuroKit2 interpolates the rate between breath troughs, so the value at ``t`` depends on
        the next one or two troughs, often more than 3 s later; a ``physio_lookahead`` of about 10 s brings it
        close), for the EDA tonic/phasic split (a 0.05 Hz high-pass), and in the first seconds of a stream
        (respiration rate is NaN until a few breaths have arrived). ``benchmarks/bench_live_physio.py`` measures
        the agreement (numbers in the README). At :meth:`flush` the remaining frames are computed with the end of
        the stream as offline.
        """
        if not self.physio_sets:
            raise StreamingError(f"Run {self.run.path} has no feature set made by a physio extractor "
                                 f"(feature sets: {self.streamer.feature_sets}).")
        self._check_open()
        if not isinstance(samples, dict) or not samples:
            raise StreamingError("push_physio takes a non-empty dict channel -> 1-D array of samples.")
        fs = float(sample_rate)
        if not fs > 0:
            raise StreamingError(f"The physio sample rate must be positive; got {sample_rate!r}.")
        names = [normalise_channel_name(str(c)) for c in samples]
        unknown = [c for c, n in zip(samples, names) if n not in self.physio_channels]
        if unknown:
            raise StreamingError(f"Unknown physio channel(s) {unknown}: the run's physio sets {self.physio_sets} "
                                 f"read {self.physio_channels}.")
        if len(set(names)) != len(names):
            raise StreamingError(f"Physio channels {list(samples)} name the same channel twice.")
        if self._ph_rate is None:
            self._ph_rate, self._ph_channels = fs, names
            self._ph_buf = np.zeros((0, len(names)))
            ecg = {e.ecg_channel for e in self._physio_ex.values() if hasattr(e, "ecg_channel")} & set(names)
            if ecg and fs < MIN_ECG_RATE:
                warnings.warn(f"ECG sampled at {fs:g} Hz, below the {MIN_ECG_RATE:g} Hz R-peak detection needs; "
                              "HRV and heart-rate values are NaN.", AffectflowWarning, stacklevel=2)
        elif fs != self._ph_rate:
            raise StreamingError(f"The physio sample rate changed from {self._ph_rate:g} to {fs:g} Hz within one "
                                 "stream.")
        elif sorted(names) != sorted(self._ph_channels):
            raise StreamingError(f"The physio channels changed from {self._ph_channels} to {names} within one "
                                 "stream.")
        cols = dict(zip(names, samples.values()))
        arrs = [np.asarray(cols[c], dtype=np.float64) for c in self._ph_channels]
        if any(a.ndim != 1 for a in arrs) or len({a.size for a in arrs}) != 1:
            raise StreamingError("Physio samples must be 1-D arrays of equal length for every channel; got shapes "
                                 f"{[a.shape for a in arrs]}.")
        self._ph_buf = np.concatenate([self._ph_buf, np.stack(arrs, axis=1)])
        self._ph_n += arrs[0].size
        self._feed_physio(last=False)
        return self._emit()

    def _feed_physio(self, last: bool) -> None:
        fs = self._ph_rate
        for name, s in self._physio.items():
            t, v = s.frames(self._ph_buf, self._ph_start, self._ph_n, self._ph_channels, fs, last)
            self._append(name, t, v)
        # keep what the next frames' trailing context needs
        lo = min(int(np.floor((s.k / s.rate - s.context) * fs)) for s in self._physio.values())
        drop = lo - self._ph_start
        if drop > 0:
            self._ph_buf = self._ph_buf[drop:]
            self._ph_start += drop

    def push_frames(self, name: str, times: np.ndarray, values: np.ndarray) -> list[dict[str, float]]:
        """Append frames of feature set ``name`` (computed elsewhere: video, physiology...): ``times`` ``(N,)`` s,
        increasing and after the frames pushed before; ``values`` ``(N, D)`` raw, NaN = missing."""
        self._check_open()
        if name not in self.frame_sets:
            raise StreamingError(
                f"Feature set {name!r} is not pushed as frames in this stream; frame sets: {self.frame_sets} "
                f"(audio sets {self.audio_sets} come from push_audio, video sets {self.video_sets} from push_video, "
                f"physio sets {self.physio_sets} from push_physio; "
                f"missing: {sorted(self.missing)})."
            )
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        v = np.asarray(values, dtype=np.float32).reshape(len(t), -1)
        if v.shape[1] != self.streamer.dims[name]:
            raise StreamingError(f"Feature set {name!r}: frames have {v.shape[1]} values, the run expects "
                                 f"{self.streamer.dims[name]}.")
        old = self._frames[name][0]
        if len(t) and ((len(old) and t[0] <= old[-1]) or np.any(np.diff(t) <= 0)):
            raise StreamingError(f"Feature set {name!r}: frame times must increase across pushes.")
        self._append(name, t, v)
        return self._emit()

    def flush(self, duration: float | None = None) -> list[dict[str, float]]:
        """End of stream: finish the audio (right edge reflected, as offline) and emit the steps ``t_g < D``.

        ``duration`` (s) defaults to the audio pushed (or the last pushed frame time)."""
        self._check_open()
        if self.audio_sets and self._in_rate is not None:
            self._feed_audio(np.zeros(0, np.float32), last=True)
        for g in self._video:
            self._append_group(g, g.finish())
        if self._physio and self._ph_rate is not None:
            self._feed_physio(last=True)
        if duration is None:
            if self._in_rate:
                duration = self._n_in / self._in_rate
            elif self._ph_rate:
                duration = self._ph_n / self._ph_rate
            else:
                ends = [f[0][-1] for f in self._frames.values() if len(f[0])]
                duration = max(ends) if ends else 0.0
        self._ended = True
        n = max(int(np.floor(duration * self.label_rate_hz + 1e-6)), 1 if duration > 0 else 0)
        return self._emit(until=n)

    def _check_open(self) -> None:
        if self._ended:
            raise StreamingError("This stream has ended (flush() was called); call reset() to start a new one.")

    def _append(self, name: str, t: np.ndarray, v: np.ndarray) -> None:
        if not len(t):
            return
        ot, ov = self._frames[name]
        self._frames[name] = (np.concatenate([ot, t]), np.concatenate([ov, v]))

    # ------------------------------------------------------------------ output
    def _emit(self, until: int | None = None) -> list[dict[str, float]]:
        h = 1.0 / self.label_rate_hz
        out = []
        sets = self._sets
        while True:
            g = self._next
            t_g = g * h
            if until is not None:
                if g >= until:
                    break
            elif not sets or any(not len(self._frames[n][0]) or self._frames[n][0][-1] < t_g + h / 2 - 1e-9
                                 for n in sets):
                break
            frame = {}
            for n in sets:
                ft, fv = self._frames[n]
                rate = self._rates.get(n)
                p = 1.0 / rate if rate else None
                frame[n] = align_to_grid(ft, fv, np.array([t_g]), frame_period=p, grid_period=h)[0] if len(ft) \
                    else None
            pred = self.streamer.step(frame)
            out.append({"time": t_g, **pred})
            self._next += 1
            self._trim(t_g + h, h)
        return out

    def _trim(self, t_next: float, h: float) -> None:
        for n, (ft, fv) in self._frames.items():
            rate = self._rates.get(n)
            p = 1.0 / rate if rate else h
            keep = np.searchsorted(ft, t_next - h / 2 - 2 * p - 1e-9)
            keep = max(0, min(keep, len(ft) - 1))  # always keep the last frame (for holds)
            if keep:
                self._frames[n] = (ft[keep:], fv[keep:])


class AudioStreamPredictor(LivePredictor):
    """Live prediction from audio chunks only (a microphone, a WebSocket of audio).

    Parameters
    ----------
    run:
        A causal continuous-task run whose feature sets are computable from audio (``egemaps``, ``egemaps_lld``,
        ``logmel``).
    allow_missing:
        Feed the run's other feature sets (video, physiology, text) as missing at every step instead of refusing.
    block_frames:
        As for :class:`LivePredictor` (CPU vs delay; the values are the same).

    Raises
    ------
    StreamingError
        Non-causal model; no audio-computable set; other sets present and ``allow_missing`` false.
    """

    def __init__(self, run: Run | str | os.PathLike, *, seed: int | None = None, device: str = "cpu",
                 allow_missing: bool = False, block_frames: int = 1) -> None:
        run = run if isinstance(run, Run) else Run(run)
        probe = Streamer(run, seed=seed, device=device)
        live, other = _audio_sets(run, probe)
        if not live:
            raise StreamingError(
                f"Run {run.path} has no feature set computable from live audio: "
                + "; ".join(f"{n}: {why}" for n, why in other.items())
            )
        if other and not allow_missing:
            raise StreamingError(
                f"Run {run.path} also uses feature sets that live audio cannot give: "
                + "; ".join(f"{n}: {why}" for n, why in other.items())
                + ". Pass allow_missing=True to feed them as missing at every step (predictions then rely on "
                f"{sorted(live)} only), or use LivePredictor and push their frames."
            )
        super().__init__(run, seed=seed, device=device, missing=list(other), block_frames=block_frames)

    def push(self, samples: np.ndarray, sample_rate: int) -> list[dict[str, float]]:
        """Append an audio chunk (1-D float32 mono in [-1, 1], any length; the rate must not change within a
        stream) and return the label steps it completes: ``[{"time": s, target: value, ...}]``."""
        return self.push_audio(samples, sample_rate)
