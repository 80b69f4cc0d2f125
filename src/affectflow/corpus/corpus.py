"""The affectflow corpus: recordings, time-indexed feature sets and labels on disk.

Layout (all times in **seconds** from the start of the recording, ``float64``)::

    <corpus>/
      corpus.json                         {"format": "affectflow-corpus", "version": 1, "name", "label_rate_hz", ...}
      recordings.csv                      id, subject, partition, duration   (duration in s; partition: train/devel/test/...)
      features/<set>/feature_set.json     {"name", "modality", "rate_hz" (or null), "columns", "params", ...}
      features/<set>/<recording>.parquet  column "time" then one float32 column per feature; NaN = missing value
      features/<set>/packed.json, values.*.f32, times.*.f64, index.*.parquet
                                          a *packed* set instead: all recordings in one memory-mapped array
                                          (affectflow.corpus.packed)
      labels/<label set>/label_set.json   {"name", "dims", "rate_hz"}
      labels/<label set>/<recording>.parquet  column "time" then one float column per dimension; NaN = not annotated
      labels/segments.parquet             recording, segment_id, start, end, <class columns ...>   (optional)
      labels/clips.csv                    recording, <class or value columns ...>                   (optional)
      reports/                            import and generation reports (JSON)
      cache/                              derived data (aligned arrays); safe to delete

**Which sets are packed** (decided per feature set when it is written, recorded by the set's ``packed.json`` and
listed in corpus.json ``packed_feature_sets``; corpus.json ``version`` is 2 once a corpus has one): the importers of
clip corpora (``import-mer``) and :meth:`Corpus.pack_feature_set` (``affectflow upgrade``) write whole sets at once
with :meth:`Corpus.write_packed_features`; everything that writes one recording at a time (``import-muse``,
``import-affwild2``, ``import-media``, ``extract``, the synthetic generators) writes per-recording Parquet files, as
long recordings need. Every reading and writing method works on both layouts with the same results;
:meth:`Corpus.write_features` into a packed set rewrites the whole set (correct, but O(set size) per call: write
many recordings with :meth:`Corpus.write_packed_features`). ``labels/clips.csv`` already holds a clip corpus's
labels in one table.

A feature set has either a fixed ``rate_hz`` or explicit timestamps (``rate_hz: null``); its frames need not lie on
the label grid: :mod:`affectflow.data.align` brings them there. The continuous label set used for training is
``labels/continuous`` by default; other label sets (e.g. the noise-free labels of a synthetic corpus) sit beside it.

Every file is written atomically (temporary file, then rename), so a crash never leaves a partial file; its mode
follows the process umask (as a plain ``open`` would). Every name that becomes part of a path (recording ids,
partitions, feature and label set names) is checked with :func:`check_name` when it is **read** as well as when it is
written, and :func:`child_path` refuses any path that would leave its folder, so a crafted ``recordings.csv`` cannot
make affectflow read, write or delete files elsewhere. Importers build a new corpus in a hidden sibling folder and
rename it into place (:func:`staged_folder`), so an import either makes a whole corpus or none.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from affectflow.corpus.packed import PACKED_META, PackedFeatures, PackedWriter, is_packed
from affectflow.errors import AffectflowWarning, CorpusError
from affectflow.fsutil import (  # noqa: F401 - re-exported: these helpers lived here before affectflow.fsutil
    SAFE_NAME,
    atomic_write,
    check_name,
    check_names,
    child_path,
    current_umask,
    is_safe_name,
    json_default as _json_default,
    out_folder,
    staged_folder,
    write_json,
)

FORMAT_NAME = "affectflow-corpus"
FORMAT_VERSION = 2  # the newest corpus format this affectflow reads
CREATE_VERSION = 1  # what Corpus.create writes; packing a feature set raises a corpus to version 2
TIME = "time"
RECORDING_COLUMNS = ["id", "subject", "partition", "duration"]
_SAFE_NAME = SAFE_NAME  # deprecated alias: use affectflow.fsutil.SAFE_NAME


@dataclass
class FeatureSetInfo:
    """Description of one feature set.

    Attributes
    ----------
    name:
        Feature set name (folder name), e.g. ``"egemaps"``.
    modality:
        ``"audio"``, ``"video"``, ``"text"``, ``"physio"`` or any other string.
    columns:
        Feature column names, in storage order.
    rate_hz:
        Frame rate in Hz if the frames are regular, else ``None`` (explicit timestamps only).
    params:
        Extractor parameters or provenance, stored verbatim.
    description:
        Free text.
    """

    name: str
    modality: str
    columns: list[str]
    rate_hz: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        check_name("feature set name", self.name)

    @property
    def dim(self) -> int:
        """Number of feature columns."""
        return len(self.columns)


@dataclass
class LabelSetInfo:
    """Description of a continuous label set: dimensions on a time grid of ``rate_hz`` (or explicit times)."""

    name: str
    dims: list[str]
    rate_hz: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        # dimensions become file and folder names (submission folders, per-dimension CSVs): the name rule applies
        # when a label set is read or declared (affectflow.fsutil)
        check_name("label set name", self.name)
        if not isinstance(self.dims, list):
            raise CorpusError(f"Label set {self.name!r}: dims must be a list of names, got {self.dims!r}.")
        check_names("label dimension", self.dims, where=f"label set {self.name!r}")
        if len(set(self.dims)) != len(self.dims):
            raise CorpusError(f"Label set {self.name!r} repeats dimension names: {self.dims}.")


def check_recordings_table(df: pd.DataFrame, where: str) -> None:
    """Check the ids and partitions of a recordings table (they become file and folder names).

    Raises
    ------
    CorpusError
        Blank, unsafe or repeated ids, or blank or unsafe partitions; the message lists them with counts.
    """
    problems = []
    ids = df["id"]
    blank = ids.isna() | (ids.astype(str).str.strip() == "")
    if blank.any():
        problems.append(f"{int(blank.sum())} row(s) with a blank id (rows {[int(i) + 2 for i in df.index[blank][:10]]})")
    bad = [str(i) for i in ids[~blank] if not is_safe_name(str(i))]
    if bad:
        problems.append(f"{len(bad)} unsafe id(s) {bad[:10]}")
    dup = ids[~blank & ids.duplicated()]
    if len(dup):
        problems.append(f"{len(dup)} repeated id(s) {dup.astype(str).tolist()[:10]}")
    if "partition" in df.columns:
        parts = df["partition"]
        pblank = parts.isna() | (parts.astype(str).str.strip() == "")
        if pblank.any():
            problems.append(f"{int(pblank.sum())} recording(s) without a partition {ids[pblank].astype(str).tolist()[:10]}")
        pbad = sorted({str(p) for p in parts[~pblank] if not is_safe_name(str(p))})
        if pbad:
            problems.append(f"unsafe partition name(s) {pbad[:10]}")
    if problems:
        raise CorpusError(
            f"{where} is invalid: " + "; ".join(problems) + ". Ids and partitions must be non-empty and contain only "
            "letters, digits and '_', '.', '+', '-', starting with a letter or digit (they become file names)."
        )


def describe_column_difference(got: list[str], expected: list[str]) -> str:
    """Say how ``got`` differs from ``expected``: missing and unexpected names, or the first reordered position."""
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    parts = [f"{len(got)} vs {len(expected)} columns"]
    if missing:
        parts.append(f"missing {missing[:8]}" + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
    if extra:
        parts.append(f"unexpected {extra[:8]}" + (f" and {len(extra) - 8} more" if len(extra) > 8 else ""))
    if not missing and not extra:
        k = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
        if k is not None:
            parts.append(f"same names in another order (position {k + 1}: {got[k]!r}, expected {expected[k]!r})")
        else:
            parts.append("repeated column names")
    return "; ".join(parts)


def _info(cls, f: Path, what: str):
    data = read_json_file(f, what)
    try:
        return cls(**data)
    except TypeError as e:
        raise CorpusError(f"{what} {str(f)!r} does not have the expected fields ({e}).") from e


def _infos(root: Path, file_name: str, cls, what: str) -> dict:
    """``{folder name: cls(**description)}`` of the folders of ``root`` (in name order) that hold a description
    file ``file_name`` (``what`` names it in errors); ``{}`` when ``root`` does not exist."""
    out = {}
    if root.is_dir():
        for d in sorted(root.iterdir()):
            f = d / file_name
            if d.is_dir() and f.is_file():
                out[d.name] = _info(cls, f, what)
    return out


def _pick(sets: dict, name: str, kind: str, corpus: Path):
    """``sets[name]``; a :class:`CorpusError` names the ``kind`` (e.g. "Feature set") and lists the available ones."""
    if name not in sets:
        raise CorpusError(f"{kind} {name!r} is not in corpus {str(corpus)!r}; available: {sorted(sets) or 'none'}.")
    return sets[name]


def read_json_file(path: Path, what: str) -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file raises :class:`CorpusError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CorpusError(f"{what} {str(path)!r} cannot be read as JSON ({type(e).__name__}: {e}).") from e


def read_parquet_file(path: Path, what: str) -> pd.DataFrame:
    """Read a Parquet file; a corrupt or unreadable one raises :class:`CorpusError` naming the file."""
    try:
        return pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        raise CorpusError(
            f"{what} {str(path)!r} cannot be read as Parquet ({type(e).__name__}: {e}). The file is damaged: "
            "re-create it (re-import or re-extract), or delete it."
        ) from e


def read_partition_map(path: str | os.PathLike) -> dict[str, str]:
    """A partition map CSV (columns ``id, partition``) as ``{recording id: partition}``."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(
            f"Partition map {str(p)!r} does not exist. It assigns recordings to partitions (columns id, partition), "
            "e.g. a fold written by `affectflow cv`; the run or config that names it expects it at that path."
        )
    try:
        df = pd.read_csv(p, dtype=str)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise CorpusError(f"Partition map {str(p)!r} cannot be read as CSV ({type(e).__name__}: {e}).") from None
    if list(df.columns[:2]) != ["id", "partition"] or df["partition"].isna().any():
        raise CorpusError(f"Partition map {str(p)!r} must have the columns id, partition (no empty partition).")
    if df["id"].duplicated().any():
        raise CorpusError(f"Partition map {str(p)!r} lists recordings more than once: "
                          f"{df.loc[df['id'].duplicated(), 'id'].tolist()[:10]}.")
    for part in df["partition"].unique():
        check_name("partition name", part)
    check_names("recording id", df["id"].tolist(), where=f"partition map {str(p)!r}")
    return dict(zip(df["id"], df["partition"]))


def write_partition_map(path: str | os.PathLike, mapping: dict[str, str]) -> Path:
    """Write ``{recording id: partition}`` as a partition map CSV (atomically); return its path."""
    for part in set(mapping.values()):
        check_name("partition name", part)
    df = pd.DataFrame({"id": list(mapping), "partition": list(mapping.values())})
    p = Path(path)
    atomic_write(p, lambda t: df.to_csv(t, index=False))
    return p


def apply_partition_map(recordings: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """``recordings`` with the partitions of the map at ``path`` (ids the map does not list keep theirs)."""
    mapping = read_partition_map(path)
    unknown = sorted(set(mapping) - set(recordings["id"]))
    if unknown:
        raise CorpusError(
            f"Partition map {str(path)!r} lists {len(unknown)} recording(s) the corpus does not have, e.g. "
            f"{unknown[:5]}; it was made for another corpus."
        )
    out = recordings.copy()
    out["partition"] = [mapping.get(r, p) for r, p in zip(out["id"], out["partition"])]
    return out


def _write_parquet(path: Path, frame: pd.DataFrame, root: Path | None = None) -> None:
    atomic_write(path, lambda p: frame.to_parquet(p, index=False), root=root)


class Corpus:
    """A corpus directory (see the module docstring for the layout).

    Open an existing corpus with ``Corpus(path)``; make a new one with :meth:`Corpus.create`. Reading is lazy:
    nothing but the small index files is loaded until a recording's features or labels are asked for.

    ``partitions`` optionally names a CSV (columns ``id, partition``) that assigns recordings to partitions instead
    of ``recordings.csv`` (recordings it does not list keep theirs): a cross-validation fold or a cross-fitting
    split is such a view of the same files, so no feature data is copied (``data.partitions`` in a config).
    """

    def __init__(self, path: str | os.PathLike, partitions: str | os.PathLike | None = None):
        self.path = Path(path)
        self.partition_map = Path(partitions) if partitions else None
        meta_file = self.path / "corpus.json"
        if not self.path.is_dir():
            raise CorpusError(
                f"Corpus folder {str(self.path)!r} does not exist. Expected a folder made by `affectflow generate` "
                "or `affectflow import-muse` (it holds corpus.json, recordings.csv, features/ and labels/)."
            )
        if not meta_file.is_file():
            raise CorpusError(
                f"{str(self.path)!r} is not an affectflow corpus: corpus.json is missing. Create one with "
                "`affectflow generate` or import challenge data with `affectflow import-muse`."
            )
        meta = read_json_file(meta_file, "Corpus description")
        if not isinstance(meta, dict):
            raise CorpusError(f"{meta_file} must hold a JSON object describing the corpus; got {type(meta).__name__}.")
        self.meta: dict[str, Any] = meta
        if self.meta.get("format") != FORMAT_NAME:
            raise CorpusError(f"{meta_file} does not describe an affectflow corpus (format={self.meta.get('format')!r}).")
        version = self.meta.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise CorpusError(f"{meta_file} has a corpus format version {version!r}; expected an integer.")
        if version > FORMAT_VERSION:
            raise CorpusError(
                f"{meta_file} has corpus format version {self.meta.get('version')}; this affectflow reads up to "
                f"version {FORMAT_VERSION}. Upgrade affectflow."
            )
        self._recordings: pd.DataFrame | None = None
        self._rows: tuple[pd.DataFrame, dict[str, int]] | None = None  # (recordings table, id -> row) of recording()
        self._packed: dict[str, tuple[tuple[int, int, int], PackedFeatures]] = {}

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        name: str,
        label_rate_hz: float | None,
        description: str = "",
        exist_ok: bool = False,
        **extra: Any,
    ) -> "Corpus":
        """Create an empty corpus at ``path`` and return it.

        Raises :class:`CorpusError` if ``path`` exists and is not empty (unless ``exist_ok`` and it is a corpus).
        """
        p = Path(path)
        if exist_ok and (p / "corpus.json").is_file():
            return cls(p)
        out_folder(p, what="corpus folder", error=CorpusError)  # a file, or a non-empty folder, is refused
        meta = {
            "format": FORMAT_NAME,
            "version": CREATE_VERSION,
            "name": name,
            "label_rate_hz": label_rate_hz,
            "description": description,
            **extra,
        }
        write_json(p / "corpus.json", meta)
        empty = pd.DataFrame(columns=RECORDING_COLUMNS)
        atomic_write(p / "recordings.csv", lambda t: empty.to_csv(t, index=False))
        return cls(p)

    def update_meta(self, **values: Any) -> None:
        """Merge ``values`` into corpus.json."""
        self.meta.update(values)
        write_json(self.path / "corpus.json", self.meta, root=self.path)

    # ------------------------------------------------------------------ recordings
    @property
    def recordings(self) -> pd.DataFrame:
        """Table of recordings: ``id`` (str), ``subject`` (str), ``partition`` (str), ``duration`` (s, float)."""
        if self._recordings is None:
            f = self.path / "recordings.csv"
            if not f.is_file():
                raise CorpusError(f"Corpus {str(self.path)!r} has no recordings.csv.")
            try:
                df = pd.read_csv(f, dtype={"id": str, "subject": str, "partition": str})
            except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
                raise CorpusError(f"{f} cannot be read as CSV ({type(e).__name__}: {e}).") from e
            missing = [c for c in RECORDING_COLUMNS if c not in df.columns]
            if missing:
                raise CorpusError(f"{f} lacks the columns {missing}; expected {RECORDING_COLUMNS}.")
            check_recordings_table(df, str(f))
            if self.partition_map is not None:
                df = apply_partition_map(df, self.partition_map)
            self._recordings = df.reset_index(drop=True)
        return self._recordings

    def set_recordings(self, table: pd.DataFrame) -> None:
        """Write the recordings table (columns ``id, subject, partition, duration``, extra columns kept)."""
        missing = [c for c in RECORDING_COLUMNS if c not in table.columns]
        if missing:
            raise CorpusError(f"Recordings table lacks the columns {missing}; expected {RECORDING_COLUMNS}.")
        if self.partition_map is not None:
            raise CorpusError(
                f"Corpus {str(self.path)!r} is open with the partition map {str(self.partition_map)!r}; writing its "
                "recordings table would store the map's partitions. Open it without a partition map to edit it."
            )
        table = table.copy()
        check_recordings_table(table, "The recordings table")
        table["id"] = table["id"].astype(str)
        table["subject"] = table["subject"].astype(str)
        atomic_write(self.path / "recordings.csv", lambda p: table.to_csv(p, index=False), root=self.path)
        self._recordings = None

    def recording_ids(self, partitions: Iterable[str] | None = None) -> list[str]:
        """Ids of the recordings in ``partitions`` (all if ``None``), in table order."""
        rec = self.recordings
        if partitions is None:
            return rec["id"].tolist()
        parts = list(partitions)
        known = sorted(rec["partition"].unique())
        unknown = [p for p in parts if p not in known]
        if unknown:
            raise CorpusError(f"Partitions {unknown} do not exist in corpus {str(self.path)!r}; it has {known}.")
        return rec.loc[rec["partition"].isin(parts), "id"].tolist()

    def recording(self, rid: str) -> pd.Series:
        """The recordings-table row of ``rid``."""
        i = self._row_of(rid)
        if i is None:
            raise CorpusError(f"Recording {rid!r} is not in corpus {str(self.path)!r} ({len(self.recordings)} recordings).")
        return self.recordings.iloc[i]

    def _row_of(self, rid: str) -> int | None:
        """Row of ``rid`` in :attr:`recordings` (a dict built once per table: O(1) per look-up), or ``None``."""
        rec = self.recordings
        if self._rows is None or self._rows[0] is not rec:
            self._rows = (rec, {r: i for i, r in enumerate(rec["id"].tolist())})
        return self._rows[1].get(rid)

    # ------------------------------------------------------------------ feature sets
    @property
    def feature_sets(self) -> dict[str, FeatureSetInfo]:
        """All feature sets, by name."""
        return _infos(self.path / "features", "feature_set.json", FeatureSetInfo, "Feature set description")

    def feature_set(self, name: str) -> FeatureSetInfo:
        """Info of feature set ``name``; the error lists the available ones."""
        return _pick(self.feature_sets, name, "Feature set", self.path)

    def write_feature_set_info(self, info: FeatureSetInfo) -> None:
        """Declare (or update) a feature set."""
        check_name("feature set name", info.name)
        if len(set(info.columns)) != len(info.columns):
            raise CorpusError(f"Feature set {info.name!r} has repeated column names.")
        if TIME in info.columns:
            raise CorpusError(f"Feature set {info.name!r} must not have a feature column called {TIME!r}.")
        write_json(self.path / "features" / info.name / "feature_set.json", asdict(info), root=self.path)

    def feature_file(self, name: str, rid: str) -> Path:
        """Path of the Parquet file of feature set ``name`` for recording ``rid`` in the per-recording layout (may
        not exist; a packed set has no such files: use :meth:`has_features` / :meth:`read_features`)."""
        return child_path(self.path / "features" / check_name("feature set name", name), rid, ".parquet",
                          kind="recording id")

    def feature_layout(self, name: str) -> str:
        """How feature set ``name`` is stored: ``"packed"`` (one array for all recordings, :mod:`affectflow.corpus.packed`)
        or ``"files"`` (one Parquet file per recording)."""
        return "packed" if is_packed(self.path / "features" / check_name("feature set name", name)) else "files"

    def packed_features(self, name: str) -> PackedFeatures | None:
        """The reader of packed set ``name`` (``None`` for a per-recording set); re-opened when the set is rewritten."""
        folder = self.path / "features" / check_name("feature set name", name)
        try:
            st = (folder / PACKED_META).stat()
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = self._packed.get(name)
        if hit is None or hit[0] != key:
            hit = (key, PackedFeatures(folder))
            self._packed[name] = hit
        return hit[1]

    def has_features(self, name: str, rid: str) -> bool:
        """Whether recording ``rid`` has frames of feature set ``name``."""
        packed = self.packed_features(name)
        if packed is not None:
            return check_name("recording id", rid) in packed
        return self.feature_file(name, rid).is_file()

    def feature_recordings(self, name: str) -> list[str]:
        """Ids of the recordings with frames of feature set ``name`` (storage order for a packed set, else sorted)."""
        packed = self.packed_features(name)
        if packed is not None:
            return list(packed.ids)
        return self.file_recordings(name)

    def _check_frames(self, name: str, rid: str, info: FeatureSetInfo, times: np.ndarray, raw: Any,
                      cols: list[str]) -> np.ndarray:
        """``raw`` ``(T, D)`` as float32 after the checks of :meth:`write_features` (values beyond float32 → NaN)."""
        t = times
        if len(t) > 1 and not np.all(np.diff(t) > 0):
            raise CorpusError(f"Frames for feature set {name!r}, recording {rid!r}: times must be strictly increasing.")
        if isinstance(raw, pd.DataFrame):
            cplx = [c for c in cols if np.iscomplexobj(raw[c].to_numpy())]
        else:
            cplx = cols if np.iscomplexobj(raw) else []
        if cplx:
            raise CorpusError(f"Frames for feature set {name!r}, recording {rid!r}: columns {cplx[:10]} hold complex "
                              "values; features must be real (storing them would drop the imaginary parts).")
        try:
            v64 = raw.to_numpy(dtype=np.float64) if isinstance(raw, pd.DataFrame) else np.asarray(raw, np.float64)
        except (TypeError, ValueError) as e:
            raise CorpusError(f"Frames for feature set {name!r}, recording {rid!r} hold non-numeric values ({e}).") from e
        if v64.ndim != 2 or v64.shape != (len(t), info.dim):
            raise CorpusError(f"Frames for feature set {name!r}, recording {rid!r}: values of shape {v64.shape} for "
                              f"{len(t)} times and {info.dim} declared columns.")
        values = v64.astype(np.float32)
        over = int((np.isfinite(v64) & ~np.isfinite(values)).sum())
        if over:
            values[np.isfinite(v64) & ~np.isfinite(values)] = np.nan
            warnings.warn(f"Feature set {name!r}, recording {rid!r}: {over} value(s) beyond the float32 range are "
                          "stored as missing (NaN).", AffectflowWarning, stacklevel=3)
        return values

    def _frame_arrays(self, name: str, rid: str, info: FeatureSetInfo, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if TIME not in frame.columns:
            raise CorpusError(f"Frames for feature set {name!r}, recording {rid!r} have no {TIME!r} column.")
        cols = [c for c in frame.columns if c != TIME]
        if cols != info.columns:
            raise CorpusError(
                f"Frames for feature set {name!r}, recording {rid!r} have other columns than the feature set declares: "
                + describe_column_difference(cols, info.columns)
            )
        t = frame[TIME].to_numpy(dtype=np.float64)
        return t, self._check_frames(name, rid, info, t, frame[cols], cols)

    def write_features(self, name: str, rid: str, frame: pd.DataFrame) -> None:
        """Store the frames of feature set ``name`` for recording ``rid``.

        ``frame`` has a ``time`` column (seconds, strictly increasing) and exactly the declared feature columns.
        Values are stored as float32; NaN marks a missing value. In a packed set this rewrites the whole set
        (atomically; not for concurrent writers): write many recordings with :meth:`write_packed_features`.
        """
        info = self.feature_set(name)
        t, values = self._frame_arrays(name, rid, info, frame)
        if self.packed_features(name) is not None:
            check_name("recording id", rid)
            self._rewrite_packed(name, info, {rid: (t, values)})
            return
        out = pd.concat([pd.DataFrame({TIME: t}), pd.DataFrame(values, columns=info.columns)], axis=1)
        _write_parquet(self.feature_file(name, rid), out, root=self.path)

    def write_feature_blocks(self, name: str, rid: str, blocks: Iterable[pd.DataFrame]) -> int:
        """Store the frames of ``name`` for ``rid`` from consecutive blocks, one Parquet row group each, so a long
        recording is written with one block in memory; the same file and values as :meth:`write_features` of the
        concatenated blocks (``time`` float64, feature columns float32). Returns the number of frames.

        Each block has a ``time`` column and exactly the declared columns; times increase strictly across blocks.
        Written to a temporary file and renamed into place (nothing is left on error).
        """
        info = self.feature_set(name)
        if self.packed_features(name) is not None:  # a packed set: one rewrite with the concatenated blocks
            frame = pd.concat(list(blocks), ignore_index=True)
            self.write_features(name, rid, frame)
            return len(frame)
        schema = pa.schema([(TIME, pa.float64())] + [(c, pa.float32()) for c in info.columns])
        count = {"n": 0}

        def write(path: Path) -> None:
            last = -np.inf
            with pq.ParquetWriter(path, schema) as w:
                for frame in blocks:
                    cols = [c for c in frame.columns if c != TIME]
                    if TIME not in frame.columns or cols != info.columns:
                        raise CorpusError(f"Frames for feature set {name!r}, recording {rid!r} have other columns "
                                          "than the feature set declares: "
                                          + describe_column_difference(cols, info.columns))
                    t = frame[TIME].to_numpy(dtype=np.float64)
                    if len(t) and (t[0] <= last or (len(t) > 1 and not np.all(np.diff(t) > 0))):
                        raise CorpusError(f"Frames for feature set {name!r}, recording {rid!r}: times must be "
                                          "strictly increasing.")
                    if not len(t):
                        continue
                    last = t[-1]
                    w.write_table(pa.Table.from_pandas(frame[[TIME, *cols]], schema=schema, preserve_index=False))
                    count["n"] += len(t)

        atomic_write(self.feature_file(name, rid), write, root=self.path)
        return count["n"]

    def write_packed_features(self, name: str, frames: Iterable[tuple[str, Any]], *, progress: Any = None) -> int:
        """Store feature set ``name`` packed (:mod:`affectflow.corpus.packed`): the set then holds exactly ``frames``.

        Parameters
        ----------
        name:
            A declared feature set (:meth:`write_feature_set_info`).
        frames:
            ``(rid, frame)`` pairs, ``frame`` a DataFrame as for :meth:`write_features` or a tuple
            ``(times (T,) s, values (T, D))`` in the declared column order; the same checks apply. Consumed once,
            streamed to disk (memory holds one recording at a time).
        progress:
            Called with each recording id after it is written (e.g. a progress bar's ``update``), or ``None``.

        Returns
        -------
        int
            Number of recordings written. The set's per-recording Parquet files, if any (the older layout), are
            deleted after the commit; corpus.json records the set in ``packed_feature_sets``.
        """
        info = self.feature_set(name)
        folder = self.path / "features" / name
        stale = set(self.file_recordings(name)) if self.packed_features(name) is None else set()
        written: list[str] = []
        with PackedWriter(folder, info.dim, root=self.path) as w:
            for rid, frame in frames:
                check_name("recording id", rid)
                if isinstance(frame, pd.DataFrame):
                    t, values = self._frame_arrays(name, rid, info, frame)
                else:
                    t = np.asarray(frame[0], dtype=np.float64)
                    values = self._check_frames(name, rid, info, t, frame[1], info.columns)
                w.add(rid, t, values)
                written.append(rid)
                if progress is not None:
                    progress(rid)
        for rid in stale:
            self.feature_file(name, rid).unlink(missing_ok=True)
        sets = sorted(set(self.meta.get("packed_feature_sets") or []) | {name})
        if self.meta.get("packed_feature_sets") != sets or self.meta.get("version", 1) < 2:
            self.update_meta(version=max(2, int(self.meta.get("version", 1))), packed_feature_sets=sets)
        return len(written)

    def _rewrite_packed(self, name: str, info: FeatureSetInfo, replace: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        packed = self.packed_features(name)

        def frames():
            for rid in packed.ids:
                yield rid, (replace.pop(rid) if rid in replace else packed.frames(rid))
            yield from list(replace.items())

        self.write_packed_features(name, frames())

    def pack_feature_set(self, name: str, *, progress: Any = None) -> dict[str, Any]:
        """Convert per-recording set ``name`` to the packed layout (``affectflow upgrade``); return what was done.

        Every ``<rid>.parquet`` is read, all are written as one packed set (committed atomically), then the
        Parquet files are deleted. Resumable: after an interruption before the commit the files are still the set;
        after it, the packed set is, and a second call only deletes the left-over files. ``progress`` as in
        :meth:`write_packed_features`. Arrays read back identical (times float64, values float32).
        """
        info = self.feature_set(name)
        leftover = self.file_recordings(name)
        if self.packed_features(name) is not None:
            for rid in leftover:
                self.feature_file(name, rid).unlink(missing_ok=True)
            return {"set": name, "status": "already packed", "recordings": len(self.packed_features(name)),
                    "left-over files removed": len(leftover)}
        frames = ((rid, self.read_features(name, rid)) for rid in leftover)
        n = self.write_packed_features(name, frames, progress=progress)
        return {"set": name, "status": "packed", "recordings": n, "columns": info.dim}

    def file_recordings(self, name: str) -> list[str]:
        """Ids of the per-recording Parquet files of set ``name`` (sorted; in a packed set: left-overs of an older
        layout, which readers ignore)."""
        folder = self.path / "features" / check_name("feature set name", name)
        if not folder.is_dir():
            return []
        index = (self.packed_features(name).files["index"].name if self.packed_features(name) else None)
        ids = sorted(f.name[: -len(".parquet")] for f in folder.iterdir() if f.name.endswith(".parquet")
                     and not f.name.startswith(".") and f.name != index and f.is_file())
        return check_names("recording id", ids, where=f"features/{name}")

    def remove_features(self, name: str, rid: str) -> None:
        """Delete the frames of ``rid`` in feature set ``name`` (nothing if it has none)."""
        if self.packed_features(name) is not None:
            if self.has_features(name, rid):
                packed = self.packed_features(name)
                self.write_packed_features(name, ((r, packed.frames(r)) for r in packed.ids if r != rid))
            return
        self.feature_file(name, rid).unlink(missing_ok=True)

    def read_features(self, name: str, rid: str) -> pd.DataFrame:
        """Frames of feature set ``name`` for recording ``rid``: ``time`` then the feature columns (float32)."""
        packed = self.packed_features(name)
        if packed is not None:
            if rid not in packed:
                raise CorpusError(f"Recording {rid!r} has no frames of feature set {name!r} (not in its packed index).")
            t, v = packed.frames(rid)
            out = pd.DataFrame(v, columns=self.feature_set(name).columns)
            out.insert(0, TIME, t)
            return out
        f = self.feature_file(name, rid)
        if not f.is_file():
            self.feature_set(name)
            raise CorpusError(f"Recording {rid!r} has no frames of feature set {name!r} ({f} is missing).")
        return read_parquet_file(f, f"Frames of feature set {name!r}, recording {rid!r}:")

    # ------------------------------------------------------------------ labels
    @property
    def label_sets(self) -> dict[str, LabelSetInfo]:
        """Continuous label sets, by name (``continuous`` is the default one)."""
        return _infos(self.path / "labels", "label_set.json", LabelSetInfo, "Label set description")

    def label_set(self, name: str = "continuous") -> LabelSetInfo:
        """Info of label set ``name``; the error lists the available ones."""
        return _pick(self.label_sets, name, "Label set", self.path)

    def write_label_set_info(self, info: LabelSetInfo) -> None:
        """Declare (or update) a continuous label set."""
        check_name("label set name", info.name)
        write_json(self.path / "labels" / info.name / "label_set.json", asdict(info), root=self.path)

    def label_file(self, rid: str, label_set: str = "continuous") -> Path:
        """Path of the labels of recording ``rid`` in ``label_set`` (may not exist)."""
        return child_path(self.path / "labels" / check_name("label set name", label_set), rid, ".parquet",
                          kind="recording id")

    def write_labels(self, rid: str, frame: pd.DataFrame, label_set: str = "continuous") -> None:
        """Store continuous labels: a ``time`` column (s, strictly increasing) and one column per dimension."""
        info = self.label_set(label_set)
        cols = [c for c in frame.columns if c != TIME]
        if TIME not in frame.columns or cols != info.dims:
            raise CorpusError(
                f"Labels for recording {rid!r} must have columns {[TIME] + info.dims}; got {list(frame.columns)}."
            )
        t = frame[TIME].to_numpy(dtype=np.float64)
        if len(t) > 1 and not np.all(np.diff(t) > 0):
            raise CorpusError(f"Labels for recording {rid!r}: times must be strictly increasing.")
        out = frame[[TIME] + cols].astype({c: np.float32 for c in cols}).astype({TIME: np.float64})
        _write_parquet(self.label_file(rid, label_set), out, root=self.path)

    def read_labels(self, rid: str, label_set: str = "continuous") -> pd.DataFrame | None:
        """Continuous labels of ``rid`` (``time`` + dims), or ``None`` if the recording has none (e.g. blind test)."""
        self.label_set(label_set)
        f = self.label_file(rid, label_set)
        return read_parquet_file(f, f"Labels of recording {rid!r}:") if f.is_file() else None

    def write_segments(self, table: pd.DataFrame) -> None:
        """Store segment labels: columns ``recording, segment_id, start, end`` (s) and one column per class target."""
        need = ["recording", "segment_id", "start", "end"]
        missing = [c for c in need if c not in table.columns]
        if missing:
            raise CorpusError(f"Segment table lacks the columns {missing}; expected {need} + class columns.")
        _write_parquet(self.path / "labels" / "segments.parquet", table.reset_index(drop=True), root=self.path)

    def segments(self) -> pd.DataFrame | None:
        """Segment labels, or ``None`` if the corpus has none."""
        f = self.path / "labels" / "segments.parquet"
        return read_parquet_file(f, "Segment labels") if f.is_file() else None

    def write_clips(self, table: pd.DataFrame) -> None:
        """Store clip-level labels: a ``recording`` column and one column per class or value target."""
        if "recording" not in table.columns:
            raise CorpusError("Clip label table needs a 'recording' column.")
        atomic_write(self.path / "labels" / "clips.csv", lambda p: table.to_csv(p, index=False), root=self.path)

    def clips(self) -> pd.DataFrame | None:
        """Clip-level labels, or ``None`` if the corpus has none."""
        f = self.path / "labels" / "clips.csv"
        if not f.is_file():
            return None
        try:
            return pd.read_csv(f, dtype={"recording": str})
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise CorpusError(f"Clip labels {str(f)!r} cannot be read as CSV ({type(e).__name__}: {e}).") from e

    # ------------------------------------------------------------------ misc
    @property
    def label_rate_hz(self) -> float | None:
        """Rate of the default label grid in Hz (used for recordings without labels)."""
        r = self.meta.get("label_rate_hz")
        return float(r) if r else None

    def recording_label_rate(self, rid: str, fallback: bool = True) -> float | None:
        """Label grid rate (Hz) of recording ``rid``: its ``label_rate_hz`` column in ``recordings.csv`` when the
        corpus has one and the cell is set (per-video rates, e.g. Aff-Wild2 at each video's frame rate), else
        :attr:`label_rate_hz` (``None`` with ``fallback=False``). Used for recordings without labels; labelled recordings
        use their label times."""
        rec = self.recordings
        if "label_rate_hz" in rec.columns:
            i = self._row_of(rid)
            v = rec["label_rate_hz"].iloc[i] if i is not None else None
            if v is not None and pd.notna(v) and float(v) > 0:
                return float(v)
        return self.label_rate_hz if fallback else None

    def cache_dir(self) -> Path:
        """Folder for derived data (aligned arrays)."""
        return self.path / "cache"

    def write_report(self, name: str, report: dict[str, Any]) -> Path:
        """Write a JSON report under ``reports/`` and return its path."""
        p = child_path(self.path / "reports", name, ".json", kind="report name")
        write_json(p, report, root=self.path)
        return p

    def summary(self) -> str:
        """A short human-readable description."""
        rec = self.recordings
        lines = [f"Corpus {self.meta.get('name')!r} at {self.path}"]
        lines.append(f"  recordings: {len(rec)} ({', '.join(f'{k}: {v}' for k, v in rec['partition'].value_counts().sort_index().items())})")
        lines.append(f"  subjects: {rec['subject'].nunique()}, total duration: {rec['duration'].sum() / 3600:.2f} h")
        for n, fs in self.feature_sets.items():
            rate = f"{fs.rate_hz:g} Hz" if fs.rate_hz else "explicit times"
            stored = ", packed" if self.feature_layout(n) == "packed" else ""
            lines.append(f"  feature set {n}: {fs.modality}, {fs.dim} dims, {rate}{stored}")
        for n, ls in self.label_sets.items():
            lines.append(f"  label set {n}: {ls.dims}")
        if self.segments() is not None:
            lines.append(f"  segment labels: {len(self.segments())} segments")
        if self.clips() is not None:
            lines.append(f"  clip labels: {len(self.clips())} clips")
        return "\n".join(lines)
