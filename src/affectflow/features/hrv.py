"""Fast sliding-window HRV time-domain features, equal to NeuroKit2's ``hrv_time`` on every window.

The MuSe 2023 "Phys" features (Zhang et al., MuSe-Personalisation 3rd place, section 3.1.3) are 18 time-domain HRV
indices computed with NeuroKit2 on 4 s windows of the 1000 Hz ECG every 0.5 s. Calling ``nk.hrv_time`` once per
window costs about 1 ms (a pandas frame, SDANN/SDNNI/TINN loops), i.e. seconds per recording; this module computes
the same numbers for all windows at once with numpy.

Windows
-------
Output frame ``k`` stands for the instant ``t_k = k / rate_hz`` (hop ``1 / rate_hz``, default 0.5 s). Its window
is ``W = round(win_dur * fs)`` samples centred there: with ``c_k = round((t_k - start_time) * fs)`` the sample of
``t_k``, the window is the half-open sample range ``[c_k - W // 2, c_k - W // 2 + W)``.

Edge handling (``edge``) — "the head and tail of the raw data are padded with neighbouring data" in the paper:

- ``"shift"`` (default): a window that would stick out of the recording is shifted inwards so that it lies fully
  inside it, i.e. it is "padded" with the neighbouring recorded data on the other side instead of zeros or
  mirrored beats. Every window then holds ``win_dur`` seconds of real signal: frames closer than ``win_dur / 2``
  to the start all use the window ``[0, W)``, frames closer than ``win_dur / 2`` to the end all use
  ``[n - W, n)``. Mirroring R-peaks at the border (reflect padding) would invent an RR interval across the border,
  so it is not offered. If the recording is shorter than ``W`` samples, every window is the whole recording.
- ``"truncate"``: the window is clipped to the recording (fewer beats near the edges).

Frames whose instant lies outside the recording (before its first or after its last sample) are NaN.

Which intervals enter a window: the R-peaks whose sample index ``p`` satisfies ``start <= p < end``, passed to
``nk.hrv_time(peaks_in_window, sampling_rate=fs)``; the RR intervals are the differences of consecutive peaks of
that subset (``np.diff(peaks) / fs * 1000`` ms), so an interval counts if both of its beats are inside the window.
With fewer than two peaks NeuroKit2 raises; those windows are NaN rows here.

The 18 features
---------------
NeuroKit2 0.2.13 ``hrv_time`` returns 25 indices. Kept (in this order, columns prefixed ``HRV_``):
MeanNN, SDNN, RMSSD, SDSD, CVNN, CVSD, MedianNN, MadNN, MCVNN, IQRNN, SDRMSSD, Prc20NN, Prc80NN, pNN50, pNN20,
MinNN, MaxNN, HTI. Dropped:

- SDANN1/2/5 and SDNNI1/2/5: averages over 1, 2 and 5 minute segments; NeuroKit2 returns NaN for them unless the
  input spans at least 3, 6 and 15 minutes, so they are NaN on every 4 s window.
- TINN: the base width of a triangle least-squares fitted to the RR histogram (1/128 s bins). With the 3-7
  intervals of a 4 s window the histogram has one or two counts per bin and the fit is degenerate (it is 0 on most
  windows, or a bin width chosen by ties). Dropping it leaves exactly the 18 features the paper reports.

Definitions (all from NeuroKit2 0.2.13's source, reproduced exactly; ``rri`` in ms, ``d = diff(rri)``):
MeanNN = mean(rri); SDNN = std(rri, ddof=1); RMSSD = sqrt(mean(d²)); SDSD = std(d, ddof=1); CVNN = SDNN/MeanNN;
CVSD = RMSSD/MeanNN; MedianNN = median(rri); MadNN = 1.4826 · median(|rri − median(rri)|);
MCVNN = MadNN/MedianNN; IQRNN = percentile(rri, 75) − percentile(rri, 25) (linear interpolation, as
``scipy.stats.iqr``); SDRMSSD = SDNN/RMSSD; Prc20NN, Prc80NN = percentile(rri, 20 / 80) (linear);
pNN50, pNN20 = 100 · #(|d| > 50 / 20 ms) / (len(d) + 1) (note: divided by the number of intervals, not of
differences); MinNN, MaxNN; HTI = len(rri) / max(histogram(rri, bins=arange(0, max(rri) + 7.8125, 7.8125))).
A statistic of too few values is NaN as in NeuroKit2 (SDNN with one interval, RMSSD with one interval, SDSD with
fewer than two differences); ratios follow IEEE rules (x/0 = inf, 0/0 = NaN) as NeuroKit2's numpy scalars do.

Exactness: windows are grouped by their number of intervals and every statistic is computed with the same numpy
reductions NeuroKit2 applies to one window, along the rows of a (windows × intervals) matrix, so the results are
the same floating-point numbers (``benchmarks/bench_hrv.py`` found every value bit-identical on 3600 windows of a
30 min ECG; the tests require a relative error ≤ 1e-6 and equal NaN/inf patterns).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from affectflow.features.base import feature_frame

HRV_FEATURES: tuple[str, ...] = (
    "MeanNN",
    "SDNN",
    "RMSSD",
    "SDSD",
    "CVNN",
    "CVSD",
    "MedianNN",
    "MadNN",
    "MCVNN",
    "IQRNN",
    "SDRMSSD",
    "Prc20NN",
    "Prc80NN",
    "pNN50",
    "pNN20",
    "MinNN",
    "MaxNN",
    "HTI",
)
"""The 18 NeuroKit2 ``hrv_time`` indices kept (see the module docstring for why these)."""

HRV_COLUMNS: tuple[str, ...] = tuple("HRV_" + f for f in HRV_FEATURES)
"""Column names, as NeuroKit2 names them (``HRV_`` prefix)."""

EDGE_MODES = ("shift", "truncate")
_BINSIZE = (1 / 128) * 1000  # NeuroKit2's default HTI/TINN histogram bin width in ms
_MAD_CONSTANT = 1.4826  # nk.mad default
_CHUNK = 8192  # windows processed at once (bounds memory for long recordings)


def frame_times(n_samples: int, sampling_rate: float, rate_hz: float, start_time: float = 0.0) -> np.ndarray:
    """Output instants ``k / rate_hz`` covering a recording.

    Parameters
    ----------
    n_samples:
        Number of samples of the recording.
    sampling_rate:
        Sampling rate ``fs`` in Hz.
    rate_hz:
        Output frame rate in Hz.
    start_time:
        Time of the first sample in seconds.

    Returns
    -------
    numpy.ndarray
        ``float64`` array of shape ``(K,)``: ``t_k = k / rate_hz`` for ``k = 0 .. K-1``, with ``K - 1`` the last
        ``k`` whose instant is at or before the last sample, ``start_time + (n_samples - 1) / fs``. Empty if the
        recording is empty or ends before time 0.
    """
    if n_samples <= 0 or rate_hz <= 0:
        return np.zeros(0)
    t_end = start_time + (n_samples - 1) / sampling_rate
    if t_end < 0:
        return np.zeros(0)
    k = int(np.floor(t_end * rate_hz + 1e-9)) + 1
    return np.arange(k) / rate_hz


def frame_samples(times: np.ndarray, sampling_rate: float, start_time: float = 0.0) -> np.ndarray:
    """Sample index ``round((t - start_time) * fs)`` of each instant (may lie outside ``[0, n)``)."""
    return np.rint((np.asarray(times, dtype=np.float64) - start_time) * sampling_rate).astype(np.int64)


def window_bounds(
    centres: np.ndarray, n_samples: int, win_samples: int, edge: str = "shift"
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ranges ``[start, end)`` of windows of ``win_samples`` samples centred on ``centres``.

    Parameters
    ----------
    centres:
        Centre sample of each window, shape ``(K,)`` (integers).
    n_samples:
        Length of the recording in samples.
    win_samples:
        Window length ``W`` in samples; the window of centre ``c`` starts at ``c - W // 2``.
    edge:
        ``"shift"``: windows sticking out of ``[0, n)`` are moved inwards to lie fully inside (or span the whole
        recording if it is shorter than ``W``); ``"truncate"``: they are clipped to ``[0, n)``.

    Returns
    -------
    tuple of numpy.ndarray
        ``starts`` and ``ends``, ``int64`` arrays of shape ``(K,)``, ``0 <= start <= end <= n_samples``.
    """
    if edge not in EDGE_MODES:
        raise ValueError(f"edge must be one of {EDGE_MODES}, got {edge!r}")
    c = np.asarray(centres, dtype=np.int64)
    w = int(win_samples)
    starts = c - w // 2
    ends = starts + w
    if edge == "shift":
        starts = np.clip(starts, 0, max(n_samples - w, 0))
        ends = np.minimum(starts + w, n_samples)
    else:
        starts = np.clip(starts, 0, n_samples)
        ends = np.clip(ends, 0, n_samples)
    return starts, ends


def hrv_time_windows(
    peaks: np.ndarray | Sequence[int], sampling_rate: float, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """The 18 HRV time-domain features of NeuroKit2 on many windows of one R-peak series, vectorised.

    Equal to ``nk.hrv_time(peaks[(peaks >= s) & (peaks < e)], sampling_rate)[HRV_COLUMNS]`` for every window
    ``[s, e)`` (NaN rows where that call raises, i.e. fewer than two peaks); see the module docstring for the
    definitions.

    Parameters
    ----------
    peaks:
        R-peak sample indices, shape ``(m,)``, non-decreasing.
    sampling_rate:
        Sampling rate of the signal the peaks index, in Hz.
    starts, ends:
        Window sample ranges ``[start, end)``, shape ``(K,)`` each.

    Returns
    -------
    numpy.ndarray
        ``float64`` array of shape ``(K, 18)``, columns in :data:`HRV_FEATURES` order.
    """
    p = np.asarray(peaks)
    if p.ndim != 1:
        raise ValueError(f"peaks must be 1-D, got shape {p.shape}")
    if p.size > 1 and np.any(np.diff(p) < 0):
        raise ValueError("peaks must be sorted (non-decreasing sample indices)")
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    out = np.full((starts.size, len(HRV_FEATURES)), np.nan)
    if p.size < 2 or starts.size == 0:
        return out
    # Exactly what NeuroKit2 does on a window's peaks: np.diff(peaks) / sampling_rate * 1000 -> same floats.
    rri_all = np.diff(p) / sampling_rate * 1000
    drr_all = np.diff(rri_all)
    i0 = np.searchsorted(p, starts, side="left")
    i1 = np.searchsorted(p, ends, side="left")
    n_rr = np.maximum(i1 - i0 - 1, 0)
    # HTI histogram edges k * binsize (as np.arange makes them), far enough for the longest interval a window holds
    longest = min(float(np.max(rri_all)), float(np.max(ends - starts, initial=0)) / sampling_rate * 1000)
    edges_all = np.arange(0, max(longest, 0.0) + 2 * _BINSIZE, _BINSIZE)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for lo in range(0, starts.size, _CHUNK):
            sl = slice(lo, lo + _CHUNK)
            counts = n_rr[sl]
            first = i0[sl]
            block = out[sl]
            for c in np.unique(counts):
                if c < 1:
                    continue
                rows = np.flatnonzero(counts == c)
                idx = first[rows, None] + np.arange(c)
                rri = rri_all[idx]
                d = drr_all[idx[:, : c - 1]] if c > 1 else np.zeros((rows.size, 0))
                block[rows] = _features(rri, d, edges_all)
    return out


def _features(rri: np.ndarray, d: np.ndarray, edges_all: np.ndarray) -> np.ndarray:
    """Features of ``W`` windows of ``c`` intervals each: ``rri`` (W, c) in ms, ``d`` = diff(rri) (W, c-1)."""
    w, c = rri.shape
    f = np.empty((w, len(HRV_FEATURES)))
    mean_nn = np.mean(rri, axis=1)
    sdnn = np.nanstd(rri, axis=1, ddof=1) if c > 1 else np.full(w, np.nan)
    rmssd = np.sqrt(np.mean(d**2, axis=1)) if d.shape[1] > 0 else np.full(w, np.nan)
    sdsd = np.nanstd(d, axis=1, ddof=1) if d.shape[1] > 1 else np.full(w, np.nan)
    median_nn = np.median(rri, axis=1)
    mad_nn = np.median(np.abs(rri - median_nn[:, None]), axis=1) * _MAD_CONSTANT
    q20, q25, q75, q80 = np.percentile(rri, [20, 25, 75, 80], axis=1)
    absd = np.abs(d)
    pnn50 = np.sum(absd > 50, axis=1) / (d.shape[1] + 1) * 100
    pnn20 = np.sum(absd > 20, axis=1) / (d.shape[1] + 1) * 100
    min_nn = np.min(rri, axis=1)
    max_nn = np.max(rri, axis=1)
    f[:, 0] = mean_nn
    f[:, 1] = sdnn
    f[:, 2] = rmssd
    f[:, 3] = sdsd
    f[:, 4] = sdnn / mean_nn
    f[:, 5] = rmssd / mean_nn
    f[:, 6] = median_nn
    f[:, 7] = mad_nn
    f[:, 8] = mad_nn / median_nn
    f[:, 9] = q75 - q25
    f[:, 10] = sdnn / rmssd
    f[:, 11] = q20
    f[:, 12] = q80
    f[:, 13] = pnn50
    f[:, 14] = pnn20
    f[:, 15] = min_nn
    f[:, 16] = max_nn
    f[:, 17] = c / _hist_max(rri, max_nn, edges_all)
    return f


def _hist_max(rri: np.ndarray, max_nn: np.ndarray, edges_all: np.ndarray) -> np.ndarray:
    """Per row, the largest count of ``np.histogram(row, bins=np.arange(0, max(row) + b, b))``.

    numpy puts ``x`` in bin ``j`` when ``e_j <= x < e_{j+1}``, the last bin also taking ``x == e_last``, and drops
    values beyond the edges. The edges are ``k * b`` for every row; only the number of edges depends on the row.
    """
    n_edges = np.ceil((max_nn + _BINSIZE) / _BINSIZE).astype(np.int64)  # len(np.arange(0, max + b, b))
    last = n_edges - 1
    b = np.searchsorted(edges_all, rri, side="right") - 1  # global bin: e_b <= x < e_{b+1}
    on_last_edge = (b == last[:, None]) & (rri == edges_all[last][:, None])
    b = np.where(on_last_edge, b - 1, b)
    valid = (b >= 0) & (b <= last[:, None] - 1)
    # distinct negative fillers so that dropped values never form a run
    filler = -1 - np.arange(rri.shape[1])[None, :]
    b = np.sort(np.where(valid, b, filler), axis=1)
    c = b.shape[1]
    pos = np.arange(c)[None, :]
    new_run = np.ones_like(b, dtype=bool)
    new_run[:, 1:] = b[:, 1:] != b[:, :-1]
    run_start = np.maximum.accumulate(np.where(new_run, pos, 0), axis=1)
    run_len = np.where(b >= 0, pos - run_start + 1, 0)
    return run_len.max(axis=1).astype(np.float64)


def sliding_hrv_time(
    peaks: np.ndarray | Sequence[int],
    sampling_rate: float,
    n_samples: int,
    *,
    rate_hz: float = 2.0,
    win_dur: float = 4.0,
    edge: str = "shift",
    start_time: float = 0.0,
) -> pd.DataFrame:
    """HRV time-domain features on windows of ``win_dur`` s centred every ``1 / rate_hz`` s.

    Parameters
    ----------
    peaks:
        R-peak sample indices (0 = first sample of the recording), sorted.
    sampling_rate:
        Sampling rate ``fs`` of the ECG, Hz.
    n_samples:
        Length of the ECG in samples.
    rate_hz:
        Output frame rate (hop ``1 / rate_hz`` s).
    win_dur:
        Window duration in seconds (``round(win_dur * fs)`` samples).
    edge:
        ``"shift"`` or ``"truncate"`` (see the module docstring).
    start_time:
        Time of sample 0 in seconds.

    Returns
    -------
    pandas.DataFrame
        ``time`` (float64 s, ``k / rate_hz``, see :func:`frame_times`) then the 18 :data:`HRV_COLUMNS`
        (float32); shape ``(K, 19)``. Frames outside the recording and windows with fewer than two R-peaks are NaN.
    """
    times = frame_times(n_samples, sampling_rate, rate_hz, start_time)
    centres = frame_samples(times, sampling_rate, start_time)
    win = max(round(win_dur * sampling_rate), 1)
    starts, ends = window_bounds(centres, n_samples, win, edge)
    values = hrv_time_windows(peaks, sampling_rate, starts, ends)
    outside = (centres < 0) | (centres > n_samples - 1)
    values[outside] = np.nan
    return feature_frame(times, values, HRV_COLUMNS)


def hrv_time_windows_reference(
    peaks: np.ndarray | Sequence[int], sampling_rate: float, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Slow reference: one ``nk.hrv_time`` call per window (for tests and benchmarks).

    Parameters
    ----------
    peaks, sampling_rate, starts, ends:
        As :func:`hrv_time_windows`.

    Returns
    -------
    numpy.ndarray
        ``(K, 18)`` float64; a NaN row where ``nk.hrv_time`` raises (fewer than two peaks in the window).
    """
    import neurokit2 as nk

    p = np.asarray(peaks)
    out = np.full((len(starts), len(HRV_FEATURES)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (s, e) in enumerate(zip(starts, ends)):
            sub = p[(p >= s) & (p < e)]
            try:
                res = nk.hrv_time(sub, sampling_rate=sampling_rate)
            except (ValueError, IndexError, ZeroDivisionError):
                continue
            out[i] = res[list(HRV_COLUMNS)].to_numpy(dtype=np.float64)[0]
    return out
