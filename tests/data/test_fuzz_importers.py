"""Fuzzing the Aff-Wild2 and MER importers with hypothesis: any input gives either a correct import or a clear
affectflow error: never a traceback, never a partial corpus."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectflow.corpus.affwild2 import import_affwild2
from affectflow.corpus.mer import import_mer
from affectflow.errors import AffectflowError

# Deterministic in CI: the same examples on every run, no example database.
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

number = st.one_of(
    st.floats(-1, 1, allow_nan=False).map(lambda x: f"{x:.3f}"),
    st.just("-5"), st.just("-5.0"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789.-e,x ", max_size=6),
)
line = st.tuples(number, number).map(lambda t: f"{t[0]},{t[1]}")
header = st.sampled_from(["valence,arousal", "Valence, Arousal", "arousal,valence", "", "valence"])
annotation = st.tuples(header, st.lists(line, max_size=12)).map(lambda t: "\n".join([t[0], *t[1]]))


def _check_outcome(run, out: Path):
    try:
        result = run()
    except AffectflowError as e:
        assert str(e)  # a message, no traceback
        assert not out.exists()
        assert not [p for p in out.parent.iterdir() if ".staging-" in p.name]  # nothing half-written
        return None
    assert (out / "corpus.json").is_file() and (out / "recordings.csv").is_file()
    return result


def _parse_expected(text: str):
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or [c.strip().lower() for c in lines[0].split(",")] != ["valence", "arousal"] or len(lines) < 2:
        return None
    vals = []
    for ln in lines[1:]:
        parts = ln.split(",")
        try:
            if len(parts) != 2:
                return None
            v = [float(parts[0]), float(parts[1])]
        except ValueError:
            return None
        for x in v:
            if not np.isfinite(x) or (x != -5 and not -1 <= x <= 1):
                return None
        vals.append([np.nan if x == -5 else x for x in v])
    return np.array(vals, dtype=np.float32)


@FUZZ
@given(texts=st.lists(annotation, min_size=1, max_size=3))
def test_affwild2_fuzz(texts):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "src"
        ann = root / "VA_Estimation_Challenge" / "Train_Set"
        ann.mkdir(parents=True)
        for k, t in enumerate(texts):
            (ann / f"v{k}.txt").write_text(t)
        out = Path(d) / "corpus"
        res = _check_outcome(lambda: import_affwild2(root, out, default_fps=10.0, face_source="none",
                                                     progress=False), out)
        expected = [_parse_expected(t) for t in texts]
        if res is None:
            assert any(e is None for e in expected)
            return
        corpus, _ = res
        for k, e in enumerate(expected):
            assert e is not None
            lab = corpus.read_labels(f"v{k}")
            np.testing.assert_array_equal(lab[["valence", "arousal"]].to_numpy(), e)
            np.testing.assert_allclose(lab["time"], np.arange(len(e)) / 10.0)


cell = st.one_of(st.sampled_from(["happy", "sad", "", "neutral", "x,y", '"q"']),
                 st.floats(-6, 6, allow_nan=False).map(lambda x: f"{x:.2f}"), st.text(max_size=4))
row = st.tuples(st.sampled_from(["a", "b", "c", "d", "", "e f", "a"]), cell, cell)
shape = st.sampled_from([(4,), (3, 4), (4, 3), (0,), (2,), ()])


@FUZZ
@given(rows=st.lists(row, min_size=1, max_size=6), shapes=st.lists(shape, min_size=1, max_size=6),
       header=st.sampled_from(["name,discrete,valence", "name,valence", "id,discrete,valence"]))
def test_mer_fuzz(rows, shapes, header):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "src"
        (root / "features" / "f").mkdir(parents=True)
        body = "\n".join(",".join(r) for r in rows)
        (root / "train-label.csv").write_text(header + "\n" + body + "\n")
        for k, r in enumerate(rows):
            if r[0].strip():
                np.save(root / "features" / "f" / f"{r[0].strip()}.npy", np.ones(shapes[k % len(shapes)], np.float32))
        out = Path(d) / "corpus"
        res = _check_outcome(lambda: import_mer(root, out, frame_rates={"f": 2.0}, progress=False), out)
        if res is None:
            return
        corpus, _ = res
        clips = corpus.clips()
        lab = pd.read_csv(root / "train-label.csv", dtype=str, keep_default_na=False)
        assert sorted(clips["recording"]) == sorted(lab.iloc[:, 0].str.strip())
        assert clips["valence"].dropna().between(-5, 5).all()
