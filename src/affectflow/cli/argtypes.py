"""Argument types that check numeric ranges when the command line is parsed.

Every numeric option of ``affectflow`` uses one of these as its argparse ``type=``, so that ``nan``, ``inf``,
zero or negative values where they make no sense are refused before any work, with argparse's one-line error
(``affectflow fuse: error: argument --step: must be a number in (0, 1], got 'nan'``) and exit code 2::

    p.add_argument("--step", type=argtypes.unit_interval, default=0.05)
    p.add_argument("--workers", type=argtypes.positive_int, default=1)
    p.add_argument("--folds", type=argtypes.int_at_least(2), default=5)

Floats must be finite (``nan`` and ``inf`` are refused everywhere); integers are parsed by ``int`` (no ``1.5``).
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _float(text: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def int_at_least(lo: int) -> Callable[[str], int]:
    """An integer ``>= lo``."""

    def parse(text: str) -> int:
        v = _int(text)
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {lo}, got {text!r}")
        return v

    parse.__name__ = f"int>={lo}"
    return parse


def int_between(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in ``[lo, hi]``."""

    def parse(text: str) -> int:
        v = _int(text)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be a whole number between {lo} and {hi}, got {text!r}")
        return v

    parse.__name__ = f"int in [{lo}, {hi}]"
    return parse


#: An integer >= 1 (workers, threads, epochs, batch sizes, window lengths...).
positive_int = int_at_least(1)
#: An integer >= 0.
nonneg_int = int_at_least(0)
#: Any integer (seeds).
any_int = _int


def positive_float(text: str) -> float:
    """A finite number > 0 (durations, rates, learning rates)."""
    v = _float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    """A finite number >= 0."""
    v = _float(text)
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return v


def unit_interval(text: str) -> float:
    """A finite number in (0, 1] (grid steps)."""
    v = _float(text)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return v


def open_fraction(text: str) -> float:
    """A finite number in (0, 1) (split fractions)."""
    v = _float(text)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1, got {text!r}")
    return v
