"""Task types: what a sample is, what the targets are, how outputs are scored.

=================  ==========================================================================================
``data.task``      samples, targets and scores
=================  ==========================================================================================
``continuous``     windows of recordings; targets are dimensions of a continuous label set, one value per step;
                   scored with CCC (pooled over concatenated recordings and per-recording mean), Pearson, RMSE.
``segment``        one sample per labelled segment (``labels/segments.parquet``: recording, start, end, class
                   columns): the segment's steps on the recording's time grid; the prediction is the model output
                   at the segment's **last step**; classification targets are scored with macro F1 pooled over all
                   segments of all recordings (the MuSe-Sent score), regression targets with CCC.
``clip``           one sample per recording (``labels/clips.csv``): each feature set is z-normalised per step and
                   **mean-pooled** over the recording's valid steps, giving a sequence of one step; classification
                   targets are scored with weighted F1, regression targets with MSE and CCC; with one classification
                   and one regression target the MER 2023 score ``weighted F1 − 0.25 × MSE`` is reported.
=================  ==========================================================================================

Target kinds: a column of text or integers is a **classification** target (classes = its sorted distinct values,
stored in the checkpoint), a float column a **regression** target; ``data.target_types`` overrides this. For
classification targets the model needs a classification head; :func:`configure_model_params` fills one in (``jdev``
for one classification + one regression target, as in MER 2023) for every model that takes a ``head`` parameter.
Losses: cross-entropy for classification targets, ``training.loss`` (CCC or MSE) for regression targets, summed or
combined with learnt uncertainty weights (``training.multitask``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from affectflow.corpus.corpus import Corpus
from affectflow.data.dataset import batch_to, collate
from affectflow.data.normalize import Normalizer
from affectflow.data.store import SequenceStore
from affectflow.errors import ConfigError, CorpusError
from affectflow.metrics import accuracy, ccc, macro_f1, pearson, rmse, weighted_f1

TASKS = ("continuous", "segment", "clip")
KINDS = ("regression", "classification")


@dataclass
class TargetSpec:
    """One target: its name, ``kind`` and, for classification, the class values in index order."""

    name: str
    kind: str
    classes: list | None = None

    @property
    def n_outputs(self) -> int:
        """Model output columns for this target."""
        return len(self.classes) if self.kind == "classification" else 1


def _table(corpus: Corpus, task: str) -> pd.DataFrame:
    table = corpus.segments() if task == "segment" else corpus.clips()
    what = "labels/segments.parquet" if task == "segment" else "labels/clips.csv"
    if table is None:
        raise CorpusError(f"`data.task` is {task!r} but corpus {str(corpus.path)!r} has no {what}.")
    table = table.copy()
    table["recording"] = table["recording"].astype(str)
    return table


def target_specs(corpus: Corpus, task: str, targets: list[str], target_types: dict[str, str],
                 label_set: str = "continuous") -> list[TargetSpec]:
    """Work out each target's kind (and classes) from the corpus labels."""
    if task not in TASKS:
        raise ConfigError(f"`data.task` must be one of {list(TASKS)}, got {task!r}.")
    bad = {t: k for t, k in target_types.items() if k not in KINDS}
    if bad:
        raise ConfigError(f"`data.target_types` values must be one of {list(KINDS)}; got {bad}.")
    if task == "continuous":
        cls = [t for t, k in target_types.items() if k == "classification"]
        if cls:
            raise ConfigError(f"Continuous targets are regression targets; {cls} cannot be classification.")
        return [TargetSpec(t, "regression") for t in targets]
    table = _table(corpus, task)
    missing = [t for t in targets if t not in table.columns]
    if missing:
        cols = [c for c in table.columns if c not in ("recording", "segment_id", "start", "end")]
        raise ConfigError(f"Targets {missing} are not columns of the {task} labels; they have {cols}.")
    specs = []
    for t in targets:
        col = table[t]
        kind = target_types.get(t) or ("regression" if pd.api.types.is_float_dtype(col) else "classification")
        classes = None
        if kind == "classification":
            values = col.dropna().unique().tolist()
            classes = sorted(values, key=lambda v: (isinstance(v, str), v))
            classes = [int(c) if isinstance(c, (np.integer, int)) else (float(c) if isinstance(c, float) else str(c))
                       for c in classes]
            if len(classes) < 2:
                raise CorpusError(f"Classification target {t!r} has fewer than 2 classes in the corpus ({classes}).")
        specs.append(TargetSpec(t, kind, classes))
    return specs


def configure_model_params(model_type: str, params: dict[str, Any], specs: list[TargetSpec]) -> dict[str, Any]:
    """Give the model a head that matches the targets (classification heads get their class counts from the data)."""
    from affectflow.models import MODELS

    cls = [s for s in specs if s.kind == "classification"]
    if not cls:
        return params
    if "head" not in MODELS.param_names(model_type):
        raise ConfigError(
            f"Model {model_type!r} predicts regression values only, but targets {[s.name for s in cls]} are "
            "classification targets. Use a model with a `head` parameter (e.g. lstm, sa_lstm, gcnn_lstm, "
            "transformer, tcn, mbconv, way1..way6, composite)."
        )
    params = dict(params)
    head = dict(params.get("head") or {})
    reg = [s for s in specs if s.kind == "regression"]
    if not head:
        if len(cls) == 1 and len(reg) == 1:
            head = {"type": "jdev", "emotion": cls[0].name, "valence": reg[0].name}
        elif reg:
            raise ConfigError(
                "Mixed classification and regression targets need a head that serves both: set `model.head` "
                "(e.g. {type: jdev, emotion: <class target>, valence: <value target>} for one of each)."
            )
        else:
            head = {"type": "classification"}
    if "n_classes" not in head:
        if head.get("type") == "jdev":
            head["n_classes"] = cls[0].n_outputs
        else:
            head["n_classes"] = {s.name: s.n_outputs for s in cls}
    params["head"] = head
    return params


def check_outputs(model: nn.Module, specs: list[TargetSpec]) -> None:
    """Raise if the model's output layout does not match the targets."""
    sizes = getattr(model, "output_sizes", {s.name: 1 for s in specs})
    want = {s.name: s.n_outputs for s in specs}
    if list(sizes) != list(want) or any(sizes[k] != want[k] for k in want):
        raise ConfigError(
            f"The model's outputs {sizes} do not match the targets {want} (classification targets need one logit per "
            "class, regression targets one value): check `model.head`."
        )


# ---------------------------------------------------------------------------- datasets
class ReadoutDataset(Dataset):
    """Samples with one label vector each, read out at the sample's last step (segment and clip tasks).

    Items have the :class:`~affectflow.data.dataset.WindowDataset` layout (so :func:`collate` batches them); ``y`` is
    NaN except at the last step, where it holds the class indices / values of the targets.
    """

    def __init__(self, store: SequenceStore, normalizer: Normalizer, task: str, specs: list[TargetSpec],
                 table: pd.DataFrame | None) -> None:
        self.store, self.normalizer, self.task, self.specs = store, normalizer, task, specs
        self.items: list[tuple[int, int, int, np.ndarray, Any]] = []  # (rec, start, stop, y, key)
        index = {r.id: i for i, r in enumerate(store.records)}
        if task == "clip":
            rows = {} if table is None else {r["recording"]: r for _, r in table.iterrows()}
            for i, rec in enumerate(store.records):
                row = rows.get(rec.id)
                self.items.append((i, 0, rec.length, self._encode(row), rec.id))
            return
        if table is None:
            return
        for _, row in table.iterrows():
            i = index.get(row["recording"])
            if i is None or not (np.isfinite(row["start"]) and np.isfinite(row["end"])):
                continue
            times = store.records[i].times
            s = int(np.searchsorted(times, row["start"] - 1e-9))
            e = int(np.searchsorted(times, row["end"] - 1e-9))
            if e > s:
                self.items.append((i, s, e, self._encode(row), (row["recording"], int(row["segment_id"]))))

    def _encode(self, row) -> np.ndarray:
        y = np.full(len(self.specs), np.nan, dtype=np.float32)
        if row is None:
            return y
        for k, s in enumerate(self.specs):
            v = row.get(s.name) if hasattr(row, "get") else row[s.name]
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            if s.kind == "classification":
                v = int(v) if isinstance(v, (np.integer, int)) else (str(v) if not isinstance(v, float) else v)
                if v not in s.classes:
                    continue  # a class unseen when the model was built: unlabelled for this model
                y[k] = s.classes.index(v)
            else:
                y[k] = float(v)
        return y

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict:
        i, s, e, yvec, _ = self.items[k]
        subject = self.store.records[i].subject
        raw = self.store.read(i, s, e)
        x, fm = {}, {}
        for name, arr in raw.items():
            xn, m = self.normalizer.transform(name, arr, subject)
            if self.task == "clip":
                pooled = xn[m].mean(0, keepdims=True) if m.any() else np.zeros((1, xn.shape[1]), np.float32)
                xn, m = pooled.astype(np.float32), np.array([bool(m.any())])
            x[name], fm[name] = xn, m
        n = 1 if self.task == "clip" else e - s
        y = np.full((n, len(self.specs)), np.nan, dtype=np.float32)
        y[-1] = yvec
        return {"x": x, "feature_mask": fm, "y": y, "index": i, "start": s}

    def keys(self) -> list:
        """Sample keys: recording id (clip) or (recording id, segment id) (segment)."""
        return [it[4] for it in self.items]

    def labels(self) -> np.ndarray:
        """``(N, K)`` label vectors (class indices or values; NaN = none)."""
        return np.stack([it[3] for it in self.items]) if self.items else np.zeros((0, len(self.specs)), np.float32)


@torch.no_grad()
def predict_readout(model: nn.Module, ds: ReadoutDataset, *, batch_size: int = 32,
                    device: torch.device | str = "cpu") -> np.ndarray:
    """Model outputs at each sample's last step: ``(N, Σ outputs)``, in dataset order."""
    was = model.training
    model.eval()
    outs = []
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    for batch in loader:
        b = batch_to(batch, torch.device(device))
        out = model(b["x"], b["mask"], b["feature_mask"]).float()
        last = b["mask"].sum(1) - 1
        outs.append(out[torch.arange(out.shape[0], device=out.device), last].cpu().numpy())
    model.train(was)
    width = sum(s.n_outputs for s in ds.specs)
    return np.concatenate(outs) if outs else np.zeros((0, width), np.float32)


def split_columns(outputs: np.ndarray, specs: list[TargetSpec]) -> dict[str, np.ndarray]:
    """Per target: predicted class index (argmax of its logits) or value, shape ``(N,)``."""
    out, c = {}, 0
    for s in specs:
        part = outputs[:, c : c + s.n_outputs]
        out[s.name] = part.argmax(1) if s.kind == "classification" else part[:, 0]
        c += s.n_outputs
    return out


def score_readout(task: str, specs: list[TargetSpec], labels: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
    """Metrics per target (and ``mer_score`` for one classification + one regression clip target)."""
    preds = split_columns(outputs, specs)
    scores: dict[str, Any] = {}
    for k, s in enumerate(specs):
        ok = np.isfinite(labels[:, k])
        yt, yp = labels[ok, k], preds[s.name][ok]
        if s.kind == "classification":
            labs = list(range(len(s.classes)))
            scores[s.name] = {"macro_f1": macro_f1(yt.astype(int), yp.astype(int), labs) if len(yt) else float("nan"),
                              "weighted_f1": weighted_f1(yt.astype(int), yp.astype(int)) if len(yt) else float("nan"),
                              "accuracy": accuracy(yt, yp) if len(yt) else float("nan"), "n": int(ok.sum())}
        else:
            scores[s.name] = {"ccc": ccc(yt, yp), "pearson": pearson(yt, yp), "rmse": rmse(yt, yp),
                              "mse": float(np.mean((yt - yp) ** 2)) if len(yt) else float("nan"), "n": int(ok.sum())}
    return scores


def selection_score(task: str, specs: list[TargetSpec], scores: dict[str, Any]) -> float:
    """One number to select epochs and seeds on (higher is better).

    continuous: mean pooled CCC; segment: mean of macro F1 (classification) and CCC (regression) over targets;
    clip: mean weighted F1 of classification targets − 0.25 × mean MSE of regression targets (the MER score).
    """
    if task == "continuous":
        vals = [scores[s.name]["ccc"] for s in specs]
        return float(np.mean(vals)) if np.all(np.isfinite(vals)) else float("nan")
    if task == "segment":
        vals = [scores[s.name]["macro_f1" if s.kind == "classification" else "ccc"] for s in specs]
        return float(np.mean(vals))
    f1 = [scores[s.name]["weighted_f1"] for s in specs if s.kind == "classification"]
    mse = [scores[s.name]["mse"] for s in specs if s.kind == "regression"]
    return float((np.mean(f1) if f1 else 0.0) - 0.25 * (np.mean(mse) if mse else 0.0))


def add_task_scores(task: str, specs: list[TargetSpec], scores: dict[str, Any]) -> dict[str, Any]:
    """Add the challenge score of clip tasks with one classification and one regression target (MER 2023)."""
    cls = [s for s in specs if s.kind == "classification"]
    reg = [s for s in specs if s.kind == "regression"]
    if task == "clip" and len(cls) == 1 and len(reg) == 1:
        scores = dict(scores)
        scores["mer_score"] = {"value": scores[cls[0].name]["weighted_f1"] - 0.25 * scores[reg[0].name]["mse"]}
    return scores


def write_readout(path, ds: ReadoutDataset, outputs: np.ndarray) -> None:
    """A CSV with one row per sample: keys, predicted class / value and label of every target."""
    from affectflow.corpus.corpus import atomic_write

    keys = ds.keys()
    df = pd.DataFrame({"recording": [k if isinstance(k, str) else k[0] for k in keys]})
    if ds.task == "segment":
        df["segment_id"] = [k[1] for k in keys]
    preds, labels = split_columns(outputs, ds.specs), ds.labels()
    for k, s in enumerate(ds.specs):
        if s.kind == "classification":
            df[f"{s.name}_pred"] = [s.classes[int(i)] for i in preds[s.name]]
            df[f"{s.name}_label"] = [s.classes[int(v)] if np.isfinite(v) else None for v in labels[:, k]]
        else:
            df[f"{s.name}_pred"] = preds[s.name]
            df[f"{s.name}_label"] = labels[:, k]
    atomic_write(path, lambda p: df.to_csv(p, index=False, float_format="%.6g"))


class TaskLoss(nn.Module):
    """Per-target losses (CE / CCC / MSE) summed, or uncertainty-weighted with ``form`` (see
    :mod:`affectflow.training.multitask`). Holds learnt weights, so it is trained with the model."""

    def __init__(self, specs: list[TargetSpec], regression_loss: str, form: str | None) -> None:
        super().__init__()
        from affectflow.training.multitask import MultitaskLoss

        tasks = {s.name: ("ce" if s.kind == "classification" else regression_loss) for s in specs}
        sizes = {s.name: s.n_outputs for s in specs}
        self.inner = MultitaskLoss(tasks, form=form or "kendall", output_sizes=sizes, targets=[s.name for s in specs])
        self.weighted = form is not None
        if not self.weighted:
            self.inner.log_var.requires_grad_(False)

    def forward(self, out: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        if self.weighted:
            return self.inner(out, y, y_mask)
        losses = self.inner.task_losses(out, y, y_mask)
        self.inner.last_losses = {t: float(v.detach()) for t, v in losses.items()}
        return torch.stack(list(losses.values())).sum()


def specs_to_state(specs: list[TargetSpec]) -> list[dict]:
    """Plain dicts for checkpoints."""
    return [asdict(s) for s in specs]


def specs_from_state(state: list[dict]) -> list[TargetSpec]:
    """Inverse of :func:`specs_to_state`."""
    return [TargetSpec(**d) for d in state]
