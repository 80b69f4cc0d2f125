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
from affectflow.fsutil import child_path, is_safe_name, out_folder
from affectflow.inference.media import predict_media, required_inputs
from affectflow.io.audio import iter_audio_blocks
from affectflow.predictions import write_prediction_csv
from affectflow.runs import Run
from affectflow.streaming import AudioStreamPredictor


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


def unique_recording_ids(recs: list[tuple[str, dict[str, Path]]]) -> tuple[list[tuple[str, dict[str, Path]]],
                                                                           list[str]]:
    """Make the recording ids of ``recs`` safe file names (:func:`affectflow.fsutil.check_name`'s rule) and
    distinct; return the new list and one note per id that had to change.

    An unsafe id (``a b``) has its other characters replaced by ``_``; ids that are then equal (``a b.wav`` and
    ``a_b.wav``, or the same file name in two folders) are numbered ``<id>-1``, ``<id>-2``, ... in the given order,
    so that every recording gets its own output file (nothing is overwritten silently).
    """
    safe = []
    for rid, files in recs:
        new = rid if is_safe_name(rid) else (
            "".join(c if c.isalnum() and c.isascii() or c in "_.+-" else "_" for c in rid).lstrip("_.+-")[:190]
            or "recording")
        safe.append((rid, new, files))
    names = [n for _, n, _ in safe]
    dups = {n for n in names if names.count(n) > 1}
    seen: dict[str, int] = {}
    out, notes = [], []
    for rid, new, files in safe:
        if new in dups:
            seen[new] = seen.get(new, 0) + 1
            new = f"{new}-{seen[new]}"
        if new != rid:
            first = next(iter(files.values()))
            notes.append(f"{str(first)!r} is recording {new!r}")
        out.append((new, files))
    return out, notes


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
    if args.out:
        out = out_folder(args.out, what="output folder")
    else:
        out = run.new_output_dir("predictions-media")
    print(f"Run {run.path} needs: " + ", ".join(f"{k} ({', '.join(v)})" for k, v in needs.items()))
    for rid, files in safe:
        t0 = time.perf_counter()
        df = predict_media(run, files, seed=args.seed, device=args.device,
                           progress=_Bar(rid, args.quiet), recording_id="media")
        csv = write_prediction_csv(child_path(out, rid, ".csv", kind="recording id"), df,
                                   plot_title=f"{rid} ({run.path.name})")
        print(f"{rid}: {len(df)} steps ({df['time'].iloc[-1] if len(df) else 0:.1f} s) in "
              f"{time.perf_counter() - t0:.1f} s -> {csv}, {csv.with_suffix('.png')}")
    print(f"Predictions for {len(safe)} recording(s) written to {out}")
    return 0


# ---------------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    out = export_run(args.run, args.out, format=args.format, seed=args.seed)
    print(f"Exported to {out}: {out / 'model.onnx'} and {out / 'model.json'}")
    return 0


# ---------------------------------------------------------------------------------------------------- stream
def stream_file(run, path, *, fast: bool = False, chunk_s: float = 0.1, allow_missing: bool = False,
                seed: int | None = None, on_step=None, block_frames: int = 1) -> pd.DataFrame:
    """Replay the audio of ``path`` through :class:`~affectflow.streaming.AudioStreamPredictor`; call
    ``on_step(step, latency_s)`` for every label step as it is emitted (``latency_s``: wall time since the step's
    audio was due, in real-time mode) and return all steps as a DataFrame."""
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
    return pd.DataFrame(rows, columns=["time", *live.targets])


def cmd_stream(args: argparse.Namespace) -> int:
    if args.out and Path(args.out).exists():
        raise AffectflowError(f"{args.out!r} exists; choose a new file.")

    def show(step, lag):
        vals = "  ".join(f"{k}={v:+.3f}" for k, v in step.items() if k != "time")
        extra = "" if args.fast else f"  (emitted {lag:.1f} s after its time)"
        print(f"{step['time']:8.2f} s  {vals}{extra}", flush=True)

    t0 = time.perf_counter()
    df = stream_file(args.run, args.input, fast=args.fast, chunk_s=args.chunk, allow_missing=args.allow_missing,
                     seed=args.seed, on_step=show, block_frames=args.block_frames)
    dur = df["time"].iloc[-1] if len(df) else 0.0
    print(f"{len(df)} steps ({dur:.1f} s of audio) in {time.perf_counter() - t0:.1f} s")
    if args.out:
        out = write_prediction_csv(Path(args.out), df, plot_title=f"stream of {Path(args.input).name}")
        print(f"Written {out} and {out.with_suffix('.png')}")
    return 0
