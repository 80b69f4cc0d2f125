"""MER 2023 import: labels, utterance- and frame-level features, the seeded stratified devel split, errors;
import -> train -> submit -> read back with the importer."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectflow.cli.main import main
from affectflow.corpus.mer import import_mer, stratified_split
from affectflow.errors import ImportFormatError
from affectflow.synthetic.mer import generate_mer, mer_ceiling

SMALL = dict(n_train=60, n_test=(20, 10, 0), frames=(3, 6), utt_dim=6, frame_dim=4)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    out = tmp_path_factory.mktemp("mer") / "gen"
    return out, generate_mer(out, **SMALL)


def test_stratified_split_is_seeded_stratified_and_order_free():
    names = [f"n{i:03d}" for i in range(100)]
    classes = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    dev = stratified_split(names, classes, 0.2, seed=7)
    counts = Counter(c for n, c in zip(names, classes) if n in dev)
    assert counts == {"a": 10, "b": 6, "c": 4}
    assert dev == stratified_split(names[::-1], classes[::-1], 0.2, seed=7)  # file order does not matter
    assert dev != stratified_split(names, classes, 0.2, seed=8)
    assert stratified_split(["x", "y"], ["a", "b"], 0.2, seed=0) == set()  # a class of one stays in train


def test_import_labels_features_and_devel_split(layout, tmp_path):
    src, rec = layout
    corpus, report = import_mer(src, tmp_path / "c", frame_rates={"frames": 5.0}, progress=False)
    parts = corpus.recordings["partition"].value_counts().to_dict()
    train = pd.read_csv(src / "train-label.csv").set_index("name")
    per_class = train["discrete"].value_counts()
    n_devel = sum(min(max(round(0.2 * n), 1), n - 1) if n >= 2 else 0 for n in per_class)
    assert parts == {"train": 60 - n_devel, "devel": n_devel, "test1": 20, "test2": 10}
    clips = corpus.clips().set_index("recording")
    assert clips.loc[train.index, "discrete"].tolist() == train["discrete"].tolist()
    np.testing.assert_allclose(clips.loc[train.index, "valence"], train["valence"])
    n = train.index[0]
    utt = corpus.read_features("utt", n)
    assert corpus.feature_set("utt").rate_hz is None and utt["time"].tolist() == [0.0]
    np.testing.assert_allclose(utt.iloc[0, 1:], np.load(src / "features" / "utt" / f"{n}.npy"), rtol=1e-6)
    fr = corpus.feature_set("frames")
    a = np.load(src / "features" / "frames" / f"{n}.npy")
    frames = corpus.read_features("frames", n)
    assert fr.rate_hz == 5.0 and len(frames) == len(a)
    np.testing.assert_allclose(frames["time"], np.arange(len(a)) / 5.0)
    assert corpus.recording(n)["duration"] == pytest.approx(len(a) / 5.0)
    assert corpus.meta["devel_split"]["seed"] == 0 and any("stratified" in w for w in report.warnings)


def _copy(src, dst) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_errors_list_files_and_write_nothing(layout, tmp_path):
    src = _copy(layout[0], tmp_path / "src")
    lab = pd.read_csv(src / "train-label.csv")
    lab.loc[3, "valence"] = 7.5
    lab.to_csv(src / "train-label.csv", index=False)
    name = lab.loc[5, "name"]
    np.save(src / "features" / "utt" / f"{name}.npy", np.zeros(3, np.float32))
    with pytest.raises(ImportFormatError) as e:
        import_mer(src, tmp_path / "c", progress=False)
    msg = str(e.value)
    assert "valence outside [-5, 5]" in msg and f"{name}.npy" in msg and "no frame rate" in msg
    assert "nothing was written" in msg
    assert not (tmp_path / "c").exists() and not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def test_missing_feature_files_are_reported_not_dropped(layout, tmp_path):
    src = _copy(layout[0], tmp_path / "src")
    gone = sorted((src / "features" / "frames").glob("*.npy"))[:3]
    for f in gone:
        f.unlink()
    corpus, report = import_mer(src, tmp_path / "c", frame_rates={"frames": 5.0}, progress=False)
    assert report.counts["clips without frames"] == 3
    assert len(corpus.recordings) == 90 and not corpus.has_features("frames", gone[0].stem)


def test_cli_import_train_submit_reads_back(layout, tmp_path):
    src, rec = layout
    c = tmp_path / "c"
    assert main(["import-mer", str(src), str(c), "--frame-rate", "frames=5", "-q"]) == 0
    assert main(["train", "--corpus", str(c), "--runs-dir", str(tmp_path / "runs"), "-q", "--set", "data.task=clip",
                 "--set", "data.targets=[discrete,valence]", "--set", "data.features=[utt,frames]",
                 "--set", "data.test_partitions=[test1,test2]", "--set", "training.seeds=[1]",
                 "--set", "training.epochs=2", "--set", "training.loss=mse", "--set", "model.d_model=8",
                 "--set", "model.d_fc=4"]) == 0
    run = next((tmp_path / "runs").iterdir())
    assert main(["submit", str(run), "--format", "mer2023", "--out", str(tmp_path / "sub"), "-q"]) == 0
    sub = pd.read_csv(tmp_path / "sub" / "test1.csv")
    assert list(sub.columns) == ["name", "discrete", "valence"] and len(sub) == 20
    pred = pd.read_csv(run / "predictions" / "test1" / "clips.csv")
    assert sub["discrete"].tolist() == pred["discrete"].tolist()
    # round trip: the submission is a valid MER label file for the importer
    back = _copy(src, tmp_path / "back")
    shutil.copy(tmp_path / "sub" / "test1.csv", back / "test1-label.csv")
    corpus, _ = import_mer(back, tmp_path / "c2", frame_rates={"frames": 5.0}, progress=False)
    clips = corpus.clips().set_index("recording").loc[sub["name"]]
    assert clips["discrete"].tolist() == sub["discrete"].tolist()
    np.testing.assert_allclose(clips["valence"], sub["valence"])
    # the ceiling is the MER score of truth vs observed labels
    truth = pd.read_csv(src / "ground_truth.csv")
    obs = pd.read_csv(src / "test1-label.csv")
    assert mer_ceiling(truth, obs) == pytest.approx(rec["ceiling"]["test1"])
    assert mer_ceiling(truth, truth.copy())["mer_score"] == pytest.approx(1.0)


def test_generated_acoustic_layers_are_complementary_and_leave_the_other_sets_alone(tmp_path):
    """ssl_low carries the valence best, ssl_high the emotion best (known answers of the generator); utt and frames
    are the same with and without the layers (their own random generator)."""
    opts = dict(n_train=400, n_test=(0, 0, 0), frames=(3, 4), utt_dim=16, frame_dim=4, seed=5)
    rec = generate_mer(tmp_path / "with", **opts)
    generate_mer(tmp_path / "without", **opts, acoustic_layers=False)
    assert rec["acoustic_sets"] == ["utt", "ssl_low", "ssl_mid", "ssl_high"]
    assert not (tmp_path / "without" / "features" / "ssl_low").exists()
    truth = pd.read_csv(tmp_path / "with" / "ground_truth.csv")
    for name in truth["name"][:5]:
        for s in ("utt", "frames"):
            np.testing.assert_array_equal(np.load(tmp_path / "with" / "features" / s / f"{name}.npy"),
                                          np.load(tmp_path / "without" / "features" / s / f"{name}.npy"))
    cls = truth["discrete"].astype("category").cat.codes.to_numpy()
    half = len(truth) // 2

    def scores(layer):
        x = np.stack([np.load(tmp_path / "with" / "features" / layer / f"{n}.npy") for n in truth["name"]])
        xa = np.c_[x, np.ones(len(x))]
        w = np.linalg.lstsq(xa[:half], truth["valence"][:half], rcond=None)[0]
        val_err = float(np.mean((xa[half:] @ w - truth["valence"][half:]) ** 2))
        means = np.stack([x[:half][cls[:half] == k].mean(0) for k in range(cls.max() + 1)])
        acc = float(np.mean(np.argmin(((x[half:, None] - means[None]) ** 2).sum(-1), 1) == cls[half:]))
        return val_err, acc

    low, high = scores("ssl_low"), scores("ssl_high")
    assert low[0] < high[0] and high[1] > low[1], (low, high)
