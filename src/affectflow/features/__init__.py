"""Feature extraction from raw recordings (audio, face video, transcripts, physiology).

Importing this package registers every built-in extractor in :data:`EXTRACTORS` (the modules import their heavy
libraries only when an extractor runs): ``affectflow extract --list-extractors`` lists them.
"""

from affectflow.features.base import EXTRACTORS, ExtractionError, Extractor, MediaRecording
from affectflow.features import audio, crops, face, physio, text  # noqa: E402,F401  (registration)

__all__ = ["EXTRACTORS", "ExtractionError", "Extractor", "MediaRecording"]
