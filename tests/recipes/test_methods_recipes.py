"""mer2023 (and muse2021-sent) end to end on tiny corpora: every table number is the number of the run (or
yardstick) that produced it, per metric; the submission is written."""

import json

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
    sub = next(folder.glob("steps/submission-*/submission"))
    assert sorted(p.name for p in sub.glob("*.csv")) == ["test1.csv", "test2.csv"]
