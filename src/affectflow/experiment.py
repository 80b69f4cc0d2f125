"""The Python API of the pipeline: train, evaluate and predict (the CLI only wraps these).

>>> from affectflow.config import load_config
>>> from affectflow.experiment import train, evaluate, predict
>>> run_dir = train(load_config("my.yaml", ["data.corpus=corpus", "training.seeds=[1,2]"]))   # doctest: +SKIP
>>> evaluate(run_dir, partitions=["devel", "test"])                                            # doctest: +SKIP
>>> predict(run_dir, recordings=["S01_test"])                                                 # doctest: +SKIP

Protocol of :func:`train`: z-normalisation statistics from the train partitions only; one model per seed, trained
with early stopping on the devel partition; the seed with the best devel score (pooled CCC averaged over targets)
is selected, so **devel scores are optimistic** (they were used for selection; the report says so); every partition
is scored with every seed's best weights, and mean ± std over seeds is reported next to the selected seed's scores.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from affectflow.config import ExperimentConfig, config_from_dict
from affectflow.corpus.corpus import Corpus
from affectflow.augment.batch import BatchAugmenter, check_batch_augment
from affectflow.data.normalize import Normalizer, check_pca
from affectflow.data.store import SequenceStore
from affectflow.errors import AffectflowError, AffectflowWarning, ConfigError, CorpusError, RunError
from affectflow.execution.forked import fork_available, forked_map
from affectflow.fsutil import atomic_write, make_dirs, out_folder, write_json  # noqa: F401 - atomic_write, write_json re-exported for callers of earlier versions
from affectflow.models import MODELS, build_model
from affectflow.plots import plot_run
from affectflow.procutil import usable_cpus
from affectflow.progress import progress_bar
from affectflow.runs import (
    Predictor,
    Run,
    checkpoint_file,
    environment_info,
    epoch_state_path,
    history_file,
    load_checkpoint,
    load_epoch_state,
    log_file,
    new_run_dir,
    open_run,
    parameter_count,
    process_identity,
    resume_folder,
    save_checkpoint,
    save_epoch_state,
    write_evaluation,
    write_run_info,
)
from affectflow.predictions import Predictions
from affectflow.tasks import (
    ContinuousTask,
    Task,
    TargetSpec,
    TaskLoss,
    check_outputs,
    configure_model_params,
    make_task,
    specs_from_state,
    specs_to_state,
    target_specs,
)
from affectflow.tracking import log_run, safely
from affectflow.training.seeds import resolve_device, seed_everything
from affectflow.training.stacked import fit_stacked_seeds
from affectflow.training.trainer import TrainingStopped, fit_seed

log = logging.getLogger("affectflow")


# ---------------------------------------------------------------------------- helpers
def _stores(cfg: ExperimentConfig, corpus: Corpus, partitions: list[str], progress: bool) -> dict[str, SequenceStore]:
    d = cfg.data
    out = {}
    for part in partitions:
        ids = corpus.recording_ids([part])
        out[part] = SequenceStore(
            corpus, d.features, d.targets, ids, label_set=d.label_set, cache_dir=d.cache_dir, progress=progress
        )
    return out


def score_predictions(store: SequenceStore, preds: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Metrics per target (pooled and per-recording mean) of continuous outputs for a store's labelled recordings
    (kept for callers of earlier versions; new code scores a :class:`Predictions` with
    :func:`affectflow.predictions.score`)."""
    return ContinuousTask.score(_continuous_predictions(store, preds))


def write_predictions(folder: Path, store: SequenceStore, preds: list[np.ndarray]) -> None:
    """One CSV per recording: ``time``, ``<target>_pred`` and, when labelled, ``<target>_label`` (see
    :meth:`Predictions.save`)."""
    _continuous_predictions(store, preds).save(folder)


def _continuous_predictions(store: SequenceStore, preds: list[np.ndarray]) -> Predictions:
    return Predictions("continuous", [TargetSpec(t, "regression") for t in store.targets],
                       [r.id for r in store.records], times=[r.times for r in store.records], values=list(preds),
                       labels=[r.y for r in store.records])


def noise_free_ceiling(corpus: Corpus, store: SequenceStore, clean_set: str = "continuous_clean") -> dict[str, float] | None:
    """Pooled CCC between noise-free and observed labels per target (the best any predictor can expect), if known."""
    specs = [TargetSpec(t, "regression") for t in store.targets]
    return ContinuousTask(corpus, specs, features=[]).ceiling(store, clean_set)


def _setup_logging(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(log_file(run_dir))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("affectflow").addHandler(handler)
    logging.getLogger("affectflow").setLevel(logging.INFO)
    return handler


# ---------------------------------------------------------------------------- train
def train(cfg: ExperimentConfig, *, progress: bool = True, run_dir: Path | None = None,
          on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> Path:
    """Train ``cfg`` over all its seeds, evaluate, and write a new run directory; return its path.

    ``on_epoch(seed, row)`` is called after every epoch of every seed, once the epoch state is saved, with the
    epoch's history row (``epoch``, ``train_loss``, ``devel_score``, ``lr``, ``seconds``); it may raise
    :class:`~affectflow.training.trainer.TrainingStopped` to end the run (status ``stopped: <message>``), as a
    pruned tuning trial does.
    """
    cfg.validate()
    corpus = Corpus(cfg.data.corpus, partitions=cfg.data.partitions)
    d, t = cfg.data, cfg.training
    for name in d.features:
        corpus.feature_set(name)
    device = resolve_device(t.device)
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    parts = list(dict.fromkeys([*d.train_partitions, d.devel_partition, *d.test_partitions]))
    known = set(corpus.recordings["partition"])
    missing = [p for p in parts if p not in known]
    if missing:
        raise CorpusError(f"Partitions {missing} are not in corpus {str(corpus.path)!r}; it has {sorted(known)}.")

    check_buildable(cfg, corpus)  # a model that cannot be built fails here, before any run folder exists

    name = cfg.output.name or f"{cfg.model.type}-{'+'.join(d.features)}"
    run_dir = run_dir or new_run_dir(cfg.output.runs_dir, name)
    handler = _setup_logging(run_dir)
    info = {**environment_info(), "status": "running", "corpus": str(Path(d.corpus).resolve()),
            "corpus_name": corpus.meta.get("name"), "seeds": list(t.seeds), "device": str(device), "best_seed": None,
            **process_identity(), "heartbeat_unix": time.time()}
    write_run_info(run_dir, info)
    Run.write_config(run_dir, cfg.to_dict())
    run_dir = _run_training(cfg, corpus, run_dir, info, device, progress, handler, resume=False, on_epoch=on_epoch)
    track_run(cfg, run_dir)
    return run_dir


def track_run(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Log a finished run to MLflow when ``tracking.mlflow`` is set (:func:`affectflow.tracking.log_run`); a
    tracking failure is a warning, never a lost run. Nothing is imported when tracking is off."""
    if cfg.tracking.mlflow:
        safely(lambda: log_run(run_dir, cfg.tracking.mlflow))


def resume_training(run_path: str | Path, *, progress: bool = True) -> Path:
    """Continue an interrupted (killed or failed) training run in place; return its folder.

    Seeds whose checkpoint exists are kept as they are (scored again from their checkpoints); the seed that was
    training continues after its last epoch state (``resume/seed-<s>.pt``: model, optimiser, scheduler, early
    stopping, RNG states), and the seeds not started yet are trained. With the same device and thread count the final
    metrics, predictions and checkpoints equal those of an uninterrupted run.

    Raises
    ------
    RunError
        Not a run, already finished, or still running (its process is alive).
    """
    run = Run(run_path)
    status = run.status
    if status == "finished":
        raise RunError(f"Run {run.path} has finished; there is nothing to resume. Train a new run instead.")
    if status == "running":
        raise RunError(
            f"Run {run.path} is still running (process {run.record.get('pid')} on {run.record.get('host')}); resume it "
            "only after that process has ended."
        )
    try:
        cfg = config_from_dict(run.config_dict).validate()
    except ConfigError as e:
        raise RunError(f"Run {run.path} cannot be resumed: its config.yaml is not valid for this affectflow: {e}") from e
    corpus = Corpus(cfg.data.corpus)
    t = cfg.training
    device = resolve_device(t.device)
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    info = dict(run.record)
    info.update(status="running", best_seed=None, **process_identity(), heartbeat_unix=time.time(),
                resumed=[*info.get("resumed", []), time.strftime("%Y-%m-%dT%H:%M:%S%z")])
    write_run_info(run.path, info)
    handler = _setup_logging(run.path)
    log.info("resuming run %s (was %s)", run.path, status)
    out = _run_training(cfg, corpus, run.path, info, device, progress, handler, resume=True)
    track_run(cfg, out)
    return out


def warn_unlabelled_samples(task: Task, store: SequenceStore, train_ds, part: str) -> list[str]:
    """Segment / clip tasks: warn about training recordings without any usable sample, and about label rows that
    give no sample (no span on the time grid, or no label value)."""
    msgs = []
    used = {store.records[it[0]].id for it in getattr(train_ds, "items", [])}
    ids = [r.id for r in store.records if r.id not in used]
    if ids:
        msgs.append(f"{len(ids)} of {len(store.records)} recordings of partition {part!r} have no labelled "
                    f"{task.name} and are not used for training: {ids[:10]}" + (" ..." if len(ids) > 10 else ""))
    table = getattr(task, "table", None)
    if table is not None:
        rows = int(table["recording"].isin({r.id for r in store.records}).sum())
        lost = rows - len(getattr(train_ds, "items", []))
        if lost > 0:
            msgs.append(f"{lost} of {rows} {task.name} label rows of partition {part!r} give no training sample (no "
                        "span on the time grid, or no label value)")
    for msg in msgs:
        log.warning(msg)
        warnings.warn(msg, AffectflowWarning, stacklevel=3)
    return msgs


def _run_training(cfg, corpus, run_dir, info, device, progress, handler, *, resume: bool, on_epoch=None) -> Path:
    try:
        return _train_in(cfg, corpus, run_dir, info, device, progress, resume=resume, on_epoch=on_epoch)
    except TrainingStopped as e:
        info["status"] = f"stopped: {e}"
        write_run_info(run_dir, info)
        raise
    except BaseException as e:
        info["status"] = f"failed: {type(e).__name__}: {e}"
        write_run_info(run_dir, info)
        raise
    finally:
        logging.getLogger("affectflow").removeHandler(handler)
        handler.close()


def check_buildable(cfg: ExperimentConfig, corpus: Corpus) -> None:
    """Check the targets and build the configured model once on the corpus's feature widths (no data is read).

    Raises
    ------
    ConfigError
        The model cannot be built with these hyperparameters (the message names the model and the error).
    CorpusError
        The label set or a target is not in the corpus.
    """
    d = cfg.data
    if check_batch_augment(cfg.training.augment, d.features) and d.task != "continuous":
        raise ConfigError(f"`training.augment` (per-batch augmentation) works on windows of the continuous task; "
                          f"data.task is {d.task!r}: augment the training media once with `affectflow augment`.")
    if d.task == "continuous":  # training needs the label set (prediction does not)
        dims = corpus.label_set(d.label_set).dims
        bad = [t for t in d.targets if t not in dims]
        if bad:
            raise CorpusError(f"Targets {bad} are not in label set {d.label_set!r} of corpus {str(corpus.path)!r}; "
                              f"it has {dims}.")
    specs = target_specs(corpus, d.task, d.targets, d.target_types, d.label_set)
    params = configure_model_params(cfg.model.type, cfg.model.params, specs)
    dims = {n: corpus.feature_set(n).dim for n in d.features}
    for n, spec in check_pca(d.pca, d.features).items():
        if spec.get("components", 0) > dims[n]:
            raise ConfigError(f"`data.pca.{n}.components` is {spec['components']}, but feature set {n!r} has "
                              f"{dims[n]} columns; at most {dims[n]} components exist.")
        if "components" in spec:
            dims[n] = spec["components"]
    try:
        model = MODELS.build(cfg.model.type, params, input_dims=dims, targets=d.targets)
        check_outputs(model, specs)
        del model
    except (ConfigError, CorpusError):
        raise
    except (ValueError, TypeError, RuntimeError, AssertionError) as e:
        raise ConfigError(f"Model {cfg.model.type!r} cannot be built with {params} on feature widths {dims}: "
                          f"{type(e).__name__}: {e}") from None


def warn_unlabelled(stores: dict, partitions: list[str], what: str = "training") -> list[str]:
    """Log and warn about recordings of ``partitions`` that have no labels (they add nothing to ``what``)."""
    msgs = []
    for part in partitions:
        store = stores.get(part)
        if store is None:
            continue
        ids = [r.id for r in store.records if r.y is None or not np.isfinite(r.y).any()]
        if ids:
            msg = (f"{len(ids)} of {len(store.records)} recordings of partition {part!r} have no labels and are not "
                   f"used for {what}: {ids[:10]}" + (" ..." if len(ids) > 10 else ""))
            log.warning(msg)
            warnings.warn(msg, AffectflowWarning, stacklevel=3)
            msgs.append(msg)
    return msgs


def _train_in(cfg, corpus, run_dir, info, device, progress, resume: bool = False, on_epoch=None) -> Path:
    """Fit every seed into ``run_dir`` and save the finished run (:meth:`TrainedRun.fit` + :meth:`TrainedRun.save`)."""
    result = TrainedRun.fit(cfg, corpus, run_dir, info=info, device=device, progress=progress, resume=resume,
                            on_epoch=on_epoch)
    TrainedRun.save(run_dir, result, info=info)
    return run_dir


@dataclasses.dataclass(kw_only=True)
class TrainingSetup:
    """What every seed of a training shares (built once by :func:`prepare_training`): the task, one store per
    partition, the train-partition normaliser, the training samples and the checkpoint's data spec.

    Attributes
    ----------
    cfg, corpus, device:
        The validated config, the open corpus and the torch device.
    task, specs, model_params:
        The task object, its target specs and the model parameters with a matching head.
    eval_parts:
        The partitions scored for every seed (train, devel, test; in that order, without repeats).
    stores, train_store, train_ds:
        Partition → sequence store; the (joined) train partitions' store and training dataset.
    normalizer, eval_window, data_spec:
        The fitted normaliser, the evaluation window (dict) and the ``data`` entry of every checkpoint.
    """

    cfg: ExperimentConfig
    corpus: Corpus
    device: torch.device
    task: Task
    specs: list[TargetSpec]
    model_params: dict[str, Any]
    eval_parts: list[str]
    stores: dict[str, SequenceStore]
    train_store: SequenceStore
    train_ds: Any
    normalizer: Normalizer
    eval_window: dict[str, Any]
    data_spec: dict[str, Any]

    def outputs(self, model: torch.nn.Module, part: str) -> Predictions:
        """``model``'s predictions on partition ``part``."""
        return self.task.predict(model, self.stores[part], self.normalizer, self.eval_window, self.device)

    def score_devel(self, model: torch.nn.Module) -> float:
        """The selection score of ``model`` on the devel partition (higher is better)."""
        d = self.cfg.data
        return self.task.selection_score(self.specs, self.task.score(self.outputs(model, d.devel_partition)))

    def scores(self, model: torch.nn.Module) -> dict[str, Any]:
        """Partition → metrics of ``model`` on every partition of :attr:`eval_parts`."""
        return {p: self.task.score(self.outputs(model, p)) for p in self.eval_parts}


def prepare_training(cfg: ExperimentConfig, corpus: Corpus, *, device: torch.device, progress: bool = False,
                     info: dict[str, Any] | None = None, run_dir: Path | None = None) -> TrainingSetup:
    """Build what the seeds share (:class:`TrainingSetup`): target specs, stores, the normaliser fitted on the train
    partitions only, target scaling, the training samples. Warnings about unlabelled recordings or samples are
    logged and, with ``info`` and ``run_dir``, recorded in ``run.json``."""
    d = cfg.data
    specs = target_specs(corpus, d.task, d.targets, d.target_types, d.label_set)
    model_params = configure_model_params(cfg.model.type, cfg.model.params, specs)
    train_parts = d.train_partitions
    eval_parts = list(dict.fromkeys([*train_parts, d.devel_partition, *d.test_partitions]))
    partitions = {p: corpus.recording_ids([p]) for p in eval_parts}
    train_key = train_parts[0] if len(train_parts) == 1 else "+".join(train_parts)
    if train_key not in partitions:
        partitions[train_key] = corpus.recording_ids(train_parts)
    task = make_task(d.task, corpus, specs, features=d.features, label_set=d.label_set, cache_dir=d.cache_dir,
                     progress=progress)
    stores = {part: task.store(ids) for part, ids in partitions.items()}
    train_store = stores[train_key]

    def record_warnings(msgs: list[str]) -> None:
        if info is not None and run_dir is not None:
            info["warnings"] = msgs
            write_run_info(run_dir, info)

    if d.task == "continuous":
        record_warnings(warn_unlabelled(stores, [train_key]))
    others = [s for p, s in stores.items() if p not in train_parts and p != train_key]
    normalizer = Normalizer(mode=d.normalize, pca=check_pca(d.pca, d.features)).fit(train_store, others)
    if d.task != "continuous" and d.scale_targets:
        task.fit_target_scaling(train_store)
    train_ds = task.train_dataset(train_store, normalizer, d.window)
    if d.task != "continuous":
        record_warnings(warn_unlabelled_samples(task, train_store, train_ds, train_key))
    ew = dataclasses.asdict(d.eval_window)
    data_spec = {"task": d.task, "features": d.features, "targets": d.targets, "target_specs": specs_to_state(specs),
                 "label_set": d.label_set, "eval_window": ew, "input_dims": train_store.dims,
                 "model_input_dims": normalizer.output_dims(train_store.dims),
                 "target_scaling": {k: list(v) for k, v in task.target_scaling.items()},
                 "label_rate_hz": training_label_rate(corpus, d.label_set, train_store),
                 "feature_sets": {n: dataclasses.asdict(corpus.feature_set(n)) for n in d.features}}
    return TrainingSetup(cfg=cfg, corpus=corpus, device=device, task=task, specs=specs, model_params=model_params,
                         eval_parts=eval_parts, stores=stores, train_store=train_store, train_ds=train_ds,
                         normalizer=normalizer, eval_window=ew, data_spec=data_spec)


@dataclasses.dataclass(kw_only=True)
class SeedResult:
    """One trained (or, on resume, kept) seed: its model with the best epoch's weights, its devel selection score,
    its scores on every partition and its training throughput."""

    model: torch.nn.Module
    selection: float
    scores: dict[str, Any]
    windows_per_s: float
    frames_per_s: float


def build_seed_model(setup: TrainingSetup, seed: int) -> torch.nn.Module:
    """The freshly initialised model of ``seed`` (global RNGs seeded with ``seed`` first)."""
    seed_everything(seed)
    model = MODELS.build(setup.cfg.model.type, setup.model_params,
                         input_dims=setup.normalizer.output_dims(setup.train_store.dims), targets=setup.cfg.data.targets)
    check_outputs(model, setup.specs)
    return model


def epoch_writer(run_dir: Path, info: dict[str, Any], seed: int,
                 on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> Callable[[dict], None]:
    """The ``on_epoch_end`` callback of ``seed``: writes its epoch state (for ``--resume``) and the run's heartbeat,
    then calls ``on_epoch(seed, history row)``."""
    state_path = epoch_state_path(run_dir, seed)

    def on_epoch_end(state):
        save_epoch_state(state_path, state)  # atomic; inside the run folder
        info["heartbeat_unix"] = time.time()
        write_run_info(run_dir, info)
        if on_epoch is not None:
            on_epoch(seed, dict(state["history"][-1]))

    return on_epoch_end


def fit_stacked(setup: TrainingSetup, run_dir: Path, info: dict[str, Any], *, progress: bool = False,
                resume: bool = False, on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> dict[int, tuple]:
    """The seeds still to train, trained as one stacked model when ``training.stack_seeds`` and the run allow it
    (:func:`affectflow.training.stacked.fit_stacked_seeds`): ``seed → (model, FitResult)`` for
    :func:`fit_one_seed`'s ``fitted``, or ``{}``."""
    t = setup.cfg.training
    todo = [s for s in t.seeds if not (resume and checkpoint_file(run_dir, s).is_file())]
    states = {s: load_epoch_state(epoch_state_path(run_dir, s)) for s in todo
              if resume and epoch_state_path(run_dir, s).is_file()}
    return fit_stacked_seeds(setup.cfg, todo, lambda s: build_seed_model(setup, s), setup.train_ds,
                             setup.score_devel, device=setup.device, progress=progress, resume_states=states,
                             on_epoch_end=lambda s: epoch_writer(run_dir, info, s, on_epoch))


def seed_model_from(checkpoint: Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model stored in a seed's checkpoint, on ``device``, and the checkpoint."""
    ck = load_checkpoint(checkpoint)
    model = build_model(ck["model"])
    model.load_state_dict(ck["state_dict"])
    return model.to(device), ck


def seed_worker_count(cfg: ExperimentConfig, n_seeds: int, device: torch.device, *,
                      per_epoch_callback: bool = False) -> int:
    """How many forked processes train ``n_seeds`` seeds side by side (``training.seed_workers``); 1 = one by one.

    ``auto`` (on the CPU where the platform forks; 1 on CUDA): every seed in its own worker when there are fewer
    than twice as many seeds as usable CPUs (3 seeds on 2 CPUs: 3 workers sharing the 2 cores), else one worker
    per CPU in whole rounds. Measured on the 2-core machine (`bench_baseline_muse2023.py --config paper`, 3
    seeds): stage 1 took 27.5 s with 3 workers against 28.9-29.8 s with 2 workers and the third seed trained here
    with 2 threads afterwards. A number ``n > 1`` gives ``min(n, n_seeds)``. With a per-epoch
    callback (tuning's pruning needs every epoch in this process) the seeds train one by one.

    Raises
    ------
    ConfigError
        A number ``> 1`` on CUDA (one process owns the GPU: use ``training.stack_seeds``) or where the platform
        cannot fork.
    """
    t = cfg.training
    w = t.seed_workers
    if w == "auto":
        if device.type != "cpu" or not fork_available():
            return 1
        cpus = usable_cpus()
        w = n_seeds if n_seeds < 2 * cpus else cpus
    elif w > 1 and device.type != "cpu":
        raise ConfigError(f"`training.seed_workers={w}` trains seeds in forked CPU processes, but the device is "
                          f"{device.type!r}; on a GPU use `training.stack_seeds: true` (all seeds as one model).")
    elif w > 1 and not fork_available():
        raise ConfigError(f"`training.seed_workers={w}` needs forked processes, which this platform does not have; "
                          "set it to 1.")
    w = min(int(w), n_seeds)
    if w > 1 and per_epoch_callback:
        log.info("seeds trained one by one, not in %d workers: a per-epoch callback needs every epoch here", w)
        return 1
    return w


def fit_in_workers(setup: TrainingSetup, run_dir: Path, info: dict[str, Any], *, progress: bool = False,
                   resume: bool = False, on_epoch: Callable[[int, dict[str, Any]], None] | None = None
                   ) -> dict[int, "SeedResult"]:
    """The seeds still to train, each in a forked worker process with one torch thread, ``training.seed_workers``
    at a time (:func:`seed_worker_count`, :func:`affectflow.execution.forked.forked_map`); ``seed →``
    :class:`SeedResult` (each model read back from the checkpoint its worker wrote), or ``{}`` when the seeds train
    one by one in this process.

    Whole rounds of ``workers`` seeds go to the workers; the seeds left over (3 seeds on 2 workers: the third) are
    not returned, so the caller trains them here afterwards with this process's threads (``training.num_threads``)
    instead of leaving cores idle behind one 1-thread worker.

    A worker runs :func:`fit_one_seed` exactly as the one-by-one path does (same seeding, epoch states, history,
    checkpoint), so its seeds equal a one-by-one run with ``training.num_threads: 1``, bit for bit (and every seed
    does when ``training.num_threads`` is 1). An interrupted run resumes as usual: finished seeds are kept, a seed
    with an epoch state continues from it.
    """
    t = setup.cfg.training
    todo = [s for s in t.seeds if not (resume and checkpoint_file(run_dir, s).is_file())]
    workers = seed_worker_count(setup.cfg, len(todo), setup.device, per_epoch_callback=on_epoch is not None)
    if workers < 2:
        return {}
    # whole rounds in the workers; the rest here afterwards, alone on the machine with this process's threads
    # (3 seeds, 2 workers: two side by side, then the third with both cores' threads)
    here = todo[len(todo) - len(todo) % workers:] if len(todo) > workers else []
    todo = todo[:len(todo) - len(here)]
    log.info("training seeds %s in %d worker processes (1 torch thread each)%s", todo, workers,
             f", then {here} here ({torch.get_num_threads()} threads)" if here else "")

    def train_seed(seed: int) -> dict[str, Any]:
        r = fit_one_seed(setup, seed, run_dir, info, progress=False, resume=resume)
        return {"selection": r.selection, "scores": r.scores, "windows_per_s": r.windows_per_s,
                "frames_per_s": r.frames_per_s}

    # torch.optim's Optimizer imports torch._dynamo when it is built (1.2 s of CPU with torch 2.13): build one before
    # forking, so the workers and the seeds trained here afterwards inherit the import instead of each paying it
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    out: dict[int, SeedResult] = {}
    bar = progress_bar(total=len(todo), desc=f"training in {workers} workers", unit="seeds", disable=not progress)
    try:
        for i, r in forked_map(train_seed, todo, workers=workers, describe=lambda s: f"seed {s}"):
            seed = todo[i]
            model, _ = seed_model_from(checkpoint_file(run_dir, seed), setup.device)
            out[seed] = SeedResult(model=model, **r)
            bar.update(1)
    finally:
        bar.close()
    return out


def fit_one_seed(setup: TrainingSetup, seed: int, run_dir: Path, info: dict[str, Any], *, progress: bool = False,
                 resume: bool = False, on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
                 fitted: tuple | None = None) -> SeedResult:
    """Train ``seed`` with early stopping on devel, writing its epoch states (``resume/seed-<s>.pt``), history and,
    last, its checkpoint (whose presence marks the seed as finished); with ``resume``, continue from its epoch
    state, or keep it as it is when its checkpoint exists. ``fitted``: ``(model, FitResult)`` of a seed already
    trained stacked with the others (:func:`fit_stacked`); only its history and checkpoint are written."""
    cfg, device = setup.cfg, setup.device
    d, t = cfg.data, cfg.training
    final = checkpoint_file(run_dir, seed)
    if resume and final.is_file():  # finished before the interruption: kept as it is
        model, ck = seed_model_from(final, device)
        kept = SeedResult(model=model, selection=float(ck["devel_score"]), scores=setup.scores(model),
                          windows_per_s=float(ck.get("windows_per_s", float("nan"))),
                          frames_per_s=float(ck.get("frames_per_s", float("nan"))))
        log.info("seed %d: finished before the interruption; kept (best epoch %d, devel score %.4f)", seed,
                 ck["best_epoch"], ck["devel_score"])
        return kept
    model = fitted[0] if fitted is not None else build_seed_model(setup, seed)
    compute_loss, loss_module = None, None
    subtasks = hasattr(model, "forward_subtasks")  # e.g. sent_multitask: every subtask is trained
    if d.task != "continuous" or t.multitask or subtasks:
        loss_module = TaskLoss(setup.specs, t.loss, t.multitask, subtasks=len(model.heads) if subtasks else 1).to(device)
        model.add_module("_task_loss", loss_module)  # its learnt weights are optimised with the model

        def compute_loss(m, b, loss_module=loss_module, subtasks=subtasks):
            fwd = m.forward_subtasks if subtasks else m
            return loss_module(fwd(b["x"], b["mask"], b["feature_mask"]), b["y"], b["y_mask"])

    state_path = epoch_state_path(run_dir, seed)
    resume_state = load_epoch_state(state_path) if resume and state_path.is_file() else None
    augment_spec = check_batch_augment(t.augment, d.features)  # training.augment: per-batch, seeded by the batch
    augmenter = BatchAugmenter(augment_spec, setup.train_store, setup.normalizer, seed) if augment_spec else None
    if fitted is not None:
        res = fitted[1]
    else:
        res = fit_seed(model, setup.train_ds, setup.score_devel, t, seed, device=device, progress=progress,
                       compute_loss=compute_loss, resume_state=resume_state,
                       on_epoch_end=epoch_writer(run_dir, info, seed, on_epoch), augment=augmenter)
    if loss_module is not None:
        if t.multitask:
            loss_module.inner.log_weights(log, prefix=f"seed {seed}: ")
        del model._modules["_task_loss"]
    hist = pd.DataFrame(res.history)
    history_file(run_dir, seed).parent.mkdir(exist_ok=True)
    hist.to_csv(history_file(run_dir, seed), index=False)
    extra = {"seed": seed, "best_epoch": res.best_epoch, "devel_score": res.best_score,
             "windows_per_s": res.windows_per_s, "frames_per_s": res.frames_per_s}
    if loss_module is not None and t.multitask:
        extra["multitask_weights"] = loss_module.inner.weights()
    # the checkpoint is written last: its presence marks the seed as finished (for --resume)
    save_checkpoint(final, model=model, normalizer_state=setup.normalizer.state_dict(), data_spec=setup.data_spec,
                    extra=extra)
    state_path.unlink(missing_ok=True)
    out = SeedResult(model=model, selection=res.best_score, scores=setup.scores(model),
                     windows_per_s=res.windows_per_s, frames_per_s=res.frames_per_s)
    log.info("seed %d: best epoch %d, devel score %.4f", seed, res.best_epoch, res.best_score)
    return out


@dataclasses.dataclass(kw_only=True)
class TrainingResult:
    """What :meth:`TrainedRun.fit` returns and :meth:`TrainedRun.save` writes: the run's ``metrics.json`` content,
    the selected seed's predictions per partition, the target names and whether to draw plots."""

    metrics: dict[str, Any]
    predictions: dict[str, Predictions]
    targets: list[str]
    plots: bool = True


def training_metrics(setup: TrainingSetup, seeds: dict[int, SeedResult]) -> dict[str, Any]:
    """The run's ``metrics.json`` content from every seed's result: the selected seed (best devel selection score),
    its scores, per-seed scores, mean ± std over seeds, the noise-free ceiling (generated corpora) and throughput."""
    d = setup.cfg.data
    selection = {str(s): r.selection for s, r in seeds.items()}
    per_seed = {str(s): r.scores for s, r in seeds.items()}
    throughput = [r.windows_per_s for r in seeds.values()]
    frames_per_s = [r.frames_per_s for r in seeds.values()]
    best_seed = max(seeds, key=lambda s: selection[str(s)] if np.isfinite(selection[str(s)]) else -np.inf)
    summary = summarise_seeds(per_seed)
    ceiling = {p: setup.task.ceiling(setup.stores[p]) for p in setup.eval_parts}
    return {
        "task": d.task,
        "protocol": "z-norm on train; early stopping and seed selection on "
        f"{d.devel_partition!r} (devel scores are optimistic); " + setup.task.protocol,
        "selection": {"partition": d.devel_partition, "score": setup.task.selection, "per_seed": selection,
                      "best_seed": best_seed},
        "best": per_seed[str(best_seed)],
        "per_seed": per_seed,
        "summary": summary,
        "ceiling": {p: c for p, c in ceiling.items() if c},
        "train_samples_per_s": float(np.nanmean(throughput)),
        "train_frames_per_s": float(np.nanmean(frames_per_s)) if np.isfinite(frames_per_s).any() else float("nan"),
    }


def save_training(run_dir: Path, metrics: dict[str, Any], predictions: dict[str, Predictions], targets: list[str],
                  info: dict[str, Any], *, plots: bool = True) -> None:
    """The *save* half of training (the seeds were fitted and their checkpoints written): ``metrics.json``, the
    selected seed's ``predictions/<partition>/``, ``results.md``, the plots, and ``run.json`` marked finished."""
    Run.write_metrics(run_dir, metrics)
    for p, preds in predictions.items():
        Run.save_predictions(run_dir, p, preds)
    Run.write_results(run_dir, results_table(metrics, targets))
    if plots:
        try:
            plot_run(run_dir)
        except Exception as e:  # noqa: BLE001 - plots are a convenience; never lose a finished run over them
            log.warning("plots failed: %s", e)
    info.update(status="finished", best_seed=metrics["selection"]["best_seed"],
                finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    resume_dir = resume_folder(run_dir)
    if resume_dir.is_dir() and not any(resume_dir.iterdir()):
        resume_dir.rmdir()
    write_run_info(run_dir, info)
    log.info("run finished: %s", run_dir)


def summarise_seeds(per_seed: dict[str, Any]) -> dict[str, Any]:
    """Mean and population std over seeds of every partition/target/metric."""
    seeds = list(per_seed)
    out: dict[str, Any] = {}
    for part, targets in per_seed[seeds[0]].items():
        out[part] = {}
        for target, mets in targets.items():
            out[part][target] = {}
            for m in mets:
                vals = np.array([per_seed[s][part][target][m] for s in seeds], dtype=float)
                out[part][target][m] = {"mean": float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan"),
                                        "std": float(np.nanstd(vals)) if np.isfinite(vals).any() else float("nan")}
    return out


def results_table(metrics: dict[str, Any], targets: list[str]) -> str:
    """Markdown table of the selected seed's scores with mean ± std over seeds (and the noise-free ceiling)."""
    best, summ, ceil = metrics["best"], metrics["summary"], metrics.get("ceiling", {})
    lines = [
        f"Selected seed: {metrics['selection']['best_seed']} (on {metrics['selection']['partition']}; "
        "its devel scores are optimistic).",
        "",
    ]
    if metrics.get("task", "continuous") == "continuous":
        lines += [
            "| partition | target | CCC (pooled) | CCC mean ± std over seeds | CCC (per-rec. mean) | Pearson r | RMSE | noise-free ceiling |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for part in best:
            for t in targets:
                b, s = best[part][t], summ[part][t]
                c = ceil.get(part, {}).get(t)
                lines.append(
                    f"| {part} | {t} | {b['ccc']:.4f} | {s['ccc']['mean']:.4f} ± {s['ccc']['std']:.4f} | "
                    f"{b['ccc_mean']:.4f} | {b['pearson']:.4f} | {b['rmse']:.4f} | {'' if c is None else f'{c:.4f}'} |"
                )
        return "\n".join(lines)
    lines += ["| partition | target | metric | selected seed | mean ± std over seeds |", "|---|---|---|---|---|"]
    for part in best:
        for t, mets in best[part].items():
            for m, v in mets.items():
                if m == "n":
                    continue
                s = summ[part][t][m]
                lines.append(f"| {part} | {t} | {m} | {v:.4f} | {s['mean']:.4f} ± {s['std']:.4f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- evaluate / predict
def load_model(run: Run | str | Path, seed: int | None = None) -> tuple[torch.nn.Module, Normalizer, dict[str, Any]]:
    """Rebuild the model of ``run`` (best seed by default), its normaliser and the checkpoint's data spec: the
    parts of :meth:`TrainedRun.model` (kept for callers of earlier versions).

    Raises
    ------
    RunError
        ``run`` is not a trained run (a fused, personalised or yardstick folder has no single model checkpoint), or
        it has no checkpoint of ``seed``.
    """
    m = open_run(run).model(seed)
    return m.module, m.normalizer, m.checkpoint


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainedModel:
    """One seed of a trained run, loaded (what :meth:`TrainedRun.model` returns): everything export, streaming,
    serving and prediction from media need, so none of them reads a run file.

    Attributes
    ----------
    run:
        The run it belongs to.
    module:
        The model (``nn.Module``, eval mode, on the CPU); callers that move or change it should copy it first.
    normalizer:
        The train-partition normaliser (z-scores, PCA) of its inputs.
    checkpoint:
        The checkpoint payload (``model`` config, ``data`` spec, ``seed``, ...; loaded with ``weights_only=True``).
    """

    run: "TrainedRun"
    module: torch.nn.Module
    normalizer: Normalizer
    checkpoint: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        """The checkpoint's data spec (``task``, ``features``, ``targets``, ``input_dims``, ``eval_window``...)."""
        return self.checkpoint["data"]

    @property
    def seed(self) -> int:
        """The seed this model was trained with."""
        return int(self.checkpoint.get("seed", -1))

    @property
    def task(self) -> str:
        """The task type (``continuous``, ``segment``, ``clip``)."""
        return str(self.data.get("task", "continuous"))

    @property
    def features(self) -> list[str]:
        """The feature sets, in model input order."""
        return list(self.data["features"])

    @property
    def targets(self) -> list[str]:
        """The targets, in output order."""
        return list(self.data["targets"])

    def feature_sets(self) -> dict[str, dict[str, Any]]:
        """Feature set name → its ``feature_set.json`` content (:func:`feature_set_infos`)."""
        return feature_set_infos(self.run, ckpt=self.checkpoint)

    def label_rate_hz(self) -> float:
        """The label rate (Hz) the run was trained at (:func:`run_label_rate`)."""
        return run_label_rate(self.run, self.checkpoint)

    def task_on(self, corpus: Corpus, *, progress: bool = False, grid_rate_hz: float | None = None) -> Task:
        """The run's task object on ``corpus`` (:func:`run_task`)."""
        return run_task(self.run, self.checkpoint, corpus, progress=progress, grid_rate_hz=grid_rate_hz)


def feature_set_infos(run: Run | str | Path, *, seed: int | None = None,
                      ckpt: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The trained run's feature sets, in model order: name → ``feature_set.json`` content (``modality``,
    ``columns``, ``rate_hz``, ``params``...).

    Stored in checkpoints since runs record them; for older runs read from the training corpus (a
    :class:`RunError` when that corpus is gone).
    """
    run = run if isinstance(run, Run) else Run(run)
    ckpt = ckpt or load_checkpoint(run.checkpoint_path(seed))
    data = ckpt["data"]
    stored = data.get("feature_sets")
    if stored:
        return {n: dict(stored[n]) for n in data["features"]}
    try:
        corpus = Corpus(run.config_dict["data"]["corpus"])
        return {n: dataclasses.asdict(corpus.feature_set(n)) for n in data["features"]}
    except AffectflowError as e:
        raise RunError(
            f"Run {run.path} does not store its feature sets' descriptions (it predates that) and its training "
            f"corpus cannot be read to find them: {e}"
        ) from e


def training_label_rate(corpus: Corpus, label_set: str, store: SequenceStore | None = None) -> float:
    """The label rate (Hz) a run is trained at: the label set's ``rate_hz``, else the corpus ``label_rate_hz``,
    else ``1 / median step`` of the first labelled training recording."""
    info = corpus.label_sets.get(label_set)
    if info is not None and info.rate_hz:
        return float(info.rate_hz)
    if corpus.label_rate_hz:
        return float(corpus.label_rate_hz)
    for rec in (store.records if store is not None else []):
        if rec.length > 1:
            return float(1.0 / np.median(np.diff(rec.times)))
    raise CorpusError(f"Cannot tell the label rate of corpus {str(corpus.path)!r}: its label set {label_set!r} and "
                      "corpus.json set no rate and no recording has two label steps.")


def run_label_rate(run: Run, ckpt: dict[str, Any]) -> float:
    """The label rate (Hz) of a trained run: stored in its checkpoint (runs before this was stored: read from its
    training corpus). Predictions of recordings without labels are made on this grid."""
    rate = ckpt["data"].get("label_rate_hz")
    if rate:
        return float(rate)
    try:
        c = Corpus(run.config_dict["data"]["corpus"])
    except CorpusError as e:
        raise RunError(f"Run {run.path} predates stored label rates and its training corpus cannot be opened to "
                       f"read it: {e}") from e
    label_set = ckpt["data"]["label_set"]
    ids = c.recording_ids()
    store = SequenceStore(c, [], [], ids[:1], label_set=label_set) if ids else None
    return training_label_rate(c, label_set, store)


def _open_corpus(run: Run, corpus: str | Path | None) -> Corpus:
    return run.open_corpus(corpus)


def run_task(run: Run, ckpt: dict, corpus: Corpus, *, progress: bool = False,
             grid_rate_hz: float | None = None) -> Task:
    """The task object of a trained run (its task type, targets, feature sets and label set) on ``corpus``."""
    cfg = config_from_dict(run.config_dict)
    data = ckpt["data"]
    specs = specs_from_state(data.get("target_specs") or [{"name": t, "kind": "regression"} for t in data["targets"]])
    task = make_task(data.get("task", "continuous"), corpus, specs, features=data["features"],
                     label_set=data["label_set"], cache_dir=cfg.data.cache_dir, progress=progress,
                     grid_rate_hz=grid_rate_hz)
    task.target_scaling = {k: (float(v[0]), float(v[1])) for k, v in (data.get("target_scaling") or {}).items()}
    return task


def evaluate(
    run_path: str | Path,
    *,
    partitions: list[str] | None = None,
    corpus: str | Path | None = None,
    seed: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Score a trained run on ``partitions`` (default: devel and test partitions of its config).

    Writes ``<run>/evaluations/eval-<timestamp>/`` with ``metrics.json``, ``results.md`` and predictions, and
    returns that folder and the metrics. Any run folder evaluates through its :class:`~affectflow.runs.Run`
    (a fused run by its members' predictions combined with its weights, a yardstick by its linear model).
    """
    return Run(run_path).evaluate(partitions=partitions, corpus=corpus, seed=seed, device=device, progress=progress)


def predict(
    run_path: str | Path,
    *,
    recordings: list[str] | None = None,
    partitions: list[str] | None = None,
    corpus: str | Path | None = None,
    out: str | Path | None = None,
    seed: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Predict recordings of a corpus (labelled or not) with a trained run; return the output folder.

    The output folder (``out``, which must not exist yet, or ``<run>/predictions-<timestamp>``) gets one CSV per
    recording with ``time`` and ``<target>_pred`` (plus ``<target>_label`` where labels exist) for continuous
    tasks, or one CSV with a row per segment / clip for segment and clip tasks.

    The corpus may have no labels at all (e.g. a corpus made by ``import-media`` of new recordings). A recording
    without labels is predicted on the run's label grid: ``t_k = k / r``, ``k = 0 .. floor(duration * r) - 1``,
    with ``r`` the label rate the run was trained at (:func:`run_label_rate`).
    """
    run = Run(run_path)
    c = _open_corpus(run, corpus)
    ids = _selection_ids(c, recordings, partitions)
    if out is not None:
        out_dir = out_folder(out, what="output folder", create=False)
    preds = run_predictions(run, recordings=ids, corpus=c, seed=seed, device=device, progress=progress)
    if out is not None:
        out_dir = make_dirs(out_dir)  # not through a symlink out of a run folder
    else:
        out_dir = run.new_output_dir("predictions")
    preds.save(out_dir)
    return out_dir


def _selection_ids(c: Corpus, recordings: list[str] | None, partitions: list[str] | None) -> list[str]:
    if recordings:
        for r in recordings:
            c.recording(r)
        return list(recordings)
    return c.recording_ids(partitions)


def run_predictions(
    run_path: str | Path | Run,
    *,
    recordings: list[str] | None = None,
    partitions: list[str] | None = None,
    corpus: str | Path | Corpus | None = None,
    seed: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> Predictions:
    """A trained run's :class:`~affectflow.predictions.Predictions` on ``recordings`` (or on ``partitions``; neither:
    every recording) of ``corpus`` (default: the run's training corpus), through the one predict path.

    Recordings without labels are predicted on the run's label grid (see :func:`predict`). ``seed``: a trained seed
    (default: the selected one).
    """
    run = run_path if isinstance(run_path, Run) else Run(run_path)
    return run.predict(corpus, recordings, partitions=partitions, seed=seed, device=device, progress=progress)


class TrainedRun(Run):
    """A run made by :func:`train`: one checkpoint per seed, the selected seed's model predicts.

    The contract (:class:`~affectflow.runs.Run`) plus: :meth:`fit` (train every seed of a config into a run folder)
    and :meth:`save` (write the finished run's metrics, predictions, table and plots) -- :func:`train` is the two
    -- and :meth:`checkpoint` / :meth:`model` (one seed's checkpoint / loaded :class:`TrainedModel`).
    """

    kind = "trained"

    def checkpoint(self, seed: int | None = None) -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path(seed))

    def model(self, seed: int | None = None) -> TrainedModel:
        ckpt = self.checkpoint(seed)
        module = build_model(ckpt["model"])
        module.load_state_dict(ckpt["state_dict"])
        module.eval()
        return TrainedModel(run=self, module=module, normalizer=Normalizer.from_state_dict(ckpt["normalizer"]),
                            checkpoint=ckpt)

    checkpoint.__doc__ = Run.checkpoint.__doc__
    model.__doc__ = Run.model.__doc__

    def model_info(self) -> dict[str, Any]:
        """``type`` and ``parameters`` (:func:`~affectflow.runs.parameter_count`) of the selected seed's model
        (of the first finished seed while no seed is selected; ``None`` when no seed has finished), its ``seed``,
        ``best_epoch`` and devel selection score (``devel_score``), and the stored ``input_dims``."""
        out: dict[str, Any] = {"type": (self.config_dict.get("model") or {}).get("type"), "parameters": None}
        best = self.record.get("best_seed")
        seeds = [best] if best is not None else [int(s) for s in self.record.get("seeds") or []]
        for s in seeds:
            try:
                ck = self.checkpoint(int(s))
            except RunError:
                continue
            conf = ck.get("model") if isinstance(ck.get("model"), dict) else {}
            out.update(type=conf.get("type", out["type"]), parameters=parameter_count(conf), seed=ck.get("seed"),
                       best_epoch=ck.get("best_epoch"), devel_score=ck.get("devel_score"),
                       input_dims=conf.get("input_dims"))
            break
        return out

    @classmethod
    def fit(cls, cfg: ExperimentConfig, corpus: Corpus, run_dir: Path, *, info: dict[str, Any],
            device: torch.device, progress: bool = False, resume: bool = False,
            on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> TrainingResult:
        """Train every seed of ``cfg`` on ``corpus`` into the run folder ``run_dir`` (made by :func:`train`, with
        ``run.json`` = ``info`` and ``config.yaml``): :func:`prepare_training` once, :func:`fit_one_seed` per seed
        (checkpoints, histories and epoch states are written as the seeds finish, so an interrupted run resumes),
        then select the seed with the best devel score. Returns what :meth:`save` writes."""
        log.info("run %s: config %s", run_dir, cfg.to_dict())
        setup = prepare_training(cfg, corpus, device=device, progress=progress, info=info, run_dir=run_dir)
        stacked = fit_stacked(setup, run_dir, info, progress=progress, resume=resume, on_epoch=on_epoch)
        forked = {} if stacked else fit_in_workers(setup, run_dir, info, progress=progress, resume=resume,
                                                   on_epoch=on_epoch)
        seeds = {seed: forked[seed] if seed in forked else
                 fit_one_seed(setup, seed, run_dir, info, progress=progress, resume=resume, on_epoch=on_epoch,
                              fitted=stacked.get(seed))
                 for seed in cfg.training.seeds}
        metrics = training_metrics(setup, seeds)
        best = seeds[metrics["selection"]["best_seed"]].model
        return TrainingResult(metrics=metrics, predictions={p: setup.outputs(best, p) for p in setup.eval_parts},
                              targets=list(cfg.data.targets),
                              plots=cfg.data.task == "continuous" and cfg.output.plots)

    @staticmethod
    def save(run_dir: Path, result: TrainingResult, *, info: dict[str, Any]) -> "TrainedRun":
        """Write a fitted run (:meth:`fit`) into ``run_dir``: ``metrics.json``, ``predictions/<partition>/``,
        ``results.md``, the plots, and ``run.json`` (``info``) marked finished; return the run."""
        save_training(run_dir, result.metrics, result.predictions, result.targets, info, plots=result.plots)
        return TrainedRun(run_dir)

    def predictor(self, corpus: Corpus, *, seed: int | None = None, device: str = "auto",
                  progress: bool = False) -> Predictor:
        """The selected seed's (or ``seed``'s) model, normaliser and task on ``corpus``; unlabelled recordings are
        predicted on the run's label grid (:func:`run_label_rate`)."""
        m = self.model(seed)
        model, normalizer, ckpt = m.module, m.normalizer, m.checkpoint
        dev = resolve_device(device)
        model.to(dev)
        ew = m.data["eval_window"]
        grid = m.task_on(corpus, progress=progress, grid_rate_hz=m.label_rate_hz())
        plain = m.task_on(corpus, progress=progress)

        def evaluate(ids: list[str]) -> tuple[Predictions, dict[str, float] | None]:
            store = plain.store(ids)
            return plain.predict(model, store, normalizer, ew, dev), plain.ceiling(store)

        return Predictor(task=plain.name, header={"seed": ckpt["seed"]},
                         predict=lambda ids: grid.predict(model, grid.store(ids), normalizer, ew, dev),
                         evaluate=evaluate)
