"""Import a MuSe 2021, 2022 or 2023 task folder into an affectflow corpus.

Expected layout (see the MuSe baselines)::

    <task>/metadata/partition.csv              header "Id,Partition"
    <task>/feature_segments/<feature>/<Id>.csv timestamp (ms), segment_id, <feature columns ...>
    <task>/label_segments/<dim>/<Id>.csv       continuous: timestamp (ms), value, segment_id
                                               MuSe-Sent (2021): segment_id, class_id   (one row per segment)

What the importer does:

- Ids ``S_train`` / ``S_devel`` / ``S_test`` (MuSe 2023 personalisation) get subject ``S``; other ids are their
  own subject. Times are converted from milliseconds to seconds.
- Continuous label dimensions are joined **by timestamp** (outer join), never by row order; features keep their
  own timestamps and are aligned to the label grid when a model reads them
  (:mod:`affectflow.data.align`); the importer counts, per recording and feature set, label steps that have no
  feature frame at the same timestamp and feature frames outside the label grid.
- Duplicate timestamps (first row kept), unsorted rows (sorted), rows with NaN values (kept; they become masked
  steps), missing files (the recording lacks that feature set or label) are **reported** with counts and file
  names in ``reports/import.json`` and in the returned report; nothing is dropped silently.
- Unreadable files, a missing ``timestamp`` column, non-numeric feature columns, and feature files whose columns
  differ from the rest of their set are **errors**: the import stops with an
  :class:`~affectflow.errors.ImportFormatError` listing every such file (and writes nothing but the report).
- Values that are infinite or beyond the float32 range (e.g. ``1e308``) are stored as NaN and counted
  (``non_finite``) per feature set and label dimension, with the file names in the warnings.
- Ids of ``partition.csv`` must be safe file names and have a partition; blank or unsafe ids and blank partitions
  are errors (listed). An id with no feature or label file at all is not imported and is listed in
  ``dropped_ids`` and the warnings.
- MuSe-Sent segment labels (``segment_id, class_id`` files) become ``labels/segments.parquet`` with **one integer
  class column per label dimension** (e.g. ``arousal`` and ``valence``, or ``sentiment``); each segment's start and
  end come from the ``segment_id`` column of the recording's feature files. Without continuous labels the corpus's
  ``label_rate_hz`` (the time grid of segment samples) is taken from the feature timestamps.
- Everything is checked before anything is written; the corpus is then built in a hidden sibling folder and renamed
  into place, so a failed or killed import leaves no corpus (and never a partial one).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from affectflow.corpus.corpus import (
    TIME,
    Corpus,
    FeatureSetInfo,
    LabelSetInfo,
    describe_column_difference,
)
from affectflow.corpus.importreport import warning_lines
from affectflow.errors import CorpusError, ImportFormatError
from affectflow.fsutil import SAFE_NAME as _SAFE_ID, staged_folder
from affectflow.progress import progress_bar

_PERSONAL = re.compile(r"^(?P<subject>.+)_(?P<part>train|devel|test)$")
_RESERVED = {"time", "recording", "segment_id", "start", "end"}
_MATCH_TOL_S = 1e-3


@dataclass
class ImportReport:
    """What an import found. ``errors`` stop the import; ``warnings`` are counted data problems."""

    task_dir: str
    recordings: int = 0
    feature_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    label_dims: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing_files: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)
    grid: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)

    def summary(self) -> str:
        """Human-readable summary with counts."""
        lines = [f"Imported {self.recordings} recordings from {self.task_dir}"]
        for name, s in self.feature_sets.items():
            lines.append(
                f"  feature set {name}: {s['files']} files, {s['dim']} dims, {s['frames']} frames; "
                f"NaN rows {s['nan_rows']}, values out of float32 range {s.get('non_finite', 0)}, "
                f"duplicate timestamps dropped {s['duplicates']}, "
                f"label steps without a frame {s['label_steps_unmatched']}, frames off the label grid {s['frames_unmatched']}"
            )
        for name, s in self.label_dims.items():
            if "segments" in s:
                lines.append(f"  label {name}: {s['files']} files, {s['segments']} segment classes")
            else:
                lines.append(f"  label {name}: {s['files']} files, {s['rows']} rows, NaN {s['nan']}, values out of "
                             f"float32 range {s.get('non_finite', 0)}, duplicates dropped {s['duplicates']}")
        if self.dropped_ids:
            lines.append(f"  not imported (no file at all): {len(self.dropped_ids)} ids, e.g. {self.dropped_ids[:5]}")
        if self.grid.get("label_rate_hz"):
            lines.append(f"  label grid: {self.grid['label_rate_hz']:g} Hz (from the {self.grid['from']})")
        if self.missing_files:
            lines.append(f"  missing files: {len(self.missing_files)} (e.g. {', '.join(self.missing_files[:3])})")
        return "\n".join(lines + warning_lines(self.warnings))


def subject_of(rid: str) -> str:
    """Subject of a MuSe id: ``"12_train"`` → ``"12"``; other ids are their own subject."""
    m = _PERSONAL.match(rid)
    return m.group("subject") if m else rid


def _read_csv(path: Path, report: ImportReport) -> pd.DataFrame | None:
    try:
        df = pd.read_csv(path, encoding="utf-8")
    except Exception as e:  # noqa: BLE001 - any parse failure is reported per file
        report.errors.append(f"{path}: cannot be read as CSV ({type(e).__name__}: {e})")
        return None
    if df.empty:
        report.errors.append(f"{path}: has no rows")
        return None
    return df


def _read_csvs(folder: Path, ids: list[str], report: ImportReport, *, desc: str,
               progress: bool) -> Iterator[tuple[str, Path, pd.DataFrame]]:
    """``(id, file, frame)`` of each ``<folder>/<id>.csv`` that exists and reads as a non-empty CSV; a missing file
    goes to ``report.missing_files``, an unreadable one to ``report.errors``."""
    for rid in progress_bar(ids, desc=desc, disable=not progress):
        f = folder / f"{rid}.csv"
        if not f.is_file():
            report.missing_files.append(str(f))
            continue
        df = _read_csv(f, report)
        if df is not None:
            yield rid, f, df


def _clean_times(df: pd.DataFrame, path: Path, report: ImportReport, stats: dict) -> pd.DataFrame | None:
    if "timestamp" not in df.columns:
        report.errors.append(f"{path}: no 'timestamp' column (columns: {list(df.columns)[:6]}...)")
        return None
    ts = pd.to_numeric(df["timestamp"], errors="coerce")
    if ts.isna().any():
        report.errors.append(f"{path}: {int(ts.isna().sum())} non-numeric or empty timestamps")
        return None
    df = df.assign(timestamp=ts)
    if not ts.is_monotonic_increasing:
        report.warnings.append(f"{path}: rows not sorted by timestamp (sorted on import)")
        df = df.sort_values("timestamp", kind="stable")
    dup = df["timestamp"].duplicated(keep="first")
    if dup.any():
        n = int(dup.sum())
        stats["duplicates"] += n
        report.warnings.append(f"{path}: {n} duplicate timestamps (first row kept)")
        df = df.loc[~dup]
    return df.reset_index(drop=True)


def _read_partition_file(part_file: Path) -> pd.DataFrame:
    """``metadata/partition.csv`` as a frame ``id, partition`` (stripped; partition lower-case), fully checked.

    Every problem of the file (unreadable, no header, blank or unsafe ids and partitions, repeated ids) is collected
    and raised as one :class:`ImportFormatError`.
    """
    try:
        parts = pd.read_csv(part_file, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise ImportFormatError(f"{part_file} is empty; expected the header 'Id,Partition' and one row per recording.") from None
    except UnicodeDecodeError as e:
        raise ImportFormatError(f"{part_file} is not UTF-8 text ({e}); expected a CSV with the header 'Id,Partition'.") from None
    except (ValueError, pd.errors.ParserError) as e:
        raise ImportFormatError(f"{part_file} cannot be read as CSV ({type(e).__name__}: {e}).") from None
    cols = {str(c).strip().lower(): c for c in parts.columns}
    if "id" not in cols or "partition" not in cols:
        raise ImportFormatError(f"{part_file} has columns {list(parts.columns)}; expected the header 'Id,Partition'.")
    parts = parts.rename(columns={cols["id"]: "id", cols["partition"]: "partition"})[["id", "partition"]]
    parts = parts.astype(str)
    parts["id"] = parts["id"].str.strip()
    parts["partition"] = parts["partition"].str.strip().str.lower()
    problems = []
    rows = parts.index.to_numpy() + 2  # line numbers (header is line 1)
    blank_id = parts["id"] == ""
    if blank_id.any():
        problems.append(f"{int(blank_id.sum())} row(s) with a blank Id (lines {rows[blank_id.to_numpy()][:10].tolist()})")
    bad_id = [i for i in parts.loc[~blank_id, "id"] if not _SAFE_ID.match(i)]
    if bad_id:
        problems.append(f"{len(bad_id)} Id(s) that are not safe file names {bad_id[:10]}")
    blank_p = (parts["partition"] == "") & ~blank_id
    if blank_p.any():
        problems.append(f"{int(blank_p.sum())} recording(s) with a blank Partition {parts.loc[blank_p, 'id'].tolist()[:10]}")
    bad_p = sorted({q for q in parts["partition"] if q and not _SAFE_ID.match(q)})
    if bad_p:
        problems.append(f"Partition value(s) that are not safe names {bad_p[:10]}")
    dup = parts.loc[~blank_id & parts["id"].duplicated(), "id"].tolist()
    if dup:
        problems.append(f"{len(dup)} Id(s) listed more than once {dup[:10]}")
    if parts.empty:
        problems.append("no rows")
    if problems:
        raise ImportFormatError(
            f"{part_file} cannot be imported: " + "; ".join(problems) + ". Every row needs an Id (letters, digits, "
            "'_', '.', '+', '-', starting with a letter or digit: it becomes a file name) and a Partition "
            "(e.g. train, devel, test)."
        )
    return parts


def _to_float32(values: pd.DataFrame | pd.Series) -> tuple[np.ndarray, int]:
    """Values as float32 and the number that are infinite or overflow float32 (those become NaN)."""
    v64 = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        v32 = v64.astype(np.float32)
    bad = ~np.isfinite(v32) & ~np.isnan(v64)
    if bad.any():
        v32 = np.where(bad, np.float32(np.nan), v32)
    return v32, int(bad.sum())


def import_muse(
    task_dir: str | Path,
    out: str | Path,
    *,
    features: list[str] | None = None,
    labels: list[str] | None = None,
    name: str | None = None,
    progress: bool = True,
) -> tuple[Corpus, ImportReport]:
    """Import a MuSe task folder into a new corpus at ``out``.

    Everything is read and checked first; the corpus is then written into a hidden sibling folder that is renamed
    to ``out`` (:func:`~affectflow.corpus.corpus.staged_folder`), so an import that fails, or is killed, leaves no
    corpus behind (and no partial one).

    Parameters
    ----------
    task_dir:
        The task folder (holding ``metadata/``, ``feature_segments/``, ``label_segments/``).
    out:
        New corpus folder (must not exist or be empty).
    features, labels:
        Feature sets and label dimensions to import (default: all folders found).
    name:
        Corpus name (default: the task folder's name).

    Returns
    -------
    (Corpus, ImportReport)

    Raises
    ------
    ImportFormatError
        The folder does not follow the layout, or files have problems that stop the import (all listed).
    CorpusError
        ``out`` exists and is not empty.
    """
    task = Path(task_dir)
    out = Path(out)
    report = ImportReport(str(task))
    part_file = task / "metadata" / "partition.csv"
    if not task.is_dir():
        raise ImportFormatError(f"MuSe task folder {str(task)!r} does not exist.")
    if not part_file.is_file():
        raise ImportFormatError(
            f"{part_file} is missing: a MuSe task folder has metadata/partition.csv (header 'Id,Partition'), "
            "feature_segments/<feature>/<Id>.csv and label_segments/<dim>/<Id>.csv."
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CorpusError(f"Cannot create a corpus in {str(out)!r}: it exists and is not an empty folder.")
    parts = _read_partition_file(part_file)
    ids = parts["id"].tolist()

    feat_root, label_root = task / "feature_segments", task / "label_segments"
    avail_f = sorted(p.name for p in feat_root.iterdir() if p.is_dir()) if feat_root.is_dir() else []
    avail_l = sorted(p.name for p in label_root.iterdir() if p.is_dir()) if label_root.is_dir() else []
    features = avail_f if features is None else features
    labels = avail_l if labels is None else labels
    for kind, want, have, root in [("feature set", features, avail_f, feat_root), ("label dimension", labels, avail_l, label_root)]:
        bad = [w for w in want if w not in have]
        if bad:
            raise ImportFormatError(f"{kind.capitalize()}s {bad} are not folders of {root}; found {have}.")
        unsafe = [w for w in want if not _SAFE_ID.match(w) or w in _RESERVED]
        if unsafe:
            raise ImportFormatError(
                f"{kind.capitalize()} folder names {unsafe} of {root} cannot be imported: names must be safe file "
                f"names (letters, digits, '_', '.', '+', '-') and not one of {sorted(_RESERVED)}."
            )
    if not features:
        raise ImportFormatError(f"No feature sets found under {feat_root}.")

    # ---- labels: continuous dims joined by timestamp; MuSe-Sent segment classes (one column per dimension)
    cont: dict[str, dict[str, pd.DataFrame]] = defaultdict(dict)  # id -> dim -> frame(time, value)
    seg_labels: dict[str, dict[str, pd.DataFrame]] = defaultdict(dict)  # dim -> id -> (segment_id, class_id)
    kinds: dict[str, set[str]] = defaultdict(set)  # dim -> {"segment", "continuous"}
    for dim in labels:
        stats = {"files": 0, "rows": 0, "nan": 0, "duplicates": 0, "non_finite": 0}
        for rid, f, df in _read_csvs(label_root / dim, ids, report, desc=f"labels {dim}", progress=progress):
            stats["files"] += 1
            if "timestamp" not in df.columns and {"segment_id", "class_id"} <= set(df.columns):
                kinds[dim].add("segment")
                seg = _segment_classes(df, f, report)
                if seg is not None:
                    seg_labels[dim][rid] = seg
                    stats["rows"] += len(seg)
                continue
            kinds[dim].add("continuous")
            df = _clean_times(df, f, report, stats)
            if df is None:
                continue
            if "value" not in df.columns:
                report.errors.append(f"{f}: no 'value' column (columns: {list(df.columns)})")
                continue
            v = pd.to_numeric(df["value"], errors="coerce")
            bad = int(v.isna().sum() - df["value"].isna().sum())
            if bad:
                report.errors.append(f"{f}: {bad} non-numeric label values")
                continue
            v32, n_inf = _to_float32(v)
            if n_inf:
                stats["non_finite"] += n_inf
                report.warnings.append(f"{f}: {n_inf} label values are infinite or beyond the float32 range "
                                       "(stored as NaN = not annotated)")
            stats["rows"] += len(df)
            stats["nan"] += int(np.isnan(v32).sum())
            cont[rid][dim] = pd.DataFrame({TIME: df["timestamp"].to_numpy(np.float64) / 1000.0, dim: v32})
        report.label_dims[dim] = stats
    mixed = [d for d, k in kinds.items() if len(k) > 1]
    for d in mixed:
        report.errors.append(f"label dimension {d!r}: some files hold segment classes (segment_id, class_id) and "
                             "others continuous values (timestamp, value); expected one kind per dimension")
    seg_dims = [d for d in labels if kinds.get(d) == {"segment"}]
    cont_dims = [d for d in labels if d not in seg_dims and d not in mixed]

    # ---- features
    frames: dict[str, dict[str, pd.DataFrame]] = defaultdict(dict)  # set -> id -> frame
    segspans: dict[str, pd.DataFrame] = {}
    columns_of: dict[str, list[str]] = {}
    first_file: dict[str, Path] = {}
    for fs in features:
        stats = {"files": 0, "dim": 0, "frames": 0, "nan_rows": 0, "duplicates": 0, "non_finite": 0,
                 "label_steps_unmatched": 0, "frames_unmatched": 0, "steps": []}
        for rid, f, df in _read_csvs(feat_root / fs, ids, report, desc=f"features {fs}", progress=progress):
            df = _clean_times(df, f, report, stats)
            if df is None:
                continue
            fcols = [str(c) for c in df.columns if c not in ("timestamp", "segment_id")]
            if not fcols:
                report.errors.append(f"{f}: no feature columns besides timestamp/segment_id")
                continue
            if TIME in fcols or len(set(fcols)) != len(fcols):
                report.errors.append(f"{f}: a feature column is named {TIME!r} or repeated")
                continue
            if fs in columns_of and fcols != columns_of[fs]:
                report.errors.append(
                    f"{f}: columns differ from the other files of {fs!r} (first: {first_file[fs].name}): "
                    + describe_column_difference(fcols, columns_of[fs])
                )
                continue
            columns_of.setdefault(fs, fcols)
            first_file.setdefault(fs, f)
            raw = df.drop(columns=[c for c in ("timestamp", "segment_id") if c in df.columns])
            raw.columns = fcols
            numeric = raw.apply(pd.to_numeric, errors="coerce")
            non_numeric = [c for c in fcols if (numeric[c].isna() & raw[c].notna()).any()]
            if non_numeric:
                report.errors.append(f"{f}: non-numeric values in columns {non_numeric[:8]}")
                continue
            if "segment_id" in df.columns and pd.to_numeric(df["segment_id"], errors="coerce").isna().any():
                report.errors.append(f"{f}: blank or non-numeric segment_id values")
                continue
            stats["files"] += 1
            stats["frames"] += len(df)
            values, n_inf = _to_float32(numeric.to_numpy())
            if n_inf:
                stats["non_finite"] += n_inf
                report.warnings.append(f"{f}: {n_inf} values are infinite or beyond the float32 range "
                                       "(stored as NaN = missing)")
            nan_rows = int(np.isnan(values).any(axis=1).sum())
            if nan_rows:
                stats["nan_rows"] += nan_rows
                report.warnings.append(f"{f}: {nan_rows} rows with NaN values (kept as missing steps)")
            t = df["timestamp"].to_numpy(np.float64) / 1000.0
            frame = pd.concat([pd.DataFrame({TIME: t}), pd.DataFrame(values, columns=fcols)], axis=1)
            frames[fs][rid] = frame
            if len(t) > 1:
                stats["steps"].append(float(np.median(np.diff(t))))
            if "segment_id" in df.columns and rid not in segspans:
                segspans[rid] = pd.DataFrame({"segment_id": pd.to_numeric(df["segment_id"]).to_numpy(), TIME: t})
            lab = _label_times(cont.get(rid, {}))
            if lab is not None:
                matched_l = _matched(lab, t)
                matched_f = _matched(t, lab)
                ul, uf = int((~matched_l).sum()), int((~matched_f).sum())
                stats["label_steps_unmatched"] += ul
                stats["frames_unmatched"] += uf
                if ul or uf:
                    report.warnings.append(
                        f"{f}: {ul} of {len(lab)} label timestamps have no frame at the same time, "
                        f"{uf} of {len(t)} frames are off the label grid (aligned by the nearest-frame rule at training)"
                    )
        stats["dim"] = len(columns_of.get(fs, []))
        report.feature_sets[fs] = stats

    if report.errors:
        msg = "\n".join(f"  - {e}" for e in report.errors[:25])
        more = f"\n  ... and {len(report.errors) - 25} more" if len(report.errors) > 25 else ""
        raise ImportFormatError(f"The MuSe import found {len(report.errors)} problem(s) that stop it (nothing was "
                                f"written):\n{msg}{more}")

    # ---- recordings without any data are not imported (reported with their ids)
    has_data = {rid for fs in frames for rid in frames[fs]} | set(cont) | {r for d in seg_labels.values() for r in d}
    empty = [rid for rid in ids if rid not in has_data]
    if empty:
        report.dropped_ids = empty
        report.warnings.insert(0, f"{len(empty)} id(s) of partition.csv have no feature or label file and were not "
                                  f"imported: {empty[:10]}" + (" ..." if len(empty) > 10 else ""))
    kept = parts[parts["id"].isin(has_data)]
    if kept.empty:
        raise ImportFormatError(f"None of the {len(ids)} ids of {part_file} has a feature or label file under {task}.")

    # ---- grid: the continuous labels' step, else the feature frames' step (MuSe-Sent has no continuous labels)
    label_steps = [float(np.median(np.diff(d[TIME]))) for r in cont.values() for d in r.values() if len(d) > 1]
    feature_steps = [s for fs in features for s in report.feature_sets[fs]["steps"]]
    steps = label_steps or feature_steps
    label_rate = round(1.0 / float(np.median(steps)), 6) if steps and np.median(steps) > 0 else None
    report.grid = {"label_rate_hz": label_rate, "from": "labels" if label_steps else ("features" if steps else None)}

    seg_table = _segment_table(seg_dims, seg_labels, segspans, report) if seg_dims else None
    with staged_folder(out) as tmp:
        corpus = Corpus.create(tmp, name=name or task.name, label_rate_hz=label_rate,
                               description=f"Imported from MuSe task folder {task}", source=str(task.resolve()))
        for fs in features:
            if fs not in columns_of:
                continue
            steps_fs = report.feature_sets[fs]["steps"]
            rate = round(1.0 / float(np.median(steps_fs)), 6) if steps_fs else None
            corpus.write_feature_set_info(FeatureSetInfo(fs, guess_modality(fs), columns_of[fs], rate, params={"source": "muse"}))
            for rid, fr in progress_bar(frames[fs].items(), desc=f"writing {fs}", unit="recordings",
                                        disable=not progress):
                corpus.write_features(fs, rid, fr)
        for fs in features:
            report.feature_sets.get(fs, {}).pop("steps", None)
        if cont_dims and cont:
            corpus.write_label_set_info(LabelSetInfo("continuous", cont_dims, label_rate, "MuSe continuous labels"))
            for rid, dims in progress_bar(cont.items(), desc="writing labels", unit="recordings", disable=not progress):
                joined = None
                for dim in cont_dims:
                    if dim in dims:
                        joined = dims[dim] if joined is None else joined.merge(dims[dim], on=TIME, how="outer")
                if joined is None:
                    continue
                for dim in cont_dims:
                    if dim not in joined:
                        joined[dim] = np.nan
                corpus.write_labels(rid, joined.sort_values(TIME)[[TIME, *cont_dims]].reset_index(drop=True))
        if seg_table is not None:
            corpus.write_segments(seg_table)

        table = []
        step = 1.0 / label_rate if label_rate else 0.0
        for rid, part in zip(kept["id"], kept["partition"]):
            ends = [frames[fs][rid][TIME].iloc[-1] for fs in frames if rid in frames[fs] and len(frames[fs][rid])]
            ends += [d[TIME].iloc[-1] for d in cont.get(rid, {}).values() if len(d)]
            if seg_table is not None:
                e = seg_table.loc[seg_table["recording"] == rid, "end"].dropna()
                ends += [float(e.max())] if len(e) else []
            table.append({"id": rid, "subject": subject_of(rid), "partition": part,
                          "duration": (max(ends) + step) if ends else 0.0})
        corpus.set_recordings(pd.DataFrame(table))
        report.recordings = len(table)
        corpus.write_report("import", report.to_dict())
    return Corpus(out), report


def _segment_classes(df: pd.DataFrame, f: Path, report: ImportReport) -> pd.DataFrame | None:
    """``segment_id, class_id`` of a MuSe-Sent label file as integers; problems go to ``report.errors``."""
    out = {}
    for c in ("segment_id", "class_id"):
        v = pd.to_numeric(df[c], errors="coerce")
        bad = v.isna() | ~np.isfinite(v.fillna(0)) | (v.fillna(0) != np.round(v.fillna(0)))
        if bad.any():
            rows = (df.index[bad.to_numpy()] + 2).tolist()[:10]
            report.errors.append(f"{f}: {int(bad.sum())} blank or non-integer {c} values (lines {rows}); expected "
                                 f"integers such as {c}=3")
            return None
        out[c] = v.astype(np.int64).to_numpy()
    seg = pd.DataFrame(out)
    if seg["segment_id"].duplicated().any():
        report.errors.append(f"{f}: segment ids listed more than once "
                             f"{seg.loc[seg['segment_id'].duplicated(), 'segment_id'].tolist()[:10]}")
        return None
    return seg


def _segment_table(seg_dims: list[str], seg_labels: dict[str, dict[str, pd.DataFrame]],
                   segspans: dict[str, pd.DataFrame], report: ImportReport) -> pd.DataFrame:
    """One row per (recording, segment) with one integer class column per segment dimension (missing = <NA>)."""
    merged: dict[str, pd.DataFrame] = {}
    for dim in seg_dims:
        for rid, seg in seg_labels[dim].items():
            s = seg.rename(columns={"class_id": dim})
            merged[rid] = s if rid not in merged else merged[rid].merge(s, on="segment_id", how="outer")
    rows = []
    for rid, seg in merged.items():
        span = segspans.get(rid)
        step = float(np.median(np.diff(span[TIME]))) if span is not None and len(span) > 1 else 0.0
        for r in seg.sort_values("segment_id").to_dict("records"):
            start = end = np.nan
            if span is not None:
                ts = span.loc[span["segment_id"] == r["segment_id"], TIME]
                if len(ts):
                    start, end = float(ts.min()), float(ts.max()) + step
            if np.isnan(start):
                report.warnings.append(f"{rid}: segment {r['segment_id']} has no frames in the feature files (no span)")
            row = {"recording": rid, "segment_id": int(r["segment_id"]), "start": start, "end": end}
            for dim in seg_dims:
                v = r.get(dim)
                row[dim] = pd.NA if v is None or pd.isna(v) else int(v)
            rows.append(row)
        missing = {d: int(seg[d].isna().sum()) for d in seg_dims if d in seg and seg[d].isna().any()}
        missing.update({d: len(seg) for d in seg_dims if d not in seg})
        for d, n in missing.items():
            report.warnings.append(f"{rid}: {n} segment(s) have no {d} class (left empty)")
    table = pd.DataFrame(rows)
    for dim in seg_dims:
        table[dim] = table[dim].astype("Int64")
    for dim in seg_dims:
        report.label_dims[dim]["segments"] = int(table[dim].notna().sum())
    return table


def _label_times(dims: dict[str, pd.DataFrame]) -> np.ndarray | None:
    if not dims:
        return None
    return np.unique(np.concatenate([d[TIME].to_numpy() for d in dims.values()]))


def _matched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each time in ``a``, whether ``b`` has a time within 1 ms."""
    if len(b) == 0:
        return np.zeros(len(a), dtype=bool)
    pos = np.clip(np.searchsorted(b, a), 1, len(b) - 1) if len(b) > 1 else np.zeros(len(a), dtype=int)
    near = np.minimum(np.abs(b[pos] - a), np.abs(b[np.maximum(pos - 1, 0)] - a))
    return near <= _MATCH_TOL_S


_MODALITIES = {
    "audio": ("egemaps", "ds", "deepspectrum", "w2v", "wav2vec", "vggish", "audio", "compare"),
    "video": ("faus", "fau", "vit", "facenet", "vggface", "face", "video", "affectnet", "apvit"),
    "text": ("bert", "text", "electra", "fasttext"),
    "physio": ("bio", "ecg", "eda", "resp", "bpm", "phys", "hrv"),
}


def guess_modality(name: str) -> str:
    """The modality of a challenge feature set from its name (``egemaps`` → audio, ``vggface`` → video, ...;
    ``other`` when unknown)."""
    low = name.lower()
    for mod, keys in _MODALITIES.items():
        if any(low.startswith(k) or k in low for k in keys):
            return mod
    return "other"


_modality = guess_modality  # old name, kept for callers of earlier versions
