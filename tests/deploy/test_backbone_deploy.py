"""Backbone models through the deployment paths: ONNX with the backbone inside (parity with PyTorch), causal
streaming equal to offline, and predict --media of a run trained on face crops and log-mel patches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from affectflow.export.onnx import export_model_onnx
from affectflow.features.pipeline import extract
from affectflow.inference.media import predict_media
from affectflow.config import load_config
from affectflow.experiment import train
from affectflow.streaming import Streamer, StreamingError
from affectflow.synthetic.media import generate_media_corpus
from tests.deploy.helpers import fake_run, raw_frames
from tests.deploy.test_streaming import _offline

DIMS = {"face_crops": 3 * 4 * 4, "logmel_patches": 4 * 4}


def _params(causal: bool = True, face: dict | None = None) -> dict:
    def branch(shape, norm):
        arch = face if (face and shape[0] == 3) else {"widths": [2, 4, 4, 4]}
        return {"type": "stack", "stages": [
            {"type": "backbone", "input_shape": shape, "pixel_norm": norm, **arch},
            {"type": "tcn", "channels": [4, 4], "causal": causal}]}

    return {"fusion": {"type": "channel_attention", "d_model": 4},
            "encoders": {"face_crops": branch([3, 4, 4], [0.5, 0.5]), "logmel_patches": branch([1, 4, 4], None)}}


def test_onnx_has_the_backbone_inside(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from tests.deploy.test_export import _parity

    from affectflow.models import MODELS

    torch.manual_seed(0)
    model = MODELS.build("composite", _params(), input_dims=DIMS, targets=["arousal", "valence"]).eval()
    path = export_model_onnx(model, DIMS, tmp_path / "m.onnx")
    assert ort is not None and any(n.op_type == "Conv" for n in __import__("onnx").load(str(path)).graph.node)
    for batch, steps in [(1, 5), (3, 23)]:
        assert _parity(model, DIMS, path, batch=batch, steps=steps) <= 1e-5


def test_streaming_a_backbone_model_equals_offline(tmp_path):
    run = fake_run(tmp_path / "run", "composite", _params(), dims=DIMS)
    frames = raw_frames(40, seed=2, dims=DIMS)
    s = Streamer(run)
    np.testing.assert_allclose(s.run_array(frames), _offline(run, frames), atol=1e-5, rtol=0)
    with pytest.raises(StreamingError):
        Streamer(fake_run(tmp_path / "nc", "composite", _params(causal=False), dims=DIMS))


VIT4 = {"arch": "hf", "hf_config": {"model_type": "vit", "image_size": 4, "patch_size": 2, "num_channels": 3,
                                   "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                                   "intermediate_size": 8}}


@pytest.mark.parametrize("face", [None, VIT4], ids=["cnn", "hf-vit"])
def test_predict_media_with_a_trained_backbone_run(tmp_path, face):
    c = generate_media_corpus(tmp_path / "mc", n_subjects=5, duration_s=8.0, seed=0, physio=False, transcript=False,
                              video_size=16, video_fps=8)
    extract(c.path, {"face_crops": {"size": 4}, "logmel_patches": {"rate_hz": 2.0, "n_frames": 4, "n_mels": 4}},
            progress=False)
    cfg = load_config(None, [f"data.corpus={c.path}", f"output.runs_dir={tmp_path / 'runs'}",
                             "data.features=[face_crops,logmel_patches]", "data.window.size=8", "data.window.hop=4",
                             "training.epochs=1", "training.seeds=[1]", "training.device=cpu", "output.plots=false",
                             "model.type=composite"])
    cfg.model.params = _params(face=face)
    run = train(cfg, progress=False)
    df = predict_media(run, {"video": c.path / "media" / "S000_r0.mp4", "audio": c.path / "media" / "S000_r0.wav"})
    assert len(df) == 16 and np.isfinite(df[["arousal", "valence"]].to_numpy()).all()
    hist = pd.read_csv(run / "history" / "seed-1.csv")
    assert hist["frames_per_s"].iloc[0] > 0


# every backbone kind through export and streaming: a VGGish-layout net over a 16x16 log-mel patch, a transformers
# ResNet and a transformers ViT (random weights from a config, as a checkpoint rebuilds them)
KIND_DIMS = {"face_crops": 3 * 8 * 8, "logmel_patches": 16 * 16}
KINDS = {
    "vgg": {"arch": "vgg", "widths": [2, 2, 4, 4, 4, 4], "fc_widths": [8]},
    "hf-resnet": {"arch": "hf", "hf_config": {"model_type": "resnet", "num_channels": 3, "embedding_size": 4,
                                              "hidden_sizes": [4, 4, 8, 8], "depths": [1, 1, 1, 1],
                                              "layer_type": "basic"}},
    "hf-vit": {"arch": "hf", "hf_config": {"model_type": "vit", "image_size": 8, "patch_size": 4, "num_channels": 3,
                                           "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
                                           "intermediate_size": 16}},
}


def _kind_params(kind: str) -> dict:
    audio = {"type": "backbone", "input_shape": [1, 16, 16], "pixel_norm": None, **KINDS["vgg"]}
    face = {"type": "backbone", "input_shape": [3, 8, 8], **(KINDS[kind] if kind != "vgg" else {"widths": [2, 4, 4, 4]})}
    if kind == "hf-vit":  # a ViT over a 1-channel patch too
        audio = {"type": "backbone", "input_shape": [1, 16, 16], "pixel_norm": None, "arch": "hf",
                 "hf_config": {**KINDS["hf-vit"]["hf_config"], "image_size": 16, "num_channels": 1}}
    return {"fusion": {"type": "channel_attention", "d_model": 4},
            "encoders": {n: {"type": "stack", "stages": [b, {"type": "tcn", "channels": [4, 4], "causal": True}]}
                         for n, b in (("face_crops", face), ("logmel_patches", audio))}}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_backbone_kind_exports_and_streams(kind, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from tests.deploy.test_export import _parity

    from affectflow.models import MODELS

    torch.manual_seed(0)
    model = MODELS.build("composite", _kind_params(kind), input_dims=KIND_DIMS,
                         targets=["arousal", "valence"]).eval()
    path = export_model_onnx(model, KIND_DIMS, tmp_path / "m.onnx")
    assert ort is not None
    for batch, steps in [(1, 5), (3, 23)]:
        assert _parity(model, KIND_DIMS, path, batch=batch, steps=steps) <= 1e-5
    run = fake_run(tmp_path / "run", "composite", _kind_params(kind), dims=KIND_DIMS)
    frames = raw_frames(30, seed=3, dims=KIND_DIMS)
    np.testing.assert_allclose(Streamer(run).run_array(frames), _offline(run, frames), atol=1e-5, rtol=0)
