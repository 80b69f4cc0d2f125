"""The simplex grid and the weight search."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from affectflow.errors import ConfigError
from affectflow.procedures.weights import grid_search, simplex_grid


def test_simplex_grid():
    g = simplex_grid(3, 0.05)
    assert g.shape == (comb(22, 2), 3) == (231, 3)
    assert np.allclose(g.sum(1), 1) and (g >= 0).all()
    assert len({tuple(np.round(r, 9)) for r in g}) == len(g)
    for v in np.eye(3):  # the single runs are candidates
        assert (np.abs(g - v).sum(1) < 1e-12).any()
    assert np.allclose(simplex_grid(1, 0.5), [[1.0]])
    assert np.allclose(simplex_grid(2, 0.5), [[0, 1], [0.5, 0.5], [1, 0]])
    with pytest.raises(ConfigError, match="must divide 1"):
        simplex_grid(2, 0.3)
    with pytest.raises(ConfigError, match="larger step"):
        simplex_grid(12, 0.01)


def test_grid_search_finds_the_optimum_and_breaks_ties_towards_uniform():
    target = np.array([0.2, 0.5, 0.3])
    w, s, n = grid_search(lambda w: -np.sum((w - target) ** 2), 3, 0.1)
    assert np.allclose(w, target) and s == pytest.approx(0) and n == 66
    w, _, _ = grid_search(lambda w: 1.0, 3, 0.25)  # all equal: closest to uniform
    assert np.allclose(w, [0.25, 0.25, 0.5]) or np.allclose(w, [0.25, 0.5, 0.25]) or np.allclose(w, [0.5, 0.25, 0.25])
    w, _, _ = grid_search(lambda w: np.nan if w[0] > 0 else w[1], 2, 0.5)
    assert np.allclose(w, [0, 1])
    with pytest.raises(ConfigError, match="finite score"):
        grid_search(lambda w: np.nan, 2, 0.5)
