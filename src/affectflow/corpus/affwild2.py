"""Import the Aff-Wild2 / ABAW valence-arousal layout into an affectflow corpus.

Expected layout (``formats.md``; ``ROOT`` is the folder given, or the parent of ``VA_Estimation_Challenge``)::

    ROOT/VA_Estimation_Challenge/Train_Set/<name>.txt       "valence,arousal", then one line per video frame
    ROOT/VA_Estimation_Challenge/Validation_Set/<name>.txt   -5 = frame not annotated
    <videos>/**/<video>.mp4|avi|mkv|mov|webm                 default: searched anywhere under ROOT
    <crops>/<name>/<00001>.jpg                               default: ROOT/cropped_aligned
    test list (optional)                                     one <name> per line (extensions .txt/.mp4/... dropped)

What the importer does
    - ``Train_Set`` → partition ``train``, ``Validation_Set`` → ``devel``, the test list → ``test`` (no labels).
    - ``<name>`` is a video name, or ``<video>_left`` / ``<video>_right`` (two people in one video): both
      belong to ``<video>``'s file. Each name is one recording (its own subject: a different person each).
    - The frame rate and frame count of each video are read from the file with PyAV
      (:func:`affectflow.io.video.video_info`). Labels are per frame at that video's own rate: line ``i + 1``
      (``i = 0, 1, ...``) holds frame ``i`` (crop ``{i+1:05d}.jpg``) at time ``t = i / fps`` s. So every
      recording has its own label rate; ``recordings.csv`` gets the columns ``video``, ``fps``, ``frames``
      and ``label_rate_hz`` (= ``fps``, the grid of recordings without labels: the test videos get
      ``frames`` steps at ``i / fps``), and ``corpus.json``'s ``label_rate_hz`` is the median fps.
    - ``-5`` (in either column) marks a frame that is not annotated: that value is **missing** (NaN), never a
      value; counted per file. Other values must lie in [-1, 1].
    - ``media.csv`` points each recording at its face input: the crop folder (``face_source="crops"``, with
      ``video_fps``; missing crops become NaN rows when features are extracted) or the video file
      (``face_source="video"``); extract face features with ``affectflow extract`` (e.g. ``crop_pixels``,
      ``face_landmarks`` with ``rate_hz: null`` for every frame).
    - ``reference_labels``: a folder of ``<name>.txt`` files in the same format (e.g. the noise-free labels of
      :func:`affectflow.synthetic.affwild2.generate_affwild2`, or another annotation) imported as label set
      ``continuous_clean``; the training report then gives the CCC ceiling against it.

Problems
    Errors stop the import before anything is written (all of them are listed): a missing annotation folder, a
    bad header, non-numeric or out-of-range values, a name in two partitions, an unsafe name, a missing or
    unreadable video (unless ``default_fps`` is given: then a warning and that rate), a duplicate video name.
    Warnings are counted and listed in ``reports/import.json``: annotation files with more or fewer lines than the
    video has frames (labels are kept as given: steps past the video have no features), missing crop folders,
    unannotated frames, ignored files, two-person videos with ``face_source="video"``.
    The corpus is written into a temporary sibling folder and renamed into place (all or nothing).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from affectflow.corpus.corpus import TIME, Corpus, LabelSetInfo
from affectflow.corpus.importreport import ChallengeImportReport
from affectflow.corpus.media import write_media_table
from affectflow.corpus.staging import check_new_folder, staged_folder
from affectflow.errors import CorpusError, ExtractionError, ImportFormatError
from affectflow.fsutil import check_name
from affectflow.io.video import video_info
from affectflow.progress import progress_bar

ANNOTATION_DIR = "VA_Estimation_Challenge"
SETS = {"Train_Set": "train", "Validation_Set": "devel"}
DIMS = ["valence", "arousal"]
NOT_ANNOTATED = -5.0
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
_PERSON = re.compile(r"^(?P<video>.+)_(?:left|right)$")
FACE_SOURCES = ("crops", "video", "none")


def video_of(name: str) -> str:
    """The video a name belongs to: ``"10-60-1280x720_left"`` → ``"10-60-1280x720"``; others unchanged."""
    m = _PERSON.match(name)
    return m.group("video") if m else name


def parse_annotation(path: Path, report: ChallengeImportReport) -> np.ndarray | None:
    """Read one annotation file: ``(N, 2)`` float32 (valence, arousal), NaN where ``-5``; ``None`` on an error.

    Errors (appended to ``report``): unreadable, missing/other header, a line without exactly two numbers, a value
    outside [-1, 1] other than -5, no frame lines.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        report.errors.append(f"{path}: cannot be read ({type(e).__name__}: {e})")
        return None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or [c.strip().lower() for c in lines[0].split(",")] != DIMS:
        first = lines[0][:60] if lines else "(empty file)"
        report.errors.append(f"{path}: first line must be 'valence,arousal', found {first!r}")
        return None
    body = lines[1:]
    if not body:
        report.errors.append(f"{path}: no frame lines after the header")
        return None
    values = np.full((len(body), 2), np.nan, dtype=np.float64)
    bad_lines = []
    for i, line in enumerate(body):
        parts = line.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            values[i] = [float(parts[0]), float(parts[1])]
        except ValueError:
            bad_lines.append(i + 2)
    if bad_lines:
        report.errors.append(
            f"{path}: {len(bad_lines)} line(s) are not two numbers 'valence,arousal' (e.g. line(s) {bad_lines[:5]})"
        )
        return None
    unann = values == NOT_ANNOTATED
    finite = np.isfinite(values)
    out_of_range = finite & ~unann & ((values < -1) | (values > 1))
    if (~finite).any() or out_of_range.any():
        rows = np.flatnonzero((~finite | out_of_range).any(1)) + 2
        report.errors.append(
            f"{path}: {len(rows)} line(s) with values outside [-1, 1] that are not the -5 'not annotated' mark, "
            f"or NaN/inf (e.g. line(s) {rows[:5].tolist()})"
        )
        return None
    n_unann = int(unann.any(1).sum())
    report.counts["frames annotated"] += int((~unann).all(1).sum())
    report.counts["frames not annotated (-5, missing)"] += n_unann
    values[unann] = np.nan
    return values.astype(np.float32)


def _read_test_list(path: Path, report: ChallengeImportReport) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ImportFormatError(f"Cannot read the test-set list {str(path)!r}: {type(e).__name__}: {e}.") from e
    names = []
    for line in lines:
        n = line.strip().split(",")[0].strip()
        if not n:
            continue
        for ext in (".txt", *VIDEO_EXTS):
            if n.lower().endswith(ext):
                n = n[: -len(ext)]
        names.append(n)
    if names and names[0].lower() in ("name", "video", "id", "videos"):
        names = names[1:]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        report.errors.append(f"{path}: names listed more than once: {dup[:10]}")
    if not names:
        report.errors.append(f"{path}: the test-set list names no video")
    return list(dict.fromkeys(names))


def _index_videos(folder: Path, skip: list[Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    skip_r = [s.resolve() for s in skip if s.exists()]
    for f in sorted(folder.rglob("*")):
        if f.suffix.lower() not in VIDEO_EXTS or f.name.startswith(".") or not f.is_file():
            continue
        rf = f.resolve()
        if any(s == rf or s in rf.parents for s in skip_r):
            continue
        out.setdefault(f.stem, []).append(f)
    return out


def import_affwild2(
    root: str | Path,
    out: str | Path,
    *,
    videos: str | Path | None = None,
    crops: str | Path | None = None,
    test_list: str | Path | None = None,
    face_source: str = "crops",
    default_fps: float | None = None,
    reference_labels: str | Path | None = None,
    name: str | None = None,
    progress: bool = True,
) -> tuple[Corpus, ChallengeImportReport]:
    """Import an Aff-Wild2 VA folder into a new corpus at ``out`` (see the module docstring).

    Parameters
    ----------
    root:
        The folder holding ``VA_Estimation_Challenge/`` (or that folder itself).
    out:
        New corpus folder (must not exist or be empty).
    videos:
        Folder searched (recursively) for ``<video>.mp4|avi|...``; default ``root``.
    crops:
        Folder of ``<name>/<00001>.jpg`` crops; default ``root/cropped_aligned``.
    test_list:
        Text file naming the test videos, one per line.
    face_source:
        ``crops``, ``video`` or ``none``: what ``media.csv`` points each recording at.
    default_fps:
        Frame rate to use for a name whose video is missing (a warning); without it a missing video is an error.
    reference_labels:
        Folder of ``<name>.txt`` in the same format, imported as label set ``continuous_clean``.
    name:
        Corpus name (default: the root folder's name).

    Returns
    -------
    (Corpus, ChallengeImportReport)

    Raises
    ------
    ImportFormatError
        Any error of the module docstring's list (all of them in one message); nothing is written.
    CorpusError
        ``out`` exists and is not an empty folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ImportFormatError(f"Aff-Wild2 folder {str(root)!r} does not exist.")
    ann = root / ANNOTATION_DIR
    if not ann.is_dir() and root.name == ANNOTATION_DIR:
        ann, root = root, root.parent
    if not ann.is_dir() or not any((ann / s).is_dir() for s in SETS):
        raise ImportFormatError(
            f"{str(root)!r} has no {ANNOTATION_DIR}/Train_Set or {ANNOTATION_DIR}/Validation_Set folder. Expected the "
            "ABAW VA layout: VA_Estimation_Challenge/{Train_Set,Validation_Set}/<video>.txt (header "
            "'valence,arousal', one line per frame), the videos, and optionally cropped_aligned/<video>/<00001>.jpg."
        )
    if face_source not in FACE_SOURCES:
        raise ImportFormatError(f"face_source must be one of {list(FACE_SOURCES)}, got {face_source!r}.")
    if default_fps is not None and not (np.isfinite(default_fps) and default_fps > 0):
        raise ImportFormatError(f"default_fps must be a positive frame rate, got {default_fps!r}.")
    check_new_folder(out)
    report = ChallengeImportReport(str(root), "affwild2")

    # ---- names and partitions
    part_of: dict[str, str] = {}
    ann_file: dict[str, Path] = {}
    for sub, part in SETS.items():
        d = ann / sub
        if not d.is_dir():
            report.warnings.append(f"{d} does not exist: no {part} recordings")
            continue
        for f in report.files(sorted(d.iterdir()), ".txt", expected="a <name>.txt annotation file"):
            n = f.stem
            if n in part_of:
                report.errors.append(f"{n!r} is annotated in two sets: {ann_file[n]} and {f}")
                continue
            part_of[n], ann_file[n] = part, f
    if test_list is not None:
        for n in _read_test_list(Path(test_list), report):
            if n in part_of:
                report.errors.append(f"{n!r} is in the test-set list {test_list} and has labels in {ann_file[n]}")
                continue
            part_of[n] = "test"
    if not part_of:
        raise ImportFormatError(f"No annotation files (<name>.txt) found under {ann} and no test-set list given.")
    for n in part_of:
        try:
            check_name("recording id", n)
        except CorpusError as e:
            report.errors.append(str(e))

    # ---- videos: frame rate and count
    crops_dir = Path(crops) if crops is not None else root / "cropped_aligned"
    vids = _index_videos(Path(videos) if videos is not None else root, [crops_dir, ann])
    if videos is not None and not Path(videos).is_dir():
        report.errors.append(f"videos folder {str(videos)!r} does not exist")
    info: dict[str, dict] = {}

    for video in progress_bar(sorted({video_of(n) for n in part_of}), desc="videos", disable=not progress):
        found = vids.get(video, [])
        if len(found) > 1:
            report.errors.append(f"video {video!r} found more than once: {[str(p) for p in found]}")
            continue
        if not found:
            if default_fps is None:
                report.errors.append(
                    f"no video file {video}.mp4/.avi/... found (needed for its frame rate); give --videos or "
                    "--default-fps"
                )
            else:
                report.warnings.append(f"no video file for {video!r}: frame rate {default_fps:g} fps assumed")
                report.counts["videos missing (default fps used)"] += 1
                info[video] = {"path": None, "fps": float(default_fps), "frames": None}
            continue
        try:
            vi = video_info(found[0])
        except ExtractionError as e:
            report.errors.append(str(e))
            continue
        if not vi.fps > 0:
            report.errors.append(f"{found[0]}: the container gives no frame rate")
            continue
        info[video] = {"path": found[0], "fps": float(vi.fps), "frames": int(vi.n_frames)}
        report.counts["videos"] += 1

    # ---- labels
    labels: dict[str, np.ndarray] = {}
    for n, f in progress_bar(sorted(ann_file.items()), desc="annotations", disable=not progress):
        v = parse_annotation(f, report)
        if v is not None:
            labels[n] = v
            report.counts["annotation files"] += 1
    clean: dict[str, np.ndarray] = {}
    if reference_labels is not None:
        rdir = Path(reference_labels)
        if not rdir.is_dir():
            report.errors.append(f"reference-labels folder {str(rdir)!r} does not exist")
        else:
            sub = ChallengeImportReport(str(rdir), "affwild2-reference")
            for n in sorted(part_of):
                f = rdir / f"{n}.txt"
                if not f.is_file():
                    report.warnings.append(f"{f}: missing (no reference labels for {n!r})")
                    report.counts["reference label files missing"] += 1
                    continue
                v = parse_annotation(f, sub)
                if v is not None:
                    clean[n] = v
            report.errors += sub.errors

    report.raise_if_errors("Aff-Wild2")

    # ---- per recording: grid, duration, media
    rows, media = [], []
    for n in sorted(part_of, key=lambda x: (["train", "devel", "test"].index(part_of[x]), x)):
        vid = info[video_of(n)]
        fps = vid["fps"]
        lab = labels.get(n)
        frames = vid["frames"]
        if frames is None:  # no video: the annotation (or the crops) give the count
            frames = len(lab) if lab is not None else len(_crop_numbers(crops_dir / n))
            if frames == 0:
                report.errors.append(f"{n!r}: no video, no labels and no crops: its length is unknown")
                continue
        if lab is not None and len(lab) != frames:
            report.warnings.append(
                f"{ann_file[n]}: {len(lab)} annotated lines for {frames} video frames "
                f"({'labels past the last frame have no features' if len(lab) > frames else 'the last frames have no labels'})"
            )
            report.counts["annotation files whose length differs from the video"] += 1
        face = None
        if face_source == "crops":
            cdir = crops_dir / n
            if cdir.is_dir():
                face = cdir.resolve()
                nums = _crop_numbers(cdir)
                report.counts["crop images"] += len(nums)
                report.counts["frames without a crop (masked)"] += max(frames - len([k for k in nums if k <= frames]), 0)
            else:
                report.warnings.append(f"{cdir}: no crop folder; {n!r} has no face input (its face steps are missing)")
                report.counts["crop folders missing"] += 1
        elif face_source == "video" and vid["path"] is not None:
            face = Path(vid["path"]).resolve()
            if n != video_of(n):
                report.warnings.append(
                    f"{n!r}: two people share {vid['path']}; face extractors follow the most prominent face, not "
                    "necessarily this person (use face_source='crops')"
                )
        n_steps = max(frames, len(lab) if lab is not None else 0)
        rows.append({"id": n, "subject": n, "partition": part_of[n], "duration": round(n_steps / fps, 6),
                     "video": video_of(n), "fps": fps, "frames": frames, "label_rate_hz": fps})
        media.append({"id": n, "video": face, "video_fps": fps if face is not None and face.is_dir() else None})
    report.raise_if_errors("Aff-Wild2")

    fps_all = [r["fps"] for r in rows]
    with staged_folder(out) as tmp:
        corpus = Corpus.create(tmp, name=name or root.resolve().name, label_rate_hz=float(np.median(fps_all)),
                               description=f"Imported from the Aff-Wild2 VA layout at {root}",
                               source=str(root.resolve()), layout="affwild2")
        corpus.write_label_set_info(LabelSetInfo("continuous", DIMS, None, "Aff-Wild2 VA labels per video frame "
                                                 "at each video's own rate (recordings.csv label_rate_hz)"))
        if clean:
            corpus.write_label_set_info(LabelSetInfo("continuous_clean", DIMS, None, f"reference labels from {reference_labels}"))
        for r in progress_bar(rows, desc="writing labels", unit="recordings", disable=not progress):
            n, fps = r["id"], r["fps"]
            for lset, table in (("continuous", labels), ("continuous_clean", clean)):
                if n in table:
                    v = table[n]
                    corpus.write_labels(n, pd.DataFrame({TIME: np.arange(len(v)) / fps, "valence": v[:, 0],
                                                         "arousal": v[:, 1]}), lset)
        corpus.set_recordings(pd.DataFrame(rows))
        if face_source != "none":
            write_media_table(corpus, pd.DataFrame(media))
        for r in rows:
            report.recordings[r["partition"]] = report.recordings.get(r["partition"], 0) + 1
        corpus.write_report("import", report.to_dict())
    return Corpus(out), report


def _crop_numbers(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return [int(f.stem) for f in folder.iterdir() if f.stem.isdigit() and f.suffix.lower() in (".jpg", ".jpeg", ".png")]
