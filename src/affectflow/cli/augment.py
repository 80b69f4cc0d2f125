"""CLI verb ``affectflow augment``: augmented copies of a corpus's training recordings
(:mod:`affectflow.augment.corpus`, MER 2023 MER-NOISE).

::

    affectflow augment CORPUS --audio-noise babble --snr 5:11 --video brightness,blur,rotate,cutout --copies 2 --seed 0
    affectflow augment CORPUS --audio-noise /data/musan/speech --snr 5:11
    affectflow extract CORPUS ...        # then the copies get their features like any recording
"""

from __future__ import annotations

import argparse
from affectflow.augment.audio import parse_snr
from affectflow.augment.corpus import augment_corpus
from affectflow.cli.parsers.augment import register  # noqa: F401 - re-exported: the parser lived here


def cmd_augment(args: argparse.Namespace) -> int:
    video = [v.strip() for v in args.video.split(",") if v.strip()] if args.video else None
    partitions = [p.strip() for p in args.train_partitions.split(",") if p.strip()]
    report = augment_corpus(args.corpus, audio_noise=args.audio_noise, snr=parse_snr(args.snr), video=video,
                            copies=args.copies, seed=args.seed, train_partitions=partitions,
                            n_babble=args.babble_speakers, progress=not args.quiet)
    print(report.format())
    return 0
