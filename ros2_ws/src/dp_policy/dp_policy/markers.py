"""rviz markers of a predicted action chunk: the end-effector path via forward kinematics.

`EndEffectorPath` (pinocchio, no ROS; ``dp_common.core.kinematics``, re-exported here) maps
joint-position rows to end-effector positions; `path_marker_array` wraps them in a
visualization_msgs/MarkerArray (one LINE_STRIP plus a sphere at the "now" row; builders in
``dp_common.msgs.markers``). Both are optional: without pinocchio or a robot_description, no markers.
"""

from __future__ import annotations

import numpy as np

from dp_common.core.kinematics import EndEffectorPath, urdf_root_link
from dp_common.msgs.markers import line_strip_marker, marker_array, sphere_marker
from dp_common.msgs.stamp import stamp_to_ns

__all__ = ["EndEffectorPath", "path_marker_array", "urdf_root_link"]


def path_marker_array(points: np.ndarray, frame_id: str, stamp, ns: str = "dp_policy/predicted_path"):
    """MarkerArray: LINE_STRIP through `points` (T, 3) m and a sphere at points[0] ("now")."""
    stamp_ns = stamp_to_ns(stamp)
    line = line_strip_marker(points, frame_id, stamp_ns, ns, 0, (0.1, 0.6, 1.0, 1.0), 0.005)
    now = sphere_marker(points[0], frame_id, stamp_ns, ns, 1, (1.0, 0.5, 0.0, 1.0), 0.02)
    return marker_array([line, now])
