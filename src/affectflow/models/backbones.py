"""Backbone encoders: a 2-D network applied to the raw input of every time step (face crop, log-mel patch).

A backbone is a registered encoder like the temporal ones (``(B, T, D)`` + step mask → ``(B, T, H)``), so it
stacks with a temporal model and sits in any fusion branch (ABAW5: ResNet-50 over face crops + TCN, VGGish over
log-mel patches + TCN, fused by leader-follower or channel attention)::

    encoders:
      face_crops: {type: stack, stages: [{type: backbone, input_shape: [3, 48, 48], arch: cnn},
                                         {type: tcn, channels: [64, 64, 64, 64]}]}

Each step's first ``C·H·W`` features are its image ``(C, H, W)`` (channel-first, row-major: the column order of
``face_crops``, ``logmel_patches`` and, with ``C = 1``, the thumbnail of ``crop_pixels``); the backbone maps it to
a vector, and the step's remaining features (e.g. ``crop_pixels``' colour means and the step mask that
``composite`` appends) are appended unchanged: ``H = backbone width + D − C·H·W``. Only real steps (``mask``
True) are run, ``chunk`` images at a time; padded steps are 0. The output at step ``t`` depends on step ``t``
only, so a backbone is causal and the stack is as causal as its temporal model.

Input scaling: ``pixel_norm: [0.5, 0.5]`` (default for images; ABAW5 3.4) maps ``v`` to ``(v − 0.5) / 0.5``;
``null`` leaves the input as it comes (log-mel patches, or z-scored ``crop_pixels``).

Architectures (``arch``):

``cnn``
    A small ResNet: stem (3x3 conv, BN, ReLU) then four stages of a basic residual block each (stride 2 from
    stage 2 on), global average pooling; ``widths`` = channels of the stem/stage 1 .. stage 4.
``vgg``
    VGGish (Hershey et al. 2017; the layout and parameter names of ``torchvggish``): ``features`` = conv
    ``widths[0]``, pool, conv ``widths[1]``, pool, 2 convs ``widths[2:4]``, pool, 2 convs ``widths[4:6]``, pool;
    ``embeddings`` = fully connected layers ``fc_widths`` with ReLU. Default widths are VGGish's (64, 128, 256, 256,
    512, 512; 4096, 4096, 128) for a ``(1, 96, 64)`` patch, so a ``torchvggish`` state dict loads into it.
``hf``
    Any ``transformers`` vision or audio model (ResNet, ViT, ConvNeXt, Audio Spectrogram Transformer, ...) from a
    local ``save_pretrained`` folder (``weights``) or from ``hf_config`` (a config dict with ``model_type``, random
    weights). The image goes in as ``pixel_values`` ``(N, C, H, W)``, or as ``input_values`` ``(N, H, W)`` for
    models that take that (AST: time x mel bins); the output is ``pooler_output`` (flattened) or the mean of
    ``last_hidden_state`` over tokens.

Weights (``weights``): a ``save_pretrained`` folder (``arch: hf``), or a torch state dict file of the named
``arch`` (``cnn``, ``vgg``; a plain state dict or ``{"state_dict": ...}``), read with
``torch.load(..., weights_only=True)`` and loaded strictly (a mismatch lists the missing and unexpected keys).
Nothing is ever downloaded; without ``weights`` the backbone starts from random initialisation. When a trained
run is rebuilt from its checkpoint the weights file is not read again (the state dict holds the trained values) and
the architecture comes from the stored config (``hf_config`` is filled in from the folder when the model is built,
so a checkpoint does not need the folder).

Parameter groups (for ``training.schedule: progressive_unfreezing``, :mod:`affectflow.training.schedules`):
:meth:`BackboneEncoder.param_groups` names ``backbone.stem`` and ``backbone.stage1`` .. ``backbone.stage4``
(``cnn``: the stem and its four stages; ``vgg``: conv blocks 1-4, ``backbone.fc`` the embeddings; ``hf``: the
embeddings and the model's layer list cut into four consecutive parts). A model's groups are the union over its
backbones (two backbones' ``backbone.stage4`` unfreeze together, as in ABAW5 where a visual and an audio backbone
are fine-tuned at once); :func:`model_param_groups` collects them. A frozen group is frozen whole: its BatchNorm
layers stay in eval mode while its parameters do not train (their running mean and variance are neither used from
the batch nor updated), and follow the model's mode again from the first epoch after their group is unfrozen
(:meth:`BackboneEncoder.train`). A frozen backbone (``groups: []``) is thus a fixed function of its input. This
is what fine-tuning a *pretrained* backbone needs; for a randomly initialised one the running statistics of a frozen
group stay at their initial values (mean 0, variance 1), and the switch to batch statistics when the group is
unfrozen changes the function abruptly. ``freeze_norm: false`` keeps the earlier behaviour (BatchNorm layers follow
the model's mode whether their group is frozen or not).

On-the-fly augmentation (``augment``): in training mode the images of a batch are transformed by
:func:`affectflow.augment.image.augment_batch` (the same transforms as ``affectflow augment``, drawn from the
torch RNG, so seeded and resumable); never at evaluation.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from affectflow.augment.image import augment_batch, check_augment
from affectflow.errors import ConfigError
from affectflow.models.encoders import ENCODERS, Encoder

ARCHS = ("cnn", "vgg", "hf")
GROUP_NAMES = ("backbone.stem", "backbone.stage1", "backbone.stage2", "backbone.stage3", "backbone.stage4",
               "backbone.fc")

_LOAD_WEIGHTS: contextvars.ContextVar[bool] = contextvars.ContextVar("affectflow_load_backbone_weights", default=True)


@contextlib.contextmanager
def no_pretrained_weights():
    """Build backbones without reading their ``weights`` (a checkpoint's state dict is loaded next)."""
    token = _LOAD_WEIGHTS.set(False)
    try:
        yield
    finally:
        _LOAD_WEIGHTS.reset(token)


# ---------------------------------------------------------------------------------------------------- architectures
class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + (x if self.down is None else self.down(x)))


class SmallResNet(nn.Module):
    """``arch: cnn``: stem + 4 one-block stages + global average pooling → ``(N, widths[-1])``."""

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ConfigError(f"Backbone 'cnn' needs 4 `widths` (stages 1-4), got {widths!r}.")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU())
        chans = [widths[0], *widths]
        for i in range(4):
            setattr(self, f"stage{i + 1}", _BasicBlock(chans[i], chans[i + 1], 1 if i == 0 else 2))
        self.out_dim = widths[-1]

    def forward(self, x):
        x = self.stem(x)
        for i in range(4):
            x = getattr(self, f"stage{i + 1}")(x)
        return x.mean(dim=(2, 3))

    def groups(self) -> dict[str, nn.Module]:
        return {"backbone.stem": self.stem, **{f"backbone.stage{i + 1}": getattr(self, f"stage{i + 1}")
                                               for i in range(4)}}


class VGGish(nn.Module):
    """``arch: vgg``: the VGGish layout (module names of ``torchvggish``: ``features``, ``embeddings``)."""

    def __init__(self, in_channels: int, height: int, width: int, widths: list[int], fc_widths: list[int]) -> None:
        super().__init__()
        if len(widths) != 6:
            raise ConfigError(f"Backbone 'vgg' needs 6 `widths` (VGGish: [64, 128, 256, 256, 512, 512]), got {widths!r}.")
        if height % 16 or width % 16:
            raise ConfigError(f"Backbone 'vgg' pools 4 times by 2: the input height and width must be multiples of 16, "
                              f"got {height}x{width} (VGGish: 96x64).")
        layers: list[nn.Module] = []
        c = in_channels
        self._block_ends = []
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, 1, 1), nn.ReLU(inplace=True)]
            c = w
            if i in (0, 1, 3, 5):
                layers.append(nn.MaxPool2d(2, 2))
                self._block_ends.append(len(layers))
        self.features = nn.Sequential(*layers)
        fcs: list[nn.Module] = []
        d = c * (height // 16) * (width // 16)
        for w in fc_widths:
            fcs += [nn.Linear(d, w), nn.ReLU(inplace=True)]
            d = w
        self.embeddings = nn.Sequential(*fcs)
        self.out_dim = d

    def forward(self, x):
        x = self.features(x)
        # torchvggish flattens channel-last: (N, C, H, W) -> (N, H, W, C)
        x = x.permute(0, 2, 3, 1).contiguous().view(x.shape[0], -1)
        return self.embeddings(x)

    def groups(self) -> dict[str, nn.Module]:
        out, start = {}, 0
        for i, end in enumerate(self._block_ends):
            out[f"backbone.stage{i + 1}"] = nn.ModuleList(list(self.features)[start:end])
            start = end
        out["backbone.fc"] = self.embeddings
        return out


class HFBackbone(nn.Module):
    """``arch: hf``: a ``transformers`` model (see the module docstring)."""

    def __init__(self, config: Any, weights: Path | None) -> None:
        super().__init__()
        from transformers import AutoModel

        if weights is not None:
            self.model = AutoModel.from_pretrained(str(weights), local_files_only=True)
        else:
            self.model = AutoModel.from_config(config)

        params = inspect.signature(self.model.forward).parameters
        self.input_key = "input_values" if "input_values" in params and "pixel_values" not in params else "pixel_values"
        cfg = self.model.config
        self.out_dim = int(getattr(cfg, "hidden_size", None) or (getattr(cfg, "hidden_sizes", None) or [0])[-1])
        if not self.out_dim:
            raise ConfigError(f"Cannot tell the output width of transformers model {type(self.model).__name__}.")

    def forward(self, x):
        inp = x[:, 0] if self.input_key == "input_values" else x
        out = self.model(**{self.input_key: inp})
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled.reshape(pooled.shape[0], -1)
        return out.last_hidden_state.mean(1)

    def groups(self) -> dict[str, nn.Module]:
        lists = [(n, m) for n, m in self.model.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
        if not lists:
            return {}
        _, layers = max(lists, key=lambda nm: len(nm[1]))
        items = list(layers)
        k = len(items)
        # k >= 4: four consecutive parts; fewer layers: the last one is stage4, the one before stage3, ...
        stage = [1 + (i * 4) // k if k >= 4 else 4 - (k - 1 - i) for i in range(k)]
        out: dict[str, nn.Module] = {}
        for st in sorted(set(stage)):
            out[f"backbone.stage{st}"] = nn.ModuleList([m for m, s in zip(items, stage) if s == st])
        emb = [m for n, m in self.model.named_children() if "embed" in n]
        if emb:
            out["backbone.stem"] = nn.ModuleList(emb)
        return out


def read_hf_config(folder: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a ``save_pretrained`` folder as a dict (with ``model_type``)."""
    f = Path(folder) / "config.json"
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"Backbone weights {str(folder)!r} is not a transformers save_pretrained folder: cannot read "
                          f"{f} ({type(e).__name__}: {e}).") from None
    if "model_type" not in cfg:
        raise ConfigError(f"{f} has no `model_type`; it is not a transformers model config.")
    return cfg


def _hf_config_object(cfg: dict[str, Any]):
    from transformers import AutoConfig

    cfg = dict(cfg)
    kind = cfg.pop("model_type", None)
    if not kind:
        raise ConfigError("Backbone `hf_config` needs a `model_type` (e.g. resnet, vit, "
                          "audio-spectrogram-transformer).")
    for k in ("architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype"):
        cfg.pop(k, None)
    try:
        return AutoConfig.for_model(kind, **cfg)
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"Backbone `hf_config` cannot make a transformers config: {e}") from None


def _load_state_dict(module: nn.Module, path: Path, arch: str) -> None:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a config error with its reason
        raise ConfigError(f"Backbone weights {str(path)!r} cannot be read as a torch state dict with "
                          f"weights_only=True ({type(e).__name__}: {e}).") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ConfigError(f"Backbone weights {str(path)!r} hold a {type(sd).__name__}, not a state dict.")
    missing, unexpected = module.state_dict().keys() - sd.keys(), sd.keys() - module.state_dict().keys()
    if missing or unexpected:
        raise ConfigError(f"Backbone weights {str(path)!r} do not fit arch {arch!r} with these widths: missing keys "
                          f"{sorted(missing)[:8]}, unexpected keys {sorted(unexpected)[:8]}.")
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ConfigError(f"Backbone weights {str(path)!r} do not fit arch {arch!r}: {e}") from None


# ---------------------------------------------------------------------------------------------------- the encoder
@ENCODERS.register
class BackboneEncoder(Encoder):
    """A 2-D backbone over each step's image, the step's other features appended (see the module docstring).

    Parameters
    ----------
    input_dim:
        Features per step ``D >= C·H·W``.
    input_shape:
        ``[C, H, W]`` of each step's image (``face_crops`` with size 48: ``[3, 48, 48]``; ``logmel_patches``:
        ``[1, n_frames, n_mels]``; ``crop_pixels`` with grid 8: ``[1, 8, 8]``).
    arch:
        ``cnn``, ``vgg`` or ``hf``.
    widths, fc_widths:
        Channel widths (``cnn``: 4; ``vgg``: 6) and fully connected widths (``vgg``).
    weights:
        Local weights: a ``save_pretrained`` folder (``hf``) or a state dict file (``cnn``, ``vgg``); ``null``: random.
    hf_config:
        ``arch: hf`` without weights: the transformers config (dict with ``model_type``).
    pixel_norm:
        ``[mean, std]`` applied to the image first, or ``null``.
    augment:
        On-the-fly image transforms in training mode (:func:`affectflow.augment.image.augment_batch` arguments),
        or ``null``.
    chunk:
        Images per backbone call (memory bound; results do not depend on it).
    freeze_norm:
        Keep the BatchNorm layers of frozen groups in eval mode (default; see the module docstring). ``false``:
        they follow the model's mode (batch statistics in training) even while their weights are frozen.
    """

    name = "backbone"

    def __init__(
        self,
        input_dim: int,
        *,
        input_shape: list[int] = (3, 48, 48),
        arch: str = "cnn",
        widths: list[int] | None = None,
        fc_widths: list[int] = (4096, 4096, 128),
        weights: str | None = None,
        hf_config: dict[str, Any] | None = None,
        pixel_norm: list[float] | None = (0.5, 0.5),
        augment: dict[str, Any] | None = None,
        chunk: int = 512,
        freeze_norm: bool = True,
    ) -> None:
        super().__init__()
        shape = list(input_shape)
        if len(shape) != 3 or not all(isinstance(v, int) and v >= 1 for v in shape):
            raise ConfigError(f"Backbone `input_shape` must be [C, H, W] of positive integers, got {input_shape!r}.")
        n_pix = shape[0] * shape[1] * shape[2]
        if input_dim < n_pix:
            raise ConfigError(
                f"Backbone `input_shape` {shape} needs {n_pix} features per step, but the input has {input_dim}: "
                "choose the shape of the feature set (face_crops size s: [3, s, s]; logmel_patches: [1, n_frames, "
                "n_mels]; crop_pixels grid g: [1, g, g]); a fusion in front of it must pass features through (early "
                "fusion: `d_model: null`)."
            )
        if arch not in ARCHS:
            raise ConfigError(f"Backbone `arch` must be one of {list(ARCHS)}, got {arch!r}.")
        if pixel_norm is not None and (len(pixel_norm) != 2 or not pixel_norm[1] > 0):
            raise ConfigError(f"Backbone `pixel_norm` must be [mean, std] with std > 0, or null; got {pixel_norm!r}.")
        if not isinstance(chunk, int) or chunk < 1:
            raise ConfigError(f"Backbone `chunk` must be an integer >= 1, got {chunk!r}.")
        self.shape = shape
        self.n_pix = n_pix
        self.extra = input_dim - n_pix
        self.chunk = chunk
        if not isinstance(freeze_norm, bool):
            raise ConfigError(f"Backbone `freeze_norm` must be true or false, got {freeze_norm!r}.")
        self.freeze_norm = freeze_norm
        self.pixel_norm = None if pixel_norm is None else (float(pixel_norm[0]), float(pixel_norm[1]))
        self.augment = dict(augment) if augment else None
        if self.augment:
            check_augment(self.augment)
        load = _LOAD_WEIGHTS.get() and weights is not None
        wpath = Path(weights) if weights is not None else None
        if load and not wpath.exists():
            raise ConfigError(f"Backbone weights {str(wpath)!r} do not exist (nothing is downloaded: give a local "
                              "save_pretrained folder or state dict file).")
        if arch == "cnn":
            self.net = SmallResNet(shape[0], list(widths or (16, 32, 64, 128)))
        elif arch == "vgg":
            self.net = VGGish(shape[0], shape[1], shape[2], list(widths or (64, 128, 256, 256, 512, 512)),
                              list(fc_widths))
        else:
            if load and wpath.is_dir():
                self.net = HFBackbone(None, wpath)
            elif hf_config is not None or (weights is not None and wpath.is_dir()):
                cfg = hf_config if hf_config is not None else read_hf_config(wpath)
                self.net = HFBackbone(_hf_config_object(cfg), None)
            elif weights is not None and not load:
                raise ConfigError(f"Backbone (arch hf) cannot be rebuilt: its folder {str(wpath)!r} is gone and the "
                                  "config holds no `hf_config`.")
            else:
                raise ConfigError("Backbone `arch: hf` needs `weights` (a save_pretrained folder) or `hf_config`.")
        if load and arch != "hf":
            if wpath.is_dir():
                raise ConfigError(f"Backbone weights {str(wpath)!r} is a folder; arch {arch!r} takes a state dict "
                                  "file (use arch: hf for a transformers save_pretrained folder).")
            _load_state_dict(self.net, wpath, arch)
        self.input_dim = int(input_dim)
        self.output_dim = self._dim = self.net.out_dim + self.extra

    @property
    def causal(self) -> bool:
        return True

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Group name → parameters (see the module docstring)."""
        return {k: list(m.parameters()) for k, m in self.net.groups().items()}

    def frozen_norm_layers(self) -> list[nn.Module]:
        """The BatchNorm layers of the groups whose parameters are all frozen (``requires_grad`` False)."""
        out: list[nn.Module] = []
        for mod in self.net.groups().values():
            params = list(mod.parameters())
            if params and not any(p.requires_grad for p in params):
                out += [m for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        return out

    def train(self, mode: bool = True) -> "BackboneEncoder":
        """As :meth:`torch.nn.Module.train`, but the BatchNorm layers of frozen groups stay in eval mode (their
        running statistics frozen with their weights); they follow ``mode`` again once their group is unfrozen
        (the trainer calls ``train()`` at the start of every epoch, so the switch happens at the next epoch)."""
        super().train(mode)
        if mode and self.freeze_norm:
            for m in self.frozen_norm_layers():
                m.eval()
        return self

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` step features → ``(N, C, H, W)`` images (normalised by ``pixel_norm``)."""
        img = x[:, : self.n_pix].reshape(-1, *self.shape)
        if self.training and self.augment:
            img = augment_batch(img, **self.augment)
        if self.pixel_norm is not None:
            img = (img - self.pixel_norm[0]) / self.pixel_norm[1]
        return img

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` step features → ``(N, H)`` (backbone output, then the extra features)."""
        outs = []
        for s in range(0, x.shape[0], self.chunk):
            part = x[s: s + self.chunk]
            outs.append(self.net(self.images(part)).to(x.dtype))
        feats = torch.cat(outs, 0) if outs else x.new_zeros(0, self.net.out_dim)
        return torch.cat([feats, x[:, self.n_pix:]], 1) if self.extra else feats

    def forward(self, x, mask):
        b, t, _ = x.shape
        flat_mask = mask.reshape(-1)
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
            return self.embed(x.reshape(b * t, -1)).reshape(b, t, -1) * mask.unsqueeze(-1).to(x.dtype)
        out = x.new_zeros(b * t, self._dim)
        idx = flat_mask.nonzero(as_tuple=True)[0]
        if idx.numel():
            out[idx] = self.embed(x.reshape(b * t, -1)[idx])
        return out.reshape(b, t, self._dim)


def model_param_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The parameter groups a model declares: the union over its modules' ``param_groups()`` by name (a parameter
    is listed once, under the first name that claims it)."""
    out: dict[str, list[nn.Parameter]] = {}
    seen: set[int] = set()
    for m in model.modules():
        fn = getattr(m, "param_groups", None)
        if fn is None or m is model:
            continue
        for name, params in fn().items():
            lst = out.setdefault(name, [])
            for p in params:
                if id(p) not in seen:
                    seen.add(id(p))
                    lst.append(p)
    return out


def resolve_backbone_params(params: Any) -> Any:
    """``params`` with every backbone block (``{type: backbone, arch: hf, weights: FOLDER}``) given the folder's
    ``hf_config``, recursively, so a checkpoint rebuilds the architecture without the folder."""
    if isinstance(params, dict):
        out = {k: resolve_backbone_params(v) for k, v in params.items()}
        if out.get("type") == "backbone" and out.get("arch") == "hf" and out.get("weights") and not out.get(
                "hf_config") and Path(out["weights"]).is_dir():
            out["hf_config"] = read_hf_config(out["weights"])
        return out
    if isinstance(params, list):
        return [resolve_backbone_params(v) for v in params]
    return params
