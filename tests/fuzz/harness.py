"""A reusable fuzz harness for importers: mutate a valid source folder, import it, check the outcome.

The property every importer must have: **a clear affectflow error or a correct import — never a traceback and
never a partial corpus**. :func:`check_import` runs one import of a mutated copy of a template and asserts it:

- the import raises an :class:`~affectflow.errors.AffectflowError` (any other exception fails the test with its
  traceback), and then the output corpus does not exist (new corpus) or is byte-for-byte unchanged (existing one);
- or it returns, and the corpus opens and is consistent (:func:`check_corpus`: every table parses, ids are safe,
  every feature and label file reads, segment and clip labels name known recordings, ``media.csv`` and
  ``recordings.csv`` list the same ids), plus any importer-specific check;
- in both cases no staging folder (``.<name>.staging-*``) is left beside the output.

Reuse for a new importer takes a template folder and a few lines::

    from hypothesis import given
    from tests.fuzz.harness import FUZZ_SETTINGS, check_import, mutations

    @FUZZ_SETTINGS
    @given(muts=mutations(TEMPLATE_FILES))
    def test_fuzz_mer(template, muts):
        check_import(template, muts, lambda src, out: import_mer(src, out, progress=False))

where ``TEMPLATE_FILES`` are the template's files (paths relative to it) that the fuzzer may damage.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from collections import Counter

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from affectflow.corpus.corpus import Corpus
from affectflow.errors import AffectflowError
from affectflow.fsutil import SAFE_NAME as _SAFE_NAME

#: Deterministic, bounded and CI-friendly: the same examples on every run, no example database, no deadline.
FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

#: Cell values that break parsers and validators: blanks, text, huge and non-finite numbers, unsafe names,
#: delimiters, quotes, newlines, non-ASCII.
CELL_VALUES = st.one_of(
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e308", "-1e39", "1e-320", "0x1F", "../x", "/etc/x",
                     "a/b", ".hidden", ",", '"', "\n", "é", "\x00", "True", "None", "3.5", "-1", "999999999999999999999"]),
    st.text(max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

#: Outcomes of :func:`check_import` per importer label, e.g. ``{("muse", "ok"): 12, ("muse", "error"): 28}``.
OUTCOMES: Counter = Counter()

KINDS = ("truncate", "flip_bytes", "insert_bytes", "delete", "empty", "non_utf8", "cell", "header", "drop_column",
         "duplicate_row", "drop_rows", "reverse_rows")


def mutations(files: Iterable[str], focus: Iterable[str] = (), max_mutations: int = 3) -> st.SearchStrategy:
    """A list of 1..``max_mutations`` mutations ``(file, kind, position, value, payload)`` of template files.

    ``focus`` files (index tables such as ``partition.csv`` or a manifest, which every recording depends on) are
    picked half of the time; the other half any of ``files`` is.
    """
    files = sorted(files)
    focus = sorted(focus)
    which = st.one_of(st.sampled_from(focus), st.sampled_from(files)) if focus else st.sampled_from(files)
    one = st.tuples(which, st.sampled_from(KINDS), st.integers(0, 2**31), CELL_VALUES,
                    st.binary(min_size=1, max_size=16))
    return st.lists(one, min_size=1, max_size=max_mutations)


def _rows(data: bytes) -> list[list[str]] | None:
    try:
        return list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error):
        return None


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8", errors="surrogatepass")


def apply_mutation(root: Path, mutation: tuple) -> None:
    """Apply one mutation to the file ``root / file`` (see :data:`KINDS`); row/column mutations on files that are
    not CSV text fall back to flipping bytes."""
    name, kind, pos, value, payload = mutation
    f = root / name
    if not f.is_file():
        return
    data = f.read_bytes()
    n = len(data)
    if kind == "delete":
        f.unlink()
        return
    if kind == "empty":
        data = b""
    elif kind == "truncate":
        data = data[: pos % (n + 1)]
    elif kind == "non_utf8":
        k = pos % (n + 1)
        data = data[:k] + b"\xff\xfe\xc3" + data[k:]
    elif kind == "insert_bytes":
        k = pos % (n + 1)
        data = data[:k] + payload + data[k:]
    elif kind == "flip_bytes" or _rows(data) is None or not _rows(data):
        if n:
            k = pos % n
            data = data[:k] + bytes(b ^ 0xA5 for b in payload[: n - k]) + data[k + len(payload):]
    else:
        rows = _rows(data)
        width = max(len(r) for r in rows) or 1
        r, c = pos % len(rows), (pos // 7) % width
        if kind == "cell" and len(rows) > 1:
            r = 1 + pos % (len(rows) - 1)  # a data cell
            while len(rows[r]) <= c:
                rows[r].append("")
            rows[r][c] = value
        elif kind == "header" or kind == "cell":
            while len(rows[0]) <= c:
                rows[0].append("")
            rows[0][c] = value
        elif kind == "drop_column":
            rows = [row[:c] + row[c + 1:] for row in rows]
        elif kind == "duplicate_row":
            rows.insert(r, list(rows[r]))
        elif kind == "drop_rows":
            rows = rows[: max(1, r)]
        elif kind == "reverse_rows":
            rows = rows[:1] + rows[1:][::-1]
        data = _csv_bytes(rows)
    f.write_bytes(data)


def _digest(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_corpus(path: Path) -> Corpus:
    """Open a corpus and read every table and file it lists; assert that it is consistent. Returns it."""
    corpus = Corpus(path)
    rec = corpus.recordings
    ids = rec["id"].tolist()
    assert len(ids) > 0, "an import that succeeds makes at least one recording"
    assert all(_SAFE_NAME.match(i) for i in ids) and rec["partition"].notna().all()
    assert np.isfinite(rec["duration"].astype(float)).all()
    for name, info in corpus.feature_sets.items():
        for rid in ids:
            if corpus.has_features(name, rid):
                fr = corpus.read_features(name, rid)
                assert list(fr.columns) == ["time", *info.columns]
                t = fr["time"].to_numpy()
                assert np.isfinite(t).all() and (np.diff(t) > 0).all()
                assert not np.isinf(fr[info.columns].to_numpy(np.float64)).any()
        stray = set(corpus.feature_recordings(name)) - set(ids)  # per-recording files or a packed set's index
        assert not stray, f"feature files of unknown recordings: {sorted(stray)[:5]}"
    for ls in corpus.label_sets:
        for rid in ids:
            corpus.read_labels(rid, ls)
    for table in (corpus.segments(), corpus.clips()):
        if table is not None:
            assert set(table["recording"].astype(str)) <= set(ids)
    if (corpus.path / "media.csv").is_file():
        from affectflow.corpus.media import media_recordings, read_media_table

        assert set(read_media_table(corpus)["id"]) == set(ids)
        media_recordings(corpus)
    corpus.summary()
    return corpus


def check_import(
    template: Path,
    muts: list[tuple],
    do_import: Callable[[Path, Path], Any],
    *,
    existing: Path | None = None,
    check: Callable[[Corpus, Any], None] | None = None,
    label: str = "",
) -> str:
    """Copy ``template``, apply ``muts``, run ``do_import(source, out)`` and assert the fuzz property.

    Parameters
    ----------
    template:
        A valid source folder (left untouched).
    muts:
        Mutations from :func:`mutations`.
    do_import:
        ``(source folder, output corpus folder) -> result``.
    existing:
        A corpus to import into (copied first) instead of a new one; on an error it must stay unchanged.
    check:
        Importer-specific check ``(corpus, result)`` after a successful import.
    label:
        Name under which the outcome is counted in :data:`OUTCOMES`.

    Returns
    -------
    str
        ``"ok"`` or ``"error"`` (to tally outcomes).
    """
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        src = work / "src"
        shutil.copytree(template, src)
        for m in muts:
            apply_mutation(src, m)
        out = work / "out" / "corpus"
        out.parent.mkdir()
        if existing is not None:
            shutil.copytree(existing, out)
        before = _digest(out)
        try:
            result = do_import(src, out)
        except AffectflowError as e:
            assert str(e).strip(), "an affectflow error has a message"
            if existing is None:
                assert not out.exists(), f"a failed import left a corpus behind: {sorted(_digest(out))[:5]}"
            else:
                assert _digest(out) == before, "a failed import changed the existing corpus"
            outcome = "error"
        else:
            corpus = check_corpus(out)
            if check is not None:
                check(corpus, result)
            outcome = "ok"
        left = [p.name for p in out.parent.iterdir() if ".staging-" in p.name]
        assert not left, f"staging folders left behind: {left}"
        OUTCOMES[(label, outcome)] += 1
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)
