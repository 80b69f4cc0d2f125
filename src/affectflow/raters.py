"""Rater fusion and label derivation: several raters' continuous traces → one gold standard; traces → classes.

A pure-Python replacement of the fusion and class-derivation parts of the MuSe-Toolbox (Stappen et al., 2021,
arXiv:2107.11757), which needs Octave (for CTW) or Docker. All traces of one recording share a time grid:
``Y`` has shape ``(T, R)`` (time steps × raters); NaN marks a step a rater did not rate. Every fusion works per
recording and ignores NaN: at each step the weights are renormalised over the raters that rated it.

Fusion methods (:func:`fuse`)
-----------------------------
``mean``
    ``g(t) = Σ_r y_r(t) / R``.
``ewe`` (evaluator-weighted estimator, Grimm & Kroschel, 2005)
    ``g(t) = Σ_r w_r y_r(t) / Σ_r w_r`` with ``w_r = max(ρ(y_r, ȳ_{-r}), 0)``, the Pearson correlation of rater
    ``r`` with the mean of the **other** raters (leave-one-out, so a rater does not vouch for itself); raters that
    disagree (``ρ ≤ 0``) get weight 0; if every weight is 0 the mean is used. With ``R = 2`` both raters get the
    same weight (their correlation), i.e. the mean.
``raaw`` (rater-aligned annotation weighting; MuSe-Toolbox, used for the MuSe 2021-2023 Ulm-TSST labels)
    As the toolbox describes it: "RAAW aligns the annotations in a translation-invariant way before weighting them
    based on inter-rater agreement between the raw annotations". Implemented as
    1. standardise each rater's trace per recording: ``z_r = (y_r − mean(y_r)) / std(y_r)``;
    2. align: shift each ``z_r`` by its lag ``ℓ_r`` (:func:`estimate_lags` with ``max_lag``: a rigid time
       translation found by cross-correlation; the toolbox uses generalised canonical time warping, GCTW, which
       also warps time non-uniformly: that is not reproduced here);
    3. weight with EWE weights computed on the **unaligned** standardised traces (the "raw annotations");
    4. ``g(t) = Σ_r w_r z_r(t + ℓ_r) / Σ_r w_r``; then, with ``rescale=True`` (default), ``g`` is mapped back to
       the raters' mean level and spread (``g · mean_r std(y_r) + mean_r mean(y_r)``) so it stays on the rating
       scale.

Lag compensation (``max_lag`` for ``mean`` and ``ewe``)
    Annotators react late, each by their own delay. With ``max_lag > 0`` each rater is first shifted by a lag
    ``ℓ_r`` found by cross-correlation (:func:`estimate_lags`: against the most typical rater within
    ``±max_lag`` steps, refined against the mean of the other aligned raters) and expressed relative to the
    **earliest** rater (``ℓ = 0``): ``y_r(t + ℓ_r)`` is aligned with it; shifted-in steps are NaN. ``ℓ_r > 0``
    means rater ``r`` reacted ``ℓ_r`` steps later than the earliest rater. Only relative lags are identifiable
    from the ratings; a delay common to all raters stays (compensate it at training time if needed).

Class derivation (:func:`segment_classes`, MuSe-Sent's 5 classes)
-------------------------------------------------------------------
Per segment, a statistic of the fused trace over the segment's steps (``mean`` by default; ``median``, ``last``)
is binned into ``K`` classes ``0 .. K-1`` from low to high by thresholds ``θ_1 < … < θ_{K-1}``:
``class = #{k : s > θ_k}``. ``thresholds="quantile"`` (default) takes the ``k/K`` quantiles of the statistic over
all segments given (equal-frequency classes, as the toolbox's balanced class option); or give the thresholds
explicitly (e.g. ``[-0.45, -0.15, 0.15, 0.45]`` on mean valence in [-1, 1], the rule of
:func:`affectflow.synthetic.muse.write_muse_task`). MuSe-Sent 2021 derived its 5 classes by clustering per-segment
statistics of the valence and arousal gold standards with the toolbox; the equal-frequency binning of one
statistic implemented here is a simpler, documented rule, not a reproduction of those clusters.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from affectflow.corpus.staging import check_new_folder, staged_folder
from affectflow.errors import AffectflowWarning, ConfigError, ImportFormatError
from affectflow.fsutil import check_names

METHODS = ("mean", "ewe", "raaw")
STATISTICS = ("mean", "median", "last")


@dataclass
class FusionResult:
    """A fused trace and how it was made.

    Attributes
    ----------
    values:
        ``(T,)`` fused trace (NaN where no rater rated).
    weights:
        ``(R,)`` rater weights (normalised to sum 1).
    lags:
        ``(R,)`` lag per rater in steps (0 without lag compensation).
    method:
        The method.
    """

    values: np.ndarray
    weights: np.ndarray
    lags: np.ndarray
    method: str
    info: dict = field(default_factory=dict)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def _others_mean(Y: np.ndarray, r: int) -> np.ndarray:
    rest = np.delete(Y, r, axis=1)
    with np.errstate(invalid="ignore"), _quiet():
        return np.nanmean(rest, axis=1)


class _quiet:
    def __enter__(self):
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        self._w.__exit__(*a)


def shift(y: np.ndarray, lag: int) -> np.ndarray:
    """``y(t + lag)`` on the same grid: ``out[t] = y[t + lag]``, NaN where that falls outside."""
    out = np.full(len(y), np.nan)
    if lag >= 0:
        out[: len(y) - lag] = y[lag:]
    else:
        out[-lag:] = y[: len(y) + lag]
    return out


def _best_lag(y: np.ndarray, ref: np.ndarray, max_lag: int) -> int:
    best, best_l = -np.inf, 0
    for lag in range(-max_lag, max_lag + 1):
        c = _pearson(shift(y, lag), ref)
        if np.isfinite(c) and (c > best + 1e-12 or (abs(c - best) <= 1e-12 and abs(lag) < abs(best_l))):
            best, best_l = c, lag
    return best_l


def estimate_lags(Y: np.ndarray, max_lag: int) -> np.ndarray:
    """Lag per rater in steps, relative to the earliest rater (see the module docstring).

    1. reference rater ``q``: the one with the highest mean Pearson correlation with the others;
    2. ``ℓ_r = argmax_{|ℓ| ≤ max_lag} ρ(y_r(t + ℓ), y_q(t))`` (pairwise, so one late rater does not blur the
       reference);
    3. refinement: ``ℓ_r = argmax ρ(y_r(t + ℓ), mean_{s≠r} y_s(t + ℓ_s))`` with the lags of step 2, searched
       within ``max_lag`` of the step-2 lag;
    4. ``ℓ_r ← ℓ_r − min_s ℓ_s``: the earliest rater has lag 0, and every trace is aligned to it.
    """
    T, R = Y.shape
    lags = np.zeros(R, dtype=int)
    if max_lag <= 0 or R < 2:
        return lags
    C = np.array([[_pearson(Y[:, a], Y[:, b]) if a != b else np.nan for b in range(R)] for a in range(R)])
    with _quiet():
        typical = np.nan_to_num(np.nanmean(C, axis=1), nan=-np.inf)
    q = int(np.argmax(typical))
    lags = np.array([0 if r == q else _best_lag(Y[:, r], Y[:, q], max_lag) for r in range(R)])
    aligned = np.stack([shift(Y[:, r], int(lags[r])) for r in range(R)], axis=1)
    refined = lags.copy()
    for r in range(R):
        ref = _others_mean(aligned, r)
        refined[r] = lags[r] + _best_lag(aligned[:, r], ref, max_lag) if np.isfinite(ref).sum() > 2 else lags[r]
    return refined - refined.min()


def ewe_weights(Y: np.ndarray) -> np.ndarray:
    """EWE weights ``max(ρ(y_r, mean of the other raters), 0)``, normalised to sum 1 (equal if all are 0)."""
    T, R = Y.shape
    if R == 1:
        return np.ones(1)
    w = np.array([_pearson(Y[:, r], _others_mean(Y, r)) for r in range(R)])
    w = np.where(np.isfinite(w), np.maximum(w, 0.0), 0.0)
    return w / w.sum() if w.sum() > 0 else np.full(R, 1.0 / R)


def _weighted(Y: np.ndarray, w: np.ndarray) -> np.ndarray:
    ok = np.isfinite(Y)
    W = np.where(ok, w[None, :], 0.0)
    num = np.where(ok, Y, 0.0) @ w
    den = W.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def fuse(traces: np.ndarray, method: str = "mean", *, max_lag: int = 0, rescale: bool = True) -> FusionResult:
    """Fuse raters' traces of one recording (see the module docstring for the formulas).

    Parameters
    ----------
    traces:
        ``(T, R)``: ``T`` time steps on a shared grid, ``R`` raters; NaN = not rated.
    method:
        ``mean``, ``ewe`` or ``raaw``.
    max_lag:
        Largest lag (steps) compensated per rater (``mean``/``ewe``: optional, default 0; ``raaw``: its
        alignment range, default 0 = no shift).
    rescale:
        ``raaw`` only: map the fused standardised trace back to the raters' mean level and spread.

    Returns
    -------
    FusionResult
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown fusion method {method!r}; choose one of {list(METHODS)}.")
    Y = np.asarray(traces, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] < 1 or Y.shape[0] < 1:
        raise ConfigError(f"Rater traces must have shape (T, R) with T, R >= 1; got {Y.shape}.")
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 0:
        raise ConfigError(f"max_lag must be a non-negative number of steps, got {max_lag!r}.")
    R = Y.shape[1]
    info: dict = {}
    if method == "raaw":
        with _quiet():
            mu, sd = np.nanmean(Y, 0), np.nanstd(Y, 0)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        Z = (Y - mu) / sd
        w = ewe_weights(Z)  # agreement on the raw (unaligned) standardised annotations
        lags = estimate_lags(Z, int(max_lag))
        A = np.stack([shift(Z[:, r], int(lags[r])) for r in range(R)], axis=1)
        g = _weighted(A, w)
        if rescale:
            g = g * float(np.nanmean(sd)) + float(np.nanmean(mu))
        info = {"rater_mean": mu.tolist(), "rater_std": sd.tolist()}
        return FusionResult(g, w, lags, method, info)
    lags = estimate_lags(Y, int(max_lag))
    A = np.stack([shift(Y[:, r], int(lags[r])) for r in range(R)], axis=1) if max_lag else Y
    w = np.full(R, 1.0 / R) if method == "mean" else ewe_weights(A)
    return FusionResult(_weighted(A, w), w, lags, method, info)


def segment_statistic(values: np.ndarray, segment_ids: np.ndarray, statistic: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Per segment (in order of first appearance): its id and ``mean``/``median``/``last`` of the finite values."""
    if statistic not in STATISTICS:
        raise ConfigError(f"Unknown segment statistic {statistic!r}; choose one of {list(STATISTICS)}.")
    values = np.asarray(values, float)
    segment_ids = np.asarray(segment_ids)
    ids = list(dict.fromkeys(segment_ids.tolist()))
    out = []
    for s in ids:
        v = values[(segment_ids == s) & np.isfinite(values)]
        if not len(v):
            out.append(np.nan)
        elif statistic == "mean":
            out.append(float(v.mean()))
        elif statistic == "median":
            out.append(float(np.median(v)))
        else:
            out.append(float(v[-1]))
    return np.array(ids), np.array(out)


def class_thresholds(stats: np.ndarray, n_classes: int = 5) -> np.ndarray:
    """The ``k / K`` quantiles (k = 1..K-1) of the finite statistics: equal-frequency class boundaries."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ConfigError(f"n_classes must be an integer >= 2, got {n_classes!r}.")
    s = np.asarray(stats, float)
    s = s[np.isfinite(s)]
    if not len(s):
        raise ConfigError("No finite segment statistics to derive class thresholds from.")
    return np.quantile(s, np.arange(1, n_classes) / n_classes)


def segment_classes(stats: np.ndarray, thresholds: Sequence[float] | str = "quantile", n_classes: int = 5) -> np.ndarray:
    """Class per segment: ``#{k : s > θ_k}`` (0 = lowest); ``-1`` for a segment without a finite statistic."""
    s = np.asarray(stats, float)
    th = class_thresholds(s, n_classes) if isinstance(thresholds, str) else np.asarray(thresholds, float)
    if isinstance(thresholds, str) and thresholds != "quantile":
        raise ConfigError(f"thresholds must be 'quantile' or a list of numbers, got {thresholds!r}.")
    if len(th) and np.any(np.diff(th) < 0):
        raise ConfigError(f"Class thresholds must be increasing, got {th.tolist()}.")
    cls = (s[:, None] > th[None, :]).sum(1)
    return np.where(np.isfinite(s), cls, -1).astype(int)


# ---------------------------------------------------------------------------------------------------- files
def fuse_rater_files(
    source: str,
    out: str,
    *,
    method: str = "ewe",
    max_lag_s: float = 0.0,
    n_classes: int | None = None,
    thresholds: Sequence[float] | str = "quantile",
    statistic: str = "mean",
) -> dict:
    """Fuse every ``<source>/<Id>.csv`` of raters into ``<out>/<Id>.csv``; optionally derive segment classes.

    Input file: a time column, ``timestamp`` (ms) or ``time`` (s), strictly increasing; optionally ``segment_id``;
    every other column is one rater's trace (numeric; empty = not rated). Output (a new folder, all or nothing):
    ``<Id>.csv`` with the same time column, ``value`` (the fused trace) and ``segment_id`` if given (the MuSe
    label layout), ``fusion.json`` (method, per recording: raters, weights, lags in steps and seconds), and with
    ``n_classes``: ``classes/<Id>.csv`` with ``segment_id,class_id`` (MuSe-Sent layout; quantile thresholds are
    computed over the segments of all recordings together) and the thresholds in ``fusion.json``.

    Returns
    -------
    dict
        The content of ``fusion.json``.
    """
    src = Path(source)
    if not src.is_dir():
        raise ImportFormatError(f"Rater folder {str(src)!r} does not exist (expected <Id>.csv files of raters).")
    check_new_folder(out, "fused labels")
    if not (isinstance(max_lag_s, (int, float)) and not isinstance(max_lag_s, bool) and np.isfinite(max_lag_s)
            and max_lag_s >= 0):
        raise ConfigError(f"max_lag_s must be a finite number >= 0 (seconds), got {max_lag_s!r}.")
    files = sorted(f for f in src.iterdir() if f.suffix == ".csv" and not f.name.startswith("."))
    if not files:
        raise ImportFormatError(f"No <Id>.csv files in {str(src)!r}.")
    check_names("recording id (file name)", [f.stem for f in files], where=str(src), error=ImportFormatError)
    if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer))
                                  or n_classes < 2):
        raise ConfigError(f"n_classes must be an integer >= 2, got {n_classes!r}.")
    if n_classes and not isinstance(thresholds, str) and len(thresholds) != n_classes - 1:
        raise ConfigError(f"{n_classes} classes need {n_classes - 1} thresholds; got {len(thresholds)}: "
                          f"{list(thresholds)}.")
    errors, loaded = [], {}
    for f in files:
        try:
            df = pd.read_csv(f)
        except Exception as e:  # noqa: BLE001 - reported per file
            errors.append(f"{f}: cannot be read as CSV ({type(e).__name__}: {e})")
            continue
        tcol = "timestamp" if "timestamp" in df.columns else "time" if "time" in df.columns else None
        if tcol is None:
            errors.append(f"{f}: no 'timestamp' (ms) or 'time' (s) column; columns {list(df.columns)[:6]}")
            continue
        raters = [c for c in df.columns if c not in (tcol, "segment_id")]
        if not raters:
            errors.append(f"{f}: no rater columns besides {tcol}/segment_id")
            continue
        num = df[raters].apply(pd.to_numeric, errors="coerce")
        bad = [c for c in raters if (num[c].isna() & df[c].notna()).any()]
        t = pd.to_numeric(df[tcol], errors="coerce").to_numpy(float)
        if bad:
            errors.append(f"{f}: non-numeric values in rater columns {bad[:6]}")
            continue
        infinite = {c: int(np.isinf(num[c].to_numpy(float)).sum()) for c in raters}
        infinite = {c: n for c, n in infinite.items() if n}
        if infinite:  # not a rating, and not "not rated" either: refused rather than turned into gaps
            errors.append(f"{f}: infinite values in rater columns {dict(list(infinite.items())[:6])} (cells per "
                          "column); leave a cell empty for 'not rated'")
            continue
        if not np.all(np.isfinite(t)) or (len(t) > 1 and not np.all(np.diff(t) > 0)):
            errors.append(f"{f}: {tcol} must be numeric and strictly increasing")
            continue
        loaded[f.stem] = (df, tcol, raters, num.to_numpy(float), t)
    if errors:
        raise ImportFormatError(f"Rater fusion found {len(errors)} problem(s); nothing was written:\n"
                                + "\n".join(f"  - {e}" for e in errors[:25]))
    report: dict = {"method": method, "max_lag_s": max_lag_s, "recordings": {}}
    fused, segs = {}, {}
    for rid, (df, tcol, raters, Y, t) in loaded.items():
        secs = t / 1000.0 if tcol == "timestamp" else t
        step = float(np.median(np.diff(secs))) if len(secs) > 1 else 1.0
        lag_steps = int(round(max_lag_s / step)) if step > 0 else 0
        res = fuse(Y, method, max_lag=lag_steps)
        fused[rid] = res
        report["recordings"][rid] = {"raters": raters, "weights": res.weights.round(6).tolist(),
                                     "lags_steps": res.lags.tolist(), "lags_s": (res.lags * step).round(6).tolist()}
        if n_classes and "segment_id" in df.columns:
            segs[rid] = segment_statistic(res.values, df["segment_id"].to_numpy(), statistic)
    th = None
    if n_classes:
        if not segs:
            raise ImportFormatError("Classes need a 'segment_id' column in the rater files; none has one.")
        pooled = np.concatenate([s for _, s in segs.values()])
        th = class_thresholds(pooled, n_classes) if isinstance(thresholds, str) else np.asarray(thresholds, float)
        if not np.all(np.isfinite(th)) or np.any(np.diff(th) <= 0):
            distinct = len(np.unique(pooled[np.isfinite(pooled)]))
            raise ConfigError(
                f"{n_classes} classes need {n_classes - 1} strictly increasing, finite thresholds; got "
                f"{np.round(th, 6).tolist()}" + (f" (the {len(pooled)} segment statistics have only {distinct} "
                                                 "distinct values, so equal-frequency thresholds repeat)"
                                                 if isinstance(thresholds, str) else "")
                + f". Only {len(np.unique(th[np.isfinite(th)])) + 1} classes could occur while the labels would "
                "claim more: ask for fewer classes or give thresholds."
            )
        all_cls = segment_classes(pooled, th, n_classes)
        counts = [int((all_cls == k).sum()) for k in range(n_classes)]
        report["classes"] = {"n_classes": n_classes, "statistic": statistic, "thresholds": th.tolist(),
                             "segments_per_class": counts, "segments_without_value": int((all_cls < 0).sum())}
        empty = [k for k, n in enumerate(counts) if n == 0]
        if empty and isinstance(thresholds, str):
            distinct = len(np.unique(pooled[np.isfinite(pooled)]))
            raise ConfigError(
                f"{n_classes} equal-frequency classes cannot be made from these segments: classes {empty} would be "
                f"empty (segments per class {counts}; the {len(pooled)} segment statistics have only {distinct} "
                f"distinct values), so only {n_classes - len(empty)} classes could occur while the labels would "
                "claim more. Ask for fewer classes or give thresholds."
            )
        if empty:
            warnings.warn(f"Classes {empty} of {n_classes} have no segment with these thresholds "
                          f"({np.round(th, 6).tolist()}); segments per class: {counts}.", AffectflowWarning,
                          stacklevel=2)
    with staged_folder(out, what="fused labels") as tmp:
        for rid, (df, tcol, raters, Y, t) in loaded.items():
            o = pd.DataFrame({tcol: df[tcol], "value": fused[rid].values})
            if "segment_id" in df.columns:
                o["segment_id"] = df["segment_id"]
            o.to_csv(tmp / f"{rid}.csv", index=False, float_format="%.6f")
            if rid in segs and th is not None:
                (tmp / "classes").mkdir(exist_ok=True)
                ids, stats = segs[rid]
                pd.DataFrame({"segment_id": ids, "class_id": segment_classes(stats, th, n_classes)}).to_csv(
                    tmp / "classes" / f"{rid}.csv", index=False)

        (tmp / "fusion.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
