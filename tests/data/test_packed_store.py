"""The packed feature store: import-mer packed vs the per-file layout (identical frames, aligned arrays and
training), writes into a packed set, atomic commits, damaged sets, `affectflow upgrade` (old layout -> identical
arrays, resumable), and the progress lines of an import whose output goes to a pipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectflow.cli.main import main
from affectflow.corpus.corpus import Corpus
from affectflow.corpus.mer import import_mer
from affectflow.corpus.upgrade import upgrade_corpus
from affectflow.data.store import SequenceStore
from affectflow.errors import CorpusError
from affectflow.synthetic.mer import generate_mer

SMALL = dict(n_train=40, n_test=(10, 6, 0), frames=(2, 7), utt_dim=5, frame_dim=3, acoustic_layers=False)
SETS = ["utt", "frames"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    generate_mer(root / "gen", **SMALL)
    packed, _ = import_mer(root / "gen", root / "packed", frame_rates={"frames": 5.0}, progress=False)
    files, _ = import_mer(root / "gen", root / "files", frame_rates={"frames": 5.0}, progress=False, storage="files")
    return root, packed, files


def _files(folder: Path) -> list[Path]:
    return [f for f in folder.rglob("*") if f.is_file()]


def test_packed_import_reads_as_the_per_file_layout(corpora):
    root, packed, files = corpora
    ids = packed.recording_ids()
    assert len(ids) == 56
    for fs in SETS:
        assert packed.feature_layout(fs) == "packed" and files.feature_layout(fs) == "files"
        assert sorted(packed.feature_recordings(fs)) == files.feature_recordings(fs) == sorted(ids)
        for rid in ids:
            pd.testing.assert_frame_equal(packed.read_features(fs, rid), files.read_features(fs, rid))
        # one small folder per set (feature_set.json, packed.json, values, times, index), not one file per clip
        assert len(_files(root / "packed" / "features" / fs)) == 5
        assert len(_files(root / "files" / "features" / fs)) == 57
    assert packed.meta["version"] == 2 and packed.meta["packed_feature_sets"] == SETS[::-1]
    assert files.meta["version"] == 1 and "packed_feature_sets" not in files.meta
    assert not packed.has_features("utt", "nope") and packed.has_features("utt", ids[0])
    with pytest.raises(CorpusError, match="no frames of feature set 'utt'"):
        packed.read_features("utt", "nope")
    # the raw arrays are the .npy files, byte for byte
    a = np.load(root / "gen" / "features" / "frames" / f"{ids[3]}.npy")
    np.testing.assert_array_equal(packed.read_features("frames", ids[3]).iloc[:, 1:].to_numpy(), a)


def test_aligned_store_is_identical_and_one_cache_file_per_set(corpora):
    root, packed, files = corpora
    ids = packed.recording_ids(["train"])
    a = SequenceStore(packed, SETS, [], ids)
    b = SequenceStore(files, SETS, [], ids)
    for i in range(len(ids)):
        assert a.records[i].length == b.records[i].length
        ra, rb = a.read(i), b.read(i)
        for fs in SETS:
            np.testing.assert_array_equal(ra[fs], rb[fs])
        for s, e in ((1, 3), (0, 1)):  # windows read by offset inside the shared cache array
            np.testing.assert_array_equal(a.read(i, s, e)["frames"], b.read(i, s, e)["frames"])
    assert [f.name.split(".")[0] for f in (root / "packed" / "cache" / "aligned" / "frames").iterdir()] == ["packed"]
    assert len(list((root / "files" / "cache" / "aligned" / "frames").iterdir())) == len(ids)
    again = SequenceStore(packed, SETS, [], ids)  # reuses the cache
    assert again.records[5].arrays["utt"] == a.records[5].arrays["utt"]


def test_write_into_packed_set_rewrites_it_atomically(corpora, tmp_path):
    root, packed, _ = corpora
    import shutil

    shutil.copytree(root / "packed", tmp_path / "c")
    c = Corpus(tmp_path / "c")
    rid = c.recording_ids()[0]
    before = c.packed_features("utt").generation
    frame = pd.DataFrame({"time": [0.0], **{col: [float(k)] for k, col in enumerate(c.feature_set("utt").columns)}})
    c.write_features("utt", rid, frame)
    assert c.packed_features("utt").generation != before
    np.testing.assert_array_equal(c.read_features("utt", rid).iloc[0, 1:].to_numpy(), np.arange(5, dtype=np.float32))
    assert len(_files(tmp_path / "c" / "features" / "utt")) == 5  # the old generation is gone
    c.remove_features("utt", rid)
    assert not c.has_features("utt", rid) and len(c.feature_recordings("utt")) == 55
    # an error half-way leaves the set as it was and no new files behind
    gen = c.packed_features("utt").generation

    def broken():
        yield c.recording_ids()[1], c.packed_features("utt").frames(c.recording_ids()[1])
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        c.write_packed_features("utt", broken())
    assert c.packed_features("utt").generation == gen and len(c.feature_recordings("utt")) == 55
    assert len(_files(tmp_path / "c" / "features" / "utt")) == 5
    # the checks of write_features apply
    with pytest.raises(CorpusError, match="strictly increasing"):
        c.write_packed_features("frames", [(rid, (np.array([0.0, 0.0]), np.zeros((2, 3))))])
    with pytest.raises(CorpusError, match="Invalid recording id"):
        c.write_packed_features("utt", [("../x", (np.zeros(1), np.zeros((1, 5))))])


def test_damaged_packed_sets_are_one_paragraph_errors(corpora, tmp_path):
    root, _, _ = corpora
    import shutil

    shutil.copytree(root / "packed", tmp_path / "c")
    folder = tmp_path / "c" / "features" / "utt"
    meta = json.loads((folder / "packed.json").read_text())
    values = folder / meta["values"]
    values.write_bytes(values.read_bytes()[:-4])
    with pytest.raises(CorpusError, match="damaged"):
        Corpus(tmp_path / "c").read_features("utt", "sample_00000")
    index = folder / meta["index"]
    pd.DataFrame({"recording": ["../../etc"], "start": [0], "length": [1]}).to_parquet(index)
    with pytest.raises(CorpusError, match="invalid recording id.*etc"):
        Corpus(tmp_path / "c").has_features("utt", "sample_00000")


def test_upgrade_old_layout_gives_identical_arrays_and_resumes(corpora, tmp_path):
    root, _, files = corpora
    import shutil

    shutil.copytree(root / "files", tmp_path / "old")
    old = Corpus(tmp_path / "old")
    ids = old.recording_ids()
    want = {(fs, r): old.read_features(fs, r) for fs in SETS for r in ids}
    dry = upgrade_corpus(tmp_path / "old", dry_run=True, progress=False)
    assert [e["status"] for e in dry["sets"]] == ["would pack", "would pack"]
    assert Corpus(tmp_path / "old").feature_layout("utt") == "files"  # a dry run changes nothing
    # interrupted after the commit of one set, before its files were deleted: the set reads packed, a re-run cleans
    c = Corpus(tmp_path / "old")
    keep = {r: (tmp_path / "old" / "features" / "utt" / f"{r}.parquet").read_bytes() for r in ids[:3]}
    c.pack_feature_set("utt")
    for r, b in keep.items():
        (tmp_path / "old" / "features" / "utt" / f"{r}.parquet").write_bytes(b)
    result = upgrade_corpus(tmp_path / "old", progress=False)
    assert {e["set"]: e["status"] for e in result["sets"]} == {"frames": "packed", "utt": "already packed"}
    assert Path(result["report"]).is_file()
    new = Corpus(tmp_path / "old")
    for (fs, r), frame in want.items():
        pd.testing.assert_frame_equal(new.read_features(fs, r), frame)
    assert len(_files(tmp_path / "old" / "features" / "utt")) == 5
    # a corpus of long recordings is left alone unless sets are named
    assert upgrade_corpus(tmp_path / "old", dry_run=True, progress=False)["sets"][0]["status"] == "already packed"


def test_upgrade_leaves_continuous_corpora_alone(tmp_path):
    from affectflow.synthetic.corpus import generate_corpus

    c = generate_corpus(tmp_path / "muse", n_subjects=4, duration_s=30.0, duration_jitter_s=4.0, progress=False)
    res = upgrade_corpus(c.path, progress=False)
    assert res["clip_corpus"] is False
    assert all(e["status"].startswith("skipped") for e in res["sets"])
    assert all(c.feature_layout(fs) == "files" for fs in c.feature_sets)


def test_cli_import_and_upgrade_print_one_line_per_phase(corpora, tmp_path, capsys, monkeypatch):
    root, _, _ = corpora
    monkeypatch.delenv("AFFECTFLOW_PROGRESS", raising=False)
    assert main(["import-mer", str(root / "gen"), str(tmp_path / "c"), "--frame-rate", "frames=5",
                 "--storage", "files"]) == 0
    err = capsys.readouterr().err  # pytest's capture is not a terminal: lines, not bars
    for phase in ("reading frames: 56 files", "reading utt: 56 files", "writing frames: 56 clips",
                  "writing utt: 56 clips", "writing labels and recordings: done"):
        assert f"[affectflow] {phase}" in err
    assert err.count("\n") == 5 and "\r" not in err
    assert main(["upgrade", str(tmp_path / "c"), "--dry-run"]) == 0
    assert "utt: would pack, 56 recordings" in capsys.readouterr().out
    assert main(["upgrade", str(tmp_path / "c")]) == 0
    out = capsys.readouterr()
    assert "frames: packed, 56 recordings" in out.out and "[affectflow] packing utt: 56 recordings" in out.err
    assert Corpus(tmp_path / "c").feature_layout("frames") == "packed"
    assert main(["upgrade", str(tmp_path / "nope")]) == 2


def test_extract_refuses_to_write_into_a_packed_set(corpora, tmp_path):
    from affectflow.errors import ConfigError
    from affectflow.features.pipeline import extract

    import shutil

    import soundfile as sf

    from affectflow.corpus.media import write_media_table

    root, _, _ = corpora
    shutil.copytree(root / "packed", tmp_path / "c")
    c = Corpus(tmp_path / "c")
    rid = c.recording_ids()[0]
    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    write_media_table(c, pd.DataFrame([{"id": rid, "audio": tmp_path / "a.wav"}]))
    with pytest.raises(ConfigError, match=r"\['utt'\].*are packed"):
        extract(c, {"features": {"utt": {"type": "egemaps"}}}, progress=False, report=False)


def test_align_many_equals_align_to_grid_per_recording():
    from affectflow.data.align import align_many, align_to_grid

    rng = np.random.default_rng(3)
    cases = [(np.arange(7) / 5.0, np.arange(7) / 5.0, 0.2),           # same times
             (np.zeros(1), np.arange(6) / 5.0, None),                 # one utterance frame, a longer grid
             (np.sort(rng.uniform(0, 3, 40)), np.arange(12) / 4.0, None),  # denser frames: means per step
             (np.array([0.0, 1.3, 2.9]), np.arange(15) / 5.0, 0.5),   # sparse frames: holds and gaps
             (np.zeros(1), np.zeros(1), None)]
    for ft, grid, period in cases:
        v = rng.normal(size=(9, len(ft), 4)).astype(np.float32)
        v[rng.random(v.shape) < 0.2] = np.nan
        many = align_many(ft, v, grid, frame_period=period)
        for r in range(len(v)):
            np.testing.assert_array_equal(many[r], align_to_grid(ft, v[r], grid, frame_period=period))
