"""Pick a headless OpenGL backend for MuJoCo before `mujoco` is imported (ROS-free)."""

from __future__ import annotations

import ctypes.util
import os
import sys


def configure_gl() -> str:
    """Set MUJOCO_GL (and PYOPENGL_PLATFORM) unless the user did; returns the backend.

    EGL when libEGL is present (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri), else OSMesa
    (libosmesa6). Has no effect once `mujoco` is imported.
    """
    if "mujoco" in sys.modules or os.environ.get("MUJOCO_GL"):
        return os.environ.get("MUJOCO_GL", "")
    if ctypes.util.find_library("EGL"):
        backend = "egl"
    elif ctypes.util.find_library("OSMesa"):
        backend = "osmesa"
    else:
        backend = "egl"
    os.environ["MUJOCO_GL"] = backend
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend
