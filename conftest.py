"""Root pytest configuration: isolates the ROS graph of each test process and puts sources on path.

- Every test process (and pytest-xdist worker) gets its own ROS_DOMAIN_ID and discovery limited to
  localhost, so tests never see each other's or anybody else's nodes.
- Each ros2_ws/src/<pkg> is put on sys.path, so tests import the packages' source (the colcon
  install uses --symlink-install, so both are the same files).
"""

from __future__ import annotations

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent

# Must happen before rclpy is imported anywhere.
os.environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() % 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "2")

for pkg in sorted((ROOT / "ros2_ws" / "src").iterdir()):
    if (pkg / "setup.py").exists() and str(pkg) not in sys.path:
        sys.path.insert(0, str(pkg))

import pytest  # noqa: E402


@pytest.fixture
def rclpy_context():
    """An initialized rclpy.Context, shut down after the test."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        context.try_shutdown()
