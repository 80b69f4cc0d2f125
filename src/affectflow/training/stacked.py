"""Many copies of one model trained as one stacked model, for any registered model (``torch.func``).

:class:`StackedModels` takes ``M`` ordinary ``nn.Module`` copies of one architecture (different weights: seeds,
subjects) and computes, in one call, every copy's loss and gradients on its own batch::

    P_k = stack(θ_k^(1), ..., θ_k^(M))                       every parameter k gets a leading model axis (M, ...)
    (g^(m), L^(m)) = vmap(grad_and_value(L ∘ functional_call(module, ·, batch^(m))))(P, batches)

(``torch.func.stack_module_state`` / ``functional_call`` / ``vmap``; the module itself is called, nothing about its
parameter names or layers is known here). The gradients are written to each copy's ``.grad``, so every copy keeps
its own ordinary ``torch.optim`` optimiser, scheduler, gradient clipping and state dict: stacking changes only how
the forward and backward passes are computed, not the procedure around them.

Where a model differs under ``vmap``:

- **packed sequences**: packing sorts rows by data-dependent lengths, which ``vmap`` cannot batch; inside the stacked
  call :func:`affectflow.models.rnn.unpacked_sequences` makes every RNN run masked instead (forward directions
  ignore the padding after a row's end by themselves; reverse directions run on rows reversed within their lengths),
  the same function as packing at every real step, equal up to float rounding;
- **dropout** (``F.dropout`` / ``nn.Dropout``): every copy draws its masks from its **own** torch RNG state
  (:class:`RngStreams`), the draw the module makes on its own (``bernoulli_(1 − p)`` on a tensor of the same shape
  and memory layout, divided by ``1 − p``), so a copy seeded as a one-by-one run gets the same masks as that run
  (on the CPU; on CUDA the masks come from the CUDA generator, so stacked runs there are reproducible from run to
  run but not equal to one-by-one runs with dropout);
- **the loss** runs inside ``vmap``: ``ccc`` and ``mse`` are written without data-dependent branches
  (:func:`stacked_loss`; the same values as :mod:`affectflow.training.losses` for windows with two or more
  labelled steps).

Batches of the copies are stacked only when they have the same shapes; each call groups the copies by the shapes of
their batches and runs one ``vmap`` per group (so nothing is padded and dropout masks keep their shapes).

:func:`stack_blocker` says why a model cannot be stacked exactly (buffers that training updates, such as BatchNorm
statistics; dropout inside an RNN kernel or inside attention, whose masks ``vmap`` cannot draw per copy);
:func:`fit_seeds_stacked` trains all seeds of a run this way and
:func:`affectflow.procedures.finetune.finetune_vectorised` all (subject × seed) fine-tuning jobs.

Numerics: the stacked GRU/LSTM is ``torch``'s own decomposition of the recurrence (batched matrix products per step)
instead of the fused kernel, so results equal the one-by-one path up to float rounding (about 1e-7 relative per
step), not bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from affectflow.data.batches import prepare_batches
from affectflow.data.dataset import batch_to, collate
from affectflow.errors import ConfigError, CorpusError
from affectflow.models.rnn import unpacked_sequences
from affectflow.training.losses import masked_ccc
from affectflow.training.seeds import seed_everything
from affectflow.training.trainer import FitResult, epoch_state, rng_state, set_rng_state


# ---------------------------------------------------------------------------- per-copy dropout
class RngStreams:
    """One torch CPU RNG state per stacked copy (``states[m]``, as :func:`torch.get_rng_state`); dropout inside a
    stacked call draws copy ``m``'s masks from ``states[m]`` and advances it."""

    def __init__(self, states: Sequence[torch.Tensor]) -> None:
        self.states = [s.clone() for s in states]

    @classmethod
    def seeded(cls, seeds: Sequence[int]) -> "RngStreams":
        """Streams as ``torch.manual_seed(seed)`` leaves the global generator, one per seed."""
        return cls([torch.Generator().manual_seed(int(s)).get_state() for s in seeds])

    def draw(self, m: int, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Run ``fn`` (a draw from the global generator) with copy ``m``'s state, then keep the advanced state."""
        keep = torch.get_rng_state()
        try:
            torch.set_rng_state(self.states[m])
            out = fn()
            self.states[m] = torch.get_rng_state()
        finally:
            torch.set_rng_state(keep)
        return out


_ACTIVE: list[tuple[RngStreams, list[int]]] = []  # (streams, copies of the current vmapped group)


def _dropout_noise(x: torch.Tensor, p: float) -> torch.Tensor:
    # what at::dropout computes on the CPU: noise = empty_like(x).bernoulli_(1 - p); noise.div_(1 - p); x * noise
    # (noise in the memory layout of x, as empty_like: a vmapped slice has the layout the copy's own tensor has)
    return torch.empty_like(x).bernoulli_(1 - p).div_(1 - p)


class _DropoutNoise(torch.autograd.Function):
    """The dropout noise of ``x``: under ``vmap`` drawn per copy from its own stream (see :class:`RngStreams`)."""

    @staticmethod
    def forward(x, p):
        streams, members = _ACTIVE[-1]
        return streams.draw(members[0], lambda: _dropout_noise(x, p))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(output)

    @staticmethod
    def backward(ctx, grad):
        return None, None

    @staticmethod
    def vmap(info, in_dims, x, p):
        streams, members = _ACTIVE[-1]
        x = x.movedim(in_dims[0], 0) if in_dims[0] is not None else x.unsqueeze(0).expand(len(members), *x.shape)
        return torch.stack([streams.draw(m, lambda i=i: _dropout_noise(x[i], p)) for i, m in enumerate(members)]), 0


class _PerCopyDropout(TorchFunctionMode):
    """Routes ``F.dropout`` (``nn.Dropout``) through :class:`_DropoutNoise`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.dropout:
            names = ("input", "p", "training", "inplace")
            a = {**dict(zip(names, args)), **kwargs}
            x, p, training = a["input"], float(a.get("p", 0.5)), a.get("training", True)
            if not training or p == 0.0 or x.numel() == 0:
                return x
            if p == 1.0:
                return x * torch.zeros_like(x)
            return x * _DropoutNoise.apply(x, p)
        return func(*args, **kwargs)


# ---------------------------------------------------------------------------- what can be stacked
def stack_blocker(model: nn.Module) -> str | None:
    """Why ``model`` cannot be trained stacked with the same results as on its own (``None``: it can).

    Blockers: floating-point buffers (updated in training, e.g. BatchNorm statistics: a stacked call cannot write
    them back), and dropout drawn inside a fused kernel (``nn.RNNBase(dropout > 0)`` between RNN layers,
    ``nn.MultiheadAttention(dropout > 0)``), whose masks cannot follow each copy's own random stream.
    """
    for name, b in model.named_buffers():
        if b.is_floating_point():
            return f"it has the buffer {name!r} that training updates (e.g. BatchNorm statistics)"
    for name, mod in model.named_modules():
        if isinstance(mod, nn.RNNBase) and mod.dropout > 0 and mod.num_layers > 1:
            return f"{name!r} drops out between RNN layers inside the RNN kernel (rnn_dropout > 0)"
        if isinstance(mod, nn.MultiheadAttention) and mod.dropout > 0:
            return f"{name!r} drops out attention weights inside the attention kernel"
    return None


# ---------------------------------------------------------------------------- the loss under vmap
def stacked_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss ``name`` of one copy's batch ``(B, T, K)`` written for ``vmap`` (no data-dependent
    branches): ``ccc`` = ``1 −`` mean over (window, target) pairs with at least two labelled steps of their CCC
    (0 when there is none); ``mse`` = mean squared error over labelled entries. Equal to
    :func:`affectflow.training.losses.get_loss` wherever a batch has such a pair (always with training windows)."""
    if name == "ccc":
        def ccc(pred, y, valid):
            c, ok = masked_ccc(pred, y, valid, dim=1)
            okf = ok.to(pred.dtype)
            n = okf.sum()
            return torch.where(n > 0, 1.0 - (c * okf).sum() / n.clamp(min=1), pred.sum() * 0.0)
        return ccc
    if name == "mse":
        def mse(pred, y, valid):
            w = valid.to(pred.dtype)
            return ((pred - y) ** 2 * w).sum() / w.sum().clamp(min=1)
        return mse

    raise ConfigError(f"Stacked training has no loss {name!r} (it has 'ccc', 'mse').")


# ---------------------------------------------------------------------------- the stacked call
def _shape_key(batch: dict) -> tuple:
    return (tuple(batch["mask"].shape), tuple((n, tuple(t.shape)) for n, t in sorted(batch["x"].items())))


def _stack_batches(batches: list[dict]) -> dict:
    def stack(key: str) -> Any:
        first = batches[0][key]
        if first is None:
            return None
        if isinstance(first, dict):
            return {n: torch.stack([b[key][n] for b in batches]) for n in first}
        return torch.stack([b[key] for b in batches])

    return {k: stack(k) for k in ("x", "mask", "feature_mask", "y", "y_mask")}


class StackedModels:
    """Loss and gradients of ``M`` copies of one architecture on their own batches in one call (module docstring).

    Parameters
    ----------
    template:
        One copy (its structure is used; its weights are not).
    loss:
        ``ccc`` or ``mse`` (:func:`stacked_loss`).
    """

    def __init__(self, template: nn.Module, loss: str) -> None:
        self.skeleton = copy.deepcopy(template).to("meta")
        self.names = [n for n, _ in template.named_parameters()]
        self.loss_fn = stacked_loss(loss)

        def one(params, buffers, x, mask, feature_mask, y, y_mask):
            out = functional_call(self.skeleton, (params, buffers), (x, mask, feature_mask))
            return self.loss_fn(out, y, y_mask)

        self._grad = grad_and_value(one)

    def backward(self, models: Sequence[nn.Module], batches: Sequence[dict], *,
                 streams: RngStreams | None = None, members: Sequence[int] | None = None) -> list[float]:
        """Set every ``models[i]``'s ``.grad`` (replacing it) to the gradient of its loss on ``batches[i]`` (the
        layout of :func:`affectflow.data.dataset.collate`, on the models' device) and return the losses.

        ``streams`` / ``members``: copy ``i`` draws its dropout masks from ``streams.states[members[i]]`` (default:
        fresh streams are not kept; give them for reproducible dropout). ``models[i]`` must be in train or eval
        mode as wanted (the skeleton follows ``models[0]``'s mode).
        """
        members = list(members if members is not None else range(len(models)))
        if streams is None:
            streams = RngStreams([torch.get_rng_state()] * (max(members) + 1))
        self.skeleton.train(models[0].training)
        groups: dict[tuple, list[int]] = {}
        for i, b in enumerate(batches):
            groups.setdefault(_shape_key(b), []).append(i)
        losses = [float("nan")] * len(models)
        for idx in groups.values():
            params = {n: torch.stack([dict(models[i].named_parameters())[n].detach() for i in idx])
                      for n in self.names}
            buffers = {n: torch.stack([dict(models[i].named_buffers())[n] for i in idx])
                       for n, _ in models[idx[0]].named_buffers()}
            st = _stack_batches([batches[i] for i in idx])
            _ACTIVE.append((streams, [members[i] for i in idx]))
            try:
                with _PerCopyDropout(), unpacked_sequences():
                    grads, value = vmap(self._grad, randomness="different")(
                        params, buffers, st["x"], st["mask"], st["feature_mask"], st["y"], st["y_mask"])
            finally:
                _ACTIVE.pop()
            for j, i in enumerate(idx):
                named = dict(models[i].named_parameters())
                for n in self.names:
                    p = named[n]
                    p.grad = grads[n][j].clone() if p.requires_grad else None
                losses[i] = float(value[j])
        return losses


# ---------------------------------------------------------------------------- all seeds of a run, stacked
class _SeedRng:
    """A seed's own copy of the global RNG states (torch, NumPy, Python) and its data-order generator: what the
    global generators would hold if the seed trained alone. :meth:`use` swaps them in for a block."""

    def __init__(self, seed: int) -> None:
        keep = rng_state(torch.Generator())
        self.gen = seed_everything(seed)
        self.state = rng_state(self.gen)
        self._restore(keep)

    @staticmethod
    def _restore(state: dict) -> None:
        set_rng_state(state, torch.Generator())

    def use(self):
        @contextlib.contextmanager
        def swap():
            keep = rng_state(torch.Generator())
            set_rng_state(self.state, self.gen)
            try:
                yield
            finally:
                self.state = rng_state(self.gen)
                self._restore(keep)

        return swap()


def fit_seeds_stacked(
    models: dict[int, nn.Module],
    train_ds,
    score_devel: Callable[[nn.Module], float],
    cfg,
    *,
    device: torch.device,
    progress: bool = True,
    resume_states: dict[int, dict] | None = None,
    on_epoch_end: dict[int, Callable[[dict], None]] | None = None,
) -> dict[int, Any]:
    """:func:`affectflow.training.trainer.fit_seed` for every ``seed → model`` at once, the seeds' forward and
    backward passes stacked (:class:`StackedModels`); returns ``seed → FitResult`` and leaves every model with its
    best weights, as ``fit_seed`` does.

    Per seed everything is its own, as in a one-by-one run: the RNG states (:class:`_SeedRng`: data order, dropout
    masks), the ``torch.optim.Adam`` optimiser and ``ReduceLROnPlateau`` scheduler, gradient clipping, early
    stopping, best state, history rows, and the epoch states handed to ``on_epoch_end[seed]`` (the same format as
    ``fit_seed``'s, so a run killed in the middle resumes with either path). A seed that stops early leaves the
    stack. Needs the plain procedure: no ``training.schedule``, a ``ccc``/``mse`` loss on the model's outputs, and
    models without a :func:`stack_blocker`.
    """
    resume_states, on_epoch_end = resume_states or {}, on_epoch_end or {}
    if len(train_ds) == 0:
        raise CorpusError("There are no labelled training windows: check `data.train_partitions` and the labels.")
    seeds = list(models)
    s: dict[int, dict[str, Any]] = {}
    # the training windows as contiguous tensors once for all seeds (as fit_seed: same batches, order and draws)
    prepared = prepare_batches(train_ds) if cfg.num_workers == 0 else None
    for seed in seeds:
        model = models[seed].to(device)
        rng = _SeedRng(seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=cfg.lr_factor,
                                                           patience=cfg.lr_patience, min_lr=cfg.min_lr)
        loader = None if prepared is not None else DataLoader(
            train_ds, batch_size=cfg.batch_size, sampler=RandomSampler(train_ds, generator=rng.gen),
            collate_fn=collate, num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0)
        st = {"model": model, "rng": rng, "opt": opt, "sched": sched, "loader": loader, "best_score": -math.inf,
              "best_epoch": 0, "best_state": copy.deepcopy(model.state_dict()), "history": [], "windows": 0,
              "frames": 0, "train_time": 0.0, "epoch": 1}
        r = resume_states.get(seed)
        if r is not None:
            model.load_state_dict(r["model"])
            opt.load_state_dict(r["optimizer"])
            sched.load_state_dict(r["scheduler"])
            st.update(best_score=float(r["best_score"]), best_epoch=int(r["best_epoch"]),
                      best_state={k: v.to(device) for k, v in r["best_state"].items()},
                      history=[dict(h) for h in r["history"]], windows=int(r["windows"]),
                      train_time=float(r["train_time"]), frames=int(r.get("frames", 0)), epoch=int(r["epoch"]) + 1)
            set_rng_state(r["rng"], rng.gen)
            rng.state = r["rng"]
            if st["epoch"] > 1 and st["epoch"] - 1 - st["best_epoch"] >= cfg.patience:
                st["epoch"] = cfg.epochs + 1  # it had already stopped early
        s[seed] = st
    stacked = StackedModels(models[seeds[0]], cfg.loss)
    streams = RngStreams([s[seed]["rng"].state["torch"] for seed in seeds])
    amp = device.type == "cuda" and getattr(cfg, "amp", None) is not False
    log = logging.getLogger("affectflow.training.trainer")
    live = [seed for seed in seeds if s[seed]["epoch"] <= cfg.epochs]
    total = sum(cfg.epochs - s[seed]["epoch"] + 1 for seed in live)

    bar = tqdm(total=total, desc=f"seeds {seeds} stacked", unit="epoch", disable=not progress, leave=False)
    while live:
        t0 = time.perf_counter()
        iters, per = {}, {}
        for seed in live:
            st = s[seed]
            st["model"].train()
            with st["rng"].use():
                iters[seed] = iter(prepared.epoch(cfg.batch_size, st["rng"].gen) if prepared is not None
                                   else st["loader"])
            per[seed] = {"losses": [], "lr_start": None, "frames": 0}
        running = list(live)
        while running:
            batches = {}
            for seed in list(running):
                with s[seed]["rng"].use():
                    batch = next(iters[seed], None)
                if batch is None:
                    running.remove(seed)
                    continue
                batches[seed] = batch
            if not batches:
                break
            order = list(batches)
            for seed in order:
                streams.states[seeds.index(seed)] = s[seed]["rng"].state["torch"]
                if per[seed]["lr_start"] is None:
                    per[seed]["lr_start"] = s[seed]["opt"].param_groups[0]["lr"]
            bs = [batch_to(batches[seed], device) for seed in order]
            ms = [s[seed]["model"] for seed in order]
            for m in ms:
                m.zero_grad(set_to_none=True)
            if amp:
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                    losses = stacked.backward(ms, bs, streams=streams, members=[seeds.index(x) for x in order])
            else:
                losses = stacked.backward(ms, bs, streams=streams, members=[seeds.index(x) for x in order])
            for seed, m, b, loss in zip(order, ms, batches.values(), losses):
                st = s[seed]
                st["rng"].state["torch"] = streams.states[seeds.index(seed)]
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(m.parameters(), cfg.grad_clip)
                st["opt"].step()
                per[seed]["losses"].append(loss)
                st["windows"] += b["mask"].shape[0]
                per[seed]["frames"] += int(b["mask"].sum())
        round_time = time.perf_counter() - t0
        share = round_time / len(live)  # the seeds of a round share its time
        for seed in list(live):
            st, model, epoch = s[seed], s[seed]["model"], s[seed]["epoch"]
            lr_end = st["opt"].param_groups[0]["lr"]
            st["train_time"] += share
            t1 = time.perf_counter()
            with st["rng"].use():
                score = float(score_devel(model))
            score = score if np.isfinite(score) else -math.inf
            if score > st["best_score"]:
                st["best_score"], st["best_epoch"] = score, epoch
                st["best_state"] = copy.deepcopy(model.state_dict())
            st["sched"].step(score)
            lr = st["opt"].param_groups[0]["lr"]
            st["frames"] += per[seed]["frames"]
            losses = per[seed]["losses"]
            row = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                   "devel_score": score, "lr": lr, "seconds": share + time.perf_counter() - t1,
                   "lr_start": per[seed]["lr_start"] if per[seed]["lr_start"] is not None else lr, "lr_end": lr_end,
                   "best_devel_score": st["best_score"],
                   "frames_per_s": per[seed]["frames"] / share if share > 0 else float("nan")}
            st["history"].append(row)
            log.info("seed %d epoch %d (stacked): train loss %.4f, devel score %.4f, lr %.2e", seed, epoch,
                     row["train_loss"], score, lr)
            if seed in on_epoch_end:
                with st["rng"].use():
                    on_epoch_end[seed](epoch_state(
                        epoch=epoch, model=model, opt=st["opt"], sched=st["sched"], gen=st["rng"].gen,
                        best_score=st["best_score"], best_epoch=st["best_epoch"], best_state=st["best_state"],
                        history=st["history"], windows=st["windows"], train_time=st["train_time"],
                        frames=st["frames"]))
            bar.update(1)
            st["epoch"] += 1
            if epoch - st["best_epoch"] >= cfg.patience or st["epoch"] > cfg.epochs:
                if epoch - st["best_epoch"] >= cfg.patience:
                    log.info("seed %d: early stop at epoch %d (best epoch %d)", seed, epoch, st["best_epoch"])
                bar.update(cfg.epochs - epoch)
                live.remove(seed)
    bar.close()
    out = {}
    for seed in seeds:
        st = s[seed]
        st["model"].load_state_dict(st["best_state"])
        nan = float("nan")
        tt = st["train_time"]
        out[seed] = FitResult(st["best_epoch"], st["best_score"], st["history"],
                              st["windows"] / tt if tt > 0 else nan, st["frames"] / tt if tt > 0 else nan)
    return out


STACK_SEEDS = ("auto", True, False)


def stacking_applies(cfg, model: nn.Module, n_seeds: int) -> str | None:
    """Why the seeds of a run with config ``cfg`` cannot be trained stacked (``None``: they can): fewer than two
    seeds to train, a task or procedure other than the plain continuous one (segment / clip tasks, learnt multitask
    weights, subtask models, ``training.schedule``), a loss other than ``ccc`` / ``mse``, or a
    :func:`stack_blocker` of the model."""
    d, t = cfg.data, cfg.training
    if n_seeds < 2:
        return "fewer than two seeds to train"
    if d.task != "continuous" or t.multitask or hasattr(model, "forward_subtasks"):
        return f"task {d.task!r} / multitask weights / subtask models train with their own loss"
    if t.schedule:
        return f"training.schedule {t.schedule!r} is not stacked"
    if getattr(t, "augment", None):
        return "training.augment (per-batch augmentation) is not stacked"
    if t.loss not in ("ccc", "mse"):
        return f"loss {t.loss!r} is not stacked"
    return stack_blocker(model)


def fit_stacked_seeds(cfg, seeds: Sequence[int], build: Callable[[int], nn.Module], train_ds,
                      score_devel: Callable[[nn.Module], float], *, device: torch.device, progress: bool = True,
                      resume_states: dict[int, dict] | None = None,
                      on_epoch_end: Callable[[int], Callable[[dict], None]] | None = None) -> dict[int, tuple]:
    """The hook of ``affectflow train``: train ``seeds`` (each model from ``build(seed)``, which seeds and builds it
    as a one-by-one run does) stacked with :func:`fit_seeds_stacked` when ``training.stack_seeds`` asks for it
    and :func:`stacking_applies`; return ``seed → (model with its best weights, FitResult)``, or ``{}`` (the caller
    then trains the seeds one by one with :func:`~affectflow.training.trainer.fit_seed`).

    ``training.stack_seeds``: ``false`` never; ``true`` wherever it applies (a note says why not elsewhere);
    ``auto`` (default): one by one for now. Measured with ``benchmarks/bench_stacking.py --seeds-run`` (MuSe 2023
    GRU configuration, 3 seeds) on the 2-core CPU at low load, stacking was not faster than the one-by-one path
    with prepared batches (1.01x wall, 0.96x CPU time; per-seed CCC equal within 1.3e-6); on CUDA the dropout
    masks come from the CUDA generator, not each seed's own stream, and no timing was measured.
    """
    log = logging.getLogger("affectflow")
    mode = getattr(cfg.training, "stack_seeds", "auto")
    if mode not in STACK_SEEDS:
        raise ConfigError(f"`training.stack_seeds` must be auto, true or false; got {mode!r}.")
    if mode is False or mode == "auto" or len(seeds) < 2:
        return {}
    models = {seed: build(seed) for seed in seeds}
    reason = stacking_applies(cfg, models[seeds[0]], len(seeds))
    if reason is not None:
        (log.warning if mode is True else log.info)("seeds trained one by one, not stacked: %s", reason)
        return {}
    log.info("training seeds %s as one stacked model", list(seeds))
    results = fit_seeds_stacked(models, train_ds, score_devel, cfg.training, device=device, progress=progress,
                                resume_states=resume_states,
                                on_epoch_end={s: on_epoch_end(s) for s in seeds} if on_epoch_end else None)
    return {seed: (models[seed], results[seed]) for seed in seeds}
