"""Image Diffusion Policy (issue 9): ResNet-18/GroupNorm/spatial-softmax encoder, config, data, training.

Budget: about a minute on a shared 2-core CPU (the learning test is ~70 optimizer steps).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from dp_policy.core import DiffusionPolicyModel, Normalizer, Policy, PolicyConfig
from dp_policy.core.checkpoint import load_checkpoint, save_checkpoint
from dp_policy.core.dataset import SequenceDataset, load_zarr, save_zarr
from dp_policy.core.train_config import TrainConfig
from dp_policy.core.training import train
from dp_policy.core.vision import (
    PretrainedEncoderError,
    ResNet18,
    SpatialSoftmax,
    build_resnet18,
    crop_images,
    load_pretrained_backbone,
)

PKG = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)

# torchvision.models.resnet18().state_dict(): every key and shape (torchvision 0.x, unchanged since 2017).
TORCHVISION_RESNET18 = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.weight": (64,),
    "bn1.bias": (64,),
    "bn1.running_mean": (64,),
    "bn1.running_var": (64,),
    "bn1.num_batches_tracked": (),
    "layer1.0.conv1.weight": (64, 64, 3, 3),
    "layer1.0.bn1.weight": (64,),
    "layer1.0.bn1.bias": (64,),
    "layer1.0.bn1.running_mean": (64,),
    "layer1.0.bn1.running_var": (64,),
    "layer1.0.bn1.num_batches_tracked": (),
    "layer1.0.conv2.weight": (64, 64, 3, 3),
    "layer1.0.bn2.weight": (64,),
    "layer1.0.bn2.bias": (64,),
    "layer1.0.bn2.running_mean": (64,),
    "layer1.0.bn2.running_var": (64,),
    "layer1.0.bn2.num_batches_tracked": (),
    "layer1.1.conv1.weight": (64, 64, 3, 3),
    "layer1.1.bn1.weight": (64,),
    "layer1.1.bn1.bias": (64,),
    "layer1.1.bn1.running_mean": (64,),
    "layer1.1.bn1.running_var": (64,),
    "layer1.1.bn1.num_batches_tracked": (),
    "layer1.1.conv2.weight": (64, 64, 3, 3),
    "layer1.1.bn2.weight": (64,),
    "layer1.1.bn2.bias": (64,),
    "layer1.1.bn2.running_mean": (64,),
    "layer1.1.bn2.running_var": (64,),
    "layer1.1.bn2.num_batches_tracked": (),
    "layer2.0.conv1.weight": (128, 64, 3, 3),
    "layer2.0.bn1.weight": (128,),
    "layer2.0.bn1.bias": (128,),
    "layer2.0.bn1.running_mean": (128,),
    "layer2.0.bn1.running_var": (128,),
    "layer2.0.bn1.num_batches_tracked": (),
    "layer2.0.conv2.weight": (128, 128, 3, 3),
    "layer2.0.bn2.weight": (128,),
    "layer2.0.bn2.bias": (128,),
    "layer2.0.bn2.running_mean": (128,),
    "layer2.0.bn2.running_var": (128,),
    "layer2.0.bn2.num_batches_tracked": (),
    "layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "layer2.0.downsample.1.weight": (128,),
    "layer2.0.downsample.1.bias": (128,),
    "layer2.0.downsample.1.running_mean": (128,),
    "layer2.0.downsample.1.running_var": (128,),
    "layer2.0.downsample.1.num_batches_tracked": (),
    "layer2.1.conv1.weight": (128, 128, 3, 3),
    "layer2.1.bn1.weight": (128,),
    "layer2.1.bn1.bias": (128,),
    "layer2.1.bn1.running_mean": (128,),
    "layer2.1.bn1.running_var": (128,),
    "layer2.1.bn1.num_batches_tracked": (),
    "layer2.1.conv2.weight": (128, 128, 3, 3),
    "layer2.1.bn2.weight": (128,),
    "layer2.1.bn2.bias": (128,),
    "layer2.1.bn2.running_mean": (128,),
    "layer2.1.bn2.running_var": (128,),
    "layer2.1.bn2.num_batches_tracked": (),
    "layer3.0.conv1.weight": (256, 128, 3, 3),
    "layer3.0.bn1.weight": (256,),
    "layer3.0.bn1.bias": (256,),
    "layer3.0.bn1.running_mean": (256,),
    "layer3.0.bn1.running_var": (256,),
    "layer3.0.bn1.num_batches_tracked": (),
    "layer3.0.conv2.weight": (256, 256, 3, 3),
    "layer3.0.bn2.weight": (256,),
    "layer3.0.bn2.bias": (256,),
    "layer3.0.bn2.running_mean": (256,),
    "layer3.0.bn2.running_var": (256,),
    "layer3.0.bn2.num_batches_tracked": (),
    "layer3.0.downsample.0.weight": (256, 128, 1, 1),
    "layer3.0.downsample.1.weight": (256,),
    "layer3.0.downsample.1.bias": (256,),
    "layer3.0.downsample.1.running_mean": (256,),
    "layer3.0.downsample.1.running_var": (256,),
    "layer3.0.downsample.1.num_batches_tracked": (),
    "layer3.1.conv1.weight": (256, 256, 3, 3),
    "layer3.1.bn1.weight": (256,),
    "layer3.1.bn1.bias": (256,),
    "layer3.1.bn1.running_mean": (256,),
    "layer3.1.bn1.running_var": (256,),
    "layer3.1.bn1.num_batches_tracked": (),
    "layer3.1.conv2.weight": (256, 256, 3, 3),
    "layer3.1.bn2.weight": (256,),
    "layer3.1.bn2.bias": (256,),
    "layer3.1.bn2.running_mean": (256,),
    "layer3.1.bn2.running_var": (256,),
    "layer3.1.bn2.num_batches_tracked": (),
    "layer4.0.conv1.weight": (512, 256, 3, 3),
    "layer4.0.bn1.weight": (512,),
    "layer4.0.bn1.bias": (512,),
    "layer4.0.bn1.running_mean": (512,),
    "layer4.0.bn1.running_var": (512,),
    "layer4.0.bn1.num_batches_tracked": (),
    "layer4.0.conv2.weight": (512, 512, 3, 3),
    "layer4.0.bn2.weight": (512,),
    "layer4.0.bn2.bias": (512,),
    "layer4.0.bn2.running_mean": (512,),
    "layer4.0.bn2.running_var": (512,),
    "layer4.0.bn2.num_batches_tracked": (),
    "layer4.0.downsample.0.weight": (512, 256, 1, 1),
    "layer4.0.downsample.1.weight": (512,),
    "layer4.0.downsample.1.bias": (512,),
    "layer4.0.downsample.1.running_mean": (512,),
    "layer4.0.downsample.1.running_var": (512,),
    "layer4.0.downsample.1.num_batches_tracked": (),
    "layer4.1.conv1.weight": (512, 512, 3, 3),
    "layer4.1.bn1.weight": (512,),
    "layer4.1.bn1.bias": (512,),
    "layer4.1.bn1.running_mean": (512,),
    "layer4.1.bn1.running_var": (512,),
    "layer4.1.bn1.num_batches_tracked": (),
    "layer4.1.conv2.weight": (512, 512, 3, 3),
    "layer4.1.bn2.weight": (512,),
    "layer4.1.bn2.bias": (512,),
    "layer4.1.bn2.running_mean": (512,),
    "layer4.1.bn2.running_var": (512,),
    "layer4.1.bn2.num_batches_tracked": (),
    "fc.weight": (1000, 512),
    "fc.bias": (1000,),
}


def _tiny_image_cfg(**kw) -> PolicyConfig:
    base = dict(
        state_dim=3, action_dim=2, down_dims=[16, 32], diffusion_step_embed_dim=16, n_groups=4,
        encoder={"image_shape": [64, 64], "crop_shape": [60, 60]},
    )  # fmt: skip
    base.update(kw)
    return PolicyConfig.preset("image_dp", **base)


def _norm(state_dim: int = 3, action_dim: int = 2) -> Normalizer:
    rng = np.random.default_rng(0)
    return Normalizer.fit(
        {"action": rng.uniform(-2, 2, (50, action_dim)), "agent_pos": rng.uniform(-1, 1, (50, state_dim))}
    )


def _image_obs(rng: np.random.Generator, n: int = 2, hw=(64, 64), state_dim: int = 3, batch=None) -> dict:
    lead = (batch, n) if batch else (n,)
    return {
        "img": rng.integers(0, 256, (*lead, *hw, 3), dtype=np.uint8),
        "agent_pos": rng.uniform(-1, 1, (*lead, state_dim)).astype(np.float32),
    }


def _square_episodes(n_eps: int, ep_len: int, size: int, seed: int) -> dict:
    """A red square on black; its half (left / right) sets action x = -1 / +1, its row sets y."""
    rng = np.random.default_rng(seed)
    t = n_eps * ep_len
    img = np.zeros((t, size, size, 3), np.uint8)
    act = np.zeros((t, 2), np.float32)
    sq = size * 3 // 8
    for e in range(n_eps):
        side = e % 2
        x = rng.integers(0, size // 2 - sq) + side * size // 2
        y = rng.integers(0, size - sq)
        sl = slice(e * ep_len, (e + 1) * ep_len)
        img[sl, y : y + sq, x : x + sq] = (230, 40, 30)
        act[sl] = (2 * side - 1, (y + sq / 2) / size)
    return {
        "img": img,
        "agent_pos": rng.uniform(-1, 1, (t, 3)).astype(np.float32),
        "action": act,
        "episode_ends": np.arange(1, n_eps + 1, dtype=np.int64) * ep_len,
    }


# ----------------------------------------------------------------------------- backbone


def test_resnet18_names_and_shapes_match_torchvision():
    ours = ResNet18(norm_layer=nn.BatchNorm2d).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == TORCHVISION_RESNET18
    assert list(ours) == list(TORCHVISION_RESNET18)  # same order too
    assert sum(p.numel() for p in ResNet18().parameters()) == 11_689_512  # torchvision's count
    # GroupNorm backbone as the encoder builds it: torchvision's names minus BN statistics and fc
    gn = build_resnet18(use_torchvision=False)
    expected = {
        k: s for k, s in TORCHVISION_RESNET18.items()
        if not k.startswith("fc.") and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }  # fmt: skip
    assert {k: tuple(v.shape) for k, v in gn.state_dict().items()} == expected
    norms = [m for m in gn.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 20 and all(m.num_groups == m.num_channels // 16 for m in norms)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gn.modules())


def _torchvision_style_file(tmp_path: Path, drop: str = "", add: str = "") -> tuple[Path, dict]:
    torch.manual_seed(3)
    bn_net = ResNet18(norm_layer=nn.BatchNorm2d)
    sd = {k: v.detach().clone() for k, v in bn_net.state_dict().items()}
    for k in sd:
        if k.endswith(("weight", "bias")) and sd[k].dtype.is_floating_point:
            sd[k] = torch.randn_like(sd[k])
    if drop:
        sd.pop(drop)
    if add:
        sd[add] = torch.zeros(3)
    path = tmp_path / f"resnet18{drop}{add}.safetensors"
    save_file(sd, str(path))
    return path, sd


def test_pretrained_encoder_loads_torchvision_state_dict_by_name(tmp_path, caplog):
    path, sd = _torchvision_style_file(tmp_path)
    net = build_resnet18(use_torchvision=False)
    with caplog.at_level("INFO", logger="dp_policy.core.vision"):
        load_pretrained_backbone(net, path)
    assert "ignored 60 BatchNorm running statistics" in caplog.text
    got = net.state_dict()
    for k, v in got.items():
        torch.testing.assert_close(v, sd[k], rtol=0, atol=0)
    # through the policy config: every camera starts from the file; ImageNet normalization by default
    cfg = _tiny_image_cfg(encoder={"image_shape": [64, 64], "camera_keys": ["left", "right"],
                                   "pretrained_encoder": str(path)})  # fmt: skip
    assert cfg.encoder.image_norm == "imagenet"
    model = DiffusionPolicyModel(cfg)
    for cam in ("left", "right"):
        torch.testing.assert_close(
            model.obs_encoder.cameras[cam].backbone.state_dict()["layer3.1.conv2.weight"],
            sd["layer3.1.conv2.weight"], rtol=0, atol=0,
        )  # fmt: skip
    # a checkpoint does not need the file any more
    ckpt = save_checkpoint(tmp_path / "ckpt", cfg, model, _norm())
    path.unlink()
    cfg2, model2, _, _ = load_checkpoint(ckpt)
    assert cfg2.encoder.pretrained_encoder == str(path) and cfg2.encoder.image_norm == "imagenet"
    torch.testing.assert_close(model2.state_dict(), model.state_dict(), rtol=0, atol=0)


def test_pretrained_encoder_errors(tmp_path):
    net = build_resnet18(use_torchvision=False)
    missing, _ = _torchvision_style_file(tmp_path, drop="layer2.0.downsample.0.weight")
    with pytest.raises(PretrainedEncoderError, match=r"missing \['layer2.0.downsample.0.weight'\]"):
        load_pretrained_backbone(net, missing)
    extra, _ = _torchvision_style_file(tmp_path, add="layer5.0.conv1.weight")
    with pytest.raises(PretrainedEncoderError, match=r"unexpected \['layer5.0.conv1.weight'\]"):
        load_pretrained_backbone(net, extra)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors" * 10)
    with pytest.raises(PretrainedEncoderError, match="not a readable safetensors"):
        load_pretrained_backbone(net, bad)
    with pytest.raises(PretrainedEncoderError, match="does not exist"):
        load_pretrained_backbone(net, tmp_path / "absent.safetensors")
    with pytest.raises(PretrainedEncoderError, match="pickles are never loaded"):
        load_pretrained_backbone(net, tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match="pickles are never loaded"):
        _tiny_image_cfg(encoder={"pretrained_encoder": "resnet18.pth"})
    wrong = {k: torch.zeros(2) for k in build_resnet18(use_torchvision=False).state_dict()}
    save_file(wrong, str(tmp_path / "shape.safetensors"))
    with pytest.raises(PretrainedEncoderError, match="conv1.weight has shape"):
        load_pretrained_backbone(net, tmp_path / "shape.safetensors")


# ----------------------------------------------------------------------------- config / encoder


def test_image_config_preset_and_validation():
    cfg = PolicyConfig.preset("image_dp", state_dim=7, action_dim=7)
    assert cfg.prediction_type == "epsilon" and cfg.down_dims == [512, 1024, 2048]
    assert cfg.obs_keys == ("img", "agent_pos") and cfg.encoder.image_keys == ("img",)
    assert cfg.encoder.image_shape == [96, 96] and cfg.encoder.crop_shape == [86, 86]  # 90%
    assert cfg.encoder.image_norm == "range"
    assert cfg.global_cond_dim == 2 * (64 + 7)  # per step: 64 keypoint features + raw agent_pos (DP)
    two = PolicyConfig.preset(
        "image_dp", encoder={"camera_keys": ["front", "wrist"], "image_shape": [72, 96]}
    )
    assert two.encoder.type == "image"  # encoder overrides merge into the preset's
    assert two.obs_keys == ("front", "wrist", "agent_pos") and two.encoder.crop_shape == [65, 86]
    assert PolicyConfig.from_dict(two.to_dict()) == two
    with pytest.raises(ValueError, match="crop_shape must be"):
        _tiny_image_cfg(encoder={"image_shape": [64, 64], "crop_shape": [70, 60]})
    with pytest.raises(ValueError, match="image_shape must be"):
        _tiny_image_cfg(encoder={"image_shape": [16, 64]})
    with pytest.raises(ValueError, match="camera_keys"):
        _tiny_image_cfg(encoder={"camera_keys": ["img", "img"]})
    with pytest.raises(ValueError, match="camera_keys"):
        _tiny_image_cfg(encoder={"camera_keys": ["agent_pos"]})
    with pytest.raises(ValueError, match="image_norm"):
        _tiny_image_cfg(encoder={"image_norm": "zscore"})
    # the DP3 path is unchanged
    dp3 = PolicyConfig.preset("dp3")
    assert dp3.obs_keys == ("point_cloud", "agent_pos") and dp3.encoder.image_keys == ()


def test_crops_and_spatial_softmax():
    m, h, w, c = 50, 8, 10, 3
    imgs = torch.arange(m * h * w * c, dtype=torch.float64).reshape(m, h, w, c)  # unique values
    center = crop_images(imgs, (6, 6), random=False)
    assert torch.equal(center, imgs[:, 1:7, 2:8])
    torch.manual_seed(0)
    rand = crop_images(imgs, (6, 6), random=True)
    offsets = set()
    for i, r in enumerate(rand):
        v = int(r[0, 0, 0]) // c  # flat pixel index of the crop's top-left corner
        assert v // (h * w) == i  # every crop comes from its own image
        top, left = v % (h * w) // w, v % w
        assert torch.equal(r, imgs[i, top : top + 6, left : left + 6])
        offsets.add((top, left))
    assert len(offsets) > 5 and all(t <= 2 and lf <= 4 for t, lf in offsets)  # independent, in range
    ss = SpatialSoftmax(4, num_kp=3)
    feat = torch.full((1, 4, 3, 5), -30.0)
    feat[0, :, 2, 4] = 30.0  # a sharp peak at the bottom-right corner
    with torch.no_grad():
        ss.nets.weight.copy_(torch.eye(3, 4)[:, :, None, None])
        ss.nets.bias.zero_()
        kp = ss(feat)
    torch.testing.assert_close(kp, torch.ones(1, 6), atol=1e-6, rtol=0)  # expected (x, y) = (1, 1)


def test_encoder_random_crop_in_training_center_crop_in_eval():
    cfg = _tiny_image_cfg()
    model = DiffusionPolicyModel(cfg)
    enc = model.obs_encoder
    rng = np.random.default_rng(0)
    obs = {k: torch.from_numpy(v) for k, v in _image_obs(rng, n=1, batch=2).items()}
    obs = {k: v[:, 0] for k, v in obs.items()}  # (M, ...)
    with torch.no_grad():
        enc.train()
        a, b = enc(obs), enc(obs)
        enc.eval()
        c, d = enc(obs), enc(obs)
    assert a.shape == (2, 64 + 3) and not torch.equal(a, b)
    assert torch.equal(c, d)
    torch.testing.assert_close(c[:, 64:], obs["agent_pos"])  # agent_pos passes through (DP)
    with pytest.raises(ValueError, match=r"\(M, 64, 64, 3\) uint8 RGB.*fit_image"):
        enc({"img": torch.zeros(2, 60, 64, 3, dtype=torch.uint8), "agent_pos": obs["agent_pos"]})
    with pytest.raises(ValueError, match="uint8"):
        enc({"img": obs["img"].float(), "agent_pos": obs["agent_pos"]})


# ----------------------------------------------------------------------------- inference / checkpoints


def test_predict_action_chunk_and_save_load_bit_identical(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny_image_cfg(joint_names=["a", "b"])
    model = DiffusionPolicyModel(cfg)
    norm = _norm()
    ckpt = save_checkpoint(tmp_path / "ckpt", cfg, model, norm)
    meta = json.loads((ckpt / "config.json").read_text())["policy"]["encoder"]
    assert (meta["type"], meta["camera_keys"], meta["image_shape"], meta["crop_shape"]) == (
        "image", ["img"], [64, 64], [60, 60]
    )  # fmt: skip
    rng = np.random.default_rng(1)
    obs = _image_obs(rng, n=3)  # longer history: trimmed to the last n_obs_steps
    noise = np.random.default_rng(2).standard_normal((cfg.horizon, 2)).astype(np.float32)
    a = Policy(cfg, model, norm).predict_action_chunk(obs, noise=noise)
    loaded = Policy.from_checkpoint(ckpt)
    b = loaded.predict_action_chunk(obs, noise=noise)
    assert a.shape == (cfg.horizon, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    batched = loaded.predict_action_chunk(
        _image_obs(rng, batch=3), generator=torch.Generator().manual_seed(0)
    )
    assert batched.shape == (3, cfg.horizon, 2)
    bad = dict(obs, img=obs["img"].astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        loaded.predict_action_chunk(bad)
    with pytest.raises(ValueError, match=r"\(n_obs_steps=2, 64, 64, 3\).*fit_image"):
        loaded.predict_action_chunk(dict(obs, img=obs["img"][:, :32]))
    with pytest.raises(ValueError, match="missing 'img'"):
        loaded.predict_action_chunk({"agent_pos": obs["agent_pos"]})


def test_channels_last_inference_matches_nchw():
    """Policy lays the image trunks out NHWC on the CPU; same chunk as NCHW to fp32 rounding."""
    torch.manual_seed(0)
    cfg = _tiny_image_cfg(joint_names=["a", "b"])
    model = DiffusionPolicyModel(cfg)
    obs = _image_obs(np.random.default_rng(1))
    noise = np.random.default_rng(2).standard_normal((cfg.horizon, 2)).astype(np.float32)
    nchw = Policy(cfg, model, _norm(), fast=False)
    assert not model.obs_encoder.channels_last
    a = nchw.predict_action_chunk(obs, noise=noise)
    nhwc = Policy(cfg, model, _norm())
    conv1 = model.obs_encoder.cameras["img"].backbone.conv1.weight
    assert model.obs_encoder.channels_last and conv1.is_contiguous(memory_format=torch.channels_last)
    b = nhwc.predict_action_chunk(obs, noise=noise)
    np.testing.assert_allclose(a, b, atol=1e-5)


# ----------------------------------------------------------------------------- data / training


def _write_image_zarr(path: Path, data: dict) -> None:
    ends = data["episode_ends"]
    starts = np.concatenate([[0], ends[:-1]])
    save_zarr(path, [{"img": data["img"][s:e], "state": data["agent_pos"][s:e], "action": data["action"][s:e]}
                     for s, e in zip(starts, ends, strict=True)])  # fmt: skip


def test_zarr_images_stay_uint8_and_only_obs_frames_are_gathered(tmp_path):
    data = _square_episodes(4, 6, 64, seed=0)
    _write_image_zarr(tmp_path / "d.zarr", data)
    loaded = load_zarr(tmp_path / "d.zarr")
    assert set(loaded) == {"img", "agent_pos", "action", "episode_ends"}
    assert loaded["img"].dtype == np.uint8 and loaded["img"].shape == (24, 64, 64, 3)
    np.testing.assert_array_equal(loaded["img"], data["img"])
    ds = SequenceDataset(loaded, [0, 1], horizon=4, n_obs_steps=2, pad_before=1, pad_after=3,
                         obs_keys=("img", "agent_pos"))  # fmt: skip
    obs, act = ds.get_batch(np.arange(len(ds)))
    assert obs["img"].shape == (len(ds), 2, 64, 64, 3) and obs["img"].dtype == np.uint8
    assert act.shape == (len(ds), 4, 2)
    np.testing.assert_array_equal(obs["img"][0, 0], data["img"][0])  # padded first frame


def test_train_tiny_image_model_from_zarr_via_cli(tmp_path, dp_train_cli):
    data = _square_episodes(4, 10, 64, seed=0)
    _write_image_zarr(tmp_path / "d.zarr", data)
    run = tmp_path / "run"
    r = dp_train_cli("train_image_dp.yaml", [
        f"dataset={tmp_path / 'd.zarr'}", f"output_dir={run}", "max_train_steps=3", "batch_size=4",
        "val_ratio=0.25", "progress=false", "num_threads=1", "policy.down_dims=[16,32]",
        "policy.diffusion_step_embed_dim=16", "policy.n_groups=4", "policy.joint_names=[x,y]",
        "policy.encoder.image_shape=[64,64]", "policy.encoder.crop_shape=[]",
    ])  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    policy = Policy.from_checkpoint(run / "latest")
    cfg = policy.config
    assert cfg.encoder.type == "image" and cfg.obs_keys == ("img", "agent_pos")
    assert cfg.encoder.image_shape == [64, 64] and cfg.encoder.crop_shape == [58, 58]
    assert cfg.prediction_type == "sample" and cfg.joint_names == ["x", "y"]  # the yaml's CPU choice
    obs = {"img": data["img"][:2], "agent_pos": data["agent_pos"][:2]}
    chunk = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
    assert chunk.shape == (cfg.horizon, 2) and np.isfinite(chunk).all()


def test_train_api_accepts_in_memory_image_data():
    data = _square_episodes(4, 10, 64, seed=1)
    cfg = TrainConfig(
        output_dir="", policy={"preset": "image_dp", "down_dims": [16, 32], "diffusion_step_embed_dim": 16,
                               "n_groups": 4, "encoder": {"image_shape": [64, 64]}},
        batch_size=4, max_train_steps=2, lr_warmup_steps=1, val_ratio=0.25, progress=False,
    )  # fmt: skip
    res = train(cfg, data=data)
    assert len(res.history) == 1 and np.isfinite(res.history[0]["train_loss"])
    assert np.isfinite(res.history[0]["val_loss"])


def test_image_policy_reads_the_image():
    """A red square's side (left / right) sets the action: the trained model beats shuffled images.

    ``sample`` prediction and 8 noise draws per image keep this to ~70 steps (the architecture is
    the preset's; epsilon prediction needs many more steps to pick up the condition).
    """
    torch.manual_seed(0)
    train_d, test_d = _square_episodes(64, 1, 64, seed=0), _square_episodes(32, 1, 64, seed=1)
    cfg = _tiny_image_cfg(prediction_type="sample", n_obs_steps=1, horizon=4, n_action_steps=2,
                          down_dims=[32, 64], diffusion_step_embed_dim=32, n_groups=8)  # fmt: skip
    norm = Normalizer.fit({"action": train_d["action"], "agent_pos": train_d["agent_pos"]})
    model = DiffusionPolicyModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    img = torch.from_numpy(train_d["img"])[:, None]
    pos = norm.normalize("agent_pos", torch.from_numpy(train_d["agent_pos"]))[:, None]
    act = norm.normalize("action", torch.from_numpy(train_d["action"]))
    gen = torch.Generator().manual_seed(0)
    repeats = 8
    for _ in range(70):
        idx = torch.randint(0, len(img), (16,), generator=gen)
        gcond = model.encode_obs({"img": img[idx], "agent_pos": pos[idx]}).repeat_interleave(repeats, 0)
        target = act[idx].repeat_interleave(repeats, 0)[:, None].expand(-1, cfg.horizon, -1)
        noise = torch.randn(target.shape, generator=gen)
        t = torch.randint(0, cfg.num_train_timesteps, (len(target),), generator=gen)
        loss = F.mse_loss(model.model(model.train_scheduler.add_noise(target, noise, t), t, gcond), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy = Policy(cfg, model, norm)
    obs = {"img": test_d["img"][:, None], "agent_pos": test_d["agent_pos"][:, None]}
    noise = np.random.default_rng(1).standard_normal((32, cfg.horizon, 2)).astype(np.float32)
    err = np.abs(policy.predict_action_chunk(obs, noise=noise)[:, 0] - test_d["action"]).mean()
    shuffled = dict(obs, img=obs["img"][np.roll(np.arange(32), 1)])  # neighbours alternate sides
    err_s = np.abs(policy.predict_action_chunk(shuffled, noise=noise)[:, 0] - test_d["action"]).mean()
    assert err < 0.5 * err_s, (err, err_s)
    assert err < 0.3, err
