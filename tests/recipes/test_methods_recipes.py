"""mer2023 (and muse2021-sent) end to end on tiny corpora: every table number is the number of the run (or
yardstick) that produced it, per metric; the submission is written."""

import json
from pathlib import Path

import pytest

from affectflow.corpus.mer import import_mer
from affectflow.recipes import run_recipe
from affectflow.synthetic.mer import generate_mer

from .checks import check_table_numbers


@pytest.fixture(scope="module")
def mer_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("mer")
    generate_mer(root / "src", n_train=60, n_test=(15, 15, 0), frames=(4, 8), seed=2)
    corpus, _ = import_mer(root / "src", root / "corpus", frame_rates={"frames": 5.0}, progress=False)
    return corpus


def test_mer2023(mer_corpus, tmp_path):
    folder = run_recipe("mer2023", corpus=mer_corpus.path, out=tmp_path / "r", budget="quick", backend="serial",
                        overrides=["epochs=2", "d_model=8", "test_partitions=[test1, test2]"])
    assert check_table_numbers(folder) == 3 * 3 * 5  # 3 partitions x 3 metrics x (3 structures, fused, linear)
    doc = json.loads((folder / "recipe.json").read_text())
    t1 = doc["tables"][0]
    assert t1["columns"][2:] == ["1 (parallel)", "2 (pairwise)", "3 (hierarchical)", "1+2+3 fused (Eq. 10-11)",
                                 "Linear yardstick (logistic + ridge)"]
    com = next(r for r in t1["rows"] if r["cells"][:2] == ["test1", "Com (MER score, ↑)"])
    dis = next(r for r in t1["rows"] if r["cells"][:2] == ["test1", "Dis (weighted F1, ↑)"])
    dim = next(r for r in t1["rows"] if r["cells"][:2] == ["test1", "Dim (MSE, ↓)"])
    for c, d, m in zip(com["sources"], dis["sources"], dim["sources"]):
        assert c["value"] == pytest.approx(d["value"] - 0.25 * m["value"])
    fusion = json.loads((next(folder.glob("steps/fused-*")) / "fused-all" / "fusion.json").read_text())
    assert fusion["per_target"] is False and len(fusion["members"]) == 3  # one weight per system (Eq. 10-11)
    assert "nan" not in doc["final_line"] and "weighted F1" in doc["final_line"], doc["final_line"]
    sub = next(folder.glob("steps/submission-*/submission"))
    assert sorted(p.name for p in sub.glob("*.csv")) == ["test1.csv", "test2.csv"]


def test_muse2021_sent(tmp_path):
    from affectflow.synthetic.corpus import generate_corpus

    corpus = generate_corpus(tmp_path / "c", n_subjects=8, duration_s=90.0, duration_jitter_s=10.0, seed=4,
                             progress=False)
    folder = run_recipe("muse2021-sent", corpus=corpus.path, out=tmp_path / "r", budget="quick", backend="serial",
                        overrides=["epochs=1", "models=[{type: way2, d_model: 4, num_heads: 1, lstm_hidden: 4}]",
                                   "shared=4"])
    # Table II: 2 sets x (raw, PCA) x 1 model + 4 yardstick rows; Table III/IV: 1 + 1; Table V: 6 cells
    assert check_table_numbers(folder) == 8 + 2 + 6
    doc = json.loads((folder / "recipe.json").read_text())
    t2 = doc["tables"][0]
    assert [r["cells"][0] for r in t2["rows"][:4]] == ["acoustic", "acoustic‾", "visual", "visual‾"]
    assert t2["rows"][1]["cells"][1].startswith("88→")  # PCA keeps fewer than the 88 columns
    if doc.get("final"):  # classification targets are compared with the task's own metric, never a NaN CCC
        assert "nan" not in doc["final_line"] and "macro F1" in doc["final_line"], doc["final_line"]
    t5 = doc["tables"][2]
    (row,) = t5["rows"]
    mt = json.loads((tmp_path / "r" / "recipe.json").read_text())
    multitask = next(s for s in row["sources"] if s["column"].startswith("multitask"))["run"]
    cfg = (Path(multitask) / "config.yaml").read_text()
    assert "sent_multitask" in cfg and "sent2021" in cfg and mt
    # the MuSe-Sent submission of the multitask run: segment_id,class_id per test recording
    sub = next(folder.glob("steps/submission-*/submission"))
    files = sorted(p.stem for p in (sub / "label_segments" / "sentiment").glob("*.csv"))
    assert files == sorted(corpus.recording_ids(["test"]))
    assert (sub / "label_segments" / "sentiment" / f"{files[0]}.csv").read_text().startswith("segment_id,class_id")
