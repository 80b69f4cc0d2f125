"""Predict valence/arousal (any continuous targets) of a recording given as media files, with a trained run.

::

    from affectflow.inference.media import predict_media, required_inputs
    required_inputs("runs/gru-egemaps+fer-...")          # {"audio": ["egemaps"], "video": ["fer"]}
    df = predict_media("runs/gru-...", {"video": "clip.mp4"})
    # df: time (s) on the run's label grid, then one column per target

How it works. A run remembers the feature sets it was trained on, each with the extractor and the exact
extractor parameters that made it (``features/<set>/feature_set.json`` ``params = {"extractor", "config_hash",
"params"}``, copied into the checkpoint at training time; for older runs read from the training corpus). The
media files become a temporary, unlabelled one-recording corpus (:func:`affectflow.corpus.media.import_media`,
which probes every file), the run's feature sets are extracted into it with those parameters
(:func:`affectflow.features.pipeline.extract`, whose config hash must equal the stored one), and the recording
is predicted through the ordinary :func:`affectflow.experiment.predict` path (same alignment, normaliser and
inference code as evaluation). The prediction grid is the run's label grid: ``t_k = k / r``, ``k = 0 ..
floor(D r) - 1``, with ``r`` the run's label rate and ``D`` the recording's duration (the longest of its audio,
video and physiology files).

Runs whose features were not made by affectflow's extractors (features imported from challenge packages with
``import-muse``, the synthetic feature corpus of ``generate``) cannot predict from media: nothing here can
recompute those features, and :class:`UnsupportedRunError` says so.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from affectflow.corpus.media import import_media
from affectflow.errors import AffectflowError, ExtractionError, RunError
from affectflow.experiment import TrainedModel, feature_set_infos  # noqa: F401 - feature_set_infos re-exported (it lived here)
from affectflow.features.base import EXTRACTORS
from affectflow.features.pipeline import extract, load_builtin_extractors
from affectflow.io.audio import audio_info
from affectflow.plots import plot_prediction  # noqa: F401 - re-exported (it lived here)
from affectflow.fsutil import child_path, is_safe_name
from affectflow.predictions import write_prediction_csv
from affectflow.runs import Run, open_run
from affectflow.streaming.streamer import streaming_problem

#: Media kinds ``predict_media`` takes.
KINDS = ("video", "audio", "physio", "transcript")

ProgressFn = Callable[[float, str], None]


class MediaInputError(AffectflowError, ValueError):
    """The media given for a prediction are missing, unreadable, or lack a kind the run needs."""


class UnsupportedRunError(AffectflowError, ValueError):
    """The run cannot predict from media (features not made by affectflow extractors, or not a continuous task)."""


# ---------------------------------------------------------------------------------------------------- run facts
def _run(run: Run | str | os.PathLike) -> Run:
    return open_run(run)


def _extractor_specs(trained: TrainedModel) -> dict[str, tuple[str, dict[str, Any], str | None]]:
    """Feature set → (extractor name, params, config hash) of a loaded model (:meth:`Run.model`); raises
    UnsupportedRunError for non-extracted sets."""
    run, ckpt = trained.run, trained.checkpoint
    infos = trained.feature_sets()
    out, bad = {}, {}
    for name, info in infos.items():
        p = info.get("params") or {}
        if isinstance(p, dict) and isinstance(p.get("extractor"), str) and isinstance(p.get("params"), dict):
            out[name] = (p["extractor"], dict(p["params"]), p.get("config_hash"))
        else:
            bad[name] = p
    if bad:
        raise UnsupportedRunError(
            f"Run {run.path} was trained on feature sets {sorted(bad)} that were not made by affectflow's "
            "extractors (imported challenge features or a synthetic feature corpus: their feature_set.json names "
            "no extractor and parameters), so they cannot be computed from media files. Predicting from media "
            "needs a run trained on features made by `affectflow extract` (or `affectflow demo --media`); "
            "predict this run on a corpus that has these feature sets with `affectflow predict RUN --corpus C`."
        )
    task = ckpt["data"].get("task", "continuous")
    if task != "continuous":
        raise UnsupportedRunError(
            f"Run {run.path} is a {task!r}-task run; predicting time series from media needs a continuous-task run."
        )
    return out


def required_inputs(run: Run | str | os.PathLike, *, seed: int | None = None) -> dict[str, list[str]]:
    """Media kind → the run's feature sets that need it, e.g. ``{"audio": ["egemaps"], "video": ["fer"]}``.

    An ``audio`` need is also met by a video with a sound track (as in extraction).

    Raises
    ------
    UnsupportedRunError
        A feature set was not made by an affectflow extractor, or the run is not a continuous-task run.
    """
    specs = _extractor_specs(_run(run).model(seed))
    load_builtin_extractors()
    out: dict[str, list[str]] = {}
    for name, (ex, _, _) in specs.items():
        for kind in EXTRACTORS.get(ex).inputs:
            out.setdefault(kind, []).append(name)
    return out


def run_info(run: Run | str | os.PathLike, *, seed: int | None = None) -> dict[str, Any]:
    """JSON-serialisable metadata of a run for consumers (e.g. a service's run endpoint).

    Returns
    -------
    dict
        ``run``, ``model``, ``seed``, ``task``, ``targets``, ``label_rate_hz``, ``feature_sets`` (per set:
        ``modality``, ``columns``, ``rate_hz``, ``extractor``, ``params``), ``causal``, ``streamable`` and
        ``why_not_streamable``, ``inputs`` (:func:`required_inputs`, or ``None``), ``media_supported`` and
        ``why_not_media``.
    """
    run = _run(run)
    trained = run.model(seed)
    ckpt, model = trained.checkpoint, trained.module
    infos = trained.feature_sets()
    causal = bool(getattr(model, "causal", False))
    try:
        inputs, why_media = required_inputs(run, seed=seed), None
    except UnsupportedRunError as e:
        inputs, why_media = None, str(e)
    why_stream = streaming_problem(model, ckpt)
    fs = {}
    for n, info in infos.items():
        p = info.get("params") or {}
        fs[n] = {"modality": info.get("modality"), "columns": list(info.get("columns", [])),
                 "rate_hz": info.get("rate_hz"), "extractor": p.get("extractor") if isinstance(p, dict) else None,
                 "params": p.get("params") if isinstance(p, dict) else None}
    return {
        "run": str(run.path),
        "model": ckpt["model"]["type"],
        "seed": int(ckpt.get("seed", -1)),
        "task": ckpt["data"].get("task", "continuous"),
        "targets": list(ckpt["data"]["targets"]),
        "label_rate_hz": trained.label_rate_hz(),
        "feature_sets": fs,
        "causal": causal,
        "streamable": why_stream is None,
        "why_not_streamable": why_stream,
        "inputs": inputs,
        "media_supported": why_media is None,
        "why_not_media": why_media,
    }


# ---------------------------------------------------------------------------------------------------- predict
def _check_inputs(inputs: Mapping[str, Any], needs: dict[str, list[str]]) -> dict[str, Path]:
    unknown = [k for k in inputs if k not in KINDS]
    if unknown:
        raise MediaInputError(f"Unknown media kinds {unknown}; expected any of {list(KINDS)}.")
    given = {k: Path(v) for k, v in inputs.items() if v is not None and str(v) != ""}
    for k, p in given.items():
        if not p.is_file():
            raise MediaInputError(f"The {k} file {str(p)!r} does not exist (or is not a file).")
    missing = {}
    for kind, sets in needs.items():
        ok = kind in given or (kind == "audio" and "video" in given)
        if not ok:
            missing[kind] = sets
    if missing:
        need_txt = "; ".join(f"{k} for feature sets {v}" for k, v in missing.items())
        raise MediaInputError(
            f"The run needs {need_txt}, but only {sorted(given) or 'nothing'} was given. Its feature sets need: "
            + ", ".join(f"{k}: {v}" for k, v in needs.items())
            + " (an audio need is met by a video with a sound track)."
        )
    if "audio" in needs and "audio" not in given and "video" in given:
        # the video must carry the sound: find out from its header now, not after extraction has started
        try:
            audio_info(given["video"])
        except ExtractionError as e:
            raise MediaInputError(
                f"The run needs audio for feature sets {needs['audio']}, and the video {str(given['video'])!r} "
                f"has no usable sound track ({e}). Give the recording's audio with --audio FILE (Python: "
                "inputs={'video': ..., 'audio': ...})."
            ) from None
    return given


def predict_media(
    run: Run | str | os.PathLike,
    inputs: Mapping[str, str | os.PathLike | None],
    *,
    seed: int | None = None,
    device: str = "auto",
    progress: ProgressFn | None = None,
    workdir: str | os.PathLike | None = None,
    recording_id: str = "media",
) -> pd.DataFrame:
    """Predict one recording given as media files (see the module docstring).

    Parameters
    ----------
    run:
        A run directory (or :class:`~affectflow.runs.Run`) of a continuous-task run trained on extracted features.
    inputs:
        Kind → file: any of ``video``, ``audio``, ``physio``, ``transcript``; must cover :func:`required_inputs`.
    seed:
        Use this seed's checkpoint (default: the selected seed).
    device:
        ``auto``, ``cpu`` or ``cuda``.
    progress:
        Optional ``progress(fraction, message)`` callback, fraction in [0, 1], called in this thread.
    workdir:
        Folder for the temporary corpus; must be empty or not exist, and is kept. Default: a temporary folder
        that is removed afterwards.
    recording_id:
        Id of the recording in the temporary corpus.

    Returns
    -------
    pandas.DataFrame
        ``time`` (float64 s, the run's label grid), then one float column per target (named as the target).

    Raises
    ------
    MediaInputError
        Missing kind, unknown kind, missing/unreadable file, failed extraction.
    UnsupportedRunError
        Features not from affectflow extractors, or not a continuous-task run.
    """
    def report(f: float, msg: str) -> None:
        if progress is not None:
            progress(float(min(max(f, 0.0), 1.0)), msg)

    run = _run(run)
    trained = run.model(seed)
    specs = _extractor_specs(trained)
    needs = required_inputs(run, seed=seed)
    given = _check_inputs(inputs, needs)
    report(0.0, "checking media")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="affectflow-predict-") as tmp:
            return _predict_in(run, trained, specs, given, Path(tmp), seed, device, report, recording_id)
    wd = Path(workdir)
    if wd.exists() and any(wd.iterdir()):
        raise MediaInputError(f"Work folder {str(wd)!r} exists and is not empty; give a new or empty one.")
    return _predict_in(run, trained, specs, given, wd, seed, device, report, recording_id)


# ------------------------------------------------------------------------------------------- many recordings
def unique_recording_ids(recs: list[tuple[str, dict[str, Path]]]) -> tuple[list[tuple[str, dict[str, Path]]],
                                                                           list[str]]:
    """Make the recording ids of ``recs`` safe file names (:func:`affectflow.fsutil.check_name`'s rule) and
    distinct; return the new list and one note per id that had to change.

    An unsafe id (``a b``) has its other characters replaced by ``_``; ids that are then equal (``a b.wav`` and
    ``a_b.wav``, or the same file name in two folders) are numbered ``<id>-1``, ``<id>-2``, ... in the given order,
    so that every recording gets its own output file (nothing is overwritten silently).
    """
    safe = []
    for rid, files in recs:
        new = rid if is_safe_name(rid) else (
            "".join(c if c.isalnum() and c.isascii() or c in "_.+-" else "_" for c in rid).lstrip("_.+-")[:190]
            or "recording")
        safe.append((rid, new, files))
    names = [n for _, n, _ in safe]
    dups = {n for n in names if names.count(n) > 1}
    seen: dict[str, int] = {}
    out, notes = [], []
    for rid, new, files in safe:
        if new in dups:
            seen[new] = seen.get(new, 0) + 1
            new = f"{new}-{seen[new]}"
        if new != rid:
            first = next(iter(files.values()))
            notes.append(f"{str(first)!r} is recording {new!r}")
        out.append((new, files))
    return out, notes


@dataclass(frozen=True)
class MediaPrediction:
    """One recording predicted by :func:`predict_media_folder`: its id, the CSV written (and the PNG next to it),
    the number of label steps, the last step's time (s) and the wall time the prediction took (s)."""

    id: str
    csv: Path
    steps: int
    duration_s: float
    seconds: float


def predict_media_folder(
    run: Run | str | os.PathLike,
    recordings: Sequence[tuple[str, Mapping[str, str | os.PathLike]]],
    out: str | os.PathLike,
    *,
    seed: int | None = None,
    device: str = "auto",
    progress: Callable[[str], ProgressFn | None] | None = None,
) -> Iterator[MediaPrediction]:
    """Predict several recordings given as media files into the folder ``out``: ``<id>.csv`` (the prediction CSV
    of :func:`affectflow.predictions.write_prediction_csv`) and ``<id>.png`` per recording, in order; yields each
    as it is written.

    Parameters
    ----------
    run:
        As :func:`predict_media`.
    recordings:
        ``(id, {kind: file})`` pairs; ids must be safe, distinct file names (:func:`unique_recording_ids` makes
        them so).
    out:
        An existing folder (e.g. made by :func:`affectflow.fsutil.out_folder` or ``Run.new_output_dir``); a file
        that exists in it is never overwritten.
    seed, device:
        As :func:`predict_media`.
    progress:
        Optional ``progress(id)`` returning the ``progress(fraction, message)`` callback for that recording.

    Raises
    ------
    MediaInputError
        An unsafe or repeated id, or an error of :func:`predict_media` (the recordings before it are written).
    """
    ids = [rid for rid, _ in recordings]
    bad = sorted({rid for rid in ids if not is_safe_name(rid) or ids.count(rid) > 1})
    if bad:
        raise MediaInputError(f"Recording ids {bad} are not safe, distinct file names; make them so with "
                              "unique_recording_ids() first.")
    run = _run(run)
    out = Path(out)
    if not out.is_dir():
        raise MediaInputError(f"Output folder {str(out)!r} does not exist or is not a folder.")
    for rid, files in recordings:
        t0 = time.perf_counter()
        df = predict_media(run, files, seed=seed, device=device, progress=progress(rid) if progress else None,
                           recording_id="media")
        csv = child_path(out, rid, ".csv", kind="recording id")
        if csv.exists():
            raise MediaInputError(f"{str(csv)!r} exists; predictions are never written over an earlier file.")
        write_prediction_csv(csv, df, plot_title=f"{rid} ({run.path.name})")
        yield MediaPrediction(rid, csv, len(df), float(df["time"].iloc[-1]) if len(df) else 0.0,
                              time.perf_counter() - t0)


def _predict_in(run, trained, specs, given, wd: Path, seed, device, report, rid: str) -> pd.DataFrame:
    wd.mkdir(parents=True, exist_ok=True)
    rate = trained.label_rate_hz()
    manifest = wd / "manifest.csv"
    row = {"id": rid, "partition": "predict", **{k: str(p.resolve()) for k, p in given.items()}}
    pd.DataFrame([row]).to_csv(manifest, index=False)
    rep = import_media(manifest, wd / "corpus", name="predict-media", label_rate_hz=rate, partition="predict")
    if not rep.ok or rid not in rep.added:
        lines = "; ".join(f"{f['kind']} {f['file']}: {f['message']}" for f in rep.failures) or "no file usable"
        raise MediaInputError(f"The media files could not be read: {lines}.")
    report(0.05, "media probed")

    load_builtin_extractors()
    extractors = {}
    for name, (ex_name, params, chash) in specs.items():
        try:
            ex = EXTRACTORS.build(ex_name, params)
        except AffectflowError as e:
            raise UnsupportedRunError(
                f"Feature set {name!r} of run {run.path} was made by extractor {ex_name!r} with {params}, which "
                f"this installation cannot rebuild: {e}"
            ) from e
        if chash and ex.config_hash() != chash:
            raise UnsupportedRunError(
                f"Feature set {name!r}: extractor {ex_name!r} rebuilt with the stored parameters has config hash "
                f"{ex.config_hash()}, but the run's features were made with {chash}; this affectflow version "
                "computes them differently, so the run cannot be applied to new media faithfully."
            )
        extractors[name] = ex
    n = len(extractors)
    for i, (name, ex) in enumerate(extractors.items()):
        report(0.05 + 0.85 * i / n, f"extracting {name}")
        summary = extract(wd / "corpus", {name: ex}, workers=1, progress=False, report=False)
        bad = [r for r in summary.results if r.status in ("failed", "no_input")]
        if bad:
            msgs = "; ".join(f"{r.feature_set} from {r.file or 'no file'}: {r.message}" for r in bad)
            raise MediaInputError(f"Feature extraction from the media failed: {msgs}.")
    report(0.9, "predicting")
    preds = run.predict(wd / "corpus", [rid], seed=seed, device=device)
    preds.save(wd / "predictions")  # kept with the work folder, like the corpus
    res = preds.frame(0)  # time, one column per target (the recording has no labels)
    report(1.0, "done")
    return res.astype(np.float64)
