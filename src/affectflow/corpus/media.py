"""Raw media of a corpus: which audio, video, physiology and transcript files each recording has.

A corpus that holds raw recordings has a ``media.csv`` beside ``recordings.csv``::

    id,audio,video,physio,transcript
    r01,media/r01.wav,media/r01.mp4,media/r01.physio.csv,media/r01.transcript.csv
    r02,/data/study/r02.flac,,,

Paths are relative to the corpus folder or absolute; an empty cell means the recording has no such file. A
``video`` may also be a folder of numbered frame images (e.g. Aff-Wild2's ``cropped_aligned/<video>/``); the
optional column ``video_fps`` then gives the frame rate of the video they come from. Feature
extraction (:func:`affectflow.features.pipeline.extract`) reads this table through :func:`media_recordings`.

:func:`import_media` builds or extends a corpus from raw files, either from a **manifest** CSV or by **scanning a
folder**.

Manifest (CSV)
    Columns ``id`` (required), ``subject`` and ``partition`` (optional; default: the recording id and the
    ``partition`` argument), and any of ``audio``, ``video``, ``physio``, ``transcript`` (paths; relative paths are
    taken relative to the folder holding the manifest), and optionally ``labels`` (a label file, see Labels).
    Other columns are ignored (and listed in the report).

Folder scan (file-name rule)
    Every file directly in the folder (or below it with ``recursive=True``) is assigned to a recording id and a
    kind by its name, tested in this order:

    ==========================================================  ==========  ==============================
    file name                                                   kind        recording id
    ==========================================================  ==========  ==============================
    ``<id>.transcript.<ext>`` or ``<id>.words.<ext>``,          transcript  ``<id>``
    ext in csv, tsv, json, txt
    ``<id>.json``                                               transcript  ``<id>``
    ``<id>.wav|flac|mp3|ogg|m4a|aac|opus``                      audio       ``<id>``
    ``<id>.mp4|avi|mkv|mov|webm``                               video       ``<id>``
    ``<id>.physio.<ext>`` or ``<id>.csv|tsv|edf|hea``           physio      ``<id>``
    ==========================================================  ==========  ==============================

    ``<id>.labels.csv`` is the recording's label file (see Labels).

    **Per-recording folders** ``<id>/<kind>.<ext>``: a file in a sub-folder whose name (before the extension) is
    a kind (``audio``, ``video``, ``physio``, ``transcript``, ``words``, ``labels``) belongs to the recording named
    by the sub-folder, e.g. ``S01/audio.wav``, ``S01/video.mp4``, ``S01/transcript.csv``, ``S01/labels.csv``; a
    file named by the rule above with the folder's id (``S01/S01.wav``) does too. Immediate sub-folders are always
    scanned this way; with ``recursive=True`` deeper files are matched too (by the table above, or
    ``<kind>.<ext>`` in their own folder). A ``<kind>.<ext>`` file directly in the scanned folder names no
    recording: it is ignored and reported (never filed as a recording called "transcript").
    Anything else (a WFDB ``.dat`` beside its ``.hea``, hidden files, notes) is ignored and listed in the report.
    Two files of the same kind for one id make that id ambiguous: it is reported and not imported. The subject is
    the recording id unless ``subject_regex`` (a regular expression whose first group is the subject, searched in
    the id) says otherwise.

Labels
    Continuous labels come with the recordings in either form:

    - a **label file per recording** (manifest column ``labels``, ``<id>.labels.csv`` or ``<id>/labels.csv``): a
      time column, ``time`` (s) or ``timestamp`` (ms), then one numeric column per dimension (``segment_id`` is
      ignored); empty cells are missing labels;
    - **per-dimension CSVs in the MuSe layout** (``labels=DIR``): ``DIR/<dim>/<id>.csv`` with ``timestamp`` (ms)
      and ``value`` (``segment_id`` ignored), joined by timestamp.

    They become the label set ``continuous`` (its dimensions: the union over recordings; a dimension a recording
    lacks is missing there, reported). A label file that cannot be read, lacks a time column, has non-numeric
    values or times that are not strictly increasing is a failure of that recording's labels (reported, the
    recording is still imported without labels); a corpus that already has a label set with other dimensions is a
    failure too.

Every file is probed cheaply for its duration (``soundfile.info`` for audio, the container duration from PyAV
for video, the sample count and rate for physiology, the last word's end for a transcript). A file that is missing
or cannot be probed is reported with its path and the reason and left out of ``media.csv``; the recording is still
imported with its other files. A recording none of whose files can be probed is not imported. The recording's
duration is the longest probed duration of its audio, video and physiology (the transcript only when there is
nothing else); a spread of more than ``1 s`` between them is reported as a warning.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from affectflow.corpus.corpus import Corpus, LabelSetInfo, check_recordings_table
from affectflow.corpus.recording import MediaRecording
from affectflow.errors import CorpusError, ImportFormatError
from affectflow.fsutil import atomic_write, check_name, check_names, staged_folder
from affectflow.io.audio import audio_duration
from affectflow.io.physio import open_physio
from affectflow.io.transcript import read_transcript
from affectflow.io.video import video_info
from affectflow.progress import progress_bar

MEDIA_COLUMNS = ["id", "audio", "video", "physio", "transcript"]
MEDIA_KINDS = ("audio", "video", "physio", "transcript")
MEDIA_FILE = "media.csv"
OPTIONAL_MEDIA_COLUMNS = ["video_fps"]
"""Optional columns of ``media.csv``: ``video_fps`` (frame rate of an image-folder video)."""

AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus")
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
PHYSIO_EXTS = (".csv", ".tsv", ".edf", ".hea")
TRANSCRIPT_EXTS = (".csv", ".tsv", ".json", ".txt")


# ---------------------------------------------------------------------------------------------------- media table
def media_table_path(corpus: Corpus) -> Path:
    """Path of ``media.csv`` of ``corpus`` (may not exist)."""
    return corpus.path / MEDIA_FILE


def read_media_table(corpus: Corpus) -> pd.DataFrame:
    """The media table of ``corpus`` (columns :data:`MEDIA_COLUMNS`, strings, ``""`` = absent).

    Returns an empty table when the corpus has no ``media.csv``.
    """
    f = media_table_path(corpus)
    if not f.is_file():
        return pd.DataFrame({c: pd.Series(dtype=str) for c in MEDIA_COLUMNS})
    try:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise CorpusError(f"{f} cannot be read as CSV ({type(e).__name__}: {e}).") from e
    if "id" not in df.columns:
        raise CorpusError(f"{f} has no 'id' column; expected the columns {MEDIA_COLUMNS}.")
    for c in MEDIA_KINDS:
        if c not in df.columns:
            df[c] = ""
    check_recordings_table(df[["id"]], str(f))  # ids become file names: checked on read, not only on write
    extra = [c for c in OPTIONAL_MEDIA_COLUMNS if c in df.columns]
    return df[MEDIA_COLUMNS + extra].reset_index(drop=True)


def write_media_table(corpus: Corpus, table: pd.DataFrame) -> None:
    """Write ``media.csv`` atomically.

    Parameters
    ----------
    corpus:
        The corpus.
    table:
        Columns ``id`` and any of ``audio``, ``video``, ``physio``, ``transcript`` (paths as ``str``/``Path``,
        ``None``/NaN/``""`` = absent), optionally ``video_fps``. A **relative** path is taken as relative to the
        corpus folder (as in ``media.csv`` itself, so a table read with :func:`read_media_table` writes back
        unchanged), never to the working directory: pass absolute paths for files named relative to the working
        directory. Absolute paths inside the corpus folder are stored relative to it (the corpus stays movable),
        others absolute.
    """
    if "id" not in table.columns:
        raise CorpusError(f"Media table needs an 'id' column; got {list(table.columns)}.")
    out = pd.DataFrame({"id": table["id"].astype(str)})
    for c in MEDIA_KINDS:
        vals = table[c].tolist() if c in table.columns else [None] * len(table)
        out[c] = [_store_path(corpus, v) for v in vals]
    for c in OPTIONAL_MEDIA_COLUMNS:
        if c in table.columns:
            out[c] = ["" if _is_blank(v) else str(v) for v in table[c].tolist()]
    for rid in out["id"]:
        check_name("recording id", rid)
    if out["id"].duplicated().any():
        raise CorpusError(
            f"Media table ids must be unique; repeated: {out.loc[out['id'].duplicated(), 'id'].tolist()[:10]}."
        )
    atomic_write(media_table_path(corpus), lambda p: out.to_csv(p, index=False))


def _is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def _store_path(corpus: Corpus, v: Any) -> str:
    if _is_blank(v):
        return ""
    p = Path(v)
    if not p.is_absolute():
        return p.as_posix()
    root = corpus.path.resolve()
    try:
        return p.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(p.resolve())


def resolve_media_path(corpus: Corpus, value: str) -> Path | None:
    """The absolute path that a ``media.csv`` cell stands for (``None`` when empty)."""
    if _is_blank(value):
        return None
    p = Path(value)
    return p if p.is_absolute() else corpus.path / p


def media_recordings(
    corpus: Corpus | str | os.PathLike, ids: Iterable[str] | None = None
) -> list[MediaRecording]:
    """The raw inputs of the recordings of ``corpus`` that have any.

    Parameters
    ----------
    corpus:
        A corpus or its folder.
    ids:
        Recording ids to return (in this order); ``None``: every recording listed in ``media.csv``, in the order
        of ``recordings.csv``. An id without media, or unknown, raises :class:`CorpusError`.

    Returns
    -------
    list of MediaRecording
        Absolute paths; ``duration`` (s) from ``recordings.csv`` when the recording is listed there.
    """
    corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    table = read_media_table(corpus)
    if table.empty and not media_table_path(corpus).is_file():
        raise CorpusError(
            f"Corpus {str(corpus.path)!r} has no raw media ({MEDIA_FILE} is missing). Add recordings with "
            "`affectflow import-media MANIFEST_OR_FOLDER CORPUS`, or make a synthetic one with "
            "affectflow.synthetic.media.generate_media_corpus."
        )
    rec = corpus.recordings
    durations = dict(zip(rec["id"], rec["duration"]))
    by_id = {r["id"]: r for r in table.to_dict("records")}
    if ids is None:
        order = [i for i in rec["id"] if i in by_id] + [i for i in table["id"] if i not in durations]
    else:
        order = list(ids)
        unknown = [i for i in order if i not in by_id]
        if unknown:
            raise CorpusError(
                f"Recordings {unknown[:10]} have no raw media in corpus {str(corpus.path)!r}; "
                f"{len(by_id)} recordings do, e.g. {sorted(by_id)[:5]}."
            )
    out = []
    for rid in order:
        row = by_id[rid]
        d = durations.get(rid)
        out.append(
            MediaRecording(
                id=rid,
                audio=resolve_media_path(corpus, row["audio"]),
                video=resolve_media_path(corpus, row["video"]),
                physio=resolve_media_path(corpus, row["physio"]),
                transcript=resolve_media_path(corpus, row["transcript"]),
                duration=None if d is None or pd.isna(d) else float(d),
                video_fps=float(row["video_fps"]) if str(row.get("video_fps", "")).strip() else None,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------------- probing
class ProbeError(Exception):
    """A file could not be opened or its duration could not be read (the message says why)."""


def probe_duration(path: Path, kind: str, *, physio_rate_hz: float | None = None) -> float:
    """Duration in seconds of one media file, read cheaply (headers, or one column for CSV).

    Parameters
    ----------
    path:
        The file.
    kind:
        ``"audio"``, ``"video"``, ``"physio"`` or ``"transcript"``.
    physio_rate_hz:
        Sampling rate of a physiology CSV that has no time column (and no rate column).

    Returns
    -------
    float
        Duration (s), > 0.

    Raises
    ------
    ProbeError
        Missing, empty, corrupt or unsupported file.
    """
    path = Path(path)
    if not path.is_file():
        raise ProbeError("file not found")
    if path.stat().st_size == 0:
        raise ProbeError("file is empty (0 bytes)")
    if kind not in MEDIA_KINDS:
        raise ProbeError(f"unknown media kind {kind!r}; expected one of {list(MEDIA_KINDS)}")
    try:
        if kind == "audio":
            d = _probe_audio(path)
        elif kind == "video":
            d = _probe_video(path)
        elif kind == "physio":
            d = _probe_physio(path, physio_rate_hz)
        else:
            d = _probe_transcript(path)
    except ProbeError:
        raise
    except Exception as e:  # noqa: BLE001 - any library error is a probe failure of this file
        raise ProbeError(f"{type(e).__name__}: {e}") from e
    if d is None or not np.isfinite(d) or d <= 0:
        raise ProbeError(f"no usable duration (got {d!r})")
    return float(d)


def _probe_audio(path: Path) -> float:
    return audio_duration(path)


def _probe_video(path: Path) -> float:
    return video_info(path).duration


def _probe_physio(path: Path, physio_rate_hz: float | None) -> float:
    """Duration as the physio reader sees it (the extractors use the same reader)."""
    return open_physio(path, sampling_rate=physio_rate_hz).info.duration


def _probe_transcript(path: Path) -> float:
    """End of the last word, read with the transcript reader (so seconds/milliseconds are handled alike)."""
    words = read_transcript(path)
    return float(words["end"].max()) if len(words) else 0.0

# ---------------------------------------------------------------------------------------------------- import
@dataclass
class MediaImportReport:
    """What :func:`import_media` did.

    Attributes
    ----------
    corpus_path:
        The corpus folder.
    added, replaced:
        Recording ids added / replaced.
    failures:
        One dict per file or recording that could not be imported: ``id``, ``kind``, ``file``, ``message``.
    warnings:
        Recoverable problems (duration spread, ignored files or columns).
    """

    corpus_path: str
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every file was imported."""
        return not self.failures

    def fail(self, rid: str, message: str, *, kind: str = "recording", file: str = "") -> None:
        """Record that ``file`` (a ``kind`` of media or ``labels``; the whole ``recording`` by default) of recording
        ``rid`` was not imported, and why."""
        self.failures.append({"id": rid, "kind": kind, "file": file, "message": message})

    def format(self) -> str:
        """A human-readable summary."""
        lines = [
            f"Imported {len(self.added)} new and {len(self.replaced)} replaced recordings into {self.corpus_path}."
        ]
        if self.failures:
            lines.append(f"{len(self.failures)} problems:")
            lines += [f"  {f['id'] or '?'} [{f['kind']}] {f['file']}: {f['message']}" for f in self.failures]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warnings:")
            lines += [f"  {w}" for w in self.warnings[:50]]
            if len(self.warnings) > 50:
                lines.append(f"  ... and {len(self.warnings) - 50} more (see the report)")
        return "\n".join(lines)


KIND_NAMES = {"audio": "audio", "video": "video", "physio": "physio", "transcript": "transcript",
              "words": "transcript", "labels": "labels"}
"""File names (before the extension) of the per-recording folder layout ``<id>/<kind>.<ext>`` and their kind."""


def _kind_file(name: str) -> str | None:
    """The kind of a ``<kind>.<ext>`` file name (``transcript.csv`` → transcript), or ``None``."""
    stem, ext = os.path.splitext(name)
    kind = KIND_NAMES.get(stem.lower())
    if kind is None:
        return None
    ok = {"audio": AUDIO_EXTS, "video": VIDEO_EXTS, "physio": PHYSIO_EXTS, "transcript": TRANSCRIPT_EXTS,
          "labels": (".csv",)}[kind]
    return kind if ext.lower() in ok else None


def recording_id_of(path: str | os.PathLike) -> str:
    """The recording id a single media file stands for, by the folder-scan rule: a per-recording folder's
    ``<id>/video.mp4`` (``audio.wav``, ``physio.csv``, ...) is recording ``<id>``; any other file is its name before
    the kind marker and extension (``S01.physio.csv`` → ``S01``, ``clip.mp4`` → ``clip``).

    >>> recording_id_of("data/S01/video.mp4"), recording_id_of("data/S02.wav")
    ('S01', 'S02')
    """
    p = Path(path)
    if _kind_file(p.name) is not None and p.parent.name:
        return p.parent.name
    c = _classify(p.name)
    return c[0] if c is not None and c[0] else p.stem


def _classify(name: str) -> tuple[str, str] | None:
    """(recording id, kind) of a file name under the folder-scan rule, or ``None``."""
    low = name.lower()
    if low.endswith(".labels.csv"):
        return name[: -len(".labels.csv")], "labels"
    for marker in (".transcript", ".words"):
        for ext in TRANSCRIPT_EXTS:
            if low.endswith(marker + ext):
                return name[: -len(marker + ext)], "transcript"
    for ext in PHYSIO_EXTS:
        if low.endswith(".physio" + ext):
            return name[: -len(".physio" + ext)], "physio"
    stem, ext = os.path.splitext(name)
    ext = ext.lower()
    if ext == ".json":
        return stem, "transcript"
    if ext in AUDIO_EXTS:
        return stem, "audio"
    if ext in VIDEO_EXTS:
        return stem, "video"
    if ext in PHYSIO_EXTS:
        return stem, "physio"
    return None


def scan_media_folder(
    folder: Path, *, recursive: bool = False
) -> tuple[dict[str, dict[str, Path]], list[str], list[dict[str, str]]]:
    """Group the files of ``folder`` by recording id under the folder-scan rule (module docstring).

    Returns
    -------
    found:
        ``{id: {kind: path}}``.
    ignored:
        Files that match no rule.
    problems:
        Ambiguous ids (two files of one kind): dicts ``id, kind, file, message``.

    ``found`` may include the kind ``labels`` (a recording's label file).
    """
    folder = Path(folder)
    files = sorted(folder.rglob("*") if recursive else [*folder.iterdir(), *folder.glob("*/*")])
    found: dict[str, dict[str, Path]] = {}
    ignored: list[str] = []
    dup: dict[tuple[str, str], list[Path]] = {}
    for f in files:
        if not f.is_file() or any(part.startswith(".") for part in f.relative_to(folder).parts):
            continue
        depth = len(f.relative_to(folder).parts)
        kind = _kind_file(f.name)
        if kind is not None:
            if depth == 1:  # "transcript.csv" directly in the scanned folder names no recording
                ignored.append(str(f))
                continue
            c: tuple[str, str] | None = (f.parent.name, kind)
        else:
            c = _classify(f.name)
            if c is not None and depth == 2 and not recursive and c[0] != f.parent.name:
                c = None  # in a per-recording folder only files of that recording count
        if c is None or not c[0]:
            ignored.append(str(f))
            continue
        rid, kind = c
        dup.setdefault((rid, kind), []).append(f)
    problems = []
    bad_ids = set()
    for (rid, kind), paths in dup.items():
        if len(paths) > 1:
            bad_ids.add(rid)
            problems.append(
                {
                    "id": rid,
                    "kind": kind,
                    "file": ", ".join(str(p) for p in paths),
                    "message": f"{len(paths)} {kind} files for one recording id; keep one or use a manifest",
                }
            )
    for (rid, kind), paths in dup.items():
        if rid not in bad_ids:
            found.setdefault(rid, {})[kind] = paths[0]
    return found, ignored, problems


def _read_manifest(path: Path, partition: str) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # noqa: BLE001
        raise ImportFormatError(f"Cannot read the manifest {path}: {type(e).__name__}: {e}.") from e
    cols = {c.strip().lower(): c for c in df.columns}
    if "id" not in cols:
        raise ImportFormatError(
            f"Manifest {path} has no 'id' column; expected the columns id, subject, partition, audio, video, physio, "
            f"transcript (any subset of the last four). Found: {list(df.columns)}."
        )
    if not any(k in cols for k in MEDIA_KINDS):
        raise ImportFormatError(
            f"Manifest {path} has none of the media columns {list(MEDIA_KINDS)}; found {list(df.columns)}."
        )
    known = {"id", "subject", "partition", "labels", *MEDIA_KINDS}
    warnings = [f"manifest column {c!r} ignored" for k, c in cols.items() if k not in known]
    base = path.parent
    rows = []
    for r in df.to_dict("records"):
        rid = str(r[cols["id"]]).strip()
        row: dict[str, Any] = {
            "id": rid,
            "subject": (str(r[cols["subject"]]).strip() if "subject" in cols else "") or rid,
            "partition": (str(r[cols["partition"]]).strip() if "partition" in cols else "") or partition,
        }
        for k in (*MEDIA_KINDS, "labels"):
            v = str(r[cols[k]]).strip() if k in cols else ""
            row[k] = None if not v else (Path(v) if Path(v).is_absolute() else base / v)
        rows.append(row)
    return rows, warnings


def read_recording_map(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """A recording map CSV: column ``id`` and at least one of ``partition`` and ``subject``, as
    ``{id: {"partition": ..., "subject": ...}}`` (empty cells leave that value alone).

    Raises
    ------
    ImportFormatError
        Missing or unreadable file, no ``id`` column or neither ``partition`` nor ``subject``, repeated ids, or
        ids / partitions that break the name rule (:mod:`affectflow.fsutil`).
    """
    p = Path(path)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ImportFormatError(f"Recording map {str(p)!r} does not exist.") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ImportFormatError(f"Recording map {str(p)!r} cannot be read as CSV ({type(e).__name__}: {e}).") from None
    cols = [c for c in ("partition", "subject") if c in df.columns]
    if "id" not in df.columns or not cols:
        raise ImportFormatError(f"Recording map {str(p)!r} needs the column id and partition and/or subject; it has "
                                f"{list(df.columns)[:8]}.")
    dup = sorted(set(df.loc[df["id"].duplicated(), "id"]))
    if dup:
        raise ImportFormatError(f"Recording map {str(p)!r} lists {len(dup)} id(s) more than once: {dup[:10]}.")
    check_names("recording id", df["id"].tolist(), where=f"recording map {str(p)!r}", error=ImportFormatError)
    if "partition" in df.columns:
        check_names("partition", [x for x in df["partition"] if x != ""], where=f"recording map {str(p)!r}",
                    error=ImportFormatError)
    out: dict[str, dict[str, str]] = {}
    for _, r in df.iterrows():
        out[r["id"]] = {c: r[c].strip() for c in cols if r[c].strip() != ""}
    return out


def import_media(
    manifest_or_folder: str | os.PathLike,
    corpus_path: str | os.PathLike,
    *,
    name: str | None = None,
    label_rate_hz: float | None = 2.0,
    partition: str = "train",
    subject_regex: str | None = None,
    recursive: bool = False,
    physio_rate_hz: float | None = None,
    overwrite: bool = False,
    duration_tolerance_s: float = 1.0,
    labels: str | os.PathLike | None = None,
    recording_map: str | os.PathLike | None = None,
    progress: bool = False,
) -> MediaImportReport:
    """Create or extend a corpus with raw recordings (see the module docstring for the manifest and scan rules).

    Parameters
    ----------
    manifest_or_folder:
        A manifest CSV file or a folder of media files.
    corpus_path:
        Corpus folder: created when missing (or empty), extended when it is a corpus.
    name:
        Name of a new corpus (default: the folder name).
    label_rate_hz:
        Label grid rate of a new corpus (Hz).
    partition:
        Partition of recordings whose manifest row gives none (all of them for a folder scan).
    subject_regex:
        Regular expression searched in the recording id; its first group (or the whole match) is the subject.
        Default: the subject is the manifest's ``subject`` or the recording id.
    recursive:
        Scan sub-folders too (folder mode).
    physio_rate_hz:
        Sampling rate of physiology CSVs that have no time or rate column.
    overwrite:
        Replace recordings whose id is already in the corpus (otherwise they are reported and kept as they are).
    duration_tolerance_s:
        A larger spread between the durations of one recording's files is reported as a warning.
    labels:
        Folder of per-dimension label CSVs in the MuSe layout (``<dim>/<id>.csv``: ``timestamp`` in ms, ``value``);
        label files named in the manifest or found by the folder scan are read too (module docstring, Labels).
    recording_map:
        A CSV with the column ``id`` and ``partition`` and/or ``subject`` (:func:`read_recording_map`): their
        values replace the folder scan's assumptions (every recording in ``partition``, subject = id) or the
        manifest's. Ids of the map that name no recording are reported. Without a map, a folder scan says in the
        report that it made those assumptions.
    progress:
        Progress of the probing phase (a bar on a terminal, one line on a pipe: :mod:`affectflow.progress`).

    Returns
    -------
    MediaImportReport
        Also written to ``<corpus>/reports/import_media.json``.

    Raises
    ------
    ImportFormatError
        The manifest or folder does not exist or is unreadable, or it names no recording at all, or (for a new
        corpus) no recording could be imported. A new corpus is built in a hidden sibling folder and renamed into
        place, so it is created whole or not at all; an existing one gets both tables updated or neither.
    CorpusError
        ``corpus_path`` exists and is neither empty nor a corpus.
    """
    src = Path(manifest_or_folder)
    report = MediaImportReport(corpus_path=str(corpus_path))
    if src.is_dir():
        found, ignored, problems = scan_media_folder(src, recursive=recursive)
        report.failures += problems
        report.warnings += [f"ignored file (no naming rule matches): {f}" for f in ignored]
        rows = [
            {"id": rid, "subject": rid, "partition": partition,
             **{k: kinds.get(k) for k in (*MEDIA_KINDS, "labels")}}
            for rid, kinds in sorted(found.items())
        ]
        if rows and recording_map is None:
            report.warnings.append(
                f"folder scan: no partition or subject is known for the {len(rows)} recording(s) found, so all are "
                f"in partition {partition!r} with subject = recording id"
                + (" (subjects then from --subject-regex)" if subject_regex else "")
                + "; give a map CSV (columns id, partition, subject; --map FILE) or a manifest to say otherwise")
    elif src.is_file():
        rows, warnings = _read_manifest(src, partition)
        report.warnings += warnings
    else:
        raise ImportFormatError(
            f"{str(src)!r} does not exist; give a manifest CSV or a folder of media files."
        )
    if recording_map is not None:
        rmap = read_recording_map(recording_map)
        ids = {r["id"] for r in rows}
        unknown = sorted(set(rmap) - ids)
        if unknown:
            report.warnings.append(f"recording map {str(recording_map)!r}: {len(unknown)} id(s) name no recording "
                                   f"found here: {unknown[:10]}")
        unmapped = sorted(ids - set(rmap))
        if unmapped:
            report.warnings.append(f"recording map {str(recording_map)!r} does not list {len(unmapped)} "
                                   f"recording(s), which keep partition {partition!r} / their own subject: "
                                   f"{unmapped[:10]}")
        for r in rows:
            r.update(rmap.get(r["id"], {}))
    if not rows and not report.failures:
        raise ImportFormatError(
            f"No recordings found in {str(src)!r}. Files are matched by name: <id>.wav|flac|mp3 (audio), "
            "<id>.mp4|avi|mkv (video), <id>.csv|edf|hea or <id>.physio.csv (physiology), <id>.transcript.csv|json "
            "(transcript)."
        )
    try:
        rx = re.compile(subject_regex) if subject_regex else None
    except re.error as e:
        raise ImportFormatError(f"subject_regex {subject_regex!r} is not a valid regular expression: {e}.") from None

    cpath = Path(corpus_path)
    is_new = not (cpath / "corpus.json").is_file()
    if is_new:
        if cpath.exists() and (not cpath.is_dir() or any(cpath.iterdir())):
            raise CorpusError(f"Cannot create a corpus in {str(cpath)!r}: it exists and is neither empty nor a corpus.")
        corpus = None
        recordings = pd.DataFrame(columns=["id", "subject", "partition", "duration"])
        media = pd.DataFrame({c: pd.Series(dtype=str) for c in MEDIA_COLUMNS})
    else:
        corpus = Corpus(cpath)
        recordings = corpus.recordings.copy()
        media = read_media_table(corpus)
    existing = set(recordings["id"])

    new_rec, new_media = [], []
    label_frames: dict[str, pd.DataFrame] = {}
    labels_dir = Path(labels) if labels is not None else None
    if labels_dir is not None and not labels_dir.is_dir():
        raise ImportFormatError(
            f"Label folder {str(labels_dir)!r} does not exist; expected per-dimension CSVs <dim>/<id>.csv (MuSe layout)."
        )
    seen: set[str] = set()

    for row in progress_bar(rows, desc="probing media", unit="recordings", disable=not progress):
        rid = row["id"]
        try:
            check_name("recording id", rid)
            check_name("partition", row["partition"])
        except CorpusError as e:
            report.fail(rid, str(e))
            continue
        if rid in seen:
            report.fail(rid, "id listed twice")
            continue
        seen.add(rid)
        if rid in existing and not overwrite:
            report.fail(rid, "already in the corpus (use overwrite to replace it)")
            continue
        subject = row["subject"]
        if rx is not None:
            m = rx.search(rid)
            if m is None:
                report.warnings.append(f"{rid}: subject_regex {subject_regex!r} does not match; subject = id")
            else:
                subject = m.group(1) if m.groups() else m.group(0)
        durations: dict[str, float] = {}
        kept: dict[str, Path | None] = {k: None for k in MEDIA_KINDS}
        for kind in MEDIA_KINDS:
            p = row.get(kind)
            if p is None:
                continue
            try:
                durations[kind] = probe_duration(Path(p), kind, physio_rate_hz=physio_rate_hz)
                kept[kind] = Path(p).resolve()
            except ProbeError as e:
                report.fail(rid, str(e), kind=kind, file=str(p))
        if not durations:
            report.fail(rid, "no file of this recording could be read; recording not imported")
            continue
        signal = {k: d for k, d in durations.items() if k != "transcript"}
        duration = max(signal.values()) if signal else durations["transcript"]
        if len(signal) > 1 and max(signal.values()) - min(signal.values()) > duration_tolerance_s:
            report.warnings.append(
                f"{rid}: file durations differ by more than {duration_tolerance_s:g} s: "
                + ", ".join(f"{k} {d:.2f} s" for k, d in signal.items())
                + f"; using {duration:.2f} s"
            )
        if "transcript" in durations and durations["transcript"] > duration + duration_tolerance_s:
            report.warnings.append(
                f"{rid}: transcript ends at {durations['transcript']:.2f} s, after the media ({duration:.2f} s)"
            )
        lab, problem = _recording_labels(rid, row.get("labels"), labels_dir)
        if problem:
            report.fail(rid, problem[1], kind="labels", file=problem[0])
        elif lab is not None:
            label_frames[rid] = lab
        new_rec.append(
            {"id": rid, "subject": subject, "partition": row["partition"], "duration": round(duration, 6)}
        )
        new_media.append({"id": rid, **kept})
        (report.replaced if rid in existing else report.added).append(rid)

    if new_rec:
        ids = {r["id"] for r in new_rec}
        keep_rec = recordings[~recordings["id"].isin(ids)]
        recordings = (
            pd.concat([keep_rec, pd.DataFrame(new_rec)], ignore_index=True)
            if len(keep_rec)
            else pd.DataFrame(new_rec)
        )
        keep_media = media[~media["id"].isin(ids)]
        media = (
            pd.concat([keep_media, pd.DataFrame(new_media)], ignore_index=True)
            if len(keep_media)
            else pd.DataFrame(new_media)
        )
    dims = _label_dims(label_frames, corpus, report)
    if is_new:
        # a new corpus is built in a hidden sibling folder and renamed into place: all of it, or nothing
        if not new_rec:
            listed = "\n".join(f"  {f['id'] or '?'} [{f['kind']}] {f['file']}: {f['message']}" for f in report.failures[:25])
            raise ImportFormatError(
                f"No recording of {str(src)!r} could be imported, so no corpus was created at {str(cpath)!r}. "
                f"{len(report.failures)} problem(s):\n{listed}"
            )
        with staged_folder(cpath) as tmp:
            staged = Corpus.create(
                tmp,
                name=name or cpath.resolve().name,
                label_rate_hz=label_rate_hz,
                description=f"Raw recordings imported from {src}",
            )
            write_media_table(staged, media)
            staged.set_recordings(recordings)
            _write_labels(staged, label_frames, dims)
            staged.write_report("import_media", {"source": str(src), **asdict(report)})
        return report
    if new_rec:
        # validate both tables before writing either (ids and partitions were checked row by row above)
        check_recordings_table(recordings, "The new recordings table")
        # media first: a crash between the two writes leaves media for ids not yet in recordings, never the reverse
        write_media_table(corpus, media)
        corpus.set_recordings(recordings)
        _write_labels(corpus, label_frames, dims)
    corpus.write_report("import_media", {"source": str(src), **asdict(report)})
    return report


def read_label_file(path: Path) -> pd.DataFrame:
    """A recording's label file: ``time`` (s) then one float column per dimension (NaN = not annotated).

    The file has a ``time`` (s) or ``timestamp`` (ms) column, strictly increasing, and numeric dimension columns;
    ``segment_id`` is dropped. Raises :class:`ProbeError` saying what is wrong.
    """
    try:
        df = pd.read_csv(path)
    except Exception as e:  # noqa: BLE001 - any parse failure is this file's problem
        raise ProbeError(f"cannot be read as CSV ({type(e).__name__}: {e})") from e
    tcol = "time" if "time" in df.columns else "timestamp" if "timestamp" in df.columns else None
    if tcol is None:
        raise ProbeError(f"no 'time' (s) or 'timestamp' (ms) column; columns {list(df.columns)[:6]}")
    dims = [c for c in df.columns if c not in (tcol, "segment_id")]
    if not dims or not len(df):
        raise ProbeError("no label columns or no rows")
    t = pd.to_numeric(df[tcol], errors="coerce").to_numpy(float)
    if not np.all(np.isfinite(t)) or (len(t) > 1 and not np.all(np.diff(t) > 0)):
        raise ProbeError(f"'{tcol}' must be numeric and strictly increasing")
    vals = df[dims].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in dims if (vals[c].isna() & df[c].notna()).any()]
    if bad:
        raise ProbeError(f"non-numeric label values in {bad[:5]}")
    out = pd.DataFrame({"time": t / 1000.0 if tcol == "timestamp" else t})
    return pd.concat([out, vals.astype(np.float64).reset_index(drop=True)], axis=1)


def _recording_labels(rid: str, path: Path | None, labels_dir: Path | None) -> tuple[pd.DataFrame | None, tuple | None]:
    """(labels, None) or (None, (file, problem)) for one recording; (None, None) when it has none."""
    frames = []
    try:
        if path is not None:
            frames.append(read_label_file(Path(path)))
        if labels_dir is not None:
            for d in sorted(x for x in labels_dir.iterdir() if x.is_dir()):
                f = d / f"{rid}.csv"
                if not f.is_file():
                    continue
                path = f
                lab = read_label_file(f)
                if "value" not in lab.columns:
                    raise ProbeError("a MuSe label file needs the columns timestamp, value")
                frames.append(lab[["time", "value"]].rename(columns={"value": d.name}))
    except ProbeError as e:
        return None, (str(path), str(e))
    if not frames:
        return None, None
    out = frames[0]
    for f in frames[1:]:
        dup = [c for c in f.columns if c != "time" and c in out.columns]
        if dup:
            return None, (str(path), f"dimension(s) {dup} given twice for this recording")
        out = out.merge(f, on="time", how="outer")
    return out.sort_values("time").reset_index(drop=True), None


def _label_dims(frames: dict[str, pd.DataFrame], corpus: Corpus | None, report: MediaImportReport) -> list[str]:
    """The label set's dimensions; recordings lacking one are warned about; a clash with the corpus is a failure."""
    if not frames:
        return []
    dims = sorted({c for f in frames.values() for c in f.columns if c != "time"})
    if corpus is not None and "continuous" in corpus.label_sets:
        have = corpus.label_set("continuous").dims
        if sorted(have) != dims:
            for rid in list(frames):
                report.fail(rid, f"labels have dimensions {dims}; the corpus's label set has {have}", kind="labels")
            frames.clear()
            return []
        dims = list(have)
    for rid, f in frames.items():
        lack = [d for d in dims if d not in f.columns]
        if lack:
            report.warnings.append(f"{rid}: labels lack the dimension(s) {lack} (missing there)")
    return dims


def _write_labels(corpus: Corpus, frames: dict[str, pd.DataFrame], dims: list[str]) -> None:
    if not frames or not dims:
        return
    steps = [float(np.median(np.diff(f["time"]))) for f in frames.values() if len(f) > 1]
    rate = round(1.0 / float(np.median(steps)), 6) if steps else None
    if "continuous" not in corpus.label_sets:
        corpus.write_label_set_info(LabelSetInfo("continuous", dims, rate, "labels imported with the raw media"))
    for rid, f in frames.items():
        for d in dims:
            if d not in f.columns:
                f[d] = np.nan
        corpus.write_labels(rid, f[["time", *dims]])
