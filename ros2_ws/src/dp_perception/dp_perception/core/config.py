"""Typed, validated configuration of the perception preprocessing (shared by node and training)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dp_common.core.validation import at_least, finite_floats, in_range, non_negative, one_of, param, positive

FPS_BACKENDS = ("auto", "fpsample", "torch", "exact")


@dataclass
class PerceptionConfig:
    """Cloud -> fixed-size policy input. Distances in meters, in `target_frame`.

    The pipeline is: drop NaN/Inf, transform to `target_frame`, crop to the axis-aligned box
    [`crop_min`, `crop_max`], voxel downsample, optionally remove the dominant plane, then
    farthest point sampling to exactly `num_points`. A checkpoint records these fields; the
    policy must be run with the values it was trained with.
    """

    target_frame: str = param("Frame of the output cloud and of the crop box.", default="world")
    crop_min: list[float] = param(
        "Crop box lower corner [x, y, z] in target_frame, m.", default_factory=lambda: [0.2, -0.5, -0.02]
    )
    crop_max: list[float] = param(
        "Crop box upper corner [x, y, z] in target_frame, m (inclusive).",
        default_factory=lambda: [1.0, 0.5, 0.4],
    )
    voxel_size: float = param(
        "Voxel grid edge before FPS, m; 0 = off. One real point is kept per occupied voxel.", default=0.0075
    )
    num_points: int = param("Points in every output cloud (exactly).", default=1024)
    min_points: int = param(
        "Fewest valid points in the crop box to accept a frame; between min_points and "
        "num_points the output is padded by repeating points cyclically.",
        default=256,
    )
    use_rgb: bool = param("Output x,y,z,r,g,b (rgb in [0, 1]) instead of x,y,z.", default=False)
    remove_plane: bool = param(
        "Remove the dominant plane (the table) with open3d RANSAC before FPS.", default=False
    )
    plane_distance: float = param("RANSAC inlier distance to the plane, m.", default=0.005)
    plane_iterations: int = param("RANSAC iterations.", default=100)
    fps_backend: str = param(
        "Farthest point sampling: auto (torch on CUDA when available, else fpsample), "
        "fpsample (QuickFPS, CPU), torch (CUDA if available, else CPU), exact (vanilla FPS).",
        default="auto",
    )
    fps_h: int = param("fpsample bucket_fps_kdline_sampling KD-tree height (3..9).", default=5)
    max_input_points: int = param(
        "Clouds with more points than this are rejected before any processing.", default=3_000_000
    )

    def __post_init__(self):
        for name in ("crop_min", "crop_max"):
            finite_floats(self, name, 3, "[x, y, z] in meters")
        if any(lo > hi for lo, hi in zip(self.crop_min, self.crop_max, strict=True)):
            raise ValueError(
                f"crop_min must be <= crop_max on every axis. Got {self.crop_min} > {self.crop_max}"
            )
        if not self.target_frame:
            raise ValueError("target_frame must be a non-empty frame id. Got ''")
        non_negative(self, "voxel_size", unit=" m (0 = off)", finite=True)
        at_least(self, "num_points", 1)
        in_range(self, "min_points", 1, self.num_points, bounds=f"[1, num_points={self.num_points}]")
        positive(self, "plane_distance", unit=" m")
        at_least(self, "plane_iterations", 1)
        one_of(self, "fps_backend", FPS_BACKENDS)
        in_range(self, "fps_h", 1, 12)
        at_least(self, "max_input_points", self.num_points, bound=f"num_points={self.num_points}")

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
