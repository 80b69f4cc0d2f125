"""Fuzz tests of the Aff-Wild2 and MER importers with the shared harness (tests/fuzz/harness.py): a clear
affectflow error or a consistent corpus, never a traceback and never a partial corpus. Templates are tiny synthetic
folders from :mod:`affectflow.synthetic`; the label files are damaged half of the time."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affectflow.corpus import affwild2, mer
from affectflow.synthetic.affwild2 import generate_affwild2
from affectflow.synthetic.mer import generate_mer
from tests.fuzz.harness import FUZZ_SETTINGS, check_import, mutations


def _files(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.fixture(scope="module")
def mer_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-mer") / "t"
    generate_mer(root, n_train=12, n_test=(4, 4, 4), frames=(3, 6), utt_dim=4, frame_dim=3, seed=1)
    return root


def _mer_import(src, out):
    return mer.import_mer(src, out, frame_rates={"frames": 5.0}, progress=False)


MER_FOCUS = ["train-label.csv", "test1-label.csv"]


def test_mer_template_imports(mer_template):
    assert check_import(mer_template, [], _mer_import) == "ok"


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_mer(mer_template, data):
    muts = data.draw(mutations(_files(mer_template), focus=MER_FOCUS, max_mutations=2))
    check_import(mer_template, muts, _mer_import, label="mer")


@pytest.fixture(scope="module")
def affwild2_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-affwild2") / "t"
    generate_affwild2(root, n_videos=3, duration_s=1.0, duration_jitter_s=0.0, fps_choices=(10.0,), two_person_every=2,
                      crop_size=16, videos=False, seed=1)
    return root


def _affwild2_import(src, out):
    return affwild2.import_affwild2(src, out, default_fps=10.0, test_list=src / "test_set.txt", progress=False)


def test_affwild2_template_imports(affwild2_template):
    assert check_import(affwild2_template, [], _affwild2_import) == "ok"


@settings(FUZZ_SETTINGS, max_examples=25)
@given(data=st.data())
def test_fuzz_affwild2(affwild2_template, data):
    # annotation files, lists and a few face crops (the crops are many; damaging a few covers the image reader)
    files = [f for f in _files(affwild2_template) if not f.endswith(".jpg")] + \
        [f for f in _files(affwild2_template) if f.endswith(".jpg")][:3]
    focus = [f for f in files if f.endswith(".txt")][:4]
    muts = data.draw(mutations(files, focus=focus))
    check_import(affwild2_template, muts, _affwild2_import, label="affwild2")
