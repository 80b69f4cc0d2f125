"""Running a recipe: step order, reuse of unchanged steps, parallel independent steps, progress, the report.

Rules of :func:`run_recipe`:

- **Reuse.** A step's key is ``sha256`` of its kind and its settings with every ``$param`` and ``@step`` reference
  replaced (so it includes the corpus, the budget's values and the run folders of the steps it reads: the same rule
  as extraction: same inputs + same settings = same output). Its folder is ``steps/<id>-<key[:10]>``. A step
  recorded as finished under the same key in ``state.json`` is reused without work; a step that was started but not
  finished (killed) runs again **in the same folder**, where the procedures continue (sweeps and cv skip their
  finished runs; personalisation skips finished members).
- **Order and parallelism.** Steps run as soon as the steps they read have finished. Several ready steps run in
  parallel through the executor backend (``--backend``, ``--workers``; :mod:`affectflow.execution`), one
  worker each; a step running alone gets all workers for its own jobs (sweep cells, cv folds, cross-fitting).
- **Progress.** One line per step start / end with the elapsed time and an ETA (remaining cost units × the mean
  seconds per unit of the steps finished in this process; a unit is about one training run).
- **Report.** After the steps: ``recipe.json`` (parameters with provenance, step results, tables) and
  ``recipe.md`` (the tables in the papers' layouts, :mod:`affectflow.recipes.tables`), plus the final comparison.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from affectflow.corpus.corpus import Corpus, atomic_write, write_json
from affectflow.errors import AffectflowError, ConfigError, RunError
from affectflow.execution import get_executor
from affectflow.fsutil import check_inside, out_folder
from affectflow.recipes.figures import build_figures
from affectflow.recipes.spec import Recipe, load_recipe, packaged_names, substitute_params, substitute_refs
from affectflow.recipes.steps import STEP_KINDS, StepContext
from affectflow.recipes.tables import write_report
from affectflow.tracking import finish_parent, log_tree, safely, start_parent

ENGINE_VERSION = 1


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def step_key(kind: str, settings: dict[str, Any]) -> str:
    """The reuse key of a step: sha256 of its kind and fully resolved settings."""
    text = json.dumps({"v": ENGINE_VERSION, "kind": kind, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _step_job(job: dict[str, Any]) -> dict[str, Any]:
    """Executor job: run one step (top-level, so process pools can pickle it)."""
    ctx = StepContext(Path(job["folder"]), job["corpus"], job["backend"], job["workers"], job["threads"], False)
    try:
        # <recipe>/steps/<step>: a symlink planted inside the recipe folder cannot take the step elsewhere
        check_inside(ctx.folder.parent.parent, ctx.folder, what="step folder", error=RunError, is_folder=True)
        ctx.folder.mkdir(parents=True, exist_ok=True)
        return {"ok": True, "result": STEP_KINDS[job["kind"]].run(ctx, job["settings"])}
    except AffectflowError as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    except Exception as e:  # noqa: BLE001 - reported with the step's name; the recipe stops
        return {"ok": False, "error": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"}


class Progress:
    """Prints step progress with elapsed time and ETA (to stderr, or to ``write``)."""

    def __init__(self, total_units: int, enabled: bool = True, write: Callable[[str], None] | None = None) -> None:
        self.total, self.done_units, self.spent, self.t0 = max(total_units, 1), 0, 0.0, time.perf_counter()
        self.enabled = enabled
        self.write = write or (lambda s: print(s, file=sys.stderr, flush=True))

    def eta(self) -> str:
        if self.done_units == 0:
            return "ETA unknown"
        left = (self.total - self.done_units) * self.spent / self.done_units
        return f"ETA {_fmt_s(max(left, 0))}"

    def say(self, text: str) -> None:
        if self.enabled:
            self.write(f"[recipe {_fmt_s(time.perf_counter() - self.t0)}] {text}")

    def finished(self, units: int, seconds: float, reused: bool) -> None:
        if reused:
            self.total = max(self.total - units, 1)
            return
        self.done_units += units
        self.spent += seconds


def run_recipe(recipe: Recipe | str | Path, *, address: str | None = None, **kwargs: Any) -> Path:
    """Run (or continue) a recipe on ``corpus``; return the recipe folder (see the module docstring and
    :func:`_run_recipe` for the other arguments).

    ``address`` (``backend="ray"``): the Ray cluster every step's jobs go to, ``"auto"`` (the one running here) or
    ``"ray://host:port"``; it is passed to the Ray backend as ``RAY_ADDRESS`` for the duration of the run, so sweeps,
    folds, cross-fitting and personalisation inside the steps use the same cluster. Default: ``RAY_ADDRESS`` if set,
    else a private local cluster per parallel stage.
    """
    if address is None:
        return _run_recipe(recipe, **kwargs)
    before = os.environ.get("RAY_ADDRESS")
    os.environ["RAY_ADDRESS"] = address
    try:
        return _run_recipe(recipe, **kwargs)
    finally:
        if before is None:
            os.environ.pop("RAY_ADDRESS", None)
        else:
            os.environ["RAY_ADDRESS"] = before


def _run_recipe(
    recipe: Recipe | str | Path,
    *,
    corpus: str | Path,
    out: str | Path | None = None,
    budget: str = "paper",
    overrides: list[str] | None = None,
    backend: str = "local",
    workers: int = 1,
    threads: int = 1,
    progress: bool = True,
    write: Callable[[str], None] | None = None,
    tracking: str | None = None,
) -> Path:
    """Run (or continue) a recipe on ``corpus``; return the recipe folder (see the module docstring).

    ``out`` default: ``runs/recipe-<name>-<budget>`` (running the same command again continues it). A folder made
    by another recipe is refused. ``tracking``: an MLflow URI; the recipe is one MLflow run with a run per finished
    step nested under it, and the step's run folders under that (logged by this process,
    :func:`affectflow.tracking.log_tree`).
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, budget=budget, overrides=overrides)
    opened = Corpus(corpus)  # a missing or broken corpus fails here, before any work
    corpus = str(Path(corpus).resolve())
    folder = Path(out) if out is not None else Path("runs") / f"recipe-{recipe.name}-{recipe.budget}"
    folder = folder.resolve()
    state_file = folder / "state.json"
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        if state.get("recipe") != recipe.name:
            raise RunError(f"{str(folder)!r} holds recipe {state.get('recipe')!r}, not {recipe.name!r}; give another "
                           "--out.")
    else:
        out_folder(folder, what="recipe folder", resume_marker="state.json", create=False)
        state = {"format": "affectflow-recipe-state", "recipe": recipe.name, "steps": {}}
    folder.mkdir(parents=True, exist_ok=True)
    get_executor(backend, workers=workers, threads=threads).close()  # bad backend / workers: error before work
    values = recipe.values(corpus)
    resolved_params = {s.id: substitute_params(s.settings, values) for s in recipe.steps}
    for s in recipe.steps:  # models that cannot be built on this corpus fail here, before any step runs
        if not s.needs() and substitute_params(s.when, values):
            try:
                STEP_KINDS[s.kind].preflight(resolved_params[s.id], opened)
            except AffectflowError as e:
                raise ConfigError(f"Recipe {recipe.name!r}, step {s.id!r}: {e}") from None
    guess = {s.id: STEP_KINDS[s.kind].units(resolved_params[s.id]) for s in recipe.steps}
    track_parent = None
    if tracking:
        track_parent = safely(lambda: start_parent(folder, tracking, kind="recipe", name=folder.name,
                                                   params={"recipe": recipe.name, "budget": recipe.budget}))
    prog = Progress(sum(guess.values()), progress, write)
    prog.say(f"{recipe.name} ({recipe.budget} budget) on {corpus} -> {folder}")
    results: dict[str, dict[str, Any]] = {}
    pending = list(recipe.steps)
    n = len(recipe.steps)
    order = {s.id: i + 1 for i, s in enumerate(recipe.steps)}

    def save_state() -> None:
        state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(state_file, state)

    while pending:
        ready = [s for s in pending if all(r in results for r in s.needs())]
        if not ready:  # cannot happen for a validated recipe (references only go backwards)
            raise ConfigError(f"Steps {[s.id for s in pending]} wait on each other.")
        jobs, job_steps = [], []
        for s in ready:
            pending.remove(s)
            settings = substitute_refs(resolved_params[s.id], results)
            when = substitute_refs(substitute_params(s.when, values), results)
            key = step_key(s.kind, settings)
            units = STEP_KINDS[s.kind].units(settings)
            prog.total = max(prog.total + units - guess[s.id], 1)  # the cost is known now that the inputs are
            st = state["steps"].get(s.id, {})
            head = f"step {order[s.id]}/{n} {s.id} ({s.kind})"
            if not when:
                results[s.id] = {"skipped": True}
                state["steps"][s.id] = {"status": "skipped", "key": key}
                prog.finished(units, 0, True)
                prog.say(f"{head}: skipped (when: {s.when!r} is false)")
                continue
            if st.get("key") == key and st.get("status") == "finished":
                results[s.id] = st["result"]
                prog.finished(units, 0, True)
                prog.say(f"{head}: reused (inputs and settings unchanged; {st['folder']})")
                continue
            step_folder = folder / "steps" / f"{s.id}-{key[:10]}"
            continuing = st.get("key") == key and step_folder.is_dir()
            state["steps"][s.id] = {"status": "running", "key": key, "folder": str(step_folder), "kind": s.kind,
                                    "settings": settings, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            prog.say(f"{head}: {'continuing' if continuing else 'started'} ({units} unit(s)); {prog.eta()}")
            jobs.append({"kind": s.kind, "settings": settings, "folder": str(step_folder), "corpus": corpus,
                         "backend": "serial" if len(ready) > 1 and workers > 1 else backend,
                         "workers": 1 if len(ready) > 1 and workers > 1 else workers, "threads": threads})
            job_steps.append((s, units, time.perf_counter()))
        save_state()
        if not jobs:
            continue
        par = len(jobs) > 1 and workers > 1
        ex = get_executor(backend if par else "serial", workers=min(workers, len(jobs)) if par else 1, threads=threads)
        try:
            for i, res in ex.map(_step_job, jobs):
                s, units, t0 = job_steps[i]
                spent = time.perf_counter() - t0
                if not res["ok"]:
                    state["steps"][s.id].update(status="failed", error=res["error"])
                    save_state()
                    raise RunError(f"Recipe {recipe.name!r} stopped: step {s.id!r} ({s.kind}) failed: "
                                   f"{res['error'].strip()} Run the same command again to continue from this step "
                                   f"(finished steps are reused); state in {str(state_file)!r}.")
                results[s.id] = res["result"]
                state["steps"][s.id].update(status="finished", result=res["result"], seconds=spent,
                                            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                save_state()
                prog.finished(units, spent, False)
                prog.say(f"step {order[s.id]}/{n} {s.id}: finished in {_fmt_s(spent)}; {prog.eta()}")
                if track_parent:
                    safely(lambda s=s, f=jobs[i]["folder"]: log_tree(f, tracking, parent=track_parent,
                                                                     kind=f"recipe step {s.kind}", name=s.id))
        finally:
            ex.close()
    write_report(folder, recipe, results, state, figures=build_figures)
    if track_parent:
        safely(lambda: finish_parent(track_parent, folder, tracking))
    prog.say(f"report: {folder / 'recipe.md'}")
    return folder


def show_recipe(recipe: Recipe) -> str:
    """A readable description: parameters with provenance, steps with their settings, tables."""
    lines = [f"# {recipe.name}: {recipe.title}", ""]
    if recipe.paper:
        lines += [f"Paper: {recipe.paper}", ""]
    if recipe.description:
        lines += [recipe.description.strip(), ""]
    lines += [f"Budget: {recipe.budget}. Source: {recipe.source}", "", "Choices (value; where it comes from):"]
    w = max((len(k) for k in recipe.params), default=4)
    for k, p in recipe.params.items():
        lines.append(f"  {k:<{w}}  {json.dumps(p.value, default=str)}   [{p.provenance()}]")
    lines += ["", "Steps:"]
    for i, s in enumerate(recipe.steps, 1):
        needs = f" (reads {', '.join('@' + r for r in s.needs())})" if s.needs() else ""
        when = f" when {s.when}" if s.when is not True else ""
        lines.append(f"  {i}. {s.id} [{s.kind}]{needs}{when}: {s.title}")
        if s.provenance:
            lines.append(f"     {s.provenance}")
        for k, v in s.settings.items():
            lines.append(f"     {k}: {json.dumps(v, default=str)}")
    if recipe.tables:
        lines += ["", "Tables:"]
        for t in recipe.tables:
            prov = f"paper: {t['paper']}" if t.get("paper") else f"ours: {t.get('ours', '')}"
            lines.append(f"  {t.get('id', '')}: {t.get('title', '')} [{t['layout']}; {prov}]")
    if recipe.figures:
        lines += ["", "Figures (plots/<id>.png):"]
        for f in recipe.figures:
            prov = f"paper: {f['paper']}" if f.get("paper") else f"ours: {f.get('ours', '')}"
            lines.append(f"  {f['id']}: {f.get('title', '')} [{f['kind']}; {prov}]")
    return "\n".join(lines)


def list_recipes() -> list[tuple[str, str]]:
    """``(name, title)`` of every packaged recipe."""
    out = []
    for name in packaged_names():
        try:
            out.append((name, load_recipe(name).title))
        except AffectflowError as e:  # a broken packaged recipe is listed with its error, not hidden
            out.append((name, f"(invalid: {e})"))
    return out


def _atomic_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))
