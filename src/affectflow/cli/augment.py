"""CLI verb ``affectflow augment``: augmented copies of a corpus's training recordings
(:mod:`affectflow.augment.corpus`, MER 2023 MER-NOISE).

::

    affectflow augment CORPUS --audio-noise babble --snr 5:11 --video brightness,blur,rotate,cutout --copies 2 --seed 0
    affectflow augment CORPUS --audio-noise /data/musan/speech --snr 5:11
    affectflow extract CORPUS ...        # then the copies get their features like any recording
"""

from __future__ import annotations

import argparse
from typing import Any

from affectflow.cli import argtypes


def cmd_augment(args: argparse.Namespace) -> int:
    from affectflow.augment.audio import parse_snr
    from affectflow.augment.corpus import augment_corpus

    video = [v.strip() for v in args.video.split(",") if v.strip()] if args.video else None
    partitions = [p.strip() for p in args.train_partitions.split(",") if p.strip()]
    report = augment_corpus(args.corpus, audio_noise=args.audio_noise, snr=parse_snr(args.snr), video=video,
                            copies=args.copies, seed=args.seed, train_partitions=partitions,
                            n_babble=args.babble_speakers, progress=not args.quiet)
    print(report.format())
    return 0


def register(sub: Any) -> None:
    """Add ``augment`` to the ``affectflow`` subparsers."""
    a = sub.add_parser("augment", help="Add augmented copies (speech noise, image transforms) of the training "
                       "recordings to a media corpus.",
                       description="For every training recording with media, add COPIES new recordings "
                       "<id>+aug<seed>-<k> (same subject, partition and labels, augmented_from=<id>) whose audio is "
                       "mixed with speech noise at an SNR from --snr (babble of other training speakers, or files of "
                       "a folder such as MUSAN speech) and whose video frames are transformed. Seeded; a seed is used "
                       "once. Then run `affectflow extract` to compute their features.")
    a.add_argument("corpus", help="corpus folder with media.csv")
    a.add_argument("--audio-noise", metavar="babble|DIR", help="noise source: babble (default source of speech "
                   "noise: other training speakers) or a folder of audio files; omit to leave audio as it is")
    a.add_argument("--snr", default="5:11", help="SNR in dB: a value or LOW:HIGH[:STEP] (default 5:11, 1 dB steps)")
    a.add_argument("--video", metavar="T1,T2", help="image transforms: brightness, solarize, blur, rotate, cutout")
    a.add_argument("--copies", type=argtypes.positive_int, default=1, help="copies per training recording (default 1)")
    a.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    a.add_argument("--train-partitions", default="train", help="partitions to copy (default train)")
    a.add_argument("--babble-speakers", type=argtypes.positive_int, default=3, help="speakers mixed into one babble (default 3)")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_augment)
