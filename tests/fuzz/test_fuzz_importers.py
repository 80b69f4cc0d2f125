"""Fuzz the importers with hypothesis (random truncation, bytes, cell types and values, dropped columns and rows):
a clear affectflow error or a correct import, never a traceback and never a partial corpus (tests/fuzz/harness.py).

Deterministic (``derandomize=True``) and bounded: about 40 examples per importer, a few seconds each test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import given

from affectflow.corpus.media import import_media
from affectflow.corpus.muse import import_muse
from tests.fuzz.harness import FUZZ_SETTINGS, check_corpus, check_import, mutations

IDS = {"1": "train", "2": "devel", "3": "test"}


def _muse_template(root: Path, *, sent: bool) -> Path:
    rng = np.random.default_rng(0)
    (root / "metadata").mkdir(parents=True)
    pd.DataFrame({"Id": list(IDS), "Partition": list(IDS.values())}).to_csv(root / "metadata" / "partition.csv",
                                                                             index=False)
    t = np.arange(12) * 500
    seg = t // 2000
    for rid in IDS:
        f = root / "feature_segments" / "egemaps" / f"{rid}.csv"
        f.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": t, "segment_id": seg, **{f"f{k}": rng.normal(size=len(t)).round(4)
                                                            for k in range(3)}}).to_csv(f, index=False)
        for dim in ("arousal", "valence"):
            f = root / "label_segments" / dim / f"{rid}.csv"
            f.parent.mkdir(parents=True, exist_ok=True)
            if sent:
                pd.DataFrame({"segment_id": np.unique(seg), "class_id": rng.integers(0, 3, len(np.unique(seg)))}
                             ).to_csv(f, index=False)
            else:
                pd.DataFrame({"timestamp": t, "value": rng.uniform(-1, 1, len(t)).round(4), "segment_id": seg}
                             ).to_csv(f, index=False)
    return root


def _files(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.fixture(scope="module")
def muse_templates(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz-muse")
    return {"continuous": _muse_template(base / "cont", sent=False), "sent": _muse_template(base / "sent", sent=True)}


def _muse_import(src, out):
    return import_muse(src, out, progress=False)


def _muse_check(corpus, result):
    _, report = result
    assert report.recordings == len(corpus.recordings)
    assert set(corpus.recordings["id"]) <= set(IDS)


@pytest.mark.parametrize("kind", ["continuous", "sent"])
def test_muse_templates_import(muse_templates, kind):
    assert check_import(muse_templates[kind], [], _muse_import, check=_muse_check) == "ok"


PARTITION = "metadata/partition.csv"
MUSE_FILES = [PARTITION] + [f"feature_segments/egemaps/{i}.csv" for i in IDS] + [
    f"label_segments/{d}/{i}.csv" for d in ("arousal", "valence") for i in IDS]


@FUZZ_SETTINGS
@given(muts=mutations(MUSE_FILES, focus=[PARTITION, "feature_segments/egemaps/1.csv", "label_segments/arousal/1.csv"]))
def test_fuzz_muse_continuous(muse_templates, muts):
    check_import(muse_templates["continuous"], muts, _muse_import, check=_muse_check, label="muse")


@FUZZ_SETTINGS
@given(muts=mutations(MUSE_FILES, focus=[PARTITION, "label_segments/valence/2.csv"]))
def test_fuzz_muse_sent(muse_templates, muts):
    check_import(muse_templates["sent"], muts, _muse_import, check=_muse_check, label="muse-sent")


# ---------------------------------------------------------------------------------------------------- media
MEDIA_FILES = ["manifest.csv", "r0.wav", "r0.physio.csv", "r1.wav", "r1.transcript.json", "r2.wav"]


def _media_template(root: Path) -> Path:
    root.mkdir(parents=True)
    sr = 8000
    for i in range(3):
        t = np.arange(int(0.5 * sr * (i + 1))) / sr
        sf.write(str(root / f"r{i}.wav"), 0.2 * np.sin(2 * np.pi * 220 * t), sr, subtype="PCM_16")
    tt = np.arange(50) / 50
    pd.DataFrame({"time": tt, "ecg": np.sin(2 * np.pi * 1.2 * tt).round(4)}).to_csv(root / "r0.physio.csv", index=False)
    (root / "r1.transcript.json").write_text(json.dumps([{"start": 0.1, "end": 0.4, "word": "hi"},
                                                         {"start": 0.5, "end": 0.9, "word": "there"}]))
    pd.DataFrame({"id": ["r0", "r1", "r2"], "subject": ["s0", "s1", "s1"], "partition": ["train", "devel", "test"],
                  "audio": ["r0.wav", "r1.wav", "r2.wav"], "physio": ["r0.physio.csv", "", ""],
                  "transcript": ["", "r1.transcript.json", ""]}).to_csv(root / "manifest.csv", index=False)
    return root


@pytest.fixture(scope="module")
def media_template(tmp_path_factory):
    root = _media_template(tmp_path_factory.mktemp("fuzz-media") / "t")
    existing = tmp_path_factory.mktemp("fuzz-media-existing") / "c"
    import_media(root / "manifest.csv", existing)
    return root, existing


def _media_check(corpus, report):
    assert sorted(report.added + report.replaced) == sorted(
        set(report.added + report.replaced))  # each id once
    assert set(report.added + report.replaced) <= set(corpus.recordings["id"])


def test_media_template_imports(media_template):
    root, existing = media_template
    assert check_import(root, [], lambda s, o: import_media(s / "manifest.csv", o), check=_media_check) == "ok"
    check_corpus(existing)


@FUZZ_SETTINGS
@given(muts=mutations(MEDIA_FILES, focus=["manifest.csv"]))
def test_fuzz_media_manifest(media_template, muts):
    root, _ = media_template
    check_import(root, muts, lambda s, o: import_media(s / "manifest.csv", o), check=_media_check, label="media")


@FUZZ_SETTINGS
@given(muts=mutations(MEDIA_FILES))
def test_fuzz_media_folder_scan_into_an_existing_corpus(media_template, muts):
    root, existing = media_template
    check_import(root, muts, lambda s, o: import_media(s, o, overwrite=True), existing=existing, check=_media_check,
                 label="media-existing")


def test_zz_print_outcomes(capsys):
    """Not an assertion: prints how many fuzz examples imported and how many were refused (run with -s)."""
    from tests.fuzz.harness import OUTCOMES

    with capsys.disabled():
        print("\nfuzz outcomes:", dict(sorted(OUTCOMES.items())))
