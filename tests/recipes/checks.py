"""Shared check of the recipe tests: every number of a recipe's tables is the number of the run that produced it."""

import json
from pathlib import Path

import pytest

from affectflow.experiment import evaluate
from affectflow.predictions import score
from affectflow.procedures.fuse import is_fusion_run, run_partition_predictions


def _personalised(run: str) -> bool:
    info = json.loads((Path(run) / "run.json").read_text())
    if info.get("kind") == "personalisation":
        return True
    if is_fusion_run(run):
        return any(_personalised(m) for m in json.loads((Path(run) / "fusion.json").read_text())["members"])
    return False


def check_table_numbers(folder: Path) -> int:
    """Assert every table source value equals ``affectflow evaluate`` of its run (personalised runs, which cannot
    re-predict: the score of their saved predictions) and appears in recipe.md; return how many were checked."""
    doc = json.loads((folder / "recipe.json").read_text())
    md = (folder / "recipe.md").read_text()
    cache: dict = {}
    checked = 0
    for table in doc["tables"]:
        assert "note" not in table or "not built" not in table["note"], table
        for row in table["rows"]:
            for src in row["sources"]:
                run, part, target = src["run"], src["partition"], src["target"]
                metric = src.get("metric", "ccc")
                assert f"{src['value']:.4f}" in md
                if _personalised(run):
                    value = score(run_partition_predictions(run, part))[target][metric]
                else:
                    if (run, part) not in cache:
                        cache[(run, part)] = evaluate(run, partitions=[part], progress=False)[1]
                    value = cache[(run, part)]["partitions"][part][target][metric]
                assert value == pytest.approx(src["value"], abs=1e-5), (table["id"], row["cells"], src)
                checked += 1
    return checked
