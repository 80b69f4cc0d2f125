"""Backbone encoders: transformers folders and state dicts as weights, rebuild without them, parameter groups,
and the raw-input feature sets they read (face crops, log-mel patches, the uint8 cache)."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from affectflow.corpus.corpus import Corpus, FeatureSetInfo
from affectflow.data.normalize import Normalizer
from affectflow.data.store import SequenceStore
from affectflow.errors import ConfigError
from affectflow.features import EXTRACTORS, MediaRecording
from affectflow.models import MODELS, build_model
from affectflow.models.backbones import model_param_groups


def _stack(backbone: dict, fusion_passthrough: bool = True) -> dict:
    return {"fusion": {"type": "early", "d_model": None} if fusion_passthrough else {"type": "early"},
            "encoder": {"type": "stack", "stages": [{"type": "backbone", **backbone}, {"type": "gru", "hidden_size": 8}]}}


@pytest.fixture(scope="module")
def resnet_folder(tmp_path_factory):
    from transformers import AutoConfig, AutoModel

    d = tmp_path_factory.mktemp("tiny_resnet")
    torch.manual_seed(0)
    cfg = AutoConfig.for_model("resnet", num_channels=3, embedding_size=8, hidden_sizes=[8, 8, 16, 16],
                               depths=[1, 1, 1, 1], layer_type="basic")
    AutoModel.from_config(cfg).save_pretrained(d)
    return d


def test_hf_folder_weights_are_loaded_and_the_checkpoint_rebuilds_without_the_folder(resnet_folder, tmp_path):
    from transformers import AutoModel

    folder = tmp_path / "copy"
    shutil.copytree(resnet_folder, folder)
    model = MODELS.build("composite", _stack({"input_shape": [3, 16, 16], "arch": "hf", "weights": str(folder)}),
                         input_dims={"face_crops": 768}, targets=["arousal"])
    ref = AutoModel.from_pretrained(str(folder))
    got = model.encoder.stages[0].net.model.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in ref.state_dict().items())  # the given weights, not random ones
    groups = model_param_groups(model)
    assert [f"backbone.stage{i}" for i in range(1, 5)] == sorted(g for g in groups if "stage" in g)
    assert groups["backbone.stage4"][0] is next(model.encoder.stages[0].net.model.encoder.stages[3].parameters())
    config = model.config()
    shutil.rmtree(folder)  # the checkpoint must not need it
    assert config["params"]["encoder"]["stages"][0]["hf_config"]["model_type"] == "resnet"
    again = build_model(config)
    again.load_state_dict(model.state_dict())
    x = {"face_crops": torch.rand(2, 5, 768)}
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    model.eval(), again.eval()
    assert torch.equal(model(x, mask)[mask], again(x, mask)[mask])


def test_state_dict_weights_of_a_named_arch(tmp_path):
    params = _stack({"input_shape": [1, 8, 8], "arch": "cnn", "widths": [4, 4, 8, 8]})
    torch.manual_seed(1)
    src = MODELS.build("composite", params, input_dims={"crop_pixels": 67}, targets=["arousal"])
    net_sd = src.encoder.stages[0].net.state_dict()
    torch.save({"state_dict": net_sd}, tmp_path / "cnn.pt")
    params["encoder"]["stages"][0]["weights"] = str(tmp_path / "cnn.pt")
    torch.manual_seed(2)
    model = MODELS.build("composite", params, input_dims={"crop_pixels": 67}, targets=["arousal"])
    assert all(torch.equal(v, model.encoder.stages[0].net.state_dict()[k]) for k, v in net_sd.items())
    # crop_pixels: the 8x8 thumbnail is the image, the colour means and the step mask are appended
    assert model.encoder.stages[0].output_dim == 8 + 3 + 1
    torch.save({"stage1.conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    params["encoder"]["stages"][0]["weights"] = str(tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="missing keys"):
        MODELS.build("composite", params, input_dims={"crop_pixels": 67}, targets=["arousal"])
    params["encoder"]["stages"][0]["weights"] = str(tmp_path / "absent.pt")
    with pytest.raises(ConfigError, match="do not exist"):
        MODELS.build("composite", params, input_dims={"crop_pixels": 67}, targets=["arousal"])


def test_vgg_has_torchvggish_parameter_names_and_groups():
    enc = MODELS.build("composite", _stack({"input_shape": [1, 32, 16], "arch": "vgg", "widths": [2, 2, 4, 4, 4, 4],
                                            "fc_widths": [8, 8, 4], "pixel_norm": None}),
                       input_dims={"logmel_patches": 512}, targets=["arousal"]).encoder.stages[0]
    names = set(enc.net.state_dict())
    # torchvggish: features.{0,3,6,8,11,13}.{weight,bias}, embeddings.{0,2,4}.{weight,bias}
    assert {f"features.{i}.weight" for i in (0, 3, 6, 8, 11, 13)} | {f"embeddings.{i}.weight" for i in (0, 2, 4)} <= names
    assert sorted(enc.param_groups()) == ["backbone.fc", "backbone.stage1", "backbone.stage2", "backbone.stage3",
                                          "backbone.stage4"]
    with pytest.raises(ConfigError, match="multiples of 16"):
        MODELS.build("composite", _stack({"input_shape": [1, 30, 16], "arch": "vgg"}),
                     input_dims={"logmel_patches": 480}, targets=["arousal"])


@pytest.mark.parametrize("hf_config,shape", [
    ({"model_type": "vit", "image_size": 16, "patch_size": 4, "num_channels": 3, "hidden_size": 16,
      "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 32}, [3, 16, 16]),
    ({"model_type": "audio-spectrogram-transformer", "num_mel_bins": 16, "max_length": 32, "patch_size": 8,
      "frequency_stride": 8, "time_stride": 8, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
      "intermediate_size": 32}, [1, 32, 16]),
])
def test_transformers_configs_without_weights(hf_config, shape):
    n = int(np.prod(shape))
    model = MODELS.build("composite", _stack({"input_shape": shape, "arch": "hf", "hf_config": hf_config}),
                         input_dims={"x": n}, targets=["arousal"])
    out = model({"x": torch.rand(2, 3, n)}, torch.ones(2, 3, dtype=torch.bool))
    assert out.shape == (2, 3, 1)
    assert "backbone.stage4" in model_param_groups(model)


def test_shape_errors_say_what_to_do():
    with pytest.raises(ConfigError, match=r"needs 768 features per step.*d_model: null"):
        MODELS.build("composite", _stack({"input_shape": [3, 16, 16]}, fusion_passthrough=False),
                     input_dims={"face_crops": 768}, targets=["arousal"])
    with pytest.raises(ConfigError, match="arch"):
        MODELS.build("composite", _stack({"input_shape": [1, 2, 2], "arch": "resnet50"}),
                     input_dims={"x": 4}, targets=["arousal"])


# ---------------------------------------------------------------------------------------------------- raw inputs
def test_face_crops_values_are_exact_uint8_and_cached_as_uint8(tmp_path):
    ex = EXTRACTORS.build("face_crops", {"size": 4})
    img = np.zeros((20, 20, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 51, 102, 255
    v = ex.crop(img)
    assert v.shape == (48,) and ex.columns()[16] == "c1_00_00"
    np.testing.assert_array_equal(v.reshape(3, 16)[:, 0], np.float32([0.2, 0.4, 1.0]))
    folder = tmp_path / "crops"
    folder.mkdir()
    for i in (1, 2, 4):  # frame 3 has no crop
        cv2.imwrite(str(folder / f"{i:05d}.png"), np.full((10, 10, 3), 10 * i, np.uint8))
    frame = ex.extract(MediaRecording(id="r", video=folder, video_fps=10.0, duration=0.4))
    assert frame["time"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert frame.iloc[2, 1:].isna().all() and frame.iloc[3, 1] == pytest.approx(40 / 255)

    corpus = Corpus.create(tmp_path / "c", name="c", label_rate_hz=10.0)
    corpus.set_recordings(pd.DataFrame({"id": ["r"], "subject": ["s"], "partition": ["train"], "duration": [0.4]}))
    corpus.write_feature_set_info(FeatureSetInfo("face_crops", "video", ex.columns(), None,
                                                 {"extractor": "face_crops", "params": ex.params(), "storage": "uint8"}))
    corpus.write_features("face_crops", "r", frame)
    store = SequenceStore(corpus, ["face_crops"], [], ["r"], grid_rate_hz=10.0)
    cached = store.records[0].arrays["face_crops"]
    assert np.load(cached).dtype == np.uint8  # 1 byte per pixel on disk
    got = store.read(0)["face_crops"]
    np.testing.assert_array_equal(got[[0, 1, 3]], frame.iloc[[0, 1, 3], 1:].to_numpy(np.float32))
    assert np.isnan(got[2]).all()
    norm = Normalizer().fit(store)
    x, m = norm.transform("face_crops", got)
    assert m.tolist() == [True, True, False, True]
    np.testing.assert_array_equal(x[3], got[3])  # pixels are not z-scored


def test_logmel_patch_centre_row_is_the_logmel_frame(tmp_path):
    import soundfile as sf

    sr = 16000
    t = np.arange(int(1.5 * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    sf.write(tmp_path / "a.wav", x.astype(np.float32), sr)
    rec = MediaRecording(id="a", audio=tmp_path / "a.wav")
    patches = EXTRACTORS.build("logmel_patches", {"rate_hz": 4.0, "n_frames": 8, "n_mels": 16, "frame_hop": 0.01})
    p = patches.extract(rec)
    lm = EXTRACTORS.build("logmel", {"rate_hz": 4.0, "n_mels": 16}).extract(rec)
    assert p.shape == (len(lm), 1 + 8 * 16) and p.columns[1] == "m000_00"
    centre = p.iloc[:, 1:].to_numpy().reshape(len(p), 8, 16)[:, 4]
    np.testing.assert_allclose(centre, lm.iloc[:, 1:].to_numpy(), atol=1e-5)
    fine = EXTRACTORS.build("logmel", {"rate_hz": 100.0, "n_mels": 16}).extract(rec).iloc[:, 1:].to_numpy()
    k = 2  # output frame 2 at 0.5 s: its patch rows are the 100 Hz frames 46..53
    np.testing.assert_allclose(p.iloc[k, 1:].to_numpy().reshape(8, 16), fine[50 - 4: 50 + 4], atol=1e-5)


def test_on_the_fly_augmentation_only_in_training_mode():
    params = _stack({"input_shape": [3, 8, 8], "widths": [2, 2, 4, 4],
                     "augment": {"transforms": ["brightness", "cutout"], "p": 1.0}})
    torch.manual_seed(0)
    model = MODELS.build("composite", params, input_dims={"face_crops": 192}, targets=["arousal"])
    enc = model.encoder.stages[0]
    x = torch.rand(2, 3, 192, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 3, dtype=torch.bool)
    enc.eval()
    assert torch.equal(enc.images(x.reshape(6, -1)), (x.reshape(6, 3, 8, 8) - 0.5) / 0.5)  # eval: no transform
    enc.train()
    torch.manual_seed(5)
    a = enc.images(x.reshape(6, -1))
    torch.manual_seed(5)
    assert torch.equal(a, enc.images(x.reshape(6, -1))) and not torch.equal(a, (x.reshape(6, 3, 8, 8) - 0.5) / 0.5)
    assert model.train()({"face_crops": x}, mask).shape == (2, 3, 1)
    with pytest.raises(ConfigError, match="sparkle"):
        MODELS.build("composite", _stack({"input_shape": [3, 8, 8], "augment": {"transforms": ["sparkle"]}}),
                     input_dims={"face_crops": 192}, targets=["arousal"])


@pytest.mark.parametrize("arch", ["cnn", "hf"])
def test_batchnorm_of_frozen_groups_stays_frozen_until_unfrozen(arch):
    extra = {"arch": "hf", "hf_config": {"model_type": "resnet", "num_channels": 3, "embedding_size": 4,
                                         "hidden_sizes": [4, 4, 8, 8], "depths": [1, 1, 1, 1],
                                         "layer_type": "basic"}} if arch == "hf" else {"widths": [2, 2, 4, 4]}
    torch.manual_seed(0)
    model = MODELS.build("composite", _stack({"input_shape": [3, 8, 8], **extra}), input_dims={"face_crops": 192},
                         targets=["arousal"])
    enc = model.encoder.stages[0]
    groups = enc.net.groups()
    for p in enc.parameters():
        p.requires_grad_(False)
    for p in groups["backbone.stage4"].parameters():
        p.requires_grad_(True)

    def bn(g):
        return [m for m in groups[g].modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    assert bn("backbone.stage3") and bn("backbone.stage4")
    running = {n: b for n, b in enc.named_buffers() if "running" in n}
    before = {k: v.clone() for k, v in running.items()}
    x = torch.rand(4, 5, 192, generator=torch.Generator().manual_seed(1))
    model.train()
    model({"face_crops": x}, torch.ones(4, 5, dtype=torch.bool))
    assert not any(m.training for m in bn("backbone.stage3")) and all(m.training for m in bn("backbone.stage4"))
    moved = {id(running[k]) for k in before if not torch.equal(before[k], running[k])}
    stage4 = {id(b) for n, b in groups["backbone.stage4"].named_buffers() if "running" in n}
    assert moved == stage4  # only stage 4's statistics were updated
    for p in groups["backbone.stage3"].parameters():  # unfreezing: the group's BN layers train from the next train()
        p.requires_grad_(True)
    model.train()
    assert all(m.training for m in bn("backbone.stage3"))
    model.eval()
    assert not any(m.training for m in bn("backbone.stage4"))
