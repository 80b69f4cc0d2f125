"""Per-batch augmentation (``training.augment``): known SNR of the log-mel mixture, image transforms on present
steps only, draws that depend only on (seed, epoch, batch), a resumed run equal to an uninterrupted one, and the
config errors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import affectflow.experiment as E
from affectflow.augment.batch import BatchAugmenter, batch_generator, check_batch_augment
from affectflow.augment.image import augment_batch
from affectflow.config import load_config
from affectflow.corpus import Corpus, FeatureSetInfo, LabelSetInfo
from affectflow.data.normalize import Normalizer
from affectflow.errors import ConfigError
from affectflow.experiment import resume_training, train
from affectflow.runs import load_checkpoint

SIDE, FRAMES, MELS = 4, 4, 4
DIMS = {"face_crops": 3 * SIDE * SIDE, "logmel_patches": FRAMES * MELS}
PARAMS = {"face_crops": {"extractor": "face_crops", "params": {"size": SIDE}, "storage": "uint8"},
          "logmel_patches": {"extractor": "logmel_patches", "params": {"n_frames": FRAMES, "n_mels": MELS,
                                                                       "log_offset": 0.01}}}


def _info(name):
    return SimpleNamespace(dim=DIMS[name], params=PARAMS[name])


def _fake(subjects, mean=0.0, std=1.0):
    store = SimpleNamespace(infos={n: _info(n) for n in DIMS}, uint8_sets={"face_crops"},
                            records=[SimpleNamespace(subject=s) for s in subjects])
    norm = Normalizer(stats_={"face_crops": (np.zeros(DIMS["face_crops"], np.float32),
                                             np.ones(DIMS["face_crops"], np.float32)),
                              "logmel_patches": (np.full(DIMS["logmel_patches"], mean, np.float32),
                                                 np.full(DIMS["logmel_patches"], std, np.float32))})
    return store, norm


def _batch(b=4, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    logmel = torch.log(torch.rand(b, t, DIMS["logmel_patches"], generator=g) * 5 + 0.05)
    fm = torch.ones(b, t, dtype=torch.bool)
    fm[0, 4:] = False  # padded / missing steps never change
    return {"x": {"face_crops": torch.rand(b, t, DIMS["face_crops"], generator=g),
                  "logmel_patches": (logmel - 0.3) / 1.5},
            "feature_mask": {"face_crops": fm.clone(), "logmel_patches": fm.clone()},
            "index": torch.arange(b)}


def _clone(batch):
    return {"x": {k: v.clone() for k, v in batch["x"].items()},
            "feature_mask": {k: v.clone() for k, v in batch["feature_mask"].items()}, "index": batch["index"].clone()}


def test_babble_is_mixed_at_the_drawn_snr_in_the_mel_power_domain():
    store, norm = _fake(["a", "b", "c", "d"], mean=0.3, std=1.5)
    spec = check_batch_augment({"logmel_patches": {"noise": "babble", "snr": 8, "p": 1.0}}, list(DIMS))
    batch = _batch()
    before = _clone(batch)
    BatchAugmenter(spec, store, norm, seed=3)(batch, 1, 0)
    fm = before["feature_mask"]["logmel_patches"]
    for j in range(4):
        raw0 = before["x"]["logmel_patches"][j] * 1.5 + 0.3
        raw1 = batch["x"]["logmel_patches"][j] * 1.5 + 0.3
        p0 = ((raw0.exp() - 0.01) ** 2)[fm[j]].double()
        p1 = ((raw1.exp() - 0.01) ** 2)[fm[j]].double()
        assert 10 * np.log10(float(p0.mean() / (p1 - p0).mean())) == pytest.approx(8.0, abs=1e-3)
        assert torch.equal(batch["x"]["logmel_patches"][j][~fm[j]], before["x"]["logmel_patches"][j][~fm[j]])
    assert torch.equal(batch["x"]["face_crops"], before["x"]["face_crops"])  # only the configured sets


def test_image_transforms_touch_present_steps_only_with_the_batch_generator():
    store, norm = _fake(["a", "a", "b", "b"])
    spec = check_batch_augment({"face_crops": {"transforms": ["brightness", "cutout"], "p": 1.0}}, list(DIMS))
    batch = _batch()
    before = _clone(batch)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    BatchAugmenter(spec, store, norm, seed=5)(batch, 2, 7)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG (dropout, data order) is not touched
    fm = before["feature_mask"]["face_crops"]
    imgs = before["x"]["face_crops"][fm].reshape(-1, 3, SIDE, SIDE)
    want = augment_batch(imgs, ["brightness", "cutout"], 1.0, generator=batch_generator(5, 2, 7))
    torch.testing.assert_close(batch["x"]["face_crops"][fm], want.reshape(imgs.shape[0], -1), atol=1e-6, rtol=0)
    assert torch.equal(batch["x"]["face_crops"][~fm], before["x"]["face_crops"][~fm])
    assert float(batch["x"]["face_crops"].min()) >= 0 and float(batch["x"]["face_crops"].max()) <= 1


def test_draws_depend_only_on_seed_epoch_and_batch():
    store, norm = _fake(["a", "b", "c", "d"])
    spec = check_batch_augment({"face_crops": {"p": 0.5},
                                "logmel_patches": {"noise": "babble", "snr": [5, 11], "p": 0.5}}, list(DIMS))
    aug = BatchAugmenter(spec, store, norm, seed=1)

    def run(seed, epoch, b):
        out = BatchAugmenter(spec, store, norm, seed=seed)(_batch(), epoch, b) if seed != 1 else aug(_batch(), epoch, b)
        return torch.cat([out["x"]["face_crops"].flatten(), out["x"]["logmel_patches"].flatten()])

    a = run(1, 3, 2)
    torch.manual_seed(123)  # other random states do not matter
    assert torch.equal(a, run(1, 3, 2))
    assert not torch.equal(a, run(1, 4, 2)) and not torch.equal(a, run(1, 3, 1)) and not torch.equal(a, run(2, 3, 2))


def test_config_errors_say_what_is_wrong(tmp_path):
    feats = list(DIMS)
    with pytest.raises(ConfigError, match="not in `data.features`"):
        check_batch_augment({"egemaps": {"p": 0.5}}, feats)
    with pytest.raises(ConfigError, match="sparkle"):
        check_batch_augment({"face_crops": {"transforms": ["sparkle"]}}, feats)
    with pytest.raises(ConfigError, match="neither"):
        check_batch_augment({"logmel_patches": {"noise": str(tmp_path / "nope")}}, feats)
    with pytest.raises(ConfigError, match=r"snr"):
        check_batch_augment({"logmel_patches": {"noise": "babble", "snr": [11, 5]}}, feats)
    with pytest.raises(ConfigError, match="unknown keys"):
        check_batch_augment({"logmel_patches": {"noise": "babble", "gain": 2}}, feats)
    store, norm = _fake(["a"])
    with pytest.raises(ConfigError, match="raw pixel set"):
        BatchAugmenter(check_batch_augment({"logmel_patches": {"transforms": ["blur"]}}, feats), store, norm, 1)
    with pytest.raises(ConfigError, match="log-mel set"):
        BatchAugmenter(check_batch_augment({"face_crops": {"noise": "babble"}}, feats), store, norm, 1)


# ------------------------------------------------------------------------------------------------ training
def _corpus(path):
    rng = np.random.default_rng(0)
    c = Corpus.create(path, name="aug", label_rate_hz=2.0)
    for name in DIMS:
        cols = [f"{name}_{i}" for i in range(DIMS[name])]
        c.write_feature_set_info(FeatureSetInfo(name, "video" if name == "face_crops" else "audio", cols, 2.0,
                                                PARAMS[name]))
    c.write_label_set_info(LabelSetInfo("continuous", ["arousal", "valence"], 2.0))
    rows = []
    for r in range(8):
        t = np.arange(30) / 2.0
        a = np.tanh(np.cumsum(rng.standard_normal(30)) / 4)
        v = np.tanh(np.cumsum(rng.standard_normal(30)) / 4)
        crops = np.clip(0.5 + 0.3 * v[:, None] + 0.1 * rng.standard_normal((30, DIMS["face_crops"])), 0, 1)
        mel = np.log(np.exp(a[:, None] + 0.3 * rng.standard_normal((30, DIMS["logmel_patches"]))) + 0.01)
        for name, vals in (("face_crops", np.rint(crops * 255) / 255), ("logmel_patches", mel)):
            f = pd.DataFrame(vals.astype(np.float32), columns=[f"{name}_{i}" for i in range(DIMS[name])])
            f.insert(0, "time", t)
            c.write_features(name, f"r{r}", f)
        c.write_labels(f"r{r}", pd.DataFrame({"time": t, "arousal": a, "valence": v}))
        rows.append({"id": f"r{r}", "subject": f"s{r}", "partition": "devel" if r == 6 else "test" if r == 7
                     else "train", "duration": 15.0})
    c.set_recordings(pd.DataFrame(rows))
    return c


AUG = ("training.augment={face_crops: {transforms: [brightness, blur, rotate, cutout], p: 0.5}, "
       "logmel_patches: {noise: babble, snr: [5, 11], p: 0.5}}")
MODEL = ("model={type: composite, fusion: {type: channel_attention, d_model: 4}, encoders: {"
         "face_crops: {type: stack, stages: [{type: backbone, input_shape: [3, 4, 4], widths: [2, 2, 2, 2]}, "
         "{type: tcn, channels: [4], causal: true}]}, "
         "logmel_patches: {type: stack, stages: [{type: backbone, input_shape: [1, 4, 4], widths: [2, 2, 2, 2], "
         "pixel_norm: null}, {type: tcn, channels: [4], causal: true}]}}}")


class _Killed(BaseException):
    pass


def test_augmented_training_is_reproducible_and_resumes_exactly(tmp_path, monkeypatch):
    c = _corpus(tmp_path / "c")
    args = [f"data.corpus={c.path}", "data.features=[face_crops,logmel_patches]", "data.window.size=10",
            "data.window.hop=5", "training.epochs=3", "training.patience=5", "training.seeds=[1]",
            "training.batch_size=4", "training.device=cpu", "training.num_threads=1", "output.plots=false", MODEL]
    ref = train(load_config(None, [*args, AUG, f"output.runs_dir={tmp_path / 'ref'}"]), progress=False)
    plain = train(load_config(None, [*args, f"output.runs_dir={tmp_path / 'plain'}"]), progress=False)
    h_ref = pd.read_csv(ref / "history" / "seed-1.csv")
    assert not np.allclose(h_ref["train_loss"], pd.read_csv(plain / "history" / "seed-1.csv")["train_loss"])
    real = E.save_epoch_state

    def save_then_die(path, state):
        real(path, state)
        if state["epoch"] == 1:
            raise _Killed()

    monkeypatch.setattr(E, "save_epoch_state", save_then_die)
    with pytest.raises(_Killed):
        train(load_config(None, [*args, AUG, f"output.runs_dir={tmp_path / 'killed'}"]), progress=False)
    monkeypatch.setattr(E, "save_epoch_state", real)
    (run,) = list((tmp_path / "killed").iterdir())
    torch.manual_seed(999)  # whatever the global state at resume
    resume_training(run, progress=False)
    h = pd.read_csv(run / "history" / "seed-1.csv")
    pd.testing.assert_frame_equal(h[["epoch", "train_loss", "devel_score"]], h_ref[["epoch", "train_loss",
                                                                                     "devel_score"]])
    a, b = load_checkpoint(run / "checkpoints" / "seed-1.pt"), load_checkpoint(ref / "checkpoints" / "seed-1.pt")
    assert all(torch.equal(a["state_dict"][k], v) for k, v in b["state_dict"].items())


def test_clip_tasks_are_refused(tmp_path):
    c = _corpus(tmp_path / "c")
    with pytest.raises(ConfigError, match="affectflow augment"):
        E.check_buildable(load_config(None, [f"data.corpus={c.path}", "data.features=[face_crops,logmel_patches]",
                                             "data.task=clip", AUG]), c)
