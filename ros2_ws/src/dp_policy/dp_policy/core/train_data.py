"""Training data preparation: normalizer fitting, whole-array normalization, delta-action windows."""

from __future__ import annotations

import numpy as np

from dp_policy.core.config import PolicyConfig
from dp_policy.core.dataset import SequenceDataset
from dp_policy.core.normalizer import Normalizer


class DeltaActionDataset:
    """Windows of a SequenceDataset whose actions are relative to the state at the window's "now".

    For ``action_space: joint_position_delta``: row k of a window becomes
    ``action[t_k] - agent_pos[t_now]`` with ``t_now`` the window's observation step
    ``n_obs_steps - 1`` (the deployed node adds the joint positions at the chunk's stamp back),
    normalized with the normalizer's ``action`` statistics (fitted on such deltas).
    """

    def __init__(self, ds: SequenceDataset, action: np.ndarray, state: np.ndarray,
                 norm: Normalizer | None = None) -> None:  # fmt: skip
        self.ds, self.action, self.state, self.norm = ds, action, state, norm

    def __len__(self) -> int:
        return len(self.ds)

    def deltas(self, idx: np.ndarray) -> np.ndarray:
        """Raw (B, horizon, A) deltas of windows ``idx``."""
        t = self.ds.time_indices(np.asarray(idx))
        return self.action[t] - self.state[t[:, self.ds.n_obs_steps - 1]][:, None, :]

    def get_batch(self, idx: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """-> (normalized obs, normalized delta actions)."""
        obs, _ = self.ds.get_batch(idx)
        return obs, np.asarray(self.norm.normalize("action", self.deltas(idx)), dtype=np.float32)


def fit_normalizer(
    data: dict, episodes: np.ndarray, cfg: PolicyConfig, ds_kwargs: dict | None = None
) -> Normalizer:
    """Min-max normalizer fitted on the frames of the training episodes.

    With ``joint_position_delta`` actions the action statistics are those of the deltas of every
    training window (``ds_kwargs``: the SequenceDataset arguments).
    """
    ends = data["episode_ends"]
    starts = np.concatenate([[0], ends[:-1]])
    frames = np.concatenate([np.arange(starts[e], ends[e]) for e in episodes])
    fit = {"action": data["action"][frames], "agent_pos": data["agent_pos"][frames]}
    if cfg.action_space == "joint_position_delta":
        windows = DeltaActionDataset(
            SequenceDataset(data, episodes, **ds_kwargs), data["action"], data["agent_pos"]
        )
        fit["action"] = windows.deltas(np.arange(len(windows))).reshape(-1, data["action"].shape[-1])
    if cfg.encoder.type == "dp3_pointnet" and cfg.normalize_points:
        fit["point_cloud"] = data["point_cloud"][frames][..., :3]
    return Normalizer.fit(fit)


def normalize_data(data: dict, norm: Normalizer, cfg: PolicyConfig) -> dict:
    """Normalize whole arrays once (cheaper than per batch)."""
    out = dict(data)
    out["action"] = norm.normalize("action", data["action"])
    out["agent_pos"] = norm.normalize("agent_pos", data["agent_pos"])
    if "point_cloud" in data and cfg.encoder.type == "dp3_pointnet":
        pc = data["point_cloud"][..., : cfg.encoder.point_channels]
        out["point_cloud"] = norm.normalize("point_cloud", pc) if cfg.normalize_points else pc
    return out
