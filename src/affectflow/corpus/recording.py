"""One recording's raw inputs (media files), as the corpus lists them and the extractors read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class MediaRecording:
    """Raw inputs of one recording; any subset may be present.

    Attributes
    ----------
    id:
        Recording id.
    audio:
        Audio file (wav, flac, mp3) or ``None``; a video's audio track is used when ``audio`` is ``None``.
    video:
        Video file (mp4, avi, mkv), or a folder of numbered frame images (``00001.jpg``, ...; see
        :func:`affectflow.io.video.iter_image_folder`), or ``None``.
    physio:
        Physiological signals: CSV (time column or a sampling rate), EDF, or a WFDB record (``.hea``) or ``None``.
    transcript:
        Transcript: utterance-level (start, end, text) or word-level (start, end, word) as CSV/JSON, or ``None``.
    duration:
        Duration in seconds if known.
    video_fps:
        Frame rate of the video an image folder ``video`` comes from (needed for image folders; ignored for files).
    """

    id: str
    audio: Path | None = None
    video: Path | None = None
    physio: Path | None = None
    transcript: Path | None = None
    duration: float | None = None
    video_fps: float | None = None

    def audio_source(self) -> Path | None:
        """The file to read audio from: ``audio``, else the video's audio track."""
        if self.audio is not None:
            return self.audio
        return self.video if self.video is not None and not Path(self.video).is_dir() else None
