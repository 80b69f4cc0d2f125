"""CLI of deployment: ``predict RUN --media ...`` (prediction from media files), ``export``, ``stream``.

``predict`` itself is defined in :mod:`affectflow.cli.main`; :func:`add_media_arguments` adds the media options to
it and :func:`predict_media_files` runs them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from affectflow.errors import AffectflowError


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


def _recordings_from_args(args: argparse.Namespace) -> list[tuple[str, dict[str, Path]]]:
    from affectflow.corpus.media import AUDIO_EXTS, VIDEO_EXTS

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
            recs.append((first.stem, files))
    ids = [r[0] for r in recs]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        # same file names in different folders: number them
        seen: dict[str, int] = {}
        out = []
        for rid, files in recs:
            if rid in dups:
                seen[rid] = seen.get(rid, 0) + 1
                rid = f"{rid}-{seen[rid]}"
            out.append((rid, files))
        recs = out
    return recs


def predict_media_files(args: argparse.Namespace) -> int:
    """``affectflow predict RUN --media ...``: one CSV and one plot per recording under a new output folder."""
    from affectflow.corpus.corpus import atomic_write, check_name
    from affectflow.errors import RunError
    from affectflow.inference.media import plot_prediction, predict_media, required_inputs
    from affectflow.runs import Run, new_subdir

    if args.recordings or args.partitions or args.corpus:
        raise AffectflowError("Give either media files (--media/--audio/--physio/--transcript/--manifest) or a "
                              "corpus selection (--corpus/--recordings/--partitions), not both.")
    run = Run(args.run)
    needs = required_inputs(run, seed=args.seed)  # fails early for runs on imported features
    recs = _recordings_from_args(args)
    if not recs:
        raise AffectflowError("No recordings given.")
    safe = []
    for rid, files in recs:
        try:
            check_name("recording id", rid)
        except AffectflowError:
            rid = "".join(c if c.isalnum() or c in "_.+-" else "_" for c in rid).lstrip("_.+-") or "recording"
        safe.append((rid, files))
    if args.out:
        out = Path(args.out)
        if out.exists() and any(out.iterdir()):
            raise RunError(f"Output folder {str(out)!r} exists and is not empty; choose a new one.")
        out.mkdir(parents=True, exist_ok=True)
    else:
        out = new_subdir(run.path, "predictions-media")
    print(f"Run {run.path} needs: " + ", ".join(f"{k} ({', '.join(v)})" for k, v in needs.items()))
    for rid, files in safe:
        t0 = time.perf_counter()
        df = predict_media(run, files, seed=args.seed, device=args.device,
                           progress=_Bar(rid, args.quiet), recording_id="media")
        csv = out / f"{rid}.csv"
        atomic_write(csv, lambda p, df=df: df.to_csv(p, index=False, float_format="%.6g"))
        png = plot_prediction(df, out / f"{rid}.png", title=f"{rid} ({run.path.name})")
        print(f"{rid}: {len(df)} steps ({df['time'].iloc[-1] if len(df) else 0:.1f} s) in "
              f"{time.perf_counter() - t0:.1f} s -> {csv}, {png}")
    print(f"Predictions for {len(safe)} recording(s) written to {out}")
    return 0


# ---------------------------------------------------------------------------------------------------- verbs
def register(sub) -> None:
    """Add the deployment verbs (``export``, ``stream``) to the ``affectflow`` parser."""
    for name in ("export", "stream"):
        fn = globals().get(f"_register_{name}")
        if fn is not None:
            fn(sub)
