"""Decision fusion of several runs' predictions (MER 2023 paper Eq. 10–11; MuSe 2023 feature-combination ensembles).

For runs ``i = 1..n`` predicting the same recordings with the same targets on the same label grid, the fused
prediction of target ``k`` is

    ŷ_k = Σ_i w_ik · ŷ_ik,    w_ik ≥ 0,  Σ_i w_ik = 1

where ``ŷ_ik`` is run ``i``'s value (continuous steps, segment / clip regression values) or its **class
posterior** vector (softmax of a classification target's logits; the fused outputs store ``log`` of the fused
posterior, so a fused run is fused again exactly like any other run and argmax gives the fused decision).

Methods
-------
``mean``
    ``w_ik = 1/n``.
``weighted``
    Weights chosen on the selection partition (default ``devel``) by a grid search over the simplex with step
    ``step`` (:mod:`affectflow.procedures.weights`): ``per_target=True`` (default) chooses ``w_·k`` for every
    target separately by that target's selection score (CCC for continuous targets; macro / weighted F1 or CCC /
    −MSE for segment / clip targets; the MuSe 2023 ensembles are per dimension); ``per_target=False`` chooses one
    weight vector for all targets by the task's selection score (MER 2023 Eq. 10–11, one ``k_i`` for emotion and
    valence). The single runs are grid vertices, so the fusion is never worse on the selection partition than the
    best single run it fuses (per target with ``per_target``, on the overall selection score otherwise). Its scores
    on that partition are therefore optimistic; the report says so.

Runs are combined from the predictions they saved (``<run>/predictions/<partition>/``); runs whose recordings,
targets (and classes) or label grids (step times) differ are refused with a message naming the difference.

The fused result is a run-like folder::

    run.json        {"kind": "fusion", "status": "finished", ...}
    config.yaml     the first member's config with ``model: {type: fusion}``
    fusion.json     method, step, members (absolute paths), weights, scores of every member and of the fusion
    metrics.json    ``best``: the fusion's scores per partition (read like a trained run's)
    predictions/<partition>/   the fused :class:`~affectflow.predictions.Predictions`
    results.md      devel and test scores of every member and of the fusion

``affectflow evaluate`` / ``predict`` on it predict with every member and combine with the stored weights;
``affectflow fuse`` accepts it as a member.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from affectflow.errors import ConfigError, RunError
from affectflow.fsutil import out_folder, write_json
from affectflow.layout import is_run_folder
from affectflow.predictions import Predictions
from affectflow.procedures.sweep import MAIN_METRICS
from affectflow.procedures.weights import grid_search
from affectflow.runs import Predictor, Run, environment_info, new_run_dir, run_kind, source_list, write_run_info
from affectflow.scoring import score, selection_score

FUSION_KIND = "fusion"


# ---------------------------------------------------------------------------- checks and combination
def _spec_state(specs) -> list[dict]:
    return [{"name": s.name, "kind": s.kind, "classes": s.classes} for s in specs]


def align(preds: Sequence[Any], names: Sequence[str], what: str = "") -> list[Any]:
    """The members' predictions in the first one's order; refuse any difference in recordings, targets or grid."""
    first = preds[0]
    where = f" on {what}" if what else ""
    out = [first]
    for p, name in zip(preds[1:], names[1:]):
        if p.task != first.task:
            raise RunError(f"Cannot fuse {names[0]!r} (task {first.task!r}) with {name!r} (task {p.task!r}): the "
                           "task types differ.")
        if _spec_state(p.specs) != _spec_state(first.specs):
            raise RunError(f"Cannot fuse {names[0]!r} and {name!r}: their targets differ ({_spec_state(first.specs)} "
                           f"vs {_spec_state(p.specs)}); fuse runs of the same targets (and classes).")
        if sorted(p.recordings) != sorted(first.recordings):
            a, b = set(first.recordings), set(p.recordings)
            raise RunError(
                f"Cannot fuse {names[0]!r} and {name!r}{where}: their recordings differ ({len(a - b)} only in the "
                f"first, e.g. {sorted(a - b)[:3]}; {len(b - a)} only in the second, e.g. {sorted(b - a)[:3]}). Fused "
                "runs must predict the same recordings (same corpus and partitions)."
            )
        p = p.subset(first.recordings)
        if not first.continuous:
            index = {k if isinstance(k, str) else tuple(k): i for i, k in enumerate(p.keys)}
            keys0 = [k if isinstance(k, str) else tuple(k) for k in first.keys]
            if set(index) != set(keys0):
                raise RunError(f"Cannot fuse {names[0]!r} and {name!r}{where}: their {first.task} samples differ.")
            order = [index[k] for k in keys0]
            p = type(p)(p.task, p.specs, list(p.recordings), keys=list(first.keys), outputs=p.outputs[order],
                        labels=p.label_matrix()[order], meta=dict(p.meta))
        try:  # grids (times per recording), samples: the value's own layout check
            first.check_same_layout(p, names=(names[0], name))
        except RunError as e:
            raise RunError(f"Cannot fuse {names[0]!r} and {name!r}{where}: {e}") from e
        out.append(p)
    return out


def _columns(specs) -> list[slice]:
    out, c = [], 0
    for s in specs:
        out.append(slice(c, c + s.n_outputs))
        c += s.n_outputs
    return out


def combine(preds: Sequence[Any], weights: np.ndarray) -> Any:
    """Fuse aligned predictions with ``weights`` of shape ``(n_runs, n_targets)`` (columns sum to 1)."""
    first = preds[0]
    w = np.asarray(weights, dtype=np.float64)
    if first.continuous:
        values = []
        for r in range(len(first.recordings)):
            v = sum(w[i][None, :] * np.asarray(p.values[r], np.float64) for i, p in enumerate(preds))
            values.append(v.astype(np.float32))
        return Predictions(first.task, first.specs, list(first.recordings), times=list(first.times), values=values,
                           labels=list(first.labels), meta={})
    cols = _columns(first.specs)
    post = [p.posteriors().astype(np.float64) for p in preds]
    out = np.zeros_like(post[0])
    for k, (s, sl) in enumerate(zip(first.specs, cols)):
        mix = sum(w[i, k] * post[i][:, sl] for i in range(len(preds)))
        out[:, sl] = np.log(np.maximum(mix, 1e-12)) if s.kind == "classification" else mix
    return Predictions(first.task, first.specs, list(first.recordings), keys=list(first.keys),
                       outputs=out.astype(np.float32), labels=first.label_matrix(), meta={})


def _one_target(preds: Any, k: int) -> Any:
    """``preds`` restricted to target ``k`` (so that scoring it costs one target)."""
    if preds.continuous:
        return Predictions(preds.task, [preds.specs[k]], list(preds.recordings), times=preds.times,
                           values=[v[:, k : k + 1] for v in preds.values],
                           labels=[None if y is None else y[:, k : k + 1] for y in preds.labels])
    sl = _columns(preds.specs)[k]
    return Predictions(preds.task, [preds.specs[k]], list(preds.recordings), keys=preds.keys,
                       outputs=preds.outputs[:, sl], labels=preds.label_matrix()[:, k : k + 1])


def choose_weights(preds: Sequence[Any], *, method: str = "weighted", step: float = 0.05,
                   per_target: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Weights ``(n_runs, n_targets)`` for aligned selection-partition predictions, and how they were chosen."""
    n, specs = len(preds), preds[0].specs
    if method == "mean":
        return np.full((n, len(specs)), 1.0 / n), {"method": "mean"}
    if method != "weighted":
        raise ConfigError(f"Fusion method must be 'mean' or 'weighted', got {method!r}.")
    info: dict[str, Any] = {"method": "weighted", "search": f"grid over the simplex, step {step}",
                            "per_target": per_target}
    if per_target:
        w = np.zeros((n, len(specs)))
        for k in range(len(specs)):
            single = [_one_target(p, k) for p in preds]
            wk, s, g = grid_search(lambda v: selection_score(combine(single, v[:, None])), n, step)
            w[:, k] = wk
            info.setdefault("selection_score", {})[specs[k].name] = s
            info["candidates"] = g
        return w, info
    wk, s, g = grid_search(lambda v: selection_score(combine(preds, np.repeat(v[:, None], len(specs), 1))), n, step)
    info.update(selection_score=s, candidates=g)
    return np.repeat(wk[:, None], len(specs), 1), info


# ---------------------------------------------------------------------------- runs
def is_fusion_run(path: str | Path) -> bool:
    """Whether ``path`` is a fused run folder (``Run(path)`` is then a :class:`FusedRun`)."""
    return is_run_folder(path) and run_kind(path) == FUSION_KIND


def run_partition_predictions(run: str | Path | Run, partition: str) -> Any:
    """The predictions a run (of any kind) saved for ``partition`` (:meth:`affectflow.runs.Run.saved_predictions`)."""
    return (run if isinstance(run, Run) else Run(run)).saved_predictions(partition)


def _run_label(path: Path, used: set[str]) -> str:
    name = path.name
    k = 2
    while name in used:
        name, k = f"{path.name}#{k}", k + 1
    used.add(name)
    return name


def fuse_runs(
    runs: Sequence[str | Path],
    *,
    method: str = "weighted",
    step: float = 0.05,
    per_target: bool = True,
    select_partition: str | None = "devel",
    partitions: Sequence[str] | None = None,
    out: str | Path | None = None,
) -> Path:
    """Fuse the saved predictions of ``runs``; write and return a fused run folder (see the module docstring).

    Parameters
    ----------
    runs:
        Two or more run folders (trained or fused).
    method, step, per_target:
        See the module docstring.
    select_partition:
        Partition the weights are chosen on (``weighted``); ``None`` with ``mean``.
    partitions:
        Partitions to fuse and score (default: the first run's devel and test partitions); the selection partition
        is always included for ``weighted``.
    out:
        New folder (must not exist or be empty); default ``<first run's parent>/fusion-<time>``.
    """
    if out is not None:
        out_folder(out, what="output folder", create=False)  # checked before any work
    paths = [Path(r).resolve() for r in runs]
    if len(paths) < 2:
        raise ConfigError("Fusion needs at least two runs.")
    if len(set(paths)) != len(paths):
        raise ConfigError(f"A run is listed twice: {[str(p) for p in paths]}.")
    members = [Run(p) for p in paths]
    for m in members:
        if m.record.get("status") != "finished":
            raise RunError(f"Run {str(m.path)!r} did not finish (status {m.record.get('status')!r}); it cannot be fused.")
    cfg0 = members[0].config_dict
    if method == "weighted" and not select_partition:
        raise ConfigError("Weighted fusion needs a selection partition (e.g. devel).")
    parts = list(partitions) if partitions else [cfg0["data"]["devel_partition"], *cfg0["data"]["test_partitions"]]
    if method == "weighted" and select_partition not in parts:
        parts.insert(0, select_partition)
    used: set[str] = set()
    names = [_run_label(p, used) for p in paths]
    preds = {part: align([m.saved_predictions(part) for m in members], names, part) for part in parts}
    sel = preds[select_partition] if method == "weighted" else preds[parts[0]]
    weights, how = choose_weights(sel, method=method, step=step, per_target=per_target)
    targets = sel[0].targets
    fused = {part: combine(ps, weights) for part, ps in preds.items()}
    scores = {"fused": {part: score(f) for part, f in fused.items()}}
    selection = {"fused": {part: selection_score(f, scores["fused"][part]) for part, f in fused.items()}}
    for name, i in zip(names, range(len(paths))):
        scores[name] = {part: score(ps[i]) for part, ps in preds.items()}
        selection[name] = {part: selection_score(ps[i], scores[name][part]) for part, ps in preds.items()}

    if out is None:
        out_dir = new_run_dir(paths[0].parent, "fusion")
    else:
        out_dir = out_folder(out, what="output folder")
    for part, f in fused.items():
        Run.save_predictions(out_dir, part, f)
    doc = {
        "format": "affectflow-fusion", "task": sel[0].task, "method": method, "step": step if method == "weighted" else None,
        "per_target": per_target, "select_partition": select_partition if method == "weighted" else None,
        "selection": how, "members": [str(p) for p in paths], "names": names, "targets": targets,
        "weights": {t: {n: float(weights[i, k]) for i, n in enumerate(names)} for k, t in enumerate(targets)},
        "partitions": parts, "scores": scores, "selection_scores": selection,
    }
    write_json(out_dir / "fusion.json", doc)
    cfg = json.loads(json.dumps(cfg0))
    cfg["model"] = {"type": FUSION_KIND}
    cfg["output"]["name"] = out_dir.name
    Run.write_config(out_dir, cfg)
    Run.write_metrics(out_dir, {
        "task": sel[0].task, "kind": FUSION_KIND, "best": scores["fused"],
        "protocol": f"decision fusion ({method}) of {len(paths)} runs"
        + (f"; weights chosen on {select_partition!r} (its fused scores are optimistic)" if method == "weighted" else ""),
    })
    Run.write_results(out_dir, fusion_markdown(doc))
    write_run_info(out_dir, {**environment_info(), "kind": FUSION_KIND, "status": "finished",
                             "corpus": cfg0["data"]["corpus"], "members": [str(p) for p in paths],
                             "best_seed": None, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return out_dir


def _metric_of(task: str, mets: dict[str, Any]) -> str:
    for m in MAIN_METRICS.get(task, ["ccc"]):
        if m in mets:
            return m
    return next(k for k in mets if k != "n")


def fusion_markdown(doc: dict[str, Any]) -> str:
    """Scores of every member and of the fusion per partition and target, and the weights."""
    scores, names, task = doc["scores"], [*doc["names"], "fused"], doc["task"]
    if doc["method"] == "weighted":
        how = (f"weighted: weights chosen on {doc['select_partition']!r} by a grid over the simplex with step "
               f"{doc['step']}, {'per target' if doc['per_target'] else 'shared by all targets'}; the fused "
               f"{doc['select_partition']!r} scores are optimistic (the weights were chosen there)")
    else:
        how = "mean: equal weights"
    lines = [f"Decision fusion of {len(doc['names'])} runs ({how}).", ""]
    cols = [(p, t) for p in doc["partitions"] for t in scores["fused"][p]]
    metric = {(p, t): _metric_of(task, scores["fused"][p][t]) for p, t in cols}
    head = ["run"] + [f"{p} {t} {metric[p, t]}" for p, t in cols]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        row = ["**fused**" if n == "fused" else n]
        row += [f"{scores[n][p][t][metric[p, t]]:.4f}" for p, t in cols]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Weights:", "", "| target | " + " | ".join(doc["names"]) + " |", "|---|" + "---|" * len(doc["names"])]
    for t, w in doc["weights"].items():
        lines.append(f"| {t} | " + " | ".join(f"{w[n]:.2f}" for n in doc["names"]) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- a fused run as a Run
class FusedRun(Run):
    """A fused run folder (``kind: fusion``): its members predict (each through its own :class:`Run`), its stored
    weights combine them."""

    kind = FUSION_KIND

    @classmethod
    def fit(cls, runs: Sequence[str | Path], **options: Any) -> "FusedRun":
        """Fuse ``runs`` (:func:`fuse_runs`, with its ``options``) and return the fused run. Fitting writes the
        folder (the members' saved predictions are all it needs), so for this kind ``fit`` is fit and save."""
        return cls(fuse_runs(runs, **options))

    def fusion_doc(self) -> dict[str, Any]:
        """``fusion.json``, after checking that the member runs still exist."""
        f = self.path / "fusion.json"
        if not f.is_file():
            raise RunError(f"{str(self.path)!r} is marked as a fused run but has no fusion.json; it is damaged.")
        doc = json.loads(f.read_text())
        for m in doc["members"]:
            if not is_run_folder(m):
                raise RunError(
                    f"Member run {m!r} of the fused run {str(self.path)!r} does not exist any more (moved or deleted). "
                    "A fused run predicts with its members; fuse again from the members' new location."
                )
        return doc

    def check_usable(self) -> None:
        """The fusion document exists and names member runs that still exist."""
        self.fusion_doc()

    def _stored_doc(self) -> dict[str, Any]:
        """``fusion.json`` as stored (members not checked; ``{}`` when it is missing or unreadable)."""
        try:
            doc = json.loads((self.path / "fusion.json").read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def model_info(self) -> dict[str, Any]:
        """``type: fusion`` (no parameters of its own: its members predict), the fusion ``method`` and the
        ``weights`` (``target → member name → weight``)."""
        doc = self._stored_doc()
        return {"type": FUSION_KIND, "parameters": None, "method": doc.get("method"), "weights": doc.get("weights")}

    def sources(self) -> list[dict[str, Any]]:
        """The member runs (``role: "member"``)."""
        members = self._stored_doc().get("members") or self.record.get("members") or []
        return source_list("member", members if isinstance(members, list) else [])

    def predictor(self, corpus: Any, *, seed: int | None = None, device: str = "auto",
                  progress: bool = False) -> Predictor:
        """Every member predicts ``ids`` of ``corpus``; the stored weights combine them (``seed`` is not used)."""
        doc = self.fusion_doc()
        members = [Run(m) for m in doc["members"]]
        w = np.array([[doc["weights"][t][n] for t in doc["targets"]] for n in doc["names"]])

        def predict(ids: list[str]) -> Any:
            preds = [m.predict(corpus, list(ids), device=device, progress=progress) for m in members]
            return combine(align(preds, doc["names"]), w)

        return Predictor(task=doc["task"], predict=predict, header={"kind": FUSION_KIND, "members": doc["members"]})


def _fusion_doc(path: Path) -> dict[str, Any]:
    return FusedRun(path).fusion_doc()


def fused_recording_predictions(run_path: str | Path, corpus: Any, ids: list[str], *, device: str = "auto",
                                progress: bool = False) -> Any:
    """Predictions of a fused run on recordings ``ids`` of ``corpus`` (:meth:`FusedRun.predict`)."""
    return FusedRun(run_path).predictor(corpus, device=device, progress=progress).predict(list(ids))


def open_fused_corpus(path: Path, corpus: str | Path | None) -> Any:
    """The corpus a fused run evaluates on: ``corpus``, else its first member's (with its partition map)."""
    return FusedRun(path).open_corpus(corpus)


def evaluate_fused(run_path: str | Path, *, partitions: list[str] | None = None, corpus: str | Path | None = None,
                   device: str = "auto", progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """:func:`affectflow.experiment.evaluate` for a fused run (:meth:`FusedRun.evaluate`)."""
    return FusedRun(run_path).evaluate(partitions=partitions, corpus=corpus, device=device, progress=progress)
