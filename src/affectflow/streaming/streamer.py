"""Causal streaming inference: one label step at a time, carrying the model's state.

::

    from affectflow.streaming import Streamer
    s = Streamer("runs/gru-...")                  # refuses bidirectional / look-ahead models
    for frame in frames:                          # frame: {feature set: raw (D_set,) vector, NaN = missing}
        print(s.time, s.step(frame))              # {"arousal": 0.12, "valence": -0.05}

Equivalence. For a causal model (its ``causal`` property: no output depends on later steps), the output at step
``t`` of the offline whole-recording pass depends on steps ``0..t`` only, so it can be computed when step ``t``
arrives. Each :meth:`Streamer.step` normalises the raw vectors with the run's normaliser (train statistics;
missing values → 0 and a per-set step mask, exactly as offline) and computes the step's output in one of three
ways, chosen from the model's modules:

``state``
    Models whose only temporal operators are unidirectional GRUs/LSTMs (``gru``, ``lstm``, ``composite`` with an
    RNN encoder and per-step fusion/heads): the step is a length-1 sequence and every RNN starts from the hidden
    (and cell) state it ended the previous step with. Cost per step is constant.
``window``
    Models whose temporal operators are causal convolutions only (``tcn``, causal ``mbconv``, TCN fusions): the
    last ``R`` steps are kept, ``R = 1 + Σ (k - 1) · dilation`` over all 1-D convolutions (an upper bound of the
    receptive field), and the model is run on that buffer; its last output is the step's. Constant cost.
``history``
    Anything else causal (causal attention, running-mean squeeze-excitation, RNN after a convolution...): the whole history is kept and re-run, and
    the last output taken. Exact, but the cost grows with the stream's length.

The test suite checks, for every causal architecture of the registry, that streaming equals the offline
prediction of the whole recording step for step (max abs difference ≤ 1e-5).
"""

from __future__ import annotations

import copy
import os
import types
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from affectflow.errors import AffectflowError
from affectflow.runs import Run, open_run


class StreamingError(AffectflowError, ValueError):
    """A run cannot be streamed (non-causal model, non-continuous task), or a streamed frame is malformed."""


def streaming_problem(model: nn.Module, ckpt: Mapping[str, Any]) -> str | None:
    """Why ``model`` of checkpoint ``ckpt`` cannot be streamed, or ``None`` when it can."""
    task = ckpt["data"].get("task", "continuous")
    if task != "continuous":
        return f"it is a {task!r}-task model (one output per segment or clip); streaming needs a continuous-task run"
    if not bool(getattr(model, "causal", False)):
        params = ckpt["model"].get("params", {})
        hint = []
        if params.get("bidirectional"):
            hint.append("it is bidirectional (train with --set model.bidirectional=false)")
        if "causal" in params and not params.get("causal"):
            hint.append("its `causal` parameter is false (train with --set model.causal=true)")
        why = "; ".join(hint) or "some of its layers look ahead in time (bidirectional RNN, non-causal attention, " \
            "centred convolution or whole-sequence pooling)"
        return (f"model {ckpt['model']['type']!r} is not causal: {why}. Streaming predicts each step from the past "
                "only, so it needs a causal (unidirectional, no look-ahead) model")
    return None


#: Modules whose causal form pools over the whole past (a running mean), so no finite window reproduces them.
_UNBOUNDED = {"_SqueezeExcite"}


def _strategy(model: nn.Module) -> tuple[str, int | None]:
    """``("state", None)``, ``("window", R)`` or ``("history", None)`` (see the module docstring)."""
    rnn = conv = other = False
    rf = 1
    for m in model.modules():
        if isinstance(m, nn.RNNBase):
            rnn = True
        elif isinstance(m, nn.Conv1d):
            k, d = m.kernel_size[0], m.dilation[0]
            if k > 1:
                conv = True
                rf += (k - 1) * d
        elif isinstance(m, (nn.MultiheadAttention, nn.TransformerEncoderLayer)) or type(m).__name__ in _UNBOUNDED:
            other = True
    if getattr(model, "streaming_strategy", None):
        return model.streaming_strategy, None
    if not conv and not other:
        return "state", None
    if conv and not rnn and not other:
        return "window", rf
    return "history", None


class _RNNState:
    """Makes every RNN of a model start from its carried state and remember the state it ends with."""

    def __init__(self, model: nn.Module) -> None:
        self.states: dict[int, Any] = {}
        for m in model.modules():
            if isinstance(m, nn.RNNBase):
                self._patch(m)

    def _patch(self, rnn: nn.RNNBase) -> None:
        orig = rnn.forward
        key = id(rnn)
        states = self.states

        def forward(self_, input, hx=None):  # noqa: ANN001 - nn.RNNBase.forward signature
            out, h = orig(input, states.get(key) if hx is None else hx)
            states[key] = h
            return out, h

        rnn.forward = types.MethodType(forward, rnn)

    def reset(self) -> None:
        self.states.clear()


class Streamer:
    """Step a causal run's model one label step at a time (see the module docstring).

    Parameters
    ----------
    run:
        Run directory or :class:`~affectflow.runs.Run`.
    seed:
        Checkpoint of this seed (default: the selected seed).
    device:
        Torch device (``"cpu"`` by default: one step is far too small for a GPU to pay off).

    Attributes
    ----------
    feature_sets:
        The run's feature sets, in model order.
    columns:
        Feature set → column names; ``step`` wants vectors of these lengths.
    targets:
        Output names (continuous regression targets).
    label_rate_hz:
        Steps per second: step ``k`` stands for time ``k / label_rate_hz``.
    time:
        Time (s) of the next step.
    strategy:
        ``"state"``, ``"window"`` or ``"history"``.

    Raises
    ------
    StreamingError
        The model is not causal, or the run is not a continuous-task run.
    """

    def __init__(self, run: Run | str | os.PathLike, *, seed: int | None = None, device: str = "cpu") -> None:
        run = open_run(run)
        trained = run.model(seed)
        model, normalizer, ckpt = trained.module, trained.normalizer, trained.checkpoint
        problem = streaming_problem(model, ckpt)
        if problem:
            raise StreamingError(f"Run {run.path} cannot be streamed: {problem}.")
        self.run = run
        self.trained = trained  # the contract's loaded model (checkpoint facts, feature sets, label rate)
        self.ckpt = ckpt
        self.device = torch.device(device)
        self._pristine = model.to(self.device).eval()  # never patched: clones copy this one
        self.model = copy.deepcopy(self._pristine)
        self.normalizer = normalizer
        self.feature_sets: list[str] = list(ckpt["data"]["features"])
        dims = ckpt["data"]["input_dims"]
        try:
            infos = trained.feature_sets()
            self.columns = {n: list(infos[n]["columns"]) for n in self.feature_sets}
        except AffectflowError:
            self.columns = {n: [f"{n}_{j}" for j in range(dims[n])] for n in self.feature_sets}
        self.dims = {n: int(dims[n]) for n in self.feature_sets}
        self.targets: list[str] = list(ckpt["data"]["targets"])
        self.label_rate_hz = trained.label_rate_hz()
        self.strategy, self.window = _strategy(self.model)
        self._rnn = _RNNState(self.model) if self.strategy == "state" else None
        self._gru_fast = self.strategy == "state" and type(self.model).__name__ == "EarlyFusionGRU"
        # one vector of all sets' raw values, normalised at once with the run's train statistics
        self._slices, a = {}, 0
        for n in self.feature_sets:
            self._slices[n] = (a, a + self.dims[n])
            a += self.dims[n]
        self._raw = np.full(a, np.nan, np.float32)
        if normalizer.mode == "none":
            self._mean, self._std = np.zeros(a, np.float32), np.ones(a, np.float32)
        else:
            self._mean = np.concatenate([normalizer.stats_[n][0] for n in self.feature_sets]).astype(np.float32)
            self._std = np.concatenate([normalizer.stats_[n][1] for n in self.feature_sets]).astype(np.float32)
        # PCA of sets with one (data.pca): z -> (z - mean) C^T, as Normalizer.transform does
        self._pca = {n: (torch.from_numpy(m).to(self.device), torch.from_numpy(np.ascontiguousarray(c.T)).to(self.device))
                     for n, (m, c) in normalizer.pca_.items()}
        self._x: dict[str, list[torch.Tensor]] = {}
        self._fm: dict[str, list[torch.Tensor]] = {}
        self.steps = 0

    @classmethod
    def _from_parts(cls, other: "Streamer") -> "Streamer":
        new = copy.copy(other)
        new.model = copy.deepcopy(other._pristine)
        new._rnn = _RNNState(new.model) if new.strategy == "state" else None
        new._raw = other._raw.copy()
        new._x, new._fm, new.steps = {}, {}, 0
        return new

    def clone(self) -> "Streamer":
        """A new, independent stream of the same run (no checkpoint reload; its own model copy and state)."""
        return Streamer._from_parts(self)

    @property
    def time(self) -> float:
        """Time (s) of the next step."""
        return self.steps / self.label_rate_hz

    def reset(self) -> None:
        """Start a new stream: forget the carried state and the history; time back to 0."""
        if self._rnn is not None:
            self._rnn.reset()
        self._x, self._fm, self.steps = {}, {}, 0

    def _prepare(self, frame: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Normalise one step's raw vectors as :meth:`Normalizer.transform` does (train statistics; NaN → 0 and a
        per-set step mask; the PCA of sets that have one), vectorised over all sets: ``{set: (1, D or k)}`` and
        ``{set: (1,)}``."""
        for k in frame:
            if k not in self.dims:
                raise StreamingError(
                    f"Unknown feature sets {[k for k in frame if k not in self.dims]} in a streamed frame; the run "
                    f"uses {self.feature_sets}."
                )
        raw = self._raw
        raw.fill(np.nan)
        for n, (a, b) in self._slices.items():
            v = frame.get(n)
            if v is None:
                continue
            v = np.asarray(v, dtype=np.float32).reshape(-1)
            if v.shape[0] != b - a:
                raise StreamingError(
                    f"Feature set {n!r}: a streamed vector has {v.shape[0]} values, the run expects {b - a} "
                    f"(columns {self.columns[n][:3]}...)."
                )
            raw[a:b] = v
        finite = np.isfinite(raw)
        xn = np.where(finite, (raw - self._mean) / self._std, 0.0).astype(np.float32)[None, :]
        xt = torch.from_numpy(xn).to(self.device)
        x, fm = {}, {}
        for n, (a, b) in self._slices.items():
            x[n] = xt[:, a:b]
            if n in self._pca:
                x[n] = (x[n] - self._pca[n][0]) @ self._pca[n][1]
            fm[n] = torch.tensor([bool(finite[a:b].any())], device=self.device)
        return x, fm

    @torch.no_grad()
    def step(self, frame: Mapping[str, Any]) -> dict[str, float]:
        """Predict one label step.

        Parameters
        ----------
        frame:
            Feature set → raw (un-normalised) vector of shape ``(D_set,)`` for this step, NaN = missing value;
            a set that is absent or ``None`` is missing at this step.

        Returns
        -------
        dict
            Target → prediction for this step (time :attr:`time` before the call).
        """
        x, fm = self._prepare(frame)
        if self._gru_fast:
            out = self._gru_step(x, fm)
        elif self.strategy == "state":
            xb = {n: v[None] for n, v in x.items()}  # (1, 1, D)
            fmb = {n: v[None] for n, v in fm.items()}  # (1, 1)
            mask = torch.ones(1, 1, dtype=torch.bool, device=self.device)
            out = self.model(xb, mask, fmb)[0, -1]
        else:
            for n in self.feature_sets:
                self._x.setdefault(n, []).append(x[n])
                self._fm.setdefault(n, []).append(fm[n])
                if self.strategy == "window" and len(self._x[n]) > self.window:
                    del self._x[n][0], self._fm[n][0]
            xb = {n: torch.cat(self._x[n])[None] for n in self.feature_sets}
            fmb = {n: torch.cat(self._fm[n])[None] for n in self.feature_sets}
            t = next(iter(xb.values())).shape[1]
            mask = torch.ones(1, t, dtype=torch.bool, device=self.device)
            out = self.model(xb, mask, fmb)[0, -1]
        self.steps += 1
        vals = out.float().cpu().numpy()
        return {t: float(vals[k]) for k, t in enumerate(self.targets)}

    def _gru_step(self, x: dict[str, torch.Tensor], fm: dict[str, torch.Tensor]) -> torch.Tensor:
        """The ``gru`` model's forward for one step without sequence packing (a length-1 step needs none); the
        GRU's state is carried by the same hook as in the generic ``state`` strategy."""
        m = self.model
        xb = {n: v[None] for n, v in x.items()}
        fmb = {n: v[None] for n, v in fm.items()}
        h = m.drop(m.fusion(m.fuse(xb, fmb)))
        out, _ = m.gru(h)
        if getattr(m, "head", None) is not None:
            return m.head(out, torch.ones(1, 1, dtype=torch.bool, device=self.device))[0, -1]
        z = m.drop(torch.relu(m.fc(out)))
        y = torch.cat([head(z) for head in m.heads], dim=-1)
        return (torch.tanh(y) if m.tanh_output else y)[0, -1]

    def run_array(self, frames: Mapping[str, np.ndarray]) -> np.ndarray:
        """Stream whole arrays: ``frames[set]`` of shape ``(T, D_set)`` → predictions ``(T, K)`` (for tests and
        replays)."""
        n = {len(v) for v in frames.values()}
        if len(n) != 1:
            raise StreamingError(f"All feature arrays must have the same number of steps; got {sorted(n)}.")
        steps = n.pop()
        out = np.zeros((steps, len(self.targets)), np.float32)
        for i in range(steps):
            p = self.step({k: v[i] for k, v in frames.items()})
            out[i] = [p[t] for t in self.targets]
        return out
