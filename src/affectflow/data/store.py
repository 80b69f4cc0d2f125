"""Recordings as aligned, lazily read arrays on the label grid.

:class:`SequenceStore` is the one place where feature sets are aligned to the label grid (see
:mod:`affectflow.data.align`). Aligned arrays are cached as ``.npy`` files under the corpus ``cache/`` folder,
keyed by the source file's size and modification time, and read **by byte offset** for each window, so a corpus
far larger than memory trains with bounded memory (only the windows of the current batch are in RAM).

A **packed** feature set (:mod:`affectflow.corpus.packed`: the clip corpora of ``import-mer``) is aligned into one
cache array per set and store instead, ``cache/aligned/<set>/packed.<key>.npy`` of shape ``(Σ T, D)`` (the
store's recordings one after another; the key covers the set's generation and every recording's id and grid), so a
100 000-clip corpus makes one cache file per set, not 100 000; each recording reads its rows from its offset.

Raw pixel sets (a feature set whose info says ``storage: uint8``, e.g. ``face_crops``: values ``v / 255``) are
cached as uint8 ``(T, D + 1)`` arrays, the last column 1 where the step has a frame and 0 where it is missing
(NaN), and read back as float32 ``v / 255`` (exact): 4x less disk and read traffic than float32, which is what lets
a backbone train on hours of 48x48 RGB crops from disk with only the current batch in memory.

Axes: time steps ``T`` (label grid), feature columns ``D`` of one set, targets ``K``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from affectflow.corpus.corpus import TIME, Corpus
from affectflow.data.align import align_many, align_to_grid, grid_step, regular_grid
from affectflow.errors import CorpusError
from affectflow.fsutil import atomic_write
from affectflow.progress import progress_bar

ALIGN_VERSION = 2
#: Frames per block when a raw pixel set is aligned into the uint8 cache.
ALIGN_BLOCK = 2048


@dataclass
class RecordingIndex:
    """One recording of a :class:`SequenceStore`.

    Attributes
    ----------
    id, subject, partition:
        From the corpus recordings table.
    times:
        Shape ``(T,)``: the label grid in seconds.
    y:
        Shape ``(T, K)`` float32 labels of the selected targets, NaN where not annotated; ``None`` if unlabelled.
    arrays:
        Feature set → path of the aligned ``(T, D)`` float32 ``.npy`` (NaN = missing), or ``None`` if the recording
        has no frames of that set (all steps missing).
    offsets:
        Feature set → row of the recording's first step in ``arrays[set]`` when that file holds many recordings (a
        packed set's cache); absent = the file is the recording's own (row 0).
    """

    id: str
    subject: str
    partition: str
    times: np.ndarray
    y: np.ndarray | None
    arrays: dict[str, Path | None] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)

    @property
    def length(self) -> int:
        """Number of steps ``T``."""
        return len(self.times)


def is_uint8_set(info) -> bool:
    """Whether a feature set (:class:`~affectflow.corpus.corpus.FeatureSetInfo`) holds raw pixels in [0, 1] that are
    cached as uint8 (its ``params`` say ``storage: uint8``)."""
    return (info.params or {}).get("storage") == "uint8"


def _to_uint8(aligned: np.ndarray) -> np.ndarray:
    """``(T, D)`` float in [0, 1] (NaN = missing) → ``(T, D + 1)`` uint8, last column = step has values."""
    finite = np.isfinite(aligned)
    valid = finite.any(1)
    q = np.clip(np.rint(np.where(finite, aligned, 0.0) * 255.0), 0, 255).astype(np.uint8)
    return np.concatenate([q, valid[:, None].astype(np.uint8)], axis=1)


def _npy_data_offset(path: Path, dtype=np.float32) -> tuple[int, tuple[int, ...]]:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, found = reader(f)
        if fortran or found != dtype:
            raise CorpusError(f"Cached array {path} has an unexpected layout; delete the corpus cache/ folder.")
        return f.tell(), shape


class SequenceStore:
    """Aligned features and labels of a list of recordings, read lazily.

    Parameters
    ----------
    corpus:
        The corpus.
    feature_sets:
        Names of the feature sets to use (early fusion concatenates them in this order).
    targets:
        Label dimensions to predict (columns of the label set); may be empty for prediction only.
    recordings:
        Recording ids.
    label_set:
        Continuous label set that defines the time grid and the targets.
    cache_dir:
        Where aligned arrays are cached (default: ``<corpus>/cache/aligned``).
    progress:
        Show a progress bar while aligning.
    grid_rate_hz:
        Rate (Hz) of the time grid of recordings without labels (e.g. the label rate of the run that predicts
        them): ``t_k = k / rate``, ``k = 0 .. floor(duration * rate) - 1``. Default: the corpus ``label_rate_hz``.
        A recording with its own rate in ``recordings.csv`` (column ``label_rate_hz``, e.g. each Aff-Wild2 video's
        frame rate) always uses that one.
        When given (prediction), a corpus without the label set at all is fine: every recording is then unlabelled
        (``y`` is ``None``); without it, a missing label set is an error (training and evaluation need labels).
    """

    def __init__(
        self,
        corpus: Corpus,
        feature_sets: list[str],
        targets: list[str],
        recordings: list[str],
        *,
        label_set: str = "continuous",
        cache_dir: str | os.PathLike | None = None,
        progress: bool = False,
        grid_rate_hz: float | None = None,
    ) -> None:
        self.corpus = corpus
        self.grid_rate_hz = grid_rate_hz
        self.feature_sets = list(feature_sets)
        self.targets = list(targets)
        self.label_set = label_set
        self.infos = {name: corpus.feature_set(name) for name in self.feature_sets}
        self.dims = {name: info.dim for name, info in self.infos.items()}
        self.uint8_sets = {name for name, info in self.infos.items() if is_uint8_set(info)}
        if self.targets and (grid_rate_hz is None or label_set in corpus.label_sets):
            dims = corpus.label_set(label_set).dims
            bad = [t for t in self.targets if t not in dims]
            if bad:
                raise CorpusError(f"Targets {bad} are not in label set {label_set!r}; it has {dims}.")
        self.cache_dir = Path(cache_dir) if cache_dir else corpus.cache_dir() / "aligned"
        self.records: list[RecordingIndex] = []
        self._offsets: dict[Path, tuple[int, tuple[int, ...]]] = {}
        self._maps: dict[Path, np.ndarray] = {}
        self._has_label_set: bool | None = None
        # the recordings-table fields every recording needs, read once (a pandas row per recording costs ~1 ms)
        table = corpus.recordings
        rates = table["label_rate_hz"].tolist() if "label_rate_hz" in table.columns else [None] * len(table)
        self._rows = {rid: (subject, part, float(dur), float(r) if r is not None and pd.notna(r) and float(r) > 0
                            else None)
                      for rid, subject, part, dur, r in zip(table["id"].tolist(), table["subject"].tolist(),
                                                            table["partition"].tolist(), table["duration"].tolist(),
                                                            rates)}
        self.packed_sets = [name for name in self.feature_sets if corpus.packed_features(name) is not None]
        it = progress_bar(recordings, desc="aligning", unit="rec", disable=not progress)
        for rid in it:
            self.records.append(self._index(rid))
        for name in self.packed_sets:
            self._align_packed(name, progress)

    # ------------------------------------------------------------------ building
    def _grid_and_labels(self, rid: str) -> tuple[np.ndarray, np.ndarray | None]:
        if self._has_label_set is None:  # looked up once per store (a folder scan), not once per recording
            self._has_label_set = self.label_set in self.corpus.label_sets
        labels = self.corpus.read_labels(rid, self.label_set) if self._has_label_set else None
        if labels is not None and len(labels):
            times = labels[TIME].to_numpy(np.float64)
            y = labels[self.targets].to_numpy(np.float32) if self.targets else None
            return times, y
        # a rate of the recording's own (recordings.csv label_rate_hz, e.g. an Aff-Wild2 video's fps) comes first,
        # then the rate asked for (the predicting run's label rate), then the corpus-wide label_rate_hz
        own = self._row(rid)[3]
        rate = own or self.grid_rate_hz or self.corpus.label_rate_hz
        if not rate:
            raise CorpusError(
                f"Recording {rid!r} has no labels and the corpus sets no label_rate_hz, so its time grid is unknown."
            )
        duration = self._row(rid)[2]
        return regular_grid(duration, rate), None

    def _row(self, rid: str) -> tuple:
        """``(subject, partition, duration s, own label rate Hz or None)`` of ``rid`` from the recordings table."""
        row = self._rows.get(rid)
        if row is None:
            self.corpus.recording(rid)  # raises the "not in corpus" error
        return row

    def _index(self, rid: str) -> RecordingIndex:
        subject, partition = self._row(rid)[:2]
        times, y = self._grid_and_labels(rid)
        grid_key = hashlib.sha256(np.ascontiguousarray(times).tobytes()).hexdigest()[:12]
        arrays: dict[str, Path | None] = {}
        for name in self.feature_sets:
            if name in self.packed_sets:
                arrays[name] = None  # set by _align_packed once every recording's grid is known
                continue
            src = self.corpus.feature_file(name, rid)
            if not src.is_file():
                arrays[name] = None
                continue
            st = src.stat()
            kind = "|u8" if name in self.uint8_sets else ""
            key = hashlib.sha256(
                f"{ALIGN_VERSION}|{st.st_size}|{st.st_mtime_ns}|{grid_key}{kind}".encode()).hexdigest()[:16]
            dst = self.cache_dir / name / f"{rid}.{key}.npy"
            if not dst.is_file():
                self._align_one(name, rid, src, times, dst)
            arrays[name] = dst
        return RecordingIndex(rid, str(subject), str(partition), times, y, arrays)

    def _align_packed(self, name: str, progress: bool) -> None:
        """Align packed set ``name`` for every recording of the store into one cache array (see the module docstring)."""
        packed = self.corpus.packed_features(name)
        info = self.infos[name]
        u8 = name in self.uint8_sets
        members = [rec for rec in self.records if rec.id in packed]
        h = hashlib.sha256(f"{ALIGN_VERSION}|packed|{packed.generation}|{'u8' if u8 else 'f32'}".encode())
        for rec in members:
            h.update(rec.id.encode() + b"\0")
            h.update(np.ascontiguousarray(rec.times, dtype=np.float64).tobytes())
        dst = self.cache_dir / name / f"packed.{h.hexdigest()[:16]}.npy"
        offsets = np.concatenate([[0], np.cumsum([rec.length for rec in members], dtype=np.int64)])
        width = info.dim + 1 if u8 else info.dim
        if not dst.is_file():
            def write(p: Path) -> None:
                dtype = np.uint8 if u8 else np.float32
                if offsets[-1] == 0:
                    with open(p, "wb") as f:
                        np.save(f, np.zeros((0, width), dtype), allow_pickle=False)
                    return
                out = np.lib.format.open_memmap(p, mode="w+", dtype=dtype, shape=(int(offsets[-1]), width))
                # clips that share frame times and grid are aligned together (align_many: the index work once)
                times_all, values_all = packed.times, packed.values
                locs = [packed.locate(rec.id) for rec in members]
                groups: dict[tuple[int, bytes, bytes], list[int]] = {}
                for k, (rec, (s0, n)) in enumerate(zip(members, locs)):
                    key = (n, times_all[s0:s0 + n].tobytes(), np.ascontiguousarray(rec.times, np.float64).tobytes())
                    groups.setdefault(key, []).append(k)
                period = (1.0 / info.rate_hz) if info.rate_hz else None
                with progress_bar(total=len(members), desc=f"aligning {name}", unit="rec", disable=not progress) as bar:
                    for (n, tb, gb), ks in groups.items():
                        ft, grid = np.frombuffer(tb, np.float64), np.frombuffer(gb, np.float64)
                        per = max(1, int(64e6 // max(1, (n + len(grid)) * info.dim * 4)))  # ~64 MB per chunk
                        for c in range(0, len(ks), per):
                            chunk = np.asarray(ks[c:c + per])
                            starts = np.asarray([locs[k][0] for k in chunk], np.int64)
                            aligned = align_many(ft, values_all[starts[:, None] + np.arange(n)], grid,
                                                 frame_period=period)
                            if u8:
                                aligned = np.stack([_to_uint8(a) for a in aligned])
                            out[offsets[chunk][:, None] + np.arange(len(grid))] = aligned
                            bar.update(len(chunk))
                out.flush()
                del out

            atomic_write(dst, write)
        for rec, off in zip(members, offsets):
            rec.arrays[name] = dst
            rec.offsets[name] = int(off)

    def _align_one(self, name: str, rid: str, src: Path, grid: np.ndarray, dst: Path) -> None:
        if name in self.uint8_sets:
            self._align_uint8_blocks(name, rid, src, grid, dst)
            return
        frames = self.corpus.read_features(name, rid)
        info = self.infos[name]
        values = frames[info.columns].to_numpy(np.float32)
        aligned = align_to_grid(
            frames[TIME].to_numpy(np.float64),
            values,
            grid,
            frame_period=(1.0 / info.rate_hz) if info.rate_hz else None,
        )
        if name in self.uint8_sets:
            aligned = _to_uint8(aligned)
        for old in dst.parent.glob(f"{rid}.*.npy"):
            old.unlink(missing_ok=True)
        def write(p: Path) -> None:
            with open(p, "wb") as f:  # a file object: np.save would append ".npy" to a path
                np.save(f, aligned, allow_pickle=False)

        atomic_write(dst, write)

    def _align_uint8_blocks(self, name: str, rid: str, src: Path, grid: np.ndarray, dst: Path,
                            block: int = ALIGN_BLOCK) -> None:
        """:meth:`_align_one` for a raw pixel set in bounded memory: the frames are read ``block`` rows at a time
        (Parquet record batches), each finished stretch of the grid is aligned by :func:`align_to_grid` with the
        whole grid's step and the set's frame period (so every value equals the one-pass alignment) and written as
        uint8 into the memory-mapped cache file; at most one block plus the frames near a stretch's edge are in
        memory, never the recording."""
        info = self.infos[name]
        try:
            pf = pq.ParquetFile(src)
            times = pf.read(columns=[TIME]).column(0).to_numpy().astype(np.float64)
        except Exception as e:  # noqa: BLE001 - an unreadable file is a corpus error with its reason
            raise CorpusError(f"Frames of feature set {name!r}, recording {rid!r}: cannot read {src} "
                              f"({type(e).__name__}: {e}).") from None
        h = grid_step(grid, default=grid_step(times))
        p = (1.0 / info.rate_hz) if info.rate_hz else grid_step(times, default=h)
        margin = h / 2 + p + 1e-6
        for old in dst.parent.glob(f"{rid}.*.npy"):
            old.unlink(missing_ok=True)

        def write(path: Path) -> None:
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(grid), info.dim + 1))
            buf_t = np.empty(0, np.float64)
            buf_v = np.empty((0, info.dim), np.float32)
            done, pos = 0, 0

            def finish(upto: int) -> None:
                nonlocal done
                if upto > done:
                    out[done:upto] = _to_uint8(align_to_grid(buf_t, buf_v, grid[done:upto], frame_period=p,
                                                             grid_period=h))
                    done = upto

            for batch in pf.iter_batches(batch_size=block, columns=info.columns):
                v = np.column_stack([c.to_numpy(zero_copy_only=False) for c in batch.columns]).astype(np.float32)
                t = times[pos: pos + len(v)]
                pos += len(v)
                buf_t, buf_v = np.concatenate([buf_t, t]), np.concatenate([buf_v, v])
                # grid steps whose frames (and nearest frames) all lie before the last frame read are final
                finish(int(np.searchsorted(grid, buf_t[-1] - margin, side="right")))
                keep = buf_t >= (grid[done] - margin if done < len(grid) else np.inf)
                buf_t, buf_v = buf_t[keep], buf_v[keep]
            finish(len(grid))
            out.flush()
            del out

        atomic_write(dst, write)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.records)

    def read(self, i: int, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Raw aligned features of recording ``i``, steps ``start:stop``: set → ``(L, D)`` float32 with NaN."""
        rec = self.records[i]
        stop = rec.length if stop is None else min(stop, rec.length)
        n = max(stop - start, 0)
        out = {}
        for name, path in rec.arrays.items():
            d = self.dims[name]
            if path is None:
                out[name] = np.full((n, d), np.nan, dtype=np.float32)
                continue
            u8 = name in self.uint8_sets
            width, item = (d + 1, 1) if u8 else (d, 4)
            if path not in self._offsets:
                self._offsets[path] = _npy_data_offset(path, np.uint8 if u8 else np.float32)
            offset, shape = self._offsets[path]
            row0 = rec.offsets.get(name)
            if row0 is None and shape != (rec.length, width):
                raise CorpusError(
                    f"Cached array {path} has shape {shape}, expected {(rec.length, width)}; delete cache/.")
            if row0 is not None and (len(shape) != 2 or shape[1] != width or row0 + rec.length > shape[0]):
                raise CorpusError(f"Cached array {path} has shape {shape}, too small for recording {rec.id!r} "
                                  f"(rows {row0}..{row0 + rec.length}, width {width}); delete cache/.")
            dtype = np.uint8 if u8 else np.float32
            if row0 is not None:  # a packed cache shared by many recordings: kept mapped, no open() per read
                mapped = self._maps.get(path)
                if mapped is None:
                    mapped = self._maps[path] = np.memmap(path, dtype, "r", offset=offset, shape=shape)
                block = np.asarray(mapped[row0 + start:row0 + start + n])
            else:
                with open(path, "rb") as f:
                    f.seek(offset + start * width * item)
                    block = np.frombuffer(f.read(n * width * item), dtype=dtype).reshape(n, width)
            if u8:
                v = block[:, :d].astype(np.float32) / np.float32(255.0)
                v[block[:, d] == 0] = np.nan
                out[name] = v
            else:
                out[name] = block.copy()
        return out

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_maps"] = {}  # memory maps are re-opened in a worker process, never pickled with their data
        return state

    def labels(self, i: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Labels of recording ``i``: ``(L, K)`` float32, NaN where missing (all NaN if unlabelled)."""
        rec = self.records[i]
        stop = rec.length if stop is None else min(stop, rec.length)
        if rec.y is None:
            return np.full((max(stop - start, 0), len(self.targets)), np.nan, dtype=np.float32)
        return rec.y[start:stop]

    def iter_blocks(self, i: int, block: int = 20000):
        """Yield ``read(i, s, s + block)`` over the whole recording (for streaming statistics)."""
        for s in range(0, self.records[i].length, block):
            yield self.read(i, s, s + block)
