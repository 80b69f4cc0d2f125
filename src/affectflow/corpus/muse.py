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
- MuSe-Sent segment labels become ``labels/segments.parquet`` with column ``sentiment``; each segment's start
  and end come from the ``segment_id`` column of the recording's feature files.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from affectflow.corpus.corpus import TIME, Corpus, FeatureSetInfo, LabelSetInfo
from affectflow.errors import ImportFormatError

_PERSONAL = re.compile(r"^(?P<subject>.+)_(?P<part>train|devel|test)$")
_MATCH_TOL_S = 1e-3


@dataclass
class ImportReport:
    """What an import found. ``errors`` stop the import; ``warnings`` are counted data problems."""

    task_dir: str
    recordings: int = 0
    feature_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    label_dims: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing_files: list[str] = field(default_factory=list)
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
                f"NaN rows {s['nan_rows']}, duplicate timestamps dropped {s['duplicates']}, "
                f"label steps without a frame {s['label_steps_unmatched']}, frames off the label grid {s['frames_unmatched']}"
            )
        for name, s in self.label_dims.items():
            lines.append(f"  label {name}: {s['files']} files, {s['rows']} rows, NaN {s['nan']}, duplicates dropped {s['duplicates']}")
        if self.missing_files:
            lines.append(f"  missing files: {len(self.missing_files)} (e.g. {', '.join(self.missing_files[:3])})")
        for w in self.warnings[:20]:
            lines.append(f"  warning: {w}")
        if len(self.warnings) > 20:
            lines.append(f"  ... and {len(self.warnings) - 20} more warnings (see reports/import.json)")
        return "\n".join(lines)


def subject_of(rid: str) -> str:
    """Subject of a MuSe id: ``"12_train"`` → ``"12"``; other ids are their own subject."""
    m = _PERSONAL.match(rid)
    return m.group("subject") if m else rid


def _read_csv(path: Path, report: ImportReport) -> pd.DataFrame | None:
    try:
        df = pd.read_csv(path)
    except Exception as e:  # noqa: BLE001 - any parse failure is reported per file
        report.errors.append(f"{path}: cannot be read as CSV ({type(e).__name__}: {e})")
        return None
    if df.empty:
        report.errors.append(f"{path}: has no rows")
        return None
    return df


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
    """
    task = Path(task_dir)
    report = ImportReport(str(task))
    part_file = task / "metadata" / "partition.csv"
    if not task.is_dir():
        raise ImportFormatError(f"MuSe task folder {str(task)!r} does not exist.")
    if not part_file.is_file():
        raise ImportFormatError(
            f"{part_file} is missing: a MuSe task folder has metadata/partition.csv (header 'Id,Partition'), "
            "feature_segments/<feature>/<Id>.csv and label_segments/<dim>/<Id>.csv."
        )
    parts = pd.read_csv(part_file, dtype=str)
    cols = {c.strip().lower(): c for c in parts.columns}
    if "id" not in cols or "partition" not in cols:
        raise ImportFormatError(f"{part_file} has columns {list(parts.columns)}; expected the header 'Id,Partition'.")
    parts = parts.rename(columns={cols["id"]: "id", cols["partition"]: "partition"})[["id", "partition"]]
    parts["id"] = parts["id"].str.strip()
    parts["partition"] = parts["partition"].str.strip().str.lower()
    if parts["id"].duplicated().any():
        raise ImportFormatError(f"{part_file} lists ids more than once: {parts.loc[parts['id'].duplicated(), 'id'].tolist()[:10]}")
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
    if not features:
        raise ImportFormatError(f"No feature sets found under {feat_root}.")

    # ---- labels: continuous dims joined by timestamp; MuSe-Sent segment classes separately
    cont: dict[str, dict[str, pd.DataFrame]] = defaultdict(dict)  # id -> dim -> frame(time, value)
    seg_labels: dict[str, pd.DataFrame] = {}  # id -> (segment_id, class)
    seg_dim = None
    for dim in labels:
        stats = {"files": 0, "rows": 0, "nan": 0, "duplicates": 0}
        for rid in tqdm(ids, desc=f"labels {dim}", disable=not progress, leave=False):
            f = label_root / dim / f"{rid}.csv"
            if not f.is_file():
                report.missing_files.append(str(f))
                continue
            df = _read_csv(f, report)
            if df is None:
                continue
            stats["files"] += 1
            if "timestamp" not in df.columns and {"segment_id", "class_id"} <= set(df.columns):
                seg_dim = dim
                seg_labels[rid] = df[["segment_id", "class_id"]]
                stats["rows"] += len(df)
                continue
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
            stats["rows"] += len(df)
            stats["nan"] += int(v.isna().sum())
            cont[rid][dim] = pd.DataFrame({TIME: df["timestamp"].to_numpy(np.float64) / 1000.0, dim: v.to_numpy(np.float32)})
        report.label_dims[dim] = stats
    cont_dims = [d for d in labels if d != seg_dim]

    # ---- features
    frames: dict[str, dict[str, pd.DataFrame]] = defaultdict(dict)  # set -> id -> frame
    segspans: dict[str, pd.DataFrame] = {}
    columns_of: dict[str, list[str]] = {}
    for fs in features:
        stats = {"files": 0, "dim": 0, "frames": 0, "nan_rows": 0, "duplicates": 0, "label_steps_unmatched": 0,
                 "frames_unmatched": 0, "steps": []}
        for rid in tqdm(ids, desc=f"features {fs}", disable=not progress, leave=False):
            f = feat_root / fs / f"{rid}.csv"
            if not f.is_file():
                report.missing_files.append(str(f))
                continue
            df = _read_csv(f, report)
            if df is None:
                continue
            df = _clean_times(df, f, report, stats)
            if df is None:
                continue
            fcols = [c for c in df.columns if c not in ("timestamp", "segment_id")]
            if not fcols:
                report.errors.append(f"{f}: no feature columns besides timestamp/segment_id")
                continue
            if fs in columns_of and fcols != columns_of[fs]:
                report.errors.append(
                    f"{f}: columns differ from the other files of {fs!r} ({len(fcols)} vs {len(columns_of[fs])} columns)"
                )
                continue
            columns_of.setdefault(fs, fcols)
            numeric = df[fcols].apply(pd.to_numeric, errors="coerce")
            non_numeric = [c for c in fcols if (numeric[c].isna() & df[c].notna()).any()]
            if non_numeric:
                report.errors.append(f"{f}: non-numeric values in columns {non_numeric[:8]}")
                continue
            stats["files"] += 1
            stats["frames"] += len(df)
            nan_rows = int(numeric.isna().any(axis=1).sum())
            if nan_rows:
                stats["nan_rows"] += nan_rows
                report.warnings.append(f"{f}: {nan_rows} rows with NaN values (kept as missing steps)")
            t = df["timestamp"].to_numpy(np.float64) / 1000.0
            frame = pd.concat([pd.DataFrame({TIME: t}), numeric.astype(np.float32).reset_index(drop=True)], axis=1)
            frames[fs][rid] = frame
            if len(t) > 1:
                stats["steps"].append(float(np.median(np.diff(t))))
            if "segment_id" in df.columns and rid not in segspans:
                segspans[rid] = pd.DataFrame({"segment_id": df["segment_id"].to_numpy(), TIME: t})
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
        raise ImportFormatError(f"The MuSe import found {len(report.errors)} problem(s) that stop it:\n{msg}{more}")

    # ---- write the corpus
    label_steps = [float(np.median(np.diff(d[TIME]))) for r in cont.values() for d in r.values() if len(d) > 1]
    label_rate = round(1.0 / float(np.median(label_steps)), 6) if label_steps else None
    corpus = Corpus.create(out, name=name or task.name, label_rate_hz=label_rate,
                           description=f"Imported from MuSe task folder {task}", source=str(task.resolve()))
    for fs in features:
        if fs not in columns_of:
            continue
        steps = report.feature_sets[fs].pop("steps")
        rate = round(1.0 / float(np.median(steps)), 6) if steps else None
        corpus.write_feature_set_info(FeatureSetInfo(fs, _modality(fs), columns_of[fs], rate, params={"source": "muse"}))
        for rid, fr in frames[fs].items():
            corpus.write_features(fs, rid, fr)
    for fs in features:
        report.feature_sets.get(fs, {}).pop("steps", None)
    if cont_dims:
        corpus.write_label_set_info(LabelSetInfo("continuous", cont_dims, label_rate, "MuSe continuous labels"))
        for rid, dims in cont.items():
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
    if seg_labels:
        rows = []
        for rid, seg in seg_labels.items():
            span = segspans.get(rid)
            for _, r in seg.iterrows():
                start = end = np.nan
                if span is not None:
                    ts = span.loc[span["segment_id"] == r["segment_id"], TIME]
                    if len(ts):
                        step = float(np.median(np.diff(span[TIME]))) if len(span) > 1 else 0.0
                        start, end = float(ts.min()), float(ts.max()) + step
                if np.isnan(start):
                    report.warnings.append(f"{rid}: segment {r['segment_id']} has no frames in the feature files (no span)")
                rows.append({"recording": rid, "segment_id": int(r["segment_id"]), "start": start, "end": end,
                             "sentiment": int(r["class_id"])})
        corpus.write_segments(pd.DataFrame(rows))

    table = []
    for rid, part in zip(parts["id"], parts["partition"]):
        ends = [fr[TIME].iloc[-1] for fs in frames for r, fr in frames[fs].items() if r == rid and len(fr)]
        ends += [d[TIME].iloc[-1] for d in cont.get(rid, {}).values() if len(d)]
        step = 1.0 / label_rate if label_rate else 0.0
        table.append({"id": rid, "subject": subject_of(rid), "partition": part,
                      "duration": (max(ends) + step) if ends else 0.0})
    corpus.set_recordings(pd.DataFrame(table))
    report.recordings = len(table)
    corpus.write_report("import", report.to_dict())
    return corpus, report


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


def _modality(name: str) -> str:
    low = name.lower()
    for mod, keys in _MODALITIES.items():
        if any(low.startswith(k) or k in low for k in keys):
            return mod
    return "other"
