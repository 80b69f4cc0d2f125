"""Causal streaming inference (:class:`Streamer`) and live feature extraction (:class:`AudioStreamPredictor`)."""

from affectflow.streaming.streamer import Streamer, StreamingError

__all__ = ["Streamer", "StreamingError"]
