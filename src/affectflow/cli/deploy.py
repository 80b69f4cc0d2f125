"""CLI of deployment: ``predict RUN --media ...`` (prediction from media files), ``export``, ``stream``.

``predict`` itself is defined in :mod:`affectflow.cli.core`; the parsers (and
:func:`~affectflow.cli.parsers.deploy.add_media_arguments`, the media options of ``predict``) are in
:mod:`affectflow.cli.parsers.deploy`; :func:`predict_media_files` runs the media options.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from affectflow.cli.parsers.deploy import (  # noqa: F401 - re-exported: they lived here
    add_media_arguments,
    has_media_arguments,
    register,
)
from affectflow.corpus.media import AUDIO_EXTS, VIDEO_EXTS, recording_id_of
from affectflow.errors import AffectflowError
from affectflow.export import export_run
from affectflow.fsutil import out_folder
from affectflow.inference.media import (  # noqa: F401 - unique_recording_ids re-exported: it lived here
    predict_media_folder,
    required_inputs,
    unique_recording_ids,
)
from affectflow.runs import Run
from affectflow.streaming.replay import replay_file
from affectflow.streaming.replay import replay_file as stream_file  # noqa: F401 - the old name, for one release


class _Bar:
    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.last = label, quiet, -1

    def __call__(self, fraction: float, message: str) -> None:
        if self.quiet:
            return
        pct = int(fraction * 100)
        if pct != self.last:
            self.last = pct
            print(f"  {self.label}: {pct:3d}% {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- predict
def _recordings_from_args(args: argparse.Namespace) -> list[tuple[str, dict[str, Path]]]:
    recs: list[tuple[str, dict[str, Path]]] = []
    if args.manifest:
        m = Path(args.manifest)
        if not m.is_file():
            raise AffectflowError(f"Manifest {str(m)!r} does not exist.")
        df = pd.read_csv(m, dtype=str, keep_default_na=False)
        if "id" not in df.columns:
            raise AffectflowError(f"Manifest {str(m)!r} has no 'id' column; expected id and any of video, audio, "
                                  "physio, transcript.")
        for row in df.to_dict("records"):
            files = {}
            for k in ("video", "audio", "physio", "transcript"):
                v = (row.get(k) or "").strip()
                if v:
                    p = Path(v)
                    files[k] = p if p.is_absolute() else m.parent / p
            recs.append((str(row["id"]), files))
    lists = {k: list(getattr(args, k) or []) for k in ("media", "audio", "physio", "transcript")}
    n = max(len(v) for v in lists.values())
    if n:
        bad = {k: len(v) for k, v in lists.items() if v and len(v) != n}
        if bad:
            raise AffectflowError(
                f"Give each media option once per recording or not at all: {n} recordings, but "
                + ", ".join(f"--{k} {c} time(s)" for k, c in bad.items()) + ". Use --manifest for mixed sets."
            )
        for i in range(n):
            files: dict[str, Path] = {}
            if lists["media"]:
                p = Path(lists["media"][i])
                ext = p.suffix.lower()
                if ext in VIDEO_EXTS:
                    files["video"] = p
                elif ext in AUDIO_EXTS:
                    files["audio"] = p
                else:
                    raise AffectflowError(
                        f"--media {str(p)!r}: unknown extension {ext!r}; videos: {list(VIDEO_EXTS)}, audio: "
                        f"{list(AUDIO_EXTS)}."
                    )
            for k in ("audio", "physio", "transcript"):
                if lists[k]:
                    files[k] = Path(lists[k][i])
            first = next(iter(files.values()))
            recs.append((recording_id_of(first), files))  # <id>/video.mp4 -> <id>, clip.mp4 -> clip
    return recs


def predict_media_files(args: argparse.Namespace) -> int:
    """``affectflow predict RUN --media ...``: one CSV and one plot per recording under a new output folder."""
    if args.recordings or args.partitions or args.corpus:
        raise AffectflowError("Give either media files (--media/--audio/--physio/--transcript/--manifest) or a "
                              "corpus selection (--corpus/--recordings/--partitions), not both.")
    run = Run(args.run)
    needs = required_inputs(run, seed=args.seed)  # fails early for runs on imported features
    recs = _recordings_from_args(args)
    if not recs:
        raise AffectflowError("No recordings given.")
    safe, notes = unique_recording_ids(recs)
    if notes:
        print(f"{len(notes)} recording name(s) changed to safe, distinct file names: " + "; ".join(notes))
    out = out_folder(args.out, what="output folder") if args.out else run.new_output_dir("predictions-media")
    print(f"Run {run.path} needs: " + ", ".join(f"{k} ({', '.join(v)})" for k, v in needs.items()))
    for r in predict_media_folder(run, safe, out, seed=args.seed, device=args.device,
                                  progress=lambda rid: _Bar(rid, args.quiet)):
        print(f"{r.id}: {r.steps} steps ({r.duration_s:.1f} s) in {r.seconds:.1f} s -> {r.csv}, "
              f"{r.csv.with_suffix('.png')}")
    print(f"Predictions for {len(safe)} recording(s) written to {out}")
    return 0


# ---------------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    out = export_run(args.run, args.out, format=args.format, seed=args.seed)
    print(f"Exported to {out}: {out / 'model.onnx'} and {out / 'model.json'}")
    return 0


# ---------------------------------------------------------------------------------------------------- stream
def cmd_stream(args: argparse.Namespace) -> int:

    def show(step, lag):
        vals = "  ".join(f"{k}={v:+.3f}" for k, v in step.items() if k != "time")
        extra = "" if args.fast else f"  (emitted {lag:.1f} s after its time)"
        print(f"{step['time']:8.2f} s  {vals}{extra}", flush=True)

    t0 = time.perf_counter()
    df = replay_file(args.run, args.input, fast=args.fast, chunk_s=args.chunk, allow_missing=args.allow_missing,
                     seed=args.seed, on_step=show, block_frames=args.block_frames, out=args.out)
    dur = df["time"].iloc[-1] if len(df) else 0.0
    print(f"{len(df)} steps ({dur:.1f} s of audio) in {time.perf_counter() - t0:.1f} s")
    if args.out:
        print(f"Written {args.out} and {Path(args.out).with_suffix('.png')}")
    return 0
