"""The extraction runner: every (recording, feature set) job of a corpus, in parallel, resumable, atomic.

::

    from affectflow.features.pipeline import extract
    summary = extract("corpus/", "extract.yaml", workers=2)   # or {"egemaps": EXTRACTORS.build("egemaps")}
    print(summary.format()); assert summary.ok

Configuration
    A mapping (or a YAML file holding one) from feature-set name to the extractor that makes it::

        defaults:            # optional: applied to every extractor that has the parameter and does not set it
          rate_hz: 2.0
        features:
          egemaps: {}                                   # type defaults to the feature-set name
          egemaps_2s: {type: egemaps, win_dur: 2.0}     # a second configuration of the same extractor
          hrv: {type: hrv, win_dur: 4.0}

    The ``features:`` level may be left out when there are no defaults (the mapping then holds the feature sets
    directly).

Outputs
    ``features/<set>/<recording>.parquet`` through :meth:`Corpus.write_features` (written to a temporary file and
    renamed, so a crash or a kill never leaves a partial parquet), then ``features/<set>/.extract/<recording>.json``
    (the record of how it was made: extractor, parameters, config hash, input files with their size and
    modification time, compute time), also written atomically. An output counts as finished only when both exist,
    the recorded config hash is the extractor's current :meth:`~affectflow.features.base.Extractor.config_hash`
    **and** the input files are the same (path, size and modification time, :func:`input_signature`): a file
    replaced by ``import-media --overwrite`` or edited in place is extracted again. A run skips finished outputs
    (unless ``overwrite``) and recomputes the others. A crash between the two writes leaves data without a record, which is recomputed.
    ``features/<set>/feature_set.json`` declares the set: modality, ``rate_hz``, columns and
    ``params = {"extractor", "config_hash", "params"}``.

Failures
    A job fails when the extractor raises (an :class:`~affectflow.errors.ExtractionError` for a bad input
    file, or any other exception), when its worker process dies (killed, out of memory, crashed), or when its
    output is unusable: not a DataFrame, no ``time`` column, columns other than the declared ones, no rows,
    non-finite or non-increasing times, or every value NaN. Failed jobs are listed with the input file and the
    message and the other jobs go on; the output of a failed job is removed, so no stale frames of an older
    configuration stay behind. Recoverable oddities (infinite values turned into NaN, an output that is all zeros,
    frames not covering the recording) are kept as warnings of the job. A recording without the inputs an
    extractor needs is counted as "no input", not as a failure.

Parallelism
    ``workers=1`` runs every job in this process. ``workers>1`` runs them in a pool of processes (``fork`` where
    available). Each worker receives the extractors once, so a model an extractor loads lazily is loaded once per
    worker, not once per recording, and each worker's BLAS/OpenMP threads are limited to ``cpu_count // workers``
    unless ``OMP_NUM_THREADS`` is already set. At most ``workers`` jobs are in flight; when a worker dies, the jobs
    it took down are retried once, alone, so that only the job that kills its worker fails.

Report
    A summary (done / skipped / failed / no input, compute seconds and real-time factor per feature set, failures
    listed) is returned as :class:`ExtractionSummary`, and written as JSON to ``reports/extract-<time>.json``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import multiprocessing
import os
import sys
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import yaml

from affectflow.corpus.corpus import TIME, Corpus, FeatureSetInfo
from affectflow.corpus.media import media_recordings
from affectflow.errors import ConfigError, CorpusError
from affectflow.execution import get_executor
from affectflow.features.base import EXTRACTORS, ExtractionError, Extractor, MediaRecording
from affectflow.fsutil import SAFE_NAME, check_name, child_path, write_json
from affectflow.nativelogs import native_log_filter
from affectflow.procutil import die_with_parent, usable_cpus
from affectflow.progress import progress_bar
from affectflow.registry import Registry

RECORD_DIR = ".extract"
BUILTIN_MODULES = (
    "affectflow.features.audio",
    "affectflow.features.face",
    "affectflow.features.text",
    "affectflow.features.physio",
    "affectflow.features.hrv",
)
STATUSES = ("done", "skipped", "failed", "no_input")

_import_errors: dict[str, str] = {}


# ---------------------------------------------------------------------------------------------------- registry
def load_builtin_extractors() -> dict[str, str]:
    """Import the modules that register affectflow's extractors in :data:`EXTRACTORS`.

    Returns
    -------
    dict
        ``{module: error message}`` of the modules that could not be imported (missing optional dependency or
        module); the others are registered.
    """
    for mod in BUILTIN_MODULES:
        if mod in _import_errors:
            continue
        try:
            importlib.import_module(mod)
        except Exception as e:  # noqa: BLE001 - a broken optional module must not stop the others
            _import_errors[mod] = f"{type(e).__name__}: {e}"
        else:
            _import_errors.pop(mod, None)
    return dict(_import_errors)


def default_config_path() -> Path:
    """The packaged default extraction configuration (``configs/extract_default.yaml``)."""
    return Path(str(resources.files("affectflow.configs").joinpath("extract_default.yaml")))


def load_config(config: Mapping[str, Any] | str | os.PathLike) -> dict[str, Any]:
    """Read an extraction configuration (a mapping, or a YAML file holding one) into ``{"defaults", "features"}``.

    Raises
    ------
    ConfigError
        Unreadable file, or not a mapping of feature-set names to parameter mappings.
    """
    if isinstance(config, (str, os.PathLike)):
        p = Path(config)
        if not p.is_file():
            raise ConfigError(f"Extraction config {str(p)!r} does not exist.")
        try:
            config = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as e:
            raise ConfigError(f"Extraction config {str(p)!r} is not UTF-8 text ({e}).") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"Extraction config {str(p)!r} is not valid YAML: {e}") from e
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"An extraction config is a mapping of feature-set names to parameters; got {type(config).__name__}."
        )
    config = dict(config)
    if "features" in config:
        extra = sorted(set(config) - {"features", "defaults"})
        if extra:
            raise ConfigError(
                f"Unknown top-level keys {extra} in the extraction config; valid: ['defaults', 'features']."
            )
        feats, defaults = config["features"] or {}, config.get("defaults") or {}
    else:
        feats, defaults = config, {}
    if not isinstance(feats, Mapping) or not isinstance(defaults, Mapping):
        raise ConfigError(
            "'features' must map feature-set names to parameter mappings and 'defaults' must be a mapping."
        )
    out = {}
    for name, spec in feats.items():
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"Feature set {name!r}: expected a mapping of parameters (e.g. {{type: egemaps}}), got {spec!r}."
            )
        out[str(name)] = dict(spec)
    if not out:
        raise ConfigError("The extraction config names no feature sets.")
    return {"defaults": dict(defaults), "features": out}


def build_extractors(
    config: Mapping[str, Any] | str | os.PathLike, registry: Registry | None = None
) -> dict[str, Extractor]:
    """Instantiate the extractors of a configuration (see the module docstring).

    Parameters
    ----------
    config:
        Mapping or YAML path; ``{feature_set: {type: extractor_name, **params}}`` with optional ``defaults``.
    registry:
        Where extractor names are looked up; default :data:`EXTRACTORS` (the built-in modules are imported first).

    Returns
    -------
    dict
        Feature-set name → extractor, in config order.
    """
    cfg = load_config(config)
    if registry is None:
        registry = EXTRACTORS
        load_builtin_extractors()
    out: dict[str, Extractor] = {}
    for name, spec in cfg["features"].items():
        try:
            check_name("feature set name", name)
        except CorpusError as e:
            raise ConfigError(str(e)) from e
        spec = dict(spec)
        kind = spec.pop("type", name)
        try:
            cls = registry.get(kind)
        except ConfigError as e:
            msg = f"Feature set {name!r}: {e}"
            if registry is EXTRACTORS and _import_errors:
                msg += " Extractor modules that failed to import: " + "; ".join(
                    f"{m}: {err}" for m, err in _import_errors.items()
                )
            raise ConfigError(msg) from e
        valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
        params = {k: v for k, v in cfg["defaults"].items() if k in valid and k not in spec}
        params.update(spec)
        try:
            out[name] = registry.build(kind, params)
        except ConfigError as e:
            raise ConfigError(f"Feature set {name!r}: {e}") from e
        except (TypeError, ValueError) as e:
            raise ConfigError(f"Feature set {name!r} ({kind}): invalid parameters {params}: {e}") from e
    return out


# ---------------------------------------------------------------------------------------------------- results
@dataclass
class JobResult:
    """Outcome of one (recording, feature set) job.

    Attributes
    ----------
    feature_set, extractor, recording:
        What was run.
    status:
        ``"done"``, ``"skipped"`` (finished output with the same config hash), ``"failed"`` or ``"no_input"``.
    message:
        Why it failed (or why it was skipped).
    file:
        The input file(s) the extractor reads for this recording.
    seconds:
        Compute time (s) of the job, in its worker.
    media_seconds:
        Duration (s) of the recording, if known.
    n_frames:
        Rows written.
    warnings:
        Recoverable problems of the output.
    traceback:
        Traceback of an unexpected exception (not of an :class:`ExtractionError`).
    """

    feature_set: str
    extractor: str
    recording: str
    status: str
    message: str = ""
    file: str = ""
    seconds: float = 0.0
    media_seconds: float | None = None
    n_frames: int = 0
    warnings: list[str] = field(default_factory=list)
    traceback: str = ""


@dataclass
class ExtractionSummary:
    """All job results of one :func:`extract` call.

    Attributes
    ----------
    results:
        One :class:`JobResult` per (recording, feature set).
    feature_sets:
        Feature-set name → ``{"extractor", "config_hash", "params", "stale_outputs"}``.
    wall_seconds:
        Elapsed time of the whole call (s).
    workers:
        Worker processes used (1 = in-process).
    report_path:
        The JSON report written to the corpus.
    """

    results: list[JobResult]
    feature_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall_seconds: float = 0.0
    workers: int = 1
    report_path: Path | None = None

    @property
    def failures(self) -> list[JobResult]:
        """The failed jobs."""
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """Whether no job failed."""
        return not self.failures

    def counts(self) -> pd.DataFrame:
        """Per feature set: jobs ``done``, ``skipped``, ``failed``, ``no_input``; ``compute_s`` (s) and ``rtf``.

        ``rtf`` = compute seconds / media seconds of the jobs done (< 1: faster than real time).
        """
        rows = []
        for name, meta in self.feature_sets.items():
            rs = [r for r in self.results if r.feature_set == name]
            done = [r for r in rs if r.status == "done"]
            comp = float(sum(r.seconds for r in done))
            media = float(sum(r.media_seconds or 0.0 for r in done))
            rows.append(
                {
                    "feature_set": name,
                    "extractor": meta.get("extractor", ""),
                    **{s: sum(r.status == s for r in rs) for s in STATUSES},
                    "warnings": sum(len(r.warnings) > 0 for r in rs),
                    "compute_s": round(comp, 3),
                    "rtf": round(comp / media, 5) if media > 0 else float("nan"),
                }
            )
        return pd.DataFrame(
            rows, columns=["feature_set", "extractor", *STATUSES, "warnings", "compute_s", "rtf"]
        )

    def format(self, max_failures: int = 50) -> str:
        """The summary table, then the failures (recording, file, message) and warnings."""
        c = self.counts()
        lines = [
            f"Extraction: {len(self.results)} jobs in {self.wall_seconds:.1f} s with {self.workers} worker(s)."
        ]
        lines.append(c.to_string(index=False) if not c.empty else "(no feature sets)")
        for name, meta in self.feature_sets.items():
            if meta.get("stale_outputs"):
                lines.append(
                    f"Note: {len(meta['stale_outputs'])} output(s) of {name!r} were made with another configuration "
                    f"and were not part of this run: {meta['stale_outputs'][:5]}; rerun on all recordings."
                )
        fails = self.failures
        if fails:
            lines.append(f"Failures ({len(fails)}):")
            for r in fails[:max_failures]:
                lines.append(f"  {r.feature_set} / {r.recording} ({r.file or 'no file'}): {r.message}")
            if len(fails) > max_failures:
                lines.append(f"  ... and {len(fails) - max_failures} more")
        warned = [r for r in self.results if r.warnings]
        if warned:
            lines.append(f"Warnings ({sum(len(r.warnings) for r in warned)}):")
            for r in warned[:max_failures]:
                for w in r.warnings:
                    lines.append(f"  {r.feature_set} / {r.recording}: {w}")
        if self.report_path is not None:
            lines.append(f"Report: {self.report_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the report)."""
        return {
            "wall_seconds": self.wall_seconds,
            "workers": self.workers,
            "ok": self.ok,
            "feature_sets": self.feature_sets,
            "counts": self.counts().to_dict("records"),
            "failures": [asdict(r) for r in self.failures],
            "results": [asdict(r) for r in self.results],
        }


# ---------------------------------------------------------------------------------------------------- records
def record_path(corpus: Corpus, feature_set: str, rid: str) -> Path:
    """Path of the record (how it was made) of one output: ``features/<set>/.extract/<rid>.json``."""
    return child_path(corpus.path / "features" / check_name("feature set name", feature_set) / RECORD_DIR, rid,
                      ".json", kind="recording id")


def read_record(corpus: Corpus, feature_set: str, rid: str) -> dict[str, Any] | None:
    """The record of one output, or ``None`` when missing or unreadable."""
    p = record_path(corpus, feature_set, rid)
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def input_signature(ex: Extractor, rec: MediaRecording) -> dict[str, Any]:
    """What an output depends on besides the configuration: each input file's path, size and modification time.

    Returns
    -------
    dict
        ``{kind: {"path", "size", "mtime_ns"}}`` for the inputs the extractor reads (``None`` values when a file
        is missing). Replacing a file (``import-media --overwrite``, an edit in place) changes the signature, so
        :func:`is_current` no longer accepts the old output.
    """
    out: dict[str, Any] = {}
    for k in getattr(ex, "inputs", ()):
        p = rec.audio_source() if k == "audio" else getattr(rec, k, None)
        if p is None:
            continue
        entry: dict[str, Any] = {"path": str(Path(p).resolve()), "size": None, "mtime_ns": None}
        try:
            st = Path(p).stat()
            entry.update(size=int(st.st_size), mtime_ns=int(st.st_mtime_ns))
        except (OSError, ValueError):
            pass
        out[k] = entry
    return out


def is_current(
    corpus: Corpus, feature_set: str, rid: str, config_hash: str, inputs: dict[str, Any] | None = None
) -> bool:
    """Whether the output of ``rid`` in ``feature_set`` exists, was made with ``config_hash`` and, when ``inputs``
    (an :func:`input_signature`) is given, from the same input files (path, size, modification time)."""
    if not corpus.feature_file(feature_set, rid).is_file():
        return False
    rec = read_record(corpus, feature_set, rid)
    if rec is None or rec.get("config_hash") != config_hash:
        return False
    return inputs is None or rec.get("input_signature") == inputs


def _remove_output(corpus: Corpus, feature_set: str, rid: str) -> None:
    corpus.feature_file(feature_set, rid).unlink(missing_ok=True)
    record_path(corpus, feature_set, rid).unlink(missing_ok=True)


def _remove_temporaries(corpus: Corpus, feature_set: str, rid: str) -> None:
    """Delete temporary files a killed earlier run left for this output (atomic_write's ``.<name>.*.tmp``)."""
    folder = corpus.path / "features" / feature_set
    for pattern in (f".{rid}.parquet.*.tmp",):
        for p in folder.glob(pattern):
            p.unlink(missing_ok=True)
    rec_dir = folder / RECORD_DIR
    if rec_dir.is_dir():
        for p in rec_dir.glob(f".{rid}.json.*.tmp"):
            p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------- validation
class InvalidOutput(Exception):
    """An extractor returned frames that cannot be stored (wrong shape, no rows, all NaN...)."""


def validate_frame(
    frame: Any, columns: list[str], *, duration: float | None = None, rate_hz: float | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Check an extractor's output and return it cleaned (``time`` then ``columns``), with warnings.

    Parameters
    ----------
    frame:
        What :meth:`Extractor.extract` returned.
    columns:
        The declared feature columns.
    duration:
        Recording length (s), to check coverage.
    rate_hz:
        Declared frame rate (Hz), to check coverage.

    Returns
    -------
    frame, warnings
        ``±inf`` values are replaced by NaN (with a warning).

    Raises
    ------
    InvalidOutput
        Not a DataFrame, no ``time`` column, other columns than declared, no rows, non-finite or non-increasing
        times, non-numeric values, or every value NaN.
    """
    warnings: list[str] = []
    if not isinstance(frame, pd.DataFrame):
        raise InvalidOutput(f"the extractor returned {type(frame).__name__}, not a pandas DataFrame")
    if TIME not in frame.columns:
        raise InvalidOutput(f"the output has no {TIME!r} column (columns: {list(frame.columns)[:6]}...)")
    cols = [c for c in frame.columns if c != TIME]
    if cols != list(columns):
        missing = [c for c in columns if c not in cols]
        extra = [c for c in cols if c not in columns]
        if missing or extra or len(cols) != len(columns):
            raise InvalidOutput(
                f"wrong shape: the output has {len(cols)} feature columns, the extractor declares {len(columns)}"
                + (f"; missing {missing[:5]}" if missing else "")
                + (f"; unexpected {extra[:5]}" if extra else "")
            )
        frame = frame[[TIME, *columns]]
    n = len(frame)
    if n == 0:
        raise InvalidOutput("empty output (0 frames)")
    t = pd.to_numeric(frame[TIME], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(t)):
        raise InvalidOutput(f"{int((~np.isfinite(t)).sum())} frame times are NaN or infinite")
    if n > 1 and not np.all(np.diff(t) > 0):
        raise InvalidOutput("frame times are not strictly increasing")
    try:
        values = frame[list(columns)].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidOutput(f"non-numeric feature values: {e}") from e
    if values.size == 0:
        raise InvalidOutput("the output has no feature columns")
    nan = np.isnan(values)
    if nan.all():
        raise InvalidOutput(f"every value is NaN ({n} frames x {len(columns)} columns): no usable feature")
    inf = np.isinf(values)
    if inf.any():
        warnings.append(f"{int(inf.sum())} infinite values replaced by NaN")
        values = np.where(inf, np.nan, values)
    finite = values[~np.isnan(values)]
    if finite.size and not np.any(finite != 0):
        warnings.append("every non-missing value is 0")
    empty_rows = np.isnan(values).all(axis=1).mean()
    if empty_rows > 0.5:
        warnings.append(f"{100 * empty_rows:.0f}% of the frames are missing (all NaN)")
    if duration and rate_hz:
        step = 1.0 / rate_hz
        if t[-1] < duration - max(2 * step, 2.0) or t[0] > max(2 * step, 2.0):
            warnings.append(f"frames cover {t[0]:.2f}-{t[-1]:.2f} s of a {duration:.2f} s recording")
        if t[-1] > duration + max(2 * step, 2.0):
            warnings.append(f"frames run to {t[-1]:.2f} s, past the recording's end ({duration:.2f} s)")
    out = pd.DataFrame(values.astype(np.float32), columns=list(columns))
    out.insert(0, TIME, t)
    return out, warnings


# ---------------------------------------------------------------------------------------------------- jobs
@dataclass
class _Job:
    feature_set: str
    rec: MediaRecording
    config_hash: str
    attempt: int = 0


def _input_files(ex: Extractor, rec: MediaRecording) -> str:
    files = []
    for k in getattr(ex, "inputs", ()):
        p = rec.audio_source() if k == "audio" else getattr(rec, k, None)
        if p is not None:
            files.append(str(p))
    return ", ".join(dict.fromkeys(files))


def _write_blocks(corpus: Corpus, feature_set: str, ex: Extractor, rec: MediaRecording) -> tuple[int, list[str]]:
    """Validate and store the blocks of ``ex.extract_blocks(rec)`` one at a time (the checks of
    :func:`validate_frame`, over the whole recording); returns the frame count and the warnings."""
    columns = list(ex.columns())
    seen = {"finite": False, "nonzero": False, "inf": 0, "empty_rows": 0, "first": None, "last": None}

    def checked():
        for block in ex.extract_blocks(rec):
            if not isinstance(block, pd.DataFrame) or not len(block):
                if isinstance(block, pd.DataFrame):
                    continue
                raise InvalidOutput(f"the extractor returned {type(block).__name__}, not a pandas DataFrame")
            if TIME not in block.columns:
                raise InvalidOutput(f"the output has no {TIME!r} column (columns: {list(block.columns)[:6]}...)")
            t = pd.to_numeric(block[TIME], errors="coerce").to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(t)):
                raise InvalidOutput(f"{int((~np.isfinite(t)).sum())} frame times are NaN or infinite")
            if (seen["last"] is not None and t[0] <= seen["last"]) or (len(t) > 1 and not np.all(np.diff(t) > 0)):
                raise InvalidOutput("frame times are not strictly increasing")
            seen["first"] = t[0] if seen["first"] is None else seen["first"]
            seen["last"] = t[-1]
            try:
                values = block[[c for c in block.columns if c != TIME]].to_numpy(dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise InvalidOutput(f"non-numeric feature values: {e}") from e
            inf = np.isinf(values)
            if inf.any():
                seen["inf"] += int(inf.sum())
                block = block.copy()
                block.iloc[:, 1:] = np.where(inf, np.nan, values)
                values = np.where(inf, np.nan, values)
            nan = np.isnan(values)
            seen["finite"] |= bool((~nan).any())
            seen["nonzero"] |= bool(np.any(values[~nan] != 0))
            seen["empty_rows"] += int(nan.all(axis=1).sum())
            yield block

    try:
        n = corpus.write_feature_blocks(feature_set, rec.id, checked())
    except CorpusError as e:
        raise InvalidOutput(str(e)) from e
    if n == 0:
        raise InvalidOutput("empty output (0 frames)")
    if not seen["finite"]:
        raise InvalidOutput(f"every value is NaN ({n} frames x {len(columns)} columns): no usable feature")
    warnings = []
    if seen["inf"]:
        warnings.append(f"{seen['inf']} infinite values replaced by NaN")
    if not seen["nonzero"]:
        warnings.append("every non-missing value is 0")
    if seen["empty_rows"] / n > 0.5:
        warnings.append(f"{100 * seen['empty_rows'] / n:.0f}% of the frames are missing (all NaN)")
    rate_hz, duration = getattr(ex, "rate_hz", None), rec.duration
    if duration and rate_hz:
        step = 1.0 / rate_hz
        if seen["last"] < duration - max(2 * step, 2.0) or seen["first"] > max(2 * step, 2.0):
            warnings.append(f"frames cover {seen['first']:.2f}-{seen['last']:.2f} s of a {duration:.2f} s recording")
        if seen["last"] > duration + max(2 * step, 2.0):
            warnings.append(f"frames run to {seen['last']:.2f} s, past the recording's end ({duration:.2f} s)")
    return n, warnings


def _job_result(feature_set: str, ex: Extractor, rec: MediaRecording, status: str, **fields: Any) -> JobResult:
    """The :class:`JobResult` of ``rec``'s ``feature_set`` job with its input files and media duration filled in;
    ``fields``: the other attributes (``message``, ``traceback``, ...)."""
    return JobResult(feature_set, ex.name, rec.id, status, file=_input_files(ex, rec), media_seconds=rec.duration,
                     **fields)


def _run_job(
    corpus_path: str, feature_set: str, ex: Extractor, rec: MediaRecording, config_hash: str
) -> JobResult:
    """Compute one output and store it (runs in a worker or in-process)."""
    res = _job_result(feature_set, ex, rec, "failed")
    corpus = Corpus(corpus_path)
    t0 = time.perf_counter()
    try:
        _remove_temporaries(corpus, feature_set, rec.id)
        signature = input_signature(ex, rec)  # taken before reading: a file replaced meanwhile is redone next time
        if callable(getattr(ex, "extract_blocks", None)):  # long raw-pixel recordings: one block in memory
            res.n_frames, res.warnings = _write_blocks(corpus, feature_set, ex, rec)
        else:
            frame = ex.extract(rec)
            frame, res.warnings = validate_frame(
                frame, list(ex.columns()), duration=rec.duration, rate_hz=getattr(ex, "rate_hz", None)
            )
            corpus.write_features(feature_set, rec.id, frame)
            res.n_frames = len(frame)
        res.seconds = time.perf_counter() - t0
        write_json(
            record_path(corpus, feature_set, rec.id),
            {
                "feature_set": feature_set,
                "recording": rec.id,
                "extractor": ex.name,
                "config_hash": config_hash,
                "params": ex.params(),
                "inputs": {
                    k: (str(getattr(rec, k)) if getattr(rec, k) is not None else None)
                    for k in ("audio", "video", "physio", "transcript")
                },
                "input_signature": signature,
                "n_frames": res.n_frames,
                "seconds": round(res.seconds, 4),
                "warnings": res.warnings,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )
        res.status = "done"
    except ExtractionError as e:
        res.message = f"ExtractionError: {e}"
    except InvalidOutput as e:
        res.message = f"invalid output: {e}"
    except Exception as e:  # noqa: BLE001 - one recording's bug must not stop the others
        res.message = f"{type(e).__name__}: {e}"
        res.traceback = traceback.format_exc(limit=8)
    if res.status == "failed":
        res.seconds = time.perf_counter() - t0
        try:
            _remove_output(corpus, feature_set, rec.id)
        except OSError:
            pass
    return res


_WORKER_EXTRACTORS: dict[str, Extractor] = {}


def _init_worker(extractors: dict[str, Extractor], threads: int) -> None:
    die_with_parent()  # a killed extract leaves no worker writing features
    _WORKER_EXTRACTORS.clear()
    _WORKER_EXTRACTORS.update(extractors)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    if "torch" in sys.modules:  # already imported by the parent (fork): limit its intra-op threads
        try:
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        except Exception:  # noqa: BLE001
            pass


def _worker_job(corpus_path: str, feature_set: str, rec: MediaRecording, config_hash: str) -> JobResult:
    return _run_job(corpus_path, feature_set, _WORKER_EXTRACTORS[feature_set], rec, config_hash)


# ---------------------------------------------------------------------------------------------------- extract
def extract(
    corpus: Corpus | str | os.PathLike,
    extractors: Mapping[str, Extractor] | Mapping[str, Any] | str | os.PathLike,
    *,
    recordings: Iterable[str] | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    registry: Registry | None = None,
    mp_context: str | None = None,
    report: bool = True,
    backend: str | None = None,
    executor_options: Mapping[str, Any] | None = None,
) -> ExtractionSummary:
    """Run every (recording, feature set) job of a corpus and store the outputs.

    Parameters
    ----------
    corpus:
        The corpus (or its folder); it must have raw media (``media.csv``, see :mod:`affectflow.corpus.media`).
    extractors:
        Feature-set name → :class:`Extractor` instance, or a configuration (mapping or YAML path, see the module
        docstring) built with :func:`build_extractors`.
    recordings:
        Recording ids to process (default: all recordings with raw media).
    workers:
        Worker processes; 1 runs in this process.
    overwrite:
        Recompute finished outputs too.
    progress:
        Show a tqdm progress bar (on stderr).
    registry:
        Registry that configuration names are looked up in (default :data:`EXTRACTORS`).
    mp_context:
        Multiprocessing start method (default ``fork`` where available, else ``spawn``).
    report:
        Write ``reports/extract-<time>.json``.
    backend, executor_options:
        ``None`` or ``local``: this process (``workers=1``) or the process pool above; ``serial``: this process;
        any other executor backend (``ray``, see :mod:`affectflow.execution`): every job is one task of
        that backend, with ``executor_options`` (e.g. ``{"address": "auto", "cpus": 1, "resources":
        {"cpu_node": 1}}``). Jobs are idempotent (atomic writes, temporaries removed first), so a task retried after
        its worker died writes the same output; the corpus folder must be on storage every node sees.

    Returns
    -------
    ExtractionSummary
        Per-job results; ``summary.ok`` is False when any job failed.

    Raises
    ------
    CorpusError
        No raw media, or unknown recording ids.
    ConfigError
        Bad configuration or ``workers < 1``.
    """
    t_start = time.perf_counter()
    corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ConfigError(f"workers must be a positive integer; got {workers!r}.")
    workers = int(workers)
    if isinstance(extractors, (str, os.PathLike)) or (
        isinstance(extractors, Mapping) and not all(isinstance(v, Extractor) for v in extractors.values())
    ):
        extractors = build_extractors(extractors, registry)
    extractors = dict(extractors)
    if not extractors:
        raise ConfigError("No extractors to run.")
    for name in extractors:
        try:
            check_name("feature set name", name)
        except CorpusError as e:
            raise ConfigError(str(e)) from e
    recs = media_recordings(corpus, None if recordings is None else list(recordings))
    rec_ids = {r.id for r in recs}

    results: list[JobResult] = []
    jobs: list[_Job] = []
    sets: dict[str, dict[str, Any]] = {}
    packed = [name for name in extractors if name in corpus.feature_sets and corpus.feature_layout(name) == "packed"]
    if packed:
        raise ConfigError(
            f"Feature set(s) {packed} of corpus {str(corpus.path)!r} are packed (imported clip sets, one array per "
            "set): extraction writes one file per recording and cannot add to them. Extract into a new set name.")
    for name, ex in extractors.items():
        h = ex.config_hash()
        meta = {"extractor": ex.name, "config_hash": h, "params": ex.params(), "stale_outputs": []}
        sets[name] = meta
        try:
            info = FeatureSetInfo(
                name=name,
                modality=ex.modality,
                columns=list(ex.columns()),
                rate_hz=getattr(ex, "rate_hz", None),
                params={"extractor": ex.name, "config_hash": h, "params": ex.params(),
                        **({"storage": ex.storage} if getattr(ex, "storage", None) else {})},
                description=(type(ex).__doc__ or "").strip().split("\n")[0],
            )
            old = corpus.feature_sets.get(name)
            if old is None or asdict(old) != asdict(info):
                corpus.write_feature_set_info(info)
        except Exception as e:  # noqa: BLE001 - a broken extractor fails its jobs, not the run
            for rec in recs:
                results.append(
                    JobResult(
                        name,
                        ex.name,
                        rec.id,
                        "failed",
                        file=_input_files(ex, rec),
                        message=f"cannot declare the feature set: {type(e).__name__}: {e}",
                        traceback=traceback.format_exc(limit=8),
                    )
                )
            continue
        folder = corpus.path / "features" / name
        for p in folder.glob("*.parquet"):
            if p.stem in rec_ids or not SAFE_NAME.match(p.stem):
                continue
            if not is_current(corpus, name, p.stem, h):
                meta["stale_outputs"].append(p.stem)
        for rec in recs:
            if not ex.can_process(rec):
                missing = [
                    k for k in ex.inputs if (rec.audio_source() if k == "audio" else getattr(rec, k)) is None
                ]
                results.append(
                    JobResult(
                        name,
                        ex.name,
                        rec.id,
                        "no_input",
                        message=f"no {', '.join(missing)} input",
                        media_seconds=rec.duration,
                    )
                )
            elif not overwrite and is_current(corpus, name, rec.id, h, input_signature(ex, rec)):
                results.append(
                    _job_result(name, ex, rec, "skipped", message="finished output, same config and input files")
                )
            else:
                jobs.append(_Job(name, rec, h))

    # interleave by recording so parallel workers share the load of heavy and light extractors
    order = {r.id: i for i, r in enumerate(recs)}
    jobs.sort(key=lambda j: order[j.rec.id])

    # a bar on a terminal; on a pipe or file one line when done (affectflow.progress)
    bar = progress_bar(total=len(jobs), desc="extract", unit="jobs", disable=not progress or not jobs,
                       dynamic_ncols=True, leave=True)
    n_failed = 0

    def finish(res: JobResult) -> None:
        nonlocal n_failed
        results.append(res)
        n_failed += res.status == "failed"
        bar.update(1)
        if n_failed:
            bar.set_postfix(failed=n_failed, refresh=False)

    # MediaPipe / TensorFlow Lite / absl start-up lines are dropped unless AFFECTFLOW_NATIVE_LOGS=1 (`affectflow -v`)
    with native_log_filter():
        try:
            if backend not in (None, "local", "serial") and jobs:
                _run_executor(corpus, extractors, jobs, backend, workers, dict(executor_options or {}), finish)
            elif workers == 1 or len(jobs) <= 1 or backend == "serial":
                for job in jobs:
                    finish(
                        _run_job(
                            str(corpus.path),
                            job.feature_set,
                            extractors[job.feature_set],
                            job.rec,
                            job.config_hash,
                        )
                    )
            else:
                _run_pool(corpus, extractors, jobs, workers, mp_context, finish)
        finally:
            bar.close()

    key = {(n, r.id): (i, j) for i, n in enumerate(extractors) for j, r in enumerate(recs)}
    results.sort(key=lambda r: key.get((r.feature_set, r.recording), (0, 0)))
    summary = ExtractionSummary(
        results=results,
        feature_sets=sets,
        wall_seconds=time.perf_counter() - t_start,
        workers=workers if len(jobs) > 1 else 1,
    )
    if report:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        summary.report_path = corpus.write_report(
            f"extract-{stamp}", {"corpus": str(corpus.path), **summary.to_dict()}
        )
    return summary


_TASK_EXTRACTORS: dict[tuple[str, str], Extractor] = {}


def _executor_job(item: tuple[str, str, Extractor, MediaRecording, str]) -> JobResult:
    """One extraction job as an executor task (top level, so every backend can pickle it). A worker process keeps
    the first extractor it receives per (feature set, config hash), so a model the extractor loads lazily is loaded
    once per worker, as in the process pool, not once per task."""
    corpus_path, feature_set, ex, rec, config_hash = item
    ex = _TASK_EXTRACTORS.setdefault((feature_set, config_hash), ex)
    return _run_job(corpus_path, feature_set, ex, rec, config_hash)


def _run_executor(corpus: Corpus, extractors: dict[str, Extractor], jobs: list[_Job], backend: str, workers: int,
                  options: dict[str, Any], finish) -> None:
    """Run ``jobs`` through an executor backend (:mod:`affectflow.execution`), one task per job."""
    options.setdefault("cpus", 1)
    ex = get_executor(backend, workers=workers, threads=1, **options)
    items = [(str(corpus.path), j.feature_set, extractors[j.feature_set], j.rec, j.config_hash) for j in jobs]
    try:
        for _, res in ex.map(_executor_job, items):
            finish(res)
    finally:
        ex.close()


def _run_pool(
    corpus: Corpus,
    extractors: dict[str, Extractor],
    jobs: list[_Job],
    workers: int,
    mp_context: str | None,
    finish,
) -> None:
    """Run ``jobs`` in a process pool, restarting the pool when a worker dies (see the module docstring)."""
    method = mp_context or ("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    ctx = multiprocessing.get_context(method)
    threads = max(1, usable_cpus() // workers)
    pending: deque[_Job] = deque(jobs)

    def failed(job: _Job, message: str, **fields: Any) -> None:
        finish(_job_result(job.feature_set, extractors[job.feature_set], job.rec, "failed", message=message, **fields))

    while pending:
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(pending)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(extractors, threads),
        )
        inflight: dict[Future, _Job] = {}
        broken = False
        try:
            while pending or inflight:
                # a job retried after a worker death runs alone, so it cannot take innocent jobs down again
                while pending and not broken and len(inflight) < workers:
                    if any(j.attempt > 0 for j in inflight.values()) or (pending[0].attempt > 0 and inflight):
                        break
                    job = pending.popleft()
                    try:
                        fut = pool.submit(
                            _worker_job, str(corpus.path), job.feature_set, job.rec, job.config_hash
                        )
                    except BrokenProcessPool:
                        pending.appendleft(job)
                        broken = True
                        break
                    inflight[fut] = job
                    if job.attempt > 0:
                        break
                if not inflight:
                    break
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in done:
                    job = inflight.pop(fut)
                    try:
                        finish(fut.result())
                    except BrokenProcessPool:
                        broken = True
                        if job.attempt == 0:
                            pending.appendleft(replace(job, attempt=1))
                        else:
                            failed(job, "the worker process died while extracting this recording (killed, out of "
                                   "memory, or crashed in native code)")
                            _remove_output(corpus, job.feature_set, job.rec.id)
                    except Exception as e:  # noqa: BLE001 - e.g. an unpicklable result
                        failed(job, f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=8))
                if broken and not inflight:
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
