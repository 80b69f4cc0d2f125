"""Cross-validation: folds are ordinary runs over partition maps; reproducible; tables; best fold and fold average."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from affectflow.cli.main import main
from affectflow.corpus.corpus import Corpus
from affectflow.errors import RunError
from affectflow.predictions import Predictions, score
from affectflow.procedures.cv import run_cv
from tests.conftest import tiny_config


def _cfg(corpus, runs):
    return tiny_config(corpus, runs, "data.features=[acoustic,physio]", "training.epochs=2", "training.seeds=[1,2]",
                       "model.d_model=8", "model.d_fc=8", "output.plots=false")


def test_cv_runs_folds_reproducibly_and_reports(tiny_corpus, tmp_path):
    cv = run_cv(_cfg(tiny_corpus.path, tmp_path / "runs"), k=3, seed=4, out=tmp_path / "cv1")
    info = json.loads((cv / "cv.json").read_text())
    assert info["status"] == "finished" and info["k"] == 3 and len(info["folds"]) == 3
    subj = dict(zip(tiny_corpus.recordings["id"], tiny_corpus.recordings["subject"]))
    for f in info["folds"]:
        run = Path(f["run"])
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["data"]["partitions"] == f["map"] and cfg["training"]["seeds"] == [1, 2]
        view = Corpus(cfg["data"]["corpus"], partitions=cfg["data"]["partitions"])
        dev = {subj[r] for r in view.recording_ids(["devel"])}
        tr = {subj[r] for r in view.recording_ids(["train"])}
        assert dev == set(f["devel_subjects"]) and not dev & tr
        # the run's devel predictions are of that fold's devel recordings
        assert set(Predictions.load(run / "predictions" / "devel").recordings) == set(view.recording_ids(["devel"]))
        m = json.loads((run / "metrics.json").read_text())
        assert info["per_fold"]["devel"]["arousal"]["folds"][f["fold"]] == m["best"]["devel"]["arousal"]["ccc"]
    rec = tiny_corpus.recordings
    assert set(info["folds"][0]["devel_subjects"]) == set(rec.loc[rec["partition"] == "devel", "subject"])
    vals = info["per_fold"]["devel"]["valence"]["folds"]
    assert info["per_fold"]["devel"]["valence"]["mean"] == pytest.approx(np.mean(vals))
    # best fold on its devel selection score; the fold average is the mean of the folds' test predictions
    assert info["best_fold"] == int(np.argmax(info["selection_per_fold"]))
    best_run = Path(info["folds"][info["best_fold"]]["run"])
    assert info["test_best_fold"]["test"] == json.loads((best_run / "metrics.json").read_text())["best"]["test"]
    tests = [Predictions.load(Path(f["run"]) / "predictions" / "test") for f in info["folds"]]
    avg = Predictions(tests[0].task, tests[0].specs, tests[0].recordings, times=tests[0].times,
                      values=[np.mean([t.subset([r]).values[0] for t in tests], axis=0) for r in tests[0].recordings],
                      labels=tests[0].labels)
    assert info["test_fold_average"]["test"]["arousal"]["ccc"] == pytest.approx(score(avg)["arousal"]["ccc"], abs=1e-5)
    md = (cv / "results.md").read_text()
    assert "| target | Fold 0 | Fold 1 | Fold 2 | mean ± std |" in md and "average of folds" in md
    # same seed, same folds and the same scores; resuming the folder re-trains nothing
    cv2 = run_cv(_cfg(tiny_corpus.path, tmp_path / "runs"), k=3, seed=4, out=tmp_path / "cv2")
    info2 = json.loads((cv2 / "cv.json").read_text())
    assert [f["devel_subjects"] for f in info2["folds"]] == [f["devel_subjects"] for f in info["folds"]]
    assert info2["per_fold"] == info["per_fold"] and info2["test_fold_average"] == info["test_fold_average"]
    before = sorted((cv / "training" / "runs").iterdir())
    run_cv(_cfg(tiny_corpus.path, tmp_path / "runs"), k=3, seed=4, out=cv)
    assert sorted((cv / "training" / "runs").iterdir()) == before
    with pytest.raises(RunError, match="holds other folds"):
        run_cv(_cfg(tiny_corpus.path, tmp_path / "runs"), k=3, seed=5, out=cv)


def test_cv_cli_loso_and_errors(tiny_corpus, tmp_path, capsys):
    from affectflow.synthetic.corpus import generate_corpus

    small = generate_corpus(tmp_path / "small", n_subjects=5, duration_s=60.0, duration_jitter_s=0.0, seed=1,
                            progress=False)
    rc = main(["cv", "--corpus", str(small.path), "--runs-dir", str(tmp_path / "runs"), "--loso",
               "--backend", "serial", "--set", "data.features=[physio]", "--set", "training.epochs=1",
               "--set", "training.seeds=[1]", "--set", "model.d_model=8", "--set", "model.d_fc=8",
               "--set", "data.window={size: 40, hop: 20}", "--set", "output.plots=false", "--out", str(tmp_path / "loso")])
    out = capsys.readouterr().out
    assert rc == 0, out
    info = json.loads((tmp_path / "loso" / "cv.json").read_text())
    rec = small.recordings
    n = rec.loc[rec["partition"].isin(["train", "devel"]), "subject"].nunique()
    assert info["k"] == n and all(len(f["devel_subjects"]) == 1 for f in info["folds"])
    assert f"Fold {n - 1}" in out
    assert main(["cv", "--corpus", str(tiny_corpus.path), "-k", "99", "--out", str(tmp_path / "bad")]) == 2
