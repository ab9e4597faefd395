"""Per-channel min-max normalization to [-1, 1] (Diffusion Policy's ``limits`` mode).

Kept outside the network and saved with the checkpoint (``normalizer.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

RANGE_EPS = 1e-4


class Normalizer:
    """Per-key affine maps ``y = x * scale + offset`` over the last dimension."""

    def __init__(self, stats: dict[str, dict[str, np.ndarray]] | None = None) -> None:
        self.stats: dict[str, dict[str, np.ndarray]] = {}
        for key, s in (stats or {}).items():
            self.stats[key] = {k: np.asarray(v, dtype=np.float32) for k, v in s.items()}
        self._torch_cache: dict[tuple[str, str, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def fit(cls, data: dict[str, np.ndarray]) -> Normalizer:
        """Fit min-max of every key over all leading dims: ``data[key]`` (..., C)."""
        stats = {}
        for key, arr in data.items():
            flat = np.asarray(arr, dtype=np.float64).reshape(-1, arr.shape[-1])
            lo, hi = flat.min(axis=0), flat.max(axis=0)
            rng = hi - lo
            ignore = rng < RANGE_EPS
            rng[ignore] = 2.0
            scale = 2.0 / rng
            offset = -1.0 - scale * lo
            offset[ignore] = -lo[ignore]  # constant channel -> 0
            stats[key] = {"scale": scale, "offset": offset, "min": lo, "max": hi}
        return cls(stats)

    def keys(self) -> list[str]:
        """Normalized keys."""
        return list(self.stats)

    def dim(self, key: str) -> int:
        """Channel count of ``key``."""
        return int(self.stats[key]["scale"].shape[0])

    def _t(self, key: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        ck = (key, "t", device)
        if ck not in self._torch_cache:
            s = self.stats[key]
            self._torch_cache[ck] = (
                torch.as_tensor(s["scale"], device=device),
                torch.as_tensor(s["offset"], device=device),
            )
        return self._torch_cache[ck]

    def normalize(self, key: str, x):
        """x (..., C) -> normalized, numpy or torch."""
        if isinstance(x, torch.Tensor):
            scale, offset = self._t(key, x.device)
            c = scale.shape[0]
            if x.shape[-1] > c:  # e.g. xyz normalized, rgb passed through
                return torch.cat([x[..., :c] * scale + offset, x[..., c:]], dim=-1)
            return x * scale + offset
        s = self.stats[key]
        c = s["scale"].shape[0]
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1] > c:
            return np.concatenate([x[..., :c] * s["scale"] + s["offset"], x[..., c:]], axis=-1)
        return x * s["scale"] + s["offset"]

    def unnormalize(self, key: str, y):
        """Inverse of :meth:`normalize`."""
        if isinstance(y, torch.Tensor):
            scale, offset = self._t(key, y.device)
            return (y - offset) / scale
        s = self.stats[key]
        return (np.asarray(y, dtype=np.float32) - s["offset"]) / s["scale"]

    # ---- persistence (JSON: exact for float32 values) ----
    def to_dict(self) -> dict:
        """JSON-serializable stats."""
        return {
            key: {k: [float(x) for x in v.astype(np.float32)] for k, v in s.items()}
            for key, s in self.stats.items()
        }

    @classmethod
    def from_dict(cls, data: dict) -> Normalizer:
        """Inverse of :meth:`to_dict`; raises ValueError on malformed input."""
        if not isinstance(data, dict):
            raise ValueError(f"normalizer must be a JSON object. Got {type(data).__name__}")
        stats = {}
        for key, s in data.items():
            if not isinstance(s, dict) or not {"scale", "offset"} <= set(s):
                raise ValueError(f"normalizer entry {key!r} needs 'scale' and 'offset'. Got {s!r:.80}")
            arrs = {k: np.asarray(v, dtype=np.float32) for k, v in s.items()}
            if arrs["scale"].shape != arrs["offset"].shape or arrs["scale"].ndim != 1:
                raise ValueError(f"normalizer entry {key!r}: scale/offset must be equal-length lists")
            if not np.all(np.isfinite(arrs["scale"])) or np.any(arrs["scale"] == 0):
                raise ValueError(f"normalizer entry {key!r}: scale must be finite and non-zero")
            stats[key] = arrs
        return cls(stats)

    def save(self, path: str | Path) -> None:
        """Write JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        """Read JSON."""
        return cls.from_dict(json.loads(Path(path).read_text()))
