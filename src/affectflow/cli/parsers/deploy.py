"""Parsers of deployment: the media options of ``predict``, ``export`` and ``stream`` (handlers in
:mod:`affectflow.cli.deploy`)."""

from __future__ import annotations

import argparse
from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import handler

DEPLOY = "affectflow.cli.deploy"


def add_media_arguments(r: argparse.ArgumentParser) -> None:
    """Add ``--media/--audio/--physio/--transcript/--manifest`` to the ``predict`` parser."""
    g = r.add_argument_group(
        "prediction from media files (instead of a corpus)",
        "Extract exactly the run's feature sets (with the extractor parameters stored with its features) from new "
        "media files and predict them. Repeat an option for several recordings: the N-th --audio/--physio/"
        "--transcript belongs to the N-th --media (give each option either once per recording or not at all), "
        "or list recordings in --manifest. Writes <out>/<id>.csv (time, one column per target) and <out>/<id>.png.",
    )
    g.add_argument("--media", action="append", metavar="FILE",
                   help="a video (mp4, avi, mkv, mov, webm; its sound track serves audio features) or an audio file")
    g.add_argument("--audio", action="append", metavar="FILE", help="audio file (wav, flac, mp3, ...)")
    g.add_argument("--physio", action="append", metavar="FILE", help="physiology file (CSV with a time column, EDF, WFDB .hea)")
    g.add_argument("--transcript", action="append", metavar="FILE", help="transcript (CSV/JSON words or utterances)")
    g.add_argument("--manifest", metavar="CSV",
                   help="CSV with columns id and any of video, audio, physio, transcript (paths relative to the CSV)")


def has_media_arguments(args: argparse.Namespace) -> bool:
    """Whether ``predict`` was asked to predict media files."""
    return any(getattr(args, k, None) for k in ("media", "audio", "physio", "transcript", "manifest"))


def register(sub: Any) -> None:
    """Add the deployment verbs (``export``, ``stream``) to the ``affectflow`` parser."""
    register_export(sub)
    register_stream(sub)


def register_export(sub: Any) -> None:
    """Add ``export``."""
    e = sub.add_parser(
        "export",
        help="Export a run's selected checkpoint (ONNX with dynamic batch/time axes + a JSON of what a consumer needs).",
        description="Export a run's selected checkpoint as model.onnx (inputs mask, x.<set>, feature_mask.<set>; "
        "output y) plus model.json (feature sets with columns, rates and extractor parameters, normaliser "
        "statistics, targets, label rate, causal or not).",
    )
    e.add_argument("run", help="run directory")
    e.add_argument("--format", default="onnx", help="export format (onnx)")
    e.add_argument("--out", help="new output folder (default: <run>/export-<timestamp>)")
    e.add_argument("--seed", type=int, help="export this seed's checkpoint (default: the selected seed)")
    e.set_defaults(func=handler(f"{DEPLOY}:cmd_export"))


def register_stream(sub: Any) -> None:
    """Add ``stream``."""
    s = sub.add_parser(
        "stream",
        help="Replay an audio/video file through a causal run live, printing predictions as they come.",
        description="Replay the sound of FILE in real time (or as fast as possible with --fast) through live "
        "feature extraction and the causal streaming model, and print each label step's prediction as soon as "
        "it is known. The run must be causal and its feature sets computable from audio (eGeMAPS, LLDs, "
        "log-mel); with --allow-missing its other feature sets are fed as missing.",
    )
    s.add_argument("run", help="run directory of a causal run")
    s.add_argument("--input", required=True, help="audio file, or a video with a sound track")
    s.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    s.add_argument("--chunk", type=argtypes.positive_float, default=0.1, help="seconds of audio per pushed chunk (default 0.1)")
    s.add_argument("--block-frames", type=argtypes.positive_int, default=1,
                   help="compute audio features in blocks of N frames: less CPU, N-1 frames more delay (default 1)")
    s.add_argument("--allow-missing", action="store_true",
                   help="feed the run's non-audio feature sets as missing instead of refusing")
    s.add_argument("--out", help="also write the predictions to this CSV (new file) and a plot beside it (.png)")
    s.add_argument("--seed", type=int, help="use this seed's checkpoint (default: the selected seed)")
    s.set_defaults(func=handler(f"{DEPLOY}:cmd_stream"))
