"""Subject-disjoint folds as partition maps (no feature data is copied).

A fold is a view of a corpus: a ``{recording id: partition}`` mapping written as a partition map CSV and named by
``data.partitions`` in a run's config (see :class:`affectflow.corpus.corpus.Corpus`). Two kinds are made here:

* :func:`cv_folds` — k-fold cross-validation over the train + devel recordings (ABAW5 paper, 3.3): fold 0 is the
  corpus's own split; the subjects of the train partitions are shuffled with ``seed`` and split into ``k − 1``
  groups of (as nearly as possible) equal subject counts, and fold ``i ≥ 1`` takes group ``i`` as its devel
  partition and everything else (including the original devel subjects) as train. With ``keep_original=False``
  all train + devel subjects are split into ``k`` groups; leave-one-subject-out is ``k =`` number of subjects.
* :func:`subject_groups` — the K subject groups of a set of recordings used for cross-fitting.

Test partitions are never touched. No subject is ever on both sides of a fold (checked, and tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from affectflow.corpus.corpus import Corpus
from affectflow.errors import ConfigError, CorpusError


@dataclass
class Fold:
    """One fold: its index, devel and train subjects, and the recordings' partitions."""

    index: int
    devel_subjects: list[str]
    train_subjects: list[str]
    mapping: dict[str, str] = field(default_factory=dict)
    devel_partition: str = "devel"
    train_partition: str = "train"

    def to_dict(self) -> dict:
        """Plain summary (subjects and recording counts per side)."""
        n_dev = sum(p == self.devel_partition for p in self.mapping.values())
        n_train = sum(p == self.train_partition for p in self.mapping.values())
        return {"fold": self.index, "devel_subjects": self.devel_subjects, "train_subjects": self.train_subjects,
                "n_devel_recordings": n_dev, "n_train_recordings": n_train}


def subject_groups(subjects: list[str], k: int, seed: int) -> list[list[str]]:
    """Shuffle the distinct ``subjects`` with ``seed`` and split them into ``k`` groups of equal size (±1).

    Each group is returned sorted; the same subjects, ``k`` and ``seed`` always give the same groups.
    """
    uniq = sorted(set(subjects))
    if k < 2 or k > len(uniq):
        raise ConfigError(f"Cannot split {len(uniq)} subjects into {k} subject-disjoint groups (need 2 <= k <= "
                          f"{len(uniq)}).")
    order = np.random.default_rng(seed).permutation(len(uniq))
    return [sorted(uniq[i] for i in part) for part in np.array_split(order, k)]


def cv_folds(corpus: Corpus, k: int, seed: int = 0, *, train_partitions: list[str] | None = None,
             devel_partition: str = "devel", keep_original: bool = True, loso: bool = False) -> list[Fold]:
    """The folds of a subject-disjoint k-fold cross-validation (see the module docstring).

    Parameters
    ----------
    corpus:
        The corpus (its own partitions: the partition map of the config is not applied here).
    k:
        Number of folds (ignored with ``loso``: one fold per subject).
    seed:
        Seed of the subject shuffle.
    train_partitions, devel_partition:
        The partitions pooled for the folds (default ``["train"]`` and ``"devel"``); the fold maps use
        ``train_partitions[0]`` and ``devel_partition`` as names.
    keep_original:
        Fold 0 is the corpus's own split (needs train and devel to share no subject).
    loso:
        Leave one subject out: ``k`` = number of train + devel subjects, fold ``i`` holds out the ``i``-th subject
        (sorted order); implies ``keep_original=False``.
    """
    train_partitions = train_partitions or ["train"]
    rec = corpus.recordings
    pool = rec[rec["partition"].isin([*train_partitions, devel_partition])]
    if pool.empty:
        raise CorpusError(f"Corpus {str(corpus.path)!r} has no recordings in {[*train_partitions, devel_partition]}.")
    subj_of = dict(zip(pool["id"], pool["subject"]))
    train_name = train_partitions[0]
    dev_subj = sorted(set(pool.loc[pool["partition"] == devel_partition, "subject"]))
    tr_subj = sorted(set(pool.loc[pool["partition"] != devel_partition, "subject"]))
    if loso:
        groups = [[s] for s in sorted(set(pool["subject"]))]
        if len(groups) < 2:
            raise CorpusError("Leave-one-subject-out needs at least 2 train + devel subjects.")
    elif keep_original:
        both = sorted(set(dev_subj) & set(tr_subj))
        if both:
            raise CorpusError(
                f"The corpus's own split is not subject-disjoint: subjects {both[:10]} have recordings in both "
                f"{train_partitions} and {devel_partition!r}, so it cannot be fold 0 of a subject-disjoint "
                "cross-validation. Re-split all subjects instead (keep_original=False, `affectflow cv --resplit`)."
            )
        if not dev_subj:
            raise CorpusError(f"Partition {devel_partition!r} has no recordings: fold 0 would have no devel data.")
        if k < 2:
            raise ConfigError(f"Cross-validation needs k >= 2 folds, got {k}.")
        groups = [dev_subj, *subject_groups(tr_subj, k - 1, seed)] if k > 1 else [dev_subj]
    else:
        groups = subject_groups(sorted(set(pool["subject"])), k, seed)
    folds = []
    for i, held in enumerate(groups):
        held_set = set(held)
        mapping = {rid: (devel_partition if s in held_set else train_name) for rid, s in subj_of.items()}
        train_s = sorted({s for s in subj_of.values() if s not in held_set})
        folds.append(Fold(i, sorted(held), train_s, mapping, devel_partition, train_name))
    return folds
