"""Write a corpus in the MuSe challenge layout, to exercise the importer exactly as users' data would.

:func:`write_muse_task` exports a (synthetic) affectflow corpus as a MuSe task folder::

    <out>/metadata/partition.csv                 Id,Partition
    <out>/feature_segments/<set>/<Id>.csv        timestamp (ms), segment_id, <feature columns>
    <out>/label_segments/<dim>/<Id>.csv          timestamp (ms), value, segment_id
    <out>/label_segments/sentiment/<Id>.csv      segment_id, class_id    (style "2021-sent")

``style="2023"`` splits each recording into ``S_train`` (first 60 s), ``S_devel`` (next 60 s) and ``S_test`` (rest)
for the personalisation task; other styles keep one integer id per recording.

``keep_ids=True`` writes every recording under its own id and partition instead, e.g. a corpus generated with
``layout="personalisation"``, whose train / devel subjects are whole (``S000_rec``) and whose test subjects are
already cut into ``S_train`` / ``S_devel`` / ``S_test``: that is the MuSe 2023 ``c3_muse_personalisation`` layout
the public baseline code (EIHW/MuSe-2023) reads. ``dim_names`` renames label folders (the baseline expects
``physio-arousal`` and ``valence``: ``dim_names={"arousal": "physio-arousal"}``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affectflow.corpus.corpus import TIME, Corpus


def write_muse_task(corpus: Corpus, out: str | Path, *, style: str = "2022", features: list[str] | None = None,
                    label_dims: list[str] | None = None, segment_s: float = 10.0, keep_ids: bool = False,
                    dim_names: dict[str, str] | None = None) -> Path:
    """Export ``corpus`` (features on the label grid only) as a MuSe task folder; return its path.

    ``keep_ids``: ids and partitions as in ``corpus.recordings`` (``style`` then only matters for ``"2021-sent"``).
    ``dim_names``: corpus label dimension -> label folder name (default: the dimension's own name).
    """
    out = Path(out)
    dim_names = dim_names or {}
    features = features or [n for n, fs in corpus.feature_sets.items() if fs.rate_hz == corpus.label_rate_hz]
    dims = label_dims or corpus.label_set().dims
    ids, parts = [], []
    for k, rec in corpus.recordings.iterrows():
        labels = corpus.read_labels(rec["id"])
        frames = {n: corpus.read_features(n, rec["id"]) for n in features}
        if keep_ids:
            pieces = [(str(rec["id"]), rec["partition"], 0.0, np.inf)]
        elif style == "2023":
            pieces = [(f"{k}_train", "train", 0.0, 60.0), (f"{k}_devel", "devel", 60.0, 120.0),
                      (f"{k}_test", "test", 120.0, np.inf)]
        else:
            pieces = [(str(k), rec["partition"], 0.0, np.inf)]
        for mid, part, lo, hi in pieces:
            ids.append(mid)
            parts.append(part)
            sel_l = (labels[TIME] >= lo) & (labels[TIME] < hi)
            ts_ms = np.round(labels.loc[sel_l, TIME].to_numpy() * 1000).astype(np.int64)
            seg = (labels.loc[sel_l, TIME].to_numpy() // segment_s).astype(int)
            for dim in dims:
                f = out / "label_segments" / dim_names.get(dim, dim) / f"{mid}.csv"
                f.parent.mkdir(parents=True, exist_ok=True)
                pd.DataFrame({"timestamp": ts_ms, "value": labels.loc[sel_l, dim].to_numpy(), "segment_id": seg}).to_csv(f, index=False)
            if style == "2021-sent":
                f = out / "label_segments" / "sentiment" / f"{mid}.csv"
                f.parent.mkdir(parents=True, exist_ok=True)
                v = labels.loc[sel_l, "valence"].to_numpy()
                cls = [int(np.digitize(v[seg == s].mean(), [-0.45, -0.15, 0.15, 0.45])) for s in np.unique(seg)]
                pd.DataFrame({"segment_id": np.unique(seg), "class_id": cls}).to_csv(f, index=False)
            for n, fr in frames.items():
                sel = (fr[TIME] >= lo) & (fr[TIME] < hi)
                t = fr.loc[sel, TIME].to_numpy()
                df = pd.DataFrame({"timestamp": np.round(t * 1000).astype(np.int64), "segment_id": (t // segment_s).astype(int)})
                df = pd.concat([df, fr.loc[sel].drop(columns=[TIME]).reset_index(drop=True)], axis=1)
                f = out / "feature_segments" / n / f"{mid}.csv"
                f.parent.mkdir(parents=True, exist_ok=True)
                df.to_csv(f, index=False)
    (out / "metadata").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"Id": ids, "Partition": parts}).to_csv(out / "metadata" / "partition.csv", index=False)
    return out
