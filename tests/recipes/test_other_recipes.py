"""muse2021-stress and abaw5 end to end on a tiny corpus: the paper tables are filled from the runs that produced
them, the submissions are written, independent steps run through the executor."""

import json

import pandas as pd
import pytest

from affectflow.errors import ConfigError
from affectflow.recipes import run_recipe
from affectflow.synthetic.corpus import generate_corpus

from .checks import check_table_numbers


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("rc") / "corpus", n_subjects=8, duration_s=90.0,
                           duration_jitter_s=10.0, seed=4, progress=False)


def test_muse2021_stress(corpus, tmp_path):
    lines = []
    folder = run_recipe("muse2021-stress", corpus=corpus.path, out=tmp_path / "r", budget="quick", backend="serial",
                        overrides=["epochs=1", "hidden=4", "gcnn_channels=4", "fusion_hidden=4", "fusion_epochs=1",
                                   "crossfit_folds=2", "window={size: 20, hop: 10}"], write=lines.append)
    assert check_table_numbers(folder) >= 30
    doc = json.loads((folder / "recipe.json").read_text())
    t2 = next(t for t in doc["tables"] if t["id"] == "table2")
    assert [r["cells"][:3] for r in t2["rows"][:3]] == [["acoustic", "A", "LSTM"], ["acoustic", "A", "Self-Attn+LSTM"],
                                                        ["acoustic", "A", "GCNN+LSTM"]]
    t4 = next(t for t in doc["tables"] if t["id"] == "table4")
    assert [r["cells"][1] for r in t4["rows"][:5]] == ["A+V", "A+B", "V+B", "A+V+B", "A+V+B"]
    assert t4["rows"][-1]["yardstick"] and t4["rows"][-1]["sources"]
    # each unimodal run was cross-fitted once although it is in several combinations
    late = json.loads((next(folder.glob("steps/late-*")) / "done.json").read_text())
    assert len(late) == 5
    sub = next(folder.glob("steps/submission-*/submission"))
    assert len(list((sub / "label_segments" / "valence").glob("*.csv"))) == len(corpus.recording_ids(["test"]))
    assert "Final (test): staged late fusion" in (folder / "recipe.md").read_text()
    (fig,) = doc["figures"]  # unimodal runs and fusions drawn, the yardstick as reference marks
    assert (folder / fig["file"]).is_file() and [p["title"] for p in fig["data"]["panels"]] == [
        t2["title"], t4["title"]]
    assert len(fig["data"]["panels"][0]["series"]) == 7 and fig["data"]["panels"][1]["references"]


def test_abaw5(corpus, tmp_path):
    folder = run_recipe("abaw5", corpus=corpus.path, out=tmp_path / "r", budget="quick", backend="serial",
                        overrides=["folds=3", "epochs=1", "window={size: 20, hop: 14}",
                                   "eval_window={size: 20, hop: 14}"], write=lambda s: None)
    assert check_table_numbers(folder) >= 8
    doc = json.loads((folder / "recipe.json").read_text())
    t1 = next(t for t in doc["tables"] if t["id"] == "table1")
    assert t1["columns"] == ["Emotion", "Method", "Fold 0", "Fold 1", "Fold 2"]
    assert [r["cells"][:2] for r in t1["rows"]] == [["valence", "LFAN"], ["valence", "CAN"], ["arousal", "LFAN"],
                                                    ["arousal", "CAN"], ["valence", t1["rows"][4]["cells"][1]],
                                                    ["arousal", t1["rows"][5]["cells"][1]]]
    assert t1["rows"][0]["cells"][3] == "–" and t1["rows"][1]["cells"][3] != "–"  # LFAN: fold 0 only
    assert all(r.get("yardstick") for r in t1["rows"][4:])
    can = next(folder.glob("steps/submit_can-*"))
    assert sorted(p.name for p in can.iterdir()) == ["fold-0", "fold-1"] or \
        sorted(p.name for p in can.iterdir()) == ["fold-0", "fold-2"]  # fold 0 + the best other fold (devel)
    f = next((can / "fold-0").glob("*.txt"))
    assert list(pd.read_csv(f).columns) == ["image_location", "valence", "arousal"]
    assert doc["final"]["label"] == "CAN fold average"
    (fig,) = doc["figures"]  # Table 1 as bars: a panel per emotion, a series per method, folds on the x axis
    panels = fig["data"]["panels"]
    assert [p["groups"] for p in panels] == [["Fold 0", "Fold 1", "Fold 2"]] * 2
    assert list(panels[0]["series"]) == ["LFAN", "CAN"] and len(panels[0]["references"]) == 1
    assert panels[0]["series"]["CAN"][0] == float(t1["rows"][1]["cells"][2])


def test_a_model_that_cannot_be_built_fails_before_any_step(corpus, tmp_path):
    with pytest.raises(ConfigError, match="step 'can'.*not modalities"):
        run_recipe("abaw5", corpus=corpus.path, out=tmp_path / "r", budget="quick", backend="serial",
                   overrides=["can_channels={visual: [4], acoustic: [4], embedding: [4]}"], write=lambda s: None)
    assert not list((tmp_path / "r").glob("steps/*"))
