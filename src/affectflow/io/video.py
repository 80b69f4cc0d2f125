"""Video decoding with PyAV: stream frames at a target rate, never holding the whole video.

:func:`iter_frames` decodes a video file once, front to back, and yields for every output instant
``t_k = k / rate_hz`` (``k = 0, 1, ...``, all ``t_k`` before the end of the video) the decoded frame whose
timestamp is nearest ``t_k`` (ties go to the earlier frame). Only the previous decoded frame is kept, so memory does
not depend on the video's length. Frames are converted to ``uint8`` RGB only when they are yielded, so at 2 Hz
on a 25 fps video 23 of every 25 frames are decoded but never converted.

:class:`NearestFrames` is that selection rule on its own, push-based (a frame in, the outputs it decides out):
:func:`iter_frames`, :func:`iter_image_folder`, the face extractors' in-memory verb
(:meth:`affectflow.features.face.FaceExtractor.process_frames`) and the live predictor all select frames with it.

Times are in seconds from the start of the container (its ``start_time``; else the first frame), the clock the
audio track of the same file uses. A video that starts late maps its first output instants to its first frame.

:func:`video_info` reads frame rate, frame count, duration and size from the container (counting packets when the
header has no frame count) without decoding.

:func:`iter_image_folder` reads a folder of numbered frame images (Aff-Wild2's ``cropped_aligned/<video>/00001.jpg``)
on the same kind of grid, given the frame rate of the video they come from; frames without an image are yielded
with ``image=None`` (masked as NaN rows by the extractors). :func:`iter_video_frames` takes either.

Any failure to open or decode a file (missing, empty, corrupt, truncated, no video stream) raises
:class:`affectflow.errors.ExtractionError` with the path and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from affectflow.errors import ExtractionError

TRUNCATION_TOLERANCE_S = 0.5
"""A video whose decoded frames end more than this (plus 5 %) before its header duration is called truncated."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video stream.

    Attributes
    ----------
    path:
        The file.
    fps:
        Average frame rate in frames per second (the stream's ``average_rate``, else its guessed rate).
    n_frames:
        Number of frames: the header's count, else the number of video packets (one frame each).
    duration:
        Duration in seconds: the video stream's duration, else the container's, else ``n_frames / fps``.
    width, height:
        Frame size in pixels.
    codec:
        Codec name, e.g. ``"h264"``.
    """

    path: Path
    fps: float
    n_frames: int
    duration: float
    width: int
    height: int
    codec: str

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.width, self.height


@dataclass(frozen=True)
class DecodedFrame:
    """One output frame of :func:`iter_frames`.

    Attributes
    ----------
    index:
        Output index ``k`` (``0, 1, ...``).
    time:
        Output instant in seconds: ``k / rate_hz``, or the frame's own timestamp when ``rate_hz`` is ``None``.
    source_index:
        Index of the decoded frame used (0-based, in presentation order).
    source_time:
        Timestamp of that decoded frame in seconds.
    image:
        ``uint8`` array of shape ``(height, width, 3)`` (RGB), read-only. When the output rate exceeds the frame
        rate, consecutive outputs share the same array. ``None`` for a frame missing from an image folder.
    """

    index: int
    time: float
    source_index: int
    source_time: float
    image: np.ndarray | None


def _fail(path: Path, what: str) -> ExtractionError:
    return ExtractionError(f"Cannot read video {str(path)!r}: {what}.")


def _open(path: str | os.PathLike) -> tuple[Path, Any, Any]:
    """Open ``path`` with PyAV; return ``(path, container, video stream)`` or raise :class:`ExtractionError`."""
    import av

    path = Path(path)
    if not path.is_file():
        raise _fail(path, "the file does not exist" if not path.exists() else "it is not a file")
    if path.stat().st_size == 0:
        raise _fail(path, "the file is empty (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise _fail(path, f"not a readable media file, or corrupt/truncated ({type(e).__name__}: {e})") from e
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise _fail(path, f"it has no video stream (streams: {', '.join(kinds)})")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.name is None:
        container.close()
        raise _fail(path, "its video codec is not supported by this FFmpeg build")
    return path, container, stream


def _fps(stream: Any) -> float | None:
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if r:
            return float(r)
    return None


def _declared_duration(stream: Any, container: Any = None) -> float | None:
    """The video stream's duration in s from the header; the container's if the video is its only stream."""
    import av

    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container is not None and len(container.streams) == 1 and container.duration:
        return container.duration / av.time_base
    return None


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, frame count, duration and size of a video file, without decoding.

    Parameters
    ----------
    path:
        Video file (mp4, avi, mkv, mov, webm, ...).

    Returns
    -------
    VideoInfo
        See :class:`VideoInfo`. ``n_frames`` comes from the header, or from counting the stream's packets when the
        header has no count (cheap: demuxing only).

    Raises
    ------
    ExtractionError
        The file is missing, empty, corrupt, or has no video stream.
    """
    import av

    path, container, stream = _open(path)
    try:
        fps = _fps(stream)
        n_frames = int(stream.frames or 0)
        if n_frames <= 0:
            try:
                n_frames = sum(1 for p in container.demux(stream) if p.size)
            except av.FFmpegError as e:
                raise _fail(path, f"demuxing failed ({type(e).__name__}: {e})") from e
        duration = _declared_duration(stream)
        if duration is None and container.duration:
            duration = container.duration / av.time_base
        if duration is None:
            duration = n_frames / fps if fps else 0.0
        if fps is None:
            fps = n_frames / duration if duration > 0 else 0.0
        if n_frames == 0:
            raise _fail(path, "its video stream has no frames")
        return VideoInfo(
            path=path,
            fps=float(fps),
            n_frames=n_frames,
            duration=float(duration),
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            codec=str(stream.codec_context.name),
        )
    finally:
        container.close()


# ---------------------------------------------------------------------------------------------- frame selection
class SelectedFrame(NamedTuple):
    """One output of :class:`NearestFrames`: output index ``k``, instant ``t_k`` in seconds, and the chosen frame's
    item (whatever was pushed with it)."""

    index: int
    time: float
    item: Any


def frame_time(time: Fraction | float | int) -> Fraction:
    """A frame time in seconds as the exact fraction :class:`NearestFrames` compares.

    A :class:`~fractions.Fraction` is used as it is (PyAV's ``pts * time_base``); an ``int`` or ``float`` becomes
    the nearest fraction with a denominator up to 10^6, which recovers the exact presentation time of any container
    time base up to 1/10^6 s (``1/90000``, ``1/12800``, ``1/1000``...) from its ``float``, so decoded frames
    handed over as ``float`` seconds are selected exactly as :func:`iter_frames` selects them.
    """
    if isinstance(time, Fraction):
        return time
    return Fraction(time).limit_denominator(10**6)


class NearestFrames:
    """Push-based nearest-frame selection: decoded frames in, frames on the output grid ``t_k = k / rate_hz`` out.

    The one rule for every video path (:func:`iter_frames`, :func:`iter_image_folder`,
    :meth:`affectflow.features.face.FaceExtractor.process_frames` and the live predictor): output instant
    ``t_k`` (``k = 0, 1, ...``) takes the pushed frame ``i`` minimising ``|t_i - t_k|``, the earlier one on a tie.
    That is decided when the frame after ``t_k`` arrives: pushing frame ``i + 1`` emits every ``t_k`` up to the
    midpoint ``(t_i + t_{i+1}) / 2`` (inclusive: the tie goes to frame ``i``), with frame ``i``; output instants
    before the first frame take the first frame. :meth:`finish` serves the remaining ``t_k < end`` with the last
    frame. Only the last frame is held, so memory does not depend on the video's length.

    ::

        sel = NearestFrames(2.0)
        for t, image in decoded:                  # increasing times, s
            for k, t_k, image_k in sel.push(t, image):
                ...
        for k, t_k, image_k in sel.finish(sel.last_time + step):
            ...

    Parameters
    ----------
    rate_hz:
        Output rate in Hz (``> 0``; used exactly: ``Fraction(rate_hz)``), or ``None``: every frame at its own time
        (``float(time)`` as pushed), emitted as it is pushed (``k`` counts the frames).

    Raises
    ------
    ValueError
        ``rate_hz`` is not ``None`` or positive.
    """

    def __init__(self, rate_hz: float | Fraction | None) -> None:
        if rate_hz is not None and not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0 or None, got {rate_hz!r}")
        self.rate = None if rate_hz is None else Fraction(rate_hz)
        self._k = 0  # next output index
        self._twice_tk = Fraction(0)  # 2 t_k of the next output (compared with t_i + t_{i+1})
        self._prev: tuple[Fraction, Any] | None = None  # (time, item) of the last pushed frame

    @property
    def last_time(self) -> Fraction | None:
        """Time of the last pushed frame (exact, s), ``None`` before the first."""
        return None if self._prev is None else self._prev[0]

    def push(self, time: Fraction | float | int, item: Any) -> list[SelectedFrame]:
        """Add the next frame (at ``time`` s, see :func:`frame_time`) and return the outputs it decides.

        Raises
        ------
        ValueError
            ``time`` is not after the previous frame's.
        """
        t = frame_time(time)
        if self._prev is not None and t <= self._prev[0]:
            raise ValueError(f"frame times must increase: got {float(t)} s after {float(self._prev[0])} s")
        out: list[SelectedFrame] = []
        if self.rate is None:
            out.append(SelectedFrame(self._k, float(time), item))  # the frame's own time, as given
            self._k += 1
        elif self._prev is not None:
            twice_mid = self._prev[0] + t
            while self._twice_tk <= twice_mid:
                out.append(self._emit(self._prev[1]))
        self._prev = (t, item)
        return out

    def _emit(self, item: Any) -> SelectedFrame:
        sel = SelectedFrame(self._k, float(Fraction(self._k) / self.rate), item)
        self._k += 1
        self._twice_tk = 2 * Fraction(self._k) / self.rate
        return sel

    def finish(self, end: Fraction | float | int) -> list[SelectedFrame]:
        """The last outputs: every ``t_k < end`` not yet emitted, with the last frame (none if ``rate_hz`` is
        ``None`` or nothing was pushed). ``end`` is where the last frame stops showing: its time plus one frame
        step for a video."""
        if self.rate is None or self._prev is None:
            return []
        twice_end = 2 * frame_time(end)
        out = []
        while self._twice_tk < twice_end:
            out.append(self._emit(self._prev[1]))
        return out


def iter_frames(
    path: str | os.PathLike,
    rate_hz: float | None = 2.0,
    *,
    threads: bool = True,
) -> Iterator[DecodedFrame]:
    """Decode a video and yield the frame nearest each output instant ``k / rate_hz``.

    Parameters
    ----------
    path:
        Video file.
    rate_hz:
        Output rate in Hz (``> 0``; e.g. 2.0, or the video's own 25/30 for every frame of a constant-rate video).
        ``None`` yields every decoded frame at its own timestamp.
    threads:
        Let FFmpeg decode with several threads (``thread_type="AUTO"``).

    Yields
    ------
    DecodedFrame
        For ``k = 0, 1, ...`` while ``t_k = k / rate_hz < T_end``, where ``T_end`` is the last frame's timestamp plus
        one frame duration (``1 / fps``, 1/25 s if unknown): the decoded frame ``i`` minimising ``|t_i - t_k|``
        (the earlier one on a tie), chosen by :class:`NearestFrames`. Timestamps ``t_i`` are exact (rational)
        presentation times relative to the container start; frames whose timestamp does not increase are skipped.

    Raises
    ------
    ExtractionError
        The file cannot be opened or decoded, has no video frames, or ends (truncated) well before the duration its
        header declares.
    """
    import av

    selector = NearestFrames(rate_hz)  # raises ValueError for a bad rate
    path, container, stream = _open(path)
    fps = _fps(stream)
    try:
        if threads:
            stream.thread_type = "AUTO"
        tb = stream.time_base
        origin = Fraction(container.start_time, av.time_base) if container.start_time is not None else None
        # nominal frame duration: for frames without a timestamp, and for the end of the last frame
        step = Fraction(1) / Fraction(fps) if fps else Fraction(1, 25)
        prev: tuple[int, Fraction] | None = None  # (source index, time) of the last decoded frame
        converted: tuple[int, np.ndarray] | None = None  # (source index, RGB array) of the last converted frame
        n_decoded = 0

        def output(sel: SelectedFrame) -> DecodedFrame:
            # frames are converted to RGB only when selected, once each (repeated outputs share the array)
            nonlocal converted
            idx, t, frame = sel.item
            if converted is None or converted[0] != idx:
                arr = frame.to_ndarray(format="rgb24")
                arr.flags.writeable = False
                converted = (idx, arr)
            return DecodedFrame(sel.index, sel.time, idx, float(t), converted[1])

        try:
            for frame in container.decode(stream):
                if frame.pts is not None and tb is not None:
                    t = Fraction(frame.pts) * Fraction(tb)
                    if origin is None:
                        origin = t
                    t -= origin
                else:
                    t = prev[1] + step if prev is not None else Fraction(0)
                if prev is not None and t <= prev[1]:
                    continue  # duplicate or out-of-order timestamp: keep the first frame of that instant
                prev = (n_decoded, t)
                n_decoded += 1
                for sel in selector.push(t, (prev[0], t, frame)):
                    yield output(sel)
        except av.FFmpegError as e:
            where = f"after {n_decoded} frames (t = {float(prev[1]):.3f} s)" if prev else "at the first frame"
            raise _fail(path, f"decoding failed {where} ({type(e).__name__}: {e})") from e
        if prev is None:
            raise _fail(path, "its video stream has no decodable frames")
        end = prev[1] + step
        declared = _declared_duration(stream, container)
        if declared is not None and float(end) < declared * 0.95 - TRUNCATION_TOLERANCE_S:
            raise _fail(
                path,
                f"the file is truncated: its header declares {declared:.2f} s of video, but frames end at "
                f"{float(end):.2f} s ({n_decoded} frames decoded)",
            )
        for sel in selector.finish(end):
            yield output(sel)
    finally:
        container.close()


# ---------------------------------------------------------------------------------------------------- image folders
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
"""File extensions of the frames of an image-folder video."""


def image_folder_frames(folder: str | os.PathLike) -> dict[int, Path]:
    """The numbered frames of an image folder: frame number → file.

    A frame file is named by its 1-based frame number, zero-padded or not (``00001.jpg``, ``17.png``), as in
    Aff-Wild2's ``cropped_aligned/<video>/``. Other files are ignored.

    Raises
    ------
    ExtractionError
        ``folder`` is not a folder, or two files give the same frame number (``1.jpg`` and ``00001.jpg``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExtractionError(f"Cannot read image folder {str(folder)!r}: it is not a folder.")
    out: dict[int, Path] = {}
    for f in folder.iterdir():
        if f.suffix.lower() not in IMAGE_EXTS or not f.stem.isdigit() or not f.is_file():
            continue
        n = int(f.stem)
        if n in out:
            raise ExtractionError(
                f"Image folder {str(folder)!r} has two files for frame {n}: {out[n].name} and {f.name}."
            )
        out[n] = f
    return out


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as a read-only ``uint8`` RGB array ``(height, width, 3)``; :class:`ExtractionError` if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise ExtractionError(f"Cannot read image {str(path)!r}: {type(e).__name__}: {e}.") from e
    arr = np.ascontiguousarray(arr)
    arr.flags.writeable = False
    return arr


def iter_image_folder(
    folder: str | os.PathLike,
    rate_hz: float | None,
    *,
    fps: float,
    n_frames: int | None = None,
) -> Iterator[DecodedFrame]:
    """Frames of an image-folder video (numbered frame files, see :func:`image_folder_frames`) on a time grid.

    Frame file number ``n`` (1-based) is video frame index ``i = n - 1`` shown at ``t_i = i / fps``. The video has
    ``N`` frames: ``n_frames`` if given, else the highest frame number in the folder. Frames whose file is absent
    (no face was found, as in ``cropped_aligned``) are yielded with ``image=None``: face extractors turn them into
    NaN rows, so missing frames are masked, never dropped or filled.

    Parameters
    ----------
    folder:
        The image folder.
    rate_hz:
        Output rate in Hz: for ``t_k = k / rate_hz < N / fps`` the frame ``i = round(t_k · fps)`` (clipped to
        ``N - 1``; a tie goes to the earlier frame): :func:`iter_frames`' rule, by :class:`NearestFrames`. ``None``
        yields every frame ``i = 0 .. N-1`` at ``t_i``.
    fps:
        Frame rate of the video the images come from (frames per second, > 0).
    n_frames:
        Number of frames of that video (default: the highest frame number found).

    Yields
    ------
    DecodedFrame
        ``image`` is ``uint8`` RGB ``(height, width, 3)`` or ``None`` for a missing frame; ``source_index = i``,
        ``source_time = i / fps``.

    Raises
    ------
    ExtractionError
        Not a folder, no frame files at all (with no ``n_frames``), an unreadable image, or a bad ``fps``.
    """
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ExtractionError(
            f"Image folder {str(folder)!r} needs the frame rate of its video (fps > 0), got {fps!r}; for a corpus, "
            "set the video_fps column of media.csv."
        )
    if rate_hz is not None and not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0 or None, got {rate_hz!r}")  # before reading the folder
    files = image_folder_frames(folder)
    n = int(n_frames) if n_frames is not None else (max(files) if files else 0)
    if n <= 0:
        raise ExtractionError(f"Image folder {str(folder)!r} has no numbered frame files ({', '.join(IMAGE_EXTS)}).")

    def frame(k: int, t: float, i: int) -> DecodedFrame:
        f = files.get(i + 1)
        return DecodedFrame(k, t, i, i / fps, None if f is None else read_image(f))

    # the rule of iter_frames: frame i shows at i / fps, the last one until n / fps, with fps read as the fraction it
    # stands for (frame_time: 29.97 -> 2997/100, 30000/1001 as a float -> 30000/1001); only selected images are read
    selector, fps_q = NearestFrames(rate_hz), frame_time(fps)
    for i in range(n):
        for sel in selector.push(i / fps_q, i):  # rate None: frame i at its own time, i / fps
            yield frame(sel.index, sel.time if rate_hz is not None else i / fps, sel.item)
    for sel in selector.finish(n / fps_q):
        yield frame(sel.index, sel.time, sel.item)


def iter_video_frames(
    path: str | os.PathLike,
    rate_hz: float | None = 2.0,
    *,
    fps: float | None = None,
    duration: float | None = None,
) -> Iterator[DecodedFrame]:
    """Frames of a video file (:func:`iter_frames`) or of an image folder (:func:`iter_image_folder`).

    For an image folder, ``fps`` is required and ``duration`` (s) gives the frame count ``round(duration · fps)``.
    ``image`` is ``None`` only for missing frames of an image folder.
    """
    if Path(path).is_dir():
        n = int(round(duration * fps)) if duration and fps else None
        return iter_image_folder(path, rate_hz, fps=fps, n_frames=n)
    return iter_frames(path, rate_hz)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], rate: Any, *, crf: int = 23) -> int:
    """Encode ``frames`` as an H.264 video (``libx264``, ``yuv420p``, preset ``ultrafast``, one thread).

    Parameters
    ----------
    path:
        The video file to write (``.mp4``, ``.avi``, ...: the container follows the suffix).
    frames:
        ``uint8`` RGB images ``(height, width, 3)``, all of the first one's size; frame ``i`` gets timestamp
        ``i / rate``. A frame of odd height or width loses its last row or column (yuv420p needs even sizes).
    rate:
        Frame rate (an ``int`` or a :class:`~fractions.Fraction`, as PyAV takes it).
    crf:
        Constant rate factor (0 lossless ... 51 worst; 23 is x264's default).

    Returns
    -------
    int
        The number of frames written (no stream is written for none).
    """
    import av

    container = av.open(str(path), mode="w")
    n = 0
    try:
        stream = None
        for n, img in enumerate(frames, start=1):
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.height, stream.width = img.shape[0] - img.shape[0] % 2, img.shape[1] - img.shape[1] % 2
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "ultrafast", "threads": "1"}
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: stream.height, : stream.width]),
                                               format="rgb24")
            frame.pts = n - 1
            for pkt in stream.encode(frame):
                container.mux(pkt)
        if stream is not None:
            for pkt in stream.encode():
                container.mux(pkt)
    finally:
        container.close()
    return n
