"""Training data preparation: loading and checking the data, the episode split, normalizer fitting,
whole-array normalization, delta-action windows, and the datasets of a run (:func:`prepare_data`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dp_policy.core.config import PolicyConfig
from dp_policy.core.dataset import SequenceDataset, load_zarr, split_episodes, validate_arrays
from dp_policy.core.normalizer import Normalizer
from dp_policy.core.train_config import TrainConfig, TrainError

# A run's log lines keep one name, the one dp_train prints ("dp_policy.core.training: ...").
logger = logging.getLogger("dp_policy.core.training")


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


def split_with_minimum(n_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Episode split: ``val_ratio > 0`` holds out at least one episode (when there are >= 2)."""
    train_eps, val_eps = split_episodes(n_episodes, val_ratio, seed)
    if val_ratio > 0 and len(val_eps) == 0 and n_episodes >= 2:
        perm = np.random.default_rng(seed).permutation(n_episodes)
        val_eps, train_eps = np.sort(perm[:1]), np.sort(perm[1:])
    return train_eps, val_eps


def load_training_data(cfg: TrainConfig, data: dict | None) -> dict:
    """Check in-memory ``data`` or load ``cfg.dataset`` (zarr); user errors raise :class:`TrainError`."""
    if data is not None:
        try:
            validate_arrays(data)
        except (KeyError, ValueError) as exc:
            raise TrainError(
                f"malformed demonstration arrays: {exc}", "fix the arrays passed to train()"
            ) from exc
        return data
    if not cfg.dataset:
        raise TrainError(
            "no dataset given", "pass dataset=<path to a DP3 zarr directory> (or set it in the YAML)"
        )
    if not Path(cfg.dataset).exists():
        raise TrainError(
            f"dataset {cfg.dataset!r} does not exist",
            "pass dataset=<path to a DP3 zarr directory> (make one with python -m dp_sim.make_dataset "
            "or bag_to_zarr)",
        )
    try:
        return load_zarr(cfg.dataset)
    except Exception as exc:  # zarr raises many types for a folder that is not a DP3 store
        raise TrainError(
            f"dataset {cfg.dataset!r} is not a readable DP3 zarr store ({type(exc).__name__}: {exc})",
            "it needs data/state (T, D), data/action (T, A), meta/episode_ends, and data/point_cloud or "
            "images for the encoder; rebuild it with python -m dp_sim.make_dataset or bag_to_zarr",
        ) from exc


@dataclass
class TrainData:
    """The data of a run: its policy config (completed from the data), normalizer, split and windows."""

    pcfg: PolicyConfig
    norm: Normalizer
    train_eps: np.ndarray
    val_eps: np.ndarray
    train_ds: SequenceDataset | DeltaActionDataset
    val_ds: SequenceDataset | DeltaActionDataset


def prepare_data(
    cfg: TrainConfig, data: dict | None, val_episodes: np.ndarray | None, rank: int
) -> TrainData:
    """Load and check the data, split episodes, complete the policy config, fit and apply the normalizer.

    ``val_episodes`` overrides the random split. User errors (data that does not fit the config) raise
    :class:`TrainError`; rank 0 logs whether validation is on.
    """
    data = load_training_data(cfg, data)
    n_eps = len(data["episode_ends"])
    if val_episodes is None:
        train_eps, val_eps = split_with_minimum(n_eps, cfg.val_ratio, cfg.seed)
    else:
        val_eps = np.asarray(val_episodes, dtype=np.int64)
        train_eps = np.setdiff1d(np.arange(n_eps), val_eps)

    overrides: dict[str, Any] = {
        "state_dim": int(data["agent_pos"].shape[-1]),
        "action_dim": int(data["action"].shape[-1]),
    }
    if "point_cloud" in data:
        enc = dict(cfg.policy.get("encoder", {}))
        enc.setdefault("num_points", int(data["point_cloud"].shape[1]))
        overrides["encoder"] = enc
    try:
        pcfg = cfg.policy_config(**overrides)
    except (TypeError, ValueError) as exc:
        raise TrainError(
            f"policy config does not fit the dataset ({overrides['state_dim']} state, "
            f"{overrides['action_dim']} action columns): {exc}",
            "fix the policy.* keys (dp_train --help lists them)",
        ) from exc
    missing = [k for k in pcfg.obs_keys if k not in data]
    if missing:
        raise TrainError(
            f"the {pcfg.encoder.type} encoder reads {list(pcfg.obs_keys)} but the dataset has no {missing}",
            "use a dataset with those arrays or set policy.encoder.type to match the data "
            "(lowdim: state only; dp3_pointnet: point_cloud; image: policy.encoder.camera_keys)",
        )
    ds_kwargs = dict(horizon=pcfg.horizon, n_obs_steps=pcfg.n_obs_steps, pad_before=pcfg.n_obs_steps - 1,
                     pad_after=pcfg.n_action_steps - 1, obs_keys=pcfg.obs_keys)  # fmt: skip
    try:
        norm = fit_normalizer(data, train_eps, pcfg, ds_kwargs)
        ndata = normalize_data(data, norm, pcfg)
        train_ds = SequenceDataset(ndata, train_eps, **ds_kwargs)
        val_ds = SequenceDataset(ndata, val_eps, **ds_kwargs)
        if pcfg.action_space == "joint_position_delta":
            train_ds = DeltaActionDataset(train_ds, data["action"], data["agent_pos"], norm)
            val_ds = DeltaActionDataset(val_ds, data["action"], data["agent_pos"], norm)
        if len(train_ds):
            train_ds.get_batch(np.arange(1))  # shape check (images vs encoder.image_shape, ...)
    except (ValueError, IndexError, KeyError) as exc:
        raise TrainError(
            f"the dataset's arrays do not fit the policy config: {exc}",
            "fix the policy.* keys (e.g. policy.encoder.image_shape, use_rgb) or rebuild the dataset",
        ) from exc
    if len(train_ds) == 0:
        raise TrainError(
            "no training sequences: episodes shorter than the horizon padding allows",
            "lower policy.horizon or record longer episodes",
        )
    if rank == 0:
        if len(val_ds) > 0:
            logger.info("validation: %d held-out episode(s) of %d", len(val_eps), n_eps)
        elif val_episodes is not None:
            logger.info("validation off: no validation episodes given; no val loss, no best/ checkpoint")
        elif cfg.val_ratio == 0:
            logger.info("validation off (val_ratio: 0): no val loss, no best/ checkpoint")
        else:
            logger.info(
                "validation off: %d episode(s) cannot spare a held-out one; no val loss, no best/", n_eps
            )
    return TrainData(pcfg, norm, train_eps, val_eps, train_ds, val_ds)
