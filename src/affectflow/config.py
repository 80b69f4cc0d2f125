"""Experiment configuration: YAML files plus ``key.path=value`` overrides, validated before any data is read.

A config has four sections (every key has a default, see ``configs/default.yaml``)::

    data:      corpus, task, features, targets, target_types, label_set, normalize, window {size, hop}, eval_window {size, hop}, ...
    model:     type (a name in the model registry) + that model's hyperparameters
    training:  loss, lr, weight_decay, batch_size, epochs, patience, lr_patience, lr_factor, min_lr, grad_clip,
               seeds, device, num_workers, num_threads, multitask, stack_seeds, seed_workers
    output:    runs_dir, name
    execution: backend, address, workers, threads, cpus, gpus, memory_gb, resources, max_retries  (where the jobs
               of procedures run: sweeps, CV folds, tuning trials; see affectflow.execution)
    tracking:  mlflow  (an MLflow tracking URI, null = off; see affectflow.tracking)

Loading merges, in order: the packaged defaults, the YAML file, then command-line overrides such as
``training.lr=5e-4`` or ``data.features=[egemaps,face]`` (values parsed as YAML). Unknown keys, wrong types and
unknown model names fail with a :class:`~affectflow.errors.ConfigError` that lists the valid choices. Relative
paths are taken relative to the current directory.

The config names what the layers below it define (model types, losses, task types, multitask forms, normalisation
modes, executor backends), so it sits above them (README, Layout) and :meth:`ExperimentConfig.validate` checks the
names against their registries; the training loop's own section lives in :mod:`affectflow.training.settings`
(re-exported here).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from affectflow.errors import ConfigError
from affectflow.execution import EXECUTORS
from affectflow.fsutil import SAFE_NAME, check_name, check_names
from affectflow.training.settings import SCHEDULES, TrainingConfig, UnfreezingConfig  # noqa: F401 - re-exported


@dataclass(kw_only=True)
class WindowConfig:
    """Window size and hop in label steps; ``size: null`` means whole recordings."""

    size: int | None = 200
    hop: int | None = 100


@dataclass(kw_only=True)
class DataConfig:
    """Which data to train on and how to present it."""

    corpus: str | None = ""
    task: str = "continuous"
    features: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=lambda: ["arousal", "valence"])
    target_types: dict[str, str] = field(default_factory=dict)
    label_set: str = "continuous"
    normalize: str = "global"
    pca: dict[str, Any] = field(default_factory=dict)
    scale_targets: bool = False
    window: WindowConfig = field(default_factory=WindowConfig)
    eval_window: WindowConfig = field(default_factory=lambda: WindowConfig(size=None, hop=None))
    train_partitions: list[str] = field(default_factory=lambda: ["train"])
    devel_partition: str = "devel"
    test_partitions: list[str] = field(default_factory=lambda: ["test"])
    partitions: str | None = None
    cache_dir: str | None = None


@dataclass(kw_only=True)
class ModelConfig:
    """``type`` names a registered model; ``params`` are its hyperparameters (written flat in YAML)."""

    type: str = "gru"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class OutputConfig:
    """Where runs go. A run directory is ``<runs_dir>/<name>-<timestamp>`` and is never overwritten."""

    runs_dir: str = "runs"
    name: str | None = None
    plots: bool = True


@dataclass(kw_only=True)
class ExecutionConfig:
    """Where the parallel jobs of a procedure run (command-line ``--backend/--address/--workers/--threads`` win).

    ``backend``: ``local`` (process pool), ``serial`` or ``ray`` (null = ``local``); ``address`` (ray): null = a
    private local cluster, ``auto`` = the running cluster, ``ray://host:10001`` = a remote one; per task ``cpus``
    (null = ``threads``), ``gpus`` (a fraction shares a GPU), ``memory_gb`` and custom ``resources``; ``max_retries``:
    how often Ray re-runs a task whose worker died. Not part of a sweep cell's identity.
    """

    backend: str | None = None
    address: str | None = None
    workers: int | None = None
    threads: int | None = None
    cpus: float | None = None
    gpus: float = 0.0
    memory_gb: float | None = None
    resources: dict[str, float] = field(default_factory=dict)
    max_retries: int = 3


@dataclass(kw_only=True)
class TrackingConfig:
    """Optional experiment tracking: ``mlflow`` is a tracking URI (e.g. ``sqlite:///runs/mlflow.db``); null = off."""

    mlflow: str | None = None


@dataclass(kw_only=True)
class ExperimentConfig:
    """A whole training experiment."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in the YAML shape (model params flattened next to ``type``)."""
        d = dataclasses.asdict(self)
        d["model"] = {"type": self.model.type, **self.model.params}
        return d

    def validate(self) -> "ExperimentConfig":
        """Check cross-field constraints, the names against their registries (models, losses, task types, multitask
        forms, normalisation modes, executors) and the model's hyperparameters; return self."""
        # lazy: these pull torch, which `affectflow extract` (it loads this module for --set) does not need
        from affectflow.data.normalize import MODES, check_pca
        from affectflow.data.windows import check_window
        from affectflow.models import MODELS
        from affectflow.tasks import TASKS
        from affectflow.training.losses import LOSSES
        from affectflow.training.multitask import FORMS

        d, t = self.data, self.training
        if not d.corpus:
            raise ConfigError("`data.corpus` is not set: give the corpus folder (e.g. --corpus path or data.corpus=path).")
        if not d.features:
            raise ConfigError("`data.features` is empty: list one feature set, or several for early fusion.")
        if not d.targets:
            raise ConfigError("`data.targets` is empty: list the label dimensions to predict, e.g. [arousal, valence].")
        if len(set(d.features)) != len(d.features):
            raise ConfigError(f"`data.features` lists a feature set twice: {d.features}.")
        check_names("feature set name", d.features, where="`data.features`", error=ConfigError)
        check_names("target", d.targets, where="`data.targets`", error=ConfigError)
        check_name("label set name (`data.label_set`)", d.label_set, error=ConfigError)
        if d.normalize not in MODES:
            raise ConfigError(f"`data.normalize` must be one of {list(MODES)}, got {d.normalize!r}.")
        check_pca(d.pca, d.features)
        check_window(d.window.size, d.window.hop)
        check_window(d.eval_window.size, d.eval_window.hop)
        MODELS.check_params(self.model.type, self.model.params)
        if d.task not in TASKS:
            raise ConfigError(f"`data.task` must be one of {list(TASKS)}, got {d.task!r}.")
        if t.multitask is not None and t.multitask not in FORMS:
            raise ConfigError(f"`training.multitask` must be null or one of {list(FORMS)}, got {t.multitask!r}.")
        if t.loss not in LOSSES:
            raise ConfigError(f"`training.loss` must be one of {sorted(LOSSES)}, got {t.loss!r}.")
        if t.optimizer != "adam":
            raise ConfigError(f"`training.optimizer` must be 'adam', got {t.optimizer!r}.")
        if t.schedule is not None and t.schedule not in SCHEDULES:
            raise ConfigError(f"`training.schedule` must be null or one of {list(SCHEDULES)}, got {t.schedule!r}.")
        t.unfreezing.validate()
        if t.num_threads is not None and t.num_threads < 1:
            raise ConfigError(f"`training.num_threads` must be >= 1 or null, got {t.num_threads!r}.")
        if not t.seeds:
            raise ConfigError("`training.seeds` is empty: give at least one seed.")
        dup = sorted({s for s in t.seeds if t.seeds.count(s) > 1})
        if dup:
            raise ConfigError(
                f"`training.seeds` lists {dup} more than once ({t.seeds}); each seed trains one model and has one "
                "checkpoint, so seeds must be distinct."
            )
        if self.output.name is not None:
            if not SAFE_NAME.match(self.output.name):
                raise ConfigError(
                    f"`output.name` {self.output.name!r} is not a safe folder name: use letters, digits and '_', '.', "
                    "'+', '-', starting with a letter or digit (the run folder is <output.runs_dir>/<name>-<time>)."
                )
        x = self.execution
        if x.backend is not None:
            if x.backend not in EXECUTORS:
                raise ConfigError(f"`execution.backend` must be one of {sorted(EXECUTORS)} or null, got {x.backend!r}.")
        for name, v in [("workers", x.workers), ("threads", x.threads)]:
            if v is not None and v < 1:
                raise ConfigError(f"`execution.{name}` must be >= 1 or null, got {v!r}.")
        if x.max_retries < 0:
            raise ConfigError(f"`execution.max_retries` must be >= 0, got {x.max_retries!r}.")
        if x.gpus < 0 or (x.cpus is not None and x.cpus < 0) or (x.memory_gb is not None and x.memory_gb <= 0):
            raise ConfigError(f"`execution.cpus`/`gpus` must be >= 0 and `memory_gb` > 0 or null; got cpus={x.cpus!r}, "
                              f"gpus={x.gpus!r}, memory_gb={x.memory_gb!r}.")
        for name, v in [("lr", t.lr), ("batch_size", t.batch_size), ("epochs", t.epochs)]:
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"`training.{name}` must be a positive finite number, got {v!r}.")
        for name, v in [("weight_decay", t.weight_decay), ("min_lr", t.min_lr)]:
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"`training.{name}` must be >= 0 and finite, got {v!r}.")
        if t.grad_clip is not None and not (t.grad_clip >= 0 and math.isfinite(t.grad_clip)):
            raise ConfigError(f"`training.grad_clip` must be >= 0 or null, got {t.grad_clip!r}.")
        if t.patience < 1 or t.lr_patience < 0 or not 0 < t.lr_factor < 1 or t.num_workers < 0:
            raise ConfigError(
                "`training.patience` must be >= 1, `lr_patience` >= 0, `lr_factor` in (0, 1), `num_workers` >= 0; got "
                f"{t.patience}, {t.lr_patience}, {t.lr_factor}, {t.num_workers}."
            )
        if t.stack_seeds not in ("auto", True, False):
            raise ConfigError(f"`training.stack_seeds` must be auto, true or false; got {t.stack_seeds!r}.")
        w = t.seed_workers
        if w != "auto" and (not isinstance(w, int) or isinstance(w, bool) or w < 1):
            raise ConfigError(f"`training.seed_workers` must be an integer >= 1 or auto, got {w!r}.")
        if w != "auto" and w > 1 and t.stack_seeds is True:
            raise ConfigError("`training.seed_workers` > 1 and `training.stack_seeds: true` exclude each other: "
                              "stacking trains all seeds as one model in one process.")
        return self


# ---------------------------------------------------------------------------- dict <-> dataclass
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"`{path}` has an invalid value {value!r}.")
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"`{path}` must be a list, got {value!r}.")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"`{path}` must be a mapping, got {value!r}.")
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads "5e-4" (no dot) as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"`{path}` must be a number, got {value!r}.") from None
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"`{path}` must be true or false, got {value!r}.")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"`{path}` must be an integer, got {value!r}.")
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"`{path}` must be a string, got {value!r}.")
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ConfigError(f"`{path}` must be of type {_type_name(tp)}, got {value!r}.")
    return value


def _from_dict(cls: type, data: Any, path: str = "") -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"`{path or 'config'}` must be a mapping, got {data!r}.")
    if cls is ModelConfig:
        data = dict(data)
        mtype = data.pop("type", "gru")
        if not isinstance(mtype, str):
            raise ConfigError(f"`model.type` must be a model name, got {mtype!r}.")
        params = data.pop("params", {}) or {}
        return ModelConfig(type=mtype, params={**params, **data})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"`{path}`" if path else "the config"
        raise ConfigError(f"Unknown key(s) {unknown} in {where}; valid keys: {names}.")
    kwargs = {k: _coerce(v, hints[k], f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def merge_config(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "model":
            out[k] = merge_config(out[k], v)
        elif k == "model" and isinstance(v, dict) and isinstance(out.get(k), dict):
            # a different model type drops the previous type's hyperparameters
            out[k] = dict(v) if v.get("type", out[k].get("type")) != out[k].get("type") else {**out[k], **v}
        else:
            out[k] = copy.deepcopy(v)
    return out


_merge = merge_config  # old name, kept for callers of earlier versions


def nested_override(key: str, value: Any) -> dict[str, Any]:
    """``("a.b.c", v)`` → ``{"a": {"b": {"c": v}}}`` (``v`` deep-copied): one override in config shape."""
    out: dict[str, Any] = {}
    cur = out
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = copy.deepcopy(value)
    return out


def split_override(text: str) -> tuple[str, Any]:
    """Split one ``KEY=VALUE`` override into its key and its value parsed as YAML.

    This is the one meaning of ``--set`` (and of the override lists of configs, sweeps and late fusion) for every
    command: ``train``, ``extract``, ``serve`` and the procedures. The key is everything before the first ``=``
    (stripped; dotted paths such as ``training.lr`` are split by :func:`parse_override`); the value is YAML, so
    ``3`` is an int, ``0.5`` a float, ``[1, 2]`` a list, ``true`` a bool, ``"3"`` a string, and ``null`` or ``~``
    is ``None``. **An empty value** (``KEY=`` or ``KEY=  ``) **is** ``None``, as an empty value in a YAML file is:
    it unsets the key (``data.corpus=`` leaves the corpus unset). Give ``KEY=""`` for an empty string.

    Raises
    ------
    ConfigError
        No ``=``, an empty key or an empty part of a dotted key, or a value that is not valid YAML.
    """
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"Override {text!r} is not of the form key.path=value (e.g. training.lr=0.0005).")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p.strip() for p in key.split(".")):
        raise ConfigError(f"Override {text!r} has an empty key part; expected key.path=value (e.g. training.lr=0.0005).")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"Cannot parse the value of override {text!r}: it is not valid YAML ({e}).") from e
    return key, value


def parse_override(text: str) -> dict[str, Any]:
    """``"a.b.c=value"`` → ``{"a": {"b": {"c": value}}}``, the value parsed as in :func:`split_override`."""
    key, value = split_override(text)
    return nested_override(key, value)


def default_config_dict() -> dict[str, Any]:
    """The packaged ``configs/default.yaml`` as a dict."""
    text = resources.files("affectflow.configs").joinpath("default.yaml").read_text()
    return yaml.safe_load(text)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Config file {str(p)!r} does not exist.")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"Config file {str(p)!r} is not UTF-8 text ({e}); save it as UTF-8 YAML.") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file {str(p)!r} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {str(p)!r} must contain a mapping at the top level, got {type(data).__name__}.")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, base: dict | None = None) -> ExperimentConfig:
    """Build a validated :class:`ExperimentConfig` from the defaults, an optional YAML file and overrides."""
    merged = default_config_dict() if base is None else copy.deepcopy(base)
    if path is not None:
        merged = merge_config(merged, read_yaml(path))
    for o in overrides or []:
        merged = merge_config(merged, parse_override(o))
    return config_from_dict(merged).validate()


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Strictly convert a dict (YAML shape) to :class:`ExperimentConfig` (no cross-field validation)."""
    return _from_dict(ExperimentConfig, data)


def preset_dict(name: str) -> dict[str, Any]:
    """A packaged config preset (``affectflow/configs/presets/<name>.yaml``) as a dict."""
    names = sorted(p.name[:-5] for p in resources.files("affectflow.configs").joinpath("presets").iterdir()
                   if p.name.endswith(".yaml"))
    if name not in names:
        raise ConfigError(f"Unknown preset {name!r}; the packaged presets are {names}.")
    return yaml.safe_load(resources.files("affectflow.configs").joinpath("presets", f"{name}.yaml").read_text()) or {}
