"""Recipe files are validated up front: one ConfigError paragraph before any work; list / show; provenance."""

import pytest

from affectflow.cli.main import main
from affectflow.errors import ConfigError
from affectflow.recipes import list_recipes, load_recipe, show_recipe
from affectflow.recipes.spec import packaged_names

GOOD = """
name: mine
title: test recipe
params:
  feats: {value: [acoustic], ours: "test"}
  epochs: {value: 3, paper: "Table 9"}
budgets:
  quick: {epochs: 1}
steps:
  - id: a
    kind: sweep
    each_feature: $feats
    config: {training: {epochs: $epochs}}
  - id: b
    kind: select
    source: "@a"
tables:
  - {id: t, layout: by_features, source: "@a"}
"""


def _write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_packaged_recipes_parse_in_both_budgets():
    assert {"muse2023", "muse2021-stress", "abaw5"} <= set(packaged_names())
    for name in packaged_names():
        for budget in ("quick", "paper"):
            r = load_recipe(name, budget=budget)
            assert r.steps and r.tables
    assert all(not title.startswith("(invalid") for _, title in list_recipes())


def test_budget_and_set_change_values_and_record_provenance(tmp_path):
    p = _write(tmp_path, GOOD)
    r = load_recipe(p, budget="paper")
    assert r.params["epochs"].value == 3 and r.params["epochs"].provenance() == "paper: Table 9"
    q = load_recipe(p, budget="quick", overrides=["feats=[visual, physio]"])
    assert q.params["epochs"].value == 1 and q.params["epochs"].source == "ours"
    assert q.params["feats"].value == ["visual", "physio"] and "--set" in q.params["feats"].note
    text = show_recipe(q)
    assert "paper: Table 9" not in text and "--budget quick" in text and "@a" in text


@pytest.mark.parametrize("edit, message", [
    (("kind: select", "kind: selekt"), "unknown kind 'selekt'"),
    (("source: \"@a\"\n", "source: \"@a\"\n    topp: 2\n"), r"unknown key\(s\) \['topp'\]"),
    (("each_feature: $feats", "each_feature: $featz"), r"parameter \$featz, which is not declared"),
    (("source: \"@a\"\ntables", "source: \"@zz\"\ntables"), "reads @zz, which is not a step"),
    (("epochs: {value: 3, paper: \"Table 9\"}", "epochs: {value: 3}"), "exactly one of `paper:` / `ours:`"),
    (("config: {training: {epochs: $epochs}}", "config: {training: {epoks: 2}}"), "epoks"),
    (("layout: by_features", "layout: by_feet"), "unknown layout 'by_feet'"),
    (("source: \"@a\"}\n", "source: \"@a\"}\nfigures:\n  - {id: f, kind: pie, table: t}\n"),
     "unknown kind 'pie'"),
    (("source: \"@a\"}\n", "source: \"@a\"}\nfigures:\n  - {id: f, kind: table_bars, table: t9}\n"),
     "draws table 't9', which is not a table"),
    (("source: \"@a\"}\n", "source: \"@a\"}\nfigures:\n  - {id: f, kind: subject_gains, source: \"@q\"}\n"),
     "reads @q, which is not a step"),
])
def test_bad_recipes_fail_before_any_work(tmp_path, edit, message):
    old, new = edit
    assert old in GOOD
    with pytest.raises(ConfigError, match=message):
        load_recipe(_write(tmp_path, GOOD.replace(old, new, 1)))


def test_forward_reference_and_unknown_set_are_refused(tmp_path):
    text = GOOD.replace("  - id: a\n", "  - id: z\n    kind: select\n    source: \"@b\"\n  - id: a\n", 1)
    with pytest.raises(ConfigError, match="a later step"):
        load_recipe(_write(tmp_path, text))
    r = load_recipe("muse2023", overrides=["personalise.combine=select"])
    assert r.params["personalise"].value["combine"] == "select" and r.params["personalise"].value["seeds"] == 10
    with pytest.raises(ConfigError, match="is not a mapping"):
        load_recipe("muse2023", overrides=["epochs.x=1"])
    with pytest.raises(ConfigError, match="'nope' is not a parameter"):
        load_recipe(_write(tmp_path, GOOD), overrides=["nope=1"])
    with pytest.raises(ConfigError, match="Unknown recipe 'nope'"):
        load_recipe("nope")


def test_cli_list_show_and_errors(capsys, tmp_path):
    assert main(["recipe", "list"]) == 0
    assert "muse2023:" in capsys.readouterr().out
    assert main(["recipe", "show", "muse2023", "--budget", "quick"]) == 0
    out = capsys.readouterr().out
    assert "paper: 4.2: Adam, initial lr 1e-3" in out and "ours: `--budget quick`" in out
    assert main(["recipe", "show", str(_write(tmp_path, GOOD.replace("kind: select", "kind: x")))]) == 2
    assert "unknown kind 'x'" in capsys.readouterr().err
    assert main(["recipe", "run", "muse2023"]) == 2
    assert "needs --corpus" in capsys.readouterr().err


def test_address_is_the_ray_address_for_the_run_only(monkeypatch, tmp_path):
    import os

    import affectflow.recipes.engine as engine

    seen = []
    monkeypatch.setattr(engine, "_run_recipe", lambda recipe, **kw: seen.append(os.environ.get("RAY_ADDRESS")) or tmp_path)
    monkeypatch.setenv("RAY_ADDRESS", "before")
    assert engine.run_recipe("muse2023", corpus="c", address="ray://head:10001") == tmp_path
    assert seen == ["ray://head:10001"] and os.environ["RAY_ADDRESS"] == "before"
    monkeypatch.delenv("RAY_ADDRESS")
    engine.run_recipe("muse2023", corpus="c", address="auto")
    assert seen[-1] == "auto" and "RAY_ADDRESS" not in os.environ
    engine.run_recipe("muse2023", corpus="c")  # no address: the environment is left alone
    assert seen[-1] is None
