"""Typed, validated configuration of a diffusion policy (lerobot-style dataclasses).

`PolicyConfig` describes the network, the denoising objective and everything deployment must match
(``dt``, ``n_obs_steps``, joint names, action space, the perception parameters the data was made
with). It is saved as ``config.json`` in every checkpoint.

Observation / action timeline (DP3 / Diffusion Policy, ``n_obs_steps=2``, ``horizon=16``,
``n_action_steps=8``)::

    step index     0   1   2   3  ...  8   9  ...  15
    observations  |o0 |o1 |                           (o1 = "now")
    action rows   |a0 |a1 |a2 |a3 ... a8 |a9 ... a15|  predicted chunk (horizon rows)
    executed           |<---- n_action_steps ---->|    rows n_obs_steps-1 .. n_obs_steps-1+8

Every row is ``dt`` seconds after the previous one; row ``n_obs_steps - 1`` is "now".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ENCODER_TYPES = ("dp3_pointnet", "lowdim", "image")
IMAGE_NORMS = ("auto", "range", "imagenet")
OBJECTIVES = ("diffusion", "flow_matching", "regression")
PREDICTION_TYPES = ("sample", "epsilon")
ACTION_SPACES = ("joint_position", "joint_position_delta")
UNET_TYPES = ("full", "simple")
BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")


@dataclass
class EncoderConfig:
    """Observation encoder.

    ``dp3_pointnet`` is DP3's encoder: per-point MLP (3|6)->64->128->256 (Linear+LayerNorm+ReLU),
    max-pool over points, projection to ``out_dim`` + LayerNorm, plus a state MLP. ``lowdim`` uses
    only the state vector (state MLP), for low-dimensional tasks. ``image`` is Diffusion Policy's
    image encoder (:mod:`dp_policy.core.vision`): per camera a ResNet-18 with GroupNorm and
    spatial-softmax keypoints -> ``image_feature_dim``, concatenated with the raw normalized
    ``agent_pos`` (as DP). Every encoder maps one observation step to a flat feature vector and the
    U-Net is conditioned on ``n_obs_steps`` of them (:attr:`PolicyConfig.obs_feature_dim`).
    """

    type: str = field(default="dp3_pointnet", metadata={"help": "dp3_pointnet | lowdim | image"})
    out_dim: int = field(default=64, metadata={"help": "point-cloud feature size (DP3: 64)"})
    use_rgb: bool = field(default=False, metadata={"help": "points carry r,g,b (N, 6)"})
    use_layernorm: bool = field(default=True, metadata={"help": "LayerNorm in the point MLP"})
    final_norm: str = field(default="layernorm", metadata={"help": "layernorm | none"})
    state_mlp_dims: list[int] = field(
        default_factory=lambda: [64, 64], metadata={"help": "state MLP layer sizes (DP3: 64, 64)"}
    )
    num_points: int = field(default=1024, metadata={"help": "points per cloud the data was made with"})
    # ---- image encoder (type: image) ----
    camera_keys: list[str] = field(
        default_factory=lambda: ["img"],
        metadata={"help": "one image key / encoder per camera (zarr data/<key>)"},
    )
    image_shape: list[int] = field(
        default_factory=lambda: [96, 96], metadata={"help": "(H, W) of the uint8 RGB images the data holds"}
    )
    crop_shape: list[int] = field(
        default_factory=list,
        metadata={"help": "(H, W) random crop (train) / center crop (inference); [] = 90%"},
    )
    num_keypoints: int = field(default=32, metadata={"help": "spatial-softmax keypoints per camera (DP: 32)"})
    image_feature_dim: int = field(default=64, metadata={"help": "features per camera (DP: 64)"})
    image_norm: str = field(
        default="auto", metadata={"help": "range ([-1, 1], DP) | imagenet | auto (imagenet iff pretrained)"}
    )
    pretrained_encoder: str = field(
        default="",
        metadata={"help": "torchvision resnet18 weights (.safetensors) to start from; '' = scratch"},
    )

    def __post_init__(self) -> None:
        if self.type not in ENCODER_TYPES:
            raise ValueError(f"encoder.type must be one of {ENCODER_TYPES}. Got {self.type!r}")
        if self.out_dim <= 0:
            raise ValueError(f"encoder.out_dim must be > 0. Got {self.out_dim}")
        if self.final_norm not in ("layernorm", "none"):
            raise ValueError(f"encoder.final_norm must be 'layernorm' or 'none'. Got {self.final_norm!r}")
        self.state_mlp_dims = [int(d) for d in self.state_mlp_dims]
        if not self.state_mlp_dims or any(d <= 0 for d in self.state_mlp_dims):
            raise ValueError(f"encoder.state_mlp_dims must be non-empty, all > 0. Got {self.state_mlp_dims}")
        if self.num_points <= 0:
            raise ValueError(f"encoder.num_points must be > 0. Got {self.num_points}")
        if self.type == "image":
            self._check_image_fields()

    def _check_image_fields(self) -> None:
        """Validate the image-encoder fields; resolve ``crop_shape`` ([] -> 90%) and ``image_norm``."""
        self.camera_keys = [str(k) for k in self.camera_keys]
        if not self.camera_keys or len(set(self.camera_keys)) != len(self.camera_keys):
            raise ValueError(f"encoder.camera_keys must be non-empty and unique. Got {self.camera_keys}")
        for k in self.camera_keys:
            if not k.isidentifier() or k in ("agent_pos", "point_cloud", "action", "state"):
                raise ValueError(
                    f"encoder.camera_keys entries must be identifiers other than agent_pos / point_cloud "
                    f"/ action / state. Got {k!r}"
                )
        self.image_shape = [int(v) for v in self.image_shape]
        if len(self.image_shape) != 2 or min(self.image_shape) < 32:
            raise ValueError(f"encoder.image_shape must be [H, W], each >= 32 px. Got {self.image_shape}")
        if not self.crop_shape:
            self.crop_shape = [max(32, int(round(0.9 * v))) for v in self.image_shape]
        self.crop_shape = [int(v) for v in self.crop_shape]
        if (
            len(self.crop_shape) != 2
            or min(self.crop_shape) < 32
            or any(c > i for c, i in zip(self.crop_shape, self.image_shape, strict=True))
        ):
            raise ValueError(
                f"encoder.crop_shape must be [H, W], >= 32 px and <= image_shape {self.image_shape}. "
                f"Got {self.crop_shape}"
            )
        if self.num_keypoints <= 0 or self.image_feature_dim <= 0:
            raise ValueError(
                "encoder.num_keypoints and encoder.image_feature_dim must be > 0. "
                f"Got {self.num_keypoints}, {self.image_feature_dim}"
            )
        if self.image_norm not in IMAGE_NORMS:
            raise ValueError(f"encoder.image_norm must be one of {IMAGE_NORMS}. Got {self.image_norm!r}")
        if self.image_norm == "auto":
            self.image_norm = "imagenet" if self.pretrained_encoder else "range"
        if self.pretrained_encoder and not str(self.pretrained_encoder).endswith(".safetensors"):
            raise ValueError(
                "encoder.pretrained_encoder must be a .safetensors file (pickles are never loaded). "
                f"Got {self.pretrained_encoder!r}"
            )

    @property
    def point_channels(self) -> int:
        """Channels per point: 3 (xyz) or 6 (xyz + rgb)."""
        return 6 if self.use_rgb else 3

    @property
    def feature_dim(self) -> int:
        """Feature size of one observation step."""
        if self.type == "lowdim":
            return self.state_mlp_dims[-1]
        if self.type == "image":  # visual part only; PolicyConfig.obs_feature_dim adds agent_pos
            return self.image_feature_dim * len(self.camera_keys)
        return self.out_dim + self.state_mlp_dims[-1]

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """Observation keys this encoder reads."""
        if self.type == "lowdim":
            return ("agent_pos",)
        if self.type == "image":
            return (*self.camera_keys, "agent_pos")
        return ("point_cloud", "agent_pos")

    @property
    def image_keys(self) -> tuple[str, ...]:
        """Camera image keys (empty unless ``type == 'image'``)."""
        return tuple(self.camera_keys) if self.type == "image" else ()


@dataclass
class PolicyConfig:
    """A DP3 / Diffusion Policy: encoder, conditional 1-D U-Net, denoising objective, timing.

    Shapes: observations ``point_cloud (B, n_obs_steps, N, 3|6)`` (DP3) or, for the image encoder,
    one ``<camera_key> (B, n_obs_steps, H, W, 3)`` uint8 per camera; ``agent_pos (B, n_obs_steps,
    state_dim)``; action chunk ``(B, horizon, action_dim)``.
    """

    name: str = field(default="dp3", metadata={"help": "preset / policy name"})
    state_dim: int = field(default=7, metadata={"help": "agent_pos size"})
    action_dim: int = field(default=7, metadata={"help": "action columns"})
    joint_names: list[str] = field(
        default_factory=list, metadata={"help": "action column names (empty = unnamed)"}
    )
    action_space: str = field(
        default="joint_position",
        metadata={
            "help": "joint_position (absolute targets) | joint_position_delta (targets minus the "
            "state at 'now', the newest observation: action_dim == state_dim, column j <-> state j)"
        },
    )
    dt: float = field(default=0.1, metadata={"help": "seconds between action rows / obs steps"})
    n_obs_steps: int = field(default=2, metadata={"help": "observation history length"})
    horizon: int = field(default=16, metadata={"help": "predicted rows"})
    n_action_steps: int = field(default=8, metadata={"help": "rows executed per chunk"})
    perception: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "PerceptionConfig fields the data was made with"}
    )
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    normalize_points: bool = field(default=True, metadata={"help": "min-max normalize xyz (DP3)"})
    # U-Net
    unet_type: str = field(default="full", metadata={"help": "full (DP3) | simple (Simple DP3)"})
    down_dims: list[int] = field(
        default_factory=lambda: [512, 1024, 2048], metadata={"help": "U-Net channels per level (preset sets)"}
    )
    kernel_size: int = field(default=5, metadata={"help": "U-Net temporal conv kernel (odd)"})
    n_groups: int = field(default=8, metadata={"help": "GroupNorm groups (divides every down_dims entry)"})
    diffusion_step_embed_dim: int = field(default=128, metadata={"help": "denoising-step embedding size"})
    # objective
    objective: str = field(
        default="diffusion",
        metadata={
            "help": "diffusion | flow_matching | regression (the MSE baseline: the same encoder and "
            "U-Net map the observation to the whole chunk in one pass, see dp_policy.core.model)"
        },
    )
    prediction_type: str = field(default="sample", metadata={"help": "sample (DP3) | epsilon (DP)"})
    num_train_timesteps: int = field(default=100, metadata={"help": "diffusion steps in training (DDPM)"})
    beta_schedule: str = field(
        default="squaredcos_cap_v2", metadata={"help": "squaredcos_cap_v2 | linear | scaled_linear"}
    )
    beta_start: float = field(default=1e-4, metadata={"help": "first beta (linear schedules)"})
    beta_end: float = field(default=0.02, metadata={"help": "last beta (linear schedules)"})
    clip_sample: bool = field(default=True, metadata={"help": "clip predicted samples to [-1, 1]"})
    num_inference_steps: int = field(default=10, metadata={"help": "DDIM / Euler steps"})

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig(**self.encoder)
        self.down_dims = [int(d) for d in self.down_dims]
        self.joint_names = [str(n) for n in self.joint_names]
        self.perception = dict(self.perception)
        for key in ("state_dim", "action_dim", "n_obs_steps", "horizon", "n_action_steps",
                    "kernel_size", "n_groups", "diffusion_step_embed_dim", "num_train_timesteps",
                    "num_inference_steps"):  # fmt: skip
            if int(getattr(self, key)) <= 0:
                raise ValueError(f"{key} must be > 0. Got {getattr(self, key)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}. Got {self.objective!r}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"prediction_type must be one of {PREDICTION_TYPES}. Got {self.prediction_type!r}"
            )
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"action_space must be one of {ACTION_SPACES}. Got {self.action_space!r}")
        if self.action_space == "joint_position_delta" and self.action_dim != self.state_dim:
            raise ValueError(
                "action_space joint_position_delta adds the state at 'now' to every row: it needs "
                f"action_dim == state_dim. Got action_dim {self.action_dim}, state_dim {self.state_dim}"
            )
        if self.unet_type not in UNET_TYPES:
            raise ValueError(f"unet_type must be one of {UNET_TYPES}. Got {self.unet_type!r}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"beta_schedule must be one of {BETA_SCHEDULES}. Got {self.beta_schedule!r}")
        if not self.dt > 0:
            raise ValueError(f"dt must be > 0 seconds. Got {self.dt}")
        if self.joint_names and len(self.joint_names) != self.action_dim:
            raise ValueError(
                f"joint_names must name every action column ({self.action_dim}). "
                f"Got {len(self.joint_names)} names: {self.joint_names}"
            )
        if len(self.down_dims) < 2 or any(d <= 0 for d in self.down_dims):
            raise ValueError(f"down_dims needs >= 2 positive sizes. Got {self.down_dims}")
        if any(d % self.n_groups for d in self.down_dims):
            raise ValueError(
                f"every down_dims entry must be divisible by n_groups={self.n_groups}. Got {self.down_dims}"
            )
        if self.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd. Got {self.kernel_size}")
        factor = 2 ** (len(self.down_dims) - 1)
        if self.horizon % factor:
            raise ValueError(
                f"horizon must be divisible by 2**(len(down_dims)-1)={factor}. Got {self.horizon}"
            )
        if self.n_obs_steps > self.horizon:
            raise ValueError(f"n_obs_steps must be <= horizon={self.horizon}. Got {self.n_obs_steps}")
        if self.n_obs_steps - 1 + self.n_action_steps > self.horizon:
            raise ValueError(
                "n_obs_steps - 1 + n_action_steps must be <= horizon "
                f"({self.horizon}). Got {self.n_obs_steps - 1 + self.n_action_steps}"
            )
        if self.num_inference_steps > self.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps must be <= num_train_timesteps={self.num_train_timesteps}. "
                f"Got {self.num_inference_steps}"
            )

    # ---- presets / serialization ----
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PolicyConfig:
        """Build a preset (``dp3``, ``simple_dp3`` or ``image_dp``), with field overrides.

        ``image_dp`` is Diffusion Policy's image policy (ResNet-18/GroupNorm/spatial-softmax encoder,
        DP's U-Net, epsilon prediction). An ``encoder`` override dict is merged into the preset's.
        """
        presets: dict[str, dict[str, Any]] = {
            "dp3": {"unet_type": "full", "down_dims": [512, 1024, 2048]},
            "simple_dp3": {"unet_type": "simple", "down_dims": [128, 256, 384]},
            "image_dp": {
                "unet_type": "full",
                "down_dims": [512, 1024, 2048],
                "prediction_type": "epsilon",
                "encoder": {"type": "image"},
            },
        }
        if name not in presets:
            raise ValueError(f"preset must be one of {sorted(presets)}. Got {name!r}")
        kwargs: dict[str, Any] = {"name": name, **presets[name]}
        enc = overrides.get("encoder")
        if isinstance(enc, dict) and isinstance(kwargs.get("encoder"), dict):
            overrides = {**overrides, "encoder": {**kwargs["encoder"], **enc}}
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PolicyConfig keys {unknown}; expected a subset of {sorted(known)}")
        data = dict(data)
        if isinstance(data.get("encoder"), dict):
            enc_known = {f.name for f in dataclasses.fields(EncoderConfig)}
            enc_unknown = sorted(set(data["encoder"]) - enc_known)
            if enc_unknown:
                raise ValueError(f"unknown encoder keys {enc_unknown}; expected {sorted(enc_known)}")
        return cls(**data)

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """Observation keys ``predict_action_chunk`` needs."""
        return self.encoder.obs_keys

    @property
    def obs_feature_dim(self) -> int:
        """Feature size of one observation step (image encoder: cameras + raw agent_pos, as DP)."""
        if self.encoder.type == "image":
            return self.encoder.feature_dim + self.state_dim
        return self.encoder.feature_dim

    @property
    def global_cond_dim(self) -> int:
        """U-Net global-condition size: features of ``n_obs_steps`` observations."""
        return self.obs_feature_dim * self.n_obs_steps
