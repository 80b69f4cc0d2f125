"""Real-time factor and peak memory of the face-video extractors (affectflow.features.face).

Makes a synthetic talking-head-like video with PyAV (640 x 480, 25 fps, H.264): ``skimage.data.astronaut()``
moving on a Lissajous path with slowly changing brightness, and the face absent for 2 s of every 20 s. Then, each
measurement in a fresh Python process (so model loading is included and peak RSS is that run's own):

1. every extractor alone, and all four in one shared pass (:func:`extract_face_features`), at 2 Hz on the whole
   ``--minutes`` video;
2. the same at 25 Hz (every frame) on the first ``--clip-seconds`` of it: the cost per second of video does not
   depend on the length, so the RTF of the clip is the RTF of the whole video (a 10-minute 25 Hz run would take
   about 20 minutes for ``face_embedding`` alone on 2 cores);
3. peak RSS of the shared 2 Hz pass on ``--rss-minutes`` videos of two lengths (default 10 and 60 minutes): if
   frames were held in memory the longer one would need ~6x more.

RTF = processing wall time / video duration (< 1: faster than real time). Videos are cached in ``--workdir``
(default ``.bench/video``, ignored by git)::

    python benchmarks/bench_video.py                                 # 10 min, 60 s clip, RSS 10 vs 60 min
    python benchmarks/bench_video.py --minutes 2 --clip-seconds 20 --rss-minutes 2 12   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NAMES = ["face_landmarks", "head_pose", "fer", "face_embedding"]
W, H, FPS = 640, 480, 25


def make_video(path: Path, seconds: float) -> None:
    """Write the benchmark video (see the module docstring); frames are made and encoded one at a time."""
    import av
    from skimage.data import astronaut

    patch = astronaut()[0:320, 60:380].astype(np.float32)  # face ~95 px wide
    yy, xx = np.mgrid[0:H, 0:W]
    background = np.stack([60 + 40 * xx / W, 70 + 30 * yy / H, 80 + 0 * xx], axis=-1).astype(np.uint8)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as c:
        s = c.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "veryfast"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(round(seconds * FPS)):
            t = i / FPS
            img = background.copy()
            if t % 20 < 18:  # face visible 18 s of every 20 s
                x = int(160 + 150 * np.sin(2 * np.pi * t / 7))
                y = int(80 + 70 * np.sin(2 * np.pi * t / 11))
                gain = 0.9 + 0.2 * np.sin(2 * np.pi * t / 13)
                img[y : y + 320, x : x + 320] = np.clip(patch * gain, 0, 255).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    tmp.replace(path)


def video(workdir: Path, seconds: float) -> Path:
    path = workdir / f"astronaut_{seconds:g}s.mp4"
    if not path.exists():
        t0 = time.perf_counter()
        make_video(path, seconds)
        print(
            f"  made {path} ({seconds:g} s, {path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    return path


def child(names: list[str], rate_hz: float, path: str) -> None:
    """Run the extractors once (in this process) and print one JSON line: seconds, rows, peak RSS."""
    import affectflow.features.face  # noqa: F401  (registers the extractors)
    from affectflow.features.base import EXTRACTORS, MediaRecording
    from affectflow.features.face import extract_face_features
    from affectflow.io.video import video_info

    duration = video_info(path).duration
    t0, c0 = time.perf_counter(), time.process_time()
    frames = extract_face_features(
        MediaRecording(id="bench", video=Path(path)),
        [EXTRACTORS.build(n, {"rate_hz": rate_hz}) for n in names],
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB
    face = float(frames[0].iloc[:, 1:].notna().all(axis=1).mean())
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "duration": duration,
                "rows": len(frames[0]),
                "rss_mb": rss_mb,
                "face_fraction": face,
            }
        )
    )


def measure(names: list[str], rate_hz: float, path: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", ",".join(names), "--rate", str(rate_hz), "--video", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the 2 Hz RTF video")
    ap.add_argument("--clip-seconds", type=float, default=60.0, help="length of the 25 Hz RTF clip")
    ap.add_argument(
        "--rss-minutes", type=float, nargs=2, default=[10.0, 60.0], help="two lengths for peak RSS"
    )
    ap.add_argument("--workdir", type=Path, default=Path(".bench/video"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--video", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child.split(","), a.rate, a.video)
        return

    a.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"CPU cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; Python {sys.version.split()[0]}",
        flush=True,
    )
    long_v = video(a.workdir, a.minutes * 60)
    clip_v = video(a.workdir, a.clip_seconds)
    sets = [[n] for n in NAMES] + [NAMES]
    rows = []
    for rate, path in ((2.0, long_v), (25.0, clip_v)):
        for names in sets:
            r = measure(names, rate, path)
            label = names[0] if len(names) == 1 else "all four, shared pass"
            rows.append((label, rate, r))
            print(
                f"  {label:24s} {rate:4.0f} Hz on {r['duration']:6.0f} s: {r['wall']:7.1f} s, RTF "
                f"{r['wall'] / r['duration']:.3f}, peak RSS {r['rss_mb']:.0f} MB",
                flush=True,
            )

    print(
        "\nReal-time factor (wall time / video duration; < 1 = faster than real time), "
        f"{W}x{H} H.264 at {FPS} fps, {os.cpu_count()} cores"
    )
    print(
        f"{'extractor':24s} {'rate':>6s} {'video s':>8s} {'wall s':>8s} {'RTF':>7s} {'CPU RTF':>8s} "
        f"{'rows':>6s} {'face %':>6s} {'RSS MB':>7s}"
    )
    for label, rate, r in rows:
        print(
            f"{label:24s} {rate:5.0f}  {r['duration']:8.0f} {r['wall']:8.1f} {r['wall'] / r['duration']:7.3f} "
            f"{r['cpu'] / r['duration']:8.3f} {r['rows']:6d} {100 * r['face_fraction']:6.1f} {r['rss_mb']:7.0f}"
        )
    print(
        "CPU RTF = CPU seconds of the process (all threads) / video seconds: the cost, less sensitive than wall "
        f"time to other load on the machine (load average now: {os.getloadavg()[0]:.1f})."
    )
    print(f"(25 Hz rows: measured on the first {a.clip_seconds:g} s; RTF does not depend on the length.)")

    print("\nPeak RSS of the shared 2 Hz pass (all four extractors) vs video length")
    print(f"{'minutes':>8s} {'frames out':>10s} {'wall s':>8s} {'RTF':>7s} {'peak RSS MB':>12s}")
    for minutes in a.rss_minutes:
        if minutes == a.minutes:
            r = next(r for label, rate, r in rows if rate == 2.0 and label.startswith("all"))
        else:
            r = measure(NAMES, 2.0, video(a.workdir, minutes * 60))
        print(
            f"{minutes:8g} {r['rows']:10d} {r['wall']:8.1f} {r['wall'] / r['duration']:7.3f} {r['rss_mb']:12.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
