"""Fixtures of the service tests: a tiny causal GRU trained on eGeMAPS features extracted from synthetic speech,
a 12 s speech clip it has not seen, and the app around it."""

from __future__ import annotations

import pytest

from affectflow.synthetic.media import espeak_available

needs_espeak = pytest.mark.skipif(not espeak_available(),
                                  reason="espeak-ng is not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="session")
def speech_run(tmp_path_factory):
    """A run trained for 3 epochs on eGeMAPS (2 Hz) of 4 synthetic speakers x 30 s (causal GRU, one seed)."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    from affectflow.config import load_config
    from affectflow.experiment import train
    from affectflow.features.pipeline import extract
    from affectflow.synthetic.media import generate_media_corpus

    root = tmp_path_factory.mktemp("serve")
    corpus = generate_media_corpus(root / "corpus", n_subjects=4, duration_s=30.0, seed=5, video=False,
                                   physio=False, transcript=False, partitions=(0.5, 0.25, 0.25))
    summary = extract(corpus, {"defaults": {"rate_hz": 2.0}, "features": {"egemaps": {}}}, workers=1,
                      progress=False)
    assert summary.ok, summary.format()
    cfg = load_config(None, [
        f"data.corpus={corpus.path}", f"output.runs_dir={root / 'runs'}", "data.features=[egemaps]",
        "data.window.size=20", "data.window.hop=10", "model.d_model=16", "model.d_fc=8", "model.dropout=0.0",
        "training.batch_size=8", "training.epochs=3", "training.patience=3", "training.seeds=[1]",
        "training.device=cpu", "training.lr=0.003",
    ])
    return train(cfg, progress=False)


@pytest.fixture(scope="session")
def speech_clip(tmp_path_factory):
    """A 12 s synthetic speech wav (16 kHz mono) of a new speaker."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    from affectflow.synthetic.media import generate_media_corpus

    c = generate_media_corpus(tmp_path_factory.mktemp("clip") / "c", n_subjects=1, duration_s=12.0, seed=11,
                              video=False, physio=False, transcript=False)
    wavs = sorted((c.path / "media").glob("*.wav"))
    assert len(wavs) == 1
    return wavs[0]


@pytest.fixture(scope="session")
def served(speech_run):
    """The loaded :class:`ServedModel` of ``speech_run``."""
    from affectflow.serve.model import ServedModel

    return ServedModel(speech_run)


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory):
    """A 5 s synthetic speech wav (16 kHz mono) for real-time streaming tests."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    from affectflow.synthetic.media import generate_media_corpus

    c = generate_media_corpus(tmp_path_factory.mktemp("short") / "c", n_subjects=1, duration_s=5.0, seed=12,
                              video=False, physio=False, transcript=False)
    return next((c.path / "media").glob("*.wav"))
