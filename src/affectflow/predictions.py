"""A run's predictions on a set of recordings, as one value.

:class:`Predictions` is what :func:`affectflow.experiment.train`, ``evaluate`` and ``predict`` produce for every
partition and what the procedures (personalisation, fusion, cross-validation) pass around, score and combine:

``continuous``
    per recording: its time grid ``times[r]`` (``(T_r,)`` seconds), the model outputs ``values[r]``
    (``(T_r, K)``, one column per target) and, when labelled, ``labels[r]`` (``(T_r, K)``, NaN = not annotated;
    ``None`` for an unlabelled recording).
``segment`` / ``clip``
    per sample (a segment ``(recording, segment_id)`` or a clip ``recording``): ``outputs`` ``(N, Σ outputs)``, the
    raw model outputs (one logit per class of a classification target, one value per regression target; see
    :meth:`Predictions.posteriors`), and ``labels`` ``(N, K)`` (class index or value; NaN = none).

>>> from affectflow.predictions import Predictions, score
>>> preds = Predictions.load("runs/gru-egemaps/predictions/devel")       # doctest: +SKIP
>>> score(preds)["arousal"]["ccc"]                                       # doctest: +SKIP

The prediction file format, one for every command (evaluate, predict, predict --media, stream --out, the
service's CSV download, and the folders that submit, fuse and late fusion read); written by
:func:`prediction_frame` / :func:`readout_frame` + :func:`write_prediction_csv` only:

- continuous: ``<recording id>.csv`` with ``time`` (s), then one column per target named as the target (the
  prediction), then ``<target>_label`` per target **only where the recording has labels**. A prediction column is
  what a user wants; the ``_label`` suffix marks the extra columns, so an unlabelled file is the labelled one's
  first columns, and the label columns keep the name they always had;
- segment / clip: ``segments.csv`` / ``clips.csv`` with ``recording`` (+ ``segment_id``), one column per target
  (class values for classification targets) and ``<target>_label`` columns only when some sample has a label;
- :meth:`Predictions.save` adds ``predictions.json`` (task, target specs, recording ids, format version) and
  ``predictions.npz`` (the exact values and raw outputs).

:meth:`Predictions.load` also reads folders written before ``predictions.json`` existed, from the CSV files alone,
in this format or in the format of earlier versions (``<target>_pred`` prediction columns; segment/clip outputs are
then one-hot encodings of the predicted classes, as the raw outputs were not saved).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from affectflow.errors import RunError
from affectflow.fsutil import atomic_write, check_names, child_path, make_dirs, write_json
from affectflow.layout import (  # noqa: F401 - re-exported: the prediction file's column names
    KEY_COLUMNS,
    LABEL_SUFFIX,
    OLD_PRED_SUFFIX,
    split_prediction_columns,
)
from affectflow.plots import plot_prediction
from affectflow.scoring import score, selection_score  # noqa: F401 - re-exported: defined once in scoring
from affectflow.targets import TargetSpec, specs_from_state, specs_to_state, split_columns

FORMAT_VERSION = 1
META = "predictions.json"
ARRAYS = "predictions.npz"
def prediction_frame(times: np.ndarray, values: np.ndarray, targets: Sequence[str],
                     labels: np.ndarray | None = None) -> pd.DataFrame:
    """One recording's continuous predictions as the prediction CSV's frame: ``time`` (float64 s), one column per
    target (``values``, ``(T, K)``), and ``<target>_label`` columns when ``labels`` (``(T, K)``, NaN = not
    annotated) is given."""
    values = np.asarray(values)
    df = pd.DataFrame({"time": np.asarray(times, np.float64)})
    for k, t in enumerate(targets):
        df[t] = values[:, k]
    if labels is not None:
        labels = np.asarray(labels)
        for k, t in enumerate(targets):
            df[f"{t}{LABEL_SUFFIX}"] = labels[:, k]
    return df


def prediction_csv_text(frame: pd.DataFrame) -> str:
    """A prediction frame (:func:`prediction_frame` or :meth:`Predictions.readout_frame`) as CSV text: 6
    significant digits, empty cells for missing values (what :func:`write_prediction_csv` writes)."""
    return frame.to_csv(index=False, float_format="%.6g")


def write_prediction_csv(path: str | Path, frame: pd.DataFrame, *, plot_title: str | None = None) -> Path:
    """Write a prediction frame atomically as CSV (:func:`prediction_csv_text`): the one writer of prediction
    files. With ``plot_title`` (continuous frames), also a PNG of it beside the CSV (same name, ``.png``;
    :func:`affectflow.plots.plot_prediction`). Returns the CSV's path."""
    path = Path(path)
    text = prediction_csv_text(frame)
    atomic_write(path, lambda f: f.write_text(text, encoding="utf-8"))
    if plot_title is not None:
        plot_prediction(frame, path.with_suffix(".png"), title=plot_title)
    return path


@dataclass
class Predictions:
    """A run's predictions on a set of recordings (see the module docstring for the fields per task).

    Parameters
    ----------
    task:
        ``"continuous"``, ``"segment"`` or ``"clip"``.
    specs:
        The targets (:class:`affectflow.tasks.TargetSpec`), in output order.
    recordings:
        Recording ids, in order. Continuous: one entry per element of ``times`` / ``values`` / ``labels``.
    times, values, labels:
        Continuous: per-recording lists (see above). Segment / clip: ``labels`` is one ``(N, K)`` array.
    keys, outputs:
        Segment / clip: sample keys (``recording`` or ``(recording, segment_id)``) and ``(N, Σ outputs)`` outputs.
    """

    task: str
    specs: list
    recordings: list[str]
    times: list[np.ndarray] | None = None
    values: list[np.ndarray] | None = None
    labels: Any = None
    keys: list | None = None
    outputs: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ basics
    @property
    def targets(self) -> list[str]:
        """Target names, in order."""
        return [s.name for s in self.specs]

    @property
    def continuous(self) -> bool:
        """Whether this is a continuous (per-step) prediction."""
        return self.task == "continuous"

    def __len__(self) -> int:
        return len(self.recordings) if self.continuous else len(self.keys or [])

    def sample_recordings(self) -> list[str]:
        """Segment / clip: the recording of each sample, in order."""
        return [k if isinstance(k, str) else k[0] for k in self.keys]

    def label_matrix(self) -> np.ndarray:
        """Segment / clip labels as ``(N, K)`` (an empty ``(0, K)`` array when there are no samples)."""
        if self.labels is None or len(self.labels) == 0:
            return np.zeros((0, len(self.specs)), np.float32)
        return np.asarray(self.labels, np.float32)

    def predicted(self) -> dict[str, np.ndarray]:
        """Segment / clip: per target, the predicted class index (argmax of its logits) or value, ``(N,)``."""
        return split_columns(self.outputs, self.specs)

    def posteriors(self) -> np.ndarray:
        """Segment / clip: outputs with each classification target's logits turned into softmax probabilities."""
        out, c = np.array(self.outputs, np.float64, copy=True), 0
        for s in self.specs:
            if s.kind == "classification":
                z = out[:, c : c + s.n_outputs]
                z = np.exp(z - z.max(1, keepdims=True))
                out[:, c : c + s.n_outputs] = z / z.sum(1, keepdims=True)
            c += s.n_outputs
        return out.astype(np.float32)

    def flat_outputs(self) -> np.ndarray:
        """All outputs as one matrix: continuous ``(Σ_r T_r, K)`` (recordings concatenated in order); segment / clip
        ``(N, Σ outputs)`` (the raw outputs)."""
        if self.continuous:
            k = len(self.specs)
            return np.concatenate(self.values) if self.values else np.zeros((0, k), np.float32)
        return np.asarray(self.outputs)

    def with_flat_outputs(self, flat: np.ndarray) -> "Predictions":
        """A copy with outputs replaced by ``flat`` (the layout of :meth:`flat_outputs`; e.g. a fusion of several
        runs' outputs); recordings, keys, times and labels are shared."""
        flat = np.asarray(flat, np.float32)
        if flat.shape != self.flat_outputs().shape:
            raise ValueError(f"Outputs of shape {flat.shape} do not fit predictions of shape {self.flat_outputs().shape}.")
        if not self.continuous:
            return Predictions(self.task, self.specs, list(self.recordings), keys=list(self.keys), outputs=flat,
                               labels=self.labels, meta=dict(self.meta))
        cuts = np.cumsum([len(v) for v in self.values])[:-1]
        return Predictions(self.task, self.specs, list(self.recordings), times=list(self.times),
                           values=list(np.split(flat, cuts)), labels=list(self.labels), meta=dict(self.meta))

    def check_same_layout(self, other: "Predictions", *, names: tuple[str, str] = ("these", "those")) -> None:
        """Raise :class:`~affectflow.errors.RunError` unless ``other`` predicts the same task, targets (and classes),
        recordings, samples and label grids (time steps per recording, within 1e-6 s) as this value."""
        a, b = names
        if self.task != other.task:
            raise RunError(f"The predictions disagree on the task: {a} are {self.task!r}, {b} are {other.task!r}.")
        if [(s.name, s.kind, s.classes) for s in self.specs] != [(s.name, s.kind, s.classes) for s in other.specs]:
            raise RunError(f"The predictions disagree on the targets: {a} predict "
                           f"{[(s.name, s.kind, s.classes) for s in self.specs]}, {b} predict "
                           f"{[(s.name, s.kind, s.classes) for s in other.specs]}; targets, kinds and classes must "
                           "be the same.")
        if list(self.recordings) != list(other.recordings):
            only_a = sorted(set(self.recordings) - set(other.recordings))
            only_b = sorted(set(other.recordings) - set(self.recordings))
            raise RunError(f"The predictions disagree on the recordings: only in {a}: {only_a[:10]}, only in {b}: "
                           f"{only_b[:10]}" + ("" if only_a or only_b else " (same ids in another order)") + ".")
        if self.continuous:
            for rid, t1, t2 in zip(self.recordings, self.times, other.times):
                if len(t1) != len(t2) or not np.allclose(t1, t2, rtol=0, atol=1e-6):
                    raise RunError(f"The predictions disagree on the label grid of recording {rid!r}: {a} have "
                                   f"{len(t1)} steps, {b} have {len(t2)} (or their times differ); runs trained on "
                                   "different label sets or rates cannot be combined.")
        elif list(self.keys) != list(other.keys):
            raise RunError(f"The predictions disagree on the {self.task} samples ({len(self.keys)} in {a}, "
                           f"{len(other.keys)} in {b}, or in another order).")

    def subset(self, recordings: Sequence[str]) -> "Predictions":
        """The predictions of ``recordings`` only (continuous: in the given order; segment/clip: samples kept in
        order). Unknown ids raise :class:`~affectflow.errors.RunError`."""
        have = set(self.recordings)
        missing = [r for r in recordings if r not in have]
        if missing:
            raise RunError(f"Recordings {missing} are not in these predictions; they cover {self.recordings}.")
        if self.continuous:
            idx = [self.recordings.index(r) for r in recordings]
            return Predictions(self.task, self.specs, [self.recordings[i] for i in idx],
                               times=[self.times[i] for i in idx], values=[self.values[i] for i in idx],
                               labels=[self.labels[i] for i in idx], meta=dict(self.meta))
        want = set(recordings)
        keep = [i for i, r in enumerate(self.sample_recordings()) if r in want]
        return Predictions(self.task, self.specs, [r for r in self.recordings if r in want],
                           keys=[self.keys[i] for i in keep], outputs=self.outputs[keep],
                           labels=self.label_matrix()[keep], meta=dict(self.meta))

    @staticmethod
    def concat(parts: Sequence["Predictions"]) -> "Predictions":
        """One value from several of the same task and targets (recordings in the given order; ids must not repeat)."""
        if not parts:
            raise ValueError("Nothing to concatenate.")
        first = parts[0]
        for p in parts[1:]:
            if p.task != first.task or [s.__dict__ for s in p.specs] != [s.__dict__ for s in first.specs]:
                raise RunError(f"Cannot combine predictions of task {p.task!r} with targets {p.targets} and of task "
                               f"{first.task!r} with targets {first.targets}: task and targets must agree.")
        recs = [r for p in parts for r in p.recordings]
        if len(set(recs)) != len(recs):
            raise RunError("Cannot combine predictions that cover the same recording twice.")
        if first.continuous:
            return Predictions(first.task, first.specs, recs, times=[t for p in parts for t in p.times],
                               values=[v for p in parts for v in p.values],
                               labels=[y for p in parts for y in p.labels])
        return Predictions(first.task, first.specs, recs, keys=[k for p in parts for k in p.keys],
                           outputs=np.concatenate([p.outputs for p in parts]),
                           labels=np.concatenate([p.label_matrix() for p in parts]))

    # ------------------------------------------------------------------ files
    def save(self, folder: str | Path) -> Path:
        """Write the prediction files (see the module docstring) into ``folder`` (created if needed)."""
        folder = make_dirs(folder)  # refused when a symlink would take it out of its run folder
        arrays: dict[str, np.ndarray] = {}
        if self.continuous:
            for i, rid in enumerate(self.recordings):
                write_prediction_csv(child_path(folder, rid, ".csv", kind="recording id"), self.frame(i))
                arrays[f"times/{i}"] = np.asarray(self.times[i])
                arrays[f"values/{i}"] = np.asarray(self.values[i])
                if self.labels[i] is not None:
                    arrays[f"labels/{i}"] = np.asarray(self.labels[i])
        else:
            write_prediction_csv(folder / f"{self.task}s.csv", self.readout_frame())
            arrays["outputs"] = np.asarray(self.outputs, np.float32)
            arrays["labels"] = self.label_matrix()
        meta = {"format_version": FORMAT_VERSION, "task": self.task, "target_specs": specs_to_state(self.specs),
                "recordings": list(self.recordings), "meta": self.meta}
        if not self.continuous:
            meta["keys"] = [k if isinstance(k, str) else [k[0], int(k[1])] for k in self.keys]

        def write_npz(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(folder / ARRAYS, write_npz)
        write_json(folder / META, meta)
        return folder

    def frame(self, i: int | str = 0) -> pd.DataFrame:
        """Continuous: recording ``i`` (index or id) as the prediction CSV's frame (:func:`prediction_frame`):
        ``time``, one column per target, ``<target>_label`` columns when the recording is labelled."""
        if not self.continuous:
            raise RunError(f"frame() is for continuous predictions; these are {self.task!r} (use readout_frame()).")
        i = self.recordings.index(i) if isinstance(i, str) else int(i)
        return prediction_frame(self.times[i], self.values[i], self.targets, self.labels[i])

    def readout_frame(self) -> pd.DataFrame:
        """Segment / clip: the samples as the prediction CSV's frame: ``recording`` (+ ``segment_id``), one column
        per target (class values for classification targets), ``<target>_label`` columns when some sample has a
        label."""
        keys = self.keys
        df = pd.DataFrame({"recording": self.sample_recordings()})
        if self.task == "segment":
            df["segment_id"] = [k[1] for k in keys]
        preds, labels = self.predicted(), self.label_matrix()
        for s in self.specs:
            df[s.name] = ([s.classes[int(i)] for i in preds[s.name]] if s.kind == "classification"
                          else preds[s.name])
        if np.isfinite(labels).any():
            for k, s in enumerate(self.specs):
                df[f"{s.name}{LABEL_SUFFIX}"] = ([s.classes[int(v)] if np.isfinite(v) else None for v in labels[:, k]]
                                                 if s.kind == "classification" else labels[:, k])
        return df

    @classmethod
    def load(cls, folder: str | Path) -> "Predictions":
        """Read a folder written by :meth:`save` (or an older prediction folder of CSV files only)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise RunError(f"Prediction folder {str(folder)!r} does not exist.")
        if not (folder / META).is_file():
            return _checked_names(_load_csv_only(folder), folder)
        return _checked_names(cls._load_meta(folder), folder)

    @classmethod
    def _load_meta(cls, folder: Path) -> "Predictions":
        try:
            meta = json.loads((folder / META).read_text())
            specs = specs_from_state(meta["target_specs"])
            task, recs = meta["task"], list(meta["recordings"])
            with np.load(folder / ARRAYS, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RunError(f"Prediction folder {str(folder)!r} is damaged ({type(e).__name__}: {e}); "
                           f"expected {META} and {ARRAYS} as written by Predictions.save.") from e
        if task == "continuous":
            return cls(task, specs, recs, times=[arrays[f"times/{i}"] for i in range(len(recs))],
                       values=[arrays[f"values/{i}"] for i in range(len(recs))],
                       labels=[arrays.get(f"labels/{i}") for i in range(len(recs))], meta=meta.get("meta", {}))
        keys = [k if isinstance(k, str) else (str(k[0]), int(k[1])) for k in meta["keys"]]
        return cls(task, specs, recs, keys=keys, outputs=arrays["outputs"], labels=arrays["labels"],
                   meta=meta.get("meta", {}))


def _checked_names(p: Predictions, folder: Path) -> Predictions:
    """Recording ids and target names read from a prediction folder become file names later (submissions,
    prediction CSVs, feature sets): the name rule of :mod:`affectflow.fsutil` applies when they are read."""
    check_names("recording id", [str(r) for r in p.recordings], where=f"prediction folder {str(folder)!r}",
                error=RunError)
    check_names("target name", list(p.targets), where=f"prediction folder {str(folder)!r}", error=RunError)
    return p


def read_prediction_csv(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None]:
    """One continuous prediction CSV (this format or the earlier ``<target>_pred`` one): ``(targets, times (T,),
    values (T, K), labels (T, K) or None)``; labels only when every target has a label column."""
    f = Path(path)
    df = pd.read_csv(f)
    if "time" not in df.columns:
        raise RunError(f"{str(f)!r} is not a continuous prediction file: it has no `time` column.")
    targets, pred, label = split_prediction_columns(list(df.columns), repr(str(f)))
    values = df[[pred[t] for t in targets]].to_numpy(np.float32)
    labels = df[[label[t] for t in targets]].to_numpy(np.float32) if len(label) == len(targets) else None
    return targets, df["time"].to_numpy(np.float64), values, labels


def _load_csv_only(folder: Path) -> Predictions:
    """Folders without ``predictions.json`` (earlier versions, or CSV files written by other tools in this format):
    per-recording CSVs (continuous) or ``segments.csv`` / ``clips.csv``."""
    for task in ("segment", "clip"):
        path = folder / f"{task}s.csv"
        if path.is_file():
            df = pd.read_csv(path, dtype={"recording": str})
            names, pred_col, label_col = split_prediction_columns(list(df.columns), repr(str(path)))
            specs, outs, labs = [], [], []
            for n in names:
                col, lab = df[pred_col[n]], df.get(label_col.get(n, ""))
                if pd.api.types.is_float_dtype(col):
                    specs.append(TargetSpec(n, "regression"))
                    outs.append(col.to_numpy(np.float32)[:, None])
                    labs.append(lab.to_numpy(np.float32) if lab is not None else np.full(len(df), np.nan, np.float32))
                    continue
                vals = pd.concat([col, lab.dropna() if lab is not None else col.iloc[:0]]).unique().tolist()
                classes = sorted(vals, key=lambda v: (isinstance(v, str), v))
                specs.append(TargetSpec(n, "classification", classes))
                outs.append(np.eye(len(classes), dtype=np.float32)[[classes.index(v) for v in col]])
                labs.append(np.array([classes.index(v) if v == v and v is not None else np.nan
                                      for v in (lab if lab is not None else [None] * len(df))], np.float32))
            keys = (list(df["recording"]) if task == "clip"
                    else list(zip(df["recording"], df["segment_id"].astype(int))))
            return Predictions(task, specs, list(dict.fromkeys(df["recording"])), keys=keys,
                               outputs=np.concatenate(outs, 1), labels=np.stack(labs, 1))
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise RunError(f"Prediction folder {str(folder)!r} has no prediction files (expected {META} or CSV files).")
    recs, times, values, labels, targets = [], [], [], [], None
    for f in files:
        names, t, v, y = read_prediction_csv(f)
        if targets is None:
            targets = names
        elif names != targets:
            raise RunError(f"{str(f)!r} predicts {names}, other files of {str(folder)!r} predict {targets}.")
        recs.append(f.stem)
        times.append(t)
        values.append(v)
        labels.append(y)
    return Predictions("continuous", [TargetSpec(t, "regression") for t in targets], recs, times=times,
                       values=values, labels=labels)
