"""Causal streaming inference (:class:`Streamer`), live input (:class:`AudioStreamPredictor`,
:class:`LivePredictor`) and the replay of an audio file as live input (:func:`replay_file`)."""

from affectflow.streaming.live import AudioStreamPredictor, LivePredictor
from affectflow.streaming.replay import replay_file
from affectflow.streaming.streamer import Streamer, StreamingError

__all__ = ["AudioStreamPredictor", "LivePredictor", "Streamer", "StreamingError", "replay_file"]
