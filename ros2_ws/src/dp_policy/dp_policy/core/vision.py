"""Diffusion Policy's image encoder: ResNet-18 (GroupNorm) + spatial-softmax keypoints per camera.

As in Diffusion Policy's image configs (``obs_encoder_group_norm: True``, robomimic's ``VisualCore``):

- backbone: torchvision's ResNet-18 without the global average pool and classifier, every
  BatchNorm replaced by ``GroupNorm(channels // 16, channels)``; trained from scratch by default;
- pooling: ``SpatialSoftmax`` -- a 1x1 conv to ``num_keypoints`` (32) maps, a softmax over H x W
  each, and their expected (x, y) in [-1, 1] -> 64 numbers, then ``Linear(64, image_feature_dim)``;
- one encoder per camera (``encoder.camera_keys``, DP's ``share_rgb_model: False``);
- augmentation: a random ``crop_shape`` crop per image in training, the center crop in eval mode;
- input: uint8 (M, H, W, 3) RGB -> float in [0, 1] -> ``[-1, 1]`` (``image_norm: range``: DP's
  ``get_image_range_normalizer``) or ImageNet mean/std (``image_norm: imagenet``, the default when
  ``pretrained_encoder`` is set, since torchvision's weights expect it);
- the low-dimensional ``agent_pos`` (already min-max normalized) is concatenated as is (DP).

The backbone is ``torchvision.models.resnet18(weights=None, norm_layer=<GroupNorm>)`` when torchvision
imports (robot / Docker image), else :class:`ResNet18` below, which has exactly torchvision's
module and parameter names (``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``layer4.1.bn2``,
``layerN.0.downsample.0/1``, ``fc``) and initialization, so checkpoints move between the two and a
torchvision ResNet-18 ``state_dict`` saved as safetensors loads by name
(:func:`load_pretrained_backbone`). torchvision is not a dependency here: the only build that
imports beside our pinned CPU torch 2.13.0 needs torch 2.14.1 (~5.5 GB, see DESIGN.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dp_policy.core.config import PolicyConfig
from dp_policy.core.weights import head, state_dict_mismatch

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


class PretrainedEncoderError(ValueError):
    """A pretrained-encoder weights file is missing, not safetensors, or does not match ResNet-18."""


# ----------------------------------------------------------------------------- ResNet-18


def group_norm(num_channels: int) -> nn.GroupNorm:
    """Diffusion Policy's BatchNorm replacement: ``GroupNorm(num_channels // 16, num_channels)``."""
    return nn.GroupNorm(num_groups=num_channels // 16, num_channels=num_channels)


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock`` (same attribute names)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: Callable[[int], nn.Module] = group_norm,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's ``resnet18`` (module names, shapes and initialization), any ``norm_layer``."""

    def __init__(self, num_classes: int = 1000, norm_layer: Callable[[int], nn.Module] = group_norm) -> None:
        super().__init__()
        self._norm_layer = norm_layer
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(_conv1x1(self.inplanes, planes, stride), self._norm_layer(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, self._norm_layer)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, norm_layer=self._norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier forward (as torchvision): (M, 3, H, W) -> (M, num_classes)."""
        x = resnet_features(self, x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Convolutional trunk of a (torchvision or our) ResNet: (M, 3, H, W) -> (M, 512, H/32, W/32)."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def torchvision_available() -> bool:
    """True when ``import torchvision`` works (it does not beside torch 2.13.0 here)."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # ImportError, or a binary mismatch with the installed torch
        return False
    return True


def build_resnet18(use_torchvision: bool | None = None) -> nn.Module:
    """ResNet-18 with GroupNorm and ``fc = Identity`` (DP's ``get_resnet`` + ``replace_bn_with_gn``).

    ``use_torchvision=None`` picks torchvision when it imports. Both give the same state_dict keys.
    """
    if use_torchvision is None:
        use_torchvision = torchvision_available()
    if use_torchvision:
        import torchvision

        net = torchvision.models.resnet18(weights=None, norm_layer=group_norm)
    else:
        net = ResNet18(norm_layer=group_norm)
    net.fc = nn.Identity()
    return net


def load_pretrained_backbone(net: nn.Module, path: str | Path) -> None:
    """Load torchvision ResNet-18 weights from a safetensors file into ``net`` (never a pickle).

    BatchNorm running statistics (``running_mean``, ``running_var``, ``num_batches_tracked``) have no
    GroupNorm counterpart and are dropped; BatchNorm ``weight``/``bias`` load into the GroupNorm
    affine parameters of the same name. The classifier ``fc.*`` is dropped (the encoder does not use
    it). Any other missing / unexpected key or shape mismatch raises :class:`PretrainedEncoderError`.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise PretrainedEncoderError(
            f"pretrained encoder must be a .safetensors file (pickles are never loaded). Got {str(path)!r}"
        )
    if not path.is_file():
        raise PretrainedEncoderError(f"pretrained encoder file {str(path)!r} does not exist")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise PretrainedEncoderError(f"{str(path)!r} is not a readable safetensors file: {exc}") from exc
    dropped_stats = [k for k in state if k.endswith(BN_STAT_SUFFIXES)]
    dropped_fc = [k for k in state if k.startswith("fc.")]
    state = {k: v for k, v in state.items() if k not in set(dropped_stats) | set(dropped_fc)}
    expected = net.state_dict()
    missing, unexpected, bad_shape = state_dict_mismatch(expected, state)
    if missing or unexpected:
        raise PretrainedEncoderError(
            f"{str(path)!r} does not hold torchvision ResNet-18 weights: missing {head(missing, 6)}"
            f" ({len(missing)}), unexpected {head(unexpected, 6)} ({len(unexpected)}); expected keys like "
            "'conv1.weight', 'layer1.0.bn1.weight' (a torchvision resnet18 state_dict)"
        )
    if bad_shape:
        k, got, want = bad_shape
        raise PretrainedEncoderError(f"{str(path)!r}: {k} has shape {got}, ResNet-18 expects {want}")
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    logger.info(
        "loaded pretrained ResNet-18 from %s (ignored %d BatchNorm running statistics: GroupNorm has "
        "none; ignored %d classifier tensors fc.*)",
        path,
        len(dropped_stats),
        len(dropped_fc),
    )


# ----------------------------------------------------------------------------- keypoints / crops


class SpatialSoftmax(nn.Module):
    """robomimic's SpatialSoftmax: 1x1 conv to K maps, softmax over H x W, expected (x, y) in [-1, 1].

    ``(M, C, H, W) -> (M, 2K)`` ordered ``[x_0, y_0, x_1, y_1, ...]`` (temperature 1, not learned).
    """

    def __init__(self, in_channels: int, num_kp: int = 32) -> None:
        super().__init__()
        self.nets = nn.Conv2d(in_channels, num_kp, kernel_size=1)
        self.num_kp = num_kp

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.nets(feature)
        m, k, h, w = x.shape
        attn = F.softmax(x.reshape(m, k, h * w), dim=-1).view(m, k, h, w)
        pos_x = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        pos_y = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        ex = (attn.sum(dim=2) * pos_x).sum(dim=-1)
        ey = (attn.sum(dim=3) * pos_y).sum(dim=-1)
        return torch.stack([ex, ey], dim=-1).reshape(m, 2 * k)


def crop_images(images: torch.Tensor, crop_hw: tuple[int, int], random: bool) -> torch.Tensor:
    """Crop (M, H, W, C) images to (M, ch, cw, C): one random offset per image, or the center.

    Random offsets use the global torch RNG (seeded by the trainer).
    """
    m, h, w, _ = images.shape
    ch, cw = crop_hw
    if (ch, cw) == (h, w):
        return images
    if not random:
        top, left = (h - ch) // 2, (w - cw) // 2
        return images[:, top : top + ch, left : left + cw]
    dev = images.device
    top = torch.randint(0, h - ch + 1, (m,), device=dev)
    left = torch.randint(0, w - cw + 1, (m,), device=dev)
    rows = (top[:, None] + torch.arange(ch, device=dev))[:, :, None]  # (M, ch, 1)
    cols = (left[:, None] + torch.arange(cw, device=dev))[:, None, :]  # (M, 1, cw)
    return images[torch.arange(m, device=dev)[:, None, None], rows, cols]


# ----------------------------------------------------------------------------- encoders


class CameraEncoder(nn.Module):
    """One camera: ResNet-18 trunk (GroupNorm) -> SpatialSoftmax -> Linear (robomimic VisualCore)."""

    def __init__(self, num_kp: int, feature_dim: int, use_torchvision: bool | None = None) -> None:
        super().__init__()
        self.backbone = build_resnet18(use_torchvision)
        self.pool = SpatialSoftmax(512, num_kp)
        self.out = nn.Linear(2 * num_kp, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (M, 3, h, w) float (normalized) -> (M, feature_dim)."""
        return self.out(self.pool(resnet_features(self.backbone, x)))


class ImageObsEncoder(nn.Module):
    """Per-camera image features concatenated with the normalized ``agent_pos`` (Diffusion Policy).

    Parameter names: ``cameras.<key>.backbone.*`` (torchvision ResNet-18 names),
    ``cameras.<key>.pool.nets.*``,
    ``cameras.<key>.out.*``.
    """

    def __init__(self, cfg: PolicyConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        enc = cfg.encoder
        if enc.type != "image":
            raise ValueError(f"ImageObsEncoder needs encoder.type 'image'. Got {enc.type!r}")
        self.camera_keys = tuple(enc.camera_keys)
        self.image_shape = tuple(enc.image_shape)
        self.crop_shape = tuple(enc.crop_shape)
        self.image_norm = enc.image_norm
        self.channels_last = False
        self.cameras = nn.ModuleDict(
            {k: CameraEncoder(enc.num_keypoints, enc.image_feature_dim) for k in self.camera_keys}
        )
        if enc.pretrained_encoder and load_pretrained:
            for cam in self.cameras.values():
                load_pretrained_backbone(cam.backbone, enc.pretrained_encoder)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def use_channels_last(self, enable: bool = True) -> None:
        """Lay the camera trunks' conv weights out channels-last (NHWC), or back.

        The images already arrive as HWC, so the convolutions then run on oneDNN's NHWC kernels:
        ResNet-18 over two 64x86 frames takes ~15 instead of ~30 ms on one core of this CPU.
        Results equal the NCHW path's to fp32 rounding. ``Policy`` enables it on the CPU.
        """
        fmt = torch.channels_last if enable else torch.contiguous_format
        for cam in self.cameras.values():
            cam.to(memory_format=fmt)
        self.channels_last = bool(enable)

    def preprocess(self, key: str, images: torch.Tensor) -> torch.Tensor:
        """uint8 (M, H, W, 3) -> cropped, normalized float (M, 3, ch, cw)."""
        if images.dtype != torch.uint8:
            raise ValueError(f"{key}: images must be uint8 RGB (M, H, W, 3). Got dtype {images.dtype}")
        if images.dim() != 4 or tuple(images.shape[1:]) != (*self.image_shape, 3):
            raise ValueError(
                f"{key}: images must be (M, {self.image_shape[0]}, {self.image_shape[1]}, 3) uint8 RGB "
                f"(encoder.image_shape; resize with dp_policy.core.resize.fit_image). "
                f"Got {tuple(images.shape)}"
            )
        x = crop_images(images, self.crop_shape, random=self.training)
        x = x.permute(0, 3, 1, 2).to(self.mean.dtype) / 255.0
        if self.image_norm == "imagenet":
            return (x - self.mean) / self.std
        return x * 2.0 - 1.0

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``<camera> (M, H, W, 3)`` uint8 for every camera, ``agent_pos (M, D)`` -> (M, feature_dim)."""
        feats = [self.cameras[k](self.preprocess(k, obs[k])) for k in self.camera_keys]
        feats.append(obs["agent_pos"].to(feats[0].dtype))
        return torch.cat(feats, dim=-1)


def build_image_encoder(cfg: PolicyConfig, load_pretrained: bool = True) -> ImageObsEncoder:
    """Image observation encoder for ``cfg`` (``encoder.type == 'image'``)."""
    return ImageObsEncoder(cfg, load_pretrained=load_pretrained)


# ----------------------------------------------------------------------------- inference helpers


def image_obs_tensors(obs: dict, cfg: PolicyConfig, batched: bool) -> dict[str, torch.Tensor]:
    """Validate camera images of an inference observation -> {key: uint8 (B, n_obs_steps, H, W, 3)}.

    Args:
        obs: ``<camera_key>`` (n_obs_steps, H, W, 3) uint8 RGB per camera (or (B, n_obs_steps, ...)
            when ``batched``); extra leading history is trimmed to the last ``n_obs_steps``.
    Raises:
        ValueError: missing key, wrong dtype or shape (message says what was expected).
    """
    h, w = cfg.encoder.image_shape
    n = cfg.n_obs_steps
    out = {}
    for key in cfg.encoder.image_keys:
        if key not in obs:
            raise ValueError(f"observation is missing {key!r}; expected keys {list(cfg.obs_keys)}")
        arr = np.asarray(obs[key])
        if arr.dtype != np.uint8:
            raise ValueError(f"{key} must be uint8 RGB (n_obs_steps, {h}, {w}, 3). Got dtype {arr.dtype}")
        if not batched:
            arr = arr[None]
        if arr.ndim != 5 or arr.shape[1] < n or tuple(arr.shape[2:]) != (h, w, 3):
            raise ValueError(
                f"{key} must be (n_obs_steps={n}, {h}, {w}, 3) uint8 RGB (resize with "
                f"dp_policy.core.resize.fit_image). Got {tuple(arr.shape[1:])}"
            )
        out[key] = torch.from_numpy(np.ascontiguousarray(arr[:, -n:]))
    return out


def dummy_image_obs(cfg: PolicyConfig) -> dict[str, np.ndarray]:
    """Mid-gray images for every camera (warm-up): {key: (n_obs_steps, H, W, 3) uint8}."""
    h, w = cfg.encoder.image_shape
    return {k: np.full((cfg.n_obs_steps, h, w, 3), 128, np.uint8) for k in cfg.encoder.image_keys}
