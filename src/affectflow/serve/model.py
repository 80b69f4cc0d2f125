"""The trained run behind the service: metadata, offline prediction of one uploaded file, live stream sessions.

A thin adapter over :func:`affectflow.inference.media.predict_media` (offline: extract exactly the run's feature
sets from the media, predict) and :mod:`affectflow.streaming` (``AudioStreamPredictor`` for live audio,
``Streamer`` for feature frames), so that the web layer only deals with files, numbers and JSON.

One upload is one recording: it is given to ``predict_media`` as every media kind the run needs among ``audio``
and ``video`` (a video with a sound track serves both). Runs that also need physiology or a transcript cannot be
served from a single file; :meth:`ServedModel.metadata` says so (``media_supported``) and uploads get a 422.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from affectflow.errors import AffectflowError, ExtractionError, RunError
from affectflow.inference.media import predict_media, run_info
from affectflow.io.audio import audio_duration
from affectflow.io.video import video_info
from affectflow.streaming import AudioStreamPredictor, Streamer

#: Media kinds one uploaded file can provide.
FILE_KINDS = ("audio", "video")


class MediaError(AffectflowError, ValueError):
    """An uploaded file cannot be used (unreadable, wrong content, too short, or not what the run needs)."""


class ServedModel:
    """A trained run, ready to predict uploads and streams.

    Parameters
    ----------
    run:
        Run directory.
    seed:
        Checkpoint seed (default: the run's selected seed).
    threads:
        ``torch.set_num_threads`` for inference (0: leave torch's default).

    Raises
    ------
    RunError
        Not a run directory, or a run that can neither predict from media nor stream.
    """

    def __init__(self, run: str | os.PathLike, *, seed: int | None = None, threads: int = 1) -> None:
        if threads:
            torch.set_num_threads(int(threads))
        self.path = Path(run)
        self.seed = seed
        self.info = run_info(self.path, seed=seed)
        self.name = self.path.name
        self.targets: list[str] = list(self.info["targets"])
        self.label_rate_hz = float(self.info["label_rate_hz"])
        needs = self.info.get("inputs") or {}
        self.needs = sorted(needs)
        self.file_kinds = [k for k in self.needs if k in FILE_KINDS]
        self.stream_inputs = self._stream_inputs()
        if not self.info.get("media_supported") and not self.stream_inputs:
            raise RunError(
                f"Run {str(self.path)!r} can neither predict from media ({self.info.get('why_not_media')}) nor "
                f"stream ({self.info.get('why_not_streamable')}); there is nothing to serve."
            )

    # --------------------------------------------------------------------------------------------- metadata
    def _stream_inputs(self) -> list[str]:
        if not self.info.get("streamable"):
            self.stream_refusal = self.info.get("why_not_streamable") or "the model is not causal"
            return []
        inputs = ["features"]
        self.stream_refusal = None
        if self.needs == ["audio"]:
            try:  # the extractors may have no streaming implementation: ask once, at start-up
                AudioStreamPredictor(self.path, seed=self.seed, device="cpu")
            except AffectflowError as e:
                self.stream_refusal = str(e)
            else:
                inputs.insert(0, "audio")
        else:
            self.stream_refusal = (f"live audio needs a run whose feature sets all come from audio; this run needs "
                                   f"{self.needs}")
        return inputs

    def metadata(self) -> dict[str, Any]:
        """What ``GET /info`` shows: the run's metadata (``run_info``) plus what the service accepts.

        Keys: ``name``, ``targets``, ``label_rate_hz``, ``feature_sets`` (names), ``feature_set_details``
        (columns, rate, extractor and parameters per set), ``causal``, ``model``, ``task``, ``inputs`` (media
        kind → feature sets), ``media_supported`` / ``why_not_media``, ``file_kinds`` (what one upload is used as),
        ``stream_inputs`` (``audio`` and/or ``features``; empty when the model cannot stream) and
        ``stream_refusal``.
        """
        i = self.info
        media_ok = bool(i.get("media_supported")) and set(self.needs) <= set(FILE_KINDS)
        why_media = i.get("why_not_media")
        if i.get("media_supported") and not media_ok:
            why_media = (f"the run needs {self.needs}; one uploaded file can only provide audio and/or video")
        return {
            "name": self.name,
            "model": i.get("model"),
            "task": i.get("task"),
            "targets": self.targets,
            "label_rate_hz": self.label_rate_hz,
            "feature_sets": list(i.get("feature_sets", {})),
            "feature_set_details": i.get("feature_sets", {}),
            "causal": bool(i.get("causal")),
            "inputs": i.get("inputs"),
            "media_supported": media_ok,
            "why_not_media": None if media_ok else why_media,
            "file_kinds": self.file_kinds,
            "stream_inputs": self.stream_inputs,
            "stream_refusal": self.stream_refusal,
        }

    # ---------------------------------------------------------------------------------------------- offline
    def _check_media_supported(self) -> None:
        meta = self.metadata()
        if not meta["media_supported"]:
            raise MediaError(f"This run cannot predict from an uploaded file: {meta['why_not_media']}.")

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state (sent to a job's child process): the lazily loaded stream template stays here."""
        state = dict(self.__dict__)
        state.pop("_template", None)
        return state

    def probe(self, path: str | os.PathLike, limit_s: float | None = None) -> float:
        """Read the headers of an uploaded file and return its duration (s).

        ``limit_s``: for containers that declare no duration, stop counting decoded audio just past this many
        seconds (the caller refuses such a file anyway), so that probing a long file stays cheap.

        Raises
        ------
        MediaError
            The run cannot take files, or the file is not readable media of the kinds the run needs (no audio
            track when the run needs audio, ...).
        """
        self._check_media_supported()
        durations = []
        try:
            if "audio" in self.file_kinds:
                durations.append(audio_duration(path, limit_s=limit_s))
            if "video" in self.file_kinds:
                durations.append(video_info(path).duration)
        except ExtractionError as e:
            raise MediaError(f"{e} The run needs {' and '.join(self.file_kinds)} from the uploaded file.") from None
        d = min(durations) if durations else float("nan")
        if not math.isfinite(d) or d <= 0:
            raise MediaError("The uploaded file declares no usable duration.")
        min_d = 1.0 / self.label_rate_hz
        if d < min_d:
            raise MediaError(f"The uploaded media is {d:.3f} s long; at least one label step ({min_d:g} s) is needed.")
        return float(d)

    def predict_file(self, path: str | os.PathLike, *, progress: Callable[[float, str | None], None] | None = None,
                     workdir: str | os.PathLike | None = None) -> pd.DataFrame:
        """Predict one uploaded file: columns ``time`` (s) and one per target, on the run's label grid.

        ``progress(fraction, message)`` is called now and then; it may raise to stop the prediction.
        ``workdir`` (a folder that does not exist yet) holds the temporary corpus and is removed afterwards.
        """
        self._check_media_supported()
        inputs = {k: str(path) for k in self.file_kinds}
        wd = Path(workdir) if workdir is not None else Path(path).parent / f"work-{uuid.uuid4().hex}"
        try:
            df = predict_media(self.path, inputs, seed=self.seed, device="cpu", progress=progress, workdir=wd)
        except ExtractionError as e:
            raise MediaError(str(e)) from None
        finally:
            shutil.rmtree(wd, ignore_errors=True)
        return df[["time", *self.targets]]

    # -------------------------------------------------------------------------------------------- streaming
    def open_stream(self, kind: str, sample_rate: Any = None) -> "StreamSession":
        """A new live session for ``kind`` ``"audio"`` (PCM at ``sample_rate`` Hz) or ``"features"``.

        Raises
        ------
        AffectflowError
            The run cannot stream this input (the message says why).
        """
        if kind not in self.stream_inputs:
            why = self.stream_refusal or "not supported"
            raise MediaError(f"This run cannot stream input {kind!r}: {why}.")
        if kind == "audio":
            if not isinstance(sample_rate, (int, float)) or isinstance(sample_rate, bool) or not (
                    4000 <= sample_rate <= 384000):
                raise MediaError(f"'sample_rate' must be a number of Hz between 4000 and 384000; got {sample_rate!r}.")
            return StreamSession(self, AudioStreamPredictor(self.path, seed=self.seed, device="cpu"),
                                 int(sample_rate))
        return StreamSession(self, self._streamer().clone(), None)

    def _streamer(self):
        """The run's :class:`~affectflow.streaming.Streamer`, loaded once; each stream gets a clone."""
        if getattr(self, "_template", None) is None:
            self._template = Streamer(self.path, seed=self.seed, device="cpu")
        return self._template


class StreamSession:
    """One live stream: audio chunks or feature frames in, predictions ``{"step", "time", <target>...}`` out."""

    def __init__(self, model: ServedModel, predictor: Any, sample_rate: int | None) -> None:
        self.model = model
        self.predictor = predictor
        self.sample_rate = sample_rate
        self.steps = 0

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"targets": self.model.targets, "label_rate_hz": self.model.label_rate_hz,
                             "sample_rate": self.sample_rate}
        if self.sample_rate is None:
            d["feature_sets"] = {k: len(v) for k, v in self.predictor.columns.items()}
        return d

    def _number(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            out.append({"step": self.steps, "time": float(r["time"]),
                        **{t: float(r[t]) for t in self.model.targets}})
            self.steps += 1
        return out

    def push_audio(self, samples: np.ndarray) -> list[dict[str, Any]]:
        """Predictions completed by this chunk of mono float32 samples."""
        return self._number(self.predictor.push(samples, self.sample_rate))

    def push_frame(self, features: dict[str, Any]) -> list[dict[str, Any]]:
        """The prediction of one label step of raw feature vectors ``{set: [values]}`` (``null`` = missing)."""
        unknown = sorted(set(features) - set(self.predictor.columns))
        if unknown:
            raise MediaError(f"Unknown feature sets {unknown}; this run uses {list(self.predictor.columns)}.")
        frame = {}
        for k, v in features.items():
            if v is None:
                frame[k] = None
                continue
            try:
                frame[k] = np.array([np.nan if x is None else x for x in v], dtype=np.float64)
            except (TypeError, ValueError):
                raise MediaError(f"Feature set {k!r}: expected a list of numbers (null for missing).") from None
        t = self.predictor.time
        pred = self.predictor.step(frame)
        return self._number([{"time": t, **pred}])

    def finish(self) -> list[dict[str, Any]]:
        """The remaining predictions at the end of the stream."""
        if self.sample_rate is None:
            return []
        return self._number(self.predictor.flush())

    def close(self) -> None:
        """Release the session."""
        self.predictor = None


def load_served_model(run: str | os.PathLike, *, seed: int | None = None, threads: int = 1) -> ServedModel:
    """Load a run for serving (see :class:`ServedModel`)."""
    return ServedModel(run, seed=seed, threads=threads)
