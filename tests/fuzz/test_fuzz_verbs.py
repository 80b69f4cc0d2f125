"""Fuzz tests of the procedure and service verbs: their argument parsers (numeric ranges, names) and the files they
read (sweep YAML, partition and recording maps, rater CSVs, run folders with an edited ``run.json`` or prediction
metadata). Property: one clear affectflow error (exit code 2 or 1) or a correct result, never a traceback, and
nothing written outside the sandbox (:class:`tests.sandbox.Sandbox`). Deterministic: ``FUZZ_SETTINGS``
(derandomized, no example database)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from affectflow.errors import AffectflowError
from affectflow.fsutil import is_safe_name
from tests.fuzz.harness import CELL_VALUES, FUZZ_SETTINGS
from tests.sandbox import Sandbox

#: Hostile values for numeric options.
NUMBERS = st.sampled_from(["nan", "NaN", "inf", "-inf", "0", "-1", "-0", "1e309", "", "abc", "1.5", "0.5", "2",
                           "99999999999999999999", "0x10", " 3", "1e-320"])

#: Verb → (argv prefix with targets that do not exist, numeric options). Every call must fail cleanly.
VERBS = {
    "fuse": (["fuse", "no-run-a", "no-run-b"], ["--step"]),
    "fuse-raters": (["fuse-raters", "no-src", "out"], ["--max-lag", "--classes"]),
    "personalise": (["personalise", "no-run"], ["--seeds", "--window", "--hop", "--epochs", "--patience", "--lr",
                                               "--batch-size", "--group-size", "--l2sp", "--shrink"]),
    "stream": (["stream", "no-run", "no.wav"], ["--chunk", "--block-frames"]),
    "sweep": (["sweep", "no.yaml"], ["--workers", "--threads"]),
    "cv": (["cv", "--corpus", "no-corpus"], ["--folds", "--workers", "--threads"]),
    "late-fusion": (["late-fusion", "no-a", "no-b"], ["--folds", "--workers", "--threads"]),
    "serve": (["serve", "no-run"], ["--port"]),
    "extract": (["extract", "no-corpus"], ["--workers"]),
    "import-mer": (["import-mer", "no-src", "out"], ["--devel-fraction"]),
    "augment": (["augment", "no-corpus"], ["--copies", "--babble-speakers"]),
    "yardstick": (["yardstick", "--corpus", "no-corpus"], ["--context"]),
}


@FUZZ_SETTINGS
@given(verb=st.sampled_from(sorted(VERBS)), data=st.data())
def test_fuzz_numeric_options_of_the_verbs(tmp_path_factory, verb, data):
    argv, options = VERBS[verb]
    chosen = data.draw(st.lists(st.sampled_from(options), min_size=1, max_size=3, unique=True))
    args = list(argv)
    for o in chosen:
        args += [o, data.draw(NUMBERS)]
    with Sandbox(tmp_path_factory.mktemp("args")) as box:
        code, out, err = box.run(args)
    assert code == 2, (args, code, err)
    assert "Traceback" not in err and "error:" in err, (args, err)


def _write_yaml_doc(path: Path, name, grid) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"name": name, "grid": grid}, allow_unicode=True))


@FUZZ_SETTINGS
@given(name=st.one_of(CELL_VALUES, st.text(max_size=12)),
       keys=st.lists(st.sampled_from(["training.lr", "model.d_model", "../x", "", "a..b", "training", "x.y.z"]),
                     min_size=1, max_size=3, unique=True),
       values=st.lists(st.one_of(CELL_VALUES, st.floats(allow_nan=True), st.integers(-3, 3)), min_size=0, max_size=4))
def test_fuzz_sweep_files(tmp_path_factory, name, keys, values):
    from affectflow.procedures.sweep import build_cells, load_sweep

    with Sandbox(tmp_path_factory.mktemp("sweep")) as box:
        f = box.path / "s.yaml"
        _write_yaml_doc(f, name, {k: list(values) for k in keys})
        try:
            spec = load_sweep(f)
        except AffectflowError:
            return
        assert is_safe_name(spec.name)
        for k, v in spec.grid.items():
            canon = [json.dumps(x, sort_keys=True, default=str) for x in v]
            assert len(set(canon)) == len(canon)  # no repeated grid value survives
        try:
            build_cells(spec)
        except AffectflowError:
            pass


@FUZZ_SETTINGS
@given(rows=st.lists(st.tuples(CELL_VALUES, CELL_VALUES, CELL_VALUES), min_size=0, max_size=5),
       header=st.sampled_from(["id,partition,subject", "id,partition", "id,subject", "partition,id", "x,y,z", ""]))
def test_fuzz_partition_and_recording_maps(tmp_path_factory, rows, header):
    from affectflow.corpus.corpus import read_partition_map
    from affectflow.corpus.media import read_recording_map

    with Sandbox(tmp_path_factory.mktemp("maps")) as box:
        n = len(header.split(",")) if header else 0
        lines = [header] + [",".join(r[:n]) for r in rows]
        (box.path / "m.csv").write_text("\n".join(lines) + "\n")
        for reader in (read_partition_map, read_recording_map):
            try:
                got = reader(box.path / "m.csv")
            except AffectflowError:
                continue
            assert all(is_safe_name(i) for i in got)
            if reader is read_partition_map:
                assert all(is_safe_name(p) for p in got.values())


@pytest.fixture(scope="module")
def rater_template(tmp_path_factory):
    src = tmp_path_factory.mktemp("raters") / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for rid in ("r1", "r2"):
        df = pd.DataFrame({"timestamp": np.arange(30) * 500, "segment_id": np.arange(30) // 10})
        for k in range(3):
            df[f"rater{k}"] = np.round(rng.normal(size=30), 3)
        df.to_csv(src / f"{rid}.csv", index=False)
    return src


@FUZZ_SETTINGS
@given(cells=st.lists(st.tuples(st.integers(0, 29), st.sampled_from(["timestamp", "segment_id", "rater0", "rater1"]),
                                CELL_VALUES), min_size=0, max_size=4),
       rename=st.one_of(st.none(), st.sampled_from(["a b", "x\n", "../e", "ok.2"])),
       classes=st.one_of(st.none(), st.integers(2, 7)))
def test_fuzz_rater_files(rater_template, tmp_path_factory, cells, rename, classes):
    from affectflow.raters import fuse_rater_files

    with Sandbox(tmp_path_factory.mktemp("fr")) as box:
        src = box.path / "src"
        shutil.copytree(rater_template, src)
        df = pd.read_csv(src / "r1.csv", dtype=str)
        for row, col, value in cells:
            df.loc[row, col] = value
        df.to_csv(src / "r1.csv", index=False)
        if rename is not None:
            try:
                (src / "r2.csv").rename(src / f"{rename}.csv")
            except OSError:
                pass
        try:
            rep = fuse_rater_files(str(src), str(box.path / "out"), n_classes=classes)
        except AffectflowError:
            assert not (box.path / "out").exists()
            return
        except Warning:
            return
        files = sorted(p.stem for p in (box.path / "out").glob("*.csv"))
        assert files == sorted(rep["recordings"]) and all(is_safe_name(f) for f in files)
        if classes:
            assert len(rep["classes"]["segments_per_class"]) == classes


RUN_JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=True),
                            st.sampled_from(["", "running", "finished", "../x", "failed: x", "\n"]),
                            st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                      st.integers(), max_size=2))


@FUZZ_SETTINGS
@given(key=st.sampled_from(["status", "pid", "host", "pid_start", "seeds", "best_seed", "kind", "name", "created"]),
       value=RUN_JSON_VALUES,
       meta=st.one_of(st.none(), st.tuples(st.sampled_from(["recordings", "task", "target_specs"]), RUN_JSON_VALUES)))
def test_fuzz_edited_run_folders(tiny_run, tmp_path_factory, key, value, meta):
    with Sandbox(tmp_path_factory.mktemp("run")) as box:
        run = box.path / "run"
        shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoints", "plots", "history", "resume"))
        (run / "checkpoints").mkdir()
        info = json.loads((run / "run.json").read_text())
        info[key] = value
        (run / "run.json").write_text(json.dumps(info))
        if meta is not None:
            mf = next((run / "predictions").rglob("predictions.json"), None)
            if mf is not None:
                m = json.loads(mf.read_text())
                m[meta[0]] = meta[1]
                mf.write_text(json.dumps(m))
        for argv in (["info", "run"], ["submit", "run", "--format", "muse2023", "--out", "sub"]):
            code, out, err = box.run(argv)
            assert "Traceback" not in err, (argv, key, value, meta, err)
            assert code in (0, 1, 2), (argv, code, err)
            if argv[0] == "submit" and code == 0:
                for p in (box.path / "sub").rglob("*.csv"):
                    assert is_safe_name(p.stem) or p.name == "partition.csv"
