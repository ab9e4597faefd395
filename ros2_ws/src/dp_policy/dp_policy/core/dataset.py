"""DP3 / Diffusion Policy zarr demonstrations and Diffusion-Policy sequence sampling.

Zarr v2 layout (as DP3's / Diffusion Policy's ``ReplayBuffer``)::

    data/point_cloud  (T, N, 3|6) float32 DP3 clouds
    data/img          (T, H, W, 3) uint8  image DP: RGB frames (one array per camera key)
    data/state        (T, D) float32      -> observation key ``agent_pos``
    data/action       (T, A) float32
    meta/episode_ends (E,) int64          exclusive end index of every episode

Writing: :class:`ZarrEpisodeWriter` appends :class:`Episode` arrays (simulator rollouts,
``dp_eval.bag_to_zarr``), adding ``data/tcp_pos`` and ``meta/episode_seeds`` / ``episode_target``.

Images stay uint8 in memory (4 GB holds ~50k 96x96 frames); the image encoder converts and crops
them per batch. Only the ``n_obs_steps`` observation frames of a window are gathered.

Sequences of ``horizon`` steps start anywhere from ``-pad_before`` to ``L - horizon + pad_after``
inside an episode of length L; out-of-episode steps repeat the first / last frame (Diffusion
Policy's ``SequenceSampler``), with ``pad_before = n_obs_steps - 1`` and
``pad_after = n_action_steps - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

KEY_MAP = {"point_cloud": "point_cloud", "state": "agent_pos", "action": "action"}


def is_image_array(arr) -> bool:
    """True for a uint8 (T, H, W, 3) array (an image stream of the zarr layout)."""
    return np.dtype(arr.dtype) == np.uint8 and len(arr.shape) == 4 and arr.shape[-1] == 3


def load_zarr(path: str | Path, keys: tuple[str, ...] | None = None) -> dict:
    """Read a zarr store into memory -> {point_cloud, <image keys>, agent_pos, action, episode_ends}.

    ``keys=None`` reads state, action, point_cloud when present, and every image array
    (uint8 (T, H, W, 3), kept uint8 under its own name, e.g. ``img``). Other arrays become float32.
    """
    import zarr

    path = Path(path)
    if not path.exists():
        raise ValueError(f"dataset {str(path)!r} does not exist")
    root = zarr.open(str(path), mode="r")
    if keys is None:
        present = set(root["data"].array_keys()) if "data" in root else set()
        images = sorted(k for k in present if is_image_array(root[f"data/{k}"]))
        keys = ("state", "action", *(["point_cloud"] if "point_cloud" in present else []), *images)
    out: dict[str, np.ndarray] = {}
    for key in keys:
        if f"data/{key}" not in root:
            raise ValueError(f"dataset {str(path)!r} has no data/{key}")
        arr = root[f"data/{key}"]
        if is_image_array(arr):
            out[key] = np.asarray(arr[:])
        else:
            out[KEY_MAP.get(key, key)] = np.asarray(arr[:], dtype=np.float32)
    if "meta/episode_ends" not in root:
        raise ValueError(f"dataset {str(path)!r} has no meta/episode_ends")
    out["episode_ends"] = np.asarray(root["meta/episode_ends"][:], dtype=np.int64)
    validate_arrays(out)
    return out


def validate_arrays(data: dict) -> None:
    """Check lengths and episode_ends of in-memory demonstration arrays."""
    ends = data["episode_ends"]
    n = len(data["action"])
    images = [k for k, v in data.items() if isinstance(v, np.ndarray) and k != "action" and is_image_array(v)]
    for key in ("agent_pos", "point_cloud", *images):
        if key in data and len(data[key]) != n:
            raise ValueError(f"{key} has {len(data[key])} steps, action has {n}")
    if len(ends) == 0 or ends[-1] != n or np.any(np.diff(ends) <= 0) or ends[0] <= 0:
        raise ValueError(f"episode_ends must increase strictly and end at {n}. Got {ends[:5]}...{ends[-1:]}")


def save_zarr(path: str | Path, episodes: list[dict[str, np.ndarray]]) -> None:
    """Write episodes (each: point_cloud (L,N,C), state (L,D), action (L,A)) as a DP3 zarr store.

    uint8 (L, H, W, 3) image entries (e.g. ``img``) are written as uint8 ``data/<key>``.
    """
    import zarr

    root = zarr.open(str(path), mode="w")
    data = root.create_group("data")
    meta = root.create_group("meta")
    for key in ("point_cloud", "state", "action"):
        if key not in episodes[0]:
            continue
        arr = np.concatenate([ep[key] for ep in episodes]).astype(np.float32)
        chunks = (min(100, len(arr)), *arr.shape[1:])
        data.create_dataset(key, data=arr, chunks=chunks)
    for key in sorted(k for k, v in episodes[0].items() if is_image_array(np.asarray(v))):
        arr = np.concatenate([ep[key] for ep in episodes]).astype(np.uint8)
        data.create_dataset(key, data=arr, chunks=(min(100, len(arr)), *arr.shape[1:]))
    ends = np.cumsum([len(ep["action"]) for ep in episodes]).astype(np.int64)
    meta.create_dataset("episode_ends", data=ends)


@dataclass
class Episode:
    """Arrays of one recorded episode (T steps)."""

    seed: int
    success: bool
    target_index: int
    point_cloud: np.ndarray | None  # (T, N, C) float32; None for image-only data (bag_to_zarr)
    state: np.ndarray  # (T, 7|8) float32 (8: + finger opening)
    action: np.ndarray  # (T, 7|8) float32 (8: + gripper command)
    tcp_pos: np.ndarray  # (T, 3) float32
    images: np.ndarray | None = None  # (T, H, W, 3) uint8

    def __len__(self) -> int:
        return int(self.state.shape[0])


class ZarrEpisodeWriter:
    """Appends episodes to a DP3 zarr (v2) store; `close()` writes the attributes."""

    def __init__(self, path: str | Path, attrs: dict | None = None, overwrite: bool = True):
        import zarr

        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists (pass overwrite=True to replace it)")
        self.root = zarr.open_group(str(self.path), mode="w")
        self.data = self.root.require_group("data")
        self.meta = self.root.require_group("meta")
        self._arrays: dict[str, object] = {}
        self.episode_ends: list[int] = []
        self.seeds: list[int] = []
        self.targets: list[int] = []
        self.total = 0
        self.attrs = dict(attrs or {})

    def _append(self, name: str, arr: np.ndarray) -> None:
        if name not in self._arrays:
            chunk_t = max(1, min(100, int(2**22 // max(1, arr[0].nbytes))))
            self._arrays[name] = self.data.create_dataset(
                name,
                shape=(0, *arr.shape[1:]),
                chunks=(chunk_t, *arr.shape[1:]),
                dtype=arr.dtype,
            )
        self._arrays[name].append(arr)

    def add(self, ep: Episode) -> None:
        """Append one episode (``point_cloud`` None: an image-only store, no data/point_cloud)."""
        if len(ep) == 0:
            raise ValueError(f"episode {ep.seed} is empty")
        if ep.point_cloud is not None:
            self._append("point_cloud", ep.point_cloud)
        self._append("state", ep.state)
        self._append("action", ep.action)
        self._append("tcp_pos", ep.tcp_pos)
        if ep.images is not None:
            self._append("img", ep.images)
        self.total += len(ep)
        self.episode_ends.append(self.total)
        self.seeds.append(ep.seed)
        self.targets.append(ep.target_index)

    def close(self) -> None:
        """Write meta/* and the attributes."""
        self.meta.array("episode_ends", np.asarray(self.episode_ends, dtype=np.int64), overwrite=True)
        self.meta.array("episode_seeds", np.asarray(self.seeds, dtype=np.int64), overwrite=True)
        self.meta.array("episode_target", np.asarray(self.targets, dtype=np.int64), overwrite=True)
        self.root.attrs.update(self.attrs)


def split_episodes(n_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train / validation split by episode (at least one train episode)."""
    rng = np.random.default_rng(seed)
    n_val = min(int(round(n_episodes * val_ratio)), n_episodes - 1)
    perm = rng.permutation(n_episodes)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class SequenceDataset:
    """Padded ``horizon``-step windows over selected episodes, gathered in batches (numpy)."""

    def __init__(
        self,
        data: dict,
        episodes: np.ndarray | list[int],
        horizon: int,
        n_obs_steps: int,
        pad_before: int,
        pad_after: int,
        obs_keys: tuple[str, ...] = ("point_cloud", "agent_pos"),
    ) -> None:
        self.data = data
        self.horizon = horizon
        self.n_obs_steps = n_obs_steps
        self.obs_keys = obs_keys
        ends = data["episode_ends"]
        starts = np.concatenate([[0], ends[:-1]])
        rows = []
        for e in episodes:
            s, length = int(starts[e]), int(ends[e] - starts[e])
            for i in range(-pad_before, length - horizon + pad_after + 1):
                rows.append((s, length, i))
        self.index = np.asarray(rows, dtype=np.int64).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.index)

    def time_indices(self, idx: np.ndarray) -> np.ndarray:
        """Absolute frame indices (B, horizon) with edge padding."""
        s, length, i = self.index[idx].T
        t = i[:, None] + np.arange(self.horizon)[None, :]
        return s[:, None] + np.clip(t, 0, length[:, None] - 1)

    def get_batch(self, idx: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """-> (obs {key: (B, n_obs_steps, ...)}, action (B, horizon, A))."""
        t = self.time_indices(np.asarray(idx))
        t_obs = t[:, : self.n_obs_steps]
        obs = {k: self.data[k][t_obs] for k in self.obs_keys}
        return obs, self.data["action"][t]
