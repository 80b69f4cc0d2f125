"""Reliability round 2: one name rule read everywhere, writes that symlinks cannot redirect, output folders that
are files, numeric ranges at parse time, and checks before work. Every verb that writes runs in a
:class:`tests.sandbox.Sandbox` that fails the test if anything outside it changed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from affectflow.corpus.corpus import Corpus, FeatureSetInfo, LabelSetInfo
from affectflow.errors import ConfigError, CorpusError, RunError
from affectflow.fsutil import check_inside, check_names, is_safe_name, out_folder
from tests.sandbox import Sandbox


# ------------------------------------------------------------------------------------------ the name rule
@pytest.mark.parametrize("name, ok", [
    ("S01", True), ("a.b+c-d_e", True), ("x" * 200, True),
    ("S01\n", False), ("S01\r", False), ("\nS01", False), ("../x", False), ("a/b", False), (".hidden", False),
    ("", False), ("x" * 201, False), ("a b", False), ("é", False), (3, False), (None, False),
])
def test_one_name_rule_anchored_at_the_end(name, ok):
    assert is_safe_name(name) is ok


def test_check_names_lists_every_bad_name_with_the_count():
    with pytest.raises(ConfigError, match=r"2 invalid target\(s\) in `data.targets`: \['\.\./x', 'v\\n'\]"):
        check_names("target", ["arousal", "../x", "v\n"], where="`data.targets`", error=ConfigError)


def test_label_dimensions_and_set_names_are_checked_when_read(tmp_path):
    with pytest.raises(CorpusError, match="label dimension"):
        LabelSetInfo(name="continuous", dims=["arousal", "../../x"])
    with pytest.raises(CorpusError, match="feature set name"):
        FeatureSetInfo(name="egemaps\n", modality="audio", columns=["a"])
    c = Corpus.create(tmp_path / "c", name="c", label_rate_hz=2.0)
    c.write_label_set_info(LabelSetInfo(name="continuous", dims=["arousal"]))
    f = tmp_path / "c" / "labels" / "continuous" / "label_set.json"  # a shared corpus edited by someone else
    f.write_text(f.read_text().replace('"arousal"', '"../../../x"'))
    with pytest.raises(CorpusError, match=r"invalid label dimension.*\.\./\.\./\.\./x"):
        Corpus(tmp_path / "c").label_set()


def test_import_media_refuses_a_label_column_that_is_a_path(tmp_path):
    with Sandbox(tmp_path) as box:
        src = box.path / "rec"
        src.mkdir()
        sf.write(src / "S01.wav", np.zeros(16000 * 3, np.float32), 16000)
        pd.DataFrame({"time": [0.0, 0.5, 1.0], "../../x": [0.1, 0.2, 0.3]}).to_csv(src / "S01.labels.csv",
                                                                                  index=False)
        code, out, err = box.run(["import-media", "rec", "corpus", "-q"])
        assert code in (1, 2) and "Traceback" not in err
        assert "../../x" in out + err
        c = box.path / "corpus"
        assert not (c / "labels").exists() or not any((c / "labels").rglob("label_set.json"))


def test_sweep_name_and_repeated_grid_values_are_refused_before_work(tmp_path):
    with Sandbox(tmp_path) as box:
        (box.path / "s.yaml").write_text("name: ../../evil\ngrid: {training.lr: [0.001, 0.01]}\n")
        code, _, err = box.run(["sweep", "s.yaml"])
        assert code == 2 and "Invalid sweep name" in err and "Traceback" not in err
        (box.path / "t.yaml").write_text("name: 'ok\n\n'\ngrid: {training.lr: [0.001]}\n")
        code, _, err = box.run(["sweep", "t.yaml"])
        assert code == 2 and "Invalid sweep name" in err
        (box.path / "u.yaml").write_text("grid: {model.d_model: [16, 32, 16], training.lr: [0.1]}\n")
        code, _, err = box.run(["sweep", "u.yaml"])
        assert code == 2 and "repeats the value(s) ['16']" in err and "3 values, 2 distinct" in err
        assert sorted(p.name for p in box.path.iterdir()) == ["s.yaml", "t.yaml", "u.yaml"]


# ------------------------------------------------------------------------------------------------ symlinks
def test_a_symlink_inside_a_corpus_cannot_redirect_its_writes(tmp_path):
    outside = tmp_path / "outside"  # someone else's folder, which happens to look like a feature set
    outside.mkdir()
    import json

    (outside / "feature_set.json").write_text(json.dumps({"name": "pred_run", "modality": "x", "columns": ["a"]}))
    with Sandbox(tmp_path) as box:  # the sandbox check also covers `outside`
        c = Corpus.create(box.path / "c", name="c", label_rate_hz=2.0)
        (box.path / "c" / "features").mkdir()
        (box.path / "c" / "features" / "pred_run").symlink_to(outside, target_is_directory=True)
        frame = pd.DataFrame({"time": [0.0, 0.5], "a": [1.0, 2.0]})
        with pytest.raises(CorpusError, match="outside"):
            c.write_feature_set_info(FeatureSetInfo(name="pred_run", modality="prediction", columns=["a"]))
        with pytest.raises(CorpusError, match="a symlink inside"):
            c.write_features("pred_run", "S01", frame)
        (box.path / "c" / "labels").symlink_to(outside, target_is_directory=True)
        with pytest.raises(CorpusError, match="outside"):
            c.write_label_set_info(LabelSetInfo(name="continuous", dims=["arousal"]))
    assert [p.name for p in outside.iterdir()] == ["feature_set.json"]


def test_check_inside_allows_a_symlinked_root_and_replaces_a_symlinked_file(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    assert check_inside(tmp_path / "alias", tmp_path / "alias" / "x" / "f.json")  # the root itself may be a link
    target = tmp_path / "secret.txt"
    target.write_text("keep")
    (real / "f.json").symlink_to(target)
    from affectflow.fsutil import write_json

    write_json(real / "f.json", {"a": 1}, root=tmp_path / "alias")
    assert target.read_text() == "keep" and not (real / "f.json").is_symlink()  # replaced, not followed


# ----------------------------------------------------------------------------------- output folders (--out)
def test_out_folder_rules(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(RunError, match="is an existing file, not a folder"):
        out_folder(f)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("a")
    with pytest.raises(RunError, match="exists, is not empty"):
        out_folder(tmp_path / "full")
    (tmp_path / "full" / "sweep.json").write_text("{}")
    assert out_folder(tmp_path / "full", resume_marker="sweep.json") == tmp_path / "full"
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(RunError, match="broken symbolic link"):
        out_folder(tmp_path / "dangling")
    assert not out_folder(tmp_path / "new" / "deeper", create=False).exists()


def test_out_at_a_file_is_one_error_for_every_verb(tmp_path, tiny_run, tiny_corpus):
    with Sandbox(tmp_path) as box:
        (box.path / "f").write_text("not a folder")
        (box.path / "s.yaml").write_text(f"config: {{data: {{corpus: {tiny_corpus.path}, features: [acoustic]}}}}\n"
                                         "grid: {training.lr: [0.001]}\n")
        cases = [
            ["generate", "f", "--subjects", "2", "--duration", "10"],
            ["predict", str(tiny_run), "--out", "f", "--partitions", "test"],
            ["export", str(tiny_run), "--out", "f"],
            ["fuse", str(tiny_run), str(tiny_run.parent), "--out", "f"],
            ["sweep", "s.yaml", "--out", "f"],
            ["cv", "--corpus", str(tiny_corpus.path), "--set", "data.features=[acoustic]", "--out", "f"],
        ]
        for argv in cases:
            t0 = time.time()
            code, _, err = box.run(argv)
            err = " ".join(err.split())  # the CLI wraps long messages
            assert code == 2, (argv, err)
            assert "is an existing file" in err and "Traceback" not in err and "NotADirectoryError" not in err, err
            assert time.time() - t0 < 20, argv  # refused before any work
        assert (box.path / "f").read_text() == "not a folder"


# ---------------------------------------------------------------------------------------- numeric ranges
@pytest.mark.parametrize("argv, words", [
    (["fuse", "a", "b", "--step", "0"], "--step: must be a number in (0, 1]"),
    (["fuse", "a", "b", "--step", "nan"], "--step: expected a finite number"),
    (["fuse-raters", "src", "out", "--max-lag", "inf"], "--max-lag: expected a finite number"),
    (["fuse-raters", "src", "out", "--classes", "1"], "--classes: must be a whole number >= 2"),
    (["personalise", "run", "--lr", "nan"], "--lr: expected a finite number"),
    (["personalise", "run", "--batch-size", "0"], "--batch-size: must be a whole number >= 1"),
    (["personalise", "run", "--shrink", "1.5"], "--shrink: must be a number in (0, 1]"),
    (["stream", "run", "clip.wav", "--chunk", "0"], "--chunk: must be a positive number"),
    (["stream", "run", "clip.wav", "--chunk", "-1"], "--chunk: must be a positive number"),
    (["sweep", "s.yaml", "--workers", "0"], "--workers: must be a whole number >= 1"),
    (["cv", "--folds", "1"], "--folds: must be a whole number >= 2"),
    (["late-fusion", "a", "b", "--threads", "-2"], "--threads: must be a whole number >= 1"),
    (["generate", "x", "--duration", "inf"], "--duration: expected a finite number"),
    (["generate", "x", "--subjects", "0"], "--subjects: must be a whole number >= 1"),
    (["import-mer", "src", "out", "--devel-fraction", "1"], "--devel-fraction: must be a number strictly between"),
    (["serve", "run", "--port", "70000"], "--port: must be a whole number between 0 and 65535"),
    (["extract", "c", "--workers", "0"], "--workers: must be a whole number >= 1"),
])
def test_numeric_options_are_range_checked_at_parse_time(tmp_path, argv, words):
    with Sandbox(tmp_path) as box:
        code, out, err = box.run(argv)
    assert code == 2 and words in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


@pytest.mark.parametrize("override, words", [
    ("training.lr=.nan", "training.lr` must be a positive finite number"),
    ("training.lr=.inf", "training.lr` must be a positive finite number"),
    ("training.batch_size=0", "training.batch_size` must be a positive finite number"),
    ("training.weight_decay=-1", "training.weight_decay` must be >= 0"),
    ("data.targets=[arousal, ../x]", "invalid target"),
    ("data.features=['acoustic\n']", "invalid feature set name"),
])
def test_config_values_are_range_and_name_checked(tmp_path, tiny_corpus, override, words):
    with Sandbox(tmp_path) as box:
        code, _, err = box.run(["train", "--corpus", str(tiny_corpus.path), "--set", "data.features=[acoustic]",
                                "--set", override, "--runs-dir", "runs"])
        err = " ".join(err.split())
        assert code == 2 and words in err, err
        assert not (box.path / "runs").exists()


# ------------------------------------------------------------------------------------- checks before work
def test_late_fusion_refuses_bad_names_before_cross_fitting(tmp_path, tiny_run):
    from affectflow.procedures.latefusion import staged_late_fusion

    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(tiny_run, copy)
    for names, words in [(["../x", "ok"], "invalid prediction feature set name"),
                         (["a\n", "b"], "invalid prediction feature set name"),
                         (["a"], "for 2 runs"), (["a", "a"], "same prediction feature name")]:
        t0 = time.time()
        with pytest.raises(ConfigError, match=words):
            staged_late_fusion([tiny_run, copy], names=names)
        assert time.time() - t0 < 5
    with pytest.raises(ConfigError, match="training.lr"):
        staged_late_fusion([tiny_run, copy], names=["a", "b"], overrides=["training.lr=-1"])
    assert not any(p.name.startswith("pred_") or p.name in ("a", "b")
                   for p in (Path(tiny_run).parent.parent / "data").rglob("*") if p.is_dir())


# ----------------------------------------------------------------------------------- the verbs added today
def test_new_verbs_refuse_unsafe_names_files_as_out_and_nan(tmp_path, tiny_corpus):
    pytest.importorskip("optuna")
    corpus = str(tiny_corpus.path)
    with Sandbox(tmp_path) as box:
        (box.path / "f").write_text("not a folder")
        (box.path / "evil.yaml").write_text("name: ../../evil\nspace: {training.lr: {low: 0.001, high: 0.1}}\n")
        (box.path / "nl.yaml").write_text("name: \"ok\\n\"\nspace: {training.lr: {low: 0.001, high: 0.1}}\n")
        (box.path / "ok.yaml").write_text("space: {training.lr: {low: 0.001, high: 0.1}}\n")
        cases = [
            (["tune", "--space", "evil.yaml", "--trials", "1", "--corpus", corpus, "--set", "data.features=[acoustic]",
              "--runs-dir", "runs"], "Invalid tuning name"),
            (["tune", "--space", "nl.yaml", "--trials", "1", "--corpus", corpus, "--set", "data.features=[acoustic]",
              "--runs-dir", "runs"], "Invalid tuning name"),
            (["tune", "--space", "ok.yaml", "--trials", "1", "--corpus", corpus, "--set", "data.features=[acoustic]",
              "--out", "f"], "is an existing file"),
            (["tune", "--space", "ok.yaml", "--trials", "0", "--corpus", corpus, "--set", "data.features=[acoustic]"],
             "--trials must be a positive integer"),
            (["recipe", "run", "muse2023", "--corpus", corpus, "--budget", "quick", "--out", "f"], "is an existing file"),
            (["yardstick", "--corpus", corpus, "--set", "data.features=[acoustic]", "--alphas", "nan", "--out", "y"],
             "must be positive"),
            (["augment", corpus, "--copies", "0"], "--copies: must be a whole number >= 1"),
        ]
        for argv, words in cases:
            code, _, err = box.run(argv)
            err = " ".join(err.split())
            assert code == 2 and words in err and "Traceback" not in err, (argv, err)
        assert sorted(p.name for p in box.path.iterdir()) == ["evil.yaml", "f", "nl.yaml", "ok.yaml"]
