"""``affectflow upgrade``: convert the feature sets of an older clip corpus to the packed store.

Which sets are converted (the rule of :mod:`affectflow.corpus.corpus`): in a **clip corpus** (it has
``labels/clips.csv`` and no continuous label set, as ``import-mer`` makes) every feature set still stored as one
Parquet file per recording; elsewhere (long recordings: MuSe, Aff-Wild2, media corpora) nothing, unless sets are
named explicitly (``feature_sets``). Per set the conversion is atomic and resumable
(:meth:`~affectflow.corpus.corpus.Corpus.pack_feature_set`): until the set's ``packed.json`` is committed its files
are the set; after it, the packed arrays are, and an interrupted upgrade run again finishes the job. Per-recording
aligned caches of converted sets (``cache/aligned/<set>/<rid>.*.npy``) are deleted (they would be rebuilt
packed). A report goes to ``reports/upgrade-<UTC time>.json``.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from affectflow.corpus.corpus import Corpus
from affectflow.errors import CorpusError
from affectflow.progress import progress_bar


def is_clip_corpus(corpus: Corpus) -> bool:
    """Whether ``corpus`` is a clip corpus: ``labels/clips.csv`` and no continuous label set."""
    return (corpus.path / "labels" / "clips.csv").is_file() and not corpus.label_sets


def _size(files: list[Path]) -> int:
    return sum(f.stat().st_size for f in files if f.is_file())


def upgrade_corpus(path: str | os.PathLike, *, feature_sets: list[str] | None = None, dry_run: bool = False,
                   progress: bool = True) -> dict[str, Any]:
    """Pack the per-recording feature sets of the corpus at ``path`` (see the module docstring).

    Parameters
    ----------
    path:
        The corpus folder.
    feature_sets:
        Sets to pack whatever the corpus kind (default: the rule above).
    dry_run:
        Only report what would be done.
    progress:
        Progress per set (:mod:`affectflow.progress`).

    Returns
    -------
    dict
        ``{"corpus", "dry_run", "clip_corpus", "sets": [{"set", "status", "recordings", "files", "bytes_before",
        "bytes_after"}, ...], "report"}``; ``status`` is ``packed``, ``would pack``, ``already packed`` or
        ``skipped (...)``.
    """
    corpus = Corpus(path)
    sets = corpus.feature_sets
    clip = is_clip_corpus(corpus)
    if feature_sets is not None:
        bad = [s for s in feature_sets if s not in sets]
        if bad:
            raise CorpusError(f"Feature sets {bad} are not in corpus {str(corpus.path)!r}; it has {sorted(sets)}.")
        chosen = list(feature_sets)
    else:
        chosen = sorted(sets) if clip else []
    out: dict[str, Any] = {"corpus": str(corpus.path), "dry_run": dry_run, "clip_corpus": clip, "sets": []}
    for name in sorted(sets):
        ids = corpus.file_recordings(name)
        files = [corpus.feature_file(name, r) for r in ids]
        entry: dict[str, Any] = {"set": name, "files": len(files), "bytes_before": _size(files)}
        packed = corpus.packed_features(name)
        if name not in chosen:
            entry["status"] = ("already packed" if packed is not None else
                               "skipped (not a clip corpus: long recordings keep one file per recording)")
            out["sets"].append(entry)
            continue
        if dry_run:
            entry["status"] = "already packed" if packed is not None and not files else "would pack"
            entry["recordings"] = len(packed) if packed is not None else len(ids)
            out["sets"].append(entry)
            continue
        bar = progress_bar(desc=f"packing {name}", total=len(ids), unit="recordings",
                           disable=not progress or (packed is not None and not ids))
        with bar:
            done = corpus.pack_feature_set(name, progress=lambda _rid: bar.update(1))
        packed = corpus.packed_features(name)
        entry.update(status=done["status"], recordings=len(packed),
                     bytes_after=_size([packed.files[k] for k in ("values", "times", "index")]))
        cache = corpus.cache_dir() / "aligned" / name
        if cache.is_dir():
            stale = [f for f in cache.glob("*.npy") if not f.name.startswith("packed.")]
            for f in stale:
                f.unlink(missing_ok=True)
            entry["cache_files_removed"] = len(stale)
        out["sets"].append(entry)
    if not dry_run:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        out["report"] = str(corpus.write_report(f"upgrade-{stamp}", out))
    return out


def describe_upgrade(result: dict[str, Any]) -> str:
    """A few lines for the terminal: one per feature set."""
    head = "Would upgrade" if result["dry_run"] else "Upgraded"
    lines = [f"{head} corpus {result['corpus']} ({'clip corpus' if result['clip_corpus'] else 'not a clip corpus'}):"]
    for e in result["sets"]:
        size = ""
        if e.get("bytes_after") is not None:
            size = f", {e['bytes_before'] / 1e6:.1f} MB in {e['files']} files -> {e['bytes_after'] / 1e6:.1f} MB in 3"
        elif e["files"]:
            size = f", {e['bytes_before'] / 1e6:.1f} MB in {e['files']} files"
        rec = f", {e['recordings']} recordings" if "recordings" in e else ""
        lines.append(f"  {e['set']}: {e['status']}{rec}{size}")
    if result.get("report"):
        lines.append(f"Report: {result['report']}")
    return "\n".join(lines)
