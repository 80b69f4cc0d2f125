"""The muse2023 recipe end to end on a tiny personalisation corpus: every table number is the number of the run
that produced it (``affectflow evaluate`` on trained and fused runs, the saved predictions of personalised ones), a
rerun reuses every step, a changed parameter redoes only the steps it reaches, the submission is written."""

import json
from pathlib import Path

import pytest

from affectflow.recipes import run_recipe
from affectflow.synthetic.corpus import generate_corpus

from .checks import check_table_numbers

TINY = ["features=[acoustic, visual]", "sizes=[2]", "top_sets=2", "ensemble_top=2", "epochs=1", "patience=1",
        "d_model=8", "window={size: 20, hop: 10}",
        "personalise={seeds: 2, window: 10, hop: 5, epochs: 1, patience: 1, combine: average}"]


@pytest.fixture(scope="module")
def recipe_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("muse2023")
    corpus = generate_corpus(root / "corpus", n_subjects=8, duration_s=150.0, duration_jitter_s=10.0,
                             layout="personalisation", seed=2, progress=False)
    lines = []
    folder = run_recipe("muse2023", corpus=corpus.path, out=root / "recipe", budget="quick", overrides=TINY,
                        backend="serial", write=lines.append)
    return folder, corpus, lines


def test_every_table_number_is_the_number_of_its_run(recipe_folder):
    folder, corpus, _ = recipe_folder
    doc = json.loads((folder / "recipe.json").read_text())
    md = (folder / "recipe.md").read_text()
    assert check_table_numbers(folder) >= 15
    ys = [s for t in doc["tables"] for r in t["rows"] for s in r["sources"] if s.get("yardstick")]
    assert ys and all("yardstick-" in s["run"] for s in ys)  # the linear yardstick rows are filled and checked
    t2 = next(t for t in doc["tables"] if t["id"] == "table2")
    assert [r["cells"][1] for r in t2["rows"][:2]] == ["acoustic", "visual"]
    assert t2["rows"][-1]["yardstick"]
    t6 = next(t for t in doc["tables"] if t["id"] == "table6")
    assert any(r.get("ceiling") for r in t6["rows"])
    assert doc["final_line"].startswith("Final (test)") and " CCC " in doc["final_line"] and doc["final_line"] in md
    assert doc["params"]["lr"] == {"value": 0.001, "paper": "4.2: Adam, initial lr 1e-3"}


def test_figures_are_drawn_linked_and_hold_the_runs_numbers(recipe_folder):
    folder, _, _ = recipe_folder
    doc = json.loads((folder / "recipe.json").read_text())
    md = (folder / "recipe.md").read_text()
    figs = {f["id"]: f for f in doc["figures"]}
    assert set(figs) == {"personalisation_gains", "table6"}
    for f in figs.values():
        assert (folder / f["file"]).read_bytes()[:4] == b"\x89PNG" and f"]({f['file']})" in md
    gains = figs["personalisation_gains"]["data"]
    assert set(gains) == {"arousal", "valence"}
    for t, d in gains.items():  # the per-subject numbers are those of the personalisation report
        rep = json.loads((Path(d["run"]) / "report.json").read_text())["partitions"]["test"]["per_subject"]
        assert d["subjects"] == {s: [v["before"][t]["ccc"], v["after"][t]["ccc"]] for s, v in rep.items()}
    (panel,) = figs["table6"]["data"]["panels"]
    assert panel["groups"] == ["arousal", "valence", "Combined"] and len(panel["series"]) == 3
    assert list(panel["references"])[0].startswith("Linear yardstick")


def test_submission_and_progress(recipe_folder):
    folder, corpus, lines = recipe_folder
    sub = next(folder.glob("steps/submission-*/submission"))
    test_ids = corpus.recording_ids(["test"])
    for dim in ("arousal", "valence"):
        assert sorted(p.stem for p in (sub / "label_segments" / dim).glob("*.csv")) == sorted(test_ids)
    assert any("step 1/8 unimodal (sweep): started" in s for s in lines)
    assert any("finished in" in s and "ETA" in s for s in lines)


def test_rerun_reuses_and_a_change_redoes_only_what_it_reaches(recipe_folder):
    folder, corpus, _ = recipe_folder
    before = sorted(p.name for p in (folder / "steps").iterdir())
    lines = []
    run_recipe("muse2023", corpus=corpus.path, out=folder, budget="quick", overrides=TINY, backend="serial",
               write=lines.append)
    assert sorted(p.name for p in (folder / "steps").iterdir()) == before
    assert sum("reused" in s for s in lines) == 7 and not any("started" in s for s in lines)
    # another ensemble size: unimodal, combinations, early fusion and personalisation are kept
    lines = []
    run_recipe("muse2023", corpus=corpus.path, out=folder, budget="quick", overrides=[*TINY, "ensemble_top=1"],
               backend="serial", write=lines.append)
    started = [s.split()[4] for s in lines if ": started" in s]
    assert started == ["personalised", "ensemble", "submission"], lines
    assert any("unimodal (sweep): reused" in s for s in lines)
    # a step killed while running continues in its folder: the sweep keeps its finished runs
    state = json.loads((folder / "state.json").read_text())
    state["steps"]["early"]["status"] = "running"
    (folder / "state.json").write_text(json.dumps(state))
    runs_before = sorted(p.name for p in (folder / "steps").glob("early-*/sweep/runs/*"))
    lines = []
    run_recipe("muse2023", corpus=corpus.path, out=folder, budget="quick", overrides=[*TINY, "ensemble_top=1"],
               backend="serial", write=lines.append)
    assert any("early (sweep): continuing" in s for s in lines), lines
    assert sorted(p.name for p in (folder / "steps").glob("early-*/sweep/runs/*")) == runs_before
