"""Issue 7: hostile or careless input. Each test reproduces one reported failure (path traversal, half-written
corpora, stale features, silent loss, tracebacks, file modes, MuSe-Sent labels, checkpoint refusal)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from affectflow.cli.main import main
from affectflow.config import load_config
from affectflow.corpus.corpus import Corpus, atomic_write, child_path, staged_folder
from affectflow.corpus.media import import_media, read_media_table
from affectflow.corpus.muse import import_muse
from affectflow.errors import AffectflowWarning, ConfigError, CorpusError, ImportFormatError, RunError
from affectflow.experiment import predict, train
from affectflow.features.pipeline import extract
from affectflow.runs import load_checkpoint, new_run_dir
from affectflow.synthetic.corpus import generate_corpus
from affectflow.synthetic.muse import write_muse_task
from tests.features.test_pipeline import RmsExtractor, _tone

FAST = ["data.features=[acoustic]", "training.epochs=1", "training.seeds=[1]", "model.d_model=8", "model.d_fc=8",
        "training.device=cpu", "data.window.size=20", "data.window.hop=10"]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("rel") / "src", n_subjects=4, duration_s=60.0,
                           duration_jitter_s=5.0, seed=1, progress=False)


def _copy(corpus: Corpus, dst: Path) -> Path:
    shutil.copytree(corpus.path, dst)
    return dst


def _cfg(corpus, runs, *extra):
    return load_config(None, [f"data.corpus={corpus}", f"output.runs_dir={runs}", *FAST, *extra])


def _no_staging_left(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if ".staging-" in p.name]


# ---------------------------------------------------------------------------------------------------- case 1
@pytest.mark.parametrize("bad_id", ["../../../PWNED", "/tmp/PWNED-abs", "a/b", ".hidden", ""])
def test_unsafe_ids_in_recordings_csv_are_refused_when_read(src, tmp_path, bad_id):
    c = _copy(src, tmp_path / "c")
    rec = pd.read_csv(c / "recordings.csv", dtype=str)
    rec.loc[0, "id"] = bad_id
    rec.to_csv(c / "recordings.csv", index=False)
    with pytest.raises(CorpusError, match="recordings.csv is invalid"):
        Corpus(c).recordings  # noqa: B018


def test_predict_and_evaluate_cannot_write_outside_the_run(src, tmp_path):
    run = train(_cfg(src.path, tmp_path / "runs"), progress=False)
    c = _copy(src, tmp_path / "evil")
    rec = pd.read_csv(c / "recordings.csv", dtype=str)
    rec.loc[rec["partition"] == "devel", "id"] = "../../../../PWNED"
    rec.to_csv(c / "recordings.csv", index=False)
    for call in (lambda: predict(run, corpus=c, partitions=["devel"], progress=False),
                 lambda: main(["evaluate", str(run), "--corpus", str(c), "--partitions", "devel", "-q"])):
        try:
            assert call() == 2  # the CLI's exit code for a user error
        except CorpusError as e:
            assert "unsafe id" in str(e)
    assert not list(tmp_path.rglob("PWNED*"))
    # the last line of defence: output paths are resolved under their folder
    with pytest.raises(CorpusError, match="Invalid name '../x'"):
        child_path(tmp_path, "../x", ".csv")


def test_extract_does_not_delete_files_named_by_a_crafted_media_csv(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _tone(raw / "r1.wav", 2.0, 220.0, 0.2)
    assert import_media(raw, tmp_path / "c").ok
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "results.parquet").write_text("precious")
    (victim / "results.json").write_text("precious")
    evil = f"{victim}/results"
    for table in ("media.csv", "recordings.csv"):
        t = pd.read_csv(tmp_path / "c" / table, dtype=str)
        t.loc[0, "id"] = evil
        t.to_csv(tmp_path / "c" / table, index=False)
    with pytest.raises(CorpusError, match="unsafe id"):
        read_media_table(Corpus(tmp_path / "c"))
    with pytest.raises(CorpusError):
        extract(tmp_path / "c", {"rms": RmsExtractor(kill_ids=())}, progress=False)
    assert (victim / "results.parquet").read_text() == "precious" and (victim / "results.json").exists()


def test_run_name_cannot_leave_runs_dir(src, tmp_path):
    runs = tmp_path / "a" / "runs"
    with pytest.raises(ConfigError, match="output.name"):
        _cfg(src.path, runs, "output.name=../..")
    assert main(["train", "--corpus", str(src.path), "--runs-dir", str(runs), "--set", "output.name=../../x"]) == 2
    with pytest.raises(RunError, match="Invalid run name '../x-"):
        new_run_dir(runs, "../x")
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").rglob("*x-*"))


# ---------------------------------------------------------------------------------------------------- case 2
def _partition(task: Path, extra: str) -> None:
    p = task / "metadata" / "partition.csv"
    p.write_text(p.read_text() + extra)


@pytest.mark.parametrize("extra,expected", [
    ("../evil,train\n", r"not safe file names \['../evil'\]"),
    (",train\n", r"1 row\(s\) with a blank Id \(lines \[6\]\)"),
    ("5,\n", r"1 recording\(s\) with a blank Partition \['5'\]"),
])
def test_muse_import_checks_partition_csv_first_and_writes_nothing(src, tmp_path, extra, expected):
    task = write_muse_task(src, tmp_path / "task", style="2022", features=["acoustic"])
    _partition(task, extra)
    with pytest.raises(ImportFormatError, match=expected):
        import_muse(task, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and _no_staging_left(tmp_path)


def test_muse_sent_non_integer_class_is_listed_and_nothing_written(src, tmp_path):
    task = write_muse_task(src, tmp_path / "task", style="2021-sent", features=["acoustic"])
    f = task / "label_segments" / "sentiment" / "1.csv"
    df = pd.read_csv(f).astype({"class_id": object})
    df.loc[1, "class_id"] = "positive"
    df.to_csv(f, index=False)
    with pytest.raises(ImportFormatError, match=r"1.csv: 1 blank or non-integer class_id values \(lines \[3\]\)"):
        import_muse(task, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and _no_staging_left(tmp_path)


def test_a_crash_while_writing_leaves_no_corpus(src, tmp_path, monkeypatch):
    task = write_muse_task(src, tmp_path / "task", style="2022", features=["acoustic"])

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Corpus, "write_labels", boom)
    with pytest.raises(OSError, match="disk full"):
        import_muse(task, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and _no_staging_left(tmp_path)
    monkeypatch.undo()
    corpus, _ = import_muse(task, tmp_path / "out", progress=False)  # a re-import is not refused
    assert len(corpus.recordings) == 4


def test_staged_folder_replaces_an_empty_folder_and_refuses_a_full_one(tmp_path):
    (tmp_path / "empty").mkdir()
    with staged_folder(tmp_path / "empty") as tmp:
        (tmp / "f").write_text("x")
    assert (tmp_path / "empty" / "f").read_text() == "x"
    with pytest.raises(CorpusError, match="not an empty folder"):
        with staged_folder(tmp_path / "empty"):
            pass


# ---------------------------------------------------------------------------------------------------- case 3
def test_extract_recomputes_when_an_input_file_is_replaced(tmp_path):
    raw, new = tmp_path / "raw", tmp_path / "new"
    raw.mkdir()
    new.mkdir()
    for i in range(2):
        _tone(raw / f"r{i}.wav", 3.0, 220.0, 0.1)
    assert import_media(raw, tmp_path / "c").ok
    ex = {"rms": RmsExtractor()}
    assert extract(tmp_path / "c", ex, progress=False).ok
    c = Corpus(tmp_path / "c")
    before = c.read_features("rms", "r0")["rms"].to_numpy()
    # another file under the same id (import-media --overwrite), louder
    _tone(new / "r0.wav", 3.0, 220.0, 0.4)
    rep = import_media(new, tmp_path / "c", overwrite=True)
    assert rep.replaced == ["r0"]
    s = extract(tmp_path / "c", ex, progress=False)
    status = {r.recording: r.status for r in s.results}
    assert status == {"r0": "done", "r1": "skipped"}
    after = c.read_features("rms", "r0")["rms"].to_numpy()
    np.testing.assert_allclose(after, 4 * before, rtol=1e-3)
    # the same path edited in place (new size and modification time)
    _tone(raw / "r1.wav", 4.0, 220.0, 0.1)
    s = extract(tmp_path / "c", ex, progress=False)
    assert {r.recording: r.status for r in s.results} == {"r0": "skipped", "r1": "done"}
    assert c.read_features("rms", "r1")["time"].iloc[-1] > 3.4


# ---------------------------------------------------------------------------------------------------- case 4
def test_muse_import_reports_overflow_and_ids_without_files(src, tmp_path):
    task = write_muse_task(src, tmp_path / "task", style="2022", features=["acoustic"])
    f = task / "feature_segments" / "acoustic" / "0.csv"
    df = pd.read_csv(f)
    df.iloc[3, 2] = 1e308
    df.iloc[4, 3] = -1e39
    df.iloc[5, 4] = np.inf
    df.to_csv(f, index=False)
    lab = task / "label_segments" / "arousal" / "1.csv"
    ld = pd.read_csv(lab)
    ld.loc[2, "value"] = 1e300
    ld.to_csv(lab, index=False)
    _partition(task, "99,train\n")
    corpus, report = import_muse(task, tmp_path / "out", progress=False)
    assert report.feature_sets["acoustic"]["non_finite"] == 3
    assert report.label_dims["arousal"]["non_finite"] == 1
    assert any("0.csv: 3 values are infinite or beyond the float32 range" in w for w in report.warnings)
    assert "values out of float32 range 3" in report.summary()
    x = corpus.read_features("acoustic", "0").drop(columns="time").to_numpy()
    assert not np.isinf(x).any() and np.isnan(x).sum() == 3
    assert report.dropped_ids == ["99"] and "99" not in corpus.recordings["id"].tolist()
    assert "not imported (no file at all): 1 ids" in report.summary()
    assert (corpus.recordings["duration"] > 0).all()


def test_blank_partition_in_recordings_csv_is_refused(src, tmp_path):
    c = _copy(src, tmp_path / "c")
    rec = pd.read_csv(c / "recordings.csv", dtype=str)
    rec.loc[1, "partition"] = ""
    rec.to_csv(c / "recordings.csv", index=False)
    with pytest.raises(CorpusError, match=r"1 recording\(s\) without a partition \['S001_rec'\]"):
        Corpus(c).recordings  # noqa: B018


def test_unlabelled_train_recordings_are_warned_about_and_recorded(src, tmp_path):
    c = _copy(src, tmp_path / "c")
    train_ids = Corpus(c).recording_ids(["train"])
    (c / "labels" / "continuous" / f"{train_ids[0]}.parquet").unlink()
    with pytest.warns(AffectflowWarning, match=rf"1 of {len(train_ids)} recordings of partition 'train' have no labels.*{train_ids[0]}"):
        run = train(_cfg(c, tmp_path / "runs"), progress=False)
    info = json.loads((run / "run.json").read_text())
    assert any(train_ids[0] in w for w in info["warnings"])
    assert "have no labels" in (run / "train.log").read_text()


# ---------------------------------------------------------------------------------------------------- case 5
@pytest.mark.parametrize("content,expected", [
    (b"Id,Partition\n0,train\n\xff\xfe,devel\n", "is not UTF-8 text"),
    (b"", "is empty"),
    (b"Name,Split\n0,train\n", "expected the header 'Id,Partition'"),
])
def test_bad_partition_csv_is_one_paragraph(src, tmp_path, capsys, content, expected):
    task = write_muse_task(src, tmp_path / "task", style="2022", features=["acoustic"])
    (task / "metadata" / "partition.csv").write_bytes(content)
    assert main(["import-muse", str(task), str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert expected in err.replace("\n", " ") and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unreadable_partition_map_is_a_corpus_error(src, tmp_path):
    from affectflow.corpus.corpus import read_partition_map

    for content in (b"", b"id,partition\n\xff\xfe,train\n"):
        (tmp_path / "map.csv").write_bytes(content)
        with pytest.raises(CorpusError, match="map.csv' cannot be read as CSV"):
            read_partition_map(tmp_path / "map.csv")


def test_corrupt_corpus_files_name_the_file(src, tmp_path, capsys):
    c = _copy(src, tmp_path / "c")
    (c / "corpus.json").write_text("{not json")
    assert main(["info", str(c)]) == 2
    assert "corpus.json" in capsys.readouterr().err
    c2 = _copy(src, tmp_path / "c2")
    victim = next(iter(sorted((c2 / "features" / "acoustic").glob("*.parquet"))))
    victim.write_bytes(victim.read_bytes()[:100])
    assert main(["train", "--corpus", str(c2), "--runs-dir", str(tmp_path / "runs"), "-q",
                 *[a for o in FAST for a in ("--set", o)]]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert f"{victim.name}' cannot be read as Parquet" in err and "Traceback" not in err


@pytest.mark.parametrize("override,expected", [
    ("model.dropout=5", "`dropout` must be a probability in [0, 1), got 5"),
    ("model.d_model=0", "`d_model` must be an integer >= 1, got 0"),
    ("model.num_layers=-1", "`num_layers` must be an integer >= 1, got -1"),
    ("training.seeds=[3,4,3]", "`training.seeds` lists [3] more than once"),
])
def test_bad_hyperparameters_fail_before_a_run_folder_exists(src, tmp_path, capsys, override, expected):
    runs = tmp_path / "runs"
    assert main(["train", "--corpus", str(src.path), "--runs-dir", str(runs), "-q", "--set", override]) == 2
    err = capsys.readouterr().err
    assert expected in err.replace("\n", " ") and "Traceback" not in err
    assert not runs.exists() or not list(runs.iterdir())


def test_range_checks_reach_nested_blocks_of_every_model():
    base = ["data.corpus=x", "data.features=[a]"]
    with pytest.raises(ConfigError, match=r"`encoder.hidden_size` must be an integer >= 1, got 0; `encoder.dropout`"):
        load_config(None, [*base, "model.type=composite", "model.encoder={type: lstm, hidden_size: 0, dropout: 1.5}"])
    with pytest.raises(ConfigError, match="`kernel_size` must be an integer >= 1"):
        load_config(None, [*base, "model.type=tcn", "model.kernel_size=0"])
    with pytest.raises(ConfigError, match="`channels` must be a non-empty list of integers >= 1"):
        load_config(None, [*base, "model.type=tcn", "model.channels=[8, 0]"])
    load_config(None, [*base, "model.type=tcn", "model.dropout=0.0"])  # the boundary is valid


def test_a_model_that_cannot_be_built_leaves_no_run(src, tmp_path):
    runs = tmp_path / "runs"
    cfg = _cfg(src.path, runs, "model.type=composite", "model.fusion={type: leader_follower, leader: nope}")
    with pytest.raises(ConfigError, match="'nope' is not one of the fused inputs"):
        train(cfg, progress=False)
    assert not runs.exists() or not list(runs.iterdir())


def test_non_utf8_yaml_config(tmp_path, capsys):
    (tmp_path / "c.yaml").write_bytes(b"training:\n  lr: \xff\xfe\n")
    assert main(["train", "-c", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert "is not UTF-8 text" in err and "Traceback" not in err


def test_renamed_feature_column_says_which(src, tmp_path):
    task = write_muse_task(src, tmp_path / "task", style="2022", features=["acoustic"])
    f = task / "feature_segments" / "acoustic" / "2.csv"
    df = pd.read_csv(f)
    df.rename(columns={"acoustic_005": "acoustic_five"}).to_csv(f, index=False)
    with pytest.raises(ImportFormatError) as e:
        import_muse(task, tmp_path / "out", progress=False)
    assert "2.csv: columns differ from the other files of 'acoustic' (first: 0.csv): 88 vs 88 columns; " \
           "missing ['acoustic_005']; unexpected ['acoustic_five']" in str(e.value)


# ---------------------------------------------------------------------------------------------------- case 6
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "f.txt", lambda p: p.write_text("x"))
        with staged_folder(tmp_path / "corpus") as tmp:
            (tmp / "g").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "corpus").stat().st_mode) == 0o777 & ~umask


def test_an_imported_corpus_is_readable_by_the_group(src, tmp_path):
    task = write_muse_task(src, tmp_path / "task", style="2022", features=["acoustic"])
    old = os.umask(0o027)
    try:
        import_muse(task, tmp_path / "out", progress=False)
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert modes == {0o640}


# ---------------------------------------------------------------------------------------------------- case 8
def _sent_task(src: Corpus, out: Path) -> tuple[Path, dict]:
    """A MuSe-Sent layout with arousal (3 classes) and valence (4 classes) segment labels that differ."""
    task = write_muse_task(src, out, style="2022", features=["acoustic"])
    truth = {}
    for dim, edges in (("arousal", [-0.1, 0.1]), ("valence", [-0.3, 0.0, 0.3])):
        for f in (task / "label_segments" / dim).glob("*.csv"):
            g = pd.read_csv(f).groupby("segment_id")["value"].mean()
            cls = np.digitize(g.to_numpy(), edges)
            if dim == "arousal":
                cls = (cls + 1) % 3  # make sure the two dimensions disagree
            pd.DataFrame({"segment_id": g.index, "class_id": cls}).to_csv(f, index=False)
            truth[(dim, f.stem)] = dict(zip(g.index, cls))
    return task, truth


def test_muse_sent_keeps_one_class_column_per_dimension_and_trains(src, tmp_path):
    task, truth = _sent_task(src, tmp_path / "task")
    corpus, report = import_muse(task, tmp_path / "out", progress=False)
    seg = corpus.segments()
    assert {"arousal", "valence"} <= set(seg.columns) and "sentiment" not in seg.columns
    for (dim, rid), classes in truth.items():
        got = seg[seg["recording"] == rid].set_index("segment_id")[dim]
        assert {int(k): int(v) for k, v in got.items()} == {int(k): int(v) for k, v in classes.items()}
    assert (seg["arousal"] != seg["valence"]).any()
    assert corpus.label_sets == {}  # no empty continuous label set
    assert corpus.label_rate_hz == 2.0 and report.grid == {"label_rate_hz": 2.0, "from": "features"}
    n = len(seg)
    assert f"label arousal: 4 files, {n} segment classes" in report.summary()
    run = train(_cfg(corpus.path, tmp_path / "runs", "data.task=segment", "data.targets=[arousal,valence]",
                     "model.type=lstm", "model.hidden_size=8"), progress=False)
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["best"]["devel"]) == {"arousal", "valence"}


# ---------------------------------------------------------------------------------------------------- checkpoint
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoint_refusal_does_not_advise_weights_only_false(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"format": "affectflow-checkpoint", "x": _Evil()}, p)
    with pytest.raises(RunError) as e:
        load_checkpoint(p)
    msg = str(e.value)
    assert "is not an affectflow checkpoint and will not be loaded" in msg
    assert "weights_only=False" not in msg and "weights_only set to False" not in msg
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(RunError, match="will not be loaded"):
        load_checkpoint(tmp_path / "junk.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(RunError, match="not an affectflow checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_segment_rows_that_give_no_training_sample_are_warned_about(src, tmp_path):
    task, _ = _sent_task(src, tmp_path / "task")
    corpus, _ = import_muse(task, tmp_path / "out", progress=False)
    seg = corpus.segments()
    train_id = corpus.recording_ids(["train"])[0]
    seg.loc[seg["recording"] == train_id, ["arousal", "valence"]] = pd.NA  # one train recording loses its labels
    corpus.write_segments(seg)
    n = int((seg["recording"] == train_id).sum())
    with pytest.warns(AffectflowWarning, match=rf"1 of \d+ recordings of partition 'train' have no labelled segment.*{train_id}"):
        run = train(_cfg(corpus.path, tmp_path / "runs", "data.task=segment", "data.targets=[arousal,valence]",
                         "model.type=lstm", "model.hidden_size=8"), progress=False)
    assert any(f"{n} of" in w and "give no training sample" in w for w in json.loads((run / "run.json").read_text())["warnings"])
