"""Recipes: a paper's whole system as one declared pipeline of the existing procedures (``affectflow recipe``).

::

    affectflow recipe list
    affectflow recipe show muse2023 [--budget quick]
    affectflow recipe run muse2023 --corpus C [--out DIR] [--budget quick|paper] [--backend local --workers 2]
                                   [--set name=value ...]
    affectflow recipe run path/to/my.yaml --corpus C

>>> from affectflow.recipes import load_recipe, run_recipe
>>> folder = run_recipe("muse2023", corpus="corpus", budget="quick")     # doctest: +SKIP

Declaring a recipe
------------------
A recipe is a YAML file (the packaged ones are ``src/affectflow/recipes/<name>.yaml``; users may run their own)::

    name: my-recipe
    title: One line
    paper: "Authors, venue"
    params:                                   # every choice, with where it comes from: exactly one of paper / ours
      features: {value: [acoustic, visual], ours: "the corpus's sets (the paper used eGeMAPS, ...)"}
      epochs:   {value: 60, ours: "paper silent"}
      window:   {value: {size: 200, hop: 100}, paper: "4.2"}
    budgets:                                  # parameter values per --budget (paper: the params as declared)
      quick: {epochs: 2}
    steps:                                    # run in order of their references; independent ones in parallel
      - id: unimodal
        kind: sweep                           # a registered step kind (affectflow.recipes.steps.STEP_KINDS)
        title: "Table 2: unimodal GRU per feature set and dimension"
        paper: "Table 2"                      # provenance of the step itself (or ours: ...)
        preset: muse2023-gru                  # a packaged config preset, then `config:` (YAML shape), `set:` list
        config: {training: {epochs: $epochs}, data: {window: $window}}
        each_feature: $features               # $name = a parameter's value; $corpus = the --corpus folder
        grid: {data.targets: [[arousal], [valence]]}
      - id: best
        kind: select
        source: "@unimodal"                   # @step = that step's result; @step.key = a part of it
        top: 1
    tables:                                   # rendered into recipe.md / recipe.json (affectflow.recipes.tables)
      - {id: t2, title: "Unimodal", paper: "Table 2", layout: by_features, source: "@unimodal"}
    figures:                                  # drawn into plots/<id>.png, linked from recipe.md
      - {id: f, title: "Table 2 as bars", kind: table_bars, table: t2}    # affectflow.recipes.figures
    final: {result: "@best", singles: ["@unimodal"], label: "best unimodal"}   # the final comparison line

``when: $flag`` skips a step when the parameter is false (optional steps, e.g. an ablation). Everything is checked
before any work: unknown keys, unknown step kinds, a ``$param`` that is not declared, an ``@step`` that is not an
earlier step, a config that does not validate, unknown personalise options; each is one :class:`ConfigError`
paragraph. ``--set name=value`` overrides a parameter (value parsed as YAML).

Declaring a step kind
---------------------
Subclass :class:`affectflow.recipes.steps.StepKind` and register it; it must wrap an existing procedure (no new
train / predict path) and return a JSON-able result (runs as ``{"runs": [{"label", "params", "run", "devel"}]}``
so that select / personalise / fuse / tables can read it)::

    from affectflow.recipes.steps import StepKind, register_step

    @register_step("pca_sweep")
    class PCASweep(StepKind):
        keys = ("source", "variance")          # allowed keys (besides id, kind, title, paper, ours, when)
        required = ("source",)
        def validate(self, step, settings): ...  # raise ConfigError before any work
        def units(self, settings): return 4    # ~ number of training runs, for the ETA
        def run(self, ctx, settings):          # ctx.folder (own folder, reused on resume), ctx.corpus, ctx.backend,
            ...                                # ctx.workers, ctx.threads
            return {"runs": [...]}

A table layout is a function ``(source, options) -> {"columns": [...], "rows": [{"cells": [...], "sources": [...]}]}``
registered in :data:`affectflow.recipes.tables.TABLE_LAYOUTS`.

Engine rules (reuse of unchanged steps by a hash of settings + input runs, resumption, parallel steps, progress
and ETA): :mod:`affectflow.recipes.engine`.
"""

from affectflow.recipes.engine import list_recipes, run_recipe, show_recipe
from affectflow.recipes.spec import Recipe, load_recipe
from affectflow.recipes.steps import STEP_KINDS, StepKind, register_step
# Modules that register step kinds and table layouts on import (they build on steps / tables).
from affectflow.recipes import multitask_step, paper_tables  # noqa: E402,F401

__all__ = ["Recipe", "STEP_KINDS", "StepKind", "list_recipes", "load_recipe", "register_step", "run_recipe",
           "show_recipe"]
