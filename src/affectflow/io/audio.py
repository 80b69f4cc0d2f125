"""Read audio as mono float32 at a requested sampling rate, whole or streamed in blocks.

Sources
-------
- wav, flac, ogg, aiff, au, w64, caf: read with ``soundfile`` (libsndfile).
- mp3, m4a, aac, opus and the audio track of videos (mp4, avi, mkv, mov, webm, ...): decoded with PyAV
  (``av``, which bundles its own FFmpeg libraries: no system ffmpeg is needed). A file that soundfile cannot
  open is also tried with PyAV.
- samples already in memory: an :class:`AudioSignal` (``samples`` at ``sampling_rate``), read in the same
  chunks as a file, so a signal and a float WAV file of the same samples give bit-identical streams.

Every reader produces the same stream: the channels are mixed down to mono as their **arithmetic mean**
(:math:`x[n] = \\frac{1}{C}\\sum_c x_c[n]`), then resampled with a streaming soxr resampler (quality ``"HQ"``)
when the file's rate differs from the requested one. The stream is decoded in chunks, so :func:`read_audio`
(everything at once) and :func:`iter_audio_blocks` (bounded memory) see bit-identical samples.

Timeline: sample 0 is the first decoded sample. For compressed tracks the encoder delay signalled by the
container is dropped by FFmpeg, and samples past the duration declared by the stream (the encoder's tail
padding, e.g. up to one AAC frame) are cut, so a 3.000 s AAC track reads as 3.000 s.

Errors: a missing, empty, corrupt, truncated or unsupported file, or a video without an audio track, raises
:class:`affectflow.errors.ExtractionError` whose message names the file and the problem.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectflow.errors import ExtractionError

#: Extensions read with soundfile first (others go straight to PyAV).
SOUNDFILE_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".w64",
        ".caf",
        ".rf64",
    }
)
#: Source samples decoded per chunk (about one second).
_CHUNK = 1 << 16


@dataclass(frozen=True)
class AudioSignal:
    """Audio held in memory, read like a file by :func:`read_audio` and :func:`iter_audio_blocks`.

    Parameters
    ----------
    samples:
        ``(n,)`` or ``(n, channels)`` samples. Floating point is taken as is (nominally in [-1, 1], as
        soundfile reads a file); ``int16`` / ``int32`` are scaled by ``1 / 2**15`` / ``1 / 2**31``, as
        soundfile scales such a file. Channels are mixed to mono as their mean, like a file's.
    sampling_rate:
        Samples per second (Hz) of ``samples``.
    name:
        How error messages name the signal (default ``"signal"``).

    Raises
    ------
    ExtractionError
        No samples, more than two dimensions, non-finite values, another dtype, or a rate that is not a positive
        whole number.
    """

    samples: np.ndarray
    sampling_rate: int
    name: str = "signal"

    def __post_init__(self) -> None:
        x = np.asarray(self.samples)
        what = f"Audio signal {self.name!r}"
        sr = self.sampling_rate
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer, float)) or not (
                math.isfinite(sr) and sr > 0 and float(sr) == int(sr)):
            raise ExtractionError(f"{what}: `sampling_rate` must be a positive whole number of Hz, got {sr!r}.")
        if x.ndim not in (1, 2):
            raise ExtractionError(f"{what}: samples must have shape (n,) or (n, channels), got {x.shape}.")
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        elif x.dtype == np.int32:
            x = (x.astype(np.float64) / 2147483648.0).astype(np.float32)
        elif np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32, copy=False)
        else:
            raise ExtractionError(f"{what}: samples must be float, int16 or int32, got dtype {x.dtype}.")
        if x.shape[0] == 0 or (x.ndim == 2 and x.shape[1] == 0):
            raise ExtractionError(f"{what} contains no audio samples.")
        if not np.isfinite(x).all():
            raise ExtractionError(f"{what} contains NaN or infinite samples.")
        object.__setattr__(self, "samples", x)
        object.__setattr__(self, "sampling_rate", int(sr))

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[0] / self.sampling_rate

    def chunks(self) -> Iterator[np.ndarray]:
        """Mono float32 chunks of ``_CHUNK`` source samples (the chunks a file of these samples is read in)."""
        for i in range(0, self.samples.shape[0], _CHUNK):
            yield _mono(self.samples[i:i + _CHUNK])



@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says about its audio.

    Attributes
    ----------
    path:
        The file.
    sample_rate:
        Native sampling rate in Hz.
    channels:
        Number of channels.
    duration:
        Duration in seconds as declared by the header (``nan`` if the container does not say).
    backend:
        ``"soundfile"`` or ``"pyav"``.
    codec:
        Codec or subtype name (e.g. ``"PCM_16"``, ``"aac"``, ``"mp3float"``).
    """

    path: Path
    sample_rate: int
    channels: int
    duration: float
    backend: str
    codec: str


@dataclass(frozen=True)
class AudioBlock:
    """One block of a streamed recording.

    Attributes
    ----------
    start:
        Index of the block's first sample in the whole recording (at ``sample_rate``).
    samples:
        Mono samples, float32, shape ``(n,)``.
    sample_rate:
        Sampling rate in Hz.
    is_last:
        Whether this is the final block (the recording has ``start + len(samples)`` samples).
    """

    start: int
    samples: np.ndarray
    sample_rate: int
    is_last: bool

    @property
    def time(self) -> float:
        """Start time of the block in seconds."""
        return self.start / self.sample_rate


# ------------------------------------------------------------------------------------------------ public API
def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of an audio or video file.

    Parameters
    ----------
    path:
        Audio file or video with an audio track.

    Returns
    -------
    AudioInfo
        Native rate, channel count, declared duration, backend and codec.

    Raises
    ------
    ExtractionError
        The file is missing, empty, unreadable or has no audio track.
    """
    return _probe(_check_file(path))


def audio_duration(path: str | os.PathLike, limit_s: float | None = None) -> float:
    """Duration of a file's audio in seconds, from its header (no decoding).

    Parameters
    ----------
    path:
        Audio file or video with an audio track.
    limit_s:
        When the container declares no duration, counting stops as soon as more than ``limit_s`` seconds have
        been decoded (the value returned is then that count, just over ``limit_s``): a small compressed file
        holding hours of audio is refused after decoding a little more than the limit, not all of it.

    Returns
    -------
    float
        Seconds. For compressed formats the decoded length can differ from the header by a few milliseconds;
        when the container declares no duration the track is decoded and its samples counted.
    """
    info = audio_info(path)
    if math.isfinite(info.duration):
        return info.duration
    n = 0
    stop = None if limit_s is None else limit_s * info.sample_rate
    for c in _decode(Path(path), None):
        n += len(c)
        if stop is not None and n > stop:
            break
    return n / info.sample_rate


def read_audio(path: str | os.PathLike | AudioSignal, sample_rate: int | None = 16000) -> np.ndarray:
    """Read a whole file (or an :class:`AudioSignal`) as mono float32.

    Parameters
    ----------
    path:
        Audio file (wav, flac, mp3, ...) or video (mp4, avi, mkv, ...) whose first audio track is read, or an
        :class:`AudioSignal`.
    sample_rate:
        Output rate in Hz; ``None`` keeps the file's native rate.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, float32, nominally in [-1, 1]; ``n ≈ duration * sample_rate``.

    Raises
    ------
    ExtractionError
        Missing, empty, corrupt, truncated or unsupported file, or no audio track.
    """
    p = _check_source(path)
    chunks = list(_decode(p, sample_rate))
    x = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if x.size == 0:
        raise ExtractionError(f"{_describe(p)} contains no audio samples.")
    return x


def iter_audio_blocks(
    path: str | os.PathLike | AudioSignal,
    sample_rate: int,
    block_s: float,
    overlap_s: float = 0.0,
) -> Iterator[AudioBlock]:
    """Stream a file as overlapping blocks of mono float32 samples; memory is bounded by the block length.

    Block ``j`` holds samples ``[j * H, j * H + L)`` with ``L = round(block_s * sample_rate)`` and
    ``H = L - round(overlap_s * sample_rate)``, so consecutive blocks share ``overlap_s`` seconds. The last
    block may be shorter; a block is only produced if it holds samples that the previous one did not.
    Concatenating ``block.samples[:H]`` of every block but the last, and the whole last block, gives
    :func:`read_audio` exactly.

    Parameters
    ----------
    path:
        Audio file or video, or an :class:`AudioSignal`.
    sample_rate:
        Output rate in Hz.
    block_s:
        Block length in seconds (> 0).
    overlap_s:
        Overlap of consecutive blocks in seconds (0 <= overlap_s < block_s).

    Yields
    ------
    AudioBlock
        ``start`` (first sample index), ``samples`` (float32, ``(n,)``), ``sample_rate`` and ``is_last``.

    Raises
    ------
    ValueError
        ``block_s``/``overlap_s`` out of range.
    ExtractionError
        As :func:`read_audio`; an error found mid-file is raised when the decoder reaches it.
    """
    n_block = int(round(block_s * sample_rate))
    n_overlap = int(round(overlap_s * sample_rate))
    if n_block <= 0 or n_overlap < 0 or n_overlap >= n_block:
        raise ValueError(
            f"Need block_s > 0 and 0 <= overlap_s < block_s; got block_s={block_s}, overlap_s={overlap_s}."
        )
    hop = n_block - n_overlap
    p = _check_source(path)
    buf = np.zeros(0, np.float32)
    start = 0
    emitted = False
    for chunk in _decode(p, sample_rate):
        buf = np.concatenate([buf, chunk]) if buf.size else chunk
        # a full block is "not last" only when samples beyond it exist (they start the next block)
        while buf.size > n_block:
            yield AudioBlock(start, buf[:n_block].copy(), sample_rate, False)
            emitted = True
            buf = buf[hop:]
            start += hop
    if buf.size == 0 and not emitted:
        raise ExtractionError(f"{_describe(p)} contains no audio samples.")
    if not emitted or buf.size > n_overlap:
        yield AudioBlock(start, buf, sample_rate, True)


# ------------------------------------------------------------------------------------------------- internals
def _check_source(source: str | os.PathLike | AudioSignal) -> Path | AudioSignal:
    """An :class:`AudioSignal` as it is, a path checked by :func:`_check_file`."""
    return source if isinstance(source, AudioSignal) else _check_file(source)


def _describe(source: Path | AudioSignal) -> str:
    """``Audio file '<path>'`` or ``Audio signal '<name>'`` for error messages."""
    if isinstance(source, AudioSignal):
        return f"Audio signal {source.name!r}"
    return f"Audio file {str(source)!r}"


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise ExtractionError(f"Audio file {str(p)!r} does not exist.")
    if not p.is_file():
        raise ExtractionError(f"Audio path {str(p)!r} is not a file.")
    if p.stat().st_size == 0:
        raise ExtractionError(f"Audio file {str(p)!r} is empty (0 bytes).")
    return p


def _probe(p: Path) -> AudioInfo:
    """Header of ``p``: soundfile for its extensions (falling back to PyAV), PyAV otherwise."""
    if p.suffix.lower() in SOUNDFILE_EXTENSIONS:
        try:
            return _sf_info(p)
        except ExtractionError:
            raise
        except Exception as sf_err:  # noqa: BLE001 - not readable by libsndfile: try FFmpeg, report both reasons
            try:
                return _av_info(p)
            except ExtractionError as av_err:
                raise ExtractionError(f"{av_err} (soundfile: {sf_err})") from sf_err
    return _av_info(p)


def _decode(p: Path | AudioSignal, sample_rate: int | None) -> Iterator[np.ndarray]:
    """Mono float32 chunks of ``p`` (a checked file or a signal) at ``sample_rate`` (native if ``None``)."""
    if isinstance(p, AudioSignal):
        yield from _resampled(p.chunks(), p.sampling_rate, sample_rate)
        return
    info = _probe(p)
    if info.backend == "soundfile":
        _check_wav_length(p, info)
        chunks = _sf_chunks(p)
    else:
        chunks = _av_chunks(p, info)
    yield from _resampled(chunks, info.sample_rate, sample_rate)


def _resampled(chunks: Iterator[np.ndarray], sr_in: int, sr_out: int | None) -> Iterator[np.ndarray]:
    if sr_out is None or int(sr_out) == int(sr_in):
        yield from chunks
        return
    import soxr

    rs = soxr.ResampleStream(sr_in, int(sr_out), 1, dtype="float32", quality="HQ")
    for c in chunks:
        y = rs.resample_chunk(c)
        if y.size:
            yield y
    y = rs.resample_chunk(np.zeros(0, np.float32), last=True)
    if y.size:
        yield y


def _mono(x: np.ndarray) -> np.ndarray:
    """(n, channels) -> (n,) float32 channel mean."""
    if x.ndim == 1:
        return x.astype(np.float32, copy=False)
    if x.shape[1] == 1:
        return np.ascontiguousarray(x[:, 0], dtype=np.float32)
    return x.mean(axis=1, dtype=np.float64).astype(np.float32)


# soundfile -------------------------------------------------------------------------------------------------
def _sf_info(p: Path) -> AudioInfo:
    import soundfile as sf

    i = sf.info(str(p))
    if i.samplerate <= 0 or i.channels <= 0:
        raise ExtractionError(
            f"Audio file {str(p)!r} has an invalid header (rate {i.samplerate}, {i.channels} ch)."
        )
    return AudioInfo(
        p, int(i.samplerate), int(i.channels), i.frames / i.samplerate, "soundfile", str(i.subtype)
    )


def _sf_chunks(p: Path) -> Iterator[np.ndarray]:
    import soundfile as sf

    try:
        with sf.SoundFile(str(p)) as f:
            while True:
                x = f.read(_CHUNK, dtype="float32", always_2d=True)
                if x.shape[0] == 0:
                    break
                yield _mono(x)
    except sf.LibsndfileError as e:
        raise ExtractionError(f"Audio file {str(p)!r} is corrupt or truncated: {str(e).rstrip('.')}.") from e


def _check_wav_length(p: Path, info: AudioInfo) -> None:
    """libsndfile silently shortens a truncated WAV: compare the ``data`` chunk size with the bytes there."""
    if p.suffix.lower() not in {".wav", ".wave"}:
        return
    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        block_align = None
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return
            cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(size)
                if len(fmt) >= 14:
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                f.seek(size % 2, 1)
                continue
            if cid == b"data":
                present = p.stat().st_size - f.tell()
                if size in (0, 0xFFFFFFFF) or not block_align:  # streaming placeholder: no declared length
                    return
                if size > present:
                    declared = size // block_align
                    raise ExtractionError(
                        f"Audio file {str(p)!r} is truncated: its header declares {declared} samples "
                        f"({declared / info.sample_rate:.3f} s) but the file holds only "
                        f"{present // block_align} "
                        f"({present // block_align / info.sample_rate:.3f} s)."
                    )
                return
            f.seek(size + size % 2, 1)


# PyAV ------------------------------------------------------------------------------------------------------
def _av_open(p: Path):
    import av

    try:
        return av.open(str(p))
    except av.error.FFmpegError as e:
        raise ExtractionError(
            f"Cannot read {str(p)!r}: unsupported format or corrupt/truncated file ({e})."
        ) from e


def _stream_duration(c, s) -> float:
    """Duration declared by the audio stream itself (``nan`` if none)."""
    if s.duration is not None and s.time_base is not None:
        return float(s.duration * s.time_base)
    return float("nan")


def _av_info(p: Path) -> AudioInfo:
    c = _av_open(p)
    try:
        if not c.streams.audio:
            kinds = sorted({s.type for s in c.streams}) or ["none"]
            raise ExtractionError(f"{str(p)!r} has no audio stream (streams: {', '.join(kinds)}).")
        s = c.streams.audio[0]
        rate = int(s.rate or s.codec_context.sample_rate or 0)
        if rate <= 0:
            raise ExtractionError(f"{str(p)!r}: the audio stream declares no sampling rate.")
        dur = _stream_duration(c, s)
        if not math.isfinite(dur) and c.duration is not None:
            dur = c.duration / 1_000_000
        return AudioInfo(p, rate, int(s.layout.nb_channels) or 1, dur, "pyav", s.codec_context.name)
    finally:
        c.close()


def _av_chunks(p: Path, info: AudioInfo) -> Iterator[np.ndarray]:
    """Decoded mono chunks at the native rate.

    Samples past the duration the audio stream declares are the encoder's tail padding and are dropped, unless
    they exceed ``tol`` (then the header is taken to be wrong and everything is kept). A track that decodes to
    clearly less than the declared duration (more than 1 s and 5 % short) is reported as truncated.
    """
    import av

    c = _av_open(p)
    try:
        s = c.streams.audio[0]
        declared = _stream_duration(c, s)
        limit = round(declared * info.sample_rate) if math.isfinite(declared) and declared > 0 else None
        tol = max(8192, int(0.2 * info.sample_rate))
        conv = None
        n = 0  # samples emitted
        pending: list[np.ndarray] = []
        held: list[np.ndarray] = []  # samples beyond ``limit``, dropped at the end unless more than ``tol``
        held_n = 0

        def take(frames) -> None:
            for g in frames:
                y = g.to_ndarray()  # (channels, n) planar float32
                pending.append(
                    y.mean(axis=0, dtype=np.float64).astype(np.float32) if y.shape[0] > 1 else y[0]
                )

        def flush() -> Iterator[np.ndarray]:
            nonlocal pending, n, held, held_n, limit
            if not pending:
                return
            out = np.concatenate(pending)
            pending = []
            if limit is not None:
                room = max(0, limit - n)
                if room:
                    head, out = out[:room], out[room:]
                    n += head.size
                    yield head
                if out.size:
                    held.append(out)
                    held_n += out.size
                if held_n > tol:  # far past the declared end: the header is wrong, keep everything
                    limit = None
                    out = np.concatenate(held)
                    held, held_n = [], 0
                else:
                    return
            n += out.size
            if out.size:
                yield out

        try:
            for frame in c.decode(s):
                if frame.sample_rate != info.sample_rate:
                    raise ExtractionError(
                        f"{str(p)!r}: the audio sampling rate changes mid-stream "
                        f"({info.sample_rate} -> {frame.sample_rate} Hz); convert the file first."
                    )
                if conv is None:
                    conv = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate)
                take(conv.resample(frame))
                if sum(x.size for x in pending) >= _CHUNK:
                    yield from flush()
            if conv is not None:
                take(conv.resample(None))
        except av.error.FFmpegError as e:
            raise ExtractionError(
                f"Audio track of {str(p)!r} is corrupt or truncated: decoding failed after "
                f"{n / info.sample_rate:.3f} s ({e})."
            ) from e
        yield from flush()
        if limit is not None and limit - n > max(info.sample_rate, 0.05 * limit):
            raise ExtractionError(
                f"Audio track of {str(p)!r} is truncated: its header declares {declared:.3f} s but only "
                f"{n / info.sample_rate:.3f} s could be decoded."
            )
    finally:
        c.close()
