"""Import the MER 2023 layout into an affectflow corpus (clip task: one emotion and one valence per clip).

Expected layout (``formats.md``)::

    ROOT/train-label.csv               name,discrete,valence     discrete: neutral, angry, happy, sad, worried,
    ROOT/test1-label.csv ...            (test1, test2, test3)     surprise; valence in [-5, 5]
    ROOT/devel-label.csv               (optional) the user's own devel split, same columns
    ROOT/features/<set>/<name>.npy     (C,) utterance-level, or (T, C) frame-level at a rate given per set
    ROOT/videos/<name>.mp4             (optional) registered in media.csv for face extraction

What the importer does
    - Partitions: ``train``; ``devel`` from ``devel-label.csv`` when it exists, else **carved from train** by a
      seeded stratified rule (:func:`stratified_split`); ``test1``/``test2``/``test3`` from their files (label
      columns may be absent or empty: blind test sets are imported unlabelled). Train with
      ``--set data.task=clip --set data.targets=[discrete,valence] --set data.test_partitions=[test1,test2,test3]``.
    - Labels go to ``labels/clips.csv`` (``recording, discrete, valence``): the clip task's targets.
    - Every feature set is stored **packed** (one array per set, :mod:`affectflow.corpus.packed`); ``storage="files"``
      writes the older one-Parquet-file-per-clip layout instead (kept for comparison: ``benchmarks/bench_store.py``).
    - Progress: one bar per phase (reading each set, writing each set), or one line per phase when stderr is not a
      terminal (:mod:`affectflow.progress`).
    - An utterance-level set becomes one frame at ``t = 0`` (``rate_hz: null``); a frame-level set ``T`` frames at
      ``t = i / rate`` (``frame_rates[set]``, required). The corpus label grid is ``label_rate_hz`` = the
      frame-level rate (1 Hz when all sets are utterance-level); each clip lasts ``max T / rate`` (one step for
      utterance-only clips). The clip task mean-pools every set over its valid steps, so an utterance vector is
      used as it is and frame-level features are mean-pooled as the MER baseline does.
    - Errors (nothing written, all listed): missing ``train-label.csv``, missing/renamed columns, a name twice,
      a name in two files, unsafe names, non-numeric valence or valence outside [-5, 5], an unreadable ``.npy``,
      arrays of another rank or width than the rest of their set, a frame-level set without a rate.
    - Warnings (counted, listed): clips without a file of some set (that set is missing for the clip),
      ``.npy`` files of clips in no label file (ignored), non-finite feature values (kept as missing), classes
      outside the six MER 2023 emotions (kept), empty labels (missing), clips with no features at all.
    The corpus is written into a temporary sibling folder and renamed into place (all or nothing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affectflow.corpus.corpus import TIME, Corpus, FeatureSetInfo
from affectflow.corpus.importreport import ChallengeImportReport
from affectflow.corpus.media import write_media_table
from affectflow.corpus.muse import guess_modality as muse_modality
from affectflow.corpus.staging import check_new_folder, staged_folder
from affectflow.errors import CorpusError, ImportFormatError
from affectflow.fsutil import check_name
from affectflow.progress import phase, progress_bar

MER_CLASSES = ["neutral", "angry", "happy", "sad", "worried", "surprise"]
LABEL_FILES = {"train": "train-label.csv", "devel": "devel-label.csv", "test1": "test1-label.csv",
               "test2": "test2-label.csv", "test3": "test3-label.csv"}
VALENCE_RANGE = (-5.0, 5.0)


def stratified_split(names: list[str], classes: list, fraction: float, seed: int) -> set[str]:
    """Names drawn for devel: per class, ``round(fraction · n_c)`` of its names (at least 1 when ``n_c ≥ 2``).

    Rule: names are sorted; for each class (sorted by its string; a missing class is its own stratum) the class's
    names are permuted with ``numpy.random.default_rng([seed, k])`` (``k`` = the stratum's index) and the first
    ``n_devel`` are taken. The result depends only on the names, their classes, ``fraction`` and ``seed`` (not on
    file order).
    """
    if not 0 < fraction < 1:
        raise ImportFormatError(f"The devel fraction must be in (0, 1), got {fraction!r}.")
    by: dict[str, list[str]] = {}
    for n, c in sorted(zip(names, ["" if c is None or (isinstance(c, float) and np.isnan(c)) else str(c) for c in classes])):
        by.setdefault(c, []).append(n)
    out: set[str] = set()
    for k, c in enumerate(sorted(by)):
        members = by[c]
        n_dev = int(round(fraction * len(members)))
        if len(members) >= 2:
            n_dev = min(max(n_dev, 1), len(members) - 1)
        else:
            n_dev = 0
        perm = np.random.default_rng([seed, k]).permutation(len(members))
        out.update(members[i] for i in perm[:n_dev])
    return out


def _read_labels(path: Path, report: ChallengeImportReport, *, require_labels: bool) -> pd.DataFrame | None:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is reported for this file
        report.errors.append(f"{path}: cannot be read as CSV ({type(e).__name__}: {e})")
        return None
    cols = {c.strip().lower(): c for c in df.columns}
    if "name" not in cols:
        report.errors.append(f"{path}: no 'name' column (expected 'name,discrete,valence'; found {list(df.columns)[:6]})")
        return None
    missing = [c for c in ("discrete", "valence") if c not in cols]
    if missing and require_labels:
        report.errors.append(f"{path}: no {missing} column(s) (expected 'name,discrete,valence')")
        return None
    out = pd.DataFrame({"name": df[cols["name"]].str.strip()})
    out["discrete"] = df[cols["discrete"]].str.strip() if "discrete" in cols else ""
    out["valence"] = df[cols["valence"]].str.strip() if "valence" in cols else ""
    if (out["name"] == "").any():
        report.errors.append(f"{path}: {int((out['name'] == '').sum())} row(s) with an empty name")
        return None
    dup = out.loc[out["name"].duplicated(), "name"].tolist()
    if dup:
        report.errors.append(f"{path}: names listed more than once: {dup[:10]}")
        return None
    val = pd.to_numeric(out["valence"].replace("", np.nan), errors="coerce")
    bad = out.loc[val.isna() & (out["valence"] != ""), "name"].tolist()
    if bad:  # an error; the names are still checked against the features so that every problem is listed
        report.errors.append(f"{path}: non-numeric valence for {len(bad)} clip(s), e.g. {bad[:5]}")
    lo, hi = VALENCE_RANGE
    out_r = out.loc[(val < lo) | (val > hi), "name"].tolist()
    if out_r:
        report.errors.append(f"{path}: valence outside [{lo:g}, {hi:g}] for {len(out_r)} clip(s), e.g. {out_r[:5]}")
    out["valence"] = val.astype(np.float64)
    out["discrete"] = out["discrete"].where(out["discrete"] != "", np.nan)
    n_val, n_cls = int(out["valence"].isna().sum()), int(out["discrete"].isna().sum())
    if n_val or n_cls:
        if require_labels:
            report.warnings.append(f"{path}: {n_cls} empty 'discrete' and {n_val} empty 'valence' (missing labels)")
        report.counts["empty discrete labels (missing)"] += n_cls
        report.counts["empty valence labels (missing)"] += n_val
    unknown = out["discrete"].dropna()
    unknown = unknown[~unknown.isin(MER_CLASSES)]
    if len(unknown):
        report.warnings.append(
            f"{path}: {len(unknown)} clip(s) with classes outside the MER 2023 six "
            f"({sorted(unknown.unique())[:6]}); kept as classes of their own"
        )
    return out


def import_mer(
    root: str | Path,
    out: str | Path,
    *,
    frame_rates: dict[str, float] | None = None,
    features: list[str] | None = None,
    devel_fraction: float = 0.2,
    seed: int = 0,
    name: str | None = None,
    progress: bool = True,
    storage: str = "packed",
) -> tuple[Corpus, ChallengeImportReport]:
    """Import a MER 2023 folder into a new corpus at ``out`` (see the module docstring).

    Parameters
    ----------
    root:
        Folder with ``train-label.csv``, ``test{1,2,3}-label.csv`` and ``features/``.
    out:
        New corpus folder (must not exist or be empty).
    frame_rates:
        Feature set → frame rate in Hz, for frame-level ``(T, C)`` sets (required for them).
    features:
        Feature sets to import (default: every folder under ``features/``).
    devel_fraction, seed:
        The stratified devel split carved from train when there is no ``devel-label.csv``.
    name:
        Corpus name (default: the folder's name).
    progress:
        Show progress (see :mod:`affectflow.progress`).
    storage:
        ``"packed"`` (default: one array per feature set) or ``"files"`` (one Parquet file per clip and set, the
        layout before packed sets).

    Returns
    -------
    (Corpus, ChallengeImportReport)
    """
    root = Path(root)
    if storage not in ("packed", "files"):
        raise ImportFormatError(f"storage must be 'packed' or 'files', got {storage!r}.")
    frame_rates = dict(frame_rates or {})
    if not root.is_dir():
        raise ImportFormatError(f"MER folder {str(root)!r} does not exist.")
    if not (root / LABEL_FILES["train"]).is_file():
        raise ImportFormatError(
            f"{str(root / LABEL_FILES['train'])!r} is missing. Expected the MER 2023 layout: train-label.csv and "
            "test{1,2,3}-label.csv with columns name,discrete,valence, and features/<set>/<name>.npy."
        )
    for s, r in frame_rates.items():
        if not isinstance(r, (int, float)) or not np.isfinite(r) or r <= 0:
            raise ImportFormatError(f"The frame rate of feature set {s!r} must be a positive number of Hz, got {r!r}.")
    check_new_folder(out)
    report = ChallengeImportReport(str(root), "mer2023")

    # ---- labels and partitions
    tables: dict[str, pd.DataFrame] = {}
    for part, fname in LABEL_FILES.items():
        f = root / fname
        if f.is_file():
            t = _read_labels(f, report, require_labels=part in ("train", "devel"))
            if t is not None:
                tables[part] = t
    part_of: dict[str, str] = {}
    for part, t in tables.items():
        for n in t["name"]:
            if n in part_of:
                report.errors.append(f"clip {n!r} is in {LABEL_FILES[part_of[n]]} and in {LABEL_FILES[part]}")
                continue
            part_of[n] = part
    for n in part_of:
        try:
            check_name("clip name", n)
        except CorpusError as e:
            report.errors.append(str(e))
    if "train" not in tables:
        report.raise_if_errors("MER 2023")
    labels = pd.concat([t.assign(partition=p) for p, t in tables.items()], ignore_index=True)
    split = None
    if "devel" not in tables:
        tr = tables["train"]
        dev = stratified_split(tr["name"].tolist(), tr["discrete"].tolist(), devel_fraction, seed)
        labels.loc[labels["name"].isin(dev), "partition"] = "devel"
        split = {"rule": "stratified by discrete (numpy default_rng([seed, stratum]))", "fraction": devel_fraction,
                 "seed": seed, "devel": len(dev)}
        report.warnings.append(
            f"no devel-label.csv: {len(dev)} of {len(tr)} train clips moved to devel (stratified by 'discrete', "
            f"fraction {devel_fraction:g}, seed {seed})"
        )
    names = labels["name"].tolist()
    known = set(names)

    # ---- features
    froot = root / "features"
    avail = sorted(p.name for p in froot.iterdir() if p.is_dir()) if froot.is_dir() else []
    features = avail if features is None else list(features)
    bad = [f for f in features if f not in avail]
    if bad:
        raise ImportFormatError(f"Feature sets {bad} are not folders of {froot}; found {avail or 'none'}.")
    if not features:
        raise ImportFormatError(f"No feature sets found under {froot} (expected features/<set>/<name>.npy).")
    unknown_rates = sorted(set(frame_rates) - set(features))
    if unknown_rates:
        report.errors.append(f"frame rates given for {unknown_rates}, which are not imported feature sets {features}")
    arrays: dict[str, dict[str, np.ndarray]] = {}
    shapes: dict[str, tuple[int, int]] = {}  # set -> (ndim, C)
    for fs in features:
        arrays[fs] = {}
        files = progress_bar(sorted((froot / fs).iterdir()), desc=f"reading {fs}", unit="files", disable=not progress)
        for f in report.files(files, ".npy", expected="<name>.npy"):
            if f.stem not in known:
                report.warnings.append(f"{f}: ignored (clip {f.stem!r} is in no label file)")
                report.counts["feature files of unlisted clips (ignored)"] += 1
                continue
            try:
                a = np.load(f, allow_pickle=False)
            except Exception as e:  # noqa: BLE001 - any failure is this file's problem
                report.errors.append(f"{f}: cannot be read as .npy ({type(e).__name__}: {e})")
                continue
            if np.iscomplexobj(a):
                report.errors.append(f"{f}: complex values (dtype {a.dtype}); features must be real numbers (the "
                                     "imaginary parts would be lost)")
                continue
            if not np.issubdtype(a.dtype, np.number) or a.ndim not in (1, 2) or a.shape[-1] == 0 or (a.ndim == 2 and a.shape[0] == 0):
                report.errors.append(f"{f}: expected a numeric (C,) or (T, C) array, got dtype {a.dtype} shape {a.shape}")
                continue
            key = (a.ndim, int(a.shape[-1]))
            if fs in shapes and shapes[fs] != key:
                want = "(C,)" if shapes[fs][0] == 1 else "(T, C)"
                report.errors.append(f"{f}: shape {a.shape} differs from the rest of {fs!r} ({want} with C = {shapes[fs][1]})")
                continue
            shapes.setdefault(fs, key)
            a = a.astype(np.float32)
            nonfin = int((~np.isfinite(a)).sum())
            if nonfin:
                report.warnings.append(f"{f}: {nonfin} non-finite values (kept as missing)")
                report.counts["non-finite feature values (missing)"] += nonfin
                a[~np.isfinite(a)] = np.nan
            arrays[fs][f.stem] = a
        if fs in shapes and shapes[fs][0] == 2 and fs not in frame_rates:
            report.errors.append(
                f"feature set {fs!r} is frame-level (T, C) but has no frame rate: give it (e.g. --frame-rate {fs}=25)"
            )
        if fs not in shapes:
            report.errors.append(f"feature set {fs!r}: no readable .npy file for any labelled clip")
        missing = [n for n in names if n not in arrays[fs]]
        if missing:
            report.warnings.append(f"features/{fs}: {len(missing)} clip(s) have no file (e.g. {missing[:5]}); missing there")
            report.counts[f"clips without {fs}"] += len(missing)
    report.raise_if_errors("MER 2023")

    frame_sets = [fs for fs in features if shapes[fs][0] == 2]
    rate = float(max(frame_rates[fs] for fs in frame_sets)) if frame_sets else 1.0
    rows = []
    for n, part in zip(labels["name"], labels["partition"]):
        d = max([len(arrays[fs][n]) / frame_rates[fs] for fs in frame_sets if n in arrays[fs]], default=0.0)
        d = max(d, 1.0 / rate)
        if not any(n in arrays[fs] for fs in features):
            report.warnings.append(f"clip {n!r} has no features at all (all of its steps are missing)")
            report.counts["clips without any features"] += 1
        rows.append({"id": n, "subject": n, "partition": part, "duration": round(d, 6)})
    videos = root / "videos"
    media = []
    if videos.is_dir():
        by_stem = {f.stem: f for f in videos.iterdir() if f.is_file() and f.suffix.lower() in (".mp4", ".avi", ".mkv", ".mov", ".webm")}
        media = [{"id": n, "video": by_stem[n].resolve()} for n in names if n in by_stem]
        report.counts["videos"] = len(media)
        if len(media) < len(names):
            report.warnings.append(f"videos/: {len(names) - len(media)} clip(s) have no video")

    with staged_folder(out) as tmp:
        corpus = Corpus.create(tmp, name=name or root.resolve().name, label_rate_hz=rate,
                               description=f"Imported from the MER 2023 layout at {root}", source=str(root.resolve()),
                               layout="mer2023", devel_split=split)
        for fs in features:
            ndim, c = shapes[fs]
            fr = frame_rates.get(fs) if ndim == 2 else None
            cols = [f"{fs}_{k:04d}" for k in range(c)]
            corpus.write_feature_set_info(FeatureSetInfo(fs, _modality(fs), cols, fr, params={
                "source": "mer2023", "level": "frame" if ndim == 2 else "utterance"}))

            def frames(fs=fs, ndim=ndim, fr=fr):
                for n, a in arrays[fs].items():
                    a2 = a[None, :] if ndim == 1 else a
                    yield n, (np.arange(len(a2)) / fr if fr else np.zeros(1)), a2

            with progress_bar(desc=f"writing {fs}", total=len(arrays[fs]), unit="clips", disable=not progress) as bar:
                if storage == "packed":
                    corpus.write_packed_features(fs, ((n, (t, a2)) for n, t, a2 in frames()),
                                                 progress=lambda _rid: bar.update(1))
                else:
                    for n, t, a2 in frames():
                        frame = pd.DataFrame(a2, columns=cols)
                        frame.insert(0, TIME, t)
                        corpus.write_features(fs, n, frame)
                        bar.update(1)
            report.counts[f"clips with {fs}"] = len(arrays[fs])
        with phase("writing labels and recordings", disable=not progress):
            clips = pd.DataFrame({"recording": labels["name"], "discrete": labels["discrete"],
                                  "valence": labels["valence"]})
            corpus.write_clips(clips)
            corpus.set_recordings(pd.DataFrame(rows))
            if media:
                write_media_table(corpus, pd.DataFrame(media))
        for r in rows:
            report.recordings[r["partition"]] = report.recordings.get(r["partition"], 0) + 1
        corpus.write_report("import", report.to_dict())
    return Corpus(out), report


def _modality(name: str) -> str:
    low = name.lower()
    if any(k in low for k in ("hubert", "wavlm", "whisper", "emotion2vec", "opensmile", "mfcc")):
        return "audio"
    if any(k in low for k in ("manet", "clip", "videomae", "openface", "resnet", "senet")):
        return "video"
    if any(k in low for k in ("roberta", "macbert", "glm", "lerl")):
        return "text"
    return muse_modality(name)
