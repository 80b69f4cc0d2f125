"""Checkpoints written before a default changed still rebuild the model they were trained as."""

import copy

import torch

from affectflow.models import MODELS, build_model
from affectflow.models.small import SMALL_SETTINGS
from affectflow.runs import CHECKPOINT_REVISION, load_checkpoint, save_checkpoint

DIMS = {"acoustic": 6, "visual": 5, "physio": 3}


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = {n: 3.0 * torch.randn(2, 7, d, generator=g) for n, d in DIMS.items()}
    mask = torch.ones(2, 7, dtype=torch.bool)
    return x, mask, {n: mask.clone() for n in DIMS}


def test_pre_revision_afg_checkpoint_rebuilds_unscaled(tmp_path):
    params = copy.deepcopy(SMALL_SETTINGS["composite"])  # AFG fusion (hierarchical) + GRU encoder
    params["fusion"]["scaled_scores"] = False
    torch.manual_seed(0)
    old_model = MODELS.build("composite", params, input_dims=DIMS, targets=["arousal"]).eval()
    path = tmp_path / "seed-1.pt"
    save_checkpoint(path, model=old_model, normalizer_state={}, data_spec={}, extra={})
    assert load_checkpoint(path)["revision"] == CHECKPOINT_REVISION

    # What a checkpoint from before the change looks like: no revision, no scaled_scores key.
    ckpt = torch.load(path, weights_only=True)
    del ckpt["revision"]
    del ckpt["model"]["params"]["fusion"]["scaled_scores"]
    torch.save(ckpt, path)

    loaded = load_checkpoint(path)
    assert loaded["model"]["params"]["fusion"]["scaled_scores"] is False
    model = build_model(loaded["model"])
    model.load_state_dict(loaded["state_dict"])
    x, mask, fm = _inputs()
    with torch.no_grad():
        assert torch.equal(model.eval()(x, mask, fm), old_model(x, mask, fm))
        # Rebuilt with today's default (scaled), the same weights predict something else.
        now = copy.deepcopy(loaded["model"])
        del now["params"]["fusion"]["scaled_scores"]
        scaled = build_model(now)
        scaled.load_state_dict(loaded["state_dict"])
        assert not torch.allclose(scaled.eval()(x, mask, fm), old_model(x, mask, fm))


def test_current_checkpoints_keep_their_setting(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build("composite", SMALL_SETTINGS["composite"], input_dims=DIMS, targets=["arousal"])
    path = tmp_path / "seed-1.pt"
    save_checkpoint(path, model=model, normalizer_state={}, data_spec={}, extra={})
    fusion = load_checkpoint(path)["model"]["params"]["fusion"]
    assert fusion.get("scaled_scores", True) is True  # the default (scaled) is not overridden
