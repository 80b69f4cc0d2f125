"""Benchmark: vectorised sliding-window HRV vs NeuroKit2 ``hrv_time`` per window; physio extractor speed.

Usage::

    python benchmarks/bench_hrv.py            # 30 min of 1000 Hz ECG; extractors on 10 min of ECG+RSP+EDA
    python benchmarks/bench_hrv.py --quick    # 5 min of ECG; extractors on 2 min

Part 1 simulates an ECG with NeuroKit2 (seeded), finds the R-peaks once (``nk.ecg_clean`` + ``nk.ecg_findpeaks``),
builds the 4 s / 0.5 s windows of :mod:`affectflow.features.hrv` and times (a) one ``nk.hrv_time`` call per window
and (b) :func:`affectflow.features.hrv.hrv_time_windows` on all windows. It prints the largest relative error per
feature, whether the NaN patterns agree, the speed-up and the windows per second of both.

Part 2 writes a simulated ECG+RSP+EDA recording (1000 Hz) to an EDF file and prints the real-time factor
(processing time / signal duration) of each physio extractor on it, file reading included.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _hrv_part(minutes: float, seed: int) -> int:
    import neurokit2 as nk

    from affectflow.features.hrv import (
        HRV_FEATURES,
        frame_samples,
        frame_times,
        hrv_time_windows,
        hrv_time_windows_reference,
        window_bounds,
    )
    from affectflow.features.physio import detect_rpeaks

    fs = 1000
    print(f"== HRV: {minutes:g} min of {fs} Hz ECG (nk.ecg_simulate, random_state={seed}) ==")
    t = time.perf_counter()
    ecg = nk.ecg_simulate(
        duration=int(minutes * 60), sampling_rate=fs, heart_rate=72, heart_rate_std=6, random_state=seed
    )
    print(f"simulate: {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    peaks = detect_rpeaks(ecg, fs)
    print(f"R-peaks (ecg_clean + ecg_findpeaks): {peaks.size} beats in {time.perf_counter() - t:.2f} s")
    n = ecg.size
    times = frame_times(n, fs, 2.0)
    starts, ends = window_bounds(frame_samples(times, fs), n, 4 * fs, "shift")
    k = times.size

    t = time.perf_counter()
    ref = hrv_time_windows_reference(peaks, fs, starts, ends)
    t_nk = time.perf_counter() - t
    ours = hrv_time_windows(peaks, fs, starts, ends)  # warm-up
    reps = []
    for _ in range(5):
        t = time.perf_counter()
        ours = hrv_time_windows(peaks, fs, starts, ends)
        reps.append(time.perf_counter() - t)
    t_ours = float(np.median(reps))

    nan_same = np.array_equal(np.isnan(ours), np.isnan(ref))
    with np.errstate(all="ignore"):
        same = (ours == ref) | (np.isnan(ours) & np.isnan(ref))
        rel = np.where(same, 0.0, np.abs(ours - ref) / np.abs(ref))
    print(f"windows: {k} (4 s, hop 0.5 s, edge='shift')")
    print(f"{'feature':<10} {'max rel err':>12}")
    for j, f in enumerate(HRV_FEATURES):
        print(f"{f:<10} {np.nanmax(rel[:, j]) if rel[:, j].size else 0.0:>12.3g}")
    max_rel = float(np.nanmax(rel)) if rel.size else 0.0
    print(
        f"max relative error over all features: {max_rel:.3g}; identical bits: {np.mean(same):.4%}; "
        f"NaN pattern equal: {nan_same}"
    )
    print(f"NeuroKit2 hrv_time per window: {t_nk:.3f} s ({k / t_nk:,.0f} windows/s)")
    print(f"affectflow hrv_time_windows:   {t_ours * 1e3:.2f} ms ({k / t_ours:,.0f} windows/s, median of 5)")
    print(f"speed-up: {t_nk / t_ours:,.0f}x")
    return 0 if (nan_same and max_rel <= 1e-6 and t_nk / t_ours >= 50) else 1


def _extractor_part(minutes: float, seed: int) -> None:
    import neurokit2 as nk
    import pyedflib

    from affectflow.features import EXTRACTORS, MediaRecording
    from affectflow.features import physio as _  # noqa: F401  (registers the extractors)

    fs = 1000
    dur = int(minutes * 60)
    print(f"\n== Extractors: {minutes:g} min of ECG+RSP+EDA at {fs} Hz, EDF file ==")
    ecg = nk.ecg_simulate(duration=dur, sampling_rate=fs, heart_rate=72, random_state=seed)
    rsp = nk.rsp_simulate(duration=dur, sampling_rate=fs, respiratory_rate=15, random_state=seed)
    eda = nk.eda_simulate(duration=dur, sampling_rate=fs, scr_number=max(dur // 30, 1), random_state=seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rec.edf"
        headers = [
            pyedflib.highlevel.make_signal_header(
                name, sample_frequency=fs, physical_min=-20, physical_max=20
            )
            for name in ("ECG", "RSP", "EDA")
        ]
        pyedflib.highlevel.write_edf(str(path), [ecg, rsp, eda], headers)
        rec = MediaRecording(id="bench", physio=path)
        for name in ("hrv", "physio_rates", "physio_raw", "phys"):
            ex = EXTRACTORS.build(name, {})
            t = time.perf_counter()
            frame = ex.extract(rec)
            el = time.perf_counter() - t
            print(
                f"{name:<13} {el:6.2f} s  RTF {el / dur:.4f}  ({dur / el:,.0f}x real time)  -> {frame.shape}"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="5 min of ECG for the HRV part, 2 min for the extractors"
    )
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rc = _hrv_part(5 if args.quick else 30, args.seed)
    _extractor_part(2 if args.quick else 10, args.seed)
    return rc


if __name__ == "__main__":
    sys.exit(main())
