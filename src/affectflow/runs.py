"""Run directories and checkpoints.

A run directory is self-describing and never overwritten::

    <runs_dir>/<name>-<YYYYmmdd-HHMMSS>[-N]/
      config.yaml                 the resolved configuration (defaults + file + overrides)
      run.json                    affectflow/torch/python versions, command, corpus, seeds, best seed, status
      train.log                   the training log
      history/seed-<s>.csv        per-epoch train loss, devel score, learning rate
      checkpoints/seed-<s>.pt     state dict + model config + normaliser + data spec (loads with weights_only=True);
                                  its presence marks seed <s> as finished
      resume/seed-<s>.pt          while seed <s> trains: its last epoch state (model, optimiser, scheduler, early
                                  stopping, RNG states), written atomically after every epoch, removed when the
                                  seed finishes; `affectflow train --resume RUN` continues from it
      metrics.json                per partition / seed / target metrics, mean ± std over seeds, selection, ceiling
      predictions/<partition>/<recording>.csv   time, <target>_pred, <target>_label  (best seed)
      results.md                  the results table
      plots/                      learning curves and prediction plots
      evaluations/<timestamp>/    later `affectflow evaluate` outputs

Fused, personalised and yardstick results are run folders too (``run.json`` has ``kind: fusion`` /
``personalisation`` / ``yardstick``; a trained run has no ``kind`` or ``kind: trained``). :class:`Run` is the one
contract over all of them: ``Run(path)`` returns the class of the folder's kind (:class:`affectflow.experiment.
TrainedRun`, :class:`affectflow.procedures.fuse.FusedRun`, :class:`affectflow.procedures.personalise.
PersonalisedRun`, :class:`affectflow.procedures.yardstick.YardstickRun`), and every command that reads a run
(evaluate, predict, submit, fuse, late fusion, export, streaming, serve) goes through its methods: ``predict(corpus,
ids) -> Predictions``, ``evaluate(...)``, ``saved_predictions(partition)``, ``metrics()``, ``summary()``. The file
names of the layout above are spelled only here (:data:`LAYOUT`) and read through :class:`Run`'s paths.

Status: ``run.json`` holds ``status`` (``running``, ``finished``, ``failed: ...``) and, while training, the ``pid``,
``host`` and process start time of the trainer plus a ``heartbeat`` time updated after every epoch.
:func:`run_status` reports a ``running`` run whose process is gone (killed, machine rebooted) as ``interrupted``.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
import yaml

from affectflow import __version__
from affectflow.corpus.corpus import Corpus
from affectflow.errors import AffectflowError, CorpusError, RunError
from affectflow.fsutil import atomic_write, check_write, child_path, make_dirs, write_json
from affectflow.models import build_model
from affectflow.predictions import Predictions
from affectflow.scoring import score


# ---------------------------------------------------------------------------- the layout, spelled once
from affectflow.layout import (  # noqa: E402,F401 - re-exported: the names and paths of the layout
    CHECKPOINTS_DIR,
    CONFIG_YAML,
    EVALUATIONS_DIR,
    HISTORY_DIR,
    LAYOUT,
    METRICS_JSON,
    PLOTS_DIR,
    PREDICTIONS_DIR,
    RESULTS_MD,
    RESUME_DIR,
    RUN_JSON,
    TRAIN_LOG,
    checkpoint_file,
    checkpoints_folder,
    find_run_folders,
    history_file,
    history_files,
    is_run_folder,
    log_file,
    plots_folder,
    prediction_folder,
    read_run_record,
    resume_folder,
    results_file,
    results_text,
    run_finished,
)

#: ``run.json`` ``kind`` → ``"module:Class"`` implementing :class:`Run` for that kind (imported when first needed,
#: so this bottom module does not import the procedures). :func:`register_run_kind` adds one.
RUN_KINDS: dict[str, str] = {
    "trained": "affectflow.experiment:TrainedRun",
    "fusion": "affectflow.procedures.fuse:FusedRun",
    "personalisation": "affectflow.procedures.personalise:PersonalisedRun",
    "yardstick": "affectflow.procedures.yardstick:YardstickRun",
}


def register_run_kind(kind: str, target: str) -> None:
    """Make ``Run(path)`` open folders whose ``run.json`` says ``kind`` with the class ``target``
    (``"package.module:Class"``, a subclass of :class:`Run`)."""
    RUN_KINDS[kind] = target


def run_kind(path: str | os.PathLike) -> str:
    """The ``kind`` of the run folder at ``path`` (``"trained"`` when ``run.json`` names none or is unreadable)."""
    f = Path(path) / RUN_JSON
    try:
        info = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
    except (OSError, UnicodeDecodeError, ValueError):
        return "trained"
    kind = info.get("kind") if isinstance(info, dict) else None
    return str(kind) if kind else "trained"


def new_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create and return a new, empty run directory ``<root>/<name>-<timestamp>`` (a suffix avoids any clash)."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{name}-{stamp}"
    try:
        child_path(root, base, kind="run name")
    except CorpusError as e:
        raise RunError(str(e)) from None
    make_dirs(root)  # a symlinked `evaluations/` (or any folder) inside a run folder cannot take it elsewhere
    for k in range(1000):
        p = root / (base if k == 0 else f"{base}-{k}")
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue
    raise RunError(f"Could not create a new run directory under {root} (too many runs named {base}).")


def new_subdir(parent: Path, prefix: str) -> Path:
    """A new timestamped folder under ``parent`` (never an existing one)."""
    return new_run_dir(parent, prefix)


def environment_info() -> dict[str, Any]:
    """Versions and host facts stored in ``run.json``."""
    return {
        "affectflow": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "command": " ".join(sys.argv),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


#: Checkpoint revision written by :func:`save_checkpoint`. 2: AFG attention scores are scaled by ``√D`` by default;
#: a checkpoint without a revision predates it and is rebuilt unscaled (see :func:`upgrade_checkpoint`).
CHECKPOINT_REVISION = 2


def save_checkpoint(path: Path, *, model: torch.nn.Module, normalizer_state: dict, data_spec: dict, extra: dict) -> None:
    """Save a state dict plus everything needed to rebuild and use the model (no pickled objects)."""
    make_dirs(Path(path).parent)
    check_write(path, what="checkpoint")
    payload = {
        "format": "affectflow-checkpoint",
        "revision": CHECKPOINT_REVISION,
        "affectflow_version": __version__,
        "model": model.config(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "normalizer": normalizer_state,
        "data": data_spec,
        **extra,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain values only)."""
    p = Path(path)
    if not p.is_file():
        raise RunError(f"Checkpoint {str(p)!r} does not exist.")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        # torch's message advises re-running with weights_only=False, i.e. executing the file's code: never pass
        # that on. Say only what the file is and that it will not be loaded.
        raise RunError(
            f"{str(p)!r} is not an affectflow checkpoint and will not be loaded: it is not a readable torch file of "
            f"tensors and plain values ({type(e).__name__}). affectflow only loads its own checkpoints (state dict "
            "+ config), with weights_only=True; a file that needs more than that may run code when loaded."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "affectflow-checkpoint":
        raise RunError(f"{str(p)!r} is not an affectflow checkpoint (no 'format: affectflow-checkpoint' entry) and "
                       "will not be used.")
    return upgrade_checkpoint(ckpt)


def _unscaled_afg(node: Any) -> None:
    """Pin ``scaled_scores: false`` on every AFG block of a model config that does not state it."""
    if isinstance(node, dict):
        if node.get("type") == "afg" or (node.get("type") == "afg_jdev" and isinstance(node.get("params"), dict)):
            (node["params"] if node.get("type") == "afg_jdev" else node).setdefault("scaled_scores", False)
        for v in node.values():
            _unscaled_afg(v)
    elif isinstance(node, list):
        for v in node:
            _unscaled_afg(v)


def upgrade_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Make an older checkpoint rebuild the model it was trained as.

    Revision 1 (no ``revision`` entry) predates the ``√D`` scaling of AFG attention scores: its AFG blocks are
    rebuilt with ``scaled_scores: false``, so old runs predict exactly as they did when they were trained.
    """
    if int(ckpt.get("revision", 1)) < 2 and isinstance(ckpt.get("model"), dict):
        _unscaled_afg(ckpt["model"])
    return ckpt


# ---------------------------------------------------------------------------- epoch states (resume)
def epoch_state_path(run_dir: Path, seed: int) -> Path:
    """Where the epoch state of ``seed`` is kept while it trains (inside the run folder)."""
    return resume_folder(run_dir) / f"seed-{int(seed)}.pt"


def save_epoch_state(path: Path, state: dict[str, Any]) -> None:
    """Write an epoch state atomically (temporary file in the same folder, then rename); mode follows the umask."""
    make_dirs(Path(path).parent)
    check_write(path, what="epoch state")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_epoch_state(path: Path) -> dict[str, Any]:
    """Load an epoch state with ``weights_only=True``; anything else is refused with a :class:`RunError`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise RunError(
            f"{str(path)!r} is not an affectflow epoch state and will not be loaded ({type(e).__name__}). Delete it to "
            "restart this seed from its first epoch."
        ) from None
    if not isinstance(state, dict) or state.get("format") != "affectflow-epoch-state":
        raise RunError(f"{str(path)!r} is not an affectflow epoch state; delete it to restart this seed.")
    return state


# ---------------------------------------------------------------------------- process identity and status
def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_identity() -> dict[str, Any]:
    """``pid``, ``host`` and ``pid_start`` of this process (stored in ``run.json`` while training)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _process_start(os.getpid())}


def _alive(pid: int, start: str | None) -> bool | None:
    """Whether process ``pid`` (started at ``start``) still runs on this host; ``None`` if it cannot be told."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return None
    now = _process_start(pid)
    if start is not None and now is not None:
        return now == start
    return True


#: A run on another host whose heartbeat is older than this (s) is reported as interrupted.
STALE_AFTER_S = 6 * 3600


def run_status(info: dict[str, Any]) -> str:
    """The effective status of a run from its ``run.json``: ``finished``, ``failed: ...``, ``running`` or
    ``interrupted`` (``running`` on record, but the trainer process is gone: on this host its pid is dead or
    reused; on another host its heartbeat is older than :data:`STALE_AFTER_S`)."""
    status = str(info.get("status", "unknown"))
    if status != "running":
        return status
    pid, host = info.get("pid"), info.get("host")
    if pid is None or host is None:
        return "interrupted"  # written by a version that recorded no process: it cannot still be running
    if host == socket.gethostname():
        alive = _alive(int(pid), info.get("pid_start"))
        if alive is False:
            return "interrupted"
        return "running"
    beat = info.get("heartbeat_unix")
    if beat is not None and time.time() - float(beat) > STALE_AFTER_S:
        return "interrupted"
    return "running"


@dataclass
class Predictor:
    """A run made ready to predict on one corpus (model loaded once): what :meth:`Run.predictor` returns.

    Attributes
    ----------
    task:
        The task type (``continuous``, ``segment``, ``clip``).
    predict:
        ``predict(ids) -> Predictions`` for recording ids of the corpus (unlabelled ones on the run's label grid).
    header:
        Extra fields of an evaluation's ``metrics.json`` (e.g. ``seed``, or ``kind`` and ``members``).
    evaluate:
        ``evaluate(ids) -> (Predictions, ceiling or None)`` used by :meth:`Run.evaluate` (default: ``predict``
        and no ceiling).
    """

    task: str
    predict: Callable[[list[str]], Predictions]
    header: dict[str, Any]
    evaluate: Callable[[list[str]], tuple[Predictions, dict[str, float] | None]] | None = None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: Fields of ``run.json`` that code reads, and what each must be when present (``None`` is allowed for all but
#: ``status`` and ``seeds``).
RUN_INFO_FIELDS: dict[str, tuple[str, Any]] = {
    "status": ("a string", lambda v: isinstance(v, str)),
    "kind": ("a string", lambda v: isinstance(v, str)),
    "seeds": ("a list of whole numbers", lambda v: isinstance(v, list) and all(_is_int(x) for x in v)),
    "best_seed": ("a whole number", _is_int),
    "pid": ("a whole number", lambda v: _is_int(v) and v > 0),
    "host": ("a string", lambda v: isinstance(v, str)),
    "pid_start": ("a string", lambda v: isinstance(v, str)),
    "heartbeat_unix": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
}


def check_run_info(info: dict[str, Any], path: str | os.PathLike = "") -> dict[str, Any]:
    """Check the fields of a ``run.json`` that affectflow reads (:data:`RUN_INFO_FIELDS`) when the run is opened,
    so that an edited or damaged file is one clear :class:`RunError` instead of a failure deep inside a verb."""
    bad = []
    for key, (what, ok) in RUN_INFO_FIELDS.items():
        if key not in info:
            continue
        v = info[key]
        if v is None and key not in ("status", "seeds"):
            continue
        if not ok(v):
            bad.append(f"{key} must be {what}, got {v!r}")
    if bad:
        raise RunError(f"Run {str(path)!r} has a damaged run.json: " + "; ".join(bad[:5]) + ".")
    return info


def plain_json(value: Any) -> Any:
    """``value`` with every non-finite float as ``None`` and tuples as lists: plain JSON (``json.dumps(...,
    allow_nan=False)`` accepts it)."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    return value


class RunRecord(dict):
    """The content of a run's ``run.json`` (:attr:`Run.record`), a plain ``dict``.

    It is also what ``run.info`` is, so that code written for earlier versions (``run.info["status"]``,
    ``run.info.get("best_seed")``) keeps working for one release; calling it -- ``run.info()`` -- returns the
    run's description (:meth:`Run.describe`). New code reads ``run.record`` and calls ``run.info()``.
    """

    __slots__ = ("_describe",)

    def __init__(self, data: dict[str, Any], describe: Callable[[], dict[str, Any]]) -> None:
        super().__init__(data)
        self._describe = describe

    def __call__(self) -> dict[str, Any]:
        return self._describe()

    def __reduce__(self) -> Any:  # copies and pickles are plain dicts
        return dict, (dict(self),)


class Run:
    """A run folder (see the module docstring): the one contract of trained, fused, personalised and yardstick
    results.

    ``Run(path)`` reads ``run.json`` and returns an instance of the class registered for its ``kind``
    (:data:`RUN_KINDS`), so ``isinstance(Run(p), Run)`` always holds and code that only reads a run never branches
    on its kind. Subclasses implement :meth:`predictor`; everything else (layout, status, saved predictions,
    evaluation) is shared.
    """

    #: The ``run.json`` ``kind`` this class implements.
    kind: ClassVar[str] = "trained"

    def __new__(cls, path: str | os.PathLike | None = None, *args: Any, **kwargs: Any) -> "Run":
        if cls is Run and path is not None:
            kind = run_kind(path)
            target = RUN_KINDS.get(kind)
            if target is not None:
                module, _, name = target.partition(":")
                sub = getattr(importlib.import_module(module), name)
                if issubclass(sub, Run):
                    cls = sub
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not (self.path / RUN_JSON).is_file():
            raise RunError(
                f"{str(self.path)!r} is not an affectflow run directory (run.json is missing). Run directories are "
                "made by `affectflow train`."
            )
        try:
            record = json.loads((self.path / RUN_JSON).read_text(encoding="utf-8"))
            self.config_dict = yaml.safe_load((self.path / CONFIG_YAML).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
            raise RunError(f"Run {str(self.path)!r} has an unreadable run.json or config.yaml ({type(e).__name__}: "
                           f"{e}).") from None
        if not isinstance(record, dict) or not isinstance(self.config_dict, dict):
            raise RunError(f"Run {str(self.path)!r}: run.json and config.yaml must each hold a mapping.")
        #: ``run.json``'s content (versions, command, corpus, seeds, selected seed, status...).
        self.record = RunRecord(check_run_info(record, self.path), self.describe)

    @property
    def info(self) -> RunRecord:
        """``run.info()``: the run's description (:meth:`describe`), the contract's ``info()``. (``run.info`` is
        also ``run.json``'s mapping, :attr:`record`, as in earlier versions: ``run.info["status"]`` still works.)"""
        return self.record

    # ------------------------------------------------------------------ layout
    @property
    def metrics_path(self) -> Path:
        """``metrics.json``: the scores written when the run was made."""
        return self.path / METRICS_JSON

    @property
    def results_path(self) -> Path:
        """``results.md``: the results table."""
        return self.path / RESULTS_MD

    @property
    def config_path(self) -> Path:
        """``config.yaml``: the resolved configuration."""
        return self.path / CONFIG_YAML

    def predictions_dir(self, partition: str | None = None) -> Path:
        """``predictions/`` or ``predictions/<partition>/`` (the saved predictions of the run's partitions)."""
        base = self.path / PREDICTIONS_DIR
        return base if partition is None else child_path(base, partition, kind="partition")

    @property
    def plots_dir(self) -> Path:
        """``plots/``: learning curves and prediction plots (may not exist)."""
        return plots_folder(self.path)

    def history_files(self) -> list[Path]:
        """Every seed's ``history/seed-<s>.csv`` (per-epoch train loss, devel score, learning rate), sorted."""
        return history_files(self.path)

    def finished_seeds(self) -> list[int]:
        """The seeds with a finished checkpoint (``checkpoints/seed-<s>.pt``), ascending (none for the kinds without
        seeds)."""
        folder = checkpoints_folder(self.path)
        found = []
        for f in (folder.glob("seed-*.pt") if folder.is_dir() else []):
            try:
                found.append(int(f.stem.split("-", 1)[1]))
            except ValueError:
                continue
        return sorted(found)

    def report_files(self) -> list[Path]:
        """The run's description files that exist: ``results.md``, ``config.yaml``, ``metrics.json`` (and a kind's
        own report, e.g. a personalisation's ``report.json``): what a tracker attaches to it."""
        return [f for f in (self.results_path, self.config_path, self.metrics_path) if f.is_file()]

    def new_evaluation_dir(self) -> Path:
        """A new ``evaluations/eval-<time>/`` folder."""
        return new_subdir(self.path / EVALUATIONS_DIR, "eval")

    def new_output_dir(self, prefix: str) -> Path:
        """A new ``<prefix>-<time>/`` folder in the run folder (``predictions``, ``predictions-media``,
        ``export``...): outputs made later from the run, never overwriting one."""
        return new_subdir(self.path, prefix)

    # ------------------------------------------------------------------ the contract
    def default_partitions(self) -> list[str]:
        """The partitions evaluated by default: the config's devel partition and test partitions."""
        d = self.config_dict["data"]
        return [d["devel_partition"], *d["test_partitions"]]

    def open_corpus(self, corpus: str | os.PathLike | Corpus | None = None) -> Corpus:
        """``corpus`` (a path or an open corpus), else the run's training corpus with its partition map."""
        if isinstance(corpus, Corpus):
            return corpus
        if corpus is not None:
            return Corpus(corpus)
        d = self.config_dict["data"]
        return Corpus(d["corpus"], partitions=d.get("partitions"))

    def check_usable(self) -> None:
        """Raise :class:`RunError` when the run cannot predict (e.g. a fused run whose members were moved); called
        before any corpus is opened, so that the message names the real problem."""

    def predictor(self, corpus: Corpus, *, seed: int | None = None, device: str = "auto",
                  progress: bool = False) -> Predictor:
        """The run ready to predict recordings of ``corpus`` (its model(s) loaded once)."""
        raise RunError(f"{str(self.path)!r} (a {self.kind} folder) cannot predict new recordings.")

    def _not_one_model(self) -> RunError:
        return RunError(f"{str(self.path)!r} is a {self.kind} folder, not a trained run: it has no single model "
                        "checkpoint. Export, streaming and serving need a run made by `affectflow train`; "
                        "`evaluate`, `predict`, `submit` and `fuse` take any run folder.")

    def checkpoint(self, seed: int | None = None) -> dict[str, Any]:
        """The checkpoint payload of ``seed`` (default: the selected seed), loaded with ``weights_only=True`` (a
        trained run only: other kinds raise :class:`RunError`)."""
        raise self._not_one_model()

    def model(self, seed: int | None = None) -> Any:
        """The trained model of ``seed`` (default: the selected seed) with its normaliser and data facts, as an
        :class:`affectflow.experiment.TrainedModel` (a trained run only: other kinds raise :class:`RunError`).
        Export, streaming, serving and prediction from media get their model here."""
        raise self._not_one_model()

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Run":
        """Open the run folder at ``path`` as the :class:`Run` of its kind (the same as ``Run(path)``)."""
        run = Run(path)
        if not isinstance(run, cls):
            raise RunError(f"{str(path)!r} is a {run.kind} folder, not a {cls.kind} run.")
        return run

    def predict(self, corpus: str | os.PathLike | Corpus | None = None, ids: list[str] | None = None, *,
                partitions: list[str] | None = None, seed: int | None = None, device: str = "auto",
                progress: bool = False) -> Predictions:
        """Predictions of recordings ``ids`` (or of ``partitions``; neither: every recording) of ``corpus``
        (default: the run's training corpus). Recordings without labels are predicted on the run's label grid."""
        self.check_usable()
        c = self.open_corpus(corpus)
        if ids:
            for r in ids:
                c.recording(r)
            ids = list(ids)
        else:
            ids = c.recording_ids(partitions)
        return self.predictor(c, seed=seed, device=device, progress=progress).predict(ids)

    def evaluate(self, *, partitions: list[str] | None = None, corpus: str | os.PathLike | Corpus | None = None,
                 seed: int | None = None, device: str = "auto", progress: bool = False) -> tuple[Path, dict[str, Any]]:
        """Predict and score ``partitions`` (default :meth:`default_partitions`); write a new
        ``evaluations/eval-<time>/`` folder (``metrics.json``, ``results.md``, ``predictions/<partition>/``) and
        return it with the metrics."""
        self.check_usable()
        c = self.open_corpus(corpus)
        pred = self.predictor(c, seed=seed, device=device, progress=progress)
        parts = partitions or self.default_partitions()
        out_dir = self.new_evaluation_dir()
        metrics: dict[str, Any] = {"run": str(self.path), **pred.header, "corpus": str(c.path), "task": pred.task,
                                   "partitions": {}}
        for part in parts:
            ids = c.recording_ids([part])
            if pred.evaluate is not None:
                preds, ceiling = pred.evaluate(ids)
            else:
                preds, ceiling = pred.predict(ids), None
            metrics["partitions"][part] = score(preds)
            if ceiling:
                metrics.setdefault("ceiling", {})[part] = ceiling
            preds.save(out_dir / PREDICTIONS_DIR / part)
        write_evaluation(out_dir, metrics)
        return out_dir, metrics

    def saved_predictions(self, partition: str) -> Predictions:
        """The predictions the run saved for ``partition`` when it was made (``predictions/<partition>/``)."""
        folder = self.path / PREDICTIONS_DIR / partition
        if not folder.is_dir():
            have = sorted(p.name for p in self.predictions_dir().glob("*") if p.is_dir())
            raise RunError(f"Run {str(self.path)!r} has no saved predictions for partition {partition!r}; it has "
                           f"{have}. Fuse on partitions every run was evaluated on (its devel and test partitions).")
        return Predictions.load(folder)

    @property
    def status(self) -> str:
        """Effective status (:func:`run_status`): a killed run shows as ``interrupted``, not ``running``."""
        return run_status(self.record)

    @property
    def best_seed(self) -> int:
        """The seed selected on devel."""
        if self.record.get("best_seed") is None:
            status = self.status
            if status == "interrupted":
                raise RunError(
                    f"Run {self.path} was interrupted (run.json says 'running' but its process "
                    f"{self.record.get('pid', '?')} on {self.record.get('host', '?')} is gone) and has no selected seed. "
                    f"Continue it with `affectflow train --resume {self.path}`."
                )
            raise RunError(f"Run {self.path} has no selected seed: its training did not finish (status {status!r}).")
        return int(self.record["best_seed"])

    def summary(self) -> str:
        """A short description: status, seeds finished, best seed, corpus."""
        seeds = [int(s) for s in self.record.get("seeds", [])]
        done = [s for s in seeds if checkpoint_file(self.path, s).is_file()]
        lines = [f"Run {self.path}", f"  status: {self.status}"]
        if self.status == "interrupted":
            lines.append(f"  (recorded as 'running' by process {self.record.get('pid', '?')} on "
                         f"{self.record.get('host', '?')}, which is gone; continue with `affectflow train --resume "
                         f"{self.path}`)")
        lines.append(f"  seeds: {seeds} (finished: {done})")
        partial = sorted(int(p.stem.split("-", 1)[1]) for p in resume_folder(self.path).glob("seed-*.pt")) \
            if resume_folder(self.path).is_dir() else []
        for s in partial:
            try:
                ep = load_epoch_state(epoch_state_path(self.path, s))["epoch"]
                lines.append(f"  seed {s}: epoch state after epoch {ep}")
            except RunError:
                lines.append(f"  seed {s}: unreadable epoch state")
        if self.record.get("best_seed") is not None:
            lines.append(f"  best seed: {self.record['best_seed']}")
        model = (self.config_dict.get("model") or {}).get("type")
        lines.append(f"  model: {model}; corpus: {self.record.get('corpus')}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ info()
    def describe(self) -> dict[str, Any]:
        """The run as plain JSON, built from what its folder stores: what ``run.info()`` and ``affectflow info RUN
        --json`` give. Keys:

        ``kind`` (``trained``, ``fusion``, ``personalisation``, ``yardstick``), ``id`` (the folder name), ``path``,
        ``status`` (:attr:`status`), ``created`` / ``finished`` (ISO 8601 local time), ``affectflow`` (the version
        that made it), ``command``, ``corpus``, ``task`` (``continuous``, ``segment``, ``clip``), ``targets``,
        ``features`` (feature sets, in model input order), ``label_set``, ``model`` (``type``; ``parameters``: the
        parameter count of the model that predicts, ``None`` where the kind has none of its own; kind-specific
        facts: :meth:`model_info`), ``seeds`` and ``selected_seed`` (``None`` for kinds without seeds),
        ``selection`` (how the seed or the strengths were chosen, ``metrics.json``'s ``selection``), ``scores``
        (``partition → target → metric → value`` of the selected model on the partitions it was evaluated on when
        it was made -- devel and test --, ``None`` before ``metrics.json`` is written) and ``sources`` (the runs it
        was made from, :meth:`sources`). Non-finite numbers are ``None``; nothing is recomputed and no corpus is
        opened, so it works on a run whose corpus or members have moved.
        """
        rec, cfg = self.record, self.config_dict
        data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
        try:
            metrics = self.metrics()
        except (OSError, UnicodeDecodeError, ValueError):
            metrics = {}
        metrics = metrics if isinstance(metrics, dict) else {}
        seeds = rec.get("seeds")
        return plain_json({
            "kind": self.kind,
            "id": self.path.name,
            "path": str(self.path.resolve()),
            "status": self.status,
            "created": rec.get("created"),
            "finished": rec.get("finished"),
            "affectflow": rec.get("affectflow"),
            "command": rec.get("command"),
            "corpus": rec.get("corpus") or data.get("corpus"),
            "task": metrics.get("task") or data.get("task", "continuous"),
            "targets": list(data.get("targets") or []),
            "features": list(data.get("features") or []),
            "label_set": data.get("label_set"),
            "model": self.model_info(),
            "seeds": [int(s) for s in seeds] if isinstance(seeds, list) else None,
            "selected_seed": rec.get("best_seed"),
            "selection": metrics.get("selection"),
            "scores": metrics.get("best"),
            "sources": self.sources(),
        })

    def model_info(self) -> dict[str, Any]:
        """``info()["model"]``: the model's ``type`` (``config.yaml``) and ``parameters`` (``None`` here; the kinds
        that hold a model count it)."""
        return {"type": (self.config_dict.get("model") or {}).get("type"), "parameters": None}

    def sources(self) -> list[dict[str, Any]]:
        """``info()["sources"]``: the runs this one was made from, ``[{"role", "path", "kind", "exists"}]`` (a late
        fusion's unimodal runs here, ``role: "late fusion member"``; fused and personalised runs add theirs)."""
        late = self.record.get("late_fusion")
        members = late.get("members") if isinstance(late, dict) else None
        return source_list("late fusion member", members if isinstance(members, list) else [])

    def checkpoint_path(self, seed: int | None = None) -> Path:
        """Checkpoint of ``seed`` (default: the best seed)."""
        s = self.best_seed if seed is None else seed
        p = checkpoint_file(self.path, s)
        if not p.is_file():
            have = sorted(x.stem for x in checkpoints_folder(self.path).glob("seed-*.pt"))
            raise RunError(f"Run {self.path} has no checkpoint for seed {s}; it has {have}.")
        return p

    def metrics(self) -> dict[str, Any]:
        """The metrics.json written when the run was made."""
        return json.loads(self.metrics_path.read_text())

    def results_text(self) -> str:
        """The results table (``results.md``)."""
        return self.results_path.read_text()

    # ------------------------------------------------------------------ writing a run folder (save)
    @staticmethod
    def write_config(run_dir: Path, config: dict[str, Any]) -> None:
        """Write ``config.yaml`` (a config dict in YAML shape) atomically."""
        atomic_write(Path(run_dir) / CONFIG_YAML, lambda p: p.write_text(yaml.safe_dump(config, sort_keys=False)))

    @staticmethod
    def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
        """Write ``metrics.json`` atomically."""
        write_json(Path(run_dir) / METRICS_JSON, metrics)

    @staticmethod
    def write_results(run_dir: Path, text: str) -> None:
        """Write ``results.md`` (a newline is added) atomically."""
        atomic_write(Path(run_dir) / RESULTS_MD, lambda p: p.write_text(text + "\n"))

    @staticmethod
    def save_predictions(run_dir: Path, partition: str, preds: Predictions) -> Path:
        """Save ``preds`` as the run's predictions of ``partition`` (``predictions/<partition>/``)."""
        return preds.save(Path(run_dir) / PREDICTIONS_DIR / partition)


def info_text(info: dict[str, Any]) -> str:
    """The lines of a run's description (:meth:`Run.describe`) that :meth:`Run.summary` does not show: kind,
    creation, task, targets, features, model and parameter count, the selected model's scores (its main metric per
    partition and target), the source runs."""
    model = info.get("model") or {}
    n = model.get("parameters")
    lines = [f"  kind: {info.get('kind')}; created {info.get('created')} by affectflow {info.get('affectflow')}",
             f"  task: {info.get('task')}; targets: {info.get('targets')}; features: {info.get('features')}",
             f"  model size: {'-' if n is None else f'{n:,} parameters'}"
             + (f" (seed {model['seed']})" if model.get("seed") is not None else "")
             + (f"; subjects with own weights: {len(model['subjects'])}" if "subjects" in model else "")]
    for part, targets in (info.get("scores") or {}).items():
        cells = []
        for t, mets in (targets or {}).items():
            name = next((m for m in ("ccc", "macro_f1", "weighted_f1", "mse") if m in mets),
                        next((m for m in mets if m != "n"), None))
            if name is not None:
                v = mets[name]
                cells.append(f"{t} {name} {'-' if v is None else f'{v:.4f}'}")
        lines.append(f"  {part}: " + ", ".join(cells))
    for src in info.get("sources") or []:
        lines.append(f"  {src['role']}: {src['path']}" + ("" if src["exists"] else " (missing)"))
    return "\n".join(lines)


def source_list(role: str, paths: list[Any]) -> list[dict[str, Any]]:
    """``[{"role", "path", "kind", "exists"}]`` of the run folders ``paths`` (``kind`` ``None`` where a folder is
    gone): the ``sources`` of :meth:`Run.describe`."""
    out = []
    for p in paths:
        there = is_run_folder(p)
        out.append({"role": role, "path": str(p), "kind": run_kind(p) if there else None, "exists": there})
    return out


def parameter_count(model_config: dict[str, Any]) -> int | None:
    """The number of parameters of the model a checkpoint's ``model`` config builds (``None`` when it cannot be
    built, e.g. a damaged config)."""
    try:
        module = build_model(model_config)
    except (AffectflowError, KeyError, TypeError, ValueError, RuntimeError):
        return None
    return int(sum(p.numel() for p in module.parameters()))


def open_run(path: str | os.PathLike | Run) -> Run:
    """``path`` as the :class:`Run` of its kind (a :class:`Run` is returned as it is)."""
    return path if isinstance(path, Run) else Run(path)


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    """(Re)write run.json atomically."""
    write_json(run_dir / RUN_JSON, info)


def write_evaluation(out_dir: Path, metrics: dict[str, Any]) -> None:
    """Write an evaluation's ``metrics.json`` and ``results.md`` (one row per partition, target and metric)."""
    Run.write_metrics(out_dir, metrics)
    lines = ["| partition | target | metric | value |", "|---|---|---|---|"]
    for part, tg in metrics["partitions"].items():
        for t, m in tg.items():
            for k, v in m.items():
                if k != "n":
                    lines.append(f"| {part} | {t} | {k} | {v:.4f} |")
    Run.write_results(out_dir, "\n".join(lines))
