"""The camera half of SimScene: rendering depth/RGB and the cloud in the optical frame (ROS-free).

A mixin: it uses the scene's `cfg`, `model`, `data`, `_cam_id`, `nominal_camera`, `_noise_rng`,
`_renderer` and `time` (set by :class:`dp_sim.core.scene.SimScene`).
"""

from __future__ import annotations

import numpy as np

from dp_sim.core.gl import configure_gl

configure_gl()

import mujoco  # noqa: E402

from dp_sim.core import sensors  # noqa: E402


class SceneCamera:
    """Rendering methods of :class:`~dp_sim.core.scene.SimScene`."""

    @property
    def intrinsics(self) -> np.ndarray:
        """Pinhole camera matrix K (3, 3) of the optical frame."""
        return sensors.intrinsics(self.cfg.camera_width, self.cfg.camera_height, self.cfg.camera_fovy_deg)

    @property
    def camera_transform(self) -> np.ndarray:
        """Nominal world <- camera optical frame (4, 4) (what the robot's calibration says)."""
        return self.nominal_camera.copy()

    def _get_renderer(self):
        if self._renderer is None:
            self._renderer = mujoco.Renderer(
                self.model, height=self.cfg.camera_height, width=self.cfg.camera_width
            )
        return self._renderer

    def render_images(self, rgb: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Render depth (H, W) float32 m (z along the optical axis) and RGB (H, W, 3) uint8."""
        r = self._get_renderer()
        r.update_scene(self.data, camera=self._cam_id)
        r.enable_depth_rendering()
        depth = r.render().astype(np.float32, copy=True)
        r.disable_depth_rendering()
        color = r.render().copy() if rgb else None
        return depth, color

    def depth_to_cloud(
        self, depth: np.ndarray, color: np.ndarray | None = None, noise: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Back-project a depth image into the optical frame, with the sensor model when realism is on.

        Args:
            depth: (H, W) float32 m; values >= max_depth_m or <= 0 are dropped.
            color: optional (H, W, 3) uint8.
            noise: apply the sensor model (only when the config's realism is in effect).
        Returns:
            xyz (N, 3) float32 in the optical frame, rgb (N, 3) float32 in [0, 1] or None.
        """
        c = self.cfg
        if noise and c.realism:
            depth = sensors.corrupt_depth(
                depth, self._noise_rng, c.depth_noise_m, c.depth_dropout, c.edge_dropout, c.edge_threshold_m
            )
        return sensors.backproject(depth, self.intrinsics, c.max_depth_m, color)

    def render(self, rgb: bool = True, noise: bool = True) -> dict:
        """Render the camera: dict with depth, rgb_image, xyz, rgb (see depth_to_cloud), transform.

        `transform` is the nominal world <- optical transform (the jitter stays unknown).
        """
        depth, color = self.render_images(rgb=rgb)
        xyz, col = self.depth_to_cloud(depth, color, noise=noise)
        return {
            "depth": depth,
            "rgb_image": color,
            "xyz": xyz,
            "rgb": col,
            "transform": self.camera_transform,
            "time": self.time,
        }

    def close(self) -> None:
        """Free the GL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
