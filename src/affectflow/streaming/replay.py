"""Replay an audio file through a causal run as if it were live (``affectflow stream``): the file is read in
chunks, fed to :class:`~affectflow.streaming.live.AudioStreamPredictor` in real time (or as fast as possible), and
every label step is reported as it is emitted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from affectflow.errors import AffectflowError
from affectflow.io.audio import iter_audio_blocks
from affectflow.predictions import write_prediction_csv
from affectflow.streaming.live import AudioStreamPredictor


def replay_file(run, path, *, fast: bool = False, chunk_s: float = 0.1, allow_missing: bool = False,
                seed: int | None = None, on_step=None, block_frames: int = 1,
                out: str | os.PathLike | None = None) -> pd.DataFrame:
    """Replay the audio of ``path`` through :class:`~affectflow.streaming.AudioStreamPredictor`; call
    ``on_step(step, latency_s)`` for every label step as it is emitted (``latency_s``: wall time since the step's
    audio was due, in real-time mode) and return all steps as a DataFrame (``time`` then one column per target).

    With ``out``, the steps are also written there as the prediction CSV
    (:func:`affectflow.predictions.write_prediction_csv`, with its PNG); ``out`` must not exist (checked first)."""
    if out is not None and Path(out).exists():
        raise AffectflowError(f"{str(out)!r} exists; choose a new file.")
    if out is not None and not Path(out).parent.is_dir():
        raise AffectflowError(f"The folder of {str(out)!r} does not exist; create it or choose another file.")
    if not Path(path).is_file():
        raise AffectflowError(f"Input file {str(path)!r} does not exist.")
    live = AudioStreamPredictor(run, seed=seed, allow_missing=allow_missing, block_frames=block_frames)
    sr = live.sample_rate
    rows = []
    t0 = time.perf_counter()
    fed = 0
    try:
        blocks = iter_audio_blocks(Path(path), sr, max(chunk_s, 0.01))
        for blk in blocks:
            x = blk.samples
            fed += x.size
            if not fast:
                due = fed / sr
                wait = due - (time.perf_counter() - t0)
                if wait > 0:
                    time.sleep(wait)
            for step in live.push(x, sr):
                rows.append(step)
                if on_step:
                    on_step(step, time.perf_counter() - t0 - step["time"])
    except AffectflowError:
        raise
    except Exception as e:  # noqa: BLE001 - unreadable media is a user error
        raise AffectflowError(f"Cannot read audio from {str(path)!r}: {type(e).__name__}: {e}") from e
    for step in live.flush():
        rows.append(step)
        if on_step:
            on_step(step, time.perf_counter() - t0 - step["time"])
    df = pd.DataFrame(rows, columns=["time", *live.targets])
    if out is not None:
        write_prediction_csv(Path(out), df, plot_title=f"stream of {Path(path).name}")
    return df
