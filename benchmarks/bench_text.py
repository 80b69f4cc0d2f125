"""Real-time factor of ASR and of the text extractors on synthetic speech with a known transcript.

Builds about ``--minutes`` minutes of English speech with espeak-ng (one sentence per call, 0.6 s of silence
between sentences, so the utterance-level transcript's times are exact), then times:

- ``asr``: :func:`affectflow.io.transcript.transcribe` (faster-whisper tiny.en, int8, greedy) on the whole
  file, and the share of reference words it recovers (bag-of-words recall, punctuation and case ignored);
- ``word_vad``, ``sentence_embedding``, ``word_embedding`` on the reference transcript at 2 Hz, cold (first
  call in the process, model loading included) and warm (second call).

RTF = processing seconds / audio seconds (below 1 = faster than real time). Run::

    python benchmarks/bench_text.py --minutes 10

Without espeak-ng the ASR row is skipped and the extractors run on a transcript of the same text (timed at 150
words per minute).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJECTS = [
    "I",
    "My sister",
    "The team",
    "Our neighbour",
    "The old teacher",
    "Everyone at work",
    "My best friend",
]
VERBS = [
    "was really happy about",
    "felt terribly sad about",
    "got angry about",
    "was calm about",
    "was excited about",
    "felt afraid of",
    "laughed about",
    "complained about",
    "was proud of",
    "worried about",
]
OBJECTS = [
    "the news this morning",
    "the long meeting",
    "the beautiful garden",
    "the broken car",
    "the surprise party",
    "the exam results",
    "the rainy weekend",
    "the new job",
    "the lost keys",
    "the wonderful holiday",
    "the noisy street",
    "the delicious dinner",
]
TAILS = [
    "",
    " and told everybody",
    " for a while",
    " because it mattered",
    " but said nothing",
    " and then went home",
]


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` pseudo-random emotional sentences (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}."
        for _ in range(n)
    ]


def build_speech(folder: Path, minutes: float, espeak: str) -> tuple[Path, Path, float]:
    """Render sentences until ``minutes`` of audio; return (wav, transcript csv, duration s)."""
    rate, gap = 22050, 0.6
    chunks, rows, t = [], [], 0.0
    i = 0
    texts = sentences(2000)
    tmp = folder / "s.wav"
    while t < minutes * 60:
        text = texts[i % len(texts)]
        subprocess.run(
            [espeak, "-v", "en-us", "-s", "150", "-w", str(tmp), text], check=True, capture_output=True
        )
        with wave.open(str(tmp)) as w:
            assert w.getframerate() == rate
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        rows.append({"start": round(t, 4), "end": round(t + x.size / rate, 4), "text": text})
        chunks += [x, np.zeros(int(gap * rate), dtype="<i2")]
        t += x.size / rate + gap
        i += 1
    wav = folder / "speech.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(chunks).tobytes())
    csv = folder / "speech.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return wav, csv, t


def build_transcript_only(folder: Path, minutes: float) -> tuple[Path, float]:
    """Utterance-level transcript of the same sentences at 150 words/min with 0.6 s gaps."""
    rows, t = [], 0.0
    for text in sentences(2000):
        if t >= minutes * 60:
            break
        d = len(text.split()) / 2.5
        rows.append({"start": t, "end": t + d, "text": text})
        t += d + 0.6
    csv = folder / "speech.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv, t


def recall(reference: list[str], hypothesis: list[str]) -> float:
    """Bag-of-words recall of reference words in the hypothesis (counts matched with multiplicity)."""
    from collections import Counter

    norm = lambda ws: Counter(w.strip(".,!?;:\"'").lower() for w in ws)  # noqa: E731
    ref, hyp = norm(reference), norm(hypothesis)
    return sum(min(c, hyp[w]) for w, c in ref.items()) / max(1, sum(ref.values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of speech (default 10)")
    ap.add_argument("--device", default="cpu", help="torch device for the embeddings (default cpu)")
    ap.add_argument("--no-asr", action="store_true", help="skip ASR")
    args = ap.parse_args()

    import torch

    import affectflow.features.text  # noqa: F401  (registers the text extractors)
    from affectflow.features import EXTRACTORS, MediaRecording
    from affectflow.io.transcript import read_transcript, transcribe

    rows = []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        espeak = shutil.which("espeak-ng")
        t0 = time.perf_counter()
        if espeak:
            wav, csv, dur = build_speech(folder, args.minutes, espeak)
        else:
            wav, (csv, dur) = None, build_transcript_only(folder, args.minutes)
        ref = read_transcript(csv)
        print(
            f"speech: {dur:.1f} s ({dur / 60:.2f} min), {len(ref)} words, "
            f"{ref['utterance'].nunique()} utterances;"
            f" built in {time.perf_counter() - t0:.1f} s; espeak-ng: {'yes' if espeak else 'no'}; "
            f"torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}"
        )
        if wav is not None and not args.no_asr:
            t0 = time.perf_counter()
            hyp = transcribe(wav)
            el = time.perf_counter() - t0
            rc = recall(ref["word"].tolist(), hyp["word"].tolist())
            rows.append(
                {
                    "step": "asr (tiny.en int8, incl. load)",
                    "seconds": el,
                    "rtf": el / dur,
                    "note": f"{len(hyp)} words, word recall {rc:.3f}",
                }
            )
        rec = MediaRecording(id="bench", transcript=csv, duration=dur)
        for name, params in [
            ("word_vad", {}),
            ("sentence_embedding", {"device": args.device}),
            ("word_embedding", {"device": args.device}),
        ]:
            ex = EXTRACTORS.build(name, params)
            for run in ("cold", "warm"):
                t0 = time.perf_counter()
                out = ex.extract(rec)
                el = time.perf_counter() - t0
                filled = out[ex.columns()[0]].notna().mean()
                rows.append(
                    {
                        "step": f"{name} ({run})",
                        "seconds": el,
                        "rtf": el / dur,
                        "note": f"{out.shape[0]}x{out.shape[1] - 1}, {filled:.0%} frames filled",
                    }
                )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(table.to_string(index=False, formatters={"seconds": "{:.2f}".format, "rtf": "{:.4f}".format}))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
