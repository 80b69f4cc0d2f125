"""Hyperparameter search with Optuna (``affectflow tune``): TPE over any config keys, median pruning per epoch.

A space file (YAML)::

    name: lr-width                  # optional; default: the file name without extension
    base: base.yaml                 # optional experiment config, relative to the space file
    config:                         # optional overrides in the config's YAML shape
      training: {seeds: [1, 2], epochs: 30}
    space:                          # dotted config key -> distribution
      training.lr: {low: 1.0e-4, high: 1.0e-2, log: true}        # float range (log scale)
      model.d_model: {low: 16, high: 128, step: 16}               # int range (both bounds integers)
      model.dropout: {low: 0.0, high: 0.5}                        # float range
      data.features: {choices: [[acoustic], [acoustic, visual]]}  # categorical (any YAML values)
    sampler: {startup_trials: 10}   # optional: random trials before TPE starts (Optuna's default 10)
    pruning: {startup_trials: 5, warmup_epochs: 2}   # optional MedianPruner settings; `pruning: false` = none

Every value a distribution can take (the bounds, every choice) is merged into the config and validated before
anything runs, so a wrong key or value fails the whole search up front. ``type: int | float`` forces a range's type.

Procedure
    :class:`optuna.samplers.TPESampler` (seeded: ``seed + worker``) proposes a config; the trial is an ordinary
    training run (``runs/t<number>-<time>/``); after every epoch of every seed the devel score (the trainer's
    selection score) is reported at step ``seed_index × epochs + epoch`` and :class:`optuna.pruners.MedianPruner`
    may stop the trial (its run's status becomes ``stopped: pruned ...``). The trial's value is the devel selection
    score averaged over its seeds (each seed's best epoch); higher is better. Devel was used for the search, so
    report test scores of the best config, not its devel score.

Storage and parallelism
    The study lives in ``optuna.db`` (SQLite) in the tune folder, or in ``storage`` (any SQLAlchemy URL, e.g.
    PostgreSQL for many nodes). ``workers`` executor jobs (``serial``, ``local``, ``ray``) each run their share of
    the trials against that storage, as do several ``affectflow tune`` processes on other machines given the same
    folder (shared filesystem) or storage. Running the same command again resumes: it runs only the trials still
    missing (finished, pruned and failed trials count). Trials of a killed process are marked failed after a
    heartbeat timeout and re-run once.

Outputs (tune folder, default ``<output.runs_dir>/tune-<name>``)
    ``tune.json`` (the space, base config, seed), ``optuna.db``, ``runs/``, ``results.md`` / ``results.csv`` (one
    row per trial: number, state, value, parameters, run), ``best.yaml`` (the best trial's config, usable with
    ``affectflow train -c best.yaml``), ``plots/optimization_history.png`` and ``plots/param_importances.png``.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from affectflow.config import (
    config_from_dict,
    default_config_dict,
    merge_config,
    nested_override,
    parse_override,
    read_yaml,
)
from affectflow.corpus.corpus import Corpus
from affectflow.experiment import train
from affectflow.fsutil import atomic_write, check_name, json_fingerprint, make_dirs, resumable_folder, write_json
from affectflow.errors import AffectflowError, ConfigError, RunError
from affectflow.execution import execution_settings, get_executor
from affectflow.layout import is_run_folder, plots_folder, results_file
from affectflow.runs import Run, new_run_dir
from affectflow.tracking import finish_parent, log_run, safely, start_parent
from affectflow.training.trainer import TrainingStopped

SPACE_KEYS = {"name", "base", "config", "space", "sampler", "pruning"}
NOT_IDENTITY = ("execution", "tracking")


def _optuna():
    try:
        import optuna
    except ImportError:  # pragma: no cover - pinned in requirements/scale.txt
        raise ConfigError("`affectflow tune` needs the `optuna` package: install requirements/scale.txt.") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass
class Param:
    """One searched config key: a float / int range (``low``, ``high``, ``log``, ``step``) or ``choices``."""

    key: str
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] = field(default_factory=list)

    def values(self) -> list[Any]:
        """The values validated up front: both bounds, or every choice."""
        if self.kind == "categorical":
            return list(self.choices)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]

    def labels(self) -> list[str]:
        """Optuna categorical choices must be scalars: every choice as its flow-style YAML text."""
        return [_fmt(c) for c in self.choices]

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            labels = self.labels()
            return self.choices[labels.index(trial.suggest_categorical(self.key, labels))]
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return v
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


@dataclass(kw_only=True)
class TuneSpec:
    """A parsed space file."""

    name: str
    base: dict[str, Any]
    params: list[Param]
    startup_trials: int = 10
    pruning: dict[str, int] | None = field(default_factory=lambda: {"startup_trials": 5, "warmup_epochs": 2})
    source: str | None = None


def _param(key: Any, d: Any, where: str) -> Param:
    if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"Space key {key!r} in {where} is not a dotted config key such as `training.lr`.")
    if not isinstance(d, dict):
        raise ConfigError(f"Space key {key!r} in {where} must map to {{low, high[, log, step, type]}} or "
                          f"{{choices: [...]}}, got {d!r}.")
    unknown = sorted(set(d) - {"low", "high", "log", "step", "type", "choices"})
    if unknown:
        raise ConfigError(f"Space key {key!r} in {where}: unknown field(s) {unknown}; valid: low, high, log, step, "
                          "type, choices.")
    if "choices" in d:
        if set(d) - {"choices", "type"} or not isinstance(d["choices"], list) or not d["choices"]:
            raise ConfigError(f"Space key {key!r} in {where}: `choices` must be a non-empty list and comes alone.")
        labels = [_fmt(c) for c in d["choices"]]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"Space key {key!r} in {where} lists a choice twice: {labels}.")
        return Param(key, "categorical", choices=list(d["choices"]))
    if "low" not in d or "high" not in d:
        raise ConfigError(f"Space key {key!r} in {where} needs `low` and `high` (a range) or `choices`.")
    low, high = d["low"], d["high"]
    try:
        lo_f, hi_f = float(low), float(high)  # YAML 1.1 reads 1e-4 (no dot) as a string
    except (TypeError, ValueError):
        raise ConfigError(f"Space key {key!r} in {where}: `low` and `high` must be numbers, got {low!r}, "
                          f"{high!r}.") from None
    if isinstance(low, bool) or isinstance(high, bool) or not (math.isfinite(lo_f) and math.isfinite(hi_f)):
        raise ConfigError(f"Space key {key!r} in {where}: `low` and `high` must be finite numbers.")
    kind = d.get("type") or ("int" if isinstance(low, int) and isinstance(high, int) else "float")
    if kind not in ("int", "float"):
        raise ConfigError(f"Space key {key!r} in {where}: `type` must be int or float for a range, got {kind!r}.")
    if not lo_f < hi_f:
        raise ConfigError(f"Space key {key!r} in {where}: `low` ({low}) must be below `high` ({high}).")
    log = d.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"Space key {key!r} in {where}: `log` must be true or false, got {log!r}.")
    if log and lo_f <= 0:
        raise ConfigError(f"Space key {key!r} in {where}: a log-scale range needs `low` > 0, got {low}.")
    step = d.get("step")
    if step is not None:
        try:
            step = float(step)
        except (TypeError, ValueError):
            step = -1.0
        if not step > 0 or log:
            raise ConfigError(f"Space key {key!r} in {where}: `step` must be a positive number and cannot be "
                              "combined with `log`.")
        if kind == "int" and step != int(step):
            raise ConfigError(f"Space key {key!r} in {where}: an int range needs an integer `step`.")
    return Param(key, kind, low=lo_f, high=hi_f, log=log, step=step)


def _int_setting(doc: dict, section: str, key: str, default: int, where: str) -> int:
    v = (doc.get(section) or {}).get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"`{section}.{key}` in {where} must be an integer >= 0, got {v!r}.")
    return v


def load_space(path: str | Path, overrides: list[str] | None = None) -> TuneSpec:
    """Read and validate a space file (see the module docstring); ``overrides`` (``key=value``) apply to every
    trial. Every bound and choice is merged into the config and validated here."""
    p = Path(path)
    doc = read_yaml(p)
    where = repr(str(p))
    unknown = sorted(set(doc) - SPACE_KEYS)
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} in space file {where}; valid keys: {sorted(SPACE_KEYS)}.")
    space = doc.get("space")
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"Space file {where} needs a non-empty `space:` mapping of config keys to distributions, "
                          "e.g. `space: {training.lr: {low: 1.0e-4, high: 1.0e-2, log: true}}`.")
    params = [_param(k, v, where) for k, v in space.items()]
    for section in ("sampler", "pruning"):
        if doc.get(section) not in (None, False) and not isinstance(doc.get(section), dict):
            raise ConfigError(f"`{section}:` in {where} must be a mapping" + (" or false." if section == "pruning"
                                                                              else "."))
    for section, keys in (("sampler", {"startup_trials"}), ("pruning", {"startup_trials", "warmup_epochs"})):
        bad = sorted(set(doc.get(section) or {}) - keys)
        if bad:
            raise ConfigError(f"Unknown key(s) {bad} under `{section}:` in {where}; valid: {sorted(keys)}.")
    base = default_config_dict()
    if doc.get("base"):
        bp = Path(doc["base"])
        base = merge_config(base, read_yaml(bp if bp.is_absolute() else p.parent / bp))
    if doc.get("config") is not None:
        if not isinstance(doc["config"], dict):
            raise ConfigError(f"`config:` in space file {where} must be a mapping in the config's YAML shape.")
        base = merge_config(base, doc["config"])
    for o in overrides or []:
        base = merge_config(base, parse_override(o))
    pruning = None if doc.get("pruning") is False else {
        "startup_trials": _int_setting(doc, "pruning", "startup_trials", 5, where),
        "warmup_epochs": _int_setting(doc, "pruning", "warmup_epochs", 2, where)}
    spec = TuneSpec(name=check_name("tuning name (`name:` or the file name)", str(doc.get("name") or p.stem),
                                    error=ConfigError), base=base, params=params,
                    startup_trials=_int_setting(doc, "sampler", "startup_trials", 10, where), pruning=pruning,
                    source=str(p))
    check_space(spec)
    return spec


def check_space(spec: TuneSpec) -> None:
    """Validate the base config with every bound and choice of every parameter (others at the base value); check
    that the feature sets exist in the corpus. Raises :class:`ConfigError` naming the parameter."""
    try:
        config_from_dict(spec.base).validate()
    except ConfigError as e:
        raise ConfigError(f"The tuning base config is not valid: {e}") from e
    corpora: dict[str, Any] = {}
    for prm in spec.params:
        for v in prm.values():
            try:
                cfg = config_from_dict(merge_config(spec.base, nested_override(prm.key, v))).validate()
                path = str(Path(cfg.data.corpus).resolve())
                corpus = corpora.get(path) or corpora.setdefault(path, Corpus(path))
                for name in cfg.data.features:
                    corpus.feature_set(name)
            except AffectflowError as e:
                raise ConfigError(f"Space key {prm.key} = {_fmt(v)}: {e}") from e


def trial_config(spec: TuneSpec, values: dict[str, Any]) -> dict[str, Any]:
    """The validated config (YAML shape) of a trial with ``values`` (``{key: value}``); the corpus path absolute."""
    cfg = spec.base
    for k, v in values.items():
        cfg = merge_config(cfg, nested_override(k, v))
    d = config_from_dict(cfg).validate().to_dict()
    d["data"]["corpus"] = str(Path(d["data"]["corpus"]).resolve())
    return d


def _fingerprint(spec: TuneSpec) -> str:
    base = {k: v for k, v in spec.base.items() if k not in NOT_IDENTITY}
    return json_fingerprint([base, [p.__dict__ for p in spec.params], spec.startup_trials, spec.pruning])


def storage_url(tune_dir: Path) -> str:
    """The default study storage: ``sqlite:///<tune folder>/optuna.db``."""
    return f"sqlite:///{(tune_dir / 'optuna.db').resolve()}"


def _storage(url: str) -> Any:
    """The study storage: heartbeats every 30 s; a trial without one for 120 s (its process died) is marked failed
    and re-run once."""
    _optuna()
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks heartbeats experimental
        return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=30, grace_period=120,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))


def _sampler(spec_startup: int, seed: int) -> Any:
    optuna = _optuna()
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec_startup)


def _pruner(pruning: dict[str, int] | None) -> Any:
    optuna = _optuna()
    if pruning is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=pruning["startup_trials"],
                                       n_warmup_steps=pruning["warmup_epochs"])


def _spec_from_dict(d: dict[str, Any]) -> TuneSpec:
    return TuneSpec(name=d["name"], base=d["base"], params=[Param(**p) for p in d["params"]],
                    startup_trials=d["startup_trials"], pruning=d["pruning"], source=d.get("source"))


def tune_worker(job: dict[str, Any]) -> dict[str, Any]:
    """One executor job: run up to ``job["n_trials"]`` trials of the study (stops when the study has ``total``)."""
    optuna = _optuna()
    from optuna.study import MaxTrialsCallback  # optuna is optional (requirements/scale.txt): see _optuna
    from optuna.trial import TrialState

    spec = _spec_from_dict(job["spec"])
    runs_dir = Path(job["tune_dir"]) / "runs"
    study = optuna.load_study(study_name=spec.name, storage=_storage(job["storage"]),
                              sampler=_sampler(spec.startup_trials, job["seed"]), pruner=_pruner(spec.pruning))

    def objective(trial: Any) -> float:
        values = {p.key: p.suggest(trial) for p in spec.params}
        cfg_d = trial_config(spec, values)
        cfg_d["training"]["num_threads"] = job["threads"]
        cfg_d["tracking"]["mlflow"] = None  # trials are logged by the driver, nested under the search
        cfg = config_from_dict(cfg_d).validate()
        run_dir = new_run_dir(runs_dir, f"t{trial.number:04d}")
        trial.set_user_attr("run_dir", str(run_dir))
        seeds, epochs = list(cfg.training.seeds), cfg.training.epochs

        def on_epoch(seed: int, row: dict[str, Any]) -> None:
            score = row["devel_score"]
            step = seeds.index(seed) * epochs + int(row["epoch"])
            if math.isfinite(score):
                trial.report(score, step)
            if trial.should_prune():
                raise TrainingStopped(f"pruned by the median rule at seed {seed}, epoch {row['epoch']}")

        try:
            train(cfg, progress=False, run_dir=run_dir, on_epoch=on_epoch)
        except TrainingStopped as e:
            raise optuna.TrialPruned(str(e)) from None
        metrics = Run(run_dir).metrics()
        per_seed = [v for v in metrics["selection"]["per_seed"].values() if np.isfinite(v)]
        if not per_seed:
            raise RunError(f"Trial {trial.number}: no seed reached a finite devel score.")
        return float(np.mean(per_seed))

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    study.optimize(objective, n_trials=job["n_trials"], catch=(Exception,),
                   callbacks=[MaxTrialsCallback(job["total"], states=done)])
    return {"worker": job["worker"]}


def run_tune(
    space: TuneSpec | str | Path,
    *,
    trials: int,
    out: str | Path | None = None,
    seed: int = 0,
    overrides: list[str] | None = None,
    workers: int | None = None,
    threads: int | None = None,
    backend: str | None = None,
    address: str | None = None,
    storage: str | None = None,
) -> Path:
    """Run (or resume) a search of ``trials`` trials; return the tune folder (see the module docstring).

    Parameters
    ----------
    space:
        A :class:`TuneSpec` or the path of a space file.
    trials:
        Trials the study should have in the end (finished, pruned or failed); a resumed study runs the missing ones.
    out:
        The tune folder (default ``<output.runs_dir>/tune-<name>``); an existing folder of the same search is
        resumed, one of another search is refused.
    seed:
        Seed of the TPE sampler (worker ``i`` uses ``seed + i``).
    workers, threads, backend, address:
        Parallel workers (each runs its share of the trials), torch threads per trial, executor backend and Ray
        address; ``None``: the base config's ``execution:`` section, else 1, 1, ``local``.
    storage:
        An SQLAlchemy URL for the study (default ``sqlite:///<out>/optuna.db``).
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a positive integer, got {trials!r}.")
    spec = space if isinstance(space, TuneSpec) else load_space(space, overrides)
    backend, workers, threads, options = execution_settings(spec.base.get("execution"), backend=backend,
                                                            workers=workers, threads=threads, address=address)
    fp = _fingerprint(spec)
    tune_dir, _ = resumable_folder(
        Path(out) if out is not None else Path(spec.base["output"]["runs_dir"]) / f"tune-{spec.name}",
        marker="tune.json", fingerprint=fp, what="tune folder",
        differs=f"holds another search (its space or base config differ from {spec.source or spec.name!r}); give a "
        "new folder with --out.",
    )
    url = storage or storage_url(tune_dir)
    spec_d = {"name": spec.name, "base": spec.base, "params": [p.__dict__ for p in spec.params],
              "startup_trials": spec.startup_trials, "pruning": spec.pruning, "source": spec.source}
    write_json(tune_dir / "tune.json", {"format": "affectflow-tune", "fingerprint": fp, "seed": seed,
                                        "storage": url, "trials": trials, **spec_d})
    optuna = _optuna()
    study = optuna.create_study(study_name=spec.name, storage=_storage(url), direction="maximize",
                                load_if_exists=True)
    from optuna.trial import TrialState

    counted = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                           TrialState.FAIL)))
    remaining = max(0, trials - counted)
    n_workers = max(1, min(workers, remaining))
    shares = [remaining // n_workers + (i < remaining % n_workers) for i in range(n_workers)]
    jobs = [{"spec": spec_d, "tune_dir": str(tune_dir), "storage": url, "seed": seed + i, "threads": threads,
             "n_trials": n, "total": trials, "worker": i} for i, n in enumerate(shares) if n > 0]
    if jobs:
        ex = get_executor(backend, workers=len(jobs), threads=threads, **options)
        try:
            for _ in ex.map(tune_worker, jobs):
                pass
        finally:
            ex.close()
    write_results(tune_dir)
    uri = (spec.base.get("tracking") or {}).get("mlflow")
    if uri:
        track_tune(tune_dir, uri)
    return tune_dir


def track_tune(tune_dir: Path, uri: str) -> None:
    """Log a search to MLflow: one parent run (the space as parameters, results.md, best.yaml, plots) with every
    trial's run nested under it (metric ``tune/value``, tags ``optuna.trial`` / ``optuna.state``)."""
    from mlflow.entities import Metric  # optional (requirements/scale.txt): only with tracking on

    info = json.loads((tune_dir / "tune.json").read_text())
    parent = safely(lambda: start_parent(tune_dir, uri, kind="tune", name=tune_dir.name,
                                         params={"space": info["params"], "seed": info["seed"]}))
    if not parent:
        return
    for t in load_study(tune_dir).get_trials(deepcopy=False):
        run = t.user_attrs.get("run_dir")
        if run and is_run_folder(run):
            extra = [Metric("tune/value", float(t.value), 0, 0)] if t.value is not None else []
            safely(lambda run=run, t=t, extra=extra: log_run(run, uri, parent=parent, name=f"trial {t.number}",
                                                             extra_metrics=extra))
    safely(lambda: finish_parent(parent, tune_dir, uri))


# ---------------------------------------------------------------------------- results
def load_study(tune_dir: str | Path) -> Any:
    """The Optuna study of a tune folder."""
    tune_dir = Path(tune_dir)
    f = tune_dir / "tune.json"
    if not f.is_file():
        raise RunError(f"{str(tune_dir)!r} is not a tune folder (tune.json is missing).")
    info = json.loads(f.read_text())
    return _optuna().load_study(study_name=info["name"], storage=_storage(info["storage"]))


def results_frame(tune_dir: str | Path) -> pd.DataFrame:
    """One row per trial: ``trial``, ``state``, ``value`` (mean devel selection score over seeds), the parameters
    (flow-style YAML for choices), ``seconds`` and ``run``."""
    study = load_study(tune_dir)
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name.lower(), "value": t.value}
        row.update({k: v for k, v in t.params.items()})
        row["seconds"] = round(t.duration.total_seconds(), 1) if t.duration is not None else None
        row["run"] = t.user_attrs.get("run_dir")
        rows.append(row)
    return pd.DataFrame(rows)


def write_results(tune_dir: str | Path) -> tuple[str, pd.DataFrame]:
    """Write ``results.md`` / ``results.csv``, ``best.yaml`` and the plots of a tune folder; return the markdown and
    the frame."""
    tune_dir = Path(tune_dir)
    df = results_frame(tune_dir)
    atomic_write(tune_dir / "results.csv", lambda p: df.to_csv(p, index=False, float_format="%.6g"))
    study = load_study(tune_dir)
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    lines = ["Value: devel selection score averaged over the trial's seeds (devel chose the configuration: report "
             "test scores of the best run, not this value).", ""]
    if not df.empty:
        lines.append(_markdown(df))
    if complete:
        best = study.best_trial
        run = Path(best.user_attrs["run_dir"])
        cfg = copy.deepcopy(Run(run).config_dict)
        cfg["output"]["name"] = None
        cfg["training"]["num_threads"] = None
        atomic_write(tune_dir / "best.yaml", lambda p: p.write_text(
            f"# best trial {best.number} of {tune_dir.name}: devel {best.value:.4f}; train with "
            f"`affectflow train -c best.yaml`\n" + yaml.safe_dump(cfg, sort_keys=False)))
        lines += ["", f"Best: trial {best.number}, value {best.value:.4f}, run {run}; config: best.yaml"]
        _plots(study, plots_folder(tune_dir))
    md = "\n".join(lines)
    atomic_write(results_file(tune_dir), lambda p: p.write_text(md + "\n"))
    return md, df


def _markdown(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return ""
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    head = [str(c) for c in df.columns]
    rows = ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows])


def _plots(study: Any, folder: Path) -> None:
    import matplotlib  # heavy: only when the search's plots are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    make_dirs(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        for name, fn in (("optimization_history", ovm.plot_optimization_history),
                         ("param_importances", ovm.plot_param_importances)):
            try:
                ax = fn(study)
                fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
                atomic_write(folder / f"{name}.png", lambda p, fig=fig: fig.savefig(p, format="png", dpi=100,
                                                                                      bbox_inches="tight"))
                plt.close(fig)
            except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. importances need 2+ finished trials
                atomic_write(folder / f"{name}.txt", lambda p, e=e: p.write_text(f"not drawn: {e}\n"))
