"""Personalisation (MuSe 2023, Li et al. section 3.2.2 and 4.2): fine-tune a trained run per subject.

For every subject with recordings in the run's test partitions (or the given ``subjects``):

1. if the subject has its own recordings in the run's train partitions ("own train", e.g. ``S_train``, the first
   60 s) **and** in its devel partition ("own devel", ``S_devel``, the next 60 s), the run's selected model is
   copied and fine-tuned on the own-train recordings with windows of ``window`` / ``hop`` steps (default 10 / 5, the
   paper's), once per seed (default 10 seeds, the paper's); per seed the epoch with the best pooled CCC on the own
   devel recordings is kept (epoch 0 = the base model), and per subject the seed with the best such score
   (:mod:`affectflow.procedures.finetune` has the procedure and the optimiser);
2. otherwise the subject keeps the base model, and the report says why.

The subject's test recordings (and devel recordings) are then predicted with its model through the one predict path
(:meth:`affectflow.tasks.ContinuousTask.predict`); the scores are **pooled over all subjects** (the challenge score:
one CCC over all test recordings concatenated), before (base model everywhere) and after. The z-normalisation of
the base run is kept. Own-devel scores were used for selection, so they are optimistic.

Output: a new folder ``<run>/personalisation/pers-<time>/`` with

- ``report.json`` (options, pooled scores before/after per partition and target, noise-free ceiling when known,
  per subject: status, chosen seed, best epoch, own-devel score per seed and epoch, test scores before/after) and
  ``results.md`` (the same as tables);
- ``checkpoints/<subject>.pt`` per personalised subject (state dict + model config + normaliser + data spec, loadable
  with ``weights_only=True`` like every run checkpoint: ``Run.model``-compatible payload);
- ``predictions/<partition>/`` (personalised, a :class:`~affectflow.predictions.Predictions` folder: subjects without
  their own model are predicted by the base model) and ``base_predictions/<partition>/`` (the base model);
- ``run.json`` (``kind: personalisation``), ``config.yaml`` (the base run's) and ``metrics.json`` (``best``: the
  personalised scores), so procedures over saved predictions take the folder like a run
  (``affectflow fuse PERS_FOLDER OTHER_RUN``), and ``evaluate`` / ``predict`` take it too
  (:class:`PersonalisedRun`: each recording is predicted by its subject's checkpoint, else by the base model).

>>> from affectflow.procedures.personalise import personalise, personalised_predictions
>>> folder = personalise("runs/gru-...", seeds=10)                     # doctest: +SKIP
>>> preds = personalised_predictions(folder, "test")                   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from affectflow.corpus.corpus import Corpus
from affectflow.data.dataset import WindowDataset, collate
from affectflow.errors import AffectflowError, ConfigError, RunError
from affectflow.execution import get_executor
from affectflow.fsutil import write_json
from affectflow.predictions import Predictions
from affectflow.procedures.finetune import (
    FineTuneSettings,
    JobData,
    finetune_loop,
    finetune_vectorised,
    supports_vectorised,
)
from affectflow.layout import is_run_folder, prediction_folder
from affectflow.runs import (
    Predictor,
    Run,
    checkpoints_folder,
    environment_info,
    load_checkpoint,
    new_subdir,
    parameter_count,
    save_checkpoint,
    source_list,
    write_run_info,
)
from affectflow.tasks import ContinuousTask
from affectflow.tracking import log_run, logged_run_id, normalise_uri, safely
from affectflow.training.seeds import resolve_device
from affectflow.training.stacked import stack_blocker

log = logging.getLogger("affectflow")

IMPLEMENTATIONS = ("auto", "vectorised", "loop")
COMBINES = ("select", "average")
PERSONALISATION_KIND = "personalisation"
#: The base model's predictions of a personalisation folder (``base_predictions/<partition>/``), next to the
#: personalised ones (the run's ``predictions/<partition>/``).
BASE_PREDICTIONS_DIR = "base_predictions"


def _open_run_corpus(run: Run, corpus: str | Path | Corpus | None) -> Corpus:
    if isinstance(corpus, Corpus):
        return corpus
    path = corpus or run.config_dict["data"]["corpus"]
    try:
        return Corpus(path)
    except AffectflowError as e:
        hint = ("" if corpus else " It is the corpus the run was trained on; if it has moved, pass its new location "
                "(`corpus=` / `--corpus`).")
        raise RunError(f"Cannot personalise run {str(run.path)!r}: its corpus {str(path)!r} cannot be opened "
                       f"({e}).{hint}") from e


def _recordings_by_subject(corpus: Corpus, partitions: Sequence[str]) -> dict[str, list[str]]:
    rec = corpus.recordings
    rec = rec[rec["partition"].isin(list(partitions))]
    out: dict[str, list[str]] = {}
    for rid, subj in zip(rec["id"], rec["subject"]):
        out.setdefault(str(subj), []).append(str(rid))
    return out


def personalise(
    run_path: str | Path,
    *,
    seeds: int | Sequence[int] = 10,
    window: int = 10,
    hop: int = 5,
    epochs: int = 20,
    patience: int = 5,
    lr: float | None = None,
    batch_size: int | None = None,
    subjects: Sequence[str] | None = None,
    corpus: str | Path | Corpus | None = None,
    implementation: str = "auto",
    group_size: int | None = 8,
    device: str = "cpu",
    progress: bool = False,
    combine: str = "select",
    l2sp: float = 0.0,
    shrink: float = 1.0,
    backend: str | None = None,
    workers: int = 1,
    threads: int = 1,
    executor_options: dict[str, Any] | None = None,
    tracking: str | None = None,
) -> Path:
    """Personalise a trained continuous run per subject (see the module docstring); return the new folder.

    Parameters
    ----------
    run_path:
        A finished run (its selected seed is the base model).
    seeds:
        Number of seeds (``n`` → seeds ``1..n``) or the seeds themselves; default 10 (the paper's).
    window, hop:
        Fine-tuning windows in label steps (default 10 / 5 = 5 s / 2.5 s at 2 Hz, the paper's).
    epochs, patience:
        At most ``epochs`` passes over the own-train windows; stop after ``patience`` epochs without a better
        own-devel score (our choices; the paper gives none).
    lr, batch_size:
        Adam learning rate and batch size (default: the run's ``training.lr`` / ``training.batch_size``);
        weight decay, gradient clipping and the loss are the run's.
    subjects:
        Subjects to personalise (default: every subject with a recording in the run's test partitions).
    corpus:
        The corpus (default: the run's; pass the new location if it has moved).
    implementation:
        ``vectorised`` (all subject × seed models trained together as one stacked model,
        :mod:`affectflow.training.stacked`; any model without a stack blocker such as BatchNorm statistics),
        ``loop`` (one after another; any model) or ``auto`` (vectorised when the model allows it). Both give the
        same results up to float rounding.
    group_size:
        Vectorised: at most this many subject × seed models per stacked group (default 8; ``None``: all at once).
        On a CPU at hidden 256 small groups are fastest (measured on 60 jobs: 8 → 16.7 s, 20 → 17.2 s, all 60 →
        19.4 s, plain loop 18.6 s): the stacked weights of many models no longer stay in cache.
    device:
        ``cpu`` / ``cuda`` / ``auto`` for predictions (fine-tuning runs on the CPU).
    combine:
        ``select`` (the paper's: per subject the one seed with the best own-devel score) or ``average`` (the
        subject's test prediction is the mean of all its seeds' predictions, each seed at its own best epoch; one
        60 s devel minute is a noisy basis for picking one seed, averaging does not pick).
    l2sp:
        ``α ≥ 0`` of the L2-SP penalty ``α · Σ ‖θ − θ⁰‖²`` toward the base weights during fine-tuning (0 = off).
    shrink:
        ``s`` in (0, 1]: every fine-tuned model is replaced by ``θ⁰ + s · (θ − θ⁰)`` (floating-point parameters
        and buffers) after fine-tuning and selection (1 = off; the own-devel scores in the report are before it).
    backend, workers, threads, executor_options:
        ``None``: fine-tune in this process. Otherwise the subject × seed jobs go, one group of ``group_size`` jobs
        (default 8) per task, through that executor backend (``local``, ``forked``, ``ray``, see
        :mod:`affectflow.execution`) with ``threads`` torch threads per task; groups are the same as in
        this process, so the results are equal (``forked``: processes forked from this one, no start-up cost,
        one thread each; the fastest on one machine).
    tracking:
        An MLflow tracking URI (default: the base run's ``tracking.mlflow``): the folder is logged as a run nested
        under the base run's MLflow run, with every subject × seed own-devel curve as metrics
        ``<subject>/seed<s>/devel`` (step = epoch).
    """
    run = Run(run_path)
    if implementation not in IMPLEMENTATIONS:
        raise ConfigError(f"`implementation` must be one of {list(IMPLEMENTATIONS)}, got {implementation!r}.")
    seed_list = list(range(1, int(seeds) + 1)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise ConfigError(f"Personalisation needs at least one seed and no seed twice; got {seeds!r}.")
    for name, v in (("window", window), ("hop", hop), ("epochs", epochs), ("patience", patience)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"`{name}` must be a positive integer, got {v!r}.")
    if hop > window:
        raise ConfigError(f"`hop` ({hop}) must not exceed `window` ({window}).")
    if combine not in COMBINES:
        raise ConfigError(f"`combine` must be one of {list(COMBINES)}, got {combine!r}.")
    if not isinstance(l2sp, (int, float)) or not np.isfinite(l2sp) or l2sp < 0:
        raise ConfigError(f"`l2sp` must be a finite number >= 0, got {l2sp!r}.")
    if not isinstance(shrink, (int, float)) or not (0 < shrink <= 1):
        raise ConfigError(f"`shrink` must be in (0, 1], got {shrink!r}.")
    cfg = run.config_dict
    d, t = cfg["data"], cfg["training"]
    trained = run.model()
    model, normalizer, ckpt = trained.module, trained.normalizer, trained.checkpoint
    if ckpt["data"].get("task", "continuous") != "continuous":
        raise RunError(f"Personalisation fine-tunes continuous runs; run {str(run.path)!r} is a "
                       f"{ckpt['data'].get('task')!r} run.")
    if t.get("multitask"):
        raise RunError("Personalisation fine-tunes with the run's plain loss; runs trained with learnt multitask "
                       "weights (`training.multitask`) are not supported.")
    c = _open_run_corpus(run, corpus)
    task = trained.task_on(c, progress=progress)
    assert isinstance(task, ContinuousTask)
    train_parts, devel_part, test_parts = list(d["train_partitions"]), d["devel_partition"], list(d["test_partitions"])
    own_train = _recordings_by_subject(c, train_parts)
    own_devel = _recordings_by_subject(c, [devel_part])
    tests = _recordings_by_subject(c, test_parts)
    wanted = list(subjects) if subjects is not None else sorted(tests)
    unknown = [s for s in wanted if s not in set(c.recordings["subject"].astype(str))]
    if unknown:
        raise ConfigError(f"Subjects {unknown} are not in corpus {str(c.path)!r}.")
    if not wanted:
        raise RunError(f"Corpus {str(c.path)!r} has no recordings in the run's test partitions {test_parts}: "
                       "nothing to personalise.")
    settings = FineTuneSettings(epochs=int(epochs), patience=int(patience), lr=float(lr or t["lr"]),
                                batch_size=int(batch_size or t["batch_size"]), weight_decay=float(t["weight_decay"]),
                                grad_clip=t.get("grad_clip"), loss=t["loss"], l2sp=float(l2sp))
    if implementation == "vectorised" and not supports_vectorised(model):
        raise ConfigError(f"The vectorised fine-tuning cannot stack this run's model ({ckpt['model']['type']!r}): "
                          f"{stack_blocker(model)}. Use implementation='loop' (or 'auto').")
    impl = "vectorised" if implementation == "auto" and supports_vectorised(model) else (
        "loop" if implementation == "auto" else implementation)

    # ---------------------------------------------------------------- who gets fine-tuned
    status: dict[str, dict[str, Any]] = {}
    data: dict[str, JobData] = {}

    for subj in wanted:
        tr, dv = own_train.get(subj, []), own_devel.get(subj, [])
        missing = [w for w, ids in (("train", tr), ("devel", dv)) if not ids]
        if missing:
            status[subj] = {"status": "base model", "reason": f"no own {' and '.join(missing)} recording "
                            f"(partitions {train_parts if 'train' in missing else []}"
                            f"{' / ' if len(missing) == 2 else ''}{[devel_part] if 'devel' in missing else []})",
                            "own_train": tr, "own_devel": dv}
            continue
        tr_store, dv_store = task.store(tr), task.store(dv)
        windows = WindowDataset(tr_store, normalizer, window, hop, require_labels=True)
        if len(windows) == 0 or all(r.y is None for r in dv_store.records):
            status[subj] = {"status": "base model", "reason": "own recordings without labels",
                            "own_train": tr, "own_devel": dv}
            continue
        whole = WindowDataset(dv_store, normalizer, None, None)
        data[subj] = JobData(collate([windows[i] for i in range(len(windows))]),
                             collate([whole[i] for i in range(len(whole))]))
        status[subj] = {"status": "personalised", "own_train": tr, "own_devel": dv, "train_windows": len(windows)}

    # ---------------------------------------------------------------- fine-tune
    jobs = [(data[s], seed) for s in data for seed in seed_list]
    job_keys = [(s, seed) for s in data for seed in seed_list]
    log.info("personalising %d subjects x %d seeds (%s)", len(data), len(seed_list), impl)
    torch_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    base_cpu = model.cpu()
    if not jobs:
        results = []
    elif backend is not None:
        results = _finetune_on_executor(impl, base_cpu, jobs, settings, group_size, backend, workers, threads,
                                        dict(executor_options or {}))
    elif impl == "vectorised":
        results = finetune_vectorised(base_cpu, jobs, settings, group_size=group_size)
    else:
        results = finetune_loop(base_cpu, jobs, settings)
    seconds = time.perf_counter() - t0
    if shrink != 1.0:
        base_state = {k: v.detach().cpu() for k, v in base_cpu.state_dict().items()}
        for r in results:
            r.state_dict = {k: (base_state[k] + shrink * (v - base_state[k])) if v.is_floating_point() else v
                            for k, v in r.state_dict.items()}

    out = new_subdir(run.path / "personalisation", "pers")
    chosen: dict[str, Any] = {}
    members: dict[str, list] = {}
    for subj in data:
        per_seed = {seed: results[job_keys.index((subj, seed))] for seed in seed_list}
        best_seed = max(seed_list, key=lambda s: per_seed[s].best_score)
        res = per_seed[best_seed]
        chosen[subj] = res
        members[subj] = [res] if combine == "select" else [per_seed[s] for s in seed_list]
        status[subj].update(
            seed=best_seed, best_epoch=res.best_epoch, devel_score=res.best_score,
            devel_score_base=res.history[0],
            kept_base_weights=res.best_epoch == 0,
            per_seed={str(s): {"best_epoch": r.best_epoch, "devel_score": r.best_score, "history": r.history}
                      for s, r in per_seed.items()},
        )
        payload = dict(ckpt)
        for seed, r in ([(best_seed, res)] if combine == "select" else list(per_seed.items())):
            name = f"{subj}.pt" if combine == "select" else f"{subj}-seed{seed}.pt"
            save_checkpoint(checkpoints_folder(out) / name, model=_with_state(model, r.state_dict),
                            normalizer_state=ckpt["normalizer"], data_spec=ckpt["data"],
                            extra={"seed": seed, "subject": subj, "best_epoch": r.best_epoch,
                                   "devel_score": r.best_score, "base_run": str(run.path),
                                   "base_seed": payload.get("seed"), "kind": "personalised", "combine": combine,
                                   "shrink": shrink, "l2sp": l2sp})

    # ---------------------------------------------------------------- predict and score
    dev = resolve_device(device)
    parts = list(dict.fromkeys([devel_part, *test_parts]))
    report_parts: dict[str, Any] = {}
    model.to(dev)
    for part in parts:
        ids = c.recording_ids([part])
        if not ids:
            continue
        store = task.store(ids)
        base_preds = task.predict(model, store, normalizer, ckpt["data"]["eval_window"], dev)
        subject_of = {r.id: r.subject for r in store.records}
        after = personal_predictions(task, model, normalizer, ckpt["data"]["eval_window"], dev, base_preds, subject_of,
                                     {subj: [r.state_dict for r in group] for subj, group in members.items()})
        base_preds.meta, after.meta = {"kind": "base", "run": str(run.path)}, {
            "kind": "personalised", "run": str(run.path), "folder": str(out)}
        base_preds.save(out / BASE_PREDICTIONS_DIR / part)
        Run.save_predictions(out, part, after)
        before_s, after_s = task.score(base_preds), task.score(after)
        per_subject = {}
        for subj in sorted({subject_of[r] for r in ids}):
            mine = [r for r in ids if subject_of[r] == subj]
            per_subject[subj] = {"before": task.score(base_preds.subset(mine)), "after": task.score(after.subset(mine)),
                                 "recordings": mine}
        report_parts[part] = {"before": before_s, "after": after_s, "ceiling": task.ceiling(store),
                              "per_subject": per_subject}

    report = {
        "run": str(run.path), "corpus": str(c.path), "base_seed": ckpt.get("seed"),
        "devel_partition": devel_part, "test_partitions": test_parts,
        "options": {"seeds": seed_list, "window": window, "hop": hop, **asdict(settings), "combine": combine,
                    "shrink": shrink,
                    "implementation": impl, "group_size": group_size, "subjects": wanted},
        "protocol": "per subject: fine-tune the base model on its own train recordings (partitions "
        f"{train_parts}) with windows {window}/{hop}"
        + (f", L2-SP penalty {l2sp} toward the base weights" if l2sp else "")
        + ", per seed keep the epoch with the best pooled CCC on its own "
        f"devel recordings ({devel_part!r}; epoch 0 = the base model), "
        + ("keep the seed with the best such score" if combine == "select" else "average all seeds' predictions")
        + (f", shrink the update to {shrink} of its size" if shrink != 1.0 else "") + "; "
        "own-devel scores are optimistic (used for selection); scores pooled over all subjects' recordings",
        "fine_tune_seconds": seconds, "torch_threads": torch_threads,
        "subjects": status, "partitions": report_parts,
    }
    write_json(out / "report.json", report)
    Run.write_results(out, results_markdown(report))
    # run-like files, so that procedures over saved predictions (e.g. `affectflow fuse`) take the folder as a member
    run_cfg = json.loads(json.dumps(cfg))
    run_cfg.setdefault("output", {})["name"] = out.name
    Run.write_config(out, run_cfg)
    Run.write_metrics(out, {"task": "continuous", "kind": PERSONALISATION_KIND,
                            "best": {p: r["after"] for p, r in report_parts.items()},
                            "protocol": report["protocol"]})
    write_run_info(out, {**environment_info(), "kind": PERSONALISATION_KIND, "status": "finished",
                         "corpus": str(c.path), "base_run": str(run.path), "best_seed": None,
                         "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    log.info("personalisation written to %s", out)
    uri = tracking or (cfg.get("tracking") or {}).get("mlflow")
    if uri:
        _track(out, run.path, uri, status)
    return out


def _track(out: Path, base_run: Path, uri: str, status: dict[str, Any]) -> None:
    def go() -> None:
        from mlflow.entities import Metric  # optional (requirements/scale.txt): only with tracking on

        parent = logged_run_id(Path(base_run).resolve(), normalise_uri(uri))
        curves = [Metric(f"{subj}/seed{seed}/devel", float(v), 0, epoch)
                  for subj, st in status.items() for seed, r in (st.get("per_seed") or {}).items()
                  for epoch, v in enumerate(r.get("history") or []) if v is not None and np.isfinite(v)]
        log_run(out, uri, parent=parent, extra_metrics=curves)

    safely(go)


def finetune_group(job: tuple[str, torch.nn.Module, list, FineTuneSettings]) -> list:
    """One personalisation group as an executor task: ``(implementation, base model, jobs, settings)`` → results."""
    impl, base, jobs, settings = job
    if impl == "vectorised":
        return finetune_vectorised(base, jobs, settings, group_size=len(jobs))
    return finetune_loop(base, jobs, settings)


def _finetune_on_executor(impl: str, base: torch.nn.Module, jobs: list, settings: FineTuneSettings,
                          group_size: int | None, backend: str, workers: int, threads: int,
                          options: dict[str, Any]) -> list:
    size = group_size or len(jobs)
    groups = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    out: list[Any] = [None] * len(groups)
    ex = get_executor(backend, workers=min(workers, len(groups)), threads=threads, **options)
    try:
        for i, res in ex.map(finetune_group, [(impl, base, g, settings) for g in groups]):
            out[i] = res
    finally:
        ex.close()
    return [r for group in out for r in group]


def personal_predictions(task: ContinuousTask, model: torch.nn.Module, normalizer: Any, eval_window: dict,
                         device: Any, base_preds: Predictions, subject_of: dict[str, str],
                         states: dict[str, list[dict[str, torch.Tensor]]]) -> Predictions:
    """``base_preds`` (the base model's predictions) with the recordings of every subject in ``states`` predicted
    again by the base model carrying that subject's fine-tuned weights: ``states[subject]`` is a list of state
    dicts (one, or one per seed with ``combine="average"``, whose predictions are averaged step-wise)."""
    personal: dict[str, Predictions] = {}
    for subj, group in states.items():
        mine = [rid for rid in base_preds.recordings if subject_of[rid] == subj]
        if mine:
            store_mine = task.store(mine)
            preds = [task.predict(_with_state(model, st).to(device), store_mine, normalizer, eval_window, device)
                     for st in group]
            personal.update({rid: p for rid, p in zip(mine, _split(_mean_predictions(preds)))})
    pieces = [personal[rid] if rid in personal else base_preds.subset([rid]) for rid in base_preds.recordings]
    return Predictions.concat(pieces)


class PersonalisedRun(Run):
    """A personalisation folder (``kind: personalisation``) as a :class:`~affectflow.runs.Run`: each recording is
    predicted by its subject's fine-tuned model (``checkpoints/<subject>.pt``), or by the base run's selected model
    when its subject has none. The base run's normalisation and task are used."""

    kind = PERSONALISATION_KIND

    @classmethod
    def fit(cls, run: str | Path, **options: Any) -> "PersonalisedRun":
        """Personalise the trained ``run`` (:func:`personalise`, with its ``options``) and return the result; the
        folder is written as the subjects finish, so for this kind ``fit`` is fit and save."""
        return cls(personalise(run, **options))

    def subject_checkpoints(self) -> list[Path]:
        """The per-subject checkpoints (``checkpoints/<subject>.pt``, or ``<subject>-seed<s>.pt`` with
        ``combine="average"``), sorted."""
        folder = checkpoints_folder(self.path)
        return sorted(folder.glob("*.pt")) if folder.is_dir() else []

    def model_info(self) -> dict[str, Any]:
        """The base model's ``type`` and ``parameters`` (every subject's model has the same), the ``subjects``
        with their own fine-tuned weights and the number of ``checkpoints``."""
        files = self.subject_checkpoints()
        out: dict[str, Any] = {"type": (self.config_dict.get("model") or {}).get("type"), "parameters": None,
                               "subjects": [], "checkpoints": len(files)}
        subjects = set()
        for f in files:
            try:
                ck = load_checkpoint(f)
            except RunError:
                continue
            subjects.add(str(ck.get("subject", f.stem)))
            if out["parameters"] is None and isinstance(ck.get("model"), dict):
                out.update(type=ck["model"].get("type", out["type"]), parameters=parameter_count(ck["model"]))
        out["subjects"] = sorted(subjects)
        return out

    def sources(self) -> list[dict[str, Any]]:
        """The base run (``role: "base"``)."""
        base = self.record.get("base_run")
        return source_list("base", [base] if base else [])

    def predictor(self, corpus: Corpus, *, seed: int | None = None, device: str = "auto",
                  progress: bool = False) -> Predictor:
        """The base run's model plus the per-subject weights on ``corpus`` (``seed`` is not used: every subject's
        seed was chosen when it was personalised)."""
        base_path = self.record.get("base_run")
        if not base_path or not is_run_folder(base_path):
            raise RunError(f"The base run {base_path!r} of the personalisation folder {str(self.path)!r} does not "
                           "exist any more; a personalised folder predicts with it.")
        base = Run(base_path)
        trained = base.model()
        model, normalizer, ckpt = trained.module, trained.normalizer, trained.checkpoint
        dev = resolve_device(device)
        model.to(dev)
        task = trained.task_on(corpus, progress=progress, grid_rate_hz=trained.label_rate_hz())
        found = []  # (subject, seed, state): one per subject, or one per subject and seed (combine="average")
        for f in self.subject_checkpoints():
            ck = load_checkpoint(f)
            found.append((str(ck.get("subject", f.stem)), int(ck.get("seed", 0)), ck["state_dict"]))
        states: dict[str, list[dict[str, torch.Tensor]]] = {}
        for subj, _, st in sorted(found, key=lambda x: (x[0], x[1])):
            states.setdefault(subj, []).append(st)
        ew = ckpt["data"]["eval_window"]

        def predict(ids: list[str]) -> Predictions:
            store = task.store(ids)
            base_preds = task.predict(model, store, normalizer, ew, dev)
            return personal_predictions(task, model, normalizer, ew, dev, base_preds,
                                        {r.id: str(r.subject) for r in store.records}, states)

        return Predictor(task=task.name, predict=predict, header={"kind": PERSONALISATION_KIND,
                                                                   "base_run": str(base.path)})


def _with_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    m = copy.deepcopy(model).cpu()
    m.load_state_dict(state)
    m.eval()
    return m


def _mean_predictions(preds: list[Predictions]) -> Predictions:
    """Step-wise mean of continuous predictions of the same recordings (one per seed)."""
    if len(preds) == 1:
        return preds[0]
    p0 = preds[0]
    values = [np.mean([np.asarray(p.values[i], np.float64) for p in preds], axis=0).astype(np.float32)
              for i in range(len(p0.recordings))]
    return Predictions(p0.task, p0.specs, list(p0.recordings), times=p0.times, values=values, labels=p0.labels,
                       meta=dict(p0.meta))


def _split(preds: Predictions) -> list[Predictions]:
    return [preds.subset([r]) for r in preds.recordings]


def personalised_predictions(folder: str | Path, partition: str = "test", *, base: bool = False) -> Predictions:
    """The personalised (or, with ``base=True``, the base model's) :class:`Predictions` of a partition."""
    folder = Path(folder)
    sub = (folder / BASE_PREDICTIONS_DIR / partition) if base else prediction_folder(folder, partition)
    if not sub.is_dir():
        saved = prediction_folder(folder)
        have = sorted(p.name for p in saved.glob("*")) if saved.is_dir() else []
        raise RunError(f"{str(folder)!r} has no personalised predictions of partition {partition!r}; it has {have}.")
    return Predictions.load(sub)


def load_report(folder: str | Path) -> dict[str, Any]:
    """The ``report.json`` of a personalisation folder."""
    p = Path(folder) / "report.json"
    if not p.is_file():
        raise RunError(f"{str(folder)!r} is not a personalisation folder (no report.json).")
    return json.loads(p.read_text())


def results_markdown(report: dict[str, Any]) -> str:
    """Tables of a personalisation report: pooled before/after per partition and target, then per subject."""
    lines = [f"Personalisation of {report['run']} ({report['options']['implementation']}, seeds "
             f"{report['options']['seeds']}, windows {report['options']['window']}/{report['options']['hop']}; "
             f"fine-tuning {report['fine_tune_seconds']:.1f} s).", "",
             "Pooled CCC over all subjects (devel: optimistic, used for selection):", "",
             "| partition | target | before | after | noise-free ceiling |", "|---|---|---|---|---|"]
    for part, r in report["partitions"].items():
        for target in r["before"]:
            c = (r.get("ceiling") or {}).get(target)
            lines.append(f"| {part} | {target} | {r['before'][target]['ccc']:.4f} | {r['after'][target]['ccc']:.4f} | "
                         f"{'' if c is None else f'{c:.4f}'} |")
    lines += ["", "| subject | status | seed | best epoch | own-devel score base → best | test CCC before → after |",
              "|---|---|---|---|---|---|"]
    tests = [p for p in report["test_partitions"] if p in report["partitions"]]
    last = report["partitions"][tests[-1]] if tests else {"per_subject": {}}
    for subj, s in report["subjects"].items():
        ps = last["per_subject"].get(subj)
        test = "" if ps is None else " / ".join(
            f"{t} {ps['before'][t]['ccc']:.3f} → {ps['after'][t]['ccc']:.3f}" for t in ps["before"])
        if s["status"] == "personalised":
            lines.append(f"| {subj} | personalised | {s['seed']} | {s['best_epoch']} | "
                         f"{s['devel_score_base']:.3f} → {s['devel_score']:.3f} | {test} |")
        else:
            lines.append(f"| {subj} | base model: {s['reason']} | | | | {test} |")
    return "\n".join(lines)
