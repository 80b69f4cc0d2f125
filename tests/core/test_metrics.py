import audmetric
import numpy as np
import pytest

from affectflow.metrics import ccc, pearson, rmse, score_recordings


def ccc_reference(x, y):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mx, my = x.sum() / len(x), y.sum() / len(y)
    cov = ((x - mx) * (y - my)).sum() / len(x)
    vx, vy = ((x - mx) ** 2).sum() / len(x), ((y - my) ** 2).sum() / len(y)
    return 2 * cov / (vx + vy + (mx - my) ** 2)


@pytest.mark.parametrize("seed", range(5))
def test_ccc_matches_float64_reference_and_audmetric(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=200)
    p = 0.7 * y + rng.normal(scale=0.5, size=200) + 0.3
    assert ccc(y, p) == pytest.approx(ccc_reference(y, p), abs=1e-12)
    assert ccc(y, p) == pytest.approx(audmetric.concordance_cc(y, p), abs=1e-10)
    # float32 inputs are computed in float64
    assert ccc(y.astype(np.float32), p.astype(np.float32)) == pytest.approx(ccc_reference(y.astype(np.float32), p.astype(np.float32)), abs=1e-9)


def test_ccc_known_values_and_properties():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert ccc(y, y) == 1.0
    assert ccc(y, -y) == pytest.approx(-1 * 2 * 1.25 / (1.25 + 1.25 + 25))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert ccc(a, b) == pytest.approx(ccc(b, a))
    assert abs(ccc(a, b)) <= abs(pearson(a, b)) + 1e-12
    assert ccc(a, a + 1.0) < 1.0
    perm = rng.permutation(50)
    assert ccc(a[perm], b[perm]) == pytest.approx(ccc(a, b))
    # population moments: differs from the ddof=1 variant used by MuSe 2021/2022 baselines
    cov1 = np.cov(a, b)[0, 1]
    ccc_ddof1 = 2 * cov1 / (a.var(ddof=1) + b.var(ddof=1) + (a.mean() - b.mean()) ** 2)
    assert ccc(a, b) != pytest.approx(ccc_ddof1, abs=1e-6)


def test_nan_positions_are_ignored_and_degenerate_inputs():
    y = np.array([1.0, np.nan, 3.0, 4.0, 5.0])
    p = np.array([1.1, 2.0, np.nan, 4.2, 4.9])
    assert ccc(y, p) == pytest.approx(ccc_reference([1, 4, 5], [1.1, 4.2, 4.9]))
    assert np.isnan(ccc([1.0], [1.0]))
    assert ccc([1.0, 1.0], [2.0, 2.0]) == 0.0  # constant but different: only the mean term remains
    assert np.isnan(pearson([1.0, 1.0], [2.0, 3.0]))
    assert ccc([2.0, 2.0], [2.0, 2.0]) == 1.0
    with pytest.raises(ValueError, match="same length"):
        ccc([1.0, 2.0], [1.0])


def test_rmse_and_pearson_known_answers():
    assert rmse([0.0, 0.0], [3.0, 4.0]) == pytest.approx(np.sqrt(12.5))
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)


def test_pooled_differs_from_mean_of_recordings():
    # two recordings each perfectly correlated but with different offsets: pooled CCC < mean of per-recording
    t1, p1 = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])
    t2, p2 = np.array([5.0, 6.0, 7.0]), np.array([1.0, 2.0, 3.0])
    s = score_recordings([t1, t2], [p1, p2])
    assert s["ccc"] == pytest.approx(ccc(np.r_[t1, t2], np.r_[p1, p2]))
    assert s["ccc_mean"] == pytest.approx((1.0 + ccc(t2, p2)) / 2)
    assert s["pearson_mean"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(4))
def test_f1_scores_match_sklearn(seed):
    from sklearn.metrics import f1_score

    from affectflow.metrics import macro_f1, mer_score, weighted_f1

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 60)
    p = np.where(rng.random(60) < 0.6, y, rng.integers(0, 5, 60))
    assert macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    assert weighted_f1(y, p) == pytest.approx(f1_score(y, p, average="weighted", zero_division=0))
    v = rng.normal(size=60)
    assert mer_score(y, p, v, v + 1.0) == pytest.approx(weighted_f1(y, p) - 0.25)
    assert macro_f1(y, y) == 1.0
