"""The linear yardstick: ridge / logistic regression on a run's features, scored like a run.

Every results table of the paper recipes has a row of this simple model next to the deep ones, so that a deep model
that loses to a linear map of the same features is seen (and explained) rather than hidden.

Protocol (same corpus, partitions, feature sets, targets, task type and normalisation as the config ``cfg``):

1. **Normalisation**: :class:`~affectflow.data.normalize.Normalizer` with ``data.normalize`` (and ``data.pca``),
   fitted on the train partitions only (as a run's); missing values become 0 (the train mean).
2. **Features** ``z`` per sample (feature sets concatenated in ``data.features`` order, ``D`` columns in all):

   - ``continuous``: per step ``t`` of a recording, ``z_t = [x_t, mean(x_{t-c+1} .. x_t)]`` (``2D`` columns): the
     current step and the mean over a short **causal past context** of ``c`` steps (``context``, default 10 label
     steps; fewer at the start of a recording). The past context lets a linear map bridge the annotators' reaction
     delay, as the recurrent models do. ``context=1`` uses ``x_t`` alone.
   - ``segment``: the mean of the segment's normalised steps (those with any value of a set; 0 if none);
   - ``clip``: the task's own per-clip mean pooling (:class:`~affectflow.tasks.ClipTask`).
3. **Models**, one per target, fitted on the train partitions' labelled samples only (scikit-learn):
   regression targets: :class:`sklearn.linear_model.Ridge` ``min ||y - Zw - b||² + α||w||²``; classification targets:
   multinomial :class:`sklearn.linear_model.LogisticRegression` with inverse strength ``C``.
4. **Selection on devel**: for each target the ``α`` (or ``C``) of the grid with the best devel score of that target
   alone, scored with the task's own scoring (:func:`affectflow.predictions.score` /
   :meth:`~affectflow.tasks.Task.selection_score`: pooled CCC; macro F1 or CCC for segments; weighted F1 or
   ``−0.25·MSE`` for clips). Ties go to the stronger regularisation. Devel scores are therefore optimistic, as a
   run's are.

Output: a run-like folder (``kind: yardstick``) that ``affectflow evaluate``, ``predict``, ``fuse`` and tables read
like a trained run::

    run.json          {"kind": "yardstick", "status": "finished", ...}
    config.yaml       the config with ``model: {type: yardstick, context: c}``
    checkpoints/linear.pt   per target the weights ``W`` (outputs, F), bias ``b`` (outputs,), the chosen strength,
                      plus the normaliser state (tensors and plain values; torch.load(..., weights_only=True))
    metrics.json      ``best``: scores per partition and target (the layout of a run's), ``selection``: the grid
    predictions/<partition>/   :class:`~affectflow.predictions.Predictions` of every partition
    results.md        the scores and the chosen strengths

>>> from affectflow.config import load_config
>>> from affectflow.procedures.yardstick import run_yardstick
>>> out, metrics = run_yardstick(load_config(None, ["data.corpus=corpus", "data.features=[acoustic]"]))  # doctest: +SKIP
>>> metrics["best"]["test"]["arousal"]["ccc"]                                                           # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from affectflow.corpus.corpus import Corpus
from affectflow.data.normalize import Normalizer, check_pca
from affectflow.errors import ConfigError, RunError
from affectflow.experiment import training_label_rate
from affectflow.fsutil import out_folder
from affectflow.layout import is_run_folder
from affectflow.predictions import Predictions
from affectflow.runs import Predictor, Run, checkpoints_folder, environment_info, new_run_dir, run_kind, write_run_info
from affectflow.scoring import score
from affectflow.tasks import make_task, specs_from_state, target_specs

YARDSTICK_KIND = "yardstick"
#: Ridge strengths α tried (strongest first, so ties go to the stronger regularisation).
RIDGE_ALPHAS = (1e5, 1e4, 1e3, 1e2, 10.0, 1.0, 0.1, 0.01)
#: Logistic-regression inverse strengths C tried (strongest regularisation first).
LOGISTIC_CS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
DEFAULT_CONTEXT = 10
CHECKPOINT = "linear.pt"


# ---------------------------------------------------------------------------- features
def past_context(x: np.ndarray, context: int) -> np.ndarray:
    """``[x_t, mean(x_{t-c+1} .. x_t)]`` for every step of ``x`` (``(T, D)`` → ``(T, 2D)``; ``context <= 1``: ``x``).

    The mean covers the ``min(t + 1, c)`` steps available at step ``t`` (causal: no future step is used).
    """
    if context <= 1:
        return x
    cs = np.cumsum(np.concatenate([np.zeros((1, x.shape[1])), x.astype(np.float64)]), axis=0)
    t = np.arange(1, len(x) + 1)
    lo = np.maximum(t - context, 0)
    mean = (cs[t] - cs[lo]) / (t - lo)[:, None]
    return np.concatenate([x, mean.astype(np.float32)], axis=1)


def continuous_features(store, normalizer: Normalizer, context: int) -> list[np.ndarray]:
    """Per recording of ``store``: the ``(T, F)`` float32 yardstick features (see the module docstring)."""
    out = []
    for i, rec in enumerate(store.records):
        raw = store.read(i)
        parts = [normalizer.transform(n, raw[n], rec.subject)[0] for n in store.feature_sets]
        x = np.concatenate(parts, axis=1) if parts else np.zeros((rec.length, 0), np.float32)
        out.append(past_context(x, context))
    return out


def readout_features(ds) -> np.ndarray:
    """``(N, D)``: per segment / clip sample of a :class:`~affectflow.tasks.ReadoutDataset`, the mean of its
    normalised steps per set (0 where a set has no value), sets concatenated."""
    rows = []
    for k in range(len(ds)):
        item = ds[k]
        parts = []
        for name, x in item["x"].items():
            m = item["feature_mask"][name]
            parts.append(x[m].mean(0) if m.any() else np.zeros(x.shape[1], np.float32))
        rows.append(np.concatenate(parts))
    width = sum(ds.normalizer.output_dims(ds.store.dims).values())
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), np.float32)


# ---------------------------------------------------------------------------- the linear model
class LinearModel:
    """Per target ``outputs = Z W_kᵀ + b_k`` (one column per regression target, one logit per class).

    Parameters
    ----------
    specs:
        The targets (:class:`~affectflow.tasks.TargetSpec`), in output order.
    params:
        Target → ``{"W": (n_outputs, F), "b": (n_outputs,), "strength": α or C, "param": "alpha" | "C"}``.
    """

    def __init__(self, specs, params: dict[str, dict[str, Any]]) -> None:
        self.specs, self.params = specs, params
        self.label_rate_hz: float | None = None  # continuous: the grid of unlabelled recordings

    def outputs(self, z: np.ndarray) -> np.ndarray:
        """``(N, Σ outputs)`` float32 outputs for features ``z`` ``(N, F)``."""
        cols = [z.astype(np.float64) @ np.asarray(self.params[s.name]["W"]).T + np.asarray(self.params[s.name]["b"])
                for s in self.specs]
        return np.concatenate(cols, axis=1).astype(np.float32) if cols else np.zeros((len(z), 0), np.float32)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (loads with ``weights_only=True``)."""
        return {t: {"W": torch.from_numpy(np.asarray(p["W"], np.float64)), "b": torch.from_numpy(np.asarray(p["b"], np.float64)),
                    "strength": float(p["strength"]), "param": p["param"]} for t, p in self.params.items()}

    @classmethod
    def from_state_dict(cls, specs, state: dict[str, Any]) -> "LinearModel":
        """Inverse of :meth:`state_dict`."""
        return cls(specs, {t: {"W": p["W"].numpy(), "b": p["b"].numpy(), "strength": p["strength"],
                               "param": p["param"]} for t, p in state.items()})


def _fit_one(spec, z: np.ndarray, y: np.ndarray, strength: float, seed: int) -> dict[str, Any]:
    """Fit one target's model on ``z`` ``(N, F)`` and labels ``y`` ``(N,)`` (class indices or values)."""
    from sklearn.linear_model import LogisticRegression, Ridge  # ~1 s to import: only when a yardstick is fitted

    if spec.kind == "regression":
        m = Ridge(alpha=strength).fit(z, y)
        return {"W": np.asarray(m.coef_, np.float64).reshape(1, -1), "b": np.atleast_1d(float(m.intercept_)),
                "strength": strength, "param": "alpha"}
    yi = y.astype(int)
    present = np.unique(yi)
    n_cls, f = spec.n_outputs, z.shape[1]
    w, b = np.zeros((n_cls, f)), np.full(n_cls, -50.0)  # classes absent from train get (practically) zero posterior
    if len(present) == 1:
        b[present[0]] = 0.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence notes at the weakest strengths
            m = LogisticRegression(C=strength, max_iter=500, random_state=seed).fit(z, yi)
        coef, icpt = np.asarray(m.coef_), np.asarray(m.intercept_)
        if len(present) == 2:  # sklearn's binary form: one logit for the second class
            coef, icpt = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], icpt])
        w[m.classes_], b[m.classes_] = coef, icpt
    return {"W": w, "b": b, "strength": strength, "param": "C"}


# ---------------------------------------------------------------------------- samples of a partition
class _Samples:
    """Features, labels and a predictions factory of one partition for the task type."""

    def __init__(self, task, store, normalizer: Normalizer, context: int) -> None:
        self.task, self.store = task, store
        if task.name == "continuous":
            self.z_rec = continuous_features(store, normalizer, context)
            self.z = np.concatenate(self.z_rec) if self.z_rec else np.zeros((0, 0), np.float32)
            ys = [r.y if r.y is not None else np.full((r.length, len(task.specs)), np.nan, np.float32)
                  for r in store.records]
            self.y = np.concatenate(ys) if ys else np.zeros((0, len(task.specs)), np.float32)
        else:
            self.ds = task.readout(store, normalizer)
            self.z = readout_features(self.ds)
            self.y = self.ds.labels()

    def predictions(self, outputs: np.ndarray, specs=None):
        """:class:`~affectflow.predictions.Predictions` of ``outputs`` (rows = this partition's samples)."""
        specs = specs or self.task.specs
        recs = self.store.records
        if self.task.name == "continuous":
            k = [self.task.specs.index(s) for s in specs]
            bounds = np.cumsum([0, *[r.length for r in recs]])
            return Predictions("continuous", list(specs), [r.id for r in recs], times=[r.times for r in recs],
                               values=[outputs[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
                               labels=[None if r.y is None else r.y[:, k] for r in recs])
        k = [self.task.specs.index(s) for s in specs]
        return Predictions(self.task.name, list(specs), [r.id for r in recs], keys=self.ds.keys(), outputs=outputs,
                           labels=self.y[:, k])


# ---------------------------------------------------------------------------- API
def fit_yardstick(cfg, *, context: int = DEFAULT_CONTEXT, alphas: Sequence[float] = RIDGE_ALPHAS,
                  cs: Sequence[float] = LOGISTIC_CS, seed: int = 0, progress: bool = False):
    """Fit the yardstick of ``cfg`` (see the module docstring) without writing anything.

    Returns
    -------
    (LinearModel, Normalizer, dict, dict)
        The model, the fitted normaliser, the predictions per partition (train, devel, test partitions) and the
        selection record (per target: the grid with its devel scores and the chosen strength).
    """
    cfg.validate()
    d = cfg.data
    if context < 1:
        raise ConfigError(f"The yardstick's past context must be at least 1 step, got {context}.")
    if not alphas or not cs or not all(math.isfinite(v) and v > 0 for v in [*alphas, *cs]):
        raise ConfigError(f"Ridge strengths and logistic C values must be positive and non-empty; got {list(alphas)} "
                          f"and {list(cs)}.")
    corpus = Corpus(d.corpus, partitions=d.partitions)
    for name in d.features:
        corpus.feature_set(name)
    specs = target_specs(corpus, d.task, d.targets, d.target_types, d.label_set)
    task = make_task(d.task, corpus, specs, features=d.features, label_set=d.label_set, cache_dir=d.cache_dir,
                     progress=progress)
    train_key = "+".join(d.train_partitions)
    parts = list(dict.fromkeys([d.devel_partition, *d.test_partitions]))
    stores = {train_key: task.store(corpus.recording_ids(d.train_partitions))}
    stores.update({p: task.store(corpus.recording_ids([p])) for p in parts})
    normalizer = Normalizer(mode=d.normalize, pca=check_pca(d.pca, d.features)).fit(stores[train_key], [s for p, s in stores.items() if p != train_key])
    samples = {p: _Samples(task, s, normalizer, context) for p, s in stores.items()}
    tr, dv = samples[train_key], samples[d.devel_partition]
    params, selection = {}, {}
    for k, spec in enumerate(specs):
        ok = np.isfinite(tr.y[:, k])
        if not ok.any():
            raise ConfigError(f"The train partitions {d.train_partitions} have no labels of target {spec.name!r}; "
                              "the yardstick cannot be fitted.")
        grid = list(alphas) if spec.kind == "regression" else list(cs)
        tried = []
        best = None
        for strength in grid:
            p = _fit_one(spec, tr.z[ok], tr.y[ok, k], float(strength), seed)
            out = LinearModel([spec], {spec.name: p}).outputs(dv.z)
            pr = dv.predictions(out, [spec])
            sel = float(task.selection_score([spec], score(pr)))
            tried.append({"strength": float(strength), "devel_score": sel})
            if best is None or (np.isfinite(sel) and (not np.isfinite(best[0]) or sel > best[0])):
                best = (sel, p)
        params[spec.name] = best[1]
        selection[spec.name] = {"param": best[1]["param"], "chosen": best[1]["strength"], "devel_score": best[0],
                                "grid": tried, "train_samples": int(ok.sum())}
    model = LinearModel(specs, params)
    if d.task == "continuous":
        model.label_rate_hz = training_label_rate(corpus, d.label_set, stores[train_key])
    preds = {p: s.predictions(model.outputs(s.z)) for p, s in samples.items()}
    return model, normalizer, preds, selection


def run_yardstick(cfg, *, context: int = DEFAULT_CONTEXT, alphas: Sequence[float] = RIDGE_ALPHAS,
                  cs: Sequence[float] = LOGISTIC_CS, seed: int = 0, out: str | Path | None = None,
                  progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """Fit, select and score the yardstick of ``cfg``; write its run-like folder (module docstring).

    Parameters
    ----------
    cfg:
        An :class:`~affectflow.config.ExperimentConfig`; its ``data`` section decides everything (model and training
        sections are not used).
    context:
        Past context ``c`` in label steps for continuous tasks.
    alphas, cs:
        Ridge ``α`` grid and logistic-regression ``C`` grid.
    seed:
        Seed of the (deterministic) solvers.
    out:
        New folder (must not exist or be empty); default ``<output.runs_dir>/yardstick-<features>-<time>``.

    Returns
    -------
    (pathlib.Path, dict)
        The folder and its metrics (``metrics["best"][partition][target][metric]``, as a run's ``metrics.json``).
    """
    if out is not None:
        out_folder(out, what="output folder", create=False)  # checked before the fit
    model, normalizer, preds, selection = fit_yardstick(cfg, context=context, alphas=alphas, cs=cs, seed=seed,
                                                        progress=progress)
    d = cfg.data
    if out is None:
        out_dir = new_run_dir(cfg.output.runs_dir, f"yardstick-{'+'.join(d.features)}")
    else:
        out_dir = out_folder(out, what="output folder")
    best = {p: score(pr) for p, pr in preds.items()}
    for p, pr in preds.items():
        Run.save_predictions(out_dir, p, pr)
    checkpoints_folder(out_dir).mkdir(exist_ok=True)
    payload = {"format": "affectflow-linear", "context": int(context), "task": d.task, "features": list(d.features),
               "targets": list(d.targets), "target_specs": [{"name": s.name, "kind": s.kind, "classes": s.classes}
                                                            for s in model.specs],
               "label_set": d.label_set, "label_rate_hz": model.label_rate_hz, "model": model.state_dict(), "normalizer": normalizer.state_dict()}
    tmp = checkpoints_folder(out_dir) / f".{CHECKPOINT}.tmp"
    torch.save(payload, tmp)
    tmp.replace(checkpoints_folder(out_dir) / CHECKPOINT)
    cfg_dict = cfg.to_dict()
    cfg_dict["model"] = {"type": YARDSTICK_KIND, "context": int(context)}
    cfg_dict["output"]["name"] = out_dir.name
    Run.write_config(out_dir, cfg_dict)
    metrics = {"task": d.task, "kind": YARDSTICK_KIND, "best": best,
               "protocol": protocol_text(d.task, context, d.devel_partition),
               "selection": {"partition": d.devel_partition, "per_target": selection}}
    Run.write_metrics(out_dir, metrics)
    Run.write_results(out_dir, results_markdown(metrics))
    write_run_info(out_dir, {**environment_info(), "kind": YARDSTICK_KIND, "status": "finished",
                             "corpus": str(Path(d.corpus).resolve()), "best_seed": None,
                             "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return out_dir, metrics


def protocol_text(task: str, context: int, devel: str) -> str:
    """One sentence saying how the yardstick was made (metrics.json ``protocol``)."""
    feats = (f"current step + mean of the past {context} steps" if task == "continuous" and context > 1 else
             "current step" if task == "continuous" else "mean-pooled per sample")
    return (f"linear yardstick: ridge (regression) / logistic regression (classification) on z-normalised features "
            f"({feats}), fitted on train; strength chosen per target on {devel!r} (devel scores are optimistic)")


def results_markdown(metrics: dict[str, Any]) -> str:
    """Scores per partition, target and metric, then the chosen strengths."""
    lines = [metrics["protocol"] + ".", "", "| partition | target | metric | value |", "|---|---|---|---|"]
    for part, tg in metrics["best"].items():
        for t, m in tg.items():
            for k, v in m.items():
                if k != "n":
                    lines.append(f"| {part} | {t} | {k} | {v:.4f} |")
    lines += ["", "| target | parameter | chosen | devel score |", "|---|---|---|---|"]
    for t, s in metrics["selection"]["per_target"].items():
        lines.append(f"| {t} | {s['param']} | {s['chosen']:g} | {s['devel_score']:.4f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- a yardstick folder as a run
def is_yardstick_run(path: str | Path) -> bool:
    """Whether ``path`` is a yardstick folder."""
    return is_run_folder(path) and run_kind(path) == YARDSTICK_KIND


def load_yardstick(path: str | Path) -> tuple[LinearModel, Normalizer, dict[str, Any]]:
    """The model, normaliser and checkpoint of a yardstick folder (loaded with ``weights_only=True``)."""
    p = checkpoints_folder(path) / CHECKPOINT
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a damaged folder for the user
        raise RunError(f"{str(p)!r} is not a readable yardstick checkpoint ({type(e).__name__}); the yardstick folder "
                       "is damaged: fit it again with `affectflow yardstick`.") from None
    if not isinstance(ck, dict) or ck.get("format") != "affectflow-linear":
        raise RunError(f"{str(p)!r} is not an affectflow yardstick checkpoint.")
    specs = specs_from_state(ck["target_specs"])
    return LinearModel.from_state_dict(specs, ck["model"]), Normalizer.from_state_dict(ck["normalizer"]), ck


def yardstick_predictions(path: str | Path, corpus: Corpus, ids: list[str], *, progress: bool = False):
    """A yardstick folder's :class:`~affectflow.predictions.Predictions` on recordings ``ids`` of ``corpus``."""
    model, normalizer, ck = load_yardstick(path)
    cfg = Run(path).config_dict
    rate = ck.get("label_rate_hz")
    task = make_task(ck["task"], corpus, specs_from_state(ck["target_specs"]), features=ck["features"],
                     label_set=ck["label_set"], cache_dir=cfg["data"].get("cache_dir"), progress=progress,
                     grid_rate_hz=rate)
    s = _Samples(task, task.store(ids), normalizer, int(ck["context"]))
    return s.predictions(model.outputs(s.z))


def evaluate_yardstick(path: str | Path, *, partitions: list[str] | None = None,
                       corpus: str | Path | None = None, progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """:func:`affectflow.experiment.evaluate` for a yardstick folder (its :class:`YardstickRun`'s
    :meth:`~affectflow.runs.Run.evaluate`): reload the linear model, predict, score.

    Writes ``<folder>/evaluations/eval-<time>/`` (``metrics.json``, ``results.md``, ``predictions/<partition>/``).
    """
    return Run.load(path).evaluate(partitions=partitions, corpus=corpus, progress=progress)


class YardstickRun(Run):
    """A yardstick folder (``kind: yardstick``) as a :class:`~affectflow.runs.Run`: its linear model predicts."""

    kind = YARDSTICK_KIND

    @classmethod
    def fit(cls, cfg: Any, **options: Any) -> "YardstickRun":
        """Fit the yardstick of the config ``cfg`` on its corpus (:func:`run_yardstick`, with its ``options``) and
        return it; fitting writes the folder, so for this kind ``fit`` is fit and save."""
        return cls(run_yardstick(cfg, **options)[0])

    def model_info(self) -> dict[str, Any]:
        """``type: yardstick``, ``parameters`` (the entries of every target's ``W`` and ``b``), the past
        ``context`` (steps) and per target the chosen ``strength`` (``alpha`` or ``C``)."""
        out: dict[str, Any] = {"type": YARDSTICK_KIND, "parameters": None,
                               "context": (self.config_dict.get("model") or {}).get("context")}
        try:
            model, _, _ = load_yardstick(self.path)
        except RunError:
            return out
        out["parameters"] = int(sum(np.asarray(p["W"]).size + np.asarray(p["b"]).size for p in model.params.values()))
        out["strength"] = {t: {"param": p["param"], "chosen": float(p["strength"])} for t, p in model.params.items()}
        return out

    def predictor(self, corpus: Corpus, *, seed: int | None = None, device: str = "auto",
                  progress: bool = False) -> Predictor:
        """The linear model on ``corpus`` (``seed`` and ``device`` are not used: it is one CPU model)."""
        return Predictor(task=self.config_dict["data"]["task"], header={"kind": YARDSTICK_KIND},
                         predict=lambda ids: yardstick_predictions(self.path, corpus, list(ids), progress=progress))
