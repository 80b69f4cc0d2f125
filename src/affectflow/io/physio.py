"""Readers for physiological recordings: CSV/TSV, EDF/BDF and WFDB records.

Every reader exposes the same view of a recording: channels of equal sampling rate ``fs`` (Hz), sample ``i`` at
time ``start_time + i / fs`` seconds. :func:`read_physio` loads everything into a DataFrame;
:func:`open_physio` gives a :class:`PhysioReader` whose :meth:`PhysioReader.blocks` streams consecutive blocks of
samples, so long recordings are processed with flat memory.

Formats
-------
CSV (``.csv``, comma) / TSV (``.tsv``, tab)
    A header row naming the columns, then one row per sample. The time column is ``time_column`` if given, else
    the first column whose normalised name (lower case, letters and digits only) is ``time``, ``timestamp``,
    ``timestamps``, ``t`` or starts with ``time`` (``time_s``, ``Time (ms)``, ``timestamp_ms`` ...). Its unit is
    ``time_unit`` if given (``"s"`` or ``"ms"``), else taken from the name (``ms``/``msec``/``millis`` tokens →
    ms; ``s``/``sec``/``seconds`` tokens → s), else guessed: a median step ``>= 1`` is read as milliseconds
    (MuSe files stamp 1000 Hz samples 1 ms apart), smaller steps as seconds. Without a ``sampling_rate`` the rate
    is inferred as ``(n - 1) / (t_last - t_first)`` (snapped to the nearest integer when that moves no sample by
    more than 0.1 sample), and the file is rejected as irregular if the stamps are not strictly increasing, if
    one step differs from the period by more than 50 %, or if a stamp is more than half a sample away from
    ``t_first + i / fs``. With a ``sampling_rate`` the time column only gives ``start_time`` and is not checked
    (a non-numeric one, e.g. date-time strings, is ignored: ``start_time`` 0).
    Without a time column, ``sampling_rate`` is required and ``start_time`` is 0. Columns that are not numeric in
    the first rows (e.g. date strings) are skipped; empty cells are NaN.
EDF / EDF+ / BDF (``.edf``, ``.bdf``), read with ``pyedflib``
    Physical values of every signal (EDF+ annotation signals excluded). Channels sampled below the highest rate
    are brought to it by linear interpolation of their samples at ``i / fs_max``. ``start_time`` is 0.
WFDB (``.hea`` header, or the ``.dat`` file next to one), read with ``wfdb``
    Physical values (``p_signal``) at the record's frame rate ``fs``; ``start_time`` is 0.

Channel names are normalised case-insensitively (:func:`normalise_channel_name`): ECG/EKG leads → ``ECG``,
resp/respiration/breathing → ``RSP``, EDA/GSR/SCL/skin conductance → ``EDA``, BPM/HR/heart rate → ``BPM``; other
names are kept (stripped). A second channel with the same normalised name gets a suffix: ``ECG_2``, ``ECG_3``.

Any file that is missing, empty, truncated, corrupt or of an unsupported type raises
:class:`affectflow.errors.ExtractionError` with the file name and the problem.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from affectflow.errors import ExtractionError

CANONICAL_CHANNELS = ("ECG", "RSP", "EDA", "BPM")
"""Normalised names of the channels the physio extractors know."""

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".edf", ".bdf", ".hea", ".dat")

_CHANNEL_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ECG", re.compile(r"^(ecg|ekg)(raw|signal|lead)?([0-9]+|i{1,3}|v[1-6]|avr|avl|avf)?(raw|mv|uv)?$")),
    (
        "RSP",
        re.compile(
            r"^(rsp|resp|respiration|respiratory|respiratorysignal|breathing|breath|rip)(raw|signal)?$"
        ),
    ),
    (
        "EDA",
        re.compile(
            r"^(eda|gsr|scl|electrodermal|electrodermalactivity|skinconductance|skinconductancelevel"
            r"|galvanicskinresponse)(raw|signal|us)?$"
        ),
    ),
    ("BPM", re.compile(r"^(bpm|hr|heartrate|heartratebpm|hrbpm|pulserate)$")),
]
_TIME_KEYS = {"time", "timestamp", "timestamps", "t"}
_MS_TOKEN = re.compile(r"(^|[^a-z])(ms|msec|msecs|millis|millisecond|milliseconds)([^a-z]|$)")
_S_TOKEN = re.compile(r"(^|[^a-z])(s|sec|secs|second|seconds)([^a-z]|$)")
_CSV_CHUNK = 200_000  # rows per pandas chunk
_MAX_STEP_DEVIATION = 0.5  # a single time step may differ from the period by at most 50 %
_MAX_DRIFT_SAMPLES = 0.5  # a time stamp may be at most half a sample away from the regular grid


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def normalise_channel_name(name: str) -> str:
    """Canonical name of a physiological channel.

    Parameters
    ----------
    name:
        Channel name as found in the file, e.g. ``"ekg"``, ``"Resp"``, ``"GSR"``, ``"heart_rate"``.

    Returns
    -------
    str
        ``"ECG"``, ``"RSP"``, ``"EDA"`` or ``"BPM"`` when the lower-cased name with non-alphanumerics removed
        matches a known alias (see the module docstring), else ``name`` stripped of surrounding whitespace.
    """
    k = _key(name)
    for canonical, pattern in _CHANNEL_PATTERNS:
        if pattern.match(k):
            return canonical
    return str(name).strip()


def normalise_channel_names(names: Sequence[str]) -> list[str]:
    """Normalise each name (:func:`normalise_channel_name`); repeated results get ``_2``, ``_3`` ... suffixes."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for n in names:
        c = normalise_channel_name(n)
        seen[c] = seen.get(c, 0) + 1
        out.append(c if seen[c] == 1 else f"{c}_{seen[c]}")
    return out


def _is_time_name(name: str) -> bool:
    k = _key(name)
    return k in _TIME_KEYS or k.startswith("time")


def _unit_from_name(name: str) -> str | None:
    low = str(name).lower()
    if _MS_TOKEN.search(low):
        return "ms"
    if _S_TOKEN.search(low):
        return "s"
    return None


@dataclass
class PhysioInfo:
    """What a physio file holds.

    Attributes
    ----------
    path:
        The file.
    format:
        ``"csv"``, ``"edf"`` or ``"wfdb"``.
    channels:
        Normalised channel names (:func:`normalise_channel_names`), in file order.
    source_channels:
        The names as written in the file, same order.
    sampling_rate:
        Common sampling rate ``fs`` in Hz.
    n_samples:
        Number of samples per channel.
    start_time:
        Time of sample 0 in seconds (from the CSV time column; 0 for EDF and WFDB).
    skipped_columns:
        CSV columns left out because they are not numeric.
    """

    path: Path
    format: str
    channels: list[str]
    source_channels: list[str]
    sampling_rate: float
    n_samples: int
    start_time: float = 0.0
    skipped_columns: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """``n_samples / sampling_rate`` in seconds."""
        return self.n_samples / self.sampling_rate


class PhysioReader:
    """An open physio recording; use :func:`open_physio` to make one.

    ``reader.info`` describes it; :meth:`blocks` streams it; :meth:`read` loads it. Use as a context manager (or
    call :meth:`close`) to release the file.
    """

    info: PhysioInfo

    def blocks(
        self, channels: Sequence[str] | None = None, block_samples: int = 65_536
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Consecutive blocks of samples.

        Parameters
        ----------
        channels:
            Normalised channel names to read, in the order wanted; ``None`` = all.
        block_samples:
            Samples per block (the last block may be shorter; CSV blocks follow the parser's chunks).

        Yields
        ------
        tuple of (int, numpy.ndarray)
            ``(start, data)``: index of the block's first sample and a ``float64`` array of shape
            ``(n_block, len(channels))``. Blocks are contiguous and cover ``[0, info.n_samples)``.
        """
        cols = self._channel_indices(channels)
        yield from self._blocks(cols, max(int(block_samples), 1))

    def read(self, channels: Sequence[str] | None = None) -> pd.DataFrame:
        """All samples as a DataFrame.

        Returns
        -------
        pandas.DataFrame
            Shape ``(n_samples, n_channels)``, ``float64`` columns named by the normalised channel names, index =
            sample number. ``frame.attrs`` holds ``sampling_rate``, ``start_time``, ``path`` and
            ``source_channels`` (normalised name → name in the file).
        """
        names = list(self.info.channels if channels is None else channels)
        parts = [d for _, d in self.blocks(names, block_samples=1_000_000)]
        data = np.concatenate(parts, axis=0) if parts else np.zeros((0, len(names)))
        frame = pd.DataFrame(data, columns=names)
        src = dict(zip(self.info.channels, self.info.source_channels))
        frame.attrs.update(
            sampling_rate=self.info.sampling_rate,
            start_time=self.info.start_time,
            path=str(self.info.path),
            source_channels={n: src[n] for n in names},
        )
        return frame

    def close(self) -> None:
        """Release the file (no-op for formats read on demand)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals
    def _channel_indices(self, channels: Sequence[str] | None) -> list[int]:
        if channels is None:
            return list(range(len(self.info.channels)))
        idx = []
        for c in channels:
            if c not in self.info.channels:
                raise ExtractionError(
                    f"{self.info.path}: no channel {c!r}; the file has channels {self.info.channels} "
                    f"(as written: {self.info.source_channels})."
                )
            idx.append(self.info.channels.index(c))
        return idx

    def _blocks(self, cols: list[int], block: int) -> Iterator[tuple[int, np.ndarray]]:  # pragma: no cover
        raise NotImplementedError


class ArrayPhysioReader(PhysioReader):
    """Samples already in memory as a :class:`PhysioReader` (the live path and
    :meth:`affectflow.features.physio.PhysioExtractor.process_signal` read through it, as the file path reads files).

    Parameters
    ----------
    data:
        ``(n_samples, n_channels)`` samples (converted to ``float64``).
    channels:
        Normalised channel names (``ecg``, ``rsp``, ``eda``, ...), one per column.
    sampling_rate:
        ``fs`` in Hz.
    start_time:
        Time of sample 0 in seconds.
    name:
        Shown in messages where a file reader shows its path.
    """

    def __init__(self, data: np.ndarray, channels: Sequence[str], sampling_rate: float, *, start_time: float = 0.0,
                 name: str = "<signal>") -> None:
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim == 1 and len(channels) == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != len(channels):
            raise ExtractionError(f"{name}: samples of shape {arr.shape} do not match the {len(channels)} channel "
                                  f"name(s) {list(channels)}; expected (n_samples, {len(channels)}).")
        if not (np.isfinite(sampling_rate) and sampling_rate > 0):
            raise ExtractionError(f"{name}: the sampling rate must be a positive number, got {sampling_rate!r}.")
        self.data = arr
        self.info = PhysioInfo(path=Path(name), format="array", channels=list(channels),
                               source_channels=list(channels), sampling_rate=float(sampling_rate),
                               n_samples=len(arr), start_time=float(start_time))

    def _blocks(self, cols: list[int], block: int) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(0, len(self.data), block):
            yield i, self.data[i:i + block][:, cols]


# --------------------------------------------------------------------------------------------------- CSV
class _CsvReader(PhysioReader):
    def __init__(
        self, path: Path, sampling_rate: float | None, time_column: str | None, time_unit: str | None
    ) -> None:
        self.path = path
        self.sep = "\t" if path.suffix.lower() == ".tsv" else ","
        if path.stat().st_size == 0:
            raise ExtractionError(f"{path}: the file is empty (0 bytes); expected a header row and samples.")
        try:
            head = pd.read_csv(path, sep=self.sep, nrows=1000, skipinitialspace=True)
        except pd.errors.EmptyDataError as e:
            raise ExtractionError(f"{path}: the file is empty; expected a header row and samples.") from e
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
            raise ExtractionError(
                f"{path}: cannot parse as {'TSV' if self.sep == chr(9) else 'CSV'}: {e}"
            ) from e
        names = [str(c) for c in head.columns]
        if len(head) == 0:
            raise ExtractionError(f"{path}: the file has a header ({names}) but no samples.")
        if all(_looks_numeric(c) for c in names):
            raise ExtractionError(
                f"{path}: the first line {names} is not a header; the first row must name the columns "
                "(e.g. time,ECG,RSP)."
            )
        # time column
        if time_column is not None:
            if time_column not in names:
                raise ExtractionError(f"{path}: time column {time_column!r} not found; columns are {names}.")
            tcol: str | None = time_column
        else:
            tcol = next((c for c in names if _is_time_name(c)), None)
        self.time_column = tcol
        # numeric signal columns
        signal_cols, skipped = [], []
        for c in names:
            if c == tcol:
                continue
            col = pd.to_numeric(head[c], errors="coerce")
            if col.notna().any() or head[c].isna().all():
                signal_cols.append(c)
            else:
                skipped.append(c)
        if not signal_cols:
            raise ExtractionError(
                f"{path}: no numeric signal columns (columns: {names}; time column: {tcol!r})."
            )
        self.signal_cols = signal_cols
        # first pass over the time column (or the first signal column) to count rows and check the stamps
        # with an explicit rate, a time column that is not numeric (e.g. date-time strings) is ignored
        use_time = tcol is not None and (
            sampling_rate is None or bool(pd.to_numeric(head[tcol], errors="coerce").notna().all())
        )
        n, t_first, t_last, steps = self._scan(tcol if use_time else signal_cols[0], use_time)
        if n == 0:
            raise ExtractionError(f"{path}: the file has a header but no samples.")
        unit_scale = 1.0
        if use_time:
            unit = time_unit or _unit_from_name(tcol)
            if unit is None:
                unit = "ms" if (steps[2] if steps[2] is not None else 0.0) >= 1.0 else "s"
            if unit not in ("s", "ms"):
                raise ExtractionError(f"time_unit must be 's' or 'ms', got {unit!r}")
            unit_scale = 1e-3 if unit == "ms" else 1.0
        self.unit_scale = unit_scale
        start_time = t_first * unit_scale if use_time else 0.0
        self.check_grid = False
        if sampling_rate is not None:
            fs = float(sampling_rate)
            if not fs > 0:
                raise ExtractionError(f"{path}: sampling_rate must be positive, got {sampling_rate!r}.")
        elif tcol is None:
            raise ExtractionError(
                f"{path}: no time column found (looked for time/timestamp columns among {names}); pass "
                "sampling_rate=<Hz> or time_column=<name>."
            )
        else:
            fs = self._infer_rate(n, t_first, t_last, steps, unit_scale)
            self.check_grid = True
        self.t_first = t_first
        self.info = PhysioInfo(
            path=path,
            format="csv",
            channels=normalise_channel_names(signal_cols),
            source_channels=list(signal_cols),
            sampling_rate=fs,
            n_samples=n,
            start_time=float(start_time),
            skipped_columns=skipped,
        )

    def _reader(self, usecols: list[str], chunksize: int):
        return pd.read_csv(
            self.path, sep=self.sep, usecols=usecols, chunksize=chunksize, skipinitialspace=True
        )

    def _scan(self, col: str, is_time: bool) -> tuple[int, float, float, tuple]:
        """Rows, first/last stamp, and (min step, max step, median step of the first chunk)."""
        n = 0
        t_first = t_last = math.nan
        min_step, max_step, median_step = math.inf, -math.inf, None
        prev = None
        try:
            for chunk in self._reader([col], _CSV_CHUNK):
                v = chunk[col]
                if is_time:
                    v = pd.to_numeric(v, errors="coerce").to_numpy(dtype=np.float64)
                    bad = np.flatnonzero(~np.isfinite(v))
                    if bad.size:
                        raise ExtractionError(
                            f"{self.path}: time column {col!r} has a missing or non-numeric value at data row "
                            f"{n + bad[0] + 1}; time stamps must be numbers (s or ms). Pass sampling_rate=<Hz> "
                            "to ignore them."
                        )
                    if v.size:
                        if prev is not None:
                            v_all = np.concatenate([[prev], v])
                        else:
                            v_all = v
                            t_first = float(v[0])
                        if v_all.size > 1:
                            d = np.diff(v_all)
                            min_step = min(min_step, float(d.min()))
                            max_step = max(max_step, float(d.max()))
                            if median_step is None:
                                median_step = float(np.median(d))
                        prev = float(v[-1])
                        t_last = prev
                n += len(chunk)
        except ExtractionError:
            raise
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
            raise ExtractionError(f"{self.path}: corrupt CSV near data row {n + 1}: {e}") from e
        return n, t_first, t_last, (min_step, max_step, median_step)

    def _infer_rate(self, n: int, t_first: float, t_last: float, steps: tuple, scale: float) -> float:
        min_step, max_step, _ = steps
        if n < 2:
            raise ExtractionError(
                f"{self.path}: one sample only; cannot infer the sampling rate from the time column (pass "
                "sampling_rate=<Hz>)."
            )
        if min_step <= 0:
            raise ExtractionError(
                f"{self.path}: time column {self.time_column!r} is not strictly increasing (a step of "
                f"{min_step:g}); the sampling rate cannot be inferred. Pass sampling_rate=<Hz> to ignore the "
                "time stamps."
            )
        period = (t_last - t_first) / (n - 1)
        if max_step > (1 + _MAX_STEP_DEVIATION) * period or min_step < (1 - _MAX_STEP_DEVIATION) * period:
            raise ExtractionError(
                f"{self.path}: irregular time stamps in {self.time_column!r}: steps range from {min_step:g} to "
                f"{max_step:g} for a mean step of {period:g} (tolerance ±{_MAX_STEP_DEVIATION:.0%}); gaps or "
                "jitter. Resample to a regular grid or pass sampling_rate=<Hz> to ignore the time stamps."
            )
        fs = 1.0 / (period * scale)
        snapped = float(round(fs))
        if snapped > 0 and abs(1 / snapped - 1 / fs) * (n - 1) * fs < 0.1:
            fs = snapped
        return fs

    def _blocks(self, cols: list[int], block: int) -> Iterator[tuple[int, np.ndarray]]:
        names = [self.signal_cols[i] for i in cols]
        usecols = list(dict.fromkeys(names + ([self.time_column] if self.check_grid else [])))
        start = 0
        fs = self.info.sampling_rate
        try:
            for chunk in self._reader(usecols, block):
                data = np.empty((len(chunk), len(names)))
                for j, c in enumerate(names):
                    col = pd.to_numeric(chunk[c], errors="coerce")
                    bad = col.isna() & chunk[c].notna()
                    if bad.any():
                        row = start + int(np.flatnonzero(bad.to_numpy())[0]) + 1
                        raise ExtractionError(
                            f"{self.path}: column {c!r} has a non-numeric value {chunk[c][bad].iloc[0]!r} at "
                            f"data row {row}."
                        )
                    data[:, j] = col.to_numpy(dtype=np.float64)
                if self.check_grid and len(chunk):
                    t = pd.to_numeric(chunk[self.time_column]).to_numpy(np.float64) - self.t_first
                    t = t * self.unit_scale * fs
                    drift = np.abs(t - (start + np.arange(len(chunk))))
                    k = int(np.argmax(drift))
                    if drift[k] > _MAX_DRIFT_SAMPLES:
                        raise ExtractionError(
                            f"{self.path}: irregular time stamps: data row {start + k + 1} is {drift[k]:.2f} "
                            f"samples away from a regular {fs:g} Hz grid (tolerance {_MAX_DRIFT_SAMPLES} "
                            "sample). Resample or pass sampling_rate=<Hz> to ignore the time stamps."
                        )
                yield start, data
                start += len(chunk)
        except ExtractionError:
            raise
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
            raise ExtractionError(f"{self.path}: corrupt CSV near data row {start + 1}: {e}") from e
        if start != self.info.n_samples:
            raise ExtractionError(
                f"{self.path}: the file changed while being read ({start} rows, {self.info.n_samples} before)."
            )


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------------- EDF
def _reader_package(module: str, path: Path, reading: str) -> Any:
    """Import the optional package ``module`` that reads ``path`` (``pyedflib``, ``wfdb``); when it is missing, an
    :class:`ExtractionError` says which package ``reading`` (e.g. "reading EDF") needs and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover
        raise ExtractionError(f"{path}: {reading} needs the {module!r} package (pip install {module}).") from e


class _EdfReader(PhysioReader):
    def __init__(self, path: Path) -> None:
        pyedflib = _reader_package("pyedflib", path, "reading EDF")
        self.path = path
        if path.stat().st_size == 0:
            raise ExtractionError(f"{path}: the file is empty (0 bytes).")
        try:
            self.f = pyedflib.EdfReader(str(path))
        except (OSError, ValueError, RuntimeError) as e:
            raise ExtractionError(f"{path}: not a readable EDF/BDF file (corrupt or truncated): {e}") from e
        f = self.f
        labels = [str(s).strip() for s in f.getSignalLabels()]
        if not labels:
            self.close()
            raise ExtractionError(f"{path}: the EDF file has no signals.")
        self.rates = np.array([float(f.getSampleFrequency(i)) for i in range(len(labels))])
        self.lengths = np.array([int(x) for x in f.getNSamples()], dtype=np.int64)
        fs = float(self.rates.max())
        ref = int(np.argmax(self.rates))
        n = int(self.lengths[ref])
        if n == 0:
            self.close()
            raise ExtractionError(f"{path}: the EDF file holds no samples.")
        self.info = PhysioInfo(
            path=path,
            format="edf",
            channels=normalise_channel_names(labels),
            source_channels=labels,
            sampling_rate=fs,
            n_samples=n,
            start_time=0.0,
        )

    def _read(self, i: int, start: int, count: int) -> np.ndarray:
        try:
            return np.asarray(self.f.readSignal(i, start, count), dtype=np.float64)
        except (OSError, ValueError, RuntimeError) as e:
            raise ExtractionError(f"{self.path}: cannot read signal {i} at sample {start}: {e}") from e

    def _blocks(self, cols: list[int], block: int) -> Iterator[tuple[int, np.ndarray]]:
        fs = self.info.sampling_rate
        n = self.info.n_samples
        for start in range(0, n, block):
            count = min(block, n - start)
            data = np.empty((count, len(cols)))
            for j, i in enumerate(cols):
                if self.rates[i] == fs:
                    x = self._read(i, start, count)
                    if x.size != count:
                        raise ExtractionError(
                            f"{self.path}: truncated signal {self.info.source_channels[i]!r}."
                        )
                    data[:, j] = x
                else:  # slower channel: linear interpolation at the fast channel's instants
                    u = (start + np.arange(count)) * (self.rates[i] / fs)
                    lo = int(np.floor(u[0]))
                    hi = min(int(np.ceil(u[-1])) + 2, int(self.lengths[i]))
                    lo = min(lo, max(hi - 1, 0))
                    x = self._read(i, lo, hi - lo)
                    data[:, j] = np.interp(u, lo + np.arange(x.size), x)
            yield start, data

    def close(self) -> None:
        f = getattr(self, "f", None)
        if f is not None:
            try:
                f.close()
            except Exception:  # noqa: BLE001, S110  # pragma: no cover - closing a half-open file
                pass
            self.f = None


# -------------------------------------------------------------------------------------------------- WFDB
class _WfdbReader(PhysioReader):
    def __init__(self, path: Path) -> None:
        wfdb = _reader_package("wfdb", path, "reading WFDB records")
        self.wfdb = wfdb
        hea = path.with_suffix(".hea")
        if not hea.is_file():
            raise ExtractionError(f"{path}: WFDB header {hea.name} not found next to it.")
        if hea.stat().st_size == 0:
            raise ExtractionError(f"{hea}: the WFDB header is empty.")
        self.path = hea
        self.record = str(hea.with_suffix(""))
        try:
            h = wfdb.rdheader(self.record)
        except Exception as e:  # wfdb raises ValueError/IndexError/... on a malformed header
            raise ExtractionError(f"{hea}: malformed WFDB header: {type(e).__name__}: {e}") from e
        names = [str(s) for s in (h.sig_name or [])]
        if not names:
            raise ExtractionError(f"{hea}: the WFDB record has no signals.")
        n = int(h.sig_len or 0)
        if n <= 0:
            raise ExtractionError(f"{hea}: the WFDB record holds no samples (sig_len={h.sig_len}).")
        if not h.fs or float(h.fs) <= 0:
            raise ExtractionError(f"{hea}: the WFDB header has no valid sampling frequency ({h.fs!r}).")
        for fname in set(h.file_name or []):
            dat = hea.parent / fname
            if not dat.is_file():
                raise ExtractionError(f"{hea}: signal file {fname} is missing.")
        self.info = PhysioInfo(
            path=hea,
            format="wfdb",
            channels=normalise_channel_names(names),
            source_channels=names,
            sampling_rate=float(h.fs),
            n_samples=n,
            start_time=0.0,
        )

    def _blocks(self, cols: list[int], block: int) -> Iterator[tuple[int, np.ndarray]]:
        n = self.info.n_samples
        for start in range(0, n, block):
            stop = min(start + block, n)
            try:
                rec = self.wfdb.rdrecord(
                    self.record, sampfrom=start, sampto=stop, channels=cols, physical=True
                )
            except Exception as e:  # truncated .dat files surface as ValueError/IndexError inside wfdb
                raise ExtractionError(
                    f"{self.path}: cannot read samples {start}-{stop} (truncated or corrupt signal file?): "
                    f"{type(e).__name__}: {e}"
                ) from e
            data = np.asarray(rec.p_signal, dtype=np.float64)
            if data.shape != (stop - start, len(cols)):
                raise ExtractionError(
                    f"{self.path}: truncated record (got {data.shape[0]} of {stop - start} samples)."
                )
            yield start, data


# ------------------------------------------------------------------------------------------------ public
def open_physio(
    path: str | Path,
    *,
    sampling_rate: float | None = None,
    time_column: str | None = None,
    time_unit: str | None = None,
) -> PhysioReader:
    """Open a physio recording for streaming (see the module docstring for the formats).

    Parameters
    ----------
    path:
        ``.csv``/``.tsv``, ``.edf``/``.bdf``, or a WFDB record's ``.hea`` (or ``.dat``) file.
    sampling_rate:
        CSV only: the sampling rate in Hz (required without a time column; overrides the time stamps).
    time_column:
        CSV only: name of the time column (default: detected).
    time_unit:
        CSV only: ``"s"`` or ``"ms"`` (default: from the column name, else guessed from the step).

    Returns
    -------
    PhysioReader
        With ``.info`` (:class:`PhysioInfo`), ``.blocks()`` and ``.read()``.

    Raises
    ------
    ExtractionError
        Missing, empty, corrupt, truncated, irregular or unsupported file.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ExtractionError(
            f"{p}: unsupported physio file type {p.suffix or '(no extension)'!r}; supported: CSV/TSV with a "
            "time column or a sampling rate (.csv, .tsv), EDF/BDF (.edf, .bdf), WFDB records (.hea)."
        )
    if suffix == ".dat":
        if not p.with_suffix(".hea").is_file():
            raise ExtractionError(
                f"{p}: a .dat file is read as a WFDB record, but {p.with_suffix('.hea').name} is missing."
            )
    elif not p.is_file():
        raise ExtractionError(f"{p}: physio file does not exist.")
    if suffix in (".csv", ".tsv"):
        return _CsvReader(p, sampling_rate, time_column, time_unit)
    if suffix in (".edf", ".bdf"):
        return _EdfReader(p)
    return _WfdbReader(p)


def read_physio(
    path: str | Path,
    *,
    sampling_rate: float | None = None,
    time_column: str | None = None,
    time_unit: str | None = None,
) -> tuple[pd.DataFrame, float]:
    """Load a whole physio recording.

    Parameters
    ----------
    path, sampling_rate, time_column, time_unit:
        See :func:`open_physio`.

    Returns
    -------
    tuple of (pandas.DataFrame, float)
        The signals, shape ``(n_samples, n_channels)``, ``float64`` columns with normalised channel names (the
        time column is not included; sample ``i`` is at ``frame.attrs["start_time"] + i / fs`` s), and the
        sampling rate ``fs`` in Hz. ``frame.attrs`` also holds ``sampling_rate``, ``path`` and
        ``source_channels``.

    Raises
    ------
    ExtractionError
        Missing, empty, corrupt, truncated, irregular or unsupported file.
    """
    with open_physio(path, sampling_rate=sampling_rate, time_column=time_column, time_unit=time_unit) as r:
        frame = r.read()
        return frame, r.info.sampling_rate
