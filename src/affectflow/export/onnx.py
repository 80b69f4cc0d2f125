"""Export a run's selected checkpoint as ONNX (dynamic batch and time axes) plus a JSON of what a consumer needs.

::

    from affectflow.export import export_run
    folder = export_run("runs/gru-...", "exported/")      # model.onnx + model.json

The ONNX graph
    Inputs (``B`` batch, ``T`` time steps, both dynamic):

    ====================  ===========  ==========================================================================
    ``mask``              bool (B, T)  True on real steps; a prefix of each row (padding at the end)
    ``x.<set>``           float (B,T,D) the set's features **normalised** with the run's statistics, 0 where missing
    ``feature_mask.<set>`` bool (B, T) True where the set had any finite value at that step
    ====================  ===========  ==========================================================================

    Output ``y``: float ``(B, T, K)``, one column per output (``model.json`` ``outputs``); values at padded steps
    are unspecified, as in PyTorch. Preprocessing, as in :class:`~affectflow.data.normalize.Normalizer`:
    ``x = (raw - mean) / std`` per column (``model.json`` ``normalizer``), NaN → 0, and the feature mask is
    ``any(isfinite(raw))`` per step. A run with a PCA (``data.pca``) has it folded into the graph
    (:class:`PCAInputs`): ``x.<set>`` is still the ``D``-wide normalised input; ``model.json`` ``normalizer.pca``
    lists the sets and their component counts.

How the modules export
    The model is exported as it is: no module is swapped and nothing is patched. Two exporters (``dynamo``):

    TorchScript-based (default, ``dynamo=False``)
        RNNs run on packed sequences as in training; the exporter turns ``pack_padded_sequence`` + GRU/LSTM into
        the ONNX ``GRU``/``LSTM`` operators with ``sequence_lens``, which run each row over its own length (also
        backwards). Attention layers are :class:`affectflow.models.attention.MultiheadAttention`, whose forward
        uses shape-generic operators while an ONNX export runs (PyTorch's own folds the batch and head axes into
        constants).
    ``torch.export``-based (``dynamo=True``)
        Packing cannot be traced (data-dependent shapes): :func:`affectflow.models.rnn.run_rnn` then runs each
        layer and direction of the module's own parameters over the padded batch, the backward direction over each
        row reversed within its length. Slower to export (seconds to minutes per model on two cores).

    Either way, onnxruntime equals PyTorch at real steps of padded batches of other sizes than the traced one
    (the parity tests check ≤ 1e-5 for every registered architecture).

The JSON (``model.json``)
    ``format``, ``run``, ``seed``, ``model`` (type + hyperparameters), ``inputs``/``output`` (names, dtypes, axes),
    ``feature_sets`` (per set, in input order: modality, columns, rate_hz, extractor + parameters),
    ``normalizer`` (mode and per-set ``mean``/``std`` lists), ``targets`` and ``outputs`` (columns of ``y``),
    ``label_rate_hz``, ``task``, ``causal``, ``streamable``, ``opset``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from affectflow.errors import AffectflowError
from affectflow.experiment import TrainedModel
from affectflow.fsutil import out_folder, write_json
from affectflow.runs import Run, open_run
from affectflow.streaming.streamer import streaming_problem

FORMATS = ("onnx",)
OPSET = 17


class ExportError(AffectflowError, ValueError):
    """A run cannot be exported in the requested format (the message says why)."""


# ---------------------------------------------------------------------------------------------------- export
@contextlib.contextmanager
def export_mode(model: nn.Module) -> Iterator[nn.Module]:
    """An ``eval()`` copy of ``model`` for tracing, with PyTorch's fused attention kernels off until the block ends.

    The modules are the model's own (no substitutes): RNNs and attention export through
    :func:`affectflow.models.rnn.run_rnn` and :class:`affectflow.models.attention.MultiheadAttention`. The fused
    kernels (``_native_multi_head_attention``, ``_transformer_encoder_layer_fwd``) have no ONNX form; with the
    fast path off, attention runs the composite path, which computes the same values. The global switch is
    restored when the block ends, also on errors.
    """
    m = copy.deepcopy(model).eval()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        torch.backends.mha.set_fastpath_enabled(False)
        yield m
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


class PCAInputs(nn.Module):
    """A model with fixed PCA projections in front: ``x[set] → (x[set] − μ) Cᵀ`` for the sets of ``pca``
    (:attr:`Normalizer.pca_ <affectflow.data.normalize.Normalizer>`), then the model; so an exported graph takes the
    ``D``-wide normalised features and gives the predictions of the run."""

    def __init__(self, model: nn.Module, pca: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__()
        self.model = model
        self.sets = list(pca)
        for i, (n, (mean, comp)) in enumerate(pca.items()):
            self.register_buffer(f"mean_{i}", torch.as_tensor(np.asarray(mean, np.float32)))
            self.register_buffer(f"proj_{i}", torch.as_tensor(np.ascontiguousarray(np.asarray(comp, np.float32).T)))

    def forward(self, x, mask, feature_mask=None):  # noqa: ANN001 - the registry's model interface
        x = dict(x)
        for i, n in enumerate(self.sets):
            x[n] = (x[n] - getattr(self, f"mean_{i}")) @ getattr(self, f"proj_{i}")
        return self.model(x, mask, feature_mask)


class _Flat(nn.Module):
    """``forward(mask, x_1..x_M, fm_1..fm_M)`` over the dict interface of a model."""

    def __init__(self, model: nn.Module, sets: list[str]) -> None:
        super().__init__()
        self.model, self.sets = model, list(sets)

    def forward(self, mask: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        m = len(self.sets)
        x = {n: args[i] for i, n in enumerate(self.sets)}
        fm = {n: args[m + i] for i, n in enumerate(self.sets)}
        return self.model(x, mask, fm)


def input_names(sets: list[str]) -> list[str]:
    """ONNX input names in positional order: ``mask``, ``x.<set>``..., ``feature_mask.<set>``..."""
    return ["mask"] + [f"x.{n}" for n in sets] + [f"feature_mask.{n}" for n in sets]


def example_inputs(dims: dict[str, int], *, batch: int = 2, steps: int = 7, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs for tracing: a padded batch (row 1 shorter) with some missing steps."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, steps, dtype=torch.bool)
    if batch > 1:
        mask[1, max(1, steps - 3):] = False
    xs = [torch.randn(batch, steps, d, generator=g) for d in dims.values()]
    fms = [torch.rand(batch, steps, generator=g) > 0.2 for _ in dims]
    return (mask, *xs, *fms)


def _fixed_axes(path: Path) -> list[str]:
    """Inputs of the ONNX graph at ``path`` whose batch or time axis is a fixed number instead of a name."""
    import onnx  # optional (requirements/deploy.txt): only to inspect an exported graph

    graph = onnx.load(str(path), load_external_data=False).graph
    return [i.name for i in graph.input
            if any(d.HasField("dim_value") for d in list(i.type.tensor_type.shape.dim)[:2])]


def export_model_onnx(model: nn.Module, dims: dict[str, int], path: str | os.PathLike, *,
                      opset: int = OPSET, dynamo: bool = False) -> Path:
    """Write ``model`` (the registry's dict interface) as ONNX with dynamic ``batch`` and ``time`` axes.

    ``dynamo`` chooses the exporter (see the module docstring): TorchScript-based (default) or ``torch.export``-based
    (opset ``max(opset, 18)``).

    Raises
    ------
    ExportError
        The exporter cannot convert the model (the message has the exporter's first line), or the graph it wrote
        has a fixed batch or time axis (the message names the inputs).
    """
    sets = list(dims)
    names = input_names(sets)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with export_mode(model) as m:
        flat = _Flat(m, sets).eval()
        args = example_inputs(dims)
        axes = {n: {0: "batch", 1: "time"} for n in names + ["y"]}
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                if dynamo:
                    bt = {0: torch.export.Dim("batch", min=1), 1: torch.export.Dim("time", min=2)}
                    # _Flat.forward(mask, *args): the shapes of the positional inputs, then of the var-args
                    torch.onnx.export(flat, args, str(tmp), input_names=names, output_names=["y"],
                                      dynamic_shapes=(bt, tuple([bt] * (len(args) - 1))),
                                      opset_version=max(opset, 18), dynamo=True, external_data=False, verbose=False)
                else:
                    torch.onnx.export(flat, args, str(tmp), input_names=names, output_names=["y"],
                                      dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
        except ExportError:
            raise
        except Exception as e:  # noqa: BLE001 - any exporter failure is a reason the user should read
            tmp.unlink(missing_ok=True)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise ExportError(
                f"Model {getattr(model, 'name', type(model).__name__)!r} cannot be exported to ONNX: "
                f"{type(e).__name__}: {first}"
            ) from e
    fixed = _fixed_axes(tmp)
    if fixed:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"Model {getattr(model, 'name', type(model).__name__)!r}: the "
            f"{'torch.export-based' if dynamo else 'TorchScript-based'} exporter fixed the batch or time axis of "
            f"{', '.join(fixed)} (the graph would refuse other lengths); export it with the other exporter "
            f"(dynamo={not dynamo})."
        )
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------------- runs
def export_info(trained: Any, *old_args: Any) -> dict[str, Any]:
    """The sidecar JSON content (see the module docstring) of a loaded model
    (:class:`affectflow.experiment.TrainedModel`, from :meth:`affectflow.runs.Run.model`).

    The earlier form ``export_info(run, ckpt, model, normalizer)`` still works for one release (deprecated)."""
    if old_args:
        warnings.warn("export_info(run, ckpt, model, normalizer) is deprecated; pass the TrainedModel of "
                      "Run(path).model(seed)", DeprecationWarning, stacklevel=2)
        ckpt, model, normalizer = old_args
        trained = TrainedModel(run=open_run(trained), module=model, normalizer=normalizer, checkpoint=ckpt)
    run, ckpt, model, normalizer = trained.run, trained.checkpoint, trained.module, trained.normalizer
    data = ckpt["data"]
    sets = list(data["features"])
    try:
        infos = trained.feature_sets()
    except AffectflowError:
        infos = {n: {"columns": [f"{n}_{j}" for j in range(data["input_dims"][n])]} for n in sets}
    fs = {}
    for n in sets:
        info = infos[n]
        p = info.get("params") or {}
        fs[n] = {"dim": int(data["input_dims"][n]), "modality": info.get("modality"),
                 "columns": list(info.get("columns", [])), "rate_hz": info.get("rate_hz"),
                 "extractor": p.get("extractor") if isinstance(p, dict) else None,
                 "extractor_params": p.get("params") if isinstance(p, dict) else None,
                 "provenance": None if isinstance(p, dict) and "extractor" in p else p}
    stats = {n: {"mean": np.asarray(mu, np.float64).tolist(), "std": np.asarray(sd, np.float64).tolist()}
             for n, (mu, sd) in normalizer.stats_.items()}
    sizes = getattr(model, "output_sizes", {t: 1 for t in data["targets"]})
    outputs = []
    for t, k in sizes.items():
        outputs += [t] if k == 1 else [f"{t}[{j}]" for j in range(k)]
    why = streaming_problem(model, ckpt)
    return {
        "format": "affectflow-onnx",
        "run": str(run.path),
        "seed": int(ckpt.get("seed", -1)),
        "model": {"type": ckpt["model"]["type"], "params": ckpt["model"]["params"]},
        "task": data.get("task", "continuous"),
        "inputs": [{"name": "mask", "dtype": "bool", "shape": ["batch", "time"]}]
        + [{"name": f"x.{n}", "dtype": "float32", "shape": ["batch", "time", fs[n]["dim"]]} for n in sets]
        + [{"name": f"feature_mask.{n}", "dtype": "bool", "shape": ["batch", "time"]} for n in sets],
        "output": {"name": "y", "dtype": "float32", "shape": ["batch", "time", len(outputs)]},
        "feature_sets": fs,
        "normalizer": {"mode": normalizer.mode, "stats": stats,
                       "pca": {n: {"components": int(c.shape[0]), "spec": normalizer.pca.get(n)}
                               for n, (_, c) in normalizer.pca_.items()},
                       "note": "x = (raw - mean) / std per column, NaN -> 0; per-subject statistics (mode "
                               "'subject') are not exported: consumers use these train statistics; the PCA of "
                               "the sets under 'pca' is part of the graph"},
        "targets": list(data["targets"]),
        "target_specs": data.get("target_specs"),
        "outputs": outputs,
        "label_rate_hz": trained.label_rate_hz(),
        "causal": bool(getattr(model, "causal", False)),
        "streamable": why is None,
        "opset": OPSET,
    }


def export_run(run: Run | str | os.PathLike, out_dir: str | os.PathLike | None = None, *, format: str = "onnx",
               seed: int | None = None) -> Path:
    """Export the selected (or ``seed``'s) checkpoint of a run; return the folder with ``model.onnx`` and
    ``model.json``.

    ``out_dir`` must not exist or be empty; default ``<run>/export-<timestamp>``.

    Raises
    ------
    ExportError
        Unknown format, or a model the exporter cannot convert.
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown export format {format!r}; supported: {list(FORMATS)}.")
    run = open_run(run)
    trained = run.model(seed)
    model, normalizer, ckpt = trained.module, trained.normalizer, trained.checkpoint
    if out_dir is None:
        out = run.new_output_dir("export")
    else:
        out = out_folder(out_dir, what="output folder", error=ExportError)
    dims = {n: int(d) for n, d in ckpt["data"]["input_dims"].items()}
    dims = {n: dims[n] for n in ckpt["data"]["features"]}
    graph = PCAInputs(model, normalizer.pca_).eval() if normalizer.pca_ else model
    export_model_onnx(graph, dims, out / "model.onnx")
    write_json(out / "model.json", export_info(trained))
    return out
