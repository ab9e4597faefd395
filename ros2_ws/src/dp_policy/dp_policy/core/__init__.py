"""ROS-free core of dp_policy: DP3 / Diffusion Policy models, training data, checkpoints, inference."""

from dp_policy.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dp_policy.core.config import EncoderConfig, PolicyConfig
from dp_policy.core.model import DiffusionPolicyModel
from dp_policy.core.normalizer import Normalizer
from dp_policy.core.policy import Policy

__all__ = [
    "CheckpointError",
    "DiffusionPolicyModel",
    "EncoderConfig",
    "Normalizer",
    "Policy",
    "PolicyConfig",
    "load_checkpoint",
    "save_checkpoint",
]
