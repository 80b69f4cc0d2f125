"""Causal streaming inference (:class:`Streamer`) and live input (:class:`AudioStreamPredictor`,
:class:`LivePredictor`)."""

from affectflow.streaming.live import AudioStreamPredictor, LivePredictor
from affectflow.streaming.streamer import Streamer, StreamingError

__all__ = ["AudioStreamPredictor", "LivePredictor", "Streamer", "StreamingError"]
