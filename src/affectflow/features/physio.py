"""Physiological feature extractors: HRV, heart/respiration rate and EDA, smoothed raw signals, MuSe "Phys".

Registered extractors (all ``modality = "physio"``, ``inputs = ("physio",)``, output frames at ``t_k = k / rate_hz``
for ``k = 0 .. K-1``, ``K - 1`` the last frame at or before the last sample; see
:func:`affectflow.features.hrv.frame_times`):

``hrv``
    18 HRV time-domain indices (NeuroKit2 ``hrv_time``; see :mod:`affectflow.features.hrv`) on ``win_dur`` s
    windows centred on each frame, from the R-peaks NeuroKit2 finds in the ECG channel. Columns
    ``HRV_MeanNN ... HRV_HTI`` (18).
``physio_rates``
    ``ECG_Rate`` (beats/min), ``RSP_Rate`` (breaths/min), ``EDA_Tonic`` and ``EDA_Phasic`` (the EDA unit of the
    file, e.g. µS), NeuroKit2's continuous outputs averaged over each frame's window
    ``[t_k - 0.5 / rate_hz, t_k + 0.5 / rate_hz)``. A channel the recording does not have gives a NaN column
    (so does a channel NeuroKit2 cannot process, with an :class:`~affectflow.errors.AffectflowWarning`).
``physio_raw``
    The raw signals of ``channels`` smoothed with a Savitzky-Golay filter and sampled at each frame instant, as
    the MuSe 2021-2023 organisers prepared their 2 Hz ECG/RESP/BPM features. Missing channels are NaN columns.
``phys``
    The 21-dimensional "Phys" preset of the MuSe 2023 personalisation paper (Zhang et al., section 3.1.3): the 18
    HRV columns, then ``ECG``, ``RSP``, ``BPM`` as in ``physio_raw``. Without a BPM channel (and with
    ``bpm_from_ecg=True``) ``BPM`` is NeuroKit2's heart rate from the ECG R-peaks at the frame instant.

Processing (flat memory: the file is streamed in blocks of ``block_dur`` seconds)

- R-peaks: ``nk.ecg_clean(x, fs, method=ecg_method)`` (NeuroKit2's "neurokit" cleaning when ``ecg_method`` has no
  cleaning of its own) then ``nk.ecg_findpeaks(..., method=ecg_method)`` — what ``nk.ecg_peaks`` does without
  artifact correction — on each block plus 10 s of signal on each side; the peaks inside the block are kept.
  The margins cover the filters' transients, so the peaks equal those of one call on the whole signal except
  where NeuroKit2 uses whole-signal statistics (the "neurokit" method's minimum QRS length is 0.4 × the mean QRS
  width of the segment). ECG sampled below 100 Hz is not searched for R-peaks (HRV and heart rate are NaN, with
  a warning).
- Heart rate: NeuroKit2's ``signal_rate`` interpolation (monotone cubic through the R-R periods, the first
  period set to the mean of the others, constant beyond the first and last beat), i.e. ``ECG_Rate`` of
  ``nk.ecg_process``; NaN with 3 beats or fewer.
- RSP and EDA are first averaged over groups of ``q = floor(fs / 100)`` samples (a ≤ 100 Hz processing rate;
  their content is below 1 and 3 Hz), then processed whole: ``nk.rsp_clean`` + ``nk.rsp_peaks`` +
  ``nk.signal_rate`` of the troughs (``RSP_Rate`` of ``nk.rsp_process``); ``nk.eda_clean`` + ``nk.eda_phasic``
  ("neurokit" = high-pass at 0.05 Hz, as ``nk.eda_process``). Missing samples (NaN) are linearly interpolated.
- Savitzky-Golay (``physio_raw``/``phys``): window ``sg_window`` s (default ``2 / rate_hz`` = 1 s at 2 Hz, whose
  -3 dB cut-off for polyorder 2 is about the output Nyquist frequency ``rate_hz / 2``), rounded to an odd number
  of samples ``W``, polynomial order ``sg_polyorder`` (default 2). The value of frame ``k`` is
  ``scipy.signal.savgol_filter(x, W, sg_polyorder)`` (``mode="interp"`` at the ends) at the sample nearest
  ``t_k``, computed only at those samples. If ``W <= sg_polyorder`` (signal sampled near the output rate) the
  nearest sample is taken unsmoothed.

Frames whose instant lies before the first or after the last sample are NaN. Time stamps: sample ``i`` of the
file is at ``start_time + i / fs`` (``start_time`` from a CSV time column, else 0).
"""

from __future__ import annotations

import math
from abc import abstractmethod
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from affectflow.errors import AffectflowWarning, ConfigError
from affectflow.features.base import EXTRACTORS, ExtractionError, Extractor, MediaRecording, feature_frame
from affectflow.features.hrv import (
    EDGE_MODES,
    HRV_COLUMNS,
    frame_samples,
    frame_times,
    hrv_time_windows,
    window_bounds,
)
from affectflow.io.physio import ArrayPhysioReader, open_physio

RATE_COLUMNS = ("ECG_Rate", "RSP_Rate", "EDA_Tonic", "EDA_Phasic")
PHYS_RAW_COLUMNS = ("ECG", "RSP", "BPM")
MIN_ECG_RATE = 100.0  # Hz: below this no R-peak detection
PROC_RATE = 100.0  # Hz: RSP/EDA are pooled to at most this rate before NeuroKit2 processing
PEAK_MARGIN_S = 10.0  # s of context on each side of a block for R-peak detection
_MIN_PEAK_GAP_S = 0.3  # peaks closer than this across a block boundary are the same beat
_ECG_CLEAN_METHODS = {
    "neurokit",
    "biosppy",
    "pantompkins1985",
    "hamilton2002",
    "elgendi2010",
    "engzeemod2012",
    "vg",
    "vgraph",
    "templateconvolution",
    "emrich2023",
}


# ------------------------------------------------------------------------------------------------ helpers
def _fill_nan(x: np.ndarray) -> np.ndarray | None:
    """Linearly interpolate NaNs (constant beyond the ends); ``None`` if no value is finite."""
    ok = np.isfinite(x)
    if ok.all():
        return x
    if not ok.any():
        return None
    i = np.arange(x.size)
    return np.interp(i, i[ok], x[ok])


def detect_rpeaks(ecg: np.ndarray, sampling_rate: float, method: str = "neurokit") -> np.ndarray:
    """R-peak sample indices of one ECG segment with NeuroKit2.

    Parameters
    ----------
    ecg:
        Raw ECG, shape ``(n,)``; NaNs are linearly interpolated.
    sampling_rate:
        Hz.
    method:
        NeuroKit2 peak method (``nk.ecg_findpeaks``); the cleaning uses the same method when NeuroKit2 has one of
        that name, else ``"neurokit"``.

    Returns
    -------
    numpy.ndarray
        ``int64`` sample indices, sorted; empty when the segment is too short, flat or all NaN.
    """
    import neurokit2 as nk

    x = _fill_nan(np.asarray(ecg, dtype=np.float64))
    if x is None or x.size < max(int(2 * sampling_rate), 64) or np.ptp(x) == 0:
        return np.zeros(0, dtype=np.int64)
    clean_method = method if method.lower() in _ECG_CLEAN_METHODS else "neurokit"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cleaned = nk.ecg_clean(x, sampling_rate=sampling_rate, method=clean_method)
        info = nk.ecg_findpeaks(cleaned, sampling_rate=sampling_rate, method=method)
    return np.unique(np.asarray(info["ECG_R_Peaks"], dtype=np.int64))


def heart_rate_at(peaks: np.ndarray, sampling_rate: float, positions: np.ndarray) -> np.ndarray:
    """NeuroKit2's instantaneous heart rate (``ECG_Rate``) at fractional sample ``positions``.

    Parameters
    ----------
    peaks:
        R-peak sample indices, sorted.
    sampling_rate:
        Hz.
    positions:
        Sample positions (may be fractional), shape ``(m,)``.

    Returns
    -------
    numpy.ndarray
        Beats per minute, shape ``(m,)``: ``60 / period`` with the period interpolated as ``nk.signal_rate`` does;
        all NaN with 3 beats or fewer (NeuroKit2's rule).
    """
    import neurokit2 as nk

    peaks = np.asarray(peaks, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64)
    if peaks.size <= 3 or positions.size == 0:
        return np.full(positions.size, np.nan)
    period = np.ediff1d(peaks, to_begin=0) / sampling_rate
    period[0] = np.mean(period[1:])
    interp = nk.signal_interpolate(peaks, period, x_new=positions, method="monotone_cubic")
    return 60.0 / np.asarray(interp, dtype=np.float64)


def _sg_coeffs(window: int, polyorder: int, pos: int | None = None) -> np.ndarray:
    from scipy.signal import savgol_coeffs  # lazy: scipy.signal takes ~1.8 s to import

    return savgol_coeffs(window, polyorder, pos=pos, use="dot")


def _frame_average(
    values: np.ndarray, positions: np.ndarray, sampling_rate: float, start_time: float, rate_hz: float, k: int
) -> np.ndarray:
    """Mean of ``values`` (at sample ``positions``) over each frame window ``[t_k - h/2, t_k + h/2)``, h = 1/rate."""
    out = np.full(k, np.nan)
    if values.size == 0 or k == 0:
        return out
    t = start_time + positions / sampling_rate
    f = np.floor(t * rate_hz + 0.5).astype(np.int64)
    ok = (f >= 0) & (f < k) & np.isfinite(values)
    s = np.bincount(f[ok], weights=values[ok], minlength=k)[:k]
    c = np.bincount(f[ok], minlength=k)[:k]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return out


# ------------------------------------------------------------------------------------------- stream pass
class _PhysioPass:
    """One streaming pass over a recording computing what an extractor needs.

    Outputs after :meth:`run`: ``times`` (K,), ``centres`` (K,) sample index of each frame, ``inside`` (K,) bool,
    ``peaks`` (R-peaks or ``None``), ``sg`` {channel: (K,)}, ``pooled`` {channel: (m,)} with ``pool_pos`` (m,)
    sample positions and ``pool_rate``.
    """

    def __init__(
        self,
        reader: Any,
        *,
        rate_hz: float,
        block_dur: float,
        peaks_channel: str | None = None,
        ecg_method: str = "neurokit",
        sg_channels: Sequence[str] = (),
        sg_window: float | None = None,
        sg_polyorder: int = 2,
        pool_channels: Sequence[str] = (),
    ) -> None:
        info = reader.info
        self.reader = reader
        self.path = info.path
        self.fs = float(info.sampling_rate)
        self.n = int(info.n_samples)
        self.t0 = float(info.start_time)
        self.rate_hz = float(rate_hz)
        self.times = frame_times(self.n, self.fs, self.rate_hz, self.t0)
        self.centres = frame_samples(self.times, self.fs, self.t0)
        self.inside = (self.centres >= 0) & (self.centres <= self.n - 1)
        present = set(info.channels)
        self.peaks_channel = peaks_channel if peaks_channel in present else None
        if self.peaks_channel is not None and self.fs < MIN_ECG_RATE:
            warnings.warn(
                f"{self.path}: ECG sampled at {self.fs:g} Hz, below the {MIN_ECG_RATE:g} Hz R-peak detection needs; "
                "HRV and heart-rate values are NaN.",
                AffectflowWarning,
                stacklevel=3,
            )
            self.peaks_channel = None
        self.ecg_method = ecg_method
        self.sg_channels = [c for c in dict.fromkeys(sg_channels) if c in present]
        self.pool_channels = [c for c in dict.fromkeys(pool_channels) if c in present]
        # Savitzky-Golay window in samples
        w = round((sg_window if sg_window is not None else 2.0 / self.rate_hz) * self.fs)
        w = max(w, 1)
        if w % 2 == 0:
            w += 1
        if w > self.n:
            w = self.n if self.n % 2 == 1 else self.n - 1
        self.sg_polyorder = int(sg_polyorder)
        self.sg_w = w if w > self.sg_polyorder else 0  # 0 = no smoothing
        self.q = max(1, int(self.fs // PROC_RATE))
        self.pool_rate = self.fs / self.q
        core = max(round(block_dur * self.fs), 1)
        self.core = self.q * math.ceil(core / self.q)
        margin = 0
        if self.peaks_channel is not None:
            margin = max(margin, round(PEAK_MARGIN_S * self.fs))
        if self.sg_channels and self.sg_w:
            margin = max(margin, self.sg_w + 1)
        self.margin = margin
        self.channels = list(
            dict.fromkeys(
                ([self.peaks_channel] if self.peaks_channel else []) + self.sg_channels + self.pool_channels
            )
        )
        self.peaks: np.ndarray | None = None
        self.sg: dict[str, np.ndarray] = {}
        self.pooled: dict[str, np.ndarray] = {}
        self.pool_pos = np.zeros(0)

    # -- chunks with context
    def _chunks(self) -> Iterator[tuple[int, int, int, np.ndarray]]:
        """Yield ``(core_start, core_end, data_start, data)`` with data = samples [core_start - margin,
        core_end + margin) clipped to the recording; cores tile [0, n)."""
        n, core, margin = self.n, self.core, self.margin
        buf = np.zeros((0, len(self.channels)))
        buf_start = 0
        core_start = 0
        for _, block in self.reader.blocks(self.channels, block_samples=core):
            buf = np.concatenate([buf, block], axis=0) if buf.size else block
            while core_start < n and buf_start + len(buf) >= min(n, core_start + core + margin):
                yield from self._emit(buf, buf_start, core_start)
                core_start += core
                keep = max(0, core_start - margin) - buf_start
                if keep > 0:
                    buf = buf[keep:]
                    buf_start += keep
        while core_start < min(n, buf_start + len(buf)):  # file shorter than announced: use what is there
            yield from self._emit(buf, buf_start, core_start)
            core_start += core

    def _emit(
        self, buf: np.ndarray, buf_start: int, core_start: int
    ) -> Iterator[tuple[int, int, int, np.ndarray]]:
        avail_end = buf_start + len(buf)
        core_end = min(core_start + self.core, self.n, avail_end)
        lo = max(0, core_start - self.margin)
        hi = min(self.n, core_end + self.margin, avail_end)
        yield core_start, core_end, lo, buf[lo - buf_start : hi - buf_start]

    def run(self) -> _PhysioPass:
        k = self.times.size
        peaks: list[np.ndarray] = []
        last_peak = -(10**18)
        min_gap = round(_MIN_PEAK_GAP_S * self.fs)
        sg_vals = {c: np.full(k, np.nan) for c in self.sg_channels}
        pooled: dict[str, list[np.ndarray]] = {c: [] for c in self.pool_channels}
        col = {c: i for i, c in enumerate(self.channels)}
        coeff_centre = _sg_coeffs(self.sg_w, self.sg_polyorder) if self.sg_w else None
        if not self.channels:
            return self
        for core_start, core_end, data_start, data in self._chunks():
            if self.peaks_channel is not None:
                try:
                    pk = (
                        detect_rpeaks(data[:, col[self.peaks_channel]], self.fs, self.ecg_method) + data_start
                    )
                except (ValueError, IndexError, TypeError, np.linalg.LinAlgError) as e:
                    warnings.warn(
                        f"{self.path}: R-peak detection failed on samples {core_start}-{core_end} "
                        f"({type(e).__name__}: {e}); no beats there.",
                        AffectflowWarning,
                        stacklevel=2,
                    )
                    pk = np.zeros(0, dtype=np.int64)
                pk = pk[(pk >= core_start) & (pk < core_end)]
                pk = pk[pk > last_peak + min_gap] if pk.size else pk
                if pk.size:
                    last_peak = int(pk[-1])
                    peaks.append(pk)
            if self.sg_channels:
                sel = np.flatnonzero(self.inside & (self.centres >= core_start) & (self.centres < core_end))
                if sel.size:
                    for c in self.sg_channels:
                        sg_vals[c][sel] = self._sg_at(
                            data[:, col[c]], data_start, self.centres[sel], coeff_centre
                        )
            if self.pool_channels:
                seg = data[core_start - data_start : core_end - data_start]
                m = seg.shape[0] // self.q
                for c in self.pool_channels:
                    x = seg[:, col[c]]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        parts = [np.nanmean(x[: m * self.q].reshape(m, self.q), axis=1)] if m else []
                        if seg.shape[0] > m * self.q:
                            parts.append(np.array([np.nanmean(x[m * self.q :])]))
                    pooled[c].append(np.concatenate(parts) if parts else np.zeros(0))
        if self.peaks_channel is not None:
            self.peaks = np.concatenate(peaks) if peaks else np.zeros(0, dtype=np.int64)
        self.sg = sg_vals
        self.pooled = {c: (np.concatenate(v) if v else np.zeros(0)) for c, v in pooled.items()}
        m = math.ceil(self.n / self.q)
        g = np.arange(m)
        self.pool_pos = (g * self.q + np.minimum((g + 1) * self.q, self.n) - 1) / 2.0
        return self

    def _sg_at(
        self, x: np.ndarray, data_start: int, centres: np.ndarray, coeff: np.ndarray | None
    ) -> np.ndarray:
        """Savitzky-Golay smoothed value of ``x`` (global samples ``data_start + i``) at sample ``centres``."""
        rel = centres - data_start
        if not self.sg_w:
            return x[rel]
        w, h, n = self.sg_w, self.sg_w // 2, self.n
        out = np.empty(centres.size)
        interior = (centres - h >= 0) & (centres + h <= n - 1)
        if interior.any():
            idx = rel[interior, None] - h + np.arange(w)[None, :]
            out[interior] = x[idx] @ coeff
        for j in np.flatnonzero(
            ~interior
        ):  # the first/last h samples: polynomial fit to the first/last W samples
            c = int(centres[j])
            lo = 0 if c - h < 0 else n - w
            seg = x[lo - data_start : lo - data_start + w]
            out[j] = seg @ _sg_coeffs(w, self.sg_polyorder, pos=c - lo)
        return out


# ----------------------------------------------------------------------------------------------- extractors
class PhysioExtractor(Extractor):
    """Base of the physiology extractors: the file path (:meth:`extract`) and the signal path
    (:meth:`process_signal`, samples in memory, e.g. live input) both run :meth:`process_reader` on a
    :class:`~affectflow.io.physio.PhysioReader`, so they compute the same frames from the same samples."""

    modality = "physio"
    inputs = ("physio",)

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames of the recording's physio file (see the module docstring)."""
        with self._open(rec) as reader:
            return self.process_reader(reader)

    def process_signal(self, signals: np.ndarray, channels: Sequence[str], sampling_rate: float, *,
                       start_time: float = 0.0) -> pd.DataFrame:
        """Frames of samples in memory (opensmile's ``process_signal``): ``signals`` ``(n_samples, n_channels)``
        with normalised channel names ``channels`` (``ecg``, ``rsp``, ``eda``, ...) at ``sampling_rate`` Hz, sample
        0 at ``start_time`` s. Same columns and values as :meth:`extract` on a file holding these samples."""
        return self.process_reader(ArrayPhysioReader(signals, channels, sampling_rate, start_time=start_time))

    @abstractmethod
    def process_reader(self, reader: Any) -> pd.DataFrame:
        """Frames of an open :class:`~affectflow.io.physio.PhysioReader` (file or in-memory samples)."""

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        """Check the common parameters this extractor has (``rate_hz``, ``win_dur``, ``block_dur`` and ``sg_window``
        positive, ``edge`` one of :data:`EDGE_MODES`, ``sg_polyorder`` a non-negative integer)."""
        for key in ("rate_hz", "win_dur", "block_dur", "sg_window"):
            v = getattr(self, key, 1.0)
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ConfigError(f"Extractor {self.name!r}: {key} must be a positive number, got {v!r}.")
        if hasattr(self, "edge") and self.edge not in EDGE_MODES:
            raise ConfigError(
                f"Extractor {self.name!r}: edge must be one of {list(EDGE_MODES)}, got {self.edge!r}."
            )
        p = getattr(self, "sg_polyorder", 0)
        if not isinstance(p, int) or p < 0:
            raise ConfigError(
                f"Extractor {self.name!r}: sg_polyorder must be a non-negative integer, got {p!r}."
            )

    def _open(self, rec: MediaRecording):
        if rec.physio is None:
            raise ExtractionError(
                f"Recording {rec.id!r} has no physio file; extractor {self.name!r} needs one."
            )
        return open_physio(rec.physio, sampling_rate=self.sampling_rate, time_column=self.time_column)

    def _require_any(self, reader: Any, wanted: Sequence[str]) -> None:
        if not set(wanted) & set(reader.info.channels):
            raise ExtractionError(
                f"{reader.info.path}: none of the channels {list(wanted)} that extractor {self.name!r} uses is in "
                f"the file (it has {reader.info.channels}, as written: {reader.info.source_channels}). Set the "
                "*_channel parameters to the right names."
            )

    def _pass(self, reader: Any, **needs: Any) -> _PhysioPass:
        """The streaming pass over ``reader`` at this extractor's ``rate_hz`` and ``block_dur`` computing ``needs``
        (the other :class:`_PhysioPass` arguments), run."""
        return _PhysioPass(reader, rate_hz=self.rate_hz, block_dur=self.block_dur, **needs).run()

    def _hrv(self, ps: _PhysioPass, win_dur: float, edge: str) -> np.ndarray:
        k = ps.times.size
        if ps.peaks is None:
            return np.full((k, len(HRV_COLUMNS)), np.nan)
        win = max(round(win_dur * ps.fs), 1)
        starts, ends = window_bounds(ps.centres, ps.n, win, edge)
        values = hrv_time_windows(ps.peaks, ps.fs, starts, ends)
        values[~ps.inside] = np.nan
        return values


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class HRVExtractor(PhysioExtractor):
    """18 HRV time-domain features (NeuroKit2 ``hrv_time``) on sliding windows of the ECG.

    Parameters
    ----------
    rate_hz:
        Output frame rate (hop ``1 / rate_hz`` s; default 2 Hz = 0.5 s).
    win_dur:
        Window duration in seconds (default 4 s, as the MuSe 2023 paper), centred on each frame.
    edge:
        ``"shift"`` (windows near the ends moved inside the recording, the paper's "padded with neighbouring
        data") or ``"truncate"``; see :mod:`affectflow.features.hrv`.
    ecg_channel:
        Normalised name of the ECG channel (see :func:`affectflow.io.physio.normalise_channel_name`).
    ecg_method:
        NeuroKit2 R-peak method.
    sampling_rate, time_column:
        For CSV files: the sampling rate (when there is no time column) and the time column name.
    block_dur:
        Seconds of signal processed at once.

    Output: ``time`` + :data:`~affectflow.features.hrv.HRV_COLUMNS`, shape ``(K, 19)``; NaN rows where a window
    has fewer than two R-peaks.
    """

    name = "hrv"

    rate_hz: float = 2.0
    win_dur: float = 4.0
    edge: str = "shift"
    ecg_channel: str = "ECG"
    ecg_method: str = "neurokit"
    sampling_rate: float | None = None
    time_column: str | None = None
    block_dur: float = 120.0

    def columns(self) -> list[str]:
        return list(HRV_COLUMNS)

    def process_reader(self, reader: Any) -> pd.DataFrame:
        self._require_any(reader, [self.ecg_channel])
        ps = self._pass(reader, peaks_channel=self.ecg_channel, ecg_method=self.ecg_method)
        return feature_frame(ps.times, self._hrv(ps, self.win_dur, self.edge), self.columns())


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class PhysioRatesExtractor(PhysioExtractor):
    """Heart rate, respiration rate, EDA tonic and phasic components (NeuroKit2), averaged per frame.

    Parameters
    ----------
    rate_hz:
        Output frame rate; each frame averages ``[t_k - 0.5 / rate_hz, t_k + 0.5 / rate_hz)``.
    ecg_channel, rsp_channel, eda_channel:
        Normalised channel names; a channel the file lacks gives a NaN column (at least one must exist).
    ecg_method:
        NeuroKit2 R-peak method.
    sampling_rate, time_column:
        For CSV files (see :func:`affectflow.io.physio.open_physio`).
    block_dur:
        Seconds of signal processed at once.

    Output: ``time``, ``ECG_Rate`` (1/min), ``RSP_Rate`` (1/min), ``EDA_Tonic``, ``EDA_Phasic`` (EDA units);
    shape ``(K, 5)``.
    """

    name = "physio_rates"

    rate_hz: float = 2.0
    ecg_channel: str = "ECG"
    rsp_channel: str = "RSP"
    eda_channel: str = "EDA"
    ecg_method: str = "neurokit"
    sampling_rate: float | None = None
    time_column: str | None = None
    block_dur: float = 120.0

    def columns(self) -> list[str]:
        return list(RATE_COLUMNS)

    def process_reader(self, reader: Any) -> pd.DataFrame:
        import neurokit2 as nk

        self._require_any(reader, [self.ecg_channel, self.rsp_channel, self.eda_channel])
        ps = self._pass(
            reader,
            peaks_channel=self.ecg_channel,
            ecg_method=self.ecg_method,
            pool_channels=[self.rsp_channel, self.eda_channel],
        )
        k = ps.times.size
        out = np.full((k, 4), np.nan)
        avg = lambda v: _frame_average(v, ps.pool_pos, ps.fs, ps.t0, ps.rate_hz, k)
        if ps.peaks is not None:
            out[:, 0] = avg(heart_rate_at(ps.peaks, ps.fs, ps.pool_pos))
        fs_p = ps.pool_rate
        rsp = ps.pooled.get(self.rsp_channel)
        if rsp is not None:
            rate = self._nk_safe(
                "respiration",
                ps.path,
                lambda x: nk.signal_rate(
                    nk.rsp_peaks(nk.rsp_clean(x, sampling_rate=fs_p), sampling_rate=fs_p, amplitude_min=0.3)[
                        1
                    ]["RSP_Troughs"],
                    sampling_rate=fs_p,
                    desired_length=len(x),
                ),
                rsp,
            )
            if rate is not None:
                out[:, 1] = avg(np.asarray(rate, dtype=np.float64))
        eda = ps.pooled.get(self.eda_channel)
        if eda is not None:
            dec = self._nk_safe(
                "EDA",
                ps.path,
                lambda x: nk.eda_phasic(
                    nk.eda_clean(x, sampling_rate=fs_p), sampling_rate=fs_p, method="neurokit"
                ),
                eda,
            )
            if dec is not None:
                out[:, 2] = avg(dec["EDA_Tonic"].to_numpy(np.float64))
                out[:, 3] = avg(dec["EDA_Phasic"].to_numpy(np.float64))
        out[~ps.inside] = np.nan
        return feature_frame(ps.times, out, self.columns())

    @staticmethod
    def _nk_safe(what: str, path: Any, fn: Any, x: np.ndarray) -> Any:
        xf = _fill_nan(x)
        if xf is None or xf.size < 10:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(xf)
        except Exception as e:  # noqa: BLE001 - NeuroKit2 raises many types on flat/short/odd signals
            warnings.warn(
                f"{path}: NeuroKit2 could not process the {what} signal ({type(e).__name__}: {e}); its columns "
                "are NaN.",
                AffectflowWarning,
                stacklevel=3,
            )
            return None


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class PhysioRawExtractor(PhysioExtractor):
    """Raw signals Savitzky-Golay smoothed and sampled at the frame rate (MuSe's 2 Hz ECG/RESP/BPM features).

    Parameters
    ----------
    rate_hz:
        Output frame rate.
    channels:
        Normalised channel names, one output column each (missing → NaN column; at least one must exist).
    sg_window:
        Savitzky-Golay window in seconds (``None`` → ``2 / rate_hz``), rounded to an odd number of samples.
    sg_polyorder:
        Savitzky-Golay polynomial order.
    sampling_rate, time_column:
        For CSV files.
    block_dur:
        Seconds of signal processed at once.

    Output: ``time`` then one column per channel, shape ``(K, 1 + len(channels))``, in the file's units.
    """

    name = "physio_raw"

    rate_hz: float = 2.0
    channels: Sequence[str] = ("ECG", "RSP", "EDA", "BPM")
    sg_window: float | None = None
    sg_polyorder: int = 2
    sampling_rate: float | None = None
    time_column: str | None = None
    block_dur: float = 120.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.channels, str) or not self.channels or len(set(self.channels)) != len(self.channels):
            raise ConfigError(
                f"Extractor 'physio_raw': channels must be a non-empty list of distinct names, got {self.channels!r}."
            )

    def columns(self) -> list[str]:
        return [str(c) for c in self.channels]

    def process_reader(self, reader: Any) -> pd.DataFrame:
        self._require_any(reader, self.columns())
        ps = self._pass(
            reader,
            sg_channels=self.columns(),
            sg_window=self.sg_window,
            sg_polyorder=self.sg_polyorder,
        )
        k = ps.times.size
        out = np.full((k, len(self.channels)), np.nan)
        for j, c in enumerate(self.columns()):
            if c in ps.sg:
                out[:, j] = ps.sg[c]
        out[~ps.inside] = np.nan
        return feature_frame(ps.times, out, self.columns())


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class PhysExtractor(PhysioExtractor):
    """MuSe 2023 "Phys": 18 HRV features + Savitzky-Golay smoothed ECG, RSP and BPM (21 columns).

    Parameters
    ----------
    rate_hz, win_dur, edge, ecg_method:
        As :class:`HRVExtractor`.
    ecg_channel, rsp_channel, bpm_channel:
        Normalised channel names (missing → NaN columns; at least one must exist).
    bpm_from_ecg:
        Without a BPM channel, fill ``BPM`` with NeuroKit2's heart rate from the ECG R-peaks at each frame instant.
    sg_window, sg_polyorder:
        As :class:`PhysioRawExtractor`.
    sampling_rate, time_column, block_dur:
        As :class:`HRVExtractor`.

    Output: ``time`` + 18 ``HRV_*`` + ``ECG``, ``RSP``, ``BPM``; shape ``(K, 22)``.
    """

    name = "phys"

    rate_hz: float = 2.0
    win_dur: float = 4.0
    edge: str = "shift"
    ecg_channel: str = "ECG"
    rsp_channel: str = "RSP"
    bpm_channel: str = "BPM"
    bpm_from_ecg: bool = True
    ecg_method: str = "neurokit"
    sg_window: float | None = None
    sg_polyorder: int = 2
    sampling_rate: float | None = None
    time_column: str | None = None
    block_dur: float = 120.0

    def columns(self) -> list[str]:
        return list(HRV_COLUMNS) + list(PHYS_RAW_COLUMNS)

    def process_reader(self, reader: Any) -> pd.DataFrame:
        wanted = [self.ecg_channel, self.rsp_channel, self.bpm_channel]
        self._require_any(reader, wanted)
        ps = self._pass(
            reader,
            peaks_channel=self.ecg_channel,
            ecg_method=self.ecg_method,
            sg_channels=wanted,
            sg_window=self.sg_window,
            sg_polyorder=self.sg_polyorder,
        )
        k = ps.times.size
        out = np.full((k, len(HRV_COLUMNS) + 3), np.nan)
        out[:, : len(HRV_COLUMNS)] = self._hrv(ps, self.win_dur, self.edge)
        for j, c in enumerate(wanted):
            if c in ps.sg:
                out[:, len(HRV_COLUMNS) + j] = ps.sg[c]
        if self.bpm_channel not in ps.sg and self.bpm_from_ecg and ps.peaks is not None:
            out[:, -1] = heart_rate_at(ps.peaks, ps.fs, ps.centres.astype(np.float64))
        out[~ps.inside] = np.nan
        return feature_frame(ps.times, out, self.columns())


_PhysioExtractor = PhysioExtractor  # old name, kept for callers of earlier versions
