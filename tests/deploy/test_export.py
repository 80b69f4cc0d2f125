"""ONNX export: every architecture of the registry exports, and onnxruntime equals PyTorch on padded, masked
batches of other sizes than the traced one (max abs difference ≤ 1e-5)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from affectflow.cli.main import main
from affectflow.export import ExportError, export_run
from affectflow.export.onnx import example_inputs, export_model_onnx, input_names
from affectflow.models import MODELS
from affectflow.models.small import SMALL_SETTINGS
from tests.deploy.helpers import DIMS, fake_run

ort = pytest.importorskip("onnxruntime")

CASES = [(n, {}) for n in SMALL_SETTINGS] + [
    ("gru", {"bidirectional": True, "num_layers": 2}),
    ("lstm", {"bidirectional": True}),
    ("late_fusion_bilstm", {"bidirectional": True}),
    ("transformer", {"causal": True}),
]


def _build(name, extra):
    torch.manual_seed(0)
    return MODELS.build(name, {**SMALL_SETTINGS[name], **extra}, input_dims=DIMS, targets=["arousal", "valence"]).eval()


def _parity(model, dims, path, *, batch, steps):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    args = example_inputs(dims, batch=batch, steps=steps, seed=batch * 100 + steps)
    args[0][-1, steps // 3:] = False  # a much shorter row: padded steps
    if batch > 2:
        args[0][0, steps // 2:] = False  # lengths not sorted
    feeds = dict(zip(input_names(list(dims)), [a.numpy() for a in args]))
    out = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0]
    m = len(dims)
    with torch.no_grad():
        ref = model({n: args[1 + i] for i, n in enumerate(dims)}, args[0],
                    {n: args[1 + m + i] for i, n in enumerate(dims)}).numpy()
    real = args[0].numpy()
    assert out.shape == ref.shape
    return float(np.abs(out - ref)[real].max())


@pytest.mark.parametrize("name,extra", CASES, ids=[f"{n}{'-' + '-'.join(e) if e else ''}" for n, e in CASES])
def test_onnx_parity_with_pytorch(name, extra, tmp_path):
    model = _build(name, extra)
    path = export_model_onnx(model, DIMS, tmp_path / "m.onnx")
    for batch, steps in [(1, 5), (3, 41)]:  # traced with (2, 7): other batch and time sizes
        assert _parity(model, DIMS, path, batch=batch, steps=steps) <= 1e-5


@pytest.mark.slow
def test_torch_export_based_exporter_on_a_bidirectional_gru(tmp_path):
    # packing cannot be traced by torch.export: run_rnn takes the padded path (backward direction reversed per row)
    model = _build("gru", {"bidirectional": True})
    path = export_model_onnx(model, DIMS, tmp_path / "m.onnx", dynamo=True)
    assert _parity(model, DIMS, path, batch=3, steps=17) <= 1e-5


def test_a_fixed_time_axis_is_refused(tmp_path, monkeypatch):
    import affectflow.export.onnx as onnx_export

    monkeypatch.setattr(onnx_export, "_fixed_axes", lambda path: ["x.visual"])
    with pytest.raises(ExportError, match="fixed the batch or time axis of x.visual"):
        export_model_onnx(_build("tcn", {}), DIMS, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_every_registered_architecture_is_covered():
    # afg_jdev needs class targets: exported with its default JDEV head below
    assert set(MODELS.names()) - set(SMALL_SETTINGS) == {"afg_jdev"}


def test_classification_head_model_exports(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build("afg_jdev", {"n_classes": 4, "d_model": 16}, input_dims=DIMS,
                         targets=["emotion", "valence"]).eval()
    path = export_model_onnx(model, DIMS, tmp_path / "m.onnx")
    assert _parity(model, DIMS, path, batch=3, steps=11) <= 1e-5


def test_export_run_writes_model_and_sidecar(tmp_path):
    run = fake_run(tmp_path / "run", "gru", SMALL_SETTINGS["gru"])
    out = export_run(run, tmp_path / "exp")
    info = json.loads((out / "model.json").read_text())
    assert info["targets"] == ["arousal", "valence"] and info["outputs"] == ["arousal", "valence"]
    assert info["label_rate_hz"] == 2.0 and info["causal"] and info["streamable"]
    assert [i["name"] for i in info["inputs"]] == input_names(list(DIMS))
    assert info["feature_sets"]["visual"]["columns"] == ["visual0", "visual1", "visual2", "visual3"]
    # the sidecar's statistics reproduce the run's normaliser: raw -> ONNX input
    from affectflow.experiment import load_model

    model, norm, _ = load_model(run)
    raw = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    st = info["normalizer"]["stats"]["visual"]
    mine = (raw - np.array(st["mean"])) / np.array(st["std"])
    np.testing.assert_allclose(mine, norm.transform("visual", raw)[0], atol=1e-6)
    with pytest.raises(ExportError, match="not empty"):
        export_run(run, out)
    with pytest.raises(ExportError, match="Unknown export format"):
        export_run(run, tmp_path / "x", format="tflite")


def test_cli_export(tmp_path, capsys):
    run = fake_run(tmp_path / "run", "tcn", SMALL_SETTINGS["tcn"])
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "e")]) == 0
    assert (tmp_path / "e" / "model.onnx").is_file() and "model.onnx" in capsys.readouterr().out
    assert main(["export", str(run), "--out", str(tmp_path / "e")]) == 2
    assert "not empty" in capsys.readouterr().err
