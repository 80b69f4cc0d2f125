"""Rater fusion (mean, EWE, RAAW, lag compensation) and segment class derivation: known values, and generated
raters with a known truth (the fused trace is closer to the truth than any single rater)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from affectflow.cli.main import main
from affectflow.errors import ConfigError, ImportFormatError
from affectflow.metrics import ccc
from affectflow.raters import (
    class_thresholds,
    estimate_lags,
    ewe_weights,
    fuse,
    fuse_rater_files,
    segment_classes,
    segment_statistic,
    shift,
)
from affectflow.synthetic.latent import simulate_latent_affect
from affectflow.synthetic.raters import simulate_raters


def _truth(n=600, seed=0):
    return simulate_latent_affect(n / 2.0, seed=seed, smoothness_s=4.0, grid_rate_hz=2.0).valence[:n]


def test_known_values():
    Y = np.array([[1.0, 3.0, np.nan], [2.0, 4.0, 9.0]])
    np.testing.assert_allclose(fuse(Y, "mean").values, [2.0, 5.0])  # NaN = not rated: renormalised per step
    np.testing.assert_array_equal(shift(np.array([1.0, 2, 3, 4]), 1), [2, 3, 4, np.nan])
    np.testing.assert_array_equal(shift(np.array([1.0, 2, 3, 4]), -2), [np.nan, np.nan, 1, 2])
    x = np.sin(np.arange(50) / 3.0)
    # rater 4 is anti-correlated with the others: EWE weight 0; the other three: equal weights
    Y = np.stack([x, x, x, -x], axis=1)
    w = ewe_weights(Y)
    np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 3, 0.0], atol=1e-9)
    np.testing.assert_allclose(fuse(Y, "ewe").values, x, atol=1e-12)
    # a rater 3 steps late is found and shifted back
    Y = np.stack([x, x, shift(x, -3)], axis=1)
    assert estimate_lags(Y, 5).tolist() == [0, 0, 3]
    # RAAW standardises: gains and offsets of raters do not change the fused shape, and it is rescaled
    Y = np.stack([x, 2 * x + 1, 0.5 * x - 1], axis=1)
    g = fuse(Y, "raaw").values
    assert abs(np.corrcoef(g, x)[0, 1] - 1) < 1e-9
    assert g.mean() == pytest.approx(Y.mean(0).mean()) and g.std() == pytest.approx(Y.std(0).mean())


def test_classes_known_values():
    ids, stats = segment_statistic(np.array([0.1, 0.3, -0.5, np.nan, 0.9, 0.7]), np.array([0, 0, 1, 1, 2, 2]))
    assert ids.tolist() == [0, 1, 2] and stats == pytest.approx([0.2, -0.5, 0.8])
    assert segment_statistic(np.array([1.0, 2.0, 3.0]), np.array([4, 4, 4]), "last")[1].tolist() == [3.0]
    assert segment_classes(np.array([-0.6, -0.2, 0.0, 0.3, 0.5, np.nan]), [-0.45, -0.15, 0.15, 0.45]).tolist() == [
        0, 1, 2, 3, 4, -1]
    s = np.arange(100.0)
    th = class_thresholds(s, 5)
    assert np.bincount(segment_classes(s, th, 5)).tolist() == [20, 20, 20, 20, 20]  # equal frequency
    with pytest.raises(ConfigError, match="increasing"):
        segment_classes(s, [1.0, 0.0])
    with pytest.raises(ConfigError, match="Unknown fusion method"):
        fuse(np.zeros((3, 2)), "median")


def _closer(x, Y, method, lag):
    g = fuse(Y, method, max_lag=lag).values
    ok = np.isfinite(g)
    assert ok.mean() > 0.95
    return ccc(x[ok], g[ok])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_trace_is_closer_to_the_truth_than_any_rater(seed):
    x = _truth(seed=seed)
    # four raters with different gains, offsets and noise (one noisy), no reaction lag
    kw = dict(n_raters=4, noise=[0.25, 0.25, 0.3, 0.6], gains=[1.0, 0.8, 1.2, 1.0], offsets=[0.0, 0.1, -0.1, 0.05],
              seed=seed)
    Y = simulate_raters(x, **kw)
    best_single = max(ccc(x, Y[:, r]) for r in range(4))
    for method in ("mean", "ewe", "raaw"):
        assert _closer(x, Y, method, 0) > best_single, method
    ewe = fuse(Y, "ewe")
    assert ewe.weights[3] < ewe.weights[:3].min()  # the noisy rater counts least
    # the same raters reacting 0, 1, 2 and 3 s late (2 Hz): with lag compensation still better than any rater
    Y = simulate_raters(x, lags=[0, 2, 4, 6], **kw)
    best_single = max(ccc(x, Y[:, r]) for r in range(4))
    for method in ("mean", "ewe", "raaw"):
        assert _closer(x, Y, method, 8) > best_single, method
        assert _closer(x, Y, method, 8) > _closer(x, Y, method, 0), method  # lag compensation helps
    lags = fuse(Y, "ewe", max_lag=8).lags
    assert lags[0] == 0 and abs(lags[1] - 2) <= 1 and abs(lags[2] - 4) <= 1  # relative to the earliest rater


def test_cli_fuse_raters_files_and_classes(tmp_path, capsys):
    src = tmp_path / "raw"
    src.mkdir()
    for k in range(3):
        Y = simulate_raters(_truth(240, seed=10 + k), n_raters=3, lags=[0, 2, 4], seed=k)
        df = pd.DataFrame({"timestamp": np.arange(240) * 500, "segment_id": np.arange(240) // 20})
        for r in range(3):
            df[f"rater{r}"] = Y[:, r]
        df.loc[5, "rater1"] = np.nan
        df.to_csv(src / f"{k}.csv", index=False)
    out = tmp_path / "gold"
    assert main(["fuse-raters", str(src), str(out), "--method", "raaw", "--max-lag", "3", "--classes", "5"]) == 0
    rep = json.loads((out / "fusion.json").read_text())
    late = [r["lags_s"][2] - r["lags_s"][0] for r in rep["recordings"].values()]  # truly 2 s
    assert 1.0 <= np.mean(late) <= 3.0
    g = pd.read_csv(out / "0.csv")
    assert list(g.columns) == ["timestamp", "value", "segment_id"]
    classes = pd.concat([pd.read_csv(out / "classes" / f"{k}.csv") for k in range(3)])
    assert sorted(classes["class_id"].unique()) == [0, 1, 2, 3, 4] and len(classes) == 36
    assert len(rep["classes"]["thresholds"]) == 4
    # bad input: a clear error, nothing written
    (src / "3.csv").write_text("time,rater0\n0,1\n0,2\n")
    assert main(["fuse-raters", str(src), str(tmp_path / "gold2")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "3.csv: time must be numeric and strictly increasing" in err and not (tmp_path / "gold2").exists()
    with pytest.raises(ImportFormatError, match="does not exist"):
        fuse_rater_files(str(tmp_path / "nope"), str(tmp_path / "g3"))


def test_rater_losses_are_refused_not_silent(tmp_path, capsys):
    src = tmp_path / "raw"
    src.mkdir()
    df = pd.DataFrame({"timestamp": np.arange(40) * 500, "segment_id": np.arange(40) // 10,
                       "r0": np.linspace(0, 1, 40), "r1": np.linspace(0, 1, 40)})
    df.loc[3, "r1"] = np.inf
    df.to_csv(src / "a.csv", index=False)
    assert main(["fuse-raters", str(src), str(tmp_path / "g")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "infinite values in rater columns {'r1': 1}" in err and not (tmp_path / "g").exists()
    # four segments with two distinct statistics cannot make 4 equal-frequency classes: refused, not 2 classes
    df["r1"] = df["r0"] = np.repeat([0.0, 0.0, 1.0, 1.0], 10)
    df.to_csv(src / "a.csv", index=False)
    assert main(["fuse-raters", str(src), str(tmp_path / "g"), "--method", "mean", "--classes", "4"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "only 2 distinct values" in err and "only 2 classes could occur" in err.lower()
    assert main(["fuse-raters", str(src), str(tmp_path / "g"), "--classes", "3", "--thresholds", "0.5"]) == 2
    assert "3 classes need 2 thresholds" in " ".join(capsys.readouterr().err.split())
    with pytest.warns(Warning, match=r"Classes \[2\] of 3 have no segment"):  # given thresholds: reported
        rep = fuse_rater_files(str(src), str(tmp_path / "g"), method="mean", n_classes=3, thresholds=[0.5, 2.0])
    assert rep["classes"]["segments_per_class"] == [2, 2, 0]
    (src / "b c.csv").write_text("timestamp,r0\n0,1\n")
    with pytest.raises(ImportFormatError, match="invalid recording id"):
        fuse_rater_files(str(src), str(tmp_path / "g2"))
