"""Recipe step kind ``multitask``: the MuSe 2021 Sent multitask framework from the two best runs of a dimension.

For every group (``per``, default ``data.targets``) the ``top`` (default 2) finished runs of ``source`` with the
best devel score become the subtasks of one :class:`~affectflow.models.multitask.SentMultitaskModel` run: the best
is the main task, the next the related task(s). Its config is the main run's (corpus, task, targets, training),
with ``data.features`` = the members' sets (main first), ``data.pca`` = the members' PCA specs (the main run's
spec wins for a set both use), ``model: {type: sent_multitask, branches: [{features, model}...], shared}`` (each
branch keeps its run's model type and hyperparameters; the classifiers are filled in from the data) and
``training.multitask: sent2021`` (Eq. 13); ``set`` overrides anything. Result ``runs`` (one per group, with its
``members``: main first).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


from affectflow.config import config_from_dict, merge_config, parse_override
from affectflow.corpus.corpus import write_json
from affectflow.errors import ConfigError
from affectflow.experiment import train
from affectflow.runs import Run
from affectflow.recipes.steps import StepKind, runs_arg, register_step, run_devel_score, select_runs


def _pca_of(cfg: dict[str, Any]) -> dict[str, Any]:
    pca = dict(cfg["data"].get("pca") or {})
    if "all" in pca:
        spec = pca.pop("all")
        pca = {**{f: spec for f in cfg["data"]["features"]}, **pca}
    return pca


def multitask_config(members: list[str], shared: int, overrides: list[str] | None = None) -> dict[str, Any]:
    """The ``sent_multitask`` config joining the runs ``members`` (main first; see the module docstring)."""
    cfgs = [Run(m).config_dict for m in members]
    main = json.loads(json.dumps(cfgs[0]))
    feats: list[str] = []
    pca: dict[str, Any] = {}
    branches = []
    for c in cfgs:
        feats += [f for f in c["data"]["features"] if f not in feats]
        pca = {**_pca_of(c), **pca} if c is not cfgs[0] else {**pca, **_pca_of(c)}
        model = {k: v for k, v in c["model"].items() if k != "head"}
        branches.append({"features": list(c["data"]["features"]), "model": model})
    main["data"]["features"] = feats
    main["data"]["pca"] = pca
    main["model"] = {"type": "sent_multitask", "branches": branches, "shared": int(shared)}
    main["training"]["multitask"] = "sent2021"
    main["output"]["name"] = "multitask"
    for o in overrides or []:
        main = merge_config(main, parse_override(str(o)))
    return main


@register_step("multitask")
class MultitaskStep(StepKind):
    """The MuSe 2021 Sent multitask framework of the ``top`` (default 2) best runs of ``source`` per group
    (:mod:`affectflow.recipes.multitask_step`); ``shared`` width, ``set`` overrides."""

    keys = ("source", "per", "top", "shared", "set")
    required = ("source",)

    def validate(self, step, settings):
        top = settings.get("top", 2)
        if not isinstance(top, int) or top < 2:
            raise ConfigError(f"`top:` of multitask step {step.id!r} must be an integer >= 2 (main + related "
                              f"tasks), got {top!r}.")

    def units(self, settings):
        return 2

    def run(self, ctx, settings):
        runs = runs_arg(settings["source"], "`source`")
        chosen = select_runs(runs, settings.get("per", "data.targets"), int(settings.get("top", 2)))
        done_file = ctx.folder / "done.json"
        done = json.loads(done_file.read_text()) if done_file.is_file() else {}
        out = []
        for g, rs in sorted(chosen.items()):
            if len(rs) < 2:
                raise ConfigError(f"The multitask step needs two finished runs for {g!r}; found {len(rs)}.")
            members = [r["run"] for r in rs]
            if g not in done:
                cfg = multitask_config(members, int(settings.get("shared", 64)), settings.get("set"))
                cfg["data"]["corpus"] = str(Path(ctx.corpus).resolve())
                cfg["output"].update(runs_dir=str(ctx.folder / "runs"), plots=False)
                cfg["training"]["num_threads"] = ctx.threads
                done[g] = str(train(config_from_dict(cfg), progress=ctx.progress))
                write_json(done_file, done)
            out.append({"label": f"{g}: multitask of " + " + ".join(r["label"] for r in rs),
                        "params": {"data.targets": rs[0]["params"].get("data.targets")} if rs[0]["params"].get(
                            "data.targets") else {},
                        "run": done[g], "members": members, "member_labels": [r["label"] for r in rs],
                        "devel": run_devel_score(done[g])})
        return {"runs": out}
