"""Fine-tuning many copies of one model at once: the plain loop (reference) and the vectorised path.

Both implement the same procedure for every *job* ``m`` (a subject's data and a seed), starting from the same base
weights:

- the job's training windows are shuffled once per epoch with ``torch.randperm(n, generator=g)``,
  ``g = torch.Generator().manual_seed(seed)``, and cut into batches of ``batch_size`` windows;
- per batch: the loss (:func:`affectflow.training.losses.get_loss`; CCC: ``1 -`` mean per-window CCC) plus, with
  ``l2sp = α > 0``, the L2-SP penalty ``α · Σ_p ‖θ_p − θ⁰_p‖²`` toward the base weights ``θ⁰`` (Li et al., ICML 2018,
  "Explicit inductive bias for transfer learning"; it keeps a subject's model near the base model), gradients,
  the gradient norm of the job's parameters clipped to ``grad_clip`` (as ``torch.nn.utils.clip_grad_norm_``), one
  Adam step (``lr``, ``weight_decay`` as L2, betas 0.9/0.999, eps 1e-8; the job's own moments and step count);
- after every epoch the job's own devel recordings are predicted whole (eval mode) and scored with the pooled CCC
  averaged over targets; **epoch 0 is the base model itself**, so a job whose fine-tuning never beats the base
  model on its devel data keeps the base weights; the best epoch's weights are kept (strictly better score);
- a job stops after ``patience`` epochs without improvement, or after ``epochs``.

:func:`finetune_loop` runs the jobs one after another on ordinary ``nn.Module`` copies (any registered model).
:func:`finetune_vectorised` trains many jobs of the early-fusion GRU (``gru`` without ``head``) together as one
stacked model: every parameter gets a leading job axis ``(M, ...)``, the layers are batched matrix products
(``torch.bmm``) and the GRU recurrence is written out step by step for all jobs at once (a custom backward computes
the recurrent weight gradient once from all steps); each job has its own Adam state, batch schedule (jobs with fewer
batches sit out the extra steps), gradient clipping, early stopping and best weights; jobs that stop leave the
stack. The per-epoch devel predictions of whole recordings run per job through the module itself (a recurrence
with one sequence per job is matrix-vector work, faster with one job's weights in cache). Without dropout the two
paths give the same weights up to float rounding (tested); with dropout each draws its own masks (both
reproducible from the seeds).

Speed: the vectorised path removes the per-job Python and dispatch overhead and batches the matrix products, so the
gain is largest for small models (about 20× at hidden 8 in the equivalence test's setting). For the paper's hidden
256 on a CPU the arithmetic dominates and the gain is small (measured on a busy 2-core machine: 1.1–1.6× with groups
of 5–10 models; all 140 models of the benchmark in one group were 0.7× the loop, as the stacked weights no longer
stay in cache), so :func:`affectflow.procedures.personalise.personalise` stacks 8 models per group by default.
The stacked formulation is what a GPU needs (one kernel for all models per step); ``benchmarks/bench_personalise.py``
prints the measured ratio.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from affectflow.data.dataset import collate
from affectflow.models.rnn import reverse_steps, reversed_steps_index, step_lengths
from affectflow.training.losses import get_loss, masked_ccc
from affectflow.training.seeds import seed_everything


@dataclass
class FineTuneSettings:
    """Optimisation settings of one fine-tuning job (see the module docstring for the procedure)."""

    epochs: int = 20
    patience: int = 5
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    loss: str = "ccc"
    l2sp: float = 0.0  # α of the L2-SP penalty toward the base weights (0 = off)


@dataclass
class JobData:
    """One subject's fine-tuning data: collated training windows and whole devel recordings (batch layout of
    :func:`affectflow.data.dataset.collate`; ``devel`` labels are scored pooled over its recordings)."""

    train: dict
    devel: dict


@dataclass
class JobResult:
    """Outcome of one job: its best weights, the epoch they come from (0 = base model) and the devel scores."""

    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float
    history: list[float] = field(default_factory=list)  # devel score after epoch 0, 1, 2, ...


def collate_items(items: list[dict]) -> dict:
    """Collate dataset items into one batch (all windows of a job)."""
    return collate(items)


def _take(batch: dict, idx: torch.Tensor) -> dict:
    return {"x": {n: t[idx] for n, t in batch["x"].items()},
            "feature_mask": {n: t[idx] for n, t in batch["feature_mask"].items()},
            "mask": batch["mask"][idx], "y": batch["y"][idx], "y_mask": batch["y_mask"][idx]}


def pooled_score(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> float:
    """Mean over targets of the CCC pooled over all valid steps; ``out``/``y``/``valid`` ``(R, T, K)``."""
    vals = []
    for k in range(out.shape[-1]):
        v = valid[..., k]
        a, b = y[..., k][v].double(), out[..., k][v].double()
        if len(a) < 2:
            return float("nan")
        ma, mb = a.mean(), b.mean()
        den = ((a - ma) ** 2).mean() + ((b - mb) ** 2).mean() + (ma - mb) ** 2
        vals.append(float(2 * ((a - ma) * (b - mb)).mean() / den) if den > 0 else float("nan"))
    return float(np.mean(vals)) if np.all(np.isfinite(vals)) else float("nan")


# ---------------------------------------------------------------------------- plain loop (reference)
def finetune_loop(base: torch.nn.Module, jobs: list[tuple[JobData, int]], settings: FineTuneSettings, *,
                  on_job: Callable[[int], None] | None = None) -> list[JobResult]:
    """Fine-tune a copy of ``base`` for every ``(data, seed)`` job, one after another (the reference)."""
    loss_fn = get_loss(settings.loss)
    results = []
    for j, (data, seed) in enumerate(jobs):
        seed_everything(seed)
        model = copy.deepcopy(base)
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        n = data.train["mask"].shape[0]
        anchor = [p.detach().clone() for p in model.parameters()] if settings.l2sp else None

        def devel_score() -> float:
            model.eval()
            with torch.no_grad():
                d = data.devel
                out = model(d["x"], d["mask"], d["feature_mask"])
            model.train()
            return pooled_score(out, d["y"], d["y_mask"])

        best, best_epoch = devel_score(), 0
        best = best if np.isfinite(best) else -math.inf
        history = [best]
        best_state = copy.deepcopy(model.state_dict())
        model.train()
        for epoch in range(1, settings.epochs + 1):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, settings.batch_size):
                b = _take(data.train, perm[s : s + settings.batch_size])
                loss = loss_fn(model(b["x"], b["mask"], b["feature_mask"]), b["y"], b["y_mask"])
                if anchor is not None:
                    loss = loss + settings.l2sp * sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if settings.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                opt.step()
            score = devel_score()
            history.append(score)
            if np.isfinite(score) and score > best:
                best, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
            if epoch - best_epoch >= settings.patience:
                break
        results.append(JobResult(best_state, best_epoch, best, history))
        if on_job:
            on_job(j)
    return results


# ---------------------------------------------------------------------------- vectorised path
def supports_vectorised(model: torch.nn.Module) -> bool:
    """Whether :func:`finetune_vectorised` can train ``model`` (the early-fusion GRU with its Eq. 2 output layers)."""
    from affectflow.models.gru import EarlyFusionGRU

    return isinstance(model, EarlyFusionGRU) and getattr(model, "head", None) is None


class _StackedGRURecurrence(torch.autograd.Function):
    """The GRU recurrence of ``M`` models at once, given the input projections ``gi`` ``(M, B, T, 3H)`` (gate order
    r, z, n as ``nn.GRU``), ``w_hh`` ``(M, 3H, H)`` and ``b_hh`` ``(M, 3H)``; returns all states ``(M, B, T, H)``
    (initial state 0)::

        r = σ(gi_r + gh_r),  z = σ(gi_z + gh_z),  n = tanh(gi_n + r ⊙ gh_n),  h_t = (1 − z) ⊙ n + z ⊙ h_{t−1},
        gh = h_{t−1} W_hhᵀ + b_hh

    The backward pass runs the recurrence in reverse and computes the weight gradient **once** from all steps
    (``dW_hh = Σ_t dghₜᵀ h_{t−1}`` as one batched product), instead of one ``(M, 3H, H)`` product per step.
    """

    @staticmethod
    def forward(ctx, gi, w_hh, b_hh):
        m, b, t, h3 = gi.shape
        hidden = h3 // 3
        w_t, bias = w_hh.transpose(1, 2), b_hh.unsqueeze(1)
        h = gi.new_zeros(m, b, hidden)
        hs = gi.new_empty(m, b, t, hidden)
        rs, zs, ns, ghn = (gi.new_empty(m, b, t, hidden) for _ in range(4))
        for step in range(t):
            gh = torch.baddbmm(bias, h, w_t)
            i_r, i_z, i_n = gi[:, :, step].chunk(3, -1)
            h_r, h_z, h_n = gh.chunk(3, -1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = (1 - z) * n + z * h
            hs[:, :, step], rs[:, :, step], zs[:, :, step], ns[:, :, step], ghn[:, :, step] = h, r, z, n, h_n
        ctx.save_for_backward(w_hh, hs, rs, zs, ns, ghn)
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        w_hh, hs, rs, zs, ns, ghn = ctx.saved_tensors
        m, b, t, hidden = hs.shape
        h_prev_all = torch.cat([hs.new_zeros(m, b, 1, hidden), hs[:, :, :-1]], 2)
        d_gi = hs.new_empty(m, b, t, 3 * hidden)
        d_gh = hs.new_empty(m, b, t, 3 * hidden)
        dh = hs.new_zeros(m, b, hidden)
        for step in reversed(range(t)):
            dh = dh + grad_hs[:, :, step]
            r, z, n, h_n = rs[:, :, step], zs[:, :, step], ns[:, :, step], ghn[:, :, step]
            h_prev = h_prev_all[:, :, step]
            da_n = dh * (1 - z) * (1 - n * n)
            da_z = dh * (h_prev - n) * z * (1 - z)
            da_r = da_n * h_n * r * (1 - r)
            d_gi[:, :, step] = torch.cat([da_r, da_z, da_n], -1)
            dgh = torch.cat([da_r, da_z, da_n * r], -1)
            d_gh[:, :, step] = dgh
            dh = dh * z + torch.bmm(dgh, w_hh)
        flat_gh = d_gh.reshape(m, b * t, 3 * hidden)
        d_w = torch.bmm(flat_gh.transpose(1, 2), h_prev_all.reshape(m, b * t, hidden))
        return d_gi, d_w, flat_gh.sum(1)


class StackedGRU:
    """``M`` copies of an :class:`~affectflow.models.gru.EarlyFusionGRU` as stacked tensors ``(M, ...)``.

    ``params`` has the model's own state-dict names with a leading job axis; :meth:`forward` maps fused inputs
    ``(M, B, T, N)`` (``model.fuse`` of each job's batch) and a step mask ``(M, B, T)`` to outputs ``(M, B, T, K)``,
    the same function as the module (packed sequences: a reverse direction starts at each window's last real step).
    """

    def __init__(self, base: torch.nn.Module, m: int) -> None:
        self.base = base
        self.hp = base.hparams
        self.layers = base.gru.num_layers
        self.dirs = 2 if base.gru.bidirectional else 1
        self.hidden = base.gru.hidden_size
        self.n_heads = len(base.heads)
        self.params = {k: v.detach().unsqueeze(0).repeat(m, *([1] * v.dim())).clone().requires_grad_(True)
                       for k, v in base.named_parameters()}

    @staticmethod
    def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # x (M, ..., in), w (M, out, in), b (M, out)
        shape = x.shape
        y = torch.baddbmm(b.unsqueeze(1), x.reshape(shape[0], -1, shape[-1]), w.transpose(1, 2))
        return y.reshape(*shape[:-1], w.shape[1])

    def _direction(self, h_in: torch.Tensor, P: dict, suffix: str) -> torch.Tensor:
        gi = self._linear(h_in, P[f"gru.weight_ih{suffix}"], P[f"gru.bias_ih{suffix}"])  # (M, B, T, 3H)
        return _StackedGRURecurrence.apply(gi, P[f"gru.weight_hh{suffix}"], P[f"gru.bias_hh{suffix}"])

    def forward(self, fused: torch.Tensor, mask: torch.Tensor, *, training: bool,
                params: dict | None = None) -> torch.Tensor:
        """Outputs ``(M, B, T, K)`` of every job's model."""
        P = params or self.params
        p_drop = float(self.hp.get("dropout", 0.0)) if training else 0.0
        h = self._linear(fused, P["fusion.weight"], P["fusion.bias"])
        h = F.dropout(h, p_drop, training=p_drop > 0)
        t = h.shape[2]
        if self.dirs == 2:  # per-window reversal within its length (what packing does for the reverse direction)
            rev = reversed_steps_index(step_lengths(mask), t)  # (M, B, T)
        for layer in range(self.layers):
            outs = [self._direction(h, P, f"_l{layer}")]
            if self.dirs == 2:
                back = self._direction(reverse_steps(h, rev), P, f"_l{layer}_reverse")
                outs.append(reverse_steps(back, rev))
            h = torch.cat(outs, -1)
            rnn_drop = float(self.hp.get("rnn_dropout", 0.0)) if training else 0.0
            if layer < self.layers - 1 and rnn_drop > 0:
                h = F.dropout(h, rnn_drop, training=True)
        z = torch.relu(self._linear(h, P["fc.weight"], P["fc.bias"]))
        z = F.dropout(z, p_drop, training=p_drop > 0)
        y = torch.cat([self._linear(z, P[f"heads.{k}.weight"], P[f"heads.{k}.bias"]) for k in range(self.n_heads)], -1)
        return torch.tanh(y) if self.hp.get("tanh_output") else y

    def state_dict(self, j: int, params: dict | None = None) -> dict[str, torch.Tensor]:
        """Job ``j``'s weights under the module's state-dict names."""
        P = params or self.params
        out = {k: v.detach().clone() for k, v in self.base.state_dict().items()}
        for k, v in P.items():
            out[k] = v[j].detach().clone()
        return out


def _stack_padded(tensors: list[torch.Tensor], n: int) -> torch.Tensor:
    """Stack ``(n_i, ...)`` tensors into ``(len, n, ...)``, zero-padded along the first axis."""
    out = tensors[0].new_zeros((len(tensors), n, *tensors[0].shape[1:]))
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out


def _stack_jobs(base: torch.nn.Module, batches: list[dict]) -> dict:
    """Fused inputs, step masks and labels of several subjects' batches, padded to common sizes: ``(S, N, T, ...)``."""
    t = max(b["mask"].shape[1] for b in batches)
    n = max(b["mask"].shape[0] for b in batches)

    def pad_t(x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros((x.shape[0], t, *x.shape[2:]))
        out[:, : x.shape[1]] = x
        return out

    with torch.no_grad():
        fused = [pad_t(base.fuse(b["x"], b["feature_mask"])) for b in batches]
    return {"fused": _stack_padded(fused, n),
            "mask": _stack_padded([pad_t(b["mask"]) for b in batches], n),
            "y": _stack_padded([pad_t(b["y"]) for b in batches], n),
            "y_mask": _stack_padded([pad_t(b["y_mask"]) for b in batches], n),
            "count": torch.tensor([b["mask"].shape[0] for b in batches])}


def finetune_vectorised(base: torch.nn.Module, jobs: list[tuple[JobData, int]], settings: FineTuneSettings, *,
                        group_size: int | None = None, on_job: Callable[[int], None] | None = None) -> list[JobResult]:
    """Fine-tune all jobs together as stacked models (``group_size`` jobs at a time; default all). Same procedure and
    results as :func:`finetune_loop` (see the module docstring); needs :func:`supports_vectorised`."""
    if not supports_vectorised(base):
        raise ValueError("finetune_vectorised supports the early-fusion GRU (`gru` without `head`) only.")
    size = group_size or len(jobs)
    results: list[JobResult] = []
    for start in range(0, len(jobs), size):
        results += _finetune_group(base, jobs[start : start + size], settings)
        if on_job:
            for j in range(start, min(start + size, len(jobs))):
                on_job(j)
    return results


def _finetune_group(base: torch.nn.Module, jobs: list[tuple[JobData, int]], settings: FineTuneSettings) -> list[JobResult]:
    m = len(jobs)
    base = copy.deepcopy(base).cpu()
    # subjects' data once (jobs of one subject share its JobData object)
    uniq: dict[int, int] = {}
    for data, _ in jobs:
        uniq.setdefault(id(data), len(uniq))
    datas = {uniq[id(d)]: d for d, _ in jobs}
    subj = torch.tensor([uniq[id(d)] for d, _ in jobs])
    train = _stack_jobs(base, [datas[i].train for i in range(len(datas))])
    n_win = train["count"][subj]  # (M,)

    seed_everything(jobs[0][1])  # dropout masks of this group
    net = StackedGRU(base, m)
    names = list(net.params)
    P = net.params
    exp_avg = {k: torch.zeros_like(v) for k, v in P.items()}
    exp_sq = {k: torch.zeros_like(v) for k, v in P.items()}
    steps = torch.zeros(m)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    gens = [torch.Generator().manual_seed(seed) for _, seed in jobs]
    loss_name = settings.loss
    live = list(range(m))  # position in the stacked tensors -> job; stopped jobs are dropped from the stack

    from torch.func import functional_call

    base.eval()

    def devel_scores() -> list[float]:
        # per model through the module itself: the recurrence over whole recordings is a matrix-vector product per
        # step, faster with one model's weights in cache than with all models' weights streamed per step
        scores = []
        with torch.no_grad():
            for pos, j in enumerate(live):
                dv = jobs[j][0].devel
                out = functional_call(base, {k: P[k][pos] for k in names}, (dv["x"], dv["mask"], dv["feature_mask"]))
                scores.append(pooled_score(out, dv["y"], dv["y_mask"]))
        return scores

    s0 = devel_scores()
    best = [s if np.isfinite(s) else -math.inf for s in s0]
    history = [[s] for s in s0]
    best_epoch = [0] * m
    best_P = {k: v.detach().clone() for k, v in P.items()}
    anchor = {k: v.detach()[:1].clone() for k, v in P.items()}  # every job starts from the base weights
    bs = settings.batch_size
    for epoch in range(1, settings.epochs + 1):
        n = len(live)
        sub = subj[live]
        counts = [int(n_win[j]) for j in live]
        perms = [torch.randperm(counts[p], generator=gens[j]) for p, j in enumerate(live)]
        n_batches = [math.ceil(c / bs) for c in counts]
        for step in range(max(n_batches)):
            on = torch.tensor([step < nb for nb in n_batches])
            all_on = bool(on.all())
            width = max(min(bs, counts[p] - step * bs) for p in range(n) if on[p])
            idx = torch.zeros(n, width, dtype=torch.long)
            real = torch.zeros(n, width, dtype=torch.bool)
            for p in range(n):
                if on[p]:
                    sel = perms[p][step * bs : (step + 1) * bs]
                    idx[p, : len(sel)], real[p, : len(sel)] = sel, True
            rows = sub.unsqueeze(1).expand(-1, width)
            fused = train["fused"][rows, idx]
            mask = train["mask"][rows, idx] & real.unsqueeze(-1)
            y = train["y"][rows, idx]
            y_mask = train["y_mask"][rows, idx] & mask.unsqueeze(-1)
            out = net.forward(fused, mask, training=True)
            losses = _job_losses(out, y, y_mask, loss_name)  # (n,)
            grads = torch.autograd.grad((losses * on).sum(), [P[k] for k in names])
            grads = dict(zip(names, grads))
            with torch.no_grad():
                if settings.l2sp:  # gradient of α·Σ‖θ−θ⁰‖² for the jobs with a batch at this step
                    for k in names:
                        onk = on.to(P[k].dtype).view(-1, *([1] * (P[k].dim() - 1)))
                        grads[k] = grads[k] + 2.0 * settings.l2sp * (P[k].detach() - anchor[k]) * onk
                if settings.grad_clip:
                    norm = torch.sqrt(sum(g.pow(2).reshape(n, -1).sum(1) for g in grads.values()))
                    coef = (settings.grad_clip / (norm + 1e-6)).clamp(max=1.0)
                    for k, g in grads.items():
                        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
                steps += on.float()
                bc1 = 1 - beta1 ** steps.clamp(min=1)
                bc2 = 1 - beta2 ** steps.clamp(min=1)
                for k in names:
                    shape = (-1, *([1] * (P[k].dim() - 1)))
                    g = grads[k]
                    if settings.weight_decay:
                        g = g.add(P[k], alpha=settings.weight_decay)
                    if all_on:  # the common case: every model has a batch at this step
                        exp_avg[k].mul_(beta1).add_(g, alpha=1 - beta1)
                        exp_sq[k].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                        denom = (exp_sq[k].sqrt() / bc2.sqrt().view(shape)).add_(eps)
                        P[k].sub_(exp_avg[k] / denom * (settings.lr / bc1).view(shape))
                        continue
                    sel = on.view(shape)
                    exp_avg[k] = torch.where(sel, exp_avg[k] * beta1 + (1 - beta1) * g, exp_avg[k])
                    exp_sq[k] = torch.where(sel, exp_sq[k] * beta2 + (1 - beta2) * g * g, exp_sq[k])
                    denom = exp_sq[k].sqrt() / bc2.sqrt().view(shape) + eps
                    upd = (settings.lr / bc1).view(shape) * exp_avg[k] / denom
                    P[k].sub_(torch.where(sel, upd, torch.zeros_like(upd)))
        scores = devel_scores()
        keep = []
        for pos, j in enumerate(live):
            history[j].append(scores[pos])
            if np.isfinite(scores[pos]) and scores[pos] > best[j]:
                best[j], best_epoch[j] = scores[pos], epoch
                for k in names:
                    best_P[k][j] = P[k][pos].detach()
            if epoch - best_epoch[j] < settings.patience:
                keep.append(pos)
        if len(keep) < len(live):  # drop stopped models from the stack
            if not keep:
                break
            ki = torch.tensor(keep)
            P = {k: v.detach()[ki].clone().requires_grad_(True) for k, v in P.items()}
            net.params = P
            exp_avg = {k: v[ki] for k, v in exp_avg.items()}
            exp_sq = {k: v[ki] for k, v in exp_sq.items()}
            steps = steps[ki]
            live = [live[p] for p in keep]
    return [JobResult(net.state_dict(j, best_P), best_epoch[j], best[j], history[j]) for j in range(m)]


def _job_losses(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, name: str) -> torch.Tensor:
    """Per job the loss of :mod:`affectflow.training.losses` over its batch; tensors ``(M, B, T, K)``."""
    if name == "ccc":
        c, ok = masked_ccc(out, y, valid, dim=2)  # (M, B, K)
        okf = ok.to(out.dtype)
        n = okf.sum((1, 2))
        mean = (c * okf).sum((1, 2)) / n.clamp(min=1)
        return torch.where(n > 0, 1.0 - mean, out.sum((1, 2, 3)) * 0.0)
    if name == "mse":
        w = valid.to(out.dtype)
        return ((out - y) ** 2 * w).sum((1, 2, 3)) / w.sum((1, 2, 3)).clamp(min=1)
    return torch.stack([get_loss(name)(out[j], y[j], valid[j]) for j in range(out.shape[0])])
