"""Parser of ``affectflow augment`` (handler in :mod:`affectflow.cli.augment`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import handler


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
    a.set_defaults(func=handler("affectflow.cli.augment:cmd_augment"))
