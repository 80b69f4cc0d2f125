"""Plots: a run's learning curves and predictions against labels (PNG files under ``<run>/plots``), the plot of
one prediction frame (:func:`plot_prediction`), and the figures of recipes (:func:`plot_subject_gains`,
:func:`plot_bar_panels`; written by :mod:`affectflow.recipes.figures`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affectflow.fsutil import atomic_write, make_dirs
from affectflow.layout import LABEL_SUFFIX, history_files, plots_folder, prediction_folder, split_prediction_columns


def plot_run(run_dir: str | Path, *, partition: str = "test", n_recordings: int = 3) -> list[Path]:
    """Write ``learning_curves.png`` and ``predictions_<partition>.png``; return the files written."""
    plt = _pyplot()
    run_dir = Path(run_dir)
    out = make_dirs(plots_folder(run_dir))
    written = []

    hist = history_files(run_dir)
    if hist:
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
        for k, f in enumerate(hist):
            h = pd.read_csv(f)
            axes[0].plot(h["epoch"], h["train_loss"], label=f.stem)
            axes[1].plot(h["epoch"], h["devel_score"], label=f.stem)
            if "lr_start" in h:  # the rate at the first and last batch of each epoch: warm-up ramps show as steps
                xs = [x for e in h["epoch"] for x in (e - 1, e)]
                ys = [y for a, b in zip(h["lr_start"], h["lr_end"]) for y in (a, b)]
                axes[2].plot(xs, ys, color=f"C{k}", label=f.stem)
            else:
                axes[2].plot(h["epoch"], h["lr"], color=f"C{k}", label=f.stem)
            if "unfrozen" in h:  # progressive unfreezing: a line where each group was unfrozen
                for e, g in zip(h["epoch"], h["unfrozen"].fillna("")):
                    if g:
                        for ax in axes[1:]:
                            ax.axvline(e - 1, color=f"C{k}", ls=":", lw=0.8)
                        axes[2].annotate(str(g), (e - 1, 1), xycoords=("data", "axes fraction"), fontsize=6,
                                         rotation=90, va="top")
        axes[0].set(title="training loss", xlabel="epoch")
        axes[1].set(title="devel CCC (mean over targets)", xlabel="epoch")
        axes[2].set(title="learning rate (dotted: unfreezing)", xlabel="epoch", yscale="log")
        axes[1].legend(fontsize=8)
        written.append(_save(fig, out / "learning_curves.png"))

    pred_dir = prediction_folder(run_dir, partition)
    files = sorted(pred_dir.glob("*.csv"))[:n_recordings]
    if files:
        first = pd.read_csv(files[0], nrows=0)
        targets, pred_col, _ = split_prediction_columns(list(first.columns), repr(str(files[0])))
        fig, axes = plt.subplots(len(files), len(targets), figsize=(5 * len(targets), 2.4 * len(files)), squeeze=False)
        for i, f in enumerate(files):
            df = pd.read_csv(f)
            for j, t in enumerate(targets):
                ax = axes[i][j]
                if f"{t}{LABEL_SUFFIX}" in df:
                    ax.plot(df["time"], df[f"{t}{LABEL_SUFFIX}"], color="0.3", lw=1, label="label")
                ax.plot(df["time"], df[pred_col[t]], color="C1", lw=1, label="prediction")
                ax.set_title(f"{f.stem}: {t}", fontsize=9)
                if i == len(files) - 1:
                    ax.set_xlabel("time (s)")
        axes[0][0].legend(fontsize=8)
        written.append(_save(fig, out / f"predictions_{partition}.png"))
    return written


# ---------------------------------------------------------------------------- recipe figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, *, title: str = "") -> Path:
    """Lay out ``fig`` (``title``, if any, as its suptitle), write it to ``path`` as a 100-dpi PNG (atomically, see
    :func:`~affectflow.fsutil.atomic_write`) and close it; return ``path``."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    _pyplot().close(fig)
    return path


def plot_subject_gains(per_target: dict[str, list[tuple[str, float, float]]], path: str | Path, *,
                       title: str = "", ylabel: str = "test CCC") -> Path:
    """Per-subject scores before and after personalisation, one panel per target (MuSe 2023 personalisation).

    ``per_target``: target → ``[(subject, before, after), ...]``. Subjects are sorted by their gain
    ``after − before``; each is drawn as an arrow from before to after (green: better, red: worse), with the number
    of subjects made worse in the panel title. Returns ``path`` (PNG, written atomically).
    """
    plt = _pyplot()
    path = Path(path)
    make_dirs(path.parent)
    n = max(len(per_target), 1)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 3.8), squeeze=False)
    for ax, (target, rows) in zip(axes[0], per_target.items()):
        rows = sorted(rows, key=lambda r: r[2] - r[1])
        for i, (_, b, a) in enumerate(rows):
            ax.annotate("", (i, a), (i, b), arrowprops={"arrowstyle": "->", "color": "C2" if a >= b else "C3"})
            ax.plot([i], [b], "o", color="0.5", ms=3)
        worse = sum(1 for _, b, a in rows if a < b)
        ax.set_xticks(range(len(rows)), [r[0] for r in rows], rotation=90, fontsize=7)
        vals = [v for r in rows for v in r[1:] if np.isfinite(v)]
        if vals:
            ax.set_ylim(min(vals) - 0.05, min(1.0, max(vals) + 0.05))
        ax.set(title=f"{target}: {worse} of {len(rows)} subjects worse", ylabel=ylabel)
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path, title=title)


def plot_bar_panels(panels: list[dict], path: str | Path, *, title: str = "", ylabel: str = "CCC") -> Path:
    """Grouped bars, one panel per entry of ``panels`` (recipe tables drawn as figures: ABAW5 folds, MuSe 2021
    stress fusion).

    Each panel is ``{"title": str, "groups": [x labels], "series": {name: [value per group]},
    "references": {name: [value per group]}}``: a bar per series in each group (NaN: no bar) and, for each
    reference (e.g. the linear yardstick), a dashed black mark over each group. Returns ``path`` (PNG).
    """
    plt = _pyplot()
    path = Path(path)
    make_dirs(path.parent)
    n = max(len(panels), 1)
    width = max(6.0, max((len(p["groups"]) * (len(p["series"]) + 1) * 0.35 for p in panels), default=6.0))
    fig, axes = plt.subplots(n, 1, figsize=(min(width, 14) + 4, 3.2 * n), squeeze=False)
    for ax, p in zip(axes[:, 0], panels):
        groups, series = list(p["groups"]), dict(p["series"])
        k = max(len(series), 1)
        w = 0.8 / k
        x = np.arange(len(groups))
        for j, (name, vals) in enumerate(series.items()):
            ax.bar(x - 0.4 + w * (j + 0.5), np.asarray(vals, float), w, label=name, color=f"C{j % 10}")
        for j, (name, vals) in enumerate((p.get("references") or {}).items()):
            ax.hlines(np.asarray(vals, float), x - 0.45, x + 0.45, colors="k", linestyles=["--", ":", "-."][j % 3],
                      label=name)
        ax.set_xticks(x, groups, fontsize=8)
        finite = [v for vals in [*series.values(), *(p.get("references") or {}).values()] for v in vals
                  if v is not None and np.isfinite(v)]
        if finite:  # the range of the numbers (bars start at the bottom of the axis)
            lo, hi = min(finite), max(finite)
            pad = max(0.05 * (hi - lo), 0.02)
            ax.set_ylim(lo - 4 * pad if lo - 4 * pad > 0 or lo < 0 else 0.0, hi + pad)
        ax.set(title=p.get("title", ""), ylabel=ylabel)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path, title=title)


def plot_prediction(df: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Plot the target columns of a prediction frame (``time`` + one column per target, e.g. from
    :func:`affectflow.inference.media.predict_media` or a stream; ``<target>_label`` columns are drawn with their
    target) to a PNG, one panel per target; return ``path``."""
    plt = _pyplot()
    targets, pred_col, label_col = split_prediction_columns(list(df.columns))
    fig, axes = plt.subplots(len(targets), 1, figsize=(8, 2.2 * len(targets)), squeeze=False, sharex=True)
    for ax, t in zip(axes[:, 0], targets):
        if t in label_col:
            ax.plot(df["time"], df[label_col[t]], color="0.3", lw=1)
        ax.plot(df["time"], df[pred_col[t]], color="C1", lw=1.2)
        ax.set_ylabel(t)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        axes[0, 0].set_title(title, fontsize=9)
    return _save(fig, Path(path))
