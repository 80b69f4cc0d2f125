"""Real-time factor of the audio extractors, and peak memory of ``egemaps`` on a short vs a long recording.

Builds ``--minutes`` (default 10) minutes of speech with espeak-ng (varied voices, pitch, speed and loudness,
0.2-1.0 s pauses; 22.05 kHz, so the reader's resampling to 16 kHz is part of the timing), or, without
espeak-ng, a synthetic speech-like signal (harmonic syllables with pauses). The long file (``--long-minutes``,
default 60) is the short one repeated, written in a stream.

Each measurement runs in a fresh Python process: the extractor is built, warmed up on a 3 s file (imports,
model loading, the first openSMILE run), then timed on the recording. Reported per row: wall and CPU seconds,
RTF = wall seconds / audio seconds (below 1 = faster than real time), and the process's peak resident memory
(``VmHWM`` of /proc/self/status, including the interpreter, numpy/pandas/torch and the models).

``ssl`` uses a randomly initialised wav2vec2 of **base size** (12 layers, 768 wide, 94 M parameters: the
compute of wav2vec2-base/HuBERT-base; weights do not change the cost) saved with ``save_pretrained`` to a
temporary folder (``--ssl-size tiny`` for a 4-layer 64-wide model). Run::

    python benchmarks/bench_audio.py                       # 10 min for the RTF table, 10 vs 60 min for memory
    python benchmarks/bench_audio.py --minutes 2 --long-minutes 12 --ssl-size tiny    # quick

Timings depend on the machine's load: other processes on the same cores inflate wall time (the CPU column is
less affected); the script prints the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "I was really happy about the news this morning, it made my whole day.",
    "The meeting went on for hours and nobody listened to a single word I said.",
    "Honestly, I do not know what to think about it anymore.",
    "We finally won the game in the last minute, everybody was cheering!",
    "She told me quietly that her father had been ill for a long time.",
    "Could you please explain why the delivery is three weeks late again?",
    "The garden looks beautiful in spring, with all the flowers coming out.",
    "I am so tired of waiting, this is absolutely unacceptable.",
    "Let me think for a moment. Yes, I believe that is the right answer.",
    "They laughed and laughed until nobody could breathe anymore.",
]
VOICES = ["en-us", "en-us+f3", "en-us+m3", "en+f2", "en-us+m7", "en+f4"]

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from pathlib import Path
    from affectflow.features.base import EXTRACTORS, MediaRecording
    import affectflow.features.audio  # noqa: F401  (registers the extractors)
    from affectflow.io.audio import audio_duration, read_audio
    name, params, warm, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    if name == "read_audio":
        t0, c0 = time.perf_counter(), time.process_time()
        n = read_audio(path, 16000).size
        frames = 0
    else:
        ext = EXTRACTORS.build(name, params)
        ext.extract(MediaRecording(id="warm", audio=Path(warm)))
        t0, c0 = time.perf_counter(), time.process_time()
        df = ext.extract(MediaRecording(id="bench", audio=Path(path)))
        frames = len(df)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # VmHWM: peak RSS of this process image (ru_maxrss would include the parent's peak, inherited across exec)
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
    rss = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"wall": wall, "cpu": cpu, "rss_mb": rss, "frames": frames, "audio_s": audio_duration(path)}
    print(json.dumps(out))
    """
)


def espeak_speech(out: Path, minutes: float, tmp: Path) -> str:
    """Write ``minutes`` of espeak-ng speech at 22.05 kHz (synthetic without espeak-ng); return what it is."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    target = minutes * 60
    if shutil.which("espeak-ng") is None:
        sr = 16000
        with sf.SoundFile(out, "w", sr, 1, subtype="PCM_16") as f:
            n, total = 0, int(target * sr)
            while n < total:  # a voiced syllable (6 harmonics, f0 100-250 Hz, 0.1-0.4 s), then a pause
                t = np.arange(int(rng.uniform(0.1, 0.4) * sr)) / sr
                ph = 2 * np.pi * np.cumsum(np.full(t.size, rng.uniform(100, 250)) * (1 - 0.2 * t)) / sr
                syl = (
                    sum(np.sin(k * ph) / k for k in range(1, 7)) * np.hanning(t.size) * rng.uniform(0.05, 0.3)
                )
                pause = 1e-3 * rng.standard_normal(int(rng.uniform(0.05, 0.5) * sr))
                chunk = np.concatenate([syl, pause]).astype(np.float32)[: total - n]
                f.write(chunk)
                n += chunk.size
        return "synthetic syllables (espeak-ng not installed)"
    # render a pool of utterances, then draw from it until the target length
    pool = []
    for i in range(24):
        w = tmp / f"utt{i}.wav"
        cmd = [
            "espeak-ng",
            "-v",
            VOICES[i % len(VOICES)],
            "-p",
            str(int(rng.integers(20, 80))),
            "-s",
            str(int(rng.integers(120, 220))),
            "-a",
            str(int(rng.integers(60, 180))),
            "-w",
            str(w),
            " ".join(rng.choice(SENTENCES, size=2, replace=False)),
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        x, sr = sf.read(w, dtype="float32")
        pool.append(x)
    with sf.SoundFile(out, "w", sr, 1, subtype="PCM_16") as f:
        n, total = 0, int(target * sr)
        while n < total:
            x = pool[int(rng.integers(len(pool)))]
            pause = (1e-3 * rng.standard_normal(int(rng.uniform(0.2, 1.0) * sr))).astype(np.float32)
            chunk = np.concatenate([x, pause])[: total - n]
            f.write(chunk)
            n += chunk.size
    return "espeak-ng speech (22.05 kHz, 6 voices, varied pitch/speed/loudness)"


def repeat_file(src: Path, dst: Path, times: int) -> None:
    """Write ``src`` ``times`` times in a row into ``dst`` without holding more than one minute in memory."""
    import soundfile as sf

    info = sf.info(str(src))
    with sf.SoundFile(dst, "w", info.samplerate, info.channels, subtype=info.subtype) as out:
        for _ in range(times):
            with sf.SoundFile(src) as f:
                for blk in f.blocks(blocksize=60 * info.samplerate, dtype="int16"):
                    out.write(blk)


def make_ssl_model(d: Path, size: str) -> None:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = (
        Wav2Vec2Config()
        if size == "base"
        else Wav2Vec2Config(
            hidden_size=64,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=128,
            conv_dim=(32,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4,
        )
    )
    Wav2Vec2Model(cfg).eval().save_pretrained(d)
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(d)


def run_child(name: str, params: dict, warm: Path, path: Path) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, name, json.dumps(params), str(warm), str(path)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the RTF recording (default 10)")
    ap.add_argument(
        "--long-minutes", type=int, default=60, help="long recording for the memory check (default 60)"
    )
    ap.add_argument("--ssl-size", choices=["base", "tiny", "none"], default="base")
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep the generated audio in")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_audio_"))
    work = args.keep or tmp
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        short = work / f"speech_{args.minutes:g}min.wav"
        t0 = time.perf_counter()
        kind = espeak_speech(short, args.minutes, tmp)
        print(f"audio: {kind}; {args.minutes:g} min written in {time.perf_counter() - t0:.1f} s")
        warm = work / "warm.wav"
        import soundfile as sf

        x, sr = sf.read(short, frames=int(3 * sf.info(str(short)).samplerate), dtype="float32")
        sf.write(warm, x, sr)

        rows = []
        cases: list[tuple[str, dict]] = [
            ("read_audio", {}),
            ("egemaps", {"rate_hz": 2.0}),
            ("egemaps", {"rate_hz": 25.0}),
            ("egemaps_lld", {"rate_hz": 2.0}),
            ("logmel", {"rate_hz": 25.0}),
            ("vad", {"rate_hz": 2.0}),
        ]
        if args.ssl_size != "none":
            model_dir = tmp / f"w2v_{args.ssl_size}"
            make_ssl_model(model_dir, args.ssl_size)
            cases.append(
                ("ssl", {"rate_hz": 2.0, "model_dir": str(model_dir), "layers": "last", "device": "cpu"})
            )
            cases.append(
                (
                    "ssl",
                    {
                        "rate_hz": 2.0,
                        "model_dir": str(model_dir),
                        "layers": [4, 8, 12] if args.ssl_size == "base" else [1, 2, 3],
                        "layer_pooling": "concat",
                        "device": "cpu",
                    },
                )
            )
        for name, params in cases:
            r = run_child(name, params, warm, short)
            label = ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("model_dir", "device"))
            if name == "ssl":
                label += f", wav2vec2-{args.ssl_size} (random)"
            rows.append((name, label, r))
            print(
                f"  {name:<12} {label:<62} wall {r['wall']:7.2f} s  RTF {r['wall'] / r['audio_s']:.4f}",
                flush=True,
            )

        print("\nReal-time factor on", f"{args.minutes:g} min ({kind}):")
        print(
            f"| {'extractor':<12} | {'parameters':<62} | frames | wall s | CPU s | RTF (wall) | peak RSS MB |"
        )
        print(f"|{'-' * 14}|{'-' * 64}|-------:|-------:|------:|-----------:|------------:|")
        for name, label, r in rows:
            print(
                f"| {name:<12} | {label:<62} | {r['frames']:>6} | {r['wall']:6.1f} | {r['cpu']:5.1f} | "
                f"{r['wall'] / r['audio_s']:10.4f} | {r['rss_mb']:11.0f} |"
            )

        long = work / f"speech_{args.long_minutes}min.wav"
        reps = max(1, round(args.long_minutes / args.minutes))
        repeat_file(short, long, reps)
        print(f"\nPeak memory of egemaps (rate 2 Hz), {args.minutes:g} vs {reps * args.minutes:g} min:")
        print("| recording | frames | wall s | RTF | peak RSS MB |")
        print("|----------:|-------:|-------:|----:|------------:|")
        for path in (short, long):
            r = run_child("egemaps", {"rate_hz": 2.0}, warm, path)
            print(
                f"| {r['audio_s'] / 60:6.1f} min | {r['frames']:>6} | {r['wall']:6.1f} | "
                f"{r['wall'] / r['audio_s']:.4f} "
                f"| {r['rss_mb']:11.0f} |"
            )
        r = run_child("read_audio", {}, warm, long)
        print(
            f"(for contrast, read_audio of the whole {r['audio_s'] / 60:.0f} min file at 16 kHz: peak RSS "
            f"{r['rss_mb']:.0f} MB)"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
