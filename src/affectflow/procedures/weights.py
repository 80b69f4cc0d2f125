"""Fusion weights on the probability simplex, chosen by a grid search on devel.

The candidates are every weight vector ``w`` with ``n`` entries that are multiples of ``step`` and sum to 1
(``C(n − 1 + 1/step, n − 1)`` points: 231 for three runs at step 0.05). The grid contains the simplex's vertices
(one run with weight 1), so the chosen weights score at least as well on the selection data as the best single
run — a guarantee a continuous solver started elsewhere does not give, and the reason a grid is used. Ties go to the
candidate closest to equal weights, then to the first in grid order (deterministic).
"""

from __future__ import annotations

import itertools
from math import comb
from typing import Callable

import numpy as np

from affectflow.errors import ConfigError

MAX_CANDIDATES = 20_000


def simplex_grid(n: int, step: float) -> np.ndarray:
    """All ``(G, n)`` weight vectors with entries in ``{0, step, 2·step, …, 1}`` summing to 1 (vertices included)."""
    if n < 1:
        raise ConfigError("Fusion needs at least one run.")
    m = round(1.0 / step)
    if not 0 < step <= 1 or abs(m * step - 1.0) > 1e-9:
        raise ConfigError(f"The weight grid step must divide 1 (e.g. 0.05, 0.1, 0.25), got {step!r}.")
    size = comb(m + n - 1, n - 1)
    if size > MAX_CANDIDATES:
        raise ConfigError(
            f"A weight grid with step {step} over {n} runs has {size} points (more than {MAX_CANDIDATES}); use a "
            "larger step (e.g. --step 0.1 or 0.2) or fuse fewer runs."
        )
    out = []
    # compositions of m into n non-negative parts (stars and bars), in lexicographic order
    for bars in itertools.combinations(range(m + n - 1), n - 1):
        parts, prev = [], -1
        for b in bars:
            parts.append(b - prev - 1)
            prev = b
        parts.append(m + n - 2 - prev)
        out.append(parts)
    return np.asarray(out, dtype=np.float64) / m


def grid_search(score: Callable[[np.ndarray], float], n: int, step: float) -> tuple[np.ndarray, float, int]:
    """The weights maximising ``score(w)`` over :func:`simplex_grid`; returns ``(w, best score, candidates)``.

    NaN scores never win. Ties (within 1e-12) go to the weights closest to uniform, then the first in grid order.
    """
    grid = simplex_grid(n, step)
    uniform = np.full(n, 1.0 / n)
    best_w, best_s, best_d = None, -np.inf, np.inf
    for w in grid:
        s = float(score(w))
        if not np.isfinite(s):
            continue
        d = float(np.abs(w - uniform).sum())
        if s > best_s + 1e-12 or (abs(s - best_s) <= 1e-12 and d < best_d - 1e-12):
            best_w, best_s, best_d = w, s, d
    if best_w is None:
        raise ConfigError("No fusion weights give a finite score on the selection partition (are its labels empty?).")
    return best_w, best_s, len(grid)
