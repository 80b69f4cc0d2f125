"""Feature extraction from raw recordings (audio, face video, transcripts, physiology)."""

from affectflow.features.base import EXTRACTORS, ExtractionError, Extractor, MediaRecording

__all__ = ["EXTRACTORS", "ExtractionError", "Extractor", "MediaRecording"]
