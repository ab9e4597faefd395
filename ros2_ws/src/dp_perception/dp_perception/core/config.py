"""Typed, validated configuration of the perception preprocessing (shared by node and training)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

FPS_BACKENDS = ("auto", "fpsample", "torch", "exact")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class PerceptionConfig:
    """Cloud -> fixed-size policy input. Distances in meters, in `target_frame`.

    The pipeline is: drop NaN/Inf, transform to `target_frame`, crop to the axis-aligned box
    [`crop_min`, `crop_max`], voxel downsample, optionally remove the dominant plane, then
    farthest point sampling to exactly `num_points`. A checkpoint records these fields; the
    policy must be run with the values it was trained with.
    """

    target_frame: str = field(
        default="world", metadata=_help("Frame of the output cloud and of the crop box.")
    )
    crop_min: list[float] = field(
        default_factory=lambda: [0.2, -0.5, -0.02],
        metadata=_help("Crop box lower corner [x, y, z] in target_frame, m."),
    )
    crop_max: list[float] = field(
        default_factory=lambda: [1.0, 0.5, 0.4],
        metadata=_help("Crop box upper corner [x, y, z] in target_frame, m (inclusive)."),
    )
    voxel_size: float = field(
        default=0.0075,
        metadata=_help("Voxel grid edge before FPS, m; 0 = off. One real point is kept per occupied voxel."),
    )
    num_points: int = field(default=1024, metadata=_help("Points in every output cloud (exactly)."))
    min_points: int = field(
        default=256,
        metadata=_help(
            "Fewest valid points in the crop box to accept a frame; between min_points and "
            "num_points the output is padded by repeating points cyclically."
        ),
    )
    use_rgb: bool = field(
        default=False, metadata=_help("Output x,y,z,r,g,b (rgb in [0, 1]) instead of x,y,z.")
    )
    remove_plane: bool = field(
        default=False,
        metadata=_help("Remove the dominant plane (the table) with open3d RANSAC before FPS."),
    )
    plane_distance: float = field(default=0.005, metadata=_help("RANSAC inlier distance to the plane, m."))
    plane_iterations: int = field(default=100, metadata=_help("RANSAC iterations."))
    fps_backend: str = field(
        default="auto",
        metadata=_help(
            "Farthest point sampling: auto (torch on CUDA when available, else fpsample), "
            "fpsample (QuickFPS, CPU), torch (CUDA if available, else CPU), exact (vanilla FPS)."
        ),
    )
    fps_h: int = field(
        default=5, metadata=_help("fpsample bucket_fps_kdline_sampling KD-tree height (3..9).")
    )
    max_input_points: int = field(
        default=3_000_000,
        metadata=_help("Clouds with more points than this are rejected before any processing."),
    )

    def __post_init__(self):
        for name in ("crop_min", "crop_max"):
            value = [float(v) for v in getattr(self, name)]
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError(
                    f"{name} must be 3 finite numbers [x, y, z] in meters. Got {getattr(self, name)}"
                )
            setattr(self, name, value)
        if any(lo > hi for lo, hi in zip(self.crop_min, self.crop_max, strict=True)):
            raise ValueError(
                f"crop_min must be <= crop_max on every axis. Got {self.crop_min} > {self.crop_max}"
            )
        if not self.target_frame:
            raise ValueError("target_frame must be a non-empty frame id. Got ''")
        if not (math.isfinite(self.voxel_size) and self.voxel_size >= 0):
            raise ValueError(f"voxel_size must be >= 0 m (0 = off). Got {self.voxel_size}")
        if self.num_points < 1:
            raise ValueError(f"num_points must be >= 1. Got {self.num_points}")
        if not 1 <= self.min_points <= self.num_points:
            raise ValueError(
                f"min_points must be in [1, num_points={self.num_points}]. Got {self.min_points}"
            )
        if self.plane_distance <= 0:
            raise ValueError(f"plane_distance must be > 0 m. Got {self.plane_distance}")
        if self.plane_iterations < 1:
            raise ValueError(f"plane_iterations must be >= 1. Got {self.plane_iterations}")
        if self.fps_backend not in FPS_BACKENDS:
            raise ValueError(f"fps_backend must be one of {FPS_BACKENDS}. Got {self.fps_backend!r}")
        if not 1 <= self.fps_h <= 12:
            raise ValueError(f"fps_h must be in [1, 12]. Got {self.fps_h}")
        if self.max_input_points < self.num_points:
            raise ValueError(
                f"max_input_points must be >= num_points={self.num_points}. Got {self.max_input_points}"
            )

    def to_dict(self) -> dict:
        """Plain dict of all fields (what a checkpoint records)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PerceptionConfig:
        """Builds a config from a dict, rejecting unknown keys."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PerceptionConfig keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**d)
