"""Challenge submission files from a trained run: MuSe 2023, MuSe 2021 Sent, ABAW (Aff-Wild2 VA) and MER 2023.

:func:`submit` predicts the chosen partitions (default: the run's test partitions) with the run's selected
checkpoint (:func:`affectflow.experiment.run_predictions`) and writes them, all or nothing, in a challenge's format
(:func:`write_submission` writes any :class:`~affectflow.predictions.Predictions`, e.g. fused ones):

``muse2023`` (continuous task)
    ``<out>/label_segments/<target>/<Id>.csv`` with columns ``timestamp,value`` (timestamp in **ms**, integer:
    ``round(1000 · t)``; one row per label step of the recording's grid) and ``<out>/metadata/partition.csv``
    (``Id,Partition``): the MuSe label layout, which :func:`affectflow.corpus.muse.import_muse` reads back.
``muse2021-sent`` (segment task, classification targets)
    ``<out>/label_segments/<target>/<Id>.csv`` with columns ``segment_id,class_id`` (one row per segment of the
    recording, ``class_id`` = the predicted class value, argmax of the logits; MuSe-Sent: 0..4 per dimension) and
    ``<out>/metadata/partition.csv`` (``Id,Partition``): the MuSe-Sent label layout (formats.md), which
    :func:`affectflow.corpus.muse.import_muse` reads back.
``abaw`` (continuous task with targets ``valence`` and ``arousal``)
    ``<out>/<name>.txt`` per recording: header ``image_location,valence,arousal``, then one line per **video
    frame** ``i = 0 .. N-1`` with ``image_location = <name>/<i+1:05d>.jpg``. ``N`` is the recording's ``frames``
    column (Aff-Wild2 imports have it; else the number of predicted steps). Frame ``i`` (at ``t = i / fps``, fps
    from the ``fps`` / ``label_rate_hz`` column) takes the prediction of the nearest predicted step; frames after
    the last predicted step repeat the last value (padding) and predictions after frame ``N - 1`` are dropped
    (cut). Values are clipped to [-1, 1]. :func:`read_abaw_submission` reads a file back.
``mer2023`` (clip task with a class target and a value target)
    ``<out>/<partition>.csv`` with columns ``name,discrete,valence`` (the class and value targets, whatever their
    names in the run), one row per clip, valence clipped to [-5, 5]; :func:`affectflow.corpus.mer.import_mer`
    reads it back as a label file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from affectflow.corpus.affwild2 import parse_annotation
from affectflow.corpus.corpus import Corpus
from affectflow.corpus.importreport import ChallengeImportReport
from affectflow.corpus.staging import staged_folder
from affectflow.errors import RunError
from affectflow.fsutil import child_path
from affectflow.experiment import run_predictions
from affectflow.metrics import ccc
from affectflow.predictions import prediction_frame
from affectflow.runs import Run

FORMATS = ("muse2023", "muse2021-sent", "abaw", "mer2023")
ABAW_HEADER = "image_location,valence,arousal"


def abaw_frames(times: np.ndarray, values: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """Predictions per video frame: ``(n_frames, K)`` from predictions ``values`` ``(T, K)`` at ``times`` ``(T,)``.

    Frame ``i`` at ``i / fps`` takes the nearest predicted step (the earlier one on a tie); frames after the last
    step repeat the last value; steps after the last frame are dropped.
    """
    times = np.asarray(times, float)
    values = np.asarray(values, float)
    if len(times) == 0:
        raise RunError("No predicted steps to write.")
    ft = np.arange(n_frames) / fps
    pos = np.clip(np.searchsorted(times, ft), 0, len(times) - 1)
    prev = np.clip(pos - 1, 0, len(times) - 1)
    use_prev = np.abs(ft - times[prev]) <= np.abs(times[pos] - ft)
    idx = np.where(use_prev, prev, pos)
    idx[ft > times[-1]] = len(times) - 1
    return values[idx]


def write_abaw_file(path: Path, name: str, frames: np.ndarray) -> None:
    """One ABAW VA prediction file: header, then ``<name>/<00001>.jpg,valence,arousal`` per frame."""
    v = np.clip(frames, -1.0, 1.0)
    lines = [ABAW_HEADER] + [f"{name}/{i + 1:05d}.jpg,{a:.6f},{b:.6f}" for i, (a, b) in enumerate(v.tolist())]
    path.write_text("\n".join(lines) + "\n")


def read_abaw_submission(path: str | os.PathLike) -> pd.DataFrame:
    """Read an ABAW VA prediction file: columns ``image_location, frame`` (1-based), ``valence, arousal``."""
    df = pd.read_csv(path)
    if list(df.columns) != ABAW_HEADER.split(","):
        raise RunError(f"{path}: header {list(df.columns)} is not {ABAW_HEADER!r}.")
    df["frame"] = df["image_location"].str.extract(r"/(\d+)\.jpg$", expand=False).astype(int)
    return df[["image_location", "frame", "valence", "arousal"]]


def score_abaw(submission: str | os.PathLike, labels: str | os.PathLike) -> dict[str, float]:
    """Score an ABAW VA submission folder against a folder of ``<name>.txt`` annotation files, as ABAW does.

    Every name with a label file must have a submission file. Frames are matched by number; frames whose label is
    ``-5`` (or that lie past either file's end) are left out; CCC (population moments) per dimension over all
    valid frames of all videos pooled; ``abaw_score = (CCC_valence + CCC_arousal) / 2``.
    """
    ys, ps = [], []
    files = sorted(Path(labels).glob("*.txt"))
    if not files:
        raise RunError(f"No <name>.txt label files in {str(labels)!r}.")
    rep = ChallengeImportReport(str(labels), "affwild2")
    for f in files:
        lab = parse_annotation(f, rep)
        sub = Path(submission) / f.name
        if not sub.is_file():
            raise RunError(f"The submission has no file {sub.name} for labelled video {f.stem!r}.")
        pred = read_abaw_submission(sub)[["valence", "arousal"]].to_numpy(float)
        if lab is None:
            continue
        n = min(len(lab), len(pred))
        ok = np.isfinite(lab[:n]).all(1)
        ys.append(lab[:n][ok])
        ps.append(pred[:n][ok])
    rep.raise_if_errors("ABAW label")
    y, p = np.concatenate(ys), np.concatenate(ps)
    out = {"valence": ccc(y[:, 0], p[:, 0]), "arousal": ccc(y[:, 1], p[:, 1]), "frames": int(len(y))}
    out["abaw_score"] = (out["valence"] + out["arousal"]) / 2
    return out


def submit(
    run_path: str | os.PathLike,
    fmt: str,
    *,
    out: str | os.PathLike | None = None,
    partitions: list[str] | None = None,
    corpus: str | os.PathLike | None = None,
    seed: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> Path:
    """Write the submission files of ``run_path`` in format ``fmt`` (see the module docstring); return the folder.

    Parameters
    ----------
    run_path:
        A run directory.
    fmt:
        ``muse2023``, ``muse2021-sent``, ``abaw`` or ``mer2023``.
    out:
        New output folder (must not exist or be empty); default ``<run>/submission-<fmt>-<timestamp>``.
    partitions:
        Partitions to predict (default: the run's ``data.test_partitions``).
    corpus:
        Corpus to predict (default: the run's).
    seed:
        Checkpoint to use (default: the selected seed).
    """
    if fmt not in FORMATS:
        raise RunError(f"Unknown submission format {fmt!r}; choose one of {list(FORMATS)}.")
    run = Run(run_path)
    cfg = run.config_dict
    task = cfg["data"].get("task", "continuous")
    _check_task(fmt, task, list(cfg["data"]["targets"]), str(run.path))
    c = Corpus(corpus or cfg["data"]["corpus"])
    parts = partitions or list(cfg["data"].get("test_partitions") or ["test"])
    c.recording_ids(parts)  # unknown partitions: a clear error before any prediction
    if out is None:
        out = run.path / f"submission-{fmt}-{time.strftime('%Y%m%d-%H%M%S')}"
        k = 1
        while Path(out).exists():
            out = run.path / f"submission-{fmt}-{time.strftime('%Y%m%d-%H%M%S')}-{k}"
            k += 1
    preds = {p: run_predictions(run, partitions=[p], corpus=c, seed=seed, device=device, progress=progress)
             for p in parts}
    return write_submission(preds, fmt, out, corpus=c)


def _check_task(fmt: str, task: str, targets: list[str], what: str) -> None:
    need = {"muse2023": "continuous", "muse2021-sent": "segment", "abaw": "continuous", "mer2023": "clip"}[fmt]
    if task != need:
        raise RunError(f"Format {fmt!r} is for {need!r} runs; {what} has task {task!r}.")
    if fmt == "abaw" and sorted(targets) != ["arousal", "valence"]:
        raise RunError(f"The ABAW VA format needs the targets valence and arousal; {what} predicts {targets}.")


def write_submission(preds: dict, fmt: str, out: str | os.PathLike, *, corpus: Corpus | None = None) -> Path:
    """Write predictions in a challenge format (module docstring), all or nothing; return ``out``.

    Parameters
    ----------
    preds:
        Partition name → :class:`affectflow.predictions.Predictions` (from a run, a fusion, a personalisation...).
    fmt:
        ``muse2023``, ``muse2021-sent``, ``abaw`` or ``mer2023``.
    out:
        New folder (must not exist or be empty).
    corpus:
        ``abaw``: the corpus whose ``recordings.csv`` gives each video's ``frames`` and ``fps`` (without it, the
        predicted steps are the frames).
    """
    if fmt not in FORMATS:
        raise RunError(f"Unknown submission format {fmt!r}; choose one of {list(FORMATS)}.")
    for p, pr in preds.items():
        _check_task(fmt, pr.task, pr.targets, f"the predictions of {p!r}")
    rec = corpus.recordings.set_index("id") if corpus is not None else None
    with staged_folder(out, what="submission") as tmp:
        rows = []
        for p, pr in preds.items():
            if fmt == "mer2023":
                _write_mer(tmp / f"{p}.csv", pr)
                continue
            if fmt == "muse2021-sent":
                rows += [{"Id": rid, "Partition": p} for rid in _write_sent(tmp, pr)]
                continue
            for i, rid in enumerate(pr.recordings):
                df = prediction_frame(pr.times[i], pr.values[i], pr.targets)  # time, one column per target
                if fmt == "muse2023":
                    _write_muse(tmp, rid, df, pr.targets)
                    rows.append({"Id": rid, "Partition": p})
                else:
                    row = rec.loc[rid] if rec is not None and rid in rec.index else pd.Series(dtype=object)
                    _write_abaw(tmp, rid, df, row, corpus)
        if fmt in ("muse2023", "muse2021-sent"):
            (tmp / "metadata").mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows, columns=["Id", "Partition"]).to_csv(tmp / "metadata" / "partition.csv", index=False)
    return Path(out)


def _write_muse(tmp: Path, rid: str, df: pd.DataFrame, targets: list[str]) -> None:
    ts = np.round(df["time"].to_numpy() * 1000).astype(np.int64)
    for t in targets:
        d = child_path(tmp / "label_segments", t, kind="target name")
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": ts, "value": df[t].to_numpy()}).to_csv(
            child_path(d, rid, ".csv", kind="recording id"), index=False, float_format="%.6f")


def _write_sent(tmp: Path, pr) -> list[str]:
    """MuSe-Sent ``label_segments/<target>/<Id>.csv`` (``segment_id,class_id``); returns the recordings written."""
    cls = [s for s in pr.specs if s.kind == "classification"]
    if not cls or len(cls) != len(pr.specs):
        raise RunError(f"The MuSe 2021 Sent format needs classification targets only; the predictions have "
                       f"{[(s.name, s.kind) for s in pr.specs]}.")
    if any(isinstance(k, str) for k in pr.keys):
        raise RunError("The MuSe 2021 Sent format needs segment predictions (recording, segment_id).")
    pred = pr.predicted()
    df = pd.DataFrame({"recording": [str(k[0]) for k in pr.keys], "segment_id": [int(k[1]) for k in pr.keys]})
    for s in cls:
        df[s.name] = [s.classes[int(i)] for i in pred[s.name]]
    recs = list(dict.fromkeys(df["recording"]))
    for s in cls:
        d = child_path(tmp / "label_segments", s.name, kind="target name")
        d.mkdir(parents=True, exist_ok=True)
        for rid, g in df.groupby("recording", sort=False):
            g.sort_values("segment_id")[["segment_id", s.name]].rename(columns={s.name: "class_id"}).to_csv(
                child_path(d, rid, ".csv", kind="recording id"), index=False)
    return recs


def _write_abaw(tmp: Path, rid: str, df: pd.DataFrame, row: pd.Series, corpus: Corpus | None) -> None:
    fps = None
    for col in ("fps", "label_rate_hz"):
        if col in row.index and pd.notna(row[col]) and float(row[col]) > 0:
            fps = float(row[col])
            break
    times = df["time"].to_numpy()
    if fps is None:
        fps = (corpus.label_rate_hz if corpus is not None else None) or (
            1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 1.0)
    n = int(row["frames"]) if "frames" in row.index and pd.notna(row["frames"]) else len(times)
    frames = abaw_frames(times, df[["valence", "arousal"]].to_numpy(), n, fps)
    write_abaw_file(child_path(tmp, rid, ".txt", kind="recording id"), rid, frames)


def _write_mer(path: Path, pr) -> None:
    cls = [s for s in pr.specs if s.kind == "classification"]
    reg = [s for s in pr.specs if s.kind == "regression"]
    if len(cls) != 1 or len(reg) != 1:
        raise RunError(f"The MER 2023 format needs one class and one value target; the predictions have "
                       f"{[s.name for s in cls]} and {[s.name for s in reg]}.")
    pred = pr.predicted()
    out = pd.DataFrame({"name": pr.sample_recordings(),
                        "discrete": [cls[0].classes[int(i)] for i in pred[cls[0].name]],
                        "valence": np.clip(np.asarray(pred[reg[0].name], float), -5.0, 5.0)})
    out.to_csv(path, index=False, float_format="%.6f")
