"""Raw media → extracted features → trained model: arousal and valence are recovered well above chance."""

import json

import pytest

from affectflow.config import load_config
from affectflow.experiment import train
from affectflow.features.pipeline import extract
from affectflow.synthetic.media import espeak_available, generate_media_corpus

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (scripts/setup.sh installs it)")

FEATURES = {"egemaps": {}, "phys": {}, "word_vad": {}, "fer": {}}


def test_model_on_extracted_features_recovers_affect(tmp_path):
    corpus = generate_media_corpus(tmp_path / "c", n_subjects=8, duration_s=45.0, seed=4, video_size=96,
                                   workers=2)
    summary = extract(corpus, {"defaults": {"rate_hz": 2.0}, "features": FEATURES}, workers=2, progress=False)
    assert summary.ok, summary.format()
    cfg = load_config(None, [
        f"data.corpus={corpus.path}", f"output.runs_dir={tmp_path / 'runs'}", f"data.features={list(FEATURES)}",
        "data.window.size=30", "data.window.hop=10", "model.d_model=32", "model.d_fc=16", "training.batch_size=8",
        "training.epochs=25", "training.patience=25", "training.lr=0.003", "training.seeds=[1]",
        "training.device=cpu", "model.dropout=0.3", "training.weight_decay=0.001", "data.normalize=subject",
    ])
    run = train(cfg, progress=False)
    m = json.loads((run / "metrics.json").read_text())["best"]
    # chance level is CCC 0; the noise-free ceiling of this corpus is about 0.98
    # (measured with this seed: arousal 0.90, valence 0.49; 5 training subjects only)
    assert m["test"]["arousal"]["ccc"] > 0.6, m["test"]
    assert m["test"]["valence"]["ccc"] > 0.25, m["test"]
